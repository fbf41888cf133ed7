"""`repurpose clip INPUT --model models --out clips/`: one new video -> publishable clips."""

from __future__ import annotations

import argparse
import textwrap

HELP = "repurpose one video (a file or an http(s) URL) into clip files with a trained model"
DESCRIPTION = textwrap.fill(
    "Repurpose one video into short clips with a trained model: transcribe it, compute its "
    "features with the backends recorded in the model's model.json, predict clips per window, "
    "and write clip-01.mp4 ... (best first, H.264 + AAC) and clips.json to --out. Per-video "
    "work is cached in <out>/.work/, so rerunning with other export options is quick."
)
EPILOG = (
    "examples:\n"
    "  repurpose clip talk.mp4 --model models --out clips/\n"
    "  repurpose clip https://example.com/video.mp4 --out clips/ --max-clips 3 --vertical "
    "--subtitles srt"
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `repurpose clip`."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("input", metavar="INPUT",
                        help="a video file, or an http(s) URL yt-dlp can download")
    parser.add_argument("--model", default="models",
                        help="trained model folder (model.safetensors + model.json; "
                             "default: %(default)s)")
    parser.add_argument("--out", default="clips",
                        help="output folder for the clips and clips.json (default: %(default)s)")
    parser.add_argument("--params", default=None,
                        help="params file for the transcribe and download sections and the "
                             "backends' weights locations (default: ./params.yaml if present, "
                             "else built-in defaults)")
    parser.add_argument("--max-clips", type=_positive_int, default=10, metavar="N",
                        help="keep at most N clips, best first (default: %(default)s)")
    parser.add_argument("--min-score", type=float, default=None, metavar="S",
                        help="keep only clips scoring at least S (0-1; default: no limit)")
    parser.add_argument("--vertical", action="store_true",
                        help="centre-crop the clips to 9:16 (full height, even dimensions)")
    parser.add_argument("--subtitles", choices=("none", "srt", "burn"), default="none",
                        help="none; srt: write clip-NN.srt beside each clip; burn: render them "
                             "into the picture (needs ffmpeg with libass) (default: "
                             "%(default)s)")
    parser.add_argument("--window-seconds", type=_positive_int, default=1800, metavar="S",
                        help="predict over windows of at most S seconds, as the dataset's "
                             "(default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    """Run the command; a UserError becomes `error: ...` and exit status 2 in repurpose.cli."""
    from repurpose.clip.run import ClipOptions, run

    opts = ClipOptions(model=args.model, out=args.out, params=args.params,
                       max_clips=args.max_clips, min_score=args.min_score,
                       vertical=args.vertical, subtitles=args.subtitles,
                       window_seconds=args.window_seconds)
    run(args.input, opts)
    return 0
