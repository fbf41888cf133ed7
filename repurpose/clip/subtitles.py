"""Subtitles of a clip from the transcript's word times: short lines, clip-relative SRT.

A word belongs to a clip when its midpoint lies inside `[start, end)`. Words are grouped into
lines of at most `max_words` words / `max_chars` characters / `max_seconds` seconds; a line also
ends at a pause longer than `max_gap` seconds and at the end of a transcript segment. Times are
shifted to clip time and clamped to `[0, clip length]`; lines never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repurpose.pervideo.transcript import Transcript

MAX_WORDS = 7
MAX_CHARS = 32
MAX_SECONDS = 3.0
MAX_GAP = 0.8
MIN_CUE = 0.2  # a cue lasts at least this long when the clip leaves room


@dataclass(frozen=True)
class Cue:
    """One subtitle line, in clip seconds."""

    start: float
    end: float
    text: str


@dataclass(frozen=True)
class TimedWord:
    start: float  # absolute seconds
    end: float
    text: str
    segment: int  # index of its transcript segment (lines break between segments)


def clip_words(transcript: dict[str, Any] | Transcript, start: float, end: float
               ) -> list[TimedWord]:
    """Words whose midpoint lies in `[start, end)`, in time order. A segment without word
    times counts as one word spanning the segment."""
    t = transcript if isinstance(transcript, Transcript) else Transcript.from_json(transcript)
    out = []
    for si, seg in enumerate(t.segments):
        items = [(w.start, w.end, w.word) for w in seg.words] or [(seg.start, seg.end, seg.text)]
        for a, b, text in items:
            text = text.strip()
            if text and start <= (a + b) / 2 < end:
                out.append(TimedWord(a, b, text, si))
    out.sort(key=lambda w: (w.start, w.end))
    return out


def clip_text(words: list[TimedWord]) -> str:
    """The words as one string."""
    return " ".join(w.text for w in words)


def group_lines(words: list[TimedWord], max_words: int = MAX_WORDS, max_chars: int = MAX_CHARS,
                max_seconds: float = MAX_SECONDS, max_gap: float = MAX_GAP
                ) -> list[list[TimedWord]]:
    """Words -> lines (see the module docstring)."""
    lines: list[list[TimedWord]] = []
    current: list[TimedWord] = []
    for w in words:
        if current:
            last = current[-1]
            chars = len(" ".join(x.text for x in current)) + 1 + len(w.text)
            if (len(current) >= max_words or chars > max_chars or w.segment != last.segment
                    or w.start - last.end > max_gap or w.end - current[0].start > max_seconds):
                lines.append(current)
                current = []
        current.append(w)
    if current:
        lines.append(current)
    return lines


def cues(words: list[TimedWord], clip_start: float, clip_end: float) -> list[Cue]:
    """Subtitle lines of a clip in clip seconds, inside `[0, clip_end - clip_start]`."""
    length = clip_end - clip_start
    out: list[Cue] = []
    for line in group_lines(words):
        a = min(max(0.0, line[0].start - clip_start), length)
        b = min(max(0.0, line[-1].end - clip_start), length)
        if out:
            a = max(a, out[-1].end)
        b = max(b, min(a + MIN_CUE, length))
        if b <= a:
            continue
        out.append(Cue(round(a, 3), round(b, 3), " ".join(w.text for w in line)))
    return out


def timestamp(seconds: float) -> str:
    """SRT time `HH:MM:SS,mmm`."""
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def srt(cue_list: list[Cue]) -> str:
    """The cues as an SRT document."""
    blocks = [f"{i}\n{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n"
              for i, c in enumerate(cue_list, 1)]
    return "\n".join(blocks)


# --- word-by-word highlighted captions (ASS) --------------------------------------------------


@dataclass(frozen=True)
class CaptionStyle:
    """Look of burned captions: font, size (pixels; 0 = 1/18 of the picture height), colours
    (#RRGGBB) and outline width (pixels)."""

    font: str = "DejaVu Sans"
    size: int = 0
    colour: str = "#FFFFFF"  # words not being spoken
    highlight: str = "#FFD400"  # the word being spoken
    outline_colour: str = "#000000"
    outline: float = 3.0
    karaoke: bool = True  # False: whole lines in `colour`, no highlight

    def font_size(self, height: int) -> int:
        """Font size in pixels for a picture `height` pixels tall."""
        return self.size if self.size > 0 else max(8, round(height / 18))


def ass_colour(rgb: str) -> str:
    """`#RRGGBB` -> ASS `&H00BBGGRR` (opaque)."""
    text = rgb.strip().lstrip("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise ValueError(f"expected a colour as #RRGGBB, got {rgb!r}")
    r, g, b = text[0:2], text[2:4], text[4:6]
    return f"&H00{b}{g}{r}".upper()


def ass_time(seconds: float) -> str:
    """ASS time `H:MM:SS.cc`."""
    cs = max(0, round(seconds * 100))
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h}:{m:02d}:{s:02d}.{cs:02d}"


def _ass_text(text: str) -> str:
    """A word with the characters ASS treats as markup replaced."""
    return text.replace("\\", "/").replace("{", "(").replace("}", ")").replace("\n", " ")


def karaoke_events(words: list[TimedWord], clip_start: float, clip_end: float,
                   karaoke: bool = True) -> list[tuple[float, float, list[str], int | None]]:
    """(start, end, line words, highlighted index) in clip seconds: per line, one event per
    word while it is spoken (until the next word starts), never overlapping."""
    length = clip_end - clip_start
    events: list[tuple[float, float, list[str], int | None]] = []
    last_end = 0.0
    for line in group_lines(words):
        texts = [_ass_text(w.text) for w in line]
        spans = []
        for i, w in enumerate(line):
            a = w.start - clip_start
            b = line[i + 1].start - clip_start if i + 1 < len(line) else w.end - clip_start
            spans.append((a, max(b, a + MIN_CUE) if i + 1 == len(line) else b, i))
        if not karaoke:
            spans = [(spans[0][0], spans[-1][1], None)]
        for a, b, i in spans:
            a, b = min(max(a, last_end, 0.0), length), min(max(b, 0.0), length)
            if b - a < 0.01:
                continue
            events.append((round(a, 3), round(b, 3), texts, i))
            last_end = b
    return events


def ass(words: list[TimedWord], clip_start: float, clip_end: float, size: tuple[int, int],
        style: CaptionStyle) -> str:
    """An ASS document: the clip's lines at the bottom, the spoken word in `highlight`."""
    w, h = size
    font = style.font_size(h)
    margin = max(4, round(h * 0.08))
    head = [
        "[Script Info]", "ScriptType: v4.00+", f"PlayResX: {w}", f"PlayResY: {h}",
        "WrapStyle: 0", "ScaledBorderAndShadow: yes", "",
        "[V4+ Styles]",
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, "
        "BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, "
        "BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding",
        f"Style: Default,{style.font},{font},{ass_colour(style.colour)},"
        f"{ass_colour(style.highlight)},{ass_colour(style.outline_colour)},&H80000000,"
        f"-1,0,0,0,100,100,0,0,1,{style.outline:g},0,2,{margin},{margin},{margin},1",
        "", "[Events]",
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text",
    ]
    on = "{\\c" + ass_colour(style.highlight) + "&}"
    lines = []
    for a, b, texts, i in karaoke_events(words, clip_start, clip_end, style.karaoke):
        parts = [f"{on}{t}{{\\r}}" if j == i else t for j, t in enumerate(texts)]
        lines.append(f"Dialogue: 0,{ass_time(a)},{ass_time(b)},Default,,0,0,0,,{' '.join(parts)}")
    return "\n".join(head + lines) + "\n"
