"""Subtitles of a clip from the transcript's word times: short lines, clip-relative SRT.

A word belongs to a clip when its midpoint lies inside `[start, end)`. Words are grouped into
lines of at most `max_words` words / `max_chars` characters / `max_seconds` seconds; a line also
ends at a pause longer than `max_gap` seconds and at the end of a transcript segment. Times are
shifted to clip time and clamped to `[0, clip length]`; lines never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repurpose.asr.transcript import Transcript

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
