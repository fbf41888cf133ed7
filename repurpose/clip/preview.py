"""`index.html` in the clip folder: a page to look at the clips, opened straight from disk.

One card per clip (rank, score, times, what is said, an inline player of the cut with its
thumbnail as poster, links to its files), a timeline of the source video with every clip on it
(click a clip to jump to its card), and links to clips.json. Everything is relative to the
folder (works from `file://`, no server, no network); thumbnails are JPEGs cut from the clips.
A small script marks a player or picture that fails to load, so a broken file is visible.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from repurpose.media import run_ffmpeg

PAGE = "index.html"
THUMB_WIDTH = 360

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;background:#f6f6f8;color:#222}
h1{font-size:22px;margin:0 0 4px} .meta{color:#666;font-size:13px;margin-bottom:16px}
.timeline{position:relative;height:44px;background:#dde;border-radius:6px;margin:8px 0 4px}
.timeline a{position:absolute;top:6px;height:32px;background:#e4572e;border-radius:4px;
  color:#fff;font-size:12px;text-align:center;line-height:32px;text-decoration:none;
  min-width:14px;overflow:hidden}
.ticks{display:flex;justify-content:space-between;font-size:11px;color:#777;margin-bottom:20px}
.cards{display:flex;flex-wrap:wrap;gap:16px}
.card{background:#fff;border-radius:8px;box-shadow:0 1px 3px #0002;padding:12px;width:380px}
.card h2{font-size:16px;margin:0 0 6px} .card video{width:100%;max-height:420px;background:#000}
.card img{width:96px;float:right;margin-left:8px;border-radius:4px}
.text{font-size:14px;line-height:1.4;margin:8px 0} .files a{margin-right:10px;font-size:13px}
.broken{outline:4px solid red}
"""

SCRIPT = """
document.querySelectorAll('video').forEach(function(v){
  v.addEventListener('error',function(){v.classList.add('broken');v.dataset.state='broken';});
  v.addEventListener('loadeddata',function(){v.dataset.state='ok';});
  v.load();
});
document.querySelectorAll('img').forEach(function(i){
  function mark(){i.dataset.state=(i.complete&&i.naturalWidth>0)?'ok':'broken';
    if(i.dataset.state==='broken'){i.classList.add('broken');}}
  if(i.complete){mark();}else{i.addEventListener('load',mark);i.addEventListener('error',mark);}
});
"""


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def thumbnail(clip: str | os.PathLike[str], at: float, target: str | os.PathLike[str]) -> None:
    """A JPEG of the frame shown `at` seconds into `clip`, `THUMB_WIDTH` pixels wide."""
    run_ffmpeg(["-ss", f"{max(0.0, at):.3f}", "-i", str(clip), "-frames:v", "1",
                "-vf", f"scale={THUMB_WIDTH}:-2", "-q:v", "4", "-update", "1", "-f", "image2",
                "-c:v", "mjpeg", str(target)])


def _link(name: str | None, label: str) -> str:
    return f'<a href="{html.escape(name)}">{label}</a>' if name else ""


def card(clip: dict[str, Any]) -> str:
    """The HTML card of one clip."""
    rank, file = clip["rank"], html.escape(clip["file"])
    thumb = html.escape(clip.get("thumbnail") or "")
    poster = f' poster="{thumb}"' if thumb else ""
    img = f'<img src="{thumb}" alt="thumbnail of clip {rank}">' if thumb else ""
    links = " ".join(x for x in (
        _link(clip["file"], "mp4"), _link(clip.get("subtitles"), "subtitles"),
        _link(clip.get("thumbnail"), "thumbnail")) if x)
    snap = clip.get("snap") or {}
    moved = (f" · snapped {snap['start']['shift']:+.2f} s / {snap['end']['shift']:+.2f} s"
             if snap else "")
    return (
        f'<div class="card" id="clip-{rank}">{img}<h2>#{rank} · score {clip["score"]:.3f}</h2>'
        f'<div class="meta">{_clock(clip["start"])} – {_clock(clip["end"])} '
        f'({clip["duration"]:.1f} s){moved}</div>'
        f'<video controls preload="auto" src="{file}"{poster}></video>'
        f'<p class="text">{html.escape(clip.get("text") or "(nothing said)")}</p>'
        f'<div class="files">{links}</div></div>'
    )


def timeline(clips: list[dict[str, Any]], duration: float) -> str:
    """The source video as a bar with every clip on it, and time ticks."""
    total = max(duration, 1e-6)
    blocks = []
    for c in clips:
        left = 100 * c["start"] / total
        width = 100 * (c["end"] - c["start"]) / total
        blocks.append(f'<a href="#clip-{c["rank"]}" style="left:{left:.3f}%;width:{width:.3f}%"'
                      f' title="#{c["rank"]} {_clock(c["start"])}–{_clock(c["end"])}">'
                      f'{c["rank"]}</a>')
    ticks = "".join(f"<span>{_clock(duration * k / 4)}</span>" for k in range(5))
    return f'<div class="timeline">{"".join(blocks)}</div><div class="ticks">{ticks}</div>'


def page(manifest: dict[str, Any]) -> str:
    """The whole index.html."""
    src = manifest["source"]
    clips = manifest["clips"]
    title = html.escape(Path(str(src.get("input") or "video")).name)
    cards = "".join(card(c) for c in clips) or "<p>No clip passed the filters.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Clips of {title}</title><style>{CSS}</style></head><body>"
        f"<h1>{len(clips)} clip(s) of {title}</h1>"
        f'<div class="meta">source {html.escape(str(src.get("input")))} · '
        f'{_clock(src["duration"])} · {src["width"]}x{src["height"]} · '
        f'<a href="clips.json">clips.json</a></div>'
        f"{timeline(clips, float(src['duration']))}<div class='cards'>{cards}</div>"
        f"<script>{SCRIPT}</script></body></html>"
    )
