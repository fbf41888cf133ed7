"""`repurpose clip`: one new video (file or URL) -> clip files, with a tiny trained model.

The model is trained in seconds on synthetic shards whose metadata names the real offline
backends (efficientnet-lite0 at small frame sizes, logmel, minilm over faster-whisper tiny.en),
saved and loaded through the real training code. It is undertrained: the tests check behaviour
(files, times, order, caching, errors), not the quality of the clips.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from repurpose.media import probe
from tests.clip_kit import (
    SIZE,
    build_model,
    make_input,
    run_clip,
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("clip")
    params, model = build_model(root)
    video = make_input(root / "talk.mp4")
    return {"root": root, "params": params, "model": model, "video": video}


@pytest.fixture(scope="module")
def first(setup: dict) -> dict:
    out = setup["root"] / "out"
    rc, stdout, stderr = run_clip(setup, str(setup["video"]), out, "--subtitles", "srt",
                                  "--window-seconds", "20")
    assert rc == 0, stderr
    manifest = json.loads((out / "clips.json").read_text())
    return {"out": out, "stdout": stdout, "manifest": manifest}


def counts(stdout: str) -> dict[str, tuple[int, int]]:
    """step -> (computed, reused) from the printed summaries."""
    found = {}
    for line in stdout.splitlines():
        m = re.match(r"^(\w+) (\w+) \(.*\): 1 videos: (\d+) computed, (\d+) reused", line)
        if m:
            found[m.group(2)] = (int(m.group(3)), int(m.group(4)))
    return found


SRT_TIME = re.compile(r"^(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)$")


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """(start, end, text) per cue; asserts the SRT structure."""
    cues = []
    for i, block in enumerate(text.strip().split("\n\n"), 1):
        lines = block.split("\n")
        assert lines[0] == str(i), block
        m = SRT_TIME.match(lines[1])
        assert m, lines[1]
        g = [int(x) for x in m.groups()]
        start = g[0] * 3600 + g[1] * 60 + g[2] + g[3] / 1000
        end = g[4] * 3600 + g[5] * 60 + g[6] + g[7] / 1000
        assert lines[2:], block
        cues.append((start, end, " ".join(lines[2:])))
    return cues


def frame_at(path: Path, t: float) -> np.ndarray:
    """The RGB frame shown at `t` seconds (float array)."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        shown = None
        for frame in container.decode(stream):
            if frame.time is not None and frame.time > t + 1e-6:
                break
            shown = frame
        return shown.to_ndarray(format="rgb24").astype(np.float32)


def norm(word: str) -> str:
    return re.sub(r"[^a-z0-9']", "", word.lower())


# --- behaviour -------------------------------------------------------------------------------


def test_clips_match_the_manifest(setup: dict, first: dict) -> None:
    man, out = first["manifest"], first["out"]
    source = probe(setup["video"])
    assert man["format"] == "repurpose-clips/1"
    assert man["source"]["path"] == str(setup["video"].resolve()) and man["source"]["url"] is None
    assert man["model"]["features"]["visual"]["backend"] == "efficientnet-lite0"
    assert len(man["windows"]) == 3 and all(b - a <= 20 for a, b in man["windows"])
    clips = man["clips"]
    assert 2 <= len(clips) <= 10
    assert [c["rank"] for c in clips] == list(range(1, len(clips) + 1))
    scores = [c["score"] for c in clips]
    assert scores == sorted(scores, reverse=True)
    for c in clips:
        assert 0 <= c["start"] < c["end"] <= source.duration + 1e-6
        window = man["windows"][c["window"]]  # merged from its window, in absolute seconds
        model_start, model_end = c["snap"]["model"]  # the model's times, before snapping
        assert window[0] <= model_start < model_end <= window[1] + 1e-3
        for side, model_t in (("start", model_start), ("end", model_end)):
            moved = c["snap"][side]
            assert abs(c[side] - model_t - moved["shift"]) < 1e-3
            assert abs(moved["shift"]) <= 3.0 + 0.1 and moved["to"] in (
                "sentence", "word", "shot", "none")
        assert c["file"] == f"clip-{c['rank']:02d}.mp4"
        info = probe(out / c["file"])
        assert abs(info.duration - (c["end"] - c["start"])) <= 0.1, (c, info.duration)
        assert (info.video_codec, info.audio_codec) == ("h264", "aac")
        assert (info.width, info.height) == SIZE
        assert c["file"] in first["stdout"]
    assert not list(out.glob(".*.tmp"))  # nothing half-written is left behind
    # the moov atom comes first (+faststart): a player can start before the download ends
    head = (out / clips[0]["file"]).read_bytes()[:4096]
    assert head.find(b"moov") != -1 and head.find(b"moov") < max(head.find(b"mdat"), 4096)


