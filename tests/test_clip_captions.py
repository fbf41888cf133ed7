"""Word-by-word highlighted captions (ASS): the document, and what libass burns into a frame."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repurpose.clip.subtitles import CaptionStyle, TimedWord, ass, ass_colour, karaoke_events
from repurpose.media import ffmpeg_exe

WORDS = [TimedWord(10.0 + 0.5 * i, 10.4 + 0.5 * i, t, 0)
         for i, t in enumerate(["Watch", "closely", "this", "trick", "works."])]
DIALOGUE = re.compile(r"^Dialogue: 0,(\d):(\d\d):(\d\d)\.(\d\d),(\d):(\d\d):(\d\d)\.(\d\d),"
                      r"Default,,0,0,0,,(.*)$")


def parse(doc: str) -> list[tuple[float, float, str]]:
    out = []
    for line in doc.splitlines():
        m = DIALOGUE.match(line)
        if m:
            g = [int(x) for x in m.groups()[:8]]
            out.append((g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 100,
                        g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 100, m.group(9)))
    return out


def test_colours_are_ass_bgr() -> None:
    assert ass_colour("#FFD400") == "&H0000D4FF"
    assert ass_colour("00ff00") == "&H0000FF00"
    with pytest.raises(ValueError):
        ass_colour("yellow")


def test_one_event_per_spoken_word_with_only_that_word_highlighted() -> None:
    style = CaptionStyle(font="DejaVu Sans", size=40, colour="#FFFFFF", highlight="#00FF00",
                         outline_colour="#102030", outline=5)
    doc = ass(WORDS, 9.5, 13.0, (1080, 1920), style)
    assert "PlayResX: 1080" in doc and "PlayResY: 1920" in doc
    style_line = next(line for line in doc.splitlines() if line.startswith("Style: Default"))
    fields = style_line.split(",")
    assert fields[1:4] == ["DejaVu Sans", "40", "&H00FFFFFF"]
    assert fields[5] == "&H00302010" and fields[16] == "5"
    events = parse(doc)
    assert len(events) == len(WORDS)
    previous_end = 0.0
    for (a, b, text), word in zip(events, WORDS, strict=True):
        assert a == pytest.approx(word.start - 9.5, abs=0.01) and b > a >= previous_end - 1e-9
        previous_end = b
        assert text.count("{\\c&H0000FF00&}") == 1  # exactly one highlighted word...
        assert f"{{\\c&H0000FF00&}}{word.text}{{\\r}}" in text  # ...the one being spoken
        assert re.sub(r"\{[^}]*\}", "", text) == " ".join(w.text for w in WORDS)
    assert events[-1][1] <= 13.0 - 9.5 + 1e-9  # clamped to the clip


def test_plain_style_has_whole_lines_and_braces_are_not_markup() -> None:
    words = [TimedWord(0.0, 0.4, "a{b}", 0), TimedWord(0.5, 0.9, "c\\d", 0)]
    events = karaoke_events(words, 0.0, 5.0, karaoke=False)
    assert len(events) == 1 and events[0][3] is None
    doc = ass(words, 0.0, 5.0, (320, 180), CaptionStyle(karaoke=False))
    (a, b, text), = parse(doc)
    assert text == "a(b) c/d" and (a, b) == (0.0, 0.9)


def test_burned_captions_show_the_highlight_colour_under_the_spoken_word(tmp_path: Path
                                                                         ) -> None:
    from repurpose.clip.export import can_burn_subtitles, export_clip
    from tests.synthetic_media import pattern_video

    if not can_burn_subtitles():
        pytest.skip("this ffmpeg has no libass")
    video = pattern_video(tmp_path / "blue.mp4", 14, size=(320, 180), audio="silence")
    style = CaptionStyle(size=28, highlight="#FFD400", outline=2)
    sub = tmp_path / "c.ass"
    sub.write_text(ass(WORDS, 9.0, 13.0, (320, 180), style))
    out = tmp_path / "clip.mp4"
    export_clip(video, 9.0, 13.0, out, 320, 180, burn=sub)

    def frame(t: float) -> np.ndarray:
        raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", str(t), "-i", str(out),
                              "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             capture_output=True, check=True).stdout
        return np.frombuffer(raw, np.uint8).reshape(180, 320, 3).astype(int)

    def yellow_columns(img: np.ndarray) -> np.ndarray:
        mask = (img[..., 0] > 200) & (img[..., 1] > 170) & (img[..., 2] < 90)
        assert mask[: 90].sum() == 0  # captions at the bottom only
        return np.nonzero(mask.any(axis=0))[0]

    first = yellow_columns(frame(1.2))  # "Watch" (10.0-10.4 -> clip 1.0-1.4) highlighted
    last = yellow_columns(frame(3.2))  # "works." (12.0-12.4) highlighted
    assert first.size > 10 and last.size > 10
    assert first.mean() < last.mean() - 60  # the highlight moved right along the line
    img = frame(2.2)
    white = (img[..., 0] > 220) & (img[..., 1] > 220) & (img[..., 2] > 220)
    assert white[90:].sum() > 100  # the words not being spoken are white
