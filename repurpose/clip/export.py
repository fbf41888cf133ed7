"""Writing clip files with ffmpeg: exact cuts, H.264 + AAC mp4, optional 9:16 and subtitles.

Each clip re-encodes `[start, end)` of the source (`-ss` before `-i`, which ffmpeg makes
frame-exact when transcoding) with the download code's encoder settings (`encode_args`: x264,
yuv420p, AAC, `+faststart`) at CRF 20. `--vertical` centre-crops to 9:16, keeping the height
(or the width of a source already narrower than 9:16), with even dimensions. Burned subtitles
use ffmpeg's `subtitles` filter, which exists only in builds with libass (checked with
`ffmpeg -filters`); fonts come from fontconfig plus matplotlib's bundled DejaVu fonts when
matplotlib is installed, so a machine without system fonts still renders text.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from repurpose.errors import UserError
from repurpose.media import ffmpeg_exe, run_ffmpeg

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
    w = min(width, height * 9 / 16)
    h = min(height, width * 16 / 9)
    return max(2, int(w) // 2 * 2), max(2, int(h) // 2 * 2)


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


def subtitles_filter(srt_path: str | os.PathLike[str], height: int) -> str:
    """The `subtitles` filter burning `srt_path`, font size scaled to the picture."""
    del height  # libass scales the default style to the picture height already
    opts = [f"filename={_filter_value(str(srt_path))}"]
    fonts = _fonts_dir()
    if fonts:
        opts.append(f"fontsdir={_filter_value(fonts)}")
    opts.append("force_style=" + _filter_value(
        f"FontName={FONT},Fontsize=18,Bold=1,Outline=1.5,Shadow=0,MarginV=20"))
    return "subtitles=" + ":".join(opts)


def export_clip(source: str | os.PathLike[str], start: float, end: float,
                target: str | os.PathLike[str], width: int, height: int,
                vertical: bool = False, burn: str | os.PathLike[str] | None = None) -> None:
    """Write `[start, end)` of `source` to `target` (mp4, whatever its name)."""
    from repurpose.download.encode import encode_args

    filters = []
    h = height
    if vertical:
        cw, ch = vertical_size(width, height)
        filters.append(f"crop={cw}:{ch}:(iw-{cw})/2:(ih-{ch})/2")
        h = ch
    if burn is not None:
        filters.append(subtitles_filter(burn, h))
    if filters:
        filters.append("setsar=1")
    args = ["-ss", f"{start:.3f}", "-i", str(source), "-t", f"{end - start:.3f}",
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1"]
    if filters:
        args += ["-vf", ",".join(filters)]
    args += [*encode_args(ffmpeg_exe()), "-crf", CRF, "-f", "mp4", str(target)]
    run_ffmpeg(args)
