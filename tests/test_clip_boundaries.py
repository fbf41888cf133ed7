"""Clip boundaries: on sentences or at least between words (never inside one), onto a shot cut
in the same pause, on the frame grid; the amount moved is in clips.json."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from repurpose.clip.boundaries import (
    SnapSettings,
    SpokenWord,
    detect_shots,
    inside_word,
    snap_boundary,
    snap_segment,
    transcript_words,
)
from repurpose.media import ffmpeg_exe, run_ffmpeg

S = SnapSettings()


def sentence(start: float, texts: list[str], step: float = 0.4) -> list[SpokenWord]:
    """Words `step` apart (0.3 s long); the last ends the sentence."""
    return [SpokenWord(start + i * step, start + i * step + 0.3, t, i == 0, i == len(texts) - 1)
            for i, t in enumerate(texts)]


# two sentences: 10.0-11.5 and 13.0-14.5, a pause 11.5-13.0 between them
WORDS = sentence(10.0, ["one", "two", "three", "four."]) + \
    sentence(13.0, ["five", "six", "seven", "eight."])


def test_a_start_inside_a_sentence_moves_to_its_beginning() -> None:
    got = snap_boundary(10.5, WORDS, [], 60.0, 10.0, S, start=True)
    assert got.to == "sentence" and got.time == pytest.approx(9.8)  # pad 0.15, frame grid
    assert got.shift == pytest.approx(got.time - 10.5)
    assert inside_word(got.time, WORDS) is None


def test_an_end_moves_to_the_end_of_the_sentence() -> None:
    got = snap_boundary(14.1, WORDS, [], 60.0, 10.0, S, start=False)
    assert got.to == "sentence" and 14.5 <= got.time <= 14.8


def test_far_from_any_sentence_a_boundary_only_leaves_the_word() -> None:
    words = sentence(0.0, [f"w{i}" for i in range(40)])  # one 16-s sentence
    got = snap_boundary(8.1, words, [], 60.0, 10.0, S, start=True)  # inside w20 (8.0-8.3)
    assert got.to == "word" and inside_word(got.time, words) is None
    assert abs(got.shift) < 0.4


def test_a_shot_cut_in_the_same_pause_wins_one_across_a_word_does_not() -> None:
    got = snap_boundary(13.0, WORDS, [12.4], 60.0, 10.0, S, start=True)
    assert got.to == "shot" and got.time == pytest.approx(12.4)
    got = snap_boundary(13.0, WORDS, [13.5], 60.0, 10.0, S, start=True)  # 13.5 is a word
    assert got.to == "sentence" and got.time < 13.0


def test_no_words_keeps_the_time_on_the_frame_grid() -> None:
    got = snap_boundary(5.04, [], [], 60.0, 12.0, S, start=True)
    assert got.to == "none" and got.time == pytest.approx(5.0)
    a, b = snap_segment(5.04, 20.0, [], [], 60.0, 12.0, S)
    assert (a.time, b.time) == (5.0, 20.0)


def test_sentences_come_from_punctuation_segments_and_pauses() -> None:
    doc = {"language": "en", "segments": [
        {"start": 0, "end": 3, "text": "Hi there. Yes", "words": [
            {"start": 0.0, "end": 0.3, "word": " Hi"},
            {"start": 0.4, "end": 0.8, "word": " there."},
            {"start": 0.9, "end": 1.2, "word": " Yes"}, {"start": 2.5, "end": 2.8, "word": " ok"}]},
        {"start": 3, "end": 4, "text": "Next", "words": [
            {"start": 3.0, "end": 3.4, "word": " Next"}]}]}
    words = transcript_words(doc)
    assert [w.starts_sentence for w in words] == [True, False, True, True, True]
    assert [w.ends_sentence for w in words] == [False, True, True, True, True]


def test_shot_cuts_are_found_by_ffmpeg(tmp_path: Path) -> None:
    path = tmp_path / "shots.mp4"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc2=s=160x90:r=10:d=4",
                "-f", "lavfi", "-i", "color=c=red:s=160x90:r=10:d=3",
                "-f", "lavfi", "-i", "smptebars=s=160x90:r=10:d=3",
                "-filter_complex", "[0][1][2]concat=n=3:v=1:a=0", "-c:v", "libx264",
                "-pix_fmt", "yuv420p", str(path)])
    assert detect_shots(path) == [4.0, 7.0]


def audio_track(path: Path, rate: int = 16000) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-ac", "1", "-ar",
                          str(rate), "-f", "s16le", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.int16).astype(np.float32)


@pytest.mark.slow
def test_no_clip_cuts_a_word_of_real_speech(clip_kit: dict, tmp_path: Path) -> None:
    from tests.clip_kit import run_clip

    out = tmp_path / "out"
    rc, _, stderr = run_clip(clip_kit, str(clip_kit["video"]), out, "--window-seconds", "20",
                             "--max-clips", "6")
    assert rc == 0, stderr
    man = json.loads((out / "clips.json").read_text())
    vid = man["source"]["sha256"][:16]
    doc = json.loads((out / ".work" / "videos" / vid / "transcripts" / f"{vid}.json")
                     .read_text())
    words = [(w["start"], w["end"]) for s in doc["segments"] for w in s["words"]]
    assert len(words) > 50
    audio = audio_track(clip_kit["video"])
    speech_rms = np.sqrt(np.mean(audio[np.abs(audio) > 500] ** 2))
    moved = 0
    for c in man["clips"]:
        for t in (c["start"], c["end"]):
            assert not any(a < t < b for a, b in words), (c, t)  # never inside a word
            i = int(t * 16000)
            around = audio[max(0, i - 320): i + 320]  # 20 ms either side of the cut
            assert np.sqrt(np.mean(around ** 2)) < 0.1 * speech_rms, (c, t)  # not mid-sound
        snap = c["snap"]
        moved += abs(snap["start"]["shift"]) + abs(snap["end"]["shift"]) > 0
        assert {snap["start"]["to"], snap["end"]["to"]} <= {"sentence", "word", "shot", "none"}
    assert moved >= 1  # the model's whole seconds did need moving
