"""Plan of the built-in sample dataset: configuration, videos, windows, clips and splits.

Everything here is pure and deterministic: the same `SampleConfig` gives the same plan.
Each video has its own random stream (seeded by the config seed and the video's index), so
adding videos leaves the earlier ones unchanged.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from repurpose.params import ParamsError, config_from_section

SECTION = "sample"
SPLITS = ("train", "val", "test")
ID_PREFIX = "sample"  # + 5 digits = 11 characters, like a YouTube id
EDGE = 1.0  # seconds kept clear at both ends of a window
MIN_GAP = 3.0  # seconds of non-clip between two clips of a window
FILL = 0.6  # at most about this share of a window is clips


@dataclass(frozen=True)
class SampleConfig:
    """The `sample` params section (defaults: params.yaml's, checked by a test)."""

    seed: int = 0
    n_videos: int = 20
    min_duration: int | float = 90  # seconds kept as given: whole seconds stay ints
    max_duration: int | float = 120
    window_seconds: int | float = 40
    min_clip: int | float = 10
    max_clip: int | float = 30
    width: int = 480
    height: int = 270
    fps: int = 12
    val_share: float = 0.35  # share of the videos in val (>= 1 video)
    test_share: float = 0.35  # share of the videos in test (>= 1 video)

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> SampleConfig:
        """Read and check every key of the `sample` section (all are required, none other)."""
        cfg = config_from_section(cls, dict(section) if isinstance(section, Mapping) else section,
                                  SECTION)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ParamsError naming the key if the values cannot make a valid sample."""

        def bad(key: str, why: str) -> ParamsError:
            return ParamsError(f"params {SECTION}.{key}: {why}")

        if not 3 <= self.n_videos <= 99_999:
            raise bad(
                "n_videos", f"must be 3..99999 (one video per split at least), got {self.n_videos}"
            )
        for key in ("min_duration", "max_duration", "window_seconds", "min_clip", "max_clip"):
            if not getattr(self, key) > 0:
                raise bad(key, f"must be > 0, got {getattr(self, key)}")
        if self.min_duration > self.max_duration:
            raise bad(
                "min_duration",
                f"{self.min_duration} is greater than {SECTION}.max_duration {self.max_duration}",
            )
        if math.ceil(self.min_duration) > math.floor(self.max_duration):
            raise bad(
                "min_duration",
                f"no whole number of seconds between {self.min_duration} and {self.max_duration}",
            )
        if self.min_clip > self.max_clip:
            raise bad(
                "min_clip", f"{self.min_clip} is greater than {SECTION}.max_clip {self.max_clip}"
            )
        need = self.min_clip + 2 * EDGE
        if self.window_seconds < need:
            raise bad(
                "window_seconds",
                f"{self.window_seconds} cannot hold a clip of min_clip {self.min_clip} s "
                f"plus {EDGE:g} s at each end (needs >= {need:g})",
            )
        if self.min_duration < need:
            raise bad(
                "min_duration",
                f"{self.min_duration} cannot hold a clip of min_clip {self.min_clip} s "
                f"plus {EDGE:g} s at each end (needs >= {need:g})",
            )
        for key in ("width", "height"):
            value = getattr(self, key)
            if value < 32 or value % 2:
                raise bad(key, f"must be an even number >= 32 (H.264 4:2:0), got {value}")
        if not 1 <= self.fps <= 60:
            raise bad("fps", f"must be 1..60, got {self.fps}")
        for key in ("val_share", "test_share"):
            if not 0 < getattr(self, key) < 1:
                raise bad(key, f"must be in (0, 1), got {getattr(self, key)}")
        n_val, n_test = split_counts(self.n_videos, self.val_share, self.test_share)
        if n_val + n_test >= self.n_videos:
            raise bad("val_share", f"val_share + test_share leave no train video of "
                                   f"{self.n_videos}")


@dataclass(frozen=True)
class SampleWindow:
    """One dataset sample: a window of a video and the clips fully inside it (absolute s)."""

    start: float
    end: float
    clips: tuple[tuple[float, float], ...]

    def entry(self, youtube_id: str, video_duration: float) -> dict[str, Any]:
        """The Repurpose-10K split-file entry of this window."""
        clip_seconds = sum(b - a for a, b in self.clips)
        return {
            "youtube_id": youtube_id,
            "timeRange": [self.start, self.end],
            "segments": [[a, b] for a, b in self.clips],
            "timeRangeOffset": [0, self.end - self.start],
            "segmentsOffset": [[a - self.start, b - self.start] for a, b in self.clips],
            "coverage": clip_seconds / video_duration,
        }


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one sample video, and its place in the splits."""

    youtube_id: str
    split: str
    duration: int  # whole seconds
    seed: int  # the video's own random stream (look, sound and speech placement)
    windows: tuple[SampleWindow, ...]
    width: int
    height: int
    fps: int

    @property
    def clips(self) -> tuple[tuple[float, float], ...]:
        """All annotated clips of the video, sorted (absolute seconds)."""
        return tuple(sorted(c for w in self.windows for c in w.clips))

    def entries(self) -> list[dict[str, Any]]:
        """The split-file entries of this video's windows."""
        return [w.entry(self.youtube_id, float(self.duration)) for w in self.windows]


def video_id(index: int) -> str:
    """The id of video `index` (1-based): 'sample00001'."""
    return f"{ID_PREFIX}{index:05d}"


def _rng(seed: int, *parts: object) -> random.Random:
    # str seeds hash with SHA-512 in random.seed: stable across runs and PYTHONHASHSEED
    return random.Random(":".join(["repurpose-sample", str(seed), *map(str, parts)]))


def split_counts(n_videos: int, val_share: float, test_share: float) -> tuple[int, int]:
    """Videos in val and in test: the shares of n_videos, rounded, at least 1 each."""
    return max(1, round(val_share * n_videos)), max(1, round(test_share * n_videos))


def assign_splits(n_videos: int, seed: int, val_share: float = 0.2,
                  test_share: float = 0.2) -> list[str]:
    """Split of each video (index order): the val and test shares (>= 1 each), rest train."""
    n_val, n_test = split_counts(n_videos, val_share, test_share)
    labels = ["test"] * n_test + ["val"] * n_val + ["train"] * (n_videos - n_val - n_test)
    _rng(seed, "splits").shuffle(labels)
    return labels


def choose_duration(cfg: SampleConfig, rng: random.Random) -> int:
    """A whole number of seconds in [min_duration, max_duration] whose last window, if
    partial, is long enough for a clip (when such durations exist)."""
    lo, hi = math.ceil(cfg.min_duration), math.floor(cfg.max_duration)
    need = cfg.min_clip + 2 * EDGE
    tails = {d: _tail(d, cfg.window_seconds) for d in range(lo, hi + 1)}
    ok = [d for d, tail in tails.items() if tail == 0 or tail >= need]
    return rng.choice(ok or list(tails))


def _tail(duration: float, window: float) -> float:
    return duration - math.floor(duration / window) * window


def window_bounds(duration: int, window_seconds: float) -> list[tuple[float, float]]:
    """Cut [0, duration] into windows of at most `window_seconds` (the last one may be shorter).

    Like the real data: whole windows are [k*W, (k+1)*W]; the last ends at the video's
    duration as a float (e.g. [1800, 3600], [3600, 4307.0])."""
    bounds = []
    k = 0
    while k * window_seconds < duration:
        start = k * window_seconds
        end = (k + 1) * window_seconds
        bounds.append((start, end if end < duration else float(duration)))
        k += 1
    return bounds


def place_clips(
    start: float, end: float, min_clip: float, max_clip: float, rng: random.Random
) -> tuple[tuple[float, float], ...]:
    """A few clips inside [start, end]: lengths in [min_clip, max_clip], >= EDGE from the
    window's ends, >= MIN_GAP apart, bounds rounded to 2 decimals. Empty if none fits."""
    usable = (end - start) - 2 * EDGE
    if usable < min_clip:
        return ()
    longest = min(max_clip, usable)
    mean = (min_clip + longest) / 2
    max_k = max(1, int(FILL * (end - start) / mean))
    k = rng.randint((max_k + 1) // 2, max_k)
    while True:
        lengths = [rng.uniform(min_clip, longest) for _ in range(k)]
        slack = usable - sum(lengths) - (k - 1) * MIN_GAP
        if slack >= 0:
            break
        k -= 1  # k == 1 always fits: its length is <= usable
    cuts = sorted(rng.uniform(0, slack) for _ in range(k))
    clips = []
    t = start + EDGE
    prev_cut = 0.0
    for length, cut in zip(lengths, cuts, strict=True):
        t += cut - prev_cut
        prev_cut = cut
        a, b = round(t, 2), round(t + length, 2)
        clips.append((a, b))
        t += length + MIN_GAP
    return tuple(clips)


def plan_video(cfg: SampleConfig, index: int, split: str) -> VideoSpec:
    """The plan of video `index` (1-based)."""
    rng = _rng(cfg.seed, "video", index)
    duration = choose_duration(cfg, rng)
    windows = []
    for start, end in window_bounds(duration, cfg.window_seconds):
        clips = place_clips(start, end, cfg.min_clip, cfg.max_clip, rng)
        if clips:  # a tail too short for any clip is not a sample
            windows.append(SampleWindow(start, end, clips))
    return VideoSpec(
        youtube_id=video_id(index),
        split=split,
        duration=duration,
        seed=rng.getrandbits(31),
        windows=tuple(windows),
        width=cfg.width,
        height=cfg.height,
        fps=cfg.fps,
    )


def plan_sample(cfg: SampleConfig) -> list[VideoSpec]:
    """Plans of all sample videos, in id order."""
    cfg.validate()
    splits = assign_splits(cfg.n_videos, cfg.seed, cfg.val_share, cfg.test_share)
    return [plan_video(cfg, i + 1, splits[i]) for i in range(cfg.n_videos)]


def split_entries(specs: Sequence[VideoSpec]) -> dict[str, list[dict[str, Any]]]:
    """Split name -> its entries (videos in id order, windows in time order)."""
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in SPLITS}
    for spec in sorted(specs, key=lambda s: s.youtube_id):
        out[spec.split].extend(spec.entries())
    return out
