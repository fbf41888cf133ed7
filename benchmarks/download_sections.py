"""Benchmark: bytes and wall time of section downloads vs whole files, from a loopback server.

    .venv/bin/python benchmarks/download_sections.py            # 10-min 360p video, 60-s section
    .venv/bin/python benchmarks/download_sections.py --minutes 30 --section 120

Generates (once, cached under --cache-dir) a 640x360 30 fps H.264 + AAC mp4 of --minutes,
serves it from tests/loopback.py's server on 127.0.0.1 (send buffer bounded to 64 KiB, so the
server's byte count is close to what the client consumed), and fetches, at the default format
(`bv*[height<=360]+ba/b[height<=360]/b`):

- section:       --section seconds from the middle, through the stage's per-video function
                 (yt-dlp download_ranges + force_keyframes_at_cuts, verify, sha256);
- whole (stage): the whole video as one range, through the same function (re-encoded);
- whole (plain): the whole file with yt-dlp and no ranges (stream copy, no re-encode).

It prints one table: bytes fetched from the server, share of the file, wall time, and wall time
per hour of video obtained. Numbers depend on the machine (re-encoding is CPU-bound).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from repurpose.download.job import DownloadConfig, Job, run_job  # noqa: E402
from repurpose.download.ytdlp import DEFAULT_FORMAT  # noqa: E402
from repurpose.media import ffmpeg_exe, probe  # noqa: E402
from tests.loopback import LoopbackServer, make_video  # noqa: E402

VID = "benchvideo0"


def source_video(cache: Path, minutes: float) -> Path:
    path = cache / f"bench-{minutes:g}min-360p.mp4"
    if not path.is_file():
        print(f"generating {path} ({minutes:g} min, 640x360) ...", file=sys.stderr, flush=True)
        tmp = path.with_suffix(".tmp.mp4")
        make_video(
            tmp, duration=minutes * 60, width=640, height=360, fps=30,
            pattern="testsrc2", crf=30, preset="veryfast",
        )
        tmp.rename(path)
    return path


def stage_fetch(server: LoopbackServer, out: Path, start: float, end: float) -> tuple[float, float]:
    """(wall seconds, obtained seconds) of one run_job over [start, end]."""
    cfg = DownloadConfig(
        source="url", url_template=f"{server.base_url}/{{youtube_id}}.mp4", format=DEFAULT_FORMAT,
        retries=0, timeout=60, rate_limit_seconds=0,
    )
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    outcome = run_job(Job(VID, start, end, str(out), cfg))
    wall = time.perf_counter() - t0
    if not outcome.row.ok:
        raise SystemExit(f"fetch failed: {outcome.row.error_category}: {outcome.row.error_message}")
    return wall, outcome.row.duration


def plain_fetch(server: LoopbackServer, out: Path) -> tuple[float, float]:
    """(wall seconds, obtained seconds) of a plain yt-dlp download of the whole file."""
    import yt_dlp

    out.mkdir(parents=True, exist_ok=True)
    opts = {
        "format": DEFAULT_FORMAT, "merge_output_format": "mp4", "quiet": True,
        "noprogress": True, "outtmpl": str(out / "%(id)s.%(ext)s"),
        "ffmpeg_location": ffmpeg_exe(),
    }
    t0 = time.perf_counter()
    with yt_dlp.YoutubeDL(opts) as ydl:
        info = ydl.extract_info(server.url(f"{VID}.mp4"), download=True)
    wall = time.perf_counter() - t0
    path = Path(info["requested_downloads"][0]["filepath"])
    return wall, probe(path).duration


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="source length (default 10)")
    parser.add_argument("--section", type=float, default=60.0, help="section seconds (default 60)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "repurpose-bench",
        help="where the generated source video is kept between runs",
    )
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    src = source_video(args.cache_dir, args.minutes)
    data = src.read_bytes()
    info = probe(src)
    length = info.duration
    mid = max(0.0, length / 2 - args.section / 2)
    rows = []
    with LoopbackServer(sndbuf=65536) as server, tempfile.TemporaryDirectory() as work:
        server.add(f"{VID}.mp4", data)
        end = mid + args.section
        cases = [
            (f"section {args.section:g} s", lambda d: stage_fetch(server, d, mid, end)),
            ("whole (stage, re-encoded)", lambda d: stage_fetch(server, d, 0.0, length)),
            ("whole (plain yt-dlp copy)", lambda d: plain_fetch(server, d)),
        ]
        for i, (name, fetch) in enumerate(cases):
            server.reset_counters()
            wall, obtained = fetch(Path(work) / str(i))
            fetched = server.total_bytes()
            rows.append((name, obtained, fetched, wall))
    print(
        f"source: {src.name}: {length:.0f} s, {info.width}x{info.height} {info.fps:g} fps, "
        f"{len(data) / 1e6:.1f} MB ({8 * len(data) / length / 1000:.0f} kbit/s); "
        f"format {DEFAULT_FORMAT!r}; ffmpeg {Path(ffmpeg_exe()).name}"
    )
    header = f"{'case':<28}{'obtained s':>11}{'fetched MB':>12}{'% of file':>11}{'wall s':>9}"
    header += f"{'wall s / video-h':>18}"
    print(header)
    print("-" * len(header))
    for name, obtained, fetched, wall in rows:
        per_hour = wall / (obtained / 3600) if obtained else float("nan")
        print(
            f"{name:<28}{obtained:>11.1f}{fetched / 1e6:>12.2f}{100 * fetched / len(data):>10.1f}%"
            f"{wall:>9.2f}{per_hour:>18.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
