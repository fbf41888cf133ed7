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
    "  repurpose clip talk.mp4 --model models --out clips/   # then open clips/index.html\n"
    "  repurpose clip https://example.com/video.mp4 --out clips/ --top 3 --vertical "
    "--subtitles burn\n"
    "  repurpose clip talk.mp4 --min-duration 15 --max-duration 60 --subtitles srt"
)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text}") from exc
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text}") from exc
    if w < 2 or h < 2 or w % 2 or h % 2 or max(w, h) > 8192:
        raise argparse.ArgumentTypeError(f"expected two even sizes 2-8192, got {text}")
    return w, h


def _colour(text: str) -> str:
    from repurpose.clip.subtitles import ass_colour

    try:
        ass_colour(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return text if text.startswith("#") else f"#{text}"


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
    parser.add_argument("--max-clips", "--top", dest="max_clips", type=_positive_int,
                        default=10, metavar="N",
                        help="keep at most N clips, best first (default: %(default)s)")
    parser.add_argument("--min-duration", type=_positive_float, default=None, metavar="S",
                        help="keep only clips at least S seconds long (after snapping)")
    parser.add_argument("--max-duration", type=_positive_float, default=None, metavar="S",
                        help="keep only clips at most S seconds long (after snapping)")
    parser.add_argument("--min-score", type=float, default=None, metavar="S",
                        help="keep only clips scoring at least S (0-1; default: no limit)")
    parser.add_argument("--vertical", action="store_true",
                        help="crop the clips to 9:16 around the faces (else the motion, else "
                             "the centre) with a smooth, speed-limited pan, scaled to --size")
    parser.add_argument("--size", type=_size, default=(1080, 1920), metavar="WxH",
                        help="--vertical output size (default: 1080x1920)")
    parser.add_argument("--reframe", choices=("auto", "centre"), default="auto",
                        help="--vertical crop: auto follows faces / motion; centre never moves "
                             "(default: %(default)s)")
    parser.add_argument("--no-snap", dest="snap", action="store_false",
                        help="keep the model's boundaries (default: snap them to sentences, "
                             "words and shot cuts)")
    parser.add_argument("--subtitles", choices=("none", "srt", "ass", "burn"), default="none",
                        help="none; srt / ass: write clip-NN.srt / clip-NN.ass (word-by-word "
                             "highlighted captions) beside each clip; burn: render the "
                             "captions into the picture (needs ffmpeg with libass) (default: "
                             "%(default)s)")
    _add_caption_arguments(parser)
    parser.add_argument("--window-seconds", type=_positive_int, default=1800, metavar="S",
                        help="predict over windows of at most S seconds, as the dataset's "
                             "(default: %(default)s)")


def _add_caption_arguments(parser: argparse.ArgumentParser) -> None:
    """The caption style options (used by --subtitles ass / burn)."""
    captions = parser.add_argument_group("captions (--subtitles ass / burn)")
    captions.add_argument("--caption-style", choices=("karaoke", "plain"), default="karaoke",
                          help="karaoke: the word being spoken is highlighted; plain: whole "
                               "lines (default: %(default)s)")
    captions.add_argument("--caption-font", default="DejaVu Sans", metavar="NAME",
                          help="font family (default: %(default)s)")
    captions.add_argument("--caption-size", type=_positive_int, default=None, metavar="PX",
                          help="font size in pixels (default: 1/18 of the picture height)")
    captions.add_argument("--caption-colour", type=_colour, default="#FFFFFF", metavar="#RGB",
                          help="text colour as #RRGGBB (default: %(default)s)")
    captions.add_argument("--caption-highlight", type=_colour, default="#FFD400",
                          metavar="#RGB", help="colour of the spoken word (default: "
                                               "%(default)s)")
    captions.add_argument("--caption-outline", type=float, default=3.0, metavar="PX",
                          help="outline width in pixels (default: %(default)s)")
    captions.add_argument("--caption-outline-colour", type=_colour, default="#000000",
                          metavar="#RGB", help="outline colour (default: %(default)s)")


def main(args: argparse.Namespace) -> int:
    """Run the command; a UserError becomes `error: ...` and exit status 2 in repurpose.cli."""
    from repurpose.clip.pipeline import ClipOptions, run
    from repurpose.clip.subtitles import CaptionStyle

    style = CaptionStyle(font=args.caption_font, size=args.caption_size or 0,
                         colour=args.caption_colour, highlight=args.caption_highlight,
                         outline_colour=args.caption_outline_colour,
                         outline=max(0.0, args.caption_outline),
                         karaoke=args.caption_style == "karaoke")
    opts = ClipOptions(model=args.model, out=args.out, params=args.params,
                       max_clips=args.max_clips, min_score=args.min_score,
                       vertical=args.vertical, subtitles=args.subtitles,
                       window_seconds=args.window_seconds, min_duration=args.min_duration,
                       max_duration=args.max_duration, size=args.size, reframe=args.reframe,
                       snap=args.snap, captions=style)
    run(args.input, opts)
    return 0
