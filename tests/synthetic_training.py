"""Test fixture (not in the package): a small synthetic dataset: split JSON files, the windows
table, feature shards whose vectors carry a learnable signal, and a download ledger.

Never a substitute for real features: the vectors are noise plus directions that mark clip
seconds, clip boundaries (like a scene cut) and, inside a clip, the distances to its start and
end (scaled by 1/20), so that a small model learns to localise in a few epochs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from repurpose import io
from repurpose.features.shards import FeatureMeta, VideoFeatures, write_shard
from repurpose.model.tal import TalConfig
from repurpose.quality.planted import write_split_tables
from repurpose.splits.schema import SplitEntry

DIMS = {"visual": 16, "audio": 24, "text": 8}


@dataclass(frozen=True)
class SyntheticPaths:
    """Where the pieces were written."""

    root: Path
    windows: Path
    features: Path
    ledger: Path
    splits: dict[str, Path]
    failed_video: str | None
    missing_audio_video: str | None


def _clips(rng: np.random.Generator, duration: float) -> list[tuple[float, float]]:
    clips, t = [], float(rng.uniform(3, 20))
    while True:
        length = float(rng.uniform(14, 40))
        if t + length > duration - 2:
            break
        clips.append((round(t, 1), round(t + length, 1)))
        t += length + float(rng.uniform(10, 45))
    return clips or [(2.0, min(duration - 1, 20.0))]


def make_synthetic(root: str | os.PathLike[str], *, counts: dict[str, int] | None = None,
                   durations: tuple[int, int] = (150, 330), dims: dict[str, int] | None = None,
                   seed: int = 0, signal: float = 1.5, extras: bool = True) -> SyntheticPaths:
    """Write a synthetic dataset under `root`; with `extras`, one extra train window's video is
    marked failed in the ledger and another extra one lacks audio features."""
    root = Path(root)
    counts = counts or {"train": 10, "val": 4, "test": 6}
    dims = dims or DIMS
    rng = np.random.default_rng(seed)
    directions = {m: rng.normal(size=(5, d)) for m, d in dims.items()}
    entries: list[SplitEntry] = []
    per_split: dict[str, list[dict]] = {}
    videos: dict[str, dict[str, np.ndarray]] = {}
    plan = [(s, k) for s, c in counts.items() for k in range(c)]
    if extras:
        plan += [("train", counts.get("train", 0)), ("train", counts.get("train", 0) + 1)]
    for n, (split, k) in enumerate(plan):
        yid = f"syn{n:08d}"
        duration = int(rng.integers(*durations))
        start = float(60 * (k % 3 == 1))  # some windows start past 0
        clips = _clips(rng, duration)
        entry = SplitEntry(split, len(per_split.get(split, [])), yid, start, start + duration,
                           tuple(clips))
        entries.append(entry)
        per_split.setdefault(split, []).append({
            "youtube_id": yid, "timeRange": [start, start + duration],
            "segments": [[a + start, b + start] for a, b in clips],
            "timeRangeOffset": [0, duration], "segmentsOffset": [list(c) for c in clips],
            "coverage": 0.1,
        })
        total = int(start + duration) + 1
        inside = np.zeros(total)
        starts = np.zeros(total)
        ends = np.zeros(total)
        left = np.zeros(total)  # seconds since the clip began / 20, inside clips
        right = np.zeros(total)  # seconds until it ends / 20
        sec = np.arange(total, dtype=np.float64)
        for a, b in clips:
            inside[int(a + start): int(b + start) + 1] = 1
            starts[int(a + start)] = 1
            ends[int(b + start)] = 1
            span = (sec >= a + start) & (sec <= b + start)
            left[span] = (sec[span] - a - start) / 20
            right[span] = (b + start - sec[span]) / 20
        videos[yid] = {}
        for m, d in dims.items():
            noise = rng.normal(size=(total, d))
            sig = (inside[:, None] * directions[m][0] + starts[:, None] * directions[m][1]
                   + ends[:, None] * directions[m][2] + left[:, None] * directions[m][3]
                   + right[:, None] * directions[m][4])
            videos[yid][m] = (noise + signal * sig).astype(np.float32)
    ids = sorted(videos)
    failed = ids[-2] if extras else None
    no_audio = ids[-1] if extras else None
    features = root / "features"
    for m, d in dims.items():
        meta = FeatureMeta(modality=m, backend=f"synthetic-{m}", weights="none", dim=d,
                           dtype="float32")
        vids = [VideoFeatures(yid, np.arange(len(videos[yid][m]), dtype=np.int32), videos[yid][m])
                for yid in ids if not (m == "audio" and yid == no_audio)]
        half = len(vids) // 2
        write_shard(features / m / "part-00000.parquet", vids[:half], meta)
        write_shard(features / m / "part-00001.parquet", vids[half:], meta)
    windows, splits = write_split_tables(root, entries, per_split)
    ledger = root / "videos" / "ledger.parquet"
    io.write_parquet(ledger, pa.table({
        "youtube_id": ids,
        "status": ["failed_permanent" if yid == failed else "ok" for yid in ids],
    }))
    return SyntheticPaths(root, windows, features, ledger, splits, failed, no_audio)


def tiny_params(**overrides: dict) -> dict:
    """A complete params dict for a tiny CPU model (tests and smoke runs); `overrides` maps a
    section name to the keys to change in it."""
    params = {
        "orchestration": {"prefect": False, "task_runner": "serial", "workers": 1},
        "model": {"arch": "mmct",
                  "mmct": {"d_model": 32, "n_heads": 4, "ffn_dim": 64, "proj_hidden": 64,
                           "self_layers": 1, "caption_layers": 1, "cross_layers": 1,
                           "head_hidden": 32, "head_activation": False, "dropout": 0.0,
                           "attention": "sdpa", "reg_activation": "softplus",
                           "reg_scale": 30.0, "quality": True, "fuse_text": True,
                           "pos_scale": 0.1},
                  "linear": {"hidden": 0, "dropout": 0.0, "reg_scale": 30.0},
                  "tal": TalConfig(d_model=32, n_heads=4, levels=4, window=5, ffn_dim=64,
                                   head_layers=1).to_dict()},
        "train": {"seed": 0, "epochs": 30, "warmup_epochs": 1, "batch_size": 2, "patience": 0,
                  "optimizer": "adam", "lr": 0.002, "weight_decay": 0.0001, "grad_clip": 1.0,
                  "w_cls": 0.2, "w_reg": 0.8, "focal_alpha": 0.7, "focal_gamma": 2.0,
                  "align_weight": 0.0, "align_tau": 0.1, "w_quality": 1.0,
                  "select_metric": "map",
                  "device": "cpu", "amp": "auto", "num_workers": 0, "cache_videos": 64},
        "postprocess": {"threshold": 0.5, "top_k": 1000, "min_length": 10, "max_length": 90,
                        "sigma": 0.5, "min_score": 0.01, "per_minute": 0.3, "min_segments": 1,
                        "fallback": True, "decoder": "regression", "smooth": 1, "gap": 0, "edge": 3,
                        "cap": True},
        "evaluate": {"thresholds": [0.5, 0.6, 0.7, 0.8, 0.9],
                     "length_buckets": [60, 300, 900, 1800], "baseline_seed": 0,
                     "baseline_draws": 5},
        "report": {"timelines": 4},
    }
    for section, values in overrides.items():
        params.setdefault(section, {}).update(values)
    return params


def write_params(path: str | os.PathLike[str], **overrides: dict) -> Path:
    """Write `tiny_params(**overrides)` as YAML."""
    import yaml

    io.write_text(path, yaml.safe_dump(tiny_params(**overrides), sort_keys=False))
    return Path(path)


def train_from_params(params_path: str | os.PathLike[str], windows: str | os.PathLike[str],
                      features: str | os.PathLike[str], ledger: str | os.PathLike[str] | None,
                      out: str | os.PathLike[str], arch: str | None = None, **kwargs):  # noqa: ANN201
    """What `repurpose train` does: parse the params file once at the edge, then train."""
    from repurpose.params import load_params
    from repurpose.training.train import train_from_settings, train_settings

    return train_from_settings(train_settings(load_params(params_path), arch), windows,
                               features, ledger, out, **kwargs)
