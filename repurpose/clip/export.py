"""Writing clip files with ffmpeg: exact cuts, H.264 + AAC mp4, optional 9:16 and subtitles.

Each clip re-encodes `[start, end)` of the source through the download code's one exact-cut
helper (`repurpose.download.cut.exact_cut`: `-ss` before `-i`, which ffmpeg makes frame-exact
when transcoding; x264, yuv420p, AAC, `+faststart`) at CRF 20. Sizes are those of the picture
as displayed (ffmpeg applies a phone video's display rotation before the filters); odd sizes
lose their last row or column (H.264 4:2:0 needs even ones). `--vertical` crops a window planned by
`repurpose.clip.reframe` (moved per frame through ffmpeg's `sendcmd`) and scales it to the
output size. Burned subtitles (SRT lines, or ASS word-by-word captions) use ffmpeg's
`subtitles` filter, which exists only in builds with libass (checked with `ffmpeg -filters`);
fonts come from fontconfig plus matplotlib's bundled DejaVu fonts when matplotlib is
installed, so a machine without system fonts still renders text.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from repurpose.clip.reframe import CropPath
from repurpose.errors import UserError
from repurpose.media import ffmpeg_exe

CRF = "20"
FONT = "DejaVu Sans"


@lru_cache(maxsize=8)
def ffmpeg_filters(ffmpeg: str) -> frozenset[str]:
    """Names of the filters this ffmpeg build has."""
    try:
        out = subprocess.run([ffmpeg, "-hide_banner", "-filters"], capture_output=True,
                             text=True, timeout=30, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and "->" in parts[2]:
            names.add(parts[1])
    return frozenset(names)


def can_burn_subtitles() -> bool:
    """Whether ffmpeg has the libass `subtitles` filter."""
    return "subtitles" in ffmpeg_filters(ffmpeg_exe())


def require_burn() -> None:
    """A clear error when subtitles cannot be burned in."""
    if not can_burn_subtitles():
        raise UserError(f"--subtitles burn needs an ffmpeg built with libass (the 'subtitles' "
                        f"filter); {ffmpeg_exe()} has none. Use --subtitles srt to write .srt "
                        f"files beside the clips, or point $REPURPOSE_FFMPEG at an ffmpeg "
                        f"with libass")


def vertical_size(width: int, height: int) -> tuple[int, int]:
    """Even (w, h) of the centre 9:16 crop: full height for landscape and square sources,
    full width for sources already narrower than 9:16."""
    from repurpose.clip.reframe import crop_size

    return crop_size(width, height, (9, 16))


def even_size(width: int, height: int) -> tuple[int, int]:
    """The largest even (w, h) within `width` x `height`."""
    return max(2, width // 2 * 2), max(2, height // 2 * 2)


def _filter_value(text: str) -> str:
    """Escape a filter option value (quoted), then the quoting for the filtergraph."""
    quoted = "'" + text.replace("'", "'\\''") + "'"  # no escapes inside quotes
    return quoted.replace("\\", "\\\\").replace("'", "\\'").replace(":", "\\:") \
        .replace(",", "\\,").replace("[", "\\[").replace("]", "\\]").replace(";", "\\;")


def _fonts_dir() -> str | None:
    try:
        import matplotlib

        folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    except Exception:  # noqa: BLE001 - fonts from fontconfig only
        return None
    return str(folder) if (folder / "DejaVuSans.ttf").is_file() else None


def subtitles_filter(path: str | os.PathLike[str], height: int) -> str:
    """The `subtitles` filter burning `path`: an .ass file with its own styles, or an .srt
    with a bold outlined default style (libass scales it to the picture)."""
    del height  # libass scales the default style to the picture height already
    opts = [f"filename={_filter_value(str(path))}"]
    fonts = _fonts_dir()
    if fonts:
        opts.append(f"fontsdir={_filter_value(fonts)}")
    if not str(path).lower().endswith(".ass"):
        opts.append("force_style=" + _filter_value(
            f"FontName={FONT},Fontsize=18,Bold=1,Outline=1.5,Shadow=0,MarginV=20"))
    return "subtitles=" + ":".join(opts)


def video_filters(display: tuple[int, int], crop: CropPath | None = None,
                  crop_commands: str | os.PathLike[str] | None = None,
                  size: tuple[int, int] | None = None,
                  burn: str | os.PathLike[str] | None = None) -> list[str]:
    """The -vf chain: moving crop + scale (vertical) or even-size crop, then subtitles."""
    filters = []
    if crop is not None:
        if crop_commands is not None:
            filters.append(f"sendcmd=f={_filter_value(str(crop_commands))}")
        filters.append(f"crop={crop.width}:{crop.height}:{crop.xs[0]}:{crop.y}")
        if size is not None and size != (crop.width, crop.height):
            filters.append(f"scale={size[0]}:{size[1]}:flags=lanczos")
    elif even_size(*display) != tuple(display):
        w, h = even_size(*display)
        filters.append(f"crop={w}:{h}:0:0")
    if burn is not None:
        filters.append(subtitles_filter(burn, (size or display)[1]))
    if filters:
        filters.append("setsar=1")
    return filters


def output_size(display: tuple[int, int], crop: CropPath | None,
                size: tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) of the exported picture."""
    if crop is not None:
        return size or (crop.width, crop.height)
    return even_size(*display)


def export_clip(source: str | os.PathLike[str], start: float, end: float,
                target: str | os.PathLike[str], width: int, height: int,
                vertical: bool = False, burn: str | os.PathLike[str] | None = None,
                crop: CropPath | None = None, crop_commands: str | os.PathLike[str] | None = None,
                size: tuple[int, int] | None = None) -> None:
    """Write `[start, end)` of `source` to `target` (mp4, whatever its name). `width` x
    `height` is the displayed picture; `vertical` without a `crop` plan crops the centre."""
    from repurpose.download.cut import exact_cut

    if vertical and crop is None:
        cw, ch = vertical_size(width, height)
        crop = CropPath(cw, ch, (height - ch) // 2, ((width - cw) // 2,), 1.0, "centre", 0.0)
    filters = video_filters((width, height), crop, crop_commands, size, burn)
    # ffmpeg's decoder threads, as before: clip output is not a shared artefact
    exact_cut(source, start, end - start, target, filters=filters, crf=CRF, strip=True,
              decoder_threads=None)
