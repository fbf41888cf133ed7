"""Stages `transcribe` and `embed_text`: absolute times, the per-second rule, bad media, reuse."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

import stages.embed_text
import stages.transcribe
from repurpose.features.shards import FeatureStore
from repurpose.features.text import EmbedJob, embed_video, per_second_texts
from repurpose.pervideo.results import ResultCache
from repurpose.pervideo.transcript import Segment, Transcript, Word
from repurpose.runner import serial_map
from tests.synthetic_media import pattern_video, speech_video, write_test_ledger

OFFSET = 30.0
PARAMS = {
    "transcribe": {"backend": "faster-whisper", "device": "auto", "batch_size": 4,
                   "faster-whisper": {"model": "package"}},
    "embed_text": {"backend": "minilm", "device": "auto", "batch_size": 16, "dtype": "float32",
                   "n_shards": 2},
}


def test_per_second_rule():
    seg1 = Segment(10.2, 12.6, "hello there friend", (
        Word(10.2, 10.6, "hello"), Word(10.7, 11.0, "there"), Word(12.1, 12.6, "friend")))
    seg2 = Segment(12.8, 13.4, "bye", (Word(12.8, 13.4, "bye"),))
    seg3 = Segment(15.0, 16.0, "untimed words", ())
    texts = per_second_texts(Transcript("en", (seg1, seg2, seg3)), first=9, n_rows=8)
    assert texts == [
        "",  # 9: nobody speaks
        "hello there friend",  # 10: hello, there (+ rest of their segment)
        "",  # 11: the segment continues but no word is spoken in it ("there" ends at 11.0)
        "hello there friend bye",  # 12: "friend" and "bye" -> both segments, in order
        "bye",  # 13
        "",  # 14
        "untimed words",  # 15: no word times -> the segment's own span [15, 16)
        "",  # 16
    ]


def test_identical_sentences_encoded_once(tmp_path):
    class Counting:
        dim = 3
        calls: list[list[str]] = []

        def embed_texts(self, texts, batch_size):
            self.calls.append(list(texts))
            return np.array([[len(t), 1.0, 0.0] for t in texts], np.float32)

    backend = Counting()
    doc = {"rows": [0, 6], "status": "ok", "flags": [], **Transcript("en", (
        Segment(0.1, 3.9, "one long sentence", tuple(Word(i + 0.1, i + 0.9, f"w{i}")
                                                     for i in range(4))),
        Segment(4.2, 4.8, "short", (Word(4.2, 4.8, "short"),)),
    )).to_json()}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(doc))
    job = EmbedJob("aaaaaaaaaaa", str(path), backend, str(tmp_path / "c"), "k", "float32", 8)
    entry = embed_video(job)
    assert backend.calls == [["one long sentence", "short"]]  # one batch, each text once
    arr = ResultCache(tmp_path / "c").array("aaaaaaaaaaa", "k")
    assert entry.n_rows == 6 and arr.shape == (6, 3)
    assert (arr[:4, 0] == 17).all() and arr[4, 0] == 5 and not arr[5].any()


@pytest.fixture(scope="module")
def text_library(tmp_path_factory) -> Path:
    tts = pytest.importorskip("repurpose.sample.tts", reason="needs repurpose.sample.tts")
    folder = tmp_path_factory.mktemp("speech")
    samples, sr = tts.speak("Welcome back everyone. Today we cook pasta with fresh tomatoes.")
    speech_video(folder / "speechvid01.mp4", samples, sr, lead=2.0, tail=2.0)
    pattern_video(folder / "noaudiovid1.mp4", 5, (), audio="none")
    pattern_video(folder / "silentvid01.mp4", 5, (), audio="silence")
    (folder / "brokenvid01.mp4").write_bytes(os.urandom(3000))
    write_test_ledger(folder, {"speechvid01": {"source_offset": OFFSET}, "noaudiovid1": {},
                               "silentvid01": {}, "brokenvid01": {}})
    return folder


def run_both(tmp: Path, videos: Path, capsys) -> str:  # noqa: ANN001
    params = tmp / "params.yaml"
    params.write_text(yaml.safe_dump(PARAMS))
    ledger = videos / "ledger.parquet"
    rc = stages.transcribe.main(argparse.Namespace(
        params=str(params), videos=videos, ledger=ledger, out=tmp / "transcripts",
        cache=tmp / "cache" / "transcripts", backend=None, retry_failed=False), serial_map)
    assert rc == 0
    rc = stages.embed_text.main(argparse.Namespace(
        params=str(params), transcripts=tmp / "transcripts", ledger=ledger,
        out=tmp / "text", cache=tmp / "cache" / "text", backend=None), serial_map)
    assert rc == 0
    return capsys.readouterr().out


def test_transcribe_and_embed_text_end_to_end(tmp_path, text_library, capsys):
    printed = run_both(tmp_path, text_library, capsys)
    assert "transcribe transcripts (faster-whisper): 4 videos: 4 computed, 0 reused, 1 failed" \
        in printed
    assert "embed_text text (minilm): 4 videos: 3 computed, 0 reused, 1 failed" in printed

    doc = json.loads((tmp_path / "transcripts" / "speechvid01.json").read_text())
    assert doc["time_base"] == "absolute source seconds" and doc["status"] == "ok"
    assert doc["rows"][0] == 30 and doc["source_offset"] == OFFSET
    heard = doc["text"].lower()
    assert sum(w in heard for w in ("welcome", "today", "cook", "pasta", "tomatoes")) >= 3
    word_starts = [w["start"] for s in doc["segments"] for w in s["words"]]
    assert OFFSET + 1.4 <= word_starts[0] <= OFFSET + 3.0  # speech starts at file second 2

    assert not (tmp_path / "transcripts" / "brokenvid01.json").exists()
    no_audio = json.loads((tmp_path / "transcripts" / "noaudiovid1.json").read_text())
    assert no_audio["status"] == "no_audio" and no_audio["segments"] == []
    silent = json.loads((tmp_path / "transcripts" / "silentvid01.json").read_text())
    assert silent["status"] == "silent"
    tstatus = {r["youtube_id"]: r for r in pq.read_table(
        tmp_path / "transcripts" / "videos.parquet").to_pylist()}
    assert tstatus["brokenvid01"]["reason"] == "undecodable"

    store = FeatureStore(tmp_path / "text")
    assert store.meta.dim == 384 and store.meta.params["rule"] == "active-segments-v1"
    assert store.meta.params["asr"][0].startswith("faster-whisper@sha256:")
    v = store.read("speechvid01")
    assert v.t[0] == 30 and len(v.t) == doc["rows"][1] - doc["rows"][0]
    norms = np.linalg.norm(v.embedding, axis=1)
    assert norms[0] == 0  # file second 0: silence
    spoken = {int(t) for t, n in zip(v.t, norms, strict=True) if n > 0.5}
    assert {32, 33} <= spoken and 30 not in spoken
    assert not store.read("noaudiovid1").embedding.any()  # zero vectors, flagged
    tx = {r["youtube_id"]: r for r in pq.read_table(tmp_path / "text" / "videos.parquet")
          .to_pylist()}
    assert "no_audio" in tx["noaudiovid1"]["flags"] and "silent" in tx["silentvid01"]["flags"]
    assert tx["brokenvid01"]["reason"] == "no_transcript"

    printed = run_both(tmp_path, text_library, capsys)  # nothing changed: everything reused
    assert "4 videos: 0 computed, 4 reused, 1 failed" in printed
    assert "4 videos: 0 computed, 3 reused, 1 failed" in printed
    shutil.rmtree(tmp_path / "transcripts")  # outputs deleted (dvc repro): the cache answers
    printed = run_both(tmp_path, text_library, capsys)
    assert "4 videos: 0 computed, 4 reused, 1 failed" in printed
