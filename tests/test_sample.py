"""The built-in `sample` dataset: plan, split-file format, determinism, and the signal that
the picture, the sound and the speech carry inside clips versus outside (real ffmpeg)."""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml

from repurpose.media import count_video_frames, probe
from repurpose.params import ParamsError
from repurpose.runner import serial_map
from repurpose.sample import synth, tts
from repurpose.sample.spec import SPLITS, SampleConfig, plan_sample, split_entries, window_bounds
from stages import sample as stage

ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
KEYS = ["youtube_id", "timeRange", "segments", "timeRangeOffset", "segmentsOffset", "coverage"]
SMALL = {
    "seed": 7,
    "n_videos": 3,
    "min_duration": 30,
    "max_duration": 50,
    "window_seconds": 20,
    "min_clip": 4,
    "max_clip": 9,
    "width": 192,
    "height": 108,
    "fps": 10,
    "val_share": 0.2,
    "test_share": 0.2,
}


def write_params(path: Path, **overrides: object) -> Path:
    path.write_text(yaml.safe_dump({"sample": {**SMALL, **overrides}}), encoding="utf-8")
    return path


def run_stage(params: Path, root: Path, mapper=serial_map) -> int:  # noqa: ANN001
    args = argparse.Namespace(
        params=str(params), out_splits=str(root / "splits"), out_videos=str(root / "videos")
    )
    return stage.main(args, mapper=mapper)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two generations of the small sample: A (run twice, over a stale file) and B."""
    base = tmp_path_factory.mktemp("sample")
    params = write_params(base / "params.yaml")
    a, b = base / "a", base / "b"
    assert run_stage(params, a) == 0
    # a file of an earlier, larger sample and a foreign file: the rerun removes only the first
    (a / "videos" / "sample00042.mp4").write_bytes(b"stale")
    (a / "videos" / "notes.txt").write_text("keep me")
    assert run_stage(params, a) == 0
    assert run_stage(params, b) == 0
    return a, b


def load_splits(root: Path) -> dict[str, list[dict]]:
    return {name: json.loads((root / "splits" / f"{name}.json").read_text()) for name in SPLITS}


def outside_stretches(duration: float, clips: list[list[float]]) -> list[tuple[float, float]]:
    return synth.outside_stretches(duration, tuple(tuple(c) for c in clips))


def video_clips(root: Path, vid: str) -> tuple[float, list[list[float]]]:
    script = json.loads((root / "videos" / f"{vid}.script.json").read_text())
    return float(script["duration"]), script["clips"]


# ---------------------------------------------------------------- split files


def test_split_files_have_repurpose10k_format(runs: tuple[Path, Path]) -> None:
    root = runs[0]
    splits = load_splits(root)
    video_split: dict[str, str] = {}
    starts, bounds = [], []
    for name, entries in splits.items():
        assert entries, f"{name} split is empty"
        for e in entries:
            assert list(e) == KEYS
            vid = e["youtube_id"]
            assert ID_RE.match(vid)
            assert video_split.setdefault(vid, name) == name, f"{vid} in two splits"
            video = root / "videos" / f"{vid}.mp4"
            assert video.is_file()
            start, end = e["timeRange"]
            duration = probe(video).duration
            assert 0 <= start < end <= duration + 0.05
            assert end - start <= SMALL["window_seconds"]
            assert e["timeRangeOffset"] == [0, end - start]
            assert e["segments"], "a window without clips"
            assert e["segmentsOffset"] == [[a - start, b - start] for a, b in e["segments"]]
            prev_end = start
            for a, b in e["segments"]:
                assert prev_end <= a < b <= end, (e, a, b)  # inside the window, sorted, apart
                assert SMALL["min_clip"] - 0.011 <= b - a <= SMALL["max_clip"] + 0.011
                assert round(a, 2) == a and round(b, 2) == b
                prev_end = b
                bounds += [a, b]
            clip_s = sum(b - a for a, b in e["segments"])
            assert e["coverage"] == pytest.approx(clip_s / round(duration))
            starts.append(start)
    assert sum(start > 0 for start in starts) >= 2, "no window starts past 0"
    assert any(x != int(x) for x in bounds), "no fractional clip bounds"
    assert sorted(video_split) == ["sample00001", "sample00002", "sample00003"]
    assert sorted(video_split.values()) == ["test", "train", "val"]


def test_split_files_pass_the_project_validator(runs: tuple[Path, Path]) -> None:
    schema = pytest.importorskip("repurpose.splits.schema")
    for name in SPLITS:
        parsed = schema.load_split(runs[0] / "splits" / f"{name}.json")
        assert len(parsed.entries) >= 1 and not parsed.duplicates


def test_plan_of_a_ten_video_config() -> None:
    cfg = SampleConfig(n_videos=10, min_duration=120, max_duration=240, window_seconds=120,
                       val_share=0.2, test_share=0.2)
    specs = plan_sample(cfg)
    assert [s.youtube_id for s in specs] == [f"sample{i:05d}" for i in range(1, 11)]
    assert sorted(s.split for s in specs).count("train") == 6
    assert [s.split for s in specs].count("val") == [s.split for s in specs].count("test") == 2
    assert cfg.height <= 360
    for s in specs:
        assert 120 <= s.duration <= 240
        assert len(s.windows) >= 2 and s.windows[0].start == 0
        for w in s.windows:
            assert w.end - w.start <= cfg.window_seconds
            assert 1 <= len(w.clips) <= 5
            assert all(w.start <= a < b <= w.end for a, b in w.clips)
    # same seed, same plan; another seed, another plan; more videos keep the earlier ones
    assert plan_sample(cfg) == specs
    assert plan_sample(replace(cfg, seed=1)) != specs
    more = plan_sample(replace(cfg, n_videos=12))[:10]  # splits are dealt anew, videos not
    assert [(s.duration, s.windows, s.seed) for s in more] == [
        (s.duration, s.windows, s.seed) for s in specs
    ]
    entries = split_entries(specs)
    assert sum(len(v) for v in entries.values()) == sum(len(s.windows) for s in specs)


def test_window_bounds_like_the_real_data() -> None:
    assert window_bounds(4307, 1800) == [(0, 1800), (1800, 3600), (3600, 4307.0)]
    assert window_bounds(3600, 1800) == [(0, 1800), (1800, 3600.0)]
    assert window_bounds(266, 1800) == [(0, 266.0)]


# ---------------------------------------------------------------- determinism, rerun


def test_two_generations_are_identical(runs: tuple[Path, Path]) -> None:
    a, b = runs
    for name in SPLITS:
        assert (a / "splits" / f"{name}.json").read_bytes() == (
            b / "splits" / f"{name}.json"
        ).read_bytes()
    ids = sorted(p.stem for p in (a / "videos").glob("sample*.mp4"))
    assert ids == ["sample00001", "sample00002", "sample00003"]
    for vid in ids:
        va, vb = a / "videos" / f"{vid}.mp4", b / "videos" / f"{vid}.mp4"
        assert va.read_bytes() == vb.read_bytes()  # same ffmpeg: bit-exact output
        ia, ib = probe(va), probe(vb)
        assert ia == ib
        assert (ia.width, ia.height, ia.fps) == (SMALL["width"], SMALL["height"], SMALL["fps"])
        assert (ia.video_codec, ia.audio_codec) == ("h264", "aac")
        frames = count_video_frames(va)
        assert frames == count_video_frames(vb)
        assert frames == round(ia.duration) * SMALL["fps"]
        assert (a / "videos" / f"{vid}.script.json").read_bytes() == (
            b / "videos" / f"{vid}.script.json"
        ).read_bytes()


def test_rerun_overwrites_and_removes_only_stale_sample_files(runs: tuple[Path, Path]) -> None:
    videos = runs[0] / "videos"
    assert not (videos / "sample00042.mp4").exists()
    assert (videos / "notes.txt").read_text() == "keep me"
    assert not list(videos.glob(".*")), "temporary files left behind"
    assert not list((runs[0] / "splits").glob(".*"))


# ---------------------------------------------------------------- signal inside vs outside


def _frame_stats(path: Path) -> list[tuple[float, float, float]]:
    """(time, mean brightness, mean saturation) of every decoded frame, RGB in 0..1."""
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(np.float64) / 255.0
            hi, lo = rgb.max(axis=2), rgb.min(axis=2)
            sat = np.where(hi > 0, (hi - lo) / np.maximum(hi, 1e-9), 0.0)
            out.append((float(frame.time), float(rgb.mean()), float(sat.mean())))
    return out


def _motion(path: Path, times: list[float]) -> float:
    """Mean absolute difference between consecutive frames whose time is in `times`."""
    import av

    wanted = set(round(t, 3) for t in times)
    prev, diffs = None, []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if round(float(frame.time), 3) not in wanted:
                prev = None
                continue
            cur = frame.to_ndarray(format="gray").astype(np.float64)
            if prev is not None:
                diffs.append(np.abs(cur - prev).mean())
            prev = cur
    return float(np.mean(diffs))


def _inside(t: float, clips: list[list[float]], margin: float = 0.0) -> bool:
    return any(a + margin <= t <= b - margin for a, b in clips)


def _outside(t: float, clips: list[list[float]], margin: float = 0.0) -> bool:
    return all(t < a - margin or t > b + margin for a, b in clips)


def test_picture_is_bright_colourful_and_moving_inside_clips(runs: tuple[Path, Path]) -> None:
    root = runs[0]
    for vid in ("sample00001", "sample00002", "sample00003"):
        _, clips = video_clips(root, vid)
        stats = _frame_stats(root / "videos" / f"{vid}.mp4")
        inside = [s for s in stats if _inside(s[0], clips, 0.2)]
        outside = [s for s in stats if _outside(s[0], clips, 0.2)]
        assert inside and outside
        # every frame, not just on average: the picture alone tells clips apart
        assert min(s[1] for s in inside) > max(s[1] for s in outside) + 0.2, vid
        assert min(s[2] for s in inside) > max(s[2] for s in outside) + 0.3, vid
        in_motion = _motion(root / "videos" / f"{vid}.mp4", [s[0] for s in inside])
        out_motion = _motion(root / "videos" / f"{vid}.mp4", [s[0] for s in outside])
        assert in_motion > 3 * out_motion, (vid, in_motion, out_motion)


def _audio(path: Path) -> tuple[np.ndarray, int]:
    """The first audio stream as mono float64 in -1..1, and its rate."""
    import av

    chunks, rate = [], 0
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.codec_context.sample_rate
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            if arr.dtype.kind == "i":
                arr = arr / 32768.0
            chunks.append(arr.reshape(len(frame.layout.channels), -1).mean(axis=0))
    return np.concatenate(chunks).astype(np.float64), rate


def _tone_share(x: np.ndarray, rate: int, root: float) -> float:
    """Share of the spectrum's energy at the chord frequencies on `root` (+-3 Hz)."""
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    band = np.zeros_like(freqs, dtype=bool)
    for ratio in synth.CHORD:
        band |= np.abs(freqs - root * ratio) <= 3.0
    return float(spec[band].sum() / spec.sum())


