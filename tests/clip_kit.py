"""Shared by the `repurpose clip` tests: a tiny clip model trained in seconds on synthetic
shards whose metadata names the real offline backends, a speech video, and `run_clip`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from repurpose.cli import main as cli

LINES = (
    "Welcome back everyone, today we test a new camera.",
    "Okay, let me just check the settings here.",
    "Watch closely, this trick is going to blow your mind.",
    "Wow, look at that, this is absolutely amazing!",
    "Now we wait a little while for the light to change.",
    "Here is the big reveal.",
    "Remember this tip, it will save you hours.",
    "That was incredible, I cannot believe it actually worked.",
    "Alright, that is all for today, thanks for watching.",
    "See you next time, and do not forget to subscribe.",
)
SIGNAL = 0.0
SIZE = (224, 128)  # 9:16 of height 128 is exactly 72 x 128

FEATURE_PARAMS = {
    "transcribe": {"backend": "faster-whisper", "device": "cpu", "batch_size": 8,
                   "faster-whisper": {"model": "package", "compute_type": "int8",
                                      "language": "en", "beam_size": 1, "vad": True,
                                      "word_timestamps": True, "batched": True}},
    "extract": {
        "visual": {"backend": "efficientnet-lite0", "device": "cpu", "batch_size": 16,
                   "dtype": "float16", "n_shards": 4,
                   # small frames keep the tests quick (the network pools over any size)
                   "efficientnet-lite0": {"weights": "package", "resize": 72, "crop": 64}},
        "audio": {"backend": "logmel", "device": "cpu", "batch_size": 64, "dtype": "float16",
                  "n_shards": 4, "logmel": {"sample_rate": 16000, "n_mels": 64}},
    },
    "embed_text": {"backend": "minilm", "device": "cpu", "batch_size": 64, "dtype": "float16",
                   "n_shards": 4, "minilm": {"weights": "package"}},
    # the download stage's whole section (read by the same strict parser; source, url_template
    # and cut do not apply to a URL clip fetches whole)
    "download": {"source": "local", "url_template": None,
                 "format": "bv*[height<=360]+ba/b[height<=360]/b", "cut": "copy", "retries": 0,
                 "backoff_base": 0.1, "backoff_max": 0.2, "timeout": 10,
                 "rate_limit_seconds": 0, "cookies_file": None, "max_failed_fraction": 0.2,
                 "deadline": 120},
}
# the model's own postprocess (recorded in model.json at training): short clips, several per
# window, so a 50-s video gives a handful of candidates
POSTPROCESS = {"threshold": 0.5, "top_k": 1000, "min_length": 4, "max_length": 20,
               "sigma": 0.5, "min_score": 0.0, "per_minute": 2.0, "min_segments": 3,
               "fallback": True}


def real_metas(params: dict) -> dict:
    """FeatureMeta per modality exactly as the extract / embed_text stages write them."""
    from repurpose.asr.backends import asr_backend_from_section
    from repurpose.features.config import ModalityConfig

    sections = {"visual": (params["extract"]["visual"], "extract.visual"),
                "audio": (params["extract"]["audio"], "extract.audio"),
                "text": (params["embed_text"], "embed_text")}
    asr = asr_backend_from_section(params["transcribe"])
    metas = {}
    for m, (section, where) in sections.items():
        cfg = ModalityConfig.from_section(m, section, where)
        extra = {"asr": [f"{asr.key}@{asr.weights_identity()}"]} if m == "text" else None
        metas[m] = cfg.meta(cfg.backend.weights_identity(), extra)
    return metas


def build_model(root: Path, epochs: int = 30) -> tuple[Path, Path]:
    """(params.yaml, model folder): a tiny model trained through the real training code on
    synthetic vectors carrying the real backends' identity and dims."""
    from repurpose.features.shards import FeatureStore, shard_paths, write_shard
    from tests.synthetic_training import make_synthetic, tiny_params, train_from_params

    params = tiny_params(train={"epochs": epochs, "warmup_epochs": 1, "batch_size": 2,
                                "lr": 0.005, "select_metric": "loss"},
                         postprocess=POSTPROCESS)
    params.update(FEATURE_PARAMS)
    params_path = root / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    metas = real_metas(params)
    data = make_synthetic(root / "data", counts={"train": 4, "val": 2}, durations=(50, 80),
                          dims={m: meta.dim for m, meta in metas.items()}, extras=False,
                          signal=SIGNAL)
    for m, meta in metas.items():  # same vectors, relabelled with the real producer
        store = FeatureStore(data.features / m)
        videos = store.read_many(store.videos)
        for path in shard_paths(data.features / m):
            path.unlink()
        write_shard(data.features / m / "part-00000.parquet", list(videos.values()), meta)
    train_from_params(params_path, data.windows, data.features, data.ledger, root / "models")
    return params_path, root / "models"


def make_input(path: Path, lines: tuple[str, ...] = LINES, gap: float = 1.2,
               fps: float = 10) -> Path:
    """A video with real speech (espeak-ng): `lines` spoken with pauses, testsrc2 picture."""
    from repurpose.sample.tts import speak
    from tests.synthetic_media import speech_video

    parts, sr = [], 22050
    for text in lines:
        samples, sr = speak(text)
        parts += [samples, np.zeros(int(gap * sr), np.int16)]
    return speech_video(path, np.concatenate(parts), sr, lead=1.0, tail=1.0, size=SIZE,
                        fps=fps)


# --- fixtures: one model, one input video, one first run -------------------------------------


def run_clip(setup: dict, input_: str, out: Path, *extra: str) -> tuple[int, str, str]:
    """`repurpose clip` in this process: (exit status, stdout, stderr)."""
    import contextlib
    import io

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        rc = cli(["clip", input_, "--model", str(setup["model"]), "--out", str(out),
                  "--params", str(setup["params"]), *extra])
    return rc, stdout.getvalue(), stderr.getvalue()
