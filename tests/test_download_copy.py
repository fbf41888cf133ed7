"""Stream-copied sections (issue 11 item 1): the file starts at the keyframe before the range,
the ledger records that first packet time as `source_offset`, and the per-second features of
the section equal those of the same absolute seconds of the whole file.

The source has keyframes 10 s apart (25 fps, `-g 250`, no scene-cut keyframes), a picture that
changes every frame (testsrc's frame counter) and a tone whose pitch changes every second, so a
row placed one second off, or a frame off by a few, would not match.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

import stages.download as stage
from repurpose.download import ledger as L
from repurpose.download.cut import container_start, copy_cut
from repurpose.download.job import DownloadConfig, Job, run_job
from repurpose.features.config import ModalityConfig
from repurpose.features.extract import ExtractJob, extract_video, video_key
from repurpose.io import sha256_file
from repurpose.media import probe, run_ffmpeg
from repurpose.pervideo.inputs import VideoInput, load_videos
from repurpose.pervideo.results import ResultCache
from repurpose.runner import serial_map
from repurpose.splits.tables import VideoRanges, write_videos_table
from tests.loopback import LoopbackServer

VID = "keyframes10"
RANGE = (23.4, 31.0)  # keyframes at 0, 10, 20, 30: a copy starts at 20
SECTIONS = {
    "visual": {"backend": "efficientnet-lite0", "device": "cpu", "batch_size": 8,
               "dtype": "float32", "n_shards": 1,
               "efficientnet-lite0": {"weights": "package", "resize": 72, "crop": 64}},
    "audio": {"backend": "logmel", "device": "cpu", "batch_size": 8, "dtype": "float32",
              "n_shards": 1, "logmel": {"sample_rate": 16000, "n_mels": 64}},
}
PARAMS = """download:
  source: {source}
  url_template: {template}
  format: "bv*[height<=360]+ba/b[height<=360]/b"
  cut: {cut}
  retries: 0
  backoff_base: 0.01
  backoff_max: 1
  timeout: 30
  rate_limit_seconds: 0
  cookies_file: null
  max_failed_fraction: 0.5
  deadline: 120
"""


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s, 320x180, keyframes exactly every 10 s, B-frames (as YouTube's H.264 has), AAC
    audio changing pitch each second."""
    out = tmp_path_factory.mktemp("src") / f"{VID}.mp4"
    tone = "sin(2*PI*(300+40*mod(floor(t),9))*t)"
    run_ffmpeg(["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25:duration=40",
                "-f", "lavfi", "-i", f"aevalsrc='{tone}':s=44100:d=40",
                "-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "250",
                "-keyint_min", "250", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
                "-c:a", "aac", "-b:a", "96k",
                "-movflags", "+faststart", "-t", "40", str(out)])
    return out


