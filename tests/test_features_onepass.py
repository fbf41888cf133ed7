"""One pass over all modalities of a video: the same numbers as the stages, in their caches.

A short ffmpeg-made video with speech goes through the stages one after another (each decoding
the file itself, default threads) and through `repurpose.onepass` (one probe, one shared 16 kHz
decode for the audio model and the ASR, visual and audio lanes in two threads with one thread
each). Per-second vectors must agree within float tolerance, the transcript must be identical,
and the stages must then reuse everything the pass computed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from repurpose import onepass
from repurpose.asr.backends import asr_backend_from_section
from repurpose.asr.transcribe import run_transcribe
from repurpose.features.extract import run_extract
from repurpose.features.text import run_embed_text
from repurpose.params import ParamsError
from repurpose.pervideo.inputs import load_videos
from repurpose.pervideo.results import ResultCache
from repurpose.runner import serial_map
from tests.synthetic_media import speech_video, write_test_ledger

os.environ.setdefault("HF_HUB_OFFLINE", "1")
YID = "onepassvid1"
PARAMS = {
    "extract": {
        "visual": {"backend": "efficientnet-lite0", "device": "cpu", "batch_size": 4,
                   "dtype": "float16", "n_shards": 1, "efficientnet-lite0": {}},
        "audio": {"backend": "logmel", "device": "cpu", "batch_size": 8, "dtype": "float16",
                  "n_shards": 1, "logmel": {"sample_rate": 16000, "n_mels": 64}},
    },
    "transcribe": {"backend": "faster-whisper", "device": "cpu", "batch_size": 4,
                   "faster-whisper": {"model": "package"}},
    "embed_text": {"backend": "minilm", "device": "cpu", "batch_size": 16, "dtype": "float16",
                   "n_shards": 1, "minilm": {}},
    "onepass": {"concurrent": True, "torch_threads": 1, "asr_threads": 1,
                "batch_size": {"efficientnet-lite0": 2}},
}


@pytest.fixture(scope="module")
def speech_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tts = pytest.importorskip("repurpose.sample.tts", reason="needs repurpose.sample.tts")
    folder = tmp_path_factory.mktemp("onepass")
    samples, sr = tts.speak("Welcome back everyone. Today we cook pasta with fresh tomatoes.")
    speech_video(folder / f"{YID}.mp4", samples, sr, lead=1.5, tail=1.0, size=(160, 120),
                 fps=10, total=12)
    write_test_ledger(folder, {YID: {"source_offset": 3.0}})
    return folder


def run_stages(folder: Path, cache: Path, out: Path) -> dict[str, object]:
    """The stage-by-stage path; returns each run's report."""
    videos = load_videos(folder / "ledger.parquet", folder)
    reports = {}
    configs = onepass.FeatureConfigs.from_params(PARAMS)
    for modality in ("visual", "audio"):
        reports[modality] = run_extract(getattr(configs, modality), videos, out / modality,
                                        cache / "features" / modality, serial_map)
    reports["transcripts"] = run_transcribe(configs.asr, videos, out / "transcripts",
                                            cache / "transcripts", serial_map)
    reports["text"] = run_embed_text(configs.text, videos, out / "transcripts",
                                     out / "text", cache / "features" / "text", serial_map)
    return reports


def test_one_pass_equals_the_stages_and_fills_their_cache(speech_folder: Path,
                                                          tmp_path: Path) -> None:
    stage_cache = tmp_path / "stage-cache"
    reports = run_stages(speech_folder, stage_cache, tmp_path / "stage-out")
    assert all(r.computed == 1 and not r.errors for r in reports.values())

    video = load_videos(speech_folder / "ledger.parquet", speech_folder)[0]
    settings = onepass.OnePassSettings.from_section(
        {"concurrent": True, "torch_threads": 1, "asr_threads": 1,
         "batch_size": {"efficientnet-lite0": 2}})  # the section says 4
    pass_cache = tmp_path / "pass-cache"
    jobs = onepass.plan(video, onepass.FeatureConfigs.from_params(PARAMS), pass_cache,
                        settings)
    result = onepass.run(jobs, settings)
    assert sorted(result.entries) == ["audio", "text", "visual"]
    assert "audio decode" in result.seconds  # the ASR and logmel shared one 16 kHz decode

    for modality, sub in (("visual", "features/visual/efficientnet-lite0"),
                          ("audio", "features/audio/logmel"), ("text", "features/text/minilm")):
        entry = result.entries[modality]
        assert entry.ok and entry.first_t == 3 and entry.n_rows == 12
        assert entry.computed
        new = ResultCache(pass_cache / sub).array(YID, entry.key)
        old = ResultCache(stage_cache / sub).array(YID, entry.key)  # same key as the stage's
        assert new.shape == old.shape == (12, entry.dim)
        np.testing.assert_allclose(new.astype(np.float32), old.astype(np.float32),
                                   rtol=2e-3, atol=2e-3, err_msg=modality)
    text = ResultCache(pass_cache / "features/text/minilm").array(YID, result.entries["text"].key)
    assert np.abs(text.astype(np.float32)).sum(1).astype(bool).sum() >= 3  # speech was embedded

    assert result.transcript is not None and result.transcript.status == "ok"
    stage_transcript = run_transcribe(asr_backend_from_section(PARAMS["transcribe"]), [video],
                                      tmp_path / "t2",
                                      pass_cache / "transcripts", serial_map)
    assert stage_transcript.reused == 1 and stage_transcript.computed == 0
    words = [w for s in result.transcript.transcript["segments"] for w in s["words"]]
    assert any("pasta" in w["word"].lower() for w in words)

    # the stages reuse what the pass computed: nothing is recomputed
    again = run_stages(speech_folder, pass_cache, tmp_path / "pass-out")
    assert all(r.reused == 1 and r.computed == 0 for r in again.values()), again
    old_doc = (tmp_path / "stage-out" / "transcripts" / f"{YID}.json").read_text()
    assert (tmp_path / "pass-out" / "transcripts" / f"{YID}.json").read_text() == old_doc


def test_settings_are_checked() -> None:
    section = dict(PARAMS["onepass"])
    with pytest.raises(ParamsError, match=r"params onepass: unknown key\(s\) threads"):
        onepass.OnePassSettings.from_section({**section, "threads": 2})
    with pytest.raises(ParamsError, match=r"params onepass\.torch_threads: expected an integer"):
        onepass.OnePassSettings.from_section({**section, "torch_threads": -1})
    with pytest.raises(ParamsError, match=r"params onepass\.asr_threads: missing"):
        onepass.OnePassSettings.from_section({k: v for k, v in section.items()
                                              if k != "asr_threads"})
    with pytest.raises(ParamsError, match=r"params onepass\.batch_size\.minilm: expected a pos"):
        onepass.OnePassSettings.from_section({**section, "batch_size": {"minilm": 0}})
    settings = onepass.OnePassSettings.from_section(section)
    assert settings.concurrent is section["concurrent"]
    assert settings.batch_size == section["batch_size"]
    with pytest.raises(ParamsError, match=r"params embed_text: missing section"):
        onepass.FeatureConfigs.from_params({k: v for k, v in PARAMS.items()
                                            if k != "embed_text"})
