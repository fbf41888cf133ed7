"""Benchmark: CPU and bytes of a section download, stream copy (new default) vs re-encode (old).

    .venv/bin/python benchmarks/download_sections.py            # 10-min 360p video, 60-s section
    .venv/bin/python benchmarks/download_sections.py --minutes 30 --section 120

Generates (once, cached under --cache-dir) a 640x360 30 fps H.264 + AAC mp4 of --minutes
(keyframes every 2 s, `tests/loopback.make_video`), serves it from tests/loopback.py's server on
127.0.0.1 (send buffer bounded to 64 KiB, so the server's byte count is close to what the
client consumed), and fetches --section seconds from the middle at the default format
(`bv*[height<=360]+ba/b[height<=360]/b`), in one run:

- copy:     `download.cut: copy` (today's default): keyframe-aligned stream copy + rebase;
- reencode: `download.cut: reencode` (the old way): yt-dlp's exact cut, x264 veryfast + AAC;
- whole:    the whole file with plain yt-dlp (no ranges, stream copy), for reference.

Each fetch runs in a fresh worker process through the stage's per-attempt code
(`job._fetch_and_verify`: yt-dlp + ffmpeg, probe, decode checks; then the sha256 the stage
records), so its CPU is measured apart from the server's: `ffmpeg CPU` is the worker's
children (the cut itself), `all CPU` adds the worker's own Python after its imports (yt-dlp
extraction, verification, hashing). Both are given per hour of video asked for. Transfer
is the bytes the server sent. Numbers depend on the machine and its load (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from repurpose.download.ytdlp import DEFAULT_FORMAT  # noqa: E402
from repurpose.media import ffmpeg_exe, probe  # noqa: E402
from tests.loopback import LoopbackServer, make_video  # noqa: E402

VID = "benchvideo0"


def source_video(cache: Path, minutes: float) -> Path:
    """The cached benchmark source (generated on first use)."""
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


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def _both() -> float:
    return _cpu(resource.RUSAGE_SELF) + _cpu(resource.RUSAGE_CHILDREN)


def _timed_rebase(spent: list[float]):  # noqa: ANN202 - wraps ytdlp.rebase_to_zero
    from repurpose.download import ytdlp

    real = ytdlp.rebase_to_zero

    def rebase(*args: object, **kwargs: object) -> float:
        before = _both()
        try:
            return real(*args, **kwargs)
        finally:
            spent.append(_both() - before)

    ytdlp.rebase_to_zero = rebase


def worker(spec: dict) -> dict:
    """One fetch in this process: the stage's attempt code, or plain yt-dlp for `whole`."""
    import av  # noqa: F401 - imported up front, as in the stage's preloaded attempt processes
    import yt_dlp

    from repurpose.download.job import DownloadConfig, Job, _fetch_and_verify
    from repurpose.io import sha256_file

    work = Path(spec["work"])
    work.mkdir(parents=True, exist_ok=True)
    rebase: list[float] = []
    _timed_rebase(rebase)
    self0, kids0 = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    if spec["case"] == "whole":
        opts = {"format": DEFAULT_FORMAT, "merge_output_format": "mp4", "quiet": True,
                "noprogress": True, "outtmpl": str(work / "%(id)s.%(ext)s"),
                "ffmpeg_location": ffmpeg_exe()}
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(spec["url"], download=True)
        path, first = Path(info["requested_downloads"][0]["filepath"]), 0.0
        sha256_file(path)
    else:
        cfg = DownloadConfig(source="url", url_template=spec["template"], format=DEFAULT_FORMAT,
                             retries=0, timeout=60, rate_limit_seconds=0, cut=spec["case"])
        job = Job(VID, spec["start"], spec["end"], str(work), cfg)
        path, _, first = _fetch_and_verify(job, VID, str(work))
        sha256_file(path)
    wall = time.perf_counter() - t0
    return {"python_cpu": _cpu(resource.RUSAGE_SELF) - self0,
            "ffmpeg_cpu": _cpu(resource.RUSAGE_CHILDREN) - kids0, "wall": wall,
            "rebase_cpu": sum(rebase),
            "obtained": probe(path).duration, "first": first, "bytes_on_disk": path.stat().st_size}