def keyframe_times(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as c:
        return [float(p.pts * p.time_base) for p in c.demux(c.streams.video[0])
                if p.pts is not None and p.is_keyframe]


def features(video: VideoInput, modality: str, cache: Path) -> tuple[int, np.ndarray]:
    """(first absolute row, vectors) of `video` through the extract stage's per-video code."""
    cfg = ModalityConfig.from_section(modality, SECTIONS[modality], f"extract.{modality}")
    key = video_key(video, cfg, cfg.backend.weights_identity())
    entry = extract_video(ExtractJob(video, cfg.backend, str(cache / modality), key, "float32",
                                     cfg.batch_size))
    assert entry.ok, entry
    return entry.first_t, ResultCache(cache / modality).array(video.youtube_id, key)


def run_stage(tmp: Path, local: Path | None, cut: str, template: str = "null") -> L.LedgerRow:
    (tmp / "params.yaml").write_text(PARAMS.format(
        source="local" if local else "url", template=template, cut=cut), encoding="utf-8")
    write_videos_table(tmp / "videos.parquet", [VideoRanges(VID, (RANGE,), ("test",), 1)])
    args = argparse.Namespace(params=str(tmp / "params.yaml"), videos=str(tmp / "videos.parquet"),
                              out=str(tmp / "out"), local_dir=str(local) if local else None,
                              retry_failed=False)
    assert stage.main(args, serial_map) == 0
    rows = {r.youtube_id: r for r in L.read_ledger(tmp / "out" / L.LEDGER_NAME)}
    return rows[VID]


def test_copy_starts_at_the_keyframe_before_the_range_and_covers_it(
    tmp_path: Path, source: Path
) -> None:
    assert keyframe_times(source)[:4] == [0.0, 10.0, 20.0, 30.0]
    row = run_stage(tmp_path, source.parent, "copy")
    assert (row.status, row.cut, row.requested_start, row.requested_end) == (
        "ok", "copy", RANGE[0], RANGE[1])
    # the first packet belongs to the keyframe at 20 s: with B-frames its decode time is two
    # frames earlier and the audio starts at the AAC frame holding that, so a fractional offset
    # a little before 20 s, 3.4 s and more before the range
    assert 19.8 < row.source_offset <= 20.0 and row.source_offset != int(row.source_offset)
    path = tmp_path / "out" / row.file
    info = probe(path)
    assert container_start(path) == 0.0  # the file itself starts at 0
    assert abs(row.duration - info.duration) < 1e-3
    # the needed range is covered: [offset, offset + duration] contains [23.4, 31.0]
    assert row.source_offset <= RANGE[0] and row.source_offset + info.duration >= RANGE[1] - 0.05
    # the file opens on that keyframe (no re-encode), at file time 20 - source_offset
    assert abs(keyframe_times(path)[0] - (20.0 - row.source_offset)) < 1e-3
    # one GOP more than the range, not the whole file
    assert path.stat().st_size < 0.5 * source.stat().st_size

    # the ledger row is what the feature stages read: rows by absolute second from 20
    (video,) = load_videos(tmp_path / "out" / L.LEDGER_NAME, tmp_path / "out")
    assert video.source_offset == row.source_offset

    # rerun: reused (requested range and cut match, though source_offset differs from 23.4)
    out = run_job(Job(VID, *RANGE, str(tmp_path / "out"),
                      DownloadConfig.from_section(_section("copy"), str(source.parent)),
                      previous=row))
    assert out.action == "reused"
    # asking for the exact cut instead fetches again, and starts at the range start
    again = run_job(Job(VID, *RANGE, str(tmp_path / "out"),
                        DownloadConfig.from_section(_section("reencode"), str(source.parent)),
                        previous=row))
    assert again.action == "fetched" and again.row.cut == "reencode"
    assert again.row.source_offset == RANGE[0]
    assert abs(again.row.duration - (RANGE[1] - RANGE[0])) <= 0.1


def _section(cut: str) -> dict:
    import yaml

    return yaml.safe_load(PARAMS.format(source="local", template="null", cut=cut))["download"]


def test_section_features_equal_the_whole_files_at_the_same_absolute_seconds(
    tmp_path: Path, source: Path
) -> None:
    section = tmp_path / f"{VID}.mp4"
    offset = copy_cut(source, RANGE[0], RANGE[1] - RANGE[0], section)
    assert 19.8 < offset <= 20.0
    part = VideoInput(VID, str(section), sha256_file(section), offset, probe(section).duration,
                      True)
    whole = VideoInput("wholefile01", str(source), sha256_file(source), 0.0, 40.0, True)
    needed = range(int(RANGE[0]), int(RANGE[1]))  # absolute rows the range needs
    for modality, tolerance in (("visual", 1e-4), ("audio", 0.5)):
        first, rows = features(part, modality, tmp_path / "cache")
        first_w, rows_w = features(whole, modality, tmp_path / "cache")
        assert first == 20 and first_w == 0 and first + len(rows) >= RANGE[1]
        assert set(needed) <= set(range(first, first + len(rows)))
        same = rows_w[first:first + len(rows)]  # the whole file's rows at the same seconds
        # visual: the same packets decode to the same frames, so the same vectors; audio
        # (log-mel dB, values up to ~100): the 16-kHz resampler starts at another sub-sample
        # phase (the file starts 6 us off the sample grid) and the first AAC frame lacks its
        # predecessor, a few tenths of a dB at most
        assert np.abs(rows - same).max() <= tolerance, (modality, np.abs(rows - same).max())
        assert np.abs(rows - same).mean() <= tolerance / 10, modality
        # a placement one second off would not pass: neighbouring seconds differ far more
        shifted = rows_w[first + 1:first + 1 + len(rows)]
        assert np.abs(rows - shifted).max(axis=1).min() > 20 * tolerance, modality


def test_url_source_copies_the_section_with_the_keyframe_offset(
    tmp_path: Path, source: Path
) -> None:
    with LoopbackServer() as server:
        server.add(f"{VID}.mp4", source.read_bytes())
        row = run_stage(tmp_path, None, "copy", f'"{server.base_url}/{{youtube_id}}.mp4"')
    assert (row.status, row.source, row.cut) == ("ok", "url", "copy")
    assert 19.8 < row.source_offset <= 20.0
    path = tmp_path / "out" / row.file
    assert row.source_offset + probe(path).duration >= RANGE[1] - 0.05
    assert container_start(path) == 0.0
    assert path.stat().st_size < 0.5 * source.stat().st_size  # the range and its GOP
    # the same bytes as the local copy of the same range (the same packets, rebased)
    local = tmp_path / "local.mp4"
    assert copy_cut(source, RANGE[0], RANGE[1] - RANGE[0], local) == row.source_offset
    assert sha256_file(local) == row.sha256
