"""The built-in `sample` dataset: a few synthetic "long videos" with Repurpose-10K split files.

`spec` plans videos, windows, clips and splits from a seed (pure, deterministic); `synth`
renders one video (numpy soundtrack + one ffmpeg call); `tts` speaks sentences with the
espeak-ng library shipped by the `espeakng-loader` wheel (no system packages, no network).
"""

from repurpose.sample.spec import SampleConfig, SampleWindow, VideoSpec, plan_sample, split_entries

__all__ = ["SampleConfig", "VideoSpec", "SampleWindow", "plan_sample", "split_entries"]
