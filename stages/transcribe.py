"""Stage `transcribe`: one transcript (segments and words with times) per downloaded video.

    repurpose transcribe --videos data/videos --ledger data/videos/ledger.parquet \
        --out data/transcripts [--cache data/cache/transcripts]

Reads params `transcribe` (backend, device, batch_size and the backend's own sub-section).
Writes `<out>/<youtube_id>.json` (see `repurpose.asr.transcribe`), `<out>/videos.parquet` and
`<out>/failures.json`. A transcript is reused while the video, backend, params and weights are
unchanged (from `--out`, or from `--cache`, which survives DVC deleting outputs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repurpose.asr.backends import asr_backend_from_section
from repurpose.asr.transcribe import run_transcribe
from repurpose.params import load_section
from repurpose.pervideo.inputs import load_videos
from repurpose.runner import Mapper
from repurpose.signals import stop_children_on_signal

SECTION = "transcribe"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of the stage."""
    parser.add_argument("--videos", required=True, type=Path, help="folder of downloaded videos")
    parser.add_argument("--ledger", required=True, type=Path, help="download ledger (Parquet)")
    parser.add_argument("--out", required=True, type=Path, help="transcript folder (DVC output)")
    parser.add_argument("--cache", default=None, type=Path,
                        help="per-video transcript cache (not a DVC output; optional)")
    parser.add_argument("--backend", default=None, help="override params transcribe.backend")
    parser.add_argument("--retry-failed", action="store_true",
                        help="retry videos whose cached result is a media failure")


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Transcribe what changed; print what was computed and reused."""
    backend = asr_backend_from_section(load_section(args.params, SECTION), SECTION,
                                       backend_override=args.backend)
    videos = load_videos(args.ledger, args.videos)
    with stop_children_on_signal("transcribe"):
        report = run_transcribe(backend, videos, args.out, args.cache, mapper,
                                retry_failed=args.retry_failed)
    for line in report.lines():
        print(f"transcribe {line}" if not line.startswith(" ") else line)
    return 1 if report.errors else 0
