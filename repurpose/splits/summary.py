"""Dataset statistics of validated split files, printed by `repurpose validate` and `prepare`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from repurpose.splits.schema import ParsedSplit

FULL_WINDOW = 1800.0  # seconds: Repurpose-10K cuts longer videos into windows of this length


@dataclass(frozen=True)
class SplitSummary:
    """Counts and distributions over one or more split files."""

    files: int
    windows: int
    videos: int
    clips: int
    window_median: float
    full_windows: int
    clips_per_window_mean: float
    clips_per_window_min: int
    clips_per_window_max: int
    clip_median: float
    clip_p10: float
    clip_p90: float
    clip_min: float
    clip_max: float
    coverage_min: float | None
    windows_past_zero: int
    duplicates: dict[str, int]
    shared_ids: dict[str, int]  # "val+test" -> number of ids in both

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        cov = "n/a" if self.coverage_min is None else f"{self.coverage_min:.3f}"
        dup = ", ".join(f"{k}: {v}" for k, v in self.duplicates.items() if v) or "none"
        shared = ", ".join(f"{k}: {v}" for k, v in self.shared_ids.items()) or "none"
        return [
            f"windows: {self.windows:,} from {self.files} file(s), {self.videos:,} unique videos, "
            f"{self.clips:,} clips",
            f"window length: median {self.window_median:,.0f} s; "
            f"{self.full_windows:,} are exactly {FULL_WINDOW:,.0f} s; "
            f"{self.windows_past_zero:,} start past 0",
            f"clips per window: mean {self.clips_per_window_mean:.1f} "
            f"({self.clips_per_window_min}-{self.clips_per_window_max})",
            f"clip length: median {self.clip_median:.1f} s, p10 {self.clip_p10:.1f} s, "
            f"p90 {self.clip_p90:.1f} s, min {self.clip_min:.2f} s, max {self.clip_max:.1f} s",
            f"coverage min: {cov}",
            f"warning: exact duplicate entries (kept once by prepare): {dup}",
            f"warning: ids shared between splits: {shared}",
        ]


def summarize(parsed: list[ParsedSplit]) -> SplitSummary:
    """Statistics over validated split files, counting every entry as the files hold it."""
    entries = [e for p in parsed for e in p.entries]
    if not entries:
        raise ValueError("no entries to summarise")
    lengths = np.array([e.duration for e in entries])
    per_window = np.array([len(e.clips) for e in entries])
    clip_len = np.array([b - a for e in entries for a, b in e.clips])
    coverages = [e.coverage for e in entries if e.coverage is not None]
    ids_by_split: dict[str, set[str]] = defaultdict(set)
    for e in entries:
        ids_by_split[e.split].add(e.youtube_id)
    names = sorted(ids_by_split)
    shared = {
        f"{a}+{b}": len(ids_by_split[a] & ids_by_split[b])
        for i, a in enumerate(names) for b in names[i + 1:]
        if ids_by_split[a] & ids_by_split[b]
    }
    return SplitSummary(
        files=len(parsed),
        windows=len(entries),
        videos=len({e.youtube_id for e in entries}),
        clips=int(per_window.sum()),
        window_median=float(np.median(lengths)),
        full_windows=int(np.sum(np.abs(lengths - FULL_WINDOW) < 1e-6)),
        clips_per_window_mean=float(per_window.mean()),
        clips_per_window_min=int(per_window.min()),
        clips_per_window_max=int(per_window.max()),
        clip_median=float(np.median(clip_len)),
        clip_p10=float(np.percentile(clip_len, 10)),
        clip_p90=float(np.percentile(clip_len, 90)),
        clip_min=float(clip_len.min()),
        clip_max=float(clip_len.max()),
        coverage_min=min(coverages) if coverages else None,
        windows_past_zero=int(sum(e.start > 0 for e in entries)),
        duplicates={p.split: len(p.duplicates) for p in parsed},
        shared_ids=shared,
    )
