"""Stage `embed_text`: per-second text vectors from the stored transcripts, into shards.

    repurpose embed_text --transcripts data/transcripts --ledger data/videos/ledger.parquet \
        --out data/features/text --cache data/cache/features/text

Reads params `embed_text` (backend, device, batch_size, dtype, n_shards and the backend's own
sub-section). The per-second rule is in `repurpose.features.text`. Writes the shards,
`<out>/videos.parquet` and `<out>/failures.json`; results are cached per video under
`<cache>/<backend>/`, keyed by the transcript's key, backend, params and weights.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repurpose.features.config import ModalityConfig
from repurpose.features.text import run_embed_text
from repurpose.params import load_section
from repurpose.pervideo.inputs import load_videos
from repurpose.runner import Mapper
from repurpose.signals import stop_children_on_signal

SECTION = "embed_text"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI arguments of the stage."""
    parser.add_argument("--transcripts", required=True, type=Path,
                        help="transcript folder (output of `repurpose transcribe`)")
    parser.add_argument("--ledger", required=True, type=Path, help="download ledger (Parquet)")
    parser.add_argument("--out", required=True, type=Path, help="shard folder (DVC output)")
    parser.add_argument("--cache", required=True, type=Path,
                        help="per-video result cache (not a DVC output)")
    parser.add_argument("--backend", default=None, help="override params embed_text.backend")


def main(args: argparse.Namespace, mapper: Mapper) -> int:
    """Embed what changed; print what was computed and reused."""
    cfg = ModalityConfig.from_section("text", load_section(args.params, SECTION), SECTION,
                                      backend_override=args.backend)
    videos = load_videos(args.ledger, Path(args.ledger).parent, hash_missing=False)
    with stop_children_on_signal("embed_text"):
        report = run_embed_text(cfg, videos, args.transcripts, args.out, args.cache, mapper)
    for line in report.lines():
        print(f"embed_text {line}" if not line.startswith(" ") else line)
    return 1 if report.errors else 0