def test_subtitles_come_from_the_transcript_in_clip_time(first: dict) -> None:
    man, out = first["manifest"], first["out"]
    vid = man["source"]["sha256"][:16]
    doc = out / ".work" / "videos" / vid / "transcripts" / f"{vid}.json"
    transcript = json.loads(doc.read_text())
    spoken = {norm(w["word"]) for s in transcript["segments"] for w in s["words"]}
    heard = 0
    for c in man["clips"]:
        assert c["subtitles"] == c["file"].replace(".mp4", ".srt")
        cues = parse_srt((out / c["subtitles"]).read_text())
        length = c["end"] - c["start"]
        previous_end = 0.0
        for start, end, text in cues:
            assert previous_end - 1e-3 <= start < end <= length + 1e-3
            previous_end = end
            words = [norm(w) for w in text.split()]
            assert all(w in spoken for w in words if w), text
            assert len(text) <= 40
        assert " ".join(t for _, _, t in cues) == c["text"]
        heard += len(cues)
    assert heard > 0


def test_rerun_vertical_reuses_the_cache_and_replaces_the_clips(setup: dict, first: dict
                                                                ) -> None:
    out = first["out"]
    cache = out / ".work" / "cache"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()}
    assert before
    rc, stdout, stderr = run_clip(setup, str(setup["video"]), out, "--vertical",
                                  "--max-clips", "2", "--window-seconds", "20",
                                  "--size", "144x256")
    assert rc == 0, stderr
    assert counts(stdout) == {"transcripts": (0, 1), "visual": (0, 1), "audio": (0, 1),
                              "text": (0, 1)}
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*") if p.is_file()} == before
    man = json.loads((out / "clips.json").read_text())
    assert [c["file"] for c in man["clips"]] == ["clip-01.mp4", "clip-02.mp4"]
    # same model, same windows: the same two best clips as the first run
    assert [(c["start"], c["end"]) for c in man["clips"]] == \
        [(c["start"], c["end"]) for c in first["manifest"]["clips"][:2]]
    assert sorted(p.name for p in out.glob("clip-*")) == [
        "clip-01.jpg", "clip-01.mp4", "clip-02.jpg", "clip-02.mp4"]
    for c in man["clips"]:
        assert c["subtitles"] is None
        info = probe(out / c["file"])
        assert (info.width, info.height) == (144, 256)  # the 72x128 crop, scaled to --size
        assert c["reframe"]["crop"] == [72, 128]
        assert abs(info.duration - c["duration"]) <= 0.1


def test_url_input_downloads_the_whole_video(setup: dict, tmp_path: Path) -> None:
    from tests.loopback import LoopbackServer

    data = setup["video"].read_bytes()
    with LoopbackServer() as server:
        server.add("talk.mp4", data)
        url = server.url("talk.mp4")
        rc, stdout, stderr = run_clip(setup, url, tmp_path / "out", "--max-clips", "1")
        assert rc == 0, stderr
        rc2, stdout2, _ = run_clip(setup, url, tmp_path / "out", "--max-clips", "1")
        assert rc2 == 0
    man = json.loads((tmp_path / "out" / "clips.json").read_text())
    assert man["source"]["url"] == url and man["source"]["input"] == url
    downloaded = Path(man["source"]["path"])
    assert downloaded.parent == (tmp_path / "out" / ".work" / "downloads").resolve()
    assert downloaded.read_bytes() == data  # the whole file, not a cut
    assert f"downloaded {url}: fetched" in stdout and f"downloaded {url}: reused" in stdout2
    assert len(man["clips"]) == 1 and (tmp_path / "out" / "clip-01.mp4").is_file()
    assert man["clips"][0]["end"] <= probe(setup["video"]).duration + 1e-6


