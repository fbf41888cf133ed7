"""Planted-signal feature sets with the real data's shape: the model-quality benchmark's data.

A window is Gaussian noise per second and modality plus planted directions:
- *clip* seconds carry `strength x` a clip direction in the modalities of `signal_in`;
- *boundary cues* (a scene-cut-like transient) mark the first and last `cue_seconds` of each
  clip in the modalities of `cues_in`, for a share `cue_share` of the clips;
- *distractors*: stretches outside clips where one modality (from `distractor_in`) shows the clip
  direction at full strength (it looks engaging there) but the others do not.
Directions are unit vectors, so `strength` is the per-second signal-to-noise ratio of one
modality. Shapes follow Repurpose-10K (field guide, section 1): window lengths up to 1,800 s
(about 39 % exactly 1,800, median ~1,200-1,300), ~10 clips per window, clip lengths log-normal
with median 36 s (p10 ~19, p90 ~66, clipped to 10-120 s), some windows starting past 0.

Everything is written in the project's real formats (split JSON, `windows.parquet`, feature
shards, a ledger), so the normal training, prediction and evaluation code reads it. numpy only.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from repurpose import io
from repurpose.features.shards import FeatureMeta, VideoFeatures, write_shard
from repurpose.splits.schema import SplitEntry
from repurpose.splits.windows import windows_table, write_windows

PAPER_DIMS = {"visual": 512, "audio": 2048, "text": 384}
MODALITIES = ("visual", "audio", "text")


@dataclass(frozen=True)
class Difficulty:
    """How hard a planted set is (see the module docstring)."""

    name: str
    strength: float  # per-second SNR of the clip direction in each modality of `signal_in`
    signal_in: tuple[str, ...] = MODALITIES
    cues_in: tuple[str, ...] = MODALITIES  # modalities with boundary cues
    cue_share: float = 1.0  # share of clips whose boundaries are cued
    cue_strength: float = 3.0  # SNR of a boundary cue
    cue_seconds: int = 2  # cued seconds at each end of a clip
    distractors: float = 0.0  # distractor stretches per clip
    distractor_in: tuple[str, ...] = ("visual",)


LEVELS: dict[str, Difficulty] = {
    "easy": Difficulty("easy", strength=2.0),
    "medium": Difficulty("medium", strength=1.0, cues_in=("visual",), cue_share=0.5,
                         distractors=0.5, distractor_in=("visual", "audio")),
    "one-modality": Difficulty("one-modality", strength=1.5, signal_in=("audio",),
                               cues_in=("audio",), cue_share=0.5),
    "hard": Difficulty("hard", strength=0.6, cues_in=("visual",), cue_share=0.3,
                       distractors=1.0, distractor_in=("visual", "audio", "text")),
}


@dataclass(frozen=True)
class PlantedSpec:
    """Sizes of a planted set."""

    counts: dict[str, int] = field(default_factory=lambda: {"train": 48, "val": 12, "test": 24})
    dims: dict[str, int] = field(default_factory=lambda: dict(PAPER_DIMS))
    max_window: int = 1800  # seconds
    min_window: int = 120
    seed: int = 0
    dtype: str = "float16"
    n_shards: int = 4


@dataclass(frozen=True)
class PlantedSet:
    """Where a planted set was written."""

    root: Path
    windows: Path
    features: Path
    ledger: Path
    splits: dict[str, Path]
    level: Difficulty
    spec: PlantedSpec


def window_length(rng: np.random.Generator, lo: int, hi: int) -> int:
    """A window length like Repurpose-10K's: 39 % at the cap, the rest skewed short."""
    if rng.random() < 0.39:
        return hi
    return int(lo + rng.beta(1.3, 1.7) * (hi - lo))


def clip_length(rng: np.random.Generator) -> float:
    """Log-normal clip length: median 36 s, p10 ~19 s, p90 ~66 s, within 10-120 s."""
    return float(np.clip(rng.lognormal(math.log(36.0), 0.48), 10.0, 120.0))


def place_clips(rng: np.random.Generator, duration: float) -> list[tuple[float, float]]:
    """Non-overlapping clips, about one per 125 s, with gaps of at least 8 s."""
    target = max(1, int(round(duration / 125 * rng.uniform(0.8, 1.2))))
    lengths = [clip_length(rng) for _ in range(target)]
    while lengths and sum(lengths) + 8 * (len(lengths) + 1) > 0.6 * duration:
        lengths.pop()
    if not lengths:
        lengths = [min(20.0, duration / 3)]
    slack = duration - sum(lengths) - 8 * (len(lengths) + 1)
    gaps = rng.dirichlet(np.ones(len(lengths) + 1)) * slack + 8
    clips, t = [], float(gaps[0])
    for length, gap in zip(lengths, gaps[1:], strict=True):
        a = round(t, 2)
        b = round(min(t + length, duration - 1), 2)
        clips.append((a, b))
        t += length + gap
    return clips


def _distractor_spans(rng: np.random.Generator, clips: list[tuple[float, float]],
                      duration: float, per_clip: float) -> list[tuple[int, int]]:
    """Stretches of 15-60 s outside every clip (at least 5 s away)."""
    n = rng.poisson(per_clip * len(clips)) if per_clip > 0 else 0
    spans = []
    for _ in range(n):
        for _attempt in range(20):
            length = int(rng.uniform(15, 60))
            a = int(rng.uniform(0, max(1, duration - length)))
            b = a + length
            if all(b + 5 <= ca or a >= cb + 5 for ca, cb in clips):
                spans.append((a, b))
                break
    return spans


