"""Stage `sample`: synthesise the built-in sample dataset (videos + Repurpose-10K split JSON).

Reads params section `sample`; writes `<out-videos>/<youtube_id>.mp4` (+ `.script.json`, the
spoken lines with times) and `<out-splits>/{train,val,test}.json`. Deterministic from the seed.
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path

from repurpose import io
from repurpose.errors import UserError
from repurpose.params import load_section
from repurpose.runner import Mapper
from repurpose.sample.spec import (
    ID_PREFIX,
    SECTION,
    SPLITS,
    SampleConfig,
    plan_sample,
    split_entries,
)
from repurpose.sample.synth import RenderJob, render_video
from repurpose.signals import stop_children_on_signal

log = logging.getLogger(__name__)

_OWN_FILE = re.compile(rf"^{ID_PREFIX}\d{{5}}(\.mp4|\.script\.json)$")
_STALE_WAV = re.compile(rf"^\.{ID_PREFIX}\d{{5}}\.[a-z0-9_]{{8}}\.wav$")  # render_video's


class SampleError(UserError):
    """Some sample videos could not be generated."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of the stage."""
    parser.add_argument(
        "--out-splits",
        default="data/datasets/sample",
        help="folder for train.json, val.json, test.json (default: %(default)s)",
    )
    parser.add_argument(
        "--out-videos",
        default="data/sample_videos",
        help="folder for <youtube_id>.mp4 (default: %(default)s)",
    )


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Plan, render every video through `mapper`, then write the split files."""
    cfg = SampleConfig.from_section(load_section(args.params, SECTION))
    specs = plan_sample(cfg)
    out_videos, out_splits = Path(args.out_videos), Path(args.out_splits)
    jobs = [RenderJob(spec, str(out_videos)) for spec in specs]

    results: dict[str, dict] = {}
    failures: list[str] = []
    _remove_stale_tmp(out_videos, out_splits)
    with stop_children_on_signal("sample"):
        for job, result in mapper(render_video, jobs, key=lambda j: j.youtube_id):
            if isinstance(result, BaseException):
                log.error("sample: %s failed: %s", job.youtube_id, result)
                failures.append(f"{job.youtube_id}: {type(result).__name__}: {result}")
            else:
                results[job.youtube_id] = result
    if failures:
        raise SampleError(
            f"sample: {len(failures)} of {len(jobs)} videos could not be generated "
            f"(split files not written): " + "; ".join(sorted(failures))
        )

    entries = split_entries(specs)
    for name in SPLITS:
        io.write_json(out_splits / f"{name}.json", entries[name])
    stale = _remove_stale(out_videos, {s.youtube_id for s in specs})

    n_clips = sum(len(s.clips) for s in specs)
    clip_s = sum(b - a for s in specs for a, b in s.clips)
    total_s = sum(s.duration for s in specs)
    per_split = ", ".join(
        f"{name} {_count(len({e['youtube_id'] for e in entries[name]}), 'video')}"
        f" / {_count(len(entries[name]), 'window')}"
        for name in SPLITS
    )
    size_mb = sum(r["bytes"] for r in results.values()) / 1e6
    print(
        f"sample: {len(specs)} videos, {total_s / 60:.1f} min, {size_mb:.1f} MB "
        f"({cfg.width}x{cfg.height} @ {cfg.fps} fps) -> {out_videos}"
    )
    print(f"sample: {per_split} -> {out_splits}")
    share = clip_s / total_s
    print(f"sample: {_count(n_clips, 'clip')}, {clip_s / 60:.1f} min ({share:.0%} of the video)")
    if stale:
        print(f"sample: removed {stale} stale file(s) of an earlier, larger sample")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _remove_stale_tmp(out_videos: Path, out_splits: Path) -> None:
    """Delete what a killed run left half-written: hidden `.tmp` files of this stage's videos,
    scripts and split files, and its temporary soundtracks (`.<id>.XXXXXXXX.wav`)."""
    if out_videos.is_dir():
        for path in out_videos.iterdir():
            if _STALE_WAV.match(path.name):
                path.unlink(missing_ok=True)
        io.remove_stale_tmp(out_videos, names=_stem_names(out_videos))
    io.remove_stale_tmp(out_splits, names=[f"{name}.json" for name in SPLITS])


def _stem_names(folder: Path) -> list[str]:
    """`<id>.mp4` / `<id>.script.json` names of the temporary files in `folder`."""
    names = []
    for path in folder.iterdir():
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            name = path.name[1:].rsplit(".", 2)[0]
            if _OWN_FILE.match(name):
                names.append(name)
    return names


def _remove_stale(folder: Path, keep: set[str]) -> int:
    """Delete this stage's files in `folder` for ids no longer in the sample."""
    removed = 0
    for path in folder.iterdir():
        if _OWN_FILE.match(path.name) and path.name.split(".")[0] not in keep:
            path.unlink()
            removed += 1
    return removed
