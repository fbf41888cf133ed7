"""Clip boundaries a person would accept: never inside a word, on a sentence when one is near,
on a shot cut when one is in the same pause.

The model's segments start and end on whole seconds, wherever the speaker is. Each boundary is
moved, in this order:

1. to the nearest sentence boundary within `sentence_window` seconds (a sentence starts at the
   first word, after a word ending in `.`, `!` or `?`, at a new transcript segment, or after a
   pause of at least `pause` seconds) — the cut goes in the pause, `pad` seconds from the word;
2. else out of the word it falls in, into the nearest pause;
3. then onto a shot cut (ffmpeg's `scdet` scene-change filter) inside the same pause and
   within `shot_window` seconds;
4. finally onto the video's frame grid, rounding away from the nearest word.

`snap_segment` returns the new times and what each boundary snapped to and by how much; these
go into clips.json.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repurpose.media import MediaError, ffmpeg_exe
from repurpose.pervideo.transcript import Transcript

SENTENCE_END = (".", "!", "?")
SHOT_THRESHOLD = 10.0  # scdet score (0-100) above which a frame starts a new shot


@dataclass(frozen=True)
class SnapSettings:
    """How far boundaries may move."""

    sentence_window: float = 3.0  # s: look this far for a sentence boundary
    shot_window: float = 1.0  # s: move onto a shot cut this close (same pause only)
    pad: float = 0.15  # s: leave this much of the pause next to the first / last word
    pause: float = 0.7  # s: a pause this long also separates sentences


@dataclass(frozen=True)
class SpokenWord:
    """A spoken word in absolute seconds, and whether it starts / ends a sentence."""

    start: float
    end: float
    text: str
    starts_sentence: bool
    ends_sentence: bool


@dataclass(frozen=True)
class Snapped:
    """A boundary after snapping: its time and what it snapped to."""

    time: float
    to: str  # sentence | word | shot | none
    shift: float  # seconds moved (new - model's)


def transcript_words(transcript: dict[str, Any] | Transcript, pause: float = 0.7
                     ) -> list[SpokenWord]:
    """Every timed word of the transcript, sentence starts and ends marked."""
    t = transcript if isinstance(transcript, Transcript) else Transcript.from_json(transcript)
    raw = []
    for si, seg in enumerate(t.segments):
        items = [(w.start, w.end, w.word) for w in seg.words] or [(seg.start, seg.end, seg.text)]
        raw += [(a, b, text.strip(), si) for a, b, text in items if text.strip() and b > a]
    raw.sort(key=lambda w: (w[0], w[1]))
    words = []
    for i, (a, b, text, si) in enumerate(raw):
        prev = raw[i - 1] if i else None
        nxt = raw[i + 1] if i + 1 < len(raw) else None
        starts = (prev is None or prev[2].endswith(SENTENCE_END) or prev[3] != si
                  or a - prev[1] >= pause)
        ends = (nxt is None or text.endswith(SENTENCE_END) or nxt[3] != si
                or nxt[0] - b >= pause)
        words.append(SpokenWord(a, b, text, starts, ends))
    return words


def inside_word(t: float, words: list[SpokenWord]) -> SpokenWord | None:
    """The word `t` falls strictly inside, if any."""
    for w in words:
        if w.start < t < w.end:
            return w
    return None


def _pause_around(t: float, words: list[SpokenWord], duration: float) -> tuple[float, float]:
    """The pause (a, b) containing `t` (t is not inside a word)."""
    ends = [w.end for w in words if w.end <= t]
    starts = [w.start for w in words if w.start >= t]
    return (max(ends) if ends else 0.0), (min(starts) if starts else duration)


def _start_cut(pause: tuple[float, float], pad: float) -> float:
    """Where a clip starting in `pause` cuts: `pad` before the next word (or mid-pause)."""
    a, b = pause
    return max(a + (b - a) / 2 if b - a < 2 * pad else b - pad, a)


def _end_cut(pause: tuple[float, float], pad: float) -> float:
    """Where a clip ending in `pause` cuts: `pad` after the last word (or mid-pause)."""
    a, b = pause
    return min(a + (b - a) / 2 if b - a < 2 * pad else a + pad, b)


def _sentence_points(words: list[SpokenWord], duration: float, pad: float, start: bool
                     ) -> list[float]:
    """Cut points at sentence starts (for clip starts) or sentence ends (for clip ends)."""
    out = []
    for i, w in enumerate(words):
        if start and w.starts_sentence:
            prev_end = words[i - 1].end if i else 0.0
            out.append(_start_cut((prev_end, w.start), pad))
        if not start and w.ends_sentence:
            next_start = words[i + 1].start if i + 1 < len(words) else duration
            out.append(_end_cut((w.end, next_start), pad))
    return out


def _word_point(t: float, words: list[SpokenWord], duration: float, pad: float, start: bool
                ) -> tuple[float, str]:
    """`t` moved out of the word it falls in, into the nearest pause (unchanged in a pause)."""
    w = inside_word(t, words)
    if w is None:
        return t, "none"
    before = _pause_around(w.start, words, duration)
    after = _pause_around(w.end, words, duration)
    cut = _start_cut if start else _end_cut
    options = [cut(before, pad), cut(after, pad)]
    return min(options, key=lambda p: abs(p - t)), "word"


def _shot_point(t: float, shots: list[float], words: list[SpokenWord], duration: float,
                window: float) -> float | None:
    """A shot cut in the same pause as `t` and within `window` s of it, nearest first."""
    pause = _pause_around(t, words, duration)
    near = [s for s in shots if abs(s - t) <= window and pause[0] <= s <= pause[1]]
    return min(near, key=lambda s: abs(s - t)) if near else None


def _on_frames(t: float, fps: float, words: list[SpokenWord], duration: float, start: bool
               ) -> float:
    """`t` on the frame grid (inside the video), rounded the way that cuts no word: a start
    rounds down first, an end up."""
    if fps <= 0:
        return round(t, 3)
    last = math.floor(duration * fps + 1e-6) / fps
    down = math.floor(t * fps + 1e-6) / fps
    up = math.ceil(t * fps - 1e-6) / fps
    for q in ((down, up) if start else (up, down)):
        q = min(max(q, 0.0), last)
        if inside_word(q, words) is None:
            return round(q, 3)
    return round(min(max(round(t * fps) / fps, 0.0), last), 3)


def snap_boundary(t: float, words: list[SpokenWord], shots: list[float], duration: float,
                  fps: float, settings: SnapSettings, start: bool) -> Snapped:
    """One clip boundary snapped (see the module docstring)."""
    points = _sentence_points(words, duration, settings.pad, start)
    near = [p for p in points if abs(p - t) <= settings.sentence_window]
    if near:
        new, to = min(near, key=lambda p: abs(p - t)), "sentence"
    else:
        new, to = _word_point(t, words, duration, settings.pad, start)
    shot = _shot_point(new, shots, words, duration, settings.shot_window)
    if shot is not None:
        new, to = shot, "shot"
    new = _on_frames(new, fps, words, duration, start)
    return Snapped(new, to, round(new - t, 3))


def snap_segment(start: float, end: float, words: list[SpokenWord], shots: list[float],
                 duration: float, fps: float, settings: SnapSettings
                 ) -> tuple[Snapped, Snapped] | None:
    """Both boundaries of a clip snapped; None when snapping leaves no clip."""
    a = snap_boundary(start, words, shots, duration, fps, settings, start=True)
    b = snap_boundary(end, words, shots, duration, fps, settings, start=False)
    if b.time - a.time < 1.0:  # the sentence rule collapsed it: word level only
        a = _word_only(start, words, duration, fps, settings, True)
        b = _word_only(end, words, duration, fps, settings, False)
    return (a, b) if b.time > a.time else None


def _word_only(t: float, words: list[SpokenWord], duration: float, fps: float,
               settings: SnapSettings, start: bool) -> Snapped:
    new, to = _word_point(t, words, duration, settings.pad, start)
    new = _on_frames(new, fps, words, duration, start)
    return Snapped(new, to, round(new - t, 3))


def detect_shots(path: str | Path, threshold: float = SHOT_THRESHOLD) -> list[float]:
    """Times (s) where a new shot starts, by ffmpeg's `scdet` filter on a small picture."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-an", "-sn", "-vf", f"scale=160:-2,scdet=threshold={threshold}:sc_pass=1,"
           "metadata=mode=print:file=-", "-f", "null", "-"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=1800)
    if proc.returncode != 0:
        raise MediaError(f"{path}: shot detection failed: {proc.stderr.strip()[-500:]}")
    times = []
    for line in proc.stdout.splitlines():
        if line.startswith("lavfi.scd.time="):
            times.append(round(float(line.split("=", 1)[1]), 3))
    return sorted(set(times))


def cached_shots(path: str | Path, cache: Path) -> list[float]:
    """`detect_shots`, cached as JSON at `cache` (keyed by the caller, e.g. the sha256)."""
    from repurpose import io

    try:
        return [float(t) for t in json.loads(cache.read_text(encoding="utf-8"))["shots"]]
    except (OSError, ValueError, KeyError, TypeError):
        pass
    shots = detect_shots(path)
    io.write_json(cache, {"shots": shots, "threshold": SHOT_THRESHOLD})
    return shots