def run_case(spec: dict) -> dict:
    """`worker(spec)` in a fresh Python process; its result."""
    out = subprocess.run([sys.executable, __file__, "--worker", json.dumps(spec)], cwd=REPO,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{spec['case']}: worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="source length (default 10)")
    parser.add_argument("--section", type=float, default=60.0, help="section seconds (default 60)")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "repurpose-bench",
        help="where the generated source video is kept between runs",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return 0
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    src = source_video(args.cache_dir, args.minutes)
    data = src.read_bytes()
    info = probe(src)
    length = info.duration
    mid = max(0.0, length / 2 - args.section / 2)
    end = min(length, mid + args.section)
    results = []
    load_before = os.getloadavg()
    with LoopbackServer(sndbuf=65536) as server, tempfile.TemporaryDirectory() as work:
        server.add(f"{VID}.mp4", data)
        template = f"{server.base_url}/{{youtube_id}}.mp4"
        for case in ("copy", "reencode", "whole"):
            server.reset_counters()
            spec = {"case": case, "work": str(Path(work) / case), "template": template,
                    "url": server.url(f"{VID}.mp4"), "start": mid, "end": end}
            result = run_case(spec)
            result["fetched"] = server.total_bytes()
            results.append((case, result))
    _report(src, info, data, args, mid, end, results, load_before)
    return 0


def _report(src: Path, info: object, data: bytes, args: argparse.Namespace, mid: float,
            end: float, results: list[tuple[str, dict]], load_before: tuple) -> None:
    length = info.duration  # type: ignore[attr-defined]
    print(f"source: {src.name}: {length:.0f} s, {info.width}x{info.height} "  # type: ignore[attr-defined]
          f"{info.fps:g} fps, {len(data) / 1e6:.1f} MB "  # type: ignore[attr-defined]
          f"({8 * len(data) / length / 1000:.0f} kbit/s); section [{mid:g}, {end:g}] s; "
          f"format {DEFAULT_FORMAT!r}; ffmpeg {Path(ffmpeg_exe()).name}")
    print(f"machine: {os.cpu_count()} cores, load average {load_before[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after")
    header = (f"{'case':<10}{'asked s':>8}{'file s':>8}{'starts at':>11}{'fetched MB':>11}"
              f"{'% of file':>10}{'ffmpeg CPU s/h':>15}{'rebase s/h':>11}{'all CPU s/h':>12}"
              f"{'wall s':>8}")
    print(header)
    print("-" * len(header))
    for case, r in results:
        asked = length if case == "whole" else end - mid
        per_h = 3600 / asked
        every = r["ffmpeg_cpu"] + r["python_cpu"]
        print(f"{case:<10}{asked:>8.1f}{r['obtained']:>8.1f}{r['first']:>11.3f}"
              f"{r['fetched'] / 1e6:>11.2f}{100 * r['fetched'] / len(data):>9.1f}%"
              f"{r['ffmpeg_cpu'] * per_h:>15.1f}{r['rebase_cpu'] * per_h:>11.1f}"
              f"{every * per_h:>12.1f}{r['wall']:>8.2f}")
    print("s/h: CPU seconds per hour of video asked for. ffmpeg: every ffmpeg the fetch ran "
          "(yt-dlp's, which reads the bytes and cuts, re-encoding for `reencode`; the rebase for "
          "`copy`); rebase: the copy's second pass (included in ffmpeg); all: ffmpeg + the "
          "attempt's Python (yt-dlp, verification, sha256). fetched: bytes the server sent")


if __name__ == "__main__":
    sys.exit(main())