def window_features(rng: np.random.Generator, directions: dict[str, np.ndarray],
                    level: Difficulty, dims: dict[str, int], n_rows: int,
                    clips: list[tuple[float, float]], duration: float) -> dict[str, np.ndarray]:
    """Per-modality [n_rows, D] float32 vectors of one window (row s = window second s)."""
    inside = np.zeros(n_rows)
    cue = {m: np.zeros(n_rows) for m in MODALITIES}
    for a, b in clips:
        inside[int(a): int(b) + 1] = 1.0
        if rng.random() < level.cue_share:
            for m in level.cues_in:
                k = level.cue_seconds
                cue[m][int(a): int(a) + k] = 1.0
                cue[m][max(int(b) + 1 - k, 0): int(b) + 1] = 1.0
    distract = {m: np.zeros(n_rows) for m in MODALITIES}
    for a, b in _distractor_spans(rng, clips, duration, level.distractors):
        m = level.distractor_in[int(rng.integers(len(level.distractor_in)))]
        distract[m][a: min(b, n_rows)] = 1.0
    out = {}
    for m in MODALITIES:
        x = rng.standard_normal((n_rows, dims[m]), dtype=np.float32)
        clip_dir, cue_dir = directions[m]
        amount = level.strength * (inside * (m in level.signal_in) + distract[m])
        x += (amount[:, None] * clip_dir[None, :]).astype(np.float32)
        x += (level.cue_strength * cue[m][:, None] * cue_dir[None, :]).astype(np.float32)
        out[m] = x
    return out


def _directions(rng: np.random.Generator, dims: dict[str, int]) -> dict[str, np.ndarray]:
    out = {}
    for m in MODALITIES:
        v = rng.standard_normal((2, dims[m]))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[m] = v.astype(np.float32)
    return out


def make_planted(root: str | os.PathLike[str], level: Difficulty | str = "medium",
                 spec: PlantedSpec | None = None) -> PlantedSet:
    """Write a planted set under `root`: splits/, prepared/windows.parquet, features/, ledger."""
    root = Path(root)
    spec = spec or PlantedSpec()
    level = LEVELS[level] if isinstance(level, str) else level
    rng = np.random.default_rng(spec.seed)
    directions = _directions(np.random.default_rng(10_007 + spec.seed), spec.dims)
    entries: list[SplitEntry] = []
    per_split: dict[str, list[dict]] = {}
    videos: list[tuple[str, dict[str, np.ndarray]]] = []
    n = 0
    for split, count in spec.counts.items():
        for _ in range(count):
            yid = f"pl{n:09d}"
            n += 1
            duration = window_length(rng, spec.min_window, spec.max_window)
            start = float(int(rng.integers(1, 4)) * 1800) if rng.random() < 0.25 else 0.0
            clips = place_clips(rng, duration)
            entries.append(SplitEntry(split, len(per_split.get(split, [])), yid, start,
                                      start + duration, tuple(clips)))
            per_split.setdefault(split, []).append({
                "youtube_id": yid, "timeRange": [start, start + duration],
                "segments": [[a + start, b + start] for a, b in clips],
                "timeRangeOffset": [0, duration], "segmentsOffset": [list(c) for c in clips],
                "coverage": round(sum(b - a for a, b in clips) / (start + duration), 4),
            })
            rows = window_features(rng, directions, level, spec.dims, duration, clips, duration)
            # the window's rows sit at absolute seconds start .. start + duration - 1
            videos.append((yid, {m: rows[m] for m in MODALITIES}, int(start)))
    features = root / "features"
    _write_shards(features, videos, spec)
    windows, splits = write_split_tables(root, entries, per_split)
    ledger = root / "ledger.parquet"
    ids = sorted(v[0] for v in videos)
    io.write_parquet(ledger, pa.table({"youtube_id": ids, "status": ["ok"] * len(ids)}))
    return PlantedSet(root, windows, features, ledger, splits, level, spec)


def write_split_tables(root: Path, entries: list[SplitEntry], per_split: dict[str, list[dict]]
                       ) -> tuple[Path, dict[str, Path]]:
    """`root/splits/<split>.json` for every split and the windows table
    `root/prepared/windows.parquet` of `entries`, as the prepare stage would leave them."""
    windows = root / "prepared" / "windows.parquet"
    write_windows(windows, windows_table(entries))
    splits = {}
    for split, items in per_split.items():
        splits[split] = root / "splits" / f"{split}.json"
        io.write_text(splits[split], json.dumps(items))
    return windows, splits


def _write_shards(folder: Path, videos: list, spec: PlantedSpec) -> None:
    """One shard family per modality; video k goes to shard k mod n_shards."""
    for m in MODALITIES:
        meta = FeatureMeta(modality=m, backend=f"planted-{m}", weights="none", dim=spec.dims[m],
                           dtype=spec.dtype)
        dtype = np.float16 if spec.dtype == "float16" else np.float32
        for shard in range(spec.n_shards):
            part = [VideoFeatures(yid, np.arange(off, off + len(rows[m]), dtype=np.int32),
                                  rows[m].astype(dtype))
                    for k, (yid, rows, off) in enumerate(videos) if k % spec.n_shards == shard]
            if part:
                part.sort(key=lambda v: v.youtube_id)
                write_shard(folder / m / f"part-{shard:05d}.parquet", part, meta)


def small_spec(**overrides: object) -> PlantedSpec:
    """A small planted spec for tests: short windows, small dims."""
    base = PlantedSpec(counts={"train": 8, "val": 3, "test": 3},
                       dims={"visual": 24, "audio": 32, "text": 16}, max_window=400,
                       min_window=150, dtype="float32", n_shards=2)
    return replace(base, **overrides)