def test_burned_subtitles_or_a_clear_error(setup: dict, first: dict, monkeypatch) -> None:  # noqa: ANN001
    from repurpose.clip import export

    out = first["out"]
    best = first["manifest"]["clips"][0]["score"]
    if export.can_burn_subtitles():
        rc, _, stderr = run_clip(setup, str(setup["video"]), out, "--subtitles", "burn",
                                 "--min-score", str(best - 1e-6), "--window-seconds", "20")
        assert rc == 0, stderr
        man = json.loads((out / "clips.json").read_text())
        assert len(man["clips"]) == 1 and man["clips"][0]["burned_subtitles"]
        assert man["clips"][0]["subtitles"] is None
        assert sorted(p.name for p in out.glob("clip-*")) == ["clip-01.jpg", "clip-01.mp4"]
        assert abs(probe(out / "clip-01.mp4").duration - man["clips"][0]["duration"]) <= 0.1
        # the text is in the picture: the bottom of a frame during the first line differs
        # from the source's frame at the same moment (and not elsewhere)
        from repurpose.clip.subtitles import clip_words, cues

        c = man["clips"][0]
        vid = man["source"]["sha256"][:16]
        doc = json.loads((out / ".work" / "videos" / vid / "transcripts" / f"{vid}.json")
                         .read_text())
        line = cues(clip_words(doc, c["start"], c["end"]), c["start"], c["end"])[0]
        at = (line.start + line.end) / 2
        burned = frame_at(out / "clip-01.mp4", at)
        plain = frame_at(setup["video"], c["start"] + at)
        changed = np.abs(burned - plain).max(axis=2) > 80  # text pixels, not coding noise
        h = changed.shape[0]
        assert changed[2 * h // 3:].sum() > 100 > changed[: h // 3].sum(), (
            changed[2 * h // 3:].sum(), changed[: h // 3].sum())
        # a subtitle path that needs filtergraph escaping
        odd = first["out"].parent / "we'ird:dir,x [1];z" / "a.srt"
        odd.parent.mkdir()
        odd.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n")
        export.export_clip(setup["video"], 1.0, 2.0, odd.parent / "a.mp4", *SIZE, burn=odd)
        assert abs(probe(odd.parent / "a.mp4").duration - 1.0) <= 0.1
    monkeypatch.setattr(export, "ffmpeg_filters", lambda ffmpeg: frozenset({"crop"}))
    rc, _, stderr = run_clip(setup, str(setup["video"]), out, "--subtitles", "burn")
    assert rc == 2 and "libass" in stderr and "--subtitles srt" in stderr


@pytest.mark.parametrize("kind", ["missing", "not_video", "html_url", "404_url"])
def test_bad_input_is_a_clear_error(setup: dict, tmp_path: Path, kind: str) -> None:
    from tests.loopback import LoopbackServer

    out = tmp_path / "out"
    if kind == "missing":
        rc, _, stderr = run_clip(setup, str(tmp_path / "nope.mp4"), out)
        assert rc == 2 and f"{tmp_path / 'nope.mp4'}: no such file" in stderr
    elif kind == "not_video":
        bad = tmp_path / "notes.mp4"
        bad.write_bytes(b"this is not a video\n" * 100)
        rc, _, stderr = run_clip(setup, str(bad), out)
        assert rc == 2 and str(bad) in stderr and "not a readable video" in stderr
    else:
        with LoopbackServer() as server:
            server.add("page.html", b"<html><body><p>No video here.</p></body></html>",
                       content_type="text/html")
            url = server.url("page.html" if kind == "html_url" else "gone.mp4")
            rc, _, stderr = run_clip(setup, url, out)
        assert rc == 2 and url in stderr and "cannot download a video" in stderr
    assert stderr.startswith("error: ") and len(stderr.strip().splitlines()) == 1
    assert not list(out.glob("clip-*"))


# --- the model's backends --------------------------------------------------------------------


def test_backends_come_from_the_model_not_params(setup: dict, tmp_path: Path) -> None:
    from repurpose.clip.features import check_backend, model_section

    info = json.loads((setup["model"] / "model.json").read_text())
    params = yaml.safe_load(setup["params"].read_text())
    # params.yaml asks for other frame sizes and another backend: the model's record wins
    params["extract"]["visual"]["backend"] = "clip-vit-b32"
    params["extract"]["visual"]["efficientnet-lite0"].update(resize=256, crop=224)
    section = model_section("visual", info["features"]["visual"], params)
    assert section["backend"] == "efficientnet-lite0"
    assert section["efficientnet-lite0"]["crop"] == 64
    cfg = check_backend("visual", section, info["features"]["visual"])
    assert cfg.backend.key == "efficientnet-lite0" and cfg.backend.settings["crop"] == 64
    assert cfg.backend.weights_identity() == info["features"]["visual"]["weights"]
    # other weights than the model's: an error naming the key, never other features
    other = tmp_path / "other.pth"
    other.write_bytes(b"not the weights")
    params["extract"]["visual"]["efficientnet-lite0"]["weights"] = str(other)
    section = model_section("visual", info["features"]["visual"], params)
    with pytest.raises(Exception, match=r"extract\.visual\.efficientnet-lite0"):
        check_backend("visual", section, info["features"]["visual"])


def test_missing_weights_and_unknown_backends_are_clear_errors(setup: dict, tmp_path: Path
                                                              ) -> None:
    params = yaml.safe_load(setup["params"].read_text())
    params["embed_text"]["minilm"]["weights"] = str(tmp_path / "no-such-folder")
    bad_params = tmp_path / "params.yaml"
    bad_params.write_text(yaml.safe_dump(params))
    rc, _, stderr = run_clip({**setup, "params": bad_params}, str(setup["video"]),
                             tmp_path / "out")
    assert rc == 2 and "embed_text.minilm.weights" in stderr and "no-such-folder" in stderr

    model = tmp_path / "model"
    model.mkdir()
    info = json.loads((setup["model"] / "model.json").read_text())
    info["features"]["audio"]["backend"] = "synthetic-audio"
    (model / "model.json").write_text(json.dumps(info))
    (model / "model.safetensors").write_bytes((setup["model"] / "model.safetensors").read_bytes())
    rc, _, stderr = run_clip({**setup, "model": model}, str(setup["video"]), tmp_path / "out")
    assert rc == 2 and "synthetic-audio" in stderr
    rc, _, stderr = run_clip({**setup, "model": tmp_path / "none"}, str(setup["video"]),
                             tmp_path / "out")
    assert rc == 2 and "model.json: not found" in stderr


# --- pure helpers ----------------------------------------------------------------------------


def test_windows_are_balanced_whole_seconds_of_at_most_the_limit() -> None:
    from repurpose.clip.predict import split_windows

    assert split_windows(50.3, 1800) == [(0.0, 50.3)]
    assert split_windows(3601.0, 1800) == [(0.0, 1201.0), (1201.0, 2402.0), (2402.0, 3601.0)]
    for duration, limit in ((40.348, 20), (100.0, 30), (1799.9, 1800), (7200.5, 1800)):
        spans = split_windows(duration, limit)
        assert spans[0][0] == 0 and spans[-1][1] == duration
        assert all(b - a <= limit and a == int(a) for a, b in spans)
        assert all(spans[i][1] == spans[i + 1][0] for i in range(len(spans) - 1))


def test_vertical_crop_size() -> None:
    from repurpose.clip.export import vertical_size

    assert vertical_size(1920, 1080) == (606, 1080)
    assert vertical_size(224, 128) == (72, 128)
    assert vertical_size(1080, 1920) == (1080, 1920)  # already 9:16
    assert vertical_size(720, 1600) == (720, 1280)  # narrower than 9:16: keep the width
    w, h = vertical_size(641, 361)
    assert w % 2 == 0 and h % 2 == 0 and abs(w / h - 9 / 16) < 0.01


def test_subtitle_lines_and_times() -> None:
    from repurpose.clip.subtitles import clip_words, cues, srt, timestamp
    from repurpose.pervideo.transcript import Segment, Transcript, Word

    words = tuple(Word(10 + 0.4 * i, 10.3 + 0.4 * i, f" w{i}") for i in range(12))
    t = Transcript("en", (Segment(10, 15, "...", words[:9]), Segment(20, 22, "...", (
        Word(20.0, 20.5, " late"), Word(21.9, 22.6, " edge")))))
    got = clip_words(t, 10.5, 22.0)
    assert [w.text for w in got][0] == "w1" and "edge" not in [w.text for w in got]
    lines = cues(got, 10.5, 22.0)
    assert [c.text for c in lines] == ["w1 w2 w3 w4 w5 w6 w7", "w8", "late"]
    assert lines[0].start == 0.0  # w1 starts 0.1 s before the clip: clamped
    assert (lines[1].start, lines[1].end) == pytest.approx((2.7, 3.0))
    assert (lines[2].start, lines[2].end) == pytest.approx((9.5, 10.0))
    assert timestamp(3723.4567) == "01:02:03,457"
    assert srt(lines).startswith("1\n00:00:00,000 --> 00:00:02,600\nw1 w2 w3 w4 w5 w6 w7\n\n2\n")


def test_a_model_recorded_before_precision_existed_gets_fp32_features() -> None:
    """A model.json whose visual record has no `precision` was trained on fp32 vectors; a
    params.yaml asking for bf16 must not change what `repurpose clip` computes for it."""
    from repurpose.clip.features import model_section

    recorded = {"backend": "efficientnet-lite0", "dim": 1280,
                "params": {"resize": 256, "crop": 224, "mean": [0.485, 0.456, 0.406],
                           "std": [0.229, 0.224, 0.225]}}
    params = {"extract": {"visual": {"efficientnet-lite0": {"precision": "bf16"}}}}
    section = model_section("visual", recorded, params)
    assert section["efficientnet-lite0"]["precision"] == "fp32"
    trained_bf16 = {**recorded, "params": {**recorded["params"], "precision": "bf16"}}
    assert model_section("visual", trained_bf16, {})["efficientnet-lite0"]["precision"] == "bf16"