def test_sound_differs_inside_clips(runs: tuple[Path, Path]) -> None:
    root = runs[0]
    for vid in ("sample00001", "sample00002", "sample00003"):
        duration, clips = video_clips(root, vid)
        audio, rate = _audio(root / "videos" / f"{vid}.mp4")
        assert len(audio) == pytest.approx(duration * rate, abs=0.1 * rate)

        def seg(a: float, b: float, audio=audio, rate=rate) -> np.ndarray:  # noqa: ANN001
            return audio[int((a + 0.3) * rate) : int((b - 0.3) * rate)]

        ins = [seg(a, b) for a, b in clips]
        outs = [seg(a, b) for a, b in outside_stretches(duration, clips) if b - a > 2.0]
        rms_in = min(float(np.sqrt(np.mean(x**2))) for x in ins)
        rms_out = max(float(np.sqrt(np.mean(x**2))) for x in outs)
        assert rms_in > 1.5 * rms_out, (vid, rms_in, rms_out)
        # the chord bed: its root is the one whose chord holds most energy inside the clips
        bed = max(synth.ROOTS, key=lambda r: sum(_tone_share(x, rate, r) for x in ins))
        tone_in = min(_tone_share(x, rate, bed) for x in ins)
        tone_out = max(_tone_share(x, rate, bed) for x in outs)
        assert tone_in > 0.2 and tone_in > 5 * tone_out, (vid, bed, tone_in, tone_out)


