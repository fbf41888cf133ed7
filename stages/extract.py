"""Stage `extract`: per-second visual or audio vectors of every downloaded video, into shards.

    repurpose extract --modality visual --videos data/videos --ledger data/videos/ledger.parquet \
        --out data/features/visual --cache data/cache/features/visual

Reads params `extract.<modality>` (backend, device, batch_size, dtype, n_shards and the
backend's own sub-section). Writes `<out>/part-NNNNN.parquet` (the shard contract of
`repurpose.features.shards`), `<out>/videos.parquet` and `<out>/failures.json`; per-video results
are cached under `<cache>/<backend>/` and reused while the video, backend, params and weights are
unchanged. Exit status 1 if some video hit a non-media error (it is retried next run).
SIGINT/SIGTERM stop the ffmpeg children and end the stage at once; finished videos stay in
the cache, temporary files are removed at the next start (`repurpose.signals`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repurpose.features.config import ModalityConfig
from repurpose.features.extract import EXTRACT_MODALITIES, run_extract
from repurpose.params import ParamsError, load_section
from repurpose.pervideo.inputs import load_videos
from repurpose.runner import Mapper
from repurpose.signals import stop_children_on_signal

SECTION = "extract"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of the stage."""
    parser.add_argument("--modality", required=True, choices=EXTRACT_MODALITIES)
    parser.add_argument("--videos", required=True, type=Path, help="folder of downloaded videos")
    parser.add_argument("--ledger", required=True, type=Path, help="download ledger (Parquet)")
    parser.add_argument("--out", required=True, type=Path, help="shard folder (DVC output)")
    parser.add_argument("--cache", required=True, type=Path,
                        help="per-video result cache (not a DVC output)")
    parser.add_argument("--backend", default=None,
                        help="override params extract.<modality>.backend")
    parser.add_argument("--retry-failed", action="store_true",
                        help="recompute videos whose cached result is a media failure")


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Extract, write shards, print what was computed and reused."""
    section = load_section(args.params, SECTION)
    sub = section.get(args.modality)
    if not isinstance(sub, dict):
        raise ParamsError(f"{args.params}: missing section '{SECTION}.{args.modality}'")
    cfg = ModalityConfig.from_section(args.modality, sub, f"{SECTION}.{args.modality}",
                                      backend_override=args.backend)
    videos = load_videos(args.ledger, args.videos)
    with stop_children_on_signal(f"extract {args.modality}"):
        report = run_extract(cfg, videos, args.out, args.cache, mapper,
                             retry_failed=args.retry_failed)
    for line in report.lines():
        print(f"extract {line}" if not line.startswith(" ") else line)
    return 1 if report.errors else 0
