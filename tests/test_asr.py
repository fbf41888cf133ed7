"""ASR backends: faster-whisper with the packaged tiny.en, the whisperx adapter, transcripts."""

from __future__ import annotations

import re
import sys
import types

import numpy as np
import pytest

from repurpose.asr.backends import SAMPLE_RATE, asr_backend_from_section, get_asr_backend
from repurpose.features.backends import WeightsMissing
from repurpose.params import ParamsError
from repurpose.pervideo.transcript import Segment, Transcript, Word

SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."


def speech_16k(text: str) -> np.ndarray:
    """TTS of `text` as float32 at 16 kHz, with half a second of silence around it."""
    tts = pytest.importorskip("repurpose.sample.tts", reason="needs repurpose.sample.tts")
    samples, sr = tts.speak(text)
    x = samples.astype(np.float32) / 32768.0
    n = int(round(len(x) * SAMPLE_RATE / sr))
    x = np.interp(np.arange(n) * sr / SAMPLE_RATE, np.arange(len(x)), x).astype(np.float32)
    pad = np.zeros(SAMPLE_RATE // 2, np.float32)
    return np.concatenate([pad, x, pad])


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_faster_whisper_tiny_en_transcribes_speech():
    b = get_asr_backend("faster-whisper", {"model": "package"}, batch_size=8)
    assert b.weights_identity().startswith("sha256:")
    audio = speech_16k(SENTENCE)
    t = b.transcribe(audio)
    heard = words(t.text)
    expected = words(SENTENCE)
    right = sum(1 for w in expected if w in heard)
    assert right >= 0.7 * len(expected), t.text
    all_words = [w for s in t.segments for w in s.words]
    assert len(all_words) >= 0.7 * len(expected)  # word timestamps
    starts = [w.start for w in all_words]
    assert starts == sorted(starts)
    assert 0.0 <= starts[0] <= 1.5  # speech starts at 0.5 s (VAD pads onsets by up to 0.4 s)
    assert all_words[-1].end <= len(audio) / SAMPLE_RATE + 0.1
    assert t.language == "en"


def test_faster_whisper_settings_and_missing_model(tmp_path):
    with pytest.raises(ParamsError, match="batched inference needs vad"):
        get_asr_backend("faster-whisper", {"vad": False}, batch_size=8)
    b = get_asr_backend("faster-whisper", {"model": str(tmp_path / "x"),
                                           "download_root": str(tmp_path)}, batch_size=8)
    with pytest.raises(WeightsMissing, match=r"transcribe\.faster-whisper\.model"):
        b.weights_identity()
    with pytest.raises(ParamsError, match="choose one of faster-whisper, whisperx"):
        get_asr_backend("vosk", {}, batch_size=8)


def fake_whisperx() -> types.ModuleType:
    """A stand-in with whisperx's API surface (load_model/transcribe, load_align_model, align)."""
    mod = types.ModuleType("whisperx")
    mod.__version__ = "3.8.0-fake"
    calls: dict[str, list] = {"load_model": [], "align": []}

    class Model:
        def transcribe(self, audio, batch_size=16, language=None):
            assert audio.dtype == np.float32 and batch_size == 4
            return {"language": "en", "segments": [
                {"start": 0.5, "end": 2.0, "text": " hello there "},
                {"start": 3.0, "end": 4.0, "text": "bye 2024"}]}

    def load_model(name, device, compute_type="float16", language=None, download_root=None):
        calls["load_model"].append((name, device, compute_type, language))
        return Model()

    def load_align_model(language_code, device):
        return ("aligner", language_code), {"language": language_code}

    def align(segments, model, metadata, audio, device, return_char_alignments=False):
        calls["align"].append(model)
        out = []
        for s in segments:
            ws = []
            for i, w in enumerate(s["text"].split()):
                if w.isdigit():
                    ws.append({"word": w})  # whisperx leaves unalignable tokens without times
                else:
                    ws.append({"word": w, "start": s["start"] + 0.4 * i,
                               "end": s["start"] + 0.4 * i + 0.3, "score": 0.9})
            out.append({**s, "words": ws})
        return {"segments": out}

    mod.load_model, mod.load_align_model, mod.align = load_model, load_align_model, align
    mod.calls = calls
    return mod


def test_whisperx_adapter_with_stand_in_module(monkeypatch):
    fake = fake_whisperx()
    monkeypatch.setitem(sys.modules, "whisperx", fake)
    b = asr_backend_from_section({"backend": "whisperx", "device": "cpu", "batch_size": 4,
                                  "whisperx": {"model": "large-v3"}})
    assert b.weights_identity() == "whisperx-3.8.0-fake:large-v3"
    t = b.transcribe(np.zeros(SAMPLE_RATE * 5, np.float32))
    assert fake.calls["load_model"] == [("large-v3", "cpu", "int8", None)]
    assert [s.text for s in t.segments] == ["hello there", "bye 2024"]
    assert [w.word for w in t.segments[0].words] == ["hello", "there"]
    assert [w.word for w in t.segments[1].words] == ["bye"]  # the untimed token is dropped
    assert t.language == "en" and fake.calls["align"] == [("aligner", "en")]


def test_whisperx_missing_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "whisperx", None)  # import fails
    b = get_asr_backend("whisperx", {}, batch_size=8)
    with pytest.raises(WeightsMissing, match="torch 2.13"):
        b.weights_identity()


def test_transcript_json_and_shift():
    t = Transcript("en", (Segment(1.0, 2.5, "hi there", (Word(1.0, 1.4, "hi", 0.9),
                                                           Word(1.5, 2.5, "there", 0.8))),))
    assert Transcript.from_json(t.to_json()) == t
    moved = t.shifted(100.25)
    assert moved.segments[0].words[1].start == 101.75
    assert moved.shifted(-100.25) == t