def test_speech_script_highlights_inside_fillers_outside(runs: tuple[Path, Path]) -> None:
    root = runs[0]
    for vid in ("sample00001", "sample00002", "sample00003"):
        script = json.loads((root / "videos" / f"{vid}.script.json").read_text())
        clips = script["clips"]
        kinds = {line["kind"] for line in script["speech"]}
        assert kinds == {"highlight", "filler"}
        for line in script["speech"]:
            assert line["start"] < line["end"] <= script["duration"]
            if line["kind"] == "highlight":
                assert line["text"] in synth.HIGHLIGHT_LINES
                assert any(a <= line["start"] and line["end"] <= b for a, b in clips), line
            else:
                assert line["text"] in synth.FILLER_LINES
                assert all(line["end"] <= a or line["start"] >= b for a, b in clips), line
        # speech is denser inside clips than outside
        clip_s = sum(b - a for a, b in clips)
        spoken_in = sum(x["end"] - x["start"] for x in script["speech"] if x["kind"] == "highlight")
        spoken_out = sum(x["end"] - x["start"] for x in script["speech"] if x["kind"] == "filler")
        assert spoken_in / clip_s > 2 * spoken_out / (script["duration"] - clip_s)


# ---------------------------------------------------------------- TTS


def test_tts_speaks_a_sentence() -> None:
    text = "Hello world, this is a test of the sample dataset."
    samples, rate = tts.speak(text)
    assert rate == 22050 == tts.sample_rate()
    assert samples.dtype == np.int16 and samples.ndim == 1
    seconds = len(samples) / rate
    assert 1.5 < seconds < 8.0, seconds
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
    assert rms > 500, rms
    # voiced most of the time, deterministic, and slower speech is longer
    frames = samples[: len(samples) // 441 * 441].reshape(-1, 441).astype(np.float64)
    assert np.mean(np.sqrt((frames**2).mean(axis=1)) > 300) > 0.5
    again, _ = tts.speak(text)
    assert np.array_equal(samples, again)
    slow, _ = tts.speak(text, rate=120)
    assert len(slow) > 1.2 * len(samples)


def test_tts_rejects_empty_text() -> None:
    with pytest.raises(tts.SpeechError, match="empty"):
        tts.speak("   ")


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"min_duration": 60, "max_duration": 40}, "min_duration"),
        ({"min_clip": 12, "max_clip": 8}, "min_clip"),
        ({"window_seconds": 5}, "window_seconds"),
        ({"n_videos": 2}, "n_videos"),
        ({"width": 191}, "width"),
        ({"fps": "ten"}, "fps"),
    ],
)
def test_bad_params_give_a_clear_error(tmp_path: Path, overrides: dict, key: str) -> None:
    params = write_params(tmp_path / "params.yaml", **overrides)
    with pytest.raises(ParamsError, match=rf"sample\.{key}"):
        run_stage(params, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_missing_key_names_it(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"sample": {k: v for k, v in SMALL.items() if k != "seed"}}))
    with pytest.raises(ParamsError, match=r"sample\.seed: missing"):
        run_stage(params, tmp_path / "out")


def test_cli_reports_bad_params(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from repurpose.cli import STAGES, main

    for module, _ in STAGES.values():  # the CLI imports every stage module
        pytest.importorskip(module)

    params = write_params(tmp_path / "params.yaml", min_duration=60, max_duration=40)
    out = tmp_path / "out"
    rc = main(
        ["sample", "--no-prefect", "--params", str(params),
         "--out-splits", str(out / "splits"), "--out-videos", str(out / "videos")]
    )  # fmt: skip
    assert rc == 2
    assert "sample.min_duration" in capsys.readouterr().err


def test_a_failed_video_fails_the_stage_naming_it(tmp_path: Path) -> None:
    params = write_params(tmp_path / "params.yaml")

    def mapper(fn, items, *, key):  # noqa: ANN001, ANN202 - a Mapper that fails one item
        del fn
        for item in items:
            if key(item) == "sample00002":
                yield item, RuntimeError("ffmpeg exploded")
            else:
                yield item, {"youtube_id": key(item)}

    with pytest.raises(stage.SampleError, match=r"sample00002: RuntimeError: ffmpeg exploded"):
        run_stage(params, tmp_path / "out", mapper=mapper)
    assert not (tmp_path / "out" / "splits").exists(), "split files written despite a failure"


def test_duration_choice_avoids_tails_too_short_for_a_clip() -> None:
    cfg = SampleConfig(min_duration=100, max_duration=300, window_seconds=60, min_clip=10)
    for spec in plan_sample(cfg):
        tail = spec.duration - math.floor(spec.duration / 60) * 60
        assert tail == 0 or tail >= 12
        assert spec.windows[-1].end == spec.duration
