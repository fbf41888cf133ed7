"""Training-loader throughput and memory on synthetic shards at the paper's dims, in one run.

    python benchmarks/loader.py                        # 1,000 videos, 256 shards, ~10 GB
    python benchmarks/loader.py --videos 200 --keep    # smaller; keep the data for a rerun

Makes `--videos` videos shaped like Repurpose-10K (windows and clips of real videos from the
split files, drawn with replacement: the real length distribution) with random float16 vectors
at 512/2048/384 dims in `--shards` shards through the real writer, prepares the windows table
and plans the train windows as training does, then times the training DataLoader (the same
`epoch_batches` shuffle, `collate`, batch 16) with 0, 1 and 2 worker processes. Each case runs
in its own process; peak memory is the sampled sum of PSS over the process and its workers.
Today's way (shards written with pyarrow's default dictionary encoding, every column read,
float32 items, zero-filled private batches, pyarrow's default allocator: the code before
the fix, copied here) is timed on
a `--legacy-videos` subset beside the same subset with the current code and format. Memory is
measured at two dataset sizes and two `cache_videos` to show what bounds it. The last two
cases set glibc's MALLOC_MMAP_THRESHOLD_/TRIM_THRESHOLD_ so freed buffers are reused instead
of being returned and faulted in again (a deployment setting, not in the library). The data
lives in the page cache after writing: these are decode-bound figures, not disk-bound ones.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repurpose.features import shards  # noqa: E402
from repurpose.quality.shapes import (  # noqa: E402
    feature_rows,
    real_like_splits,
    write_feature_shards,
)

PAPER = {"visual": 512, "audio": 2048, "text": 384}
REAL = sorted((Path(__file__).resolve().parents[2] / "shared/data/repurpose10k").glob("*.json"))
DATASET_SECONDS = 16.3e6  # Repurpose-10K: ~4,540 h
BATCH = 16


def prepare(root: Path, n_videos: int, n_shards: int, legacy_videos: int, seed: int) -> dict:
    """Split files, windows table and shards (current format; legacy format for a subset)."""
    from repurpose.splits.schema import load_split
    from repurpose.splits.windows import windows_table, write_windows

    splits = real_like_splits(REAL, n_videos, seed)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    entries = []
    for name, items in splits.items():
        path = root / "splits" / f"{name}.json"
        path.write_text(json.dumps(items))
        entries += load_split(path, split=name).unique_entries()
    write_windows(root / "windows.parquet", windows_table(entries))
    rows = feature_rows(e for items in splits.values() for e in items)
    began = time.perf_counter()
    counts = write_feature_shards(root / "features", rows, PAPER, n_shards, seed=seed)
    counts["write_s"] = time.perf_counter() - began
    subset = {yid: rows[yid] for yid in sorted(rows)[:legacy_videos]}
    out = {"current": counts, "splits": {k: len(v) for k, v in splits.items()}}
    for name, options in (("legacy", {"use_dictionary": True}), ("subset", {})):
        began = time.perf_counter()
        with mock.patch.dict(shards.WRITER_OPTIONS, options):
            c = write_feature_shards(root / name, subset, PAPER, n_shards, seed=seed)
        out[name] = {**c, "write_s": time.perf_counter() - began}
    return out


class LegacyStore(shards.FeatureStore):
    """Today's reader before the fix: every column of the row group."""

    def read(self, youtube_id: str) -> shards.VideoFeatures:
        """All columns read, like the reader before the fix."""
        import pyarrow.parquet as pq

        path, group = self._index[1][youtube_id]
        return shards._to_video(youtube_id, pq.ParquetFile(path).read_row_group(group),
                                self.meta.dim)


def legacy_item(dataset, i: int) -> dict:  # noqa: ANN001
    """`WindowDataset.__getitem__` before the fix: a float32 copy of every modality."""
    import torch

    from repurpose.features.shards import window_slice

    plan = dataset.plans[i]
    w, n = plan.window, plan.rows
    item = {"window_id": w.window_id, "duration": float(w.duration), "index": i}
    for m in PAPER:
        rows = window_slice(dataset._video(m, w.youtube_id), w.start, w.end)[:n]
        item[m] = torch.from_numpy(np.array(rows, dtype=np.float32))
    item["labels"] = torch.from_numpy(w.labels[:n].astype(np.int64))
    item["targets"] = torch.from_numpy(np.array(w.targets[:n], dtype=np.float32))
    item["clips"] = torch.from_numpy(np.asarray(w.clips, dtype=np.float32).reshape(-1, 2))
    return item


def legacy_collate(items: list[dict]) -> dict:
    """`collate` before the fix: zero-filled private batches, filled by assignment."""
    import torch

    longest = max(len(it["labels"]) for it in items)
    batch: dict = {"window_id": [it["window_id"] for it in items],
                   "duration": [it["duration"] for it in items],
                   "index": [it["index"] for it in items],
                   "lengths": torch.tensor([len(it["labels"]) for it in items])}
    batch["mask"] = torch.arange(longest)[None, :] < batch["lengths"][:, None]
    for key in (*PAPER, "labels", "targets", "clips"):
        first = items[0][key]
        out = first.new_zeros((len(items), longest, *first.shape[1:]))
        for b, it in enumerate(items):
            out[b, : len(it[key])] = it[key]
        batch[key] = out
    n_clips = torch.tensor([len(it["clips"]) for it in items])
    batch["clip_mask"] = torch.arange(batch["clips"].shape[1])[None, :] < n_clips[:, None]
    return batch


class MemorySampler(threading.Thread):
    """Samples the summed PSS and RSS of this process and its children every 0.5 s."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_pss = self.peak_rss = 0
        self.stop = threading.Event()

    def run(self) -> None:
        """Sample until stopped."""
        import psutil

        me = psutil.Process()
        while not self.stop.is_set():
            pss = rss = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    info = p.memory_full_info()
                    pss, rss = pss + info.pss, rss + info.rss
                except psutil.Error:
                    pass
            self.peak_pss, self.peak_rss = max(self.peak_pss, pss), max(self.peak_rss, rss)
            self.stop.wait(0.5)


def _cpu_s() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def measure(a: argparse.Namespace) -> dict:
    """One case: time `a.batches` shuffled training batches; rates and peak memory."""
    import torch
    from torch.utils.data import DataLoader

    from repurpose.training import dataset as ds_module
    from repurpose.training.index import index_features, load_plans

    torch.set_num_threads(1)
    collate = ds_module.collate
    if a.legacy:  # today's reader, items and collate; forked workers inherit the patches
        ds_module.FeatureStore = LegacyStore
        ds_module.use_system_allocator = lambda: None  # pyarrow's default pool (mimalloc)
        ds_module.WindowDataset.__getitem__ = legacy_item
        collate = legacy_collate
    plans, _ = load_plans(a.windows, "train", index_features(a.features), None)
    keep = set(sorted({p.window.youtube_id for p in plans})[: a.videos or None])
    plans = [p for p in plans if p.window.youtube_id in keep]
    dataset = ds_module.WindowDataset(plans, a.features, a.cache_videos)
    batches = ds_module.epoch_batches(len(dataset), BATCH, seed=0, epoch=0)[: a.batches]
    sampler = MemorySampler()
    sampler.start()
    cpu0 = _cpu_s()
    began = time.perf_counter()
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                        num_workers=a.workers)
    windows = seconds = after_first = 0
    first = None
    for batch in loader:
        n = int(batch["lengths"].sum())
        if first is None:
            first = time.perf_counter() - began
        else:
            after_first += n
        windows += len(batch["index"])
        seconds += n
    wall = time.perf_counter() - began
    del loader  # workers joined: their CPU time is in RUSAGE_CHILDREN
    cpu = _cpu_s() - cpu0
    sampler.stop.set()
    sampler.join()
    procs = max(1, a.workers)
    return {"videos": len(keep), "windows": windows, "seconds": seconds, "wall_s": wall,
            "first_batch_s": first, "windows_per_s": windows / wall,
            "eq1800_per_s": seconds / 1800 / wall,
            "steady_eq1800_per_s": after_first / 1800 / max(1e-9, wall - first),
            "eq1800_per_s_per_process": seconds / 1800 / wall / procs,
            "cpu_s": cpu, "eq1800_per_cpu_s": seconds / 1800 / cpu,
            "peak_pss_mb": sampler.peak_pss / 2**20, "peak_rss_sum_mb": sampler.peak_rss / 2**20,
            "mean_window_s": seconds / max(1, windows)}


GLIBC_KEEP = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**33),
              "MALLOC_TOP_PAD_": str(2**28)}  # glibc keeps freed blocks: no fresh-page faults


def run_case(root: Path, features: str, *, workers: int, videos: int = 0, cache: int = 64,
             batches: int = 16, legacy: bool = False, glibc_keep: bool = False) -> dict:
    """`measure` in a fresh process (its own peak memory); its JSON result."""
    cmd = [sys.executable, __file__, "--measure", "--features", str(root / features),
           "--windows", str(root / "windows.parquet"), "--workers", str(workers),
           "--videos-subset", str(videos), "--cache-videos", str(cache),
           "--batches", str(batches)] + (["--legacy"] if legacy else [])
    env = {**os.environ, **(GLIBC_KEEP if glibc_keep else {})}
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    label = " legacy reader" if legacy else " MALLOC_*_ env" if glibc_keep else ""
    return {"case": f"{features} w{workers} cache {cache}{label}",
            "workers": workers, "cache": cache, **result}


def cpu_name() -> str:
    """CPU model from /proc/cpuinfo."""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def print_table(rows: list[dict]) -> None:
    """One line per case."""
    print(f"{'case':<38} {'videos':>6} {'windows':>7} {'mean s':>6} {'wall s':>6} "
          f"{'win/s':>6} {'1800s-eq/s':>10} {'steady':>6} {'per proc':>8} {'per CPU-s':>9} "
          f"{'peak PSS MB':>11}")
    for r in rows:
        print(f"{r['case']:<38} {r['videos']:>6} {r['windows']:>7} {r['mean_window_s']:>6.0f} "
              f"{r['wall_s']:>6.1f} {r['windows_per_s']:>6.1f} {r['eq1800_per_s']:>10.1f} "
              f"{r['steady_eq1800_per_s']:>6.1f} {r['eq1800_per_s_per_process']:>8.1f} "
              f"{r['eq1800_per_cpu_s']:>9.1f} {r['peak_pss_mb']:>11.0f}")


def fit_scale(root: Path, want_videos: int) -> int:
    """The largest video count (<= want) whose shards fit the free disk with a 2x margin."""
    per_video = 1780 * sum(PAPER.values()) * 2  # mean windowed seconds of a real video
    free = shutil.disk_usage(root if root.exists() else root.parent).free
    return min(want_videos, int(free / 2 / per_video))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command line of the driver and of one measured case (`--measure`)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=1000, help="synthetic videos (1/8 of the data)")
    p.add_argument("--shards", type=int, default=256, help="shards per modality (real: 256)")
    p.add_argument("--legacy-videos", type=int, default=100, help="subset for today's format")
    p.add_argument("--batches", type=int, default=16, help="batches of 16 timed per case")
    p.add_argument("--legacy-batches", type=int, default=4, help="batches for today's format")
    p.add_argument("--root", type=Path, default=Path("/tmp/repurpose-loader-bench"))
    p.add_argument("--keep", action="store_true", help="keep the data (default: delete)")
    p.add_argument("--reuse", action="store_true", help="reuse data left by --keep")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--features", help=argparse.SUPPRESS)
    p.add_argument("--windows", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--videos-subset", dest="videos_subset", type=int, default=0,
                   help=argparse.SUPPRESS)
    p.add_argument("--cache-videos", type=int, default=64, help=argparse.SUPPRESS)
    p.add_argument("--legacy", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def cases(root: Path, a: argparse.Namespace) -> list[dict]:
    """Today's format vs the current one, workers 0/1/2, memory at two sizes and caches."""
    quarter = max(1, a.videos // 4)
    plan = [
        ("legacy", {"workers": 0, "batches": a.legacy_batches, "legacy": True}),
        ("subset", {"workers": 0, "batches": a.legacy_batches}),
        ("features", {"workers": 0, "batches": a.batches}),
        ("features", {"workers": 1, "batches": a.batches}),
        ("features", {"workers": 2, "batches": a.batches}),
        ("features", {"workers": 2, "batches": a.batches, "videos": quarter}),
        ("features", {"workers": 2, "batches": a.batches, "cache": 8}),
        ("features", {"workers": 0, "batches": a.batches, "glibc_keep": True}),
        ("features", {"workers": 2, "batches": a.batches, "glibc_keep": True}),
    ]
    rows = []
    for features, kwargs in plan:
        rows.append(run_case(root, features, **kwargs))
        print(f"  done: {rows[-1]['case']} ({rows[-1]['wall_s']:.1f} s, load "
              f"{os.getloadavg()[0]:.2f})", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    """Generate, measure every case, print the table, delete the data."""
    a = parse_args(argv)
    if a.measure:
        a.videos = a.videos_subset
        print(json.dumps(measure(a)))
        return 0
    root = a.root
    print(f"cpu {cpu_name()} x {os.cpu_count()}, load {os.getloadavg()}, disk free "
          f"{shutil.disk_usage(root.parent).free / 1e9:.0f} GB at {root.parent}")
    videos = fit_scale(root, a.videos)
    if videos < a.videos:
        print(f"only {videos} of {a.videos} videos fit the free disk with a 2x margin")
    a.videos = videos
    try:
        if not (a.reuse and (root / "windows.parquet").is_file()):
            shutil.rmtree(root, ignore_errors=True)
            info = prepare(root, videos, a.shards, a.legacy_videos, a.seed)
            (root / "info.json").write_text(json.dumps(info))
        info = json.loads((root / "info.json").read_text())
        report_data(info)
        rows = cases(root, a)
        print_table(rows)
        report_ratios(rows, info)
        if a.json:
            a.json.write_text(json.dumps({"data": info, "cases": rows}, indent=2) + "\n")
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
            print(f"deleted {root}")
    print(f"load after: {os.getloadavg()}")
    return 0


def report_data(info: dict) -> None:
    """What was generated, and the writers' speeds."""
    c, leg, sub = info["current"], info["legacy"], info["subset"]
    print(f"data: {c['videos']} videos ({info['splits']} windows per split), {c['rows']:,} s "
          f"= 1/{DATASET_SECONDS / c['rows']:.1f} of the dataset's {DATASET_SECONDS / 1e6:.1f}M "
          f"s, {c['bytes'] / 1e9:.2f} GB in {c['shards']} shards x 3 modalities, written in "
          f"{c['write_s']:.0f} s ({c['bytes'] / 1e6 / c['write_s']:.0f} MB/s)")
    print(f"writer on a {sub['videos']}-video subset: today's (dictionary) "
          f"{leg['bytes'] / 1e6 / leg['write_s']:.0f} MB/s, current "
          f"{sub['bytes'] / 1e6 / sub['write_s']:.0f} MB/s "
          f"(x{leg['write_s'] / sub['write_s']:.1f} faster)")


def report_ratios(rows: list[dict], info: dict) -> None:
    """Before/after ratio, the per-process target, and what bounds memory."""
    legacy, subset = rows[0], rows[1]
    print(f"current vs today's format, 0 workers, same {subset['videos']} videos: "
          f"x{subset['eq1800_per_s'] / legacy['eq1800_per_s']:.1f} 1800-s windows/s")
    for r in rows[2:5]:
        verdict = "meets" if r["eq1800_per_s_per_process"] >= 16 else "misses"
        print(f"  {r['workers']} workers: {r['eq1800_per_s_per_process']:.1f} 1800-s windows/s "
              f"per loader process ({verdict} the >= 16 target)")
    for r in rows[7:]:
        print(f"  with {r['case']}: {r['eq1800_per_s_per_process']:.1f} per process, "
              f"{r['eq1800_per_cpu_s']:.1f} per CPU-second")
    full, quarter, small_cache = rows[4], rows[5], rows[6]
    print(f"memory, 2 workers, cache 64: {quarter['videos']} videos {quarter['peak_pss_mb']:.0f}"
          f" MB vs {full['videos']} videos {full['peak_pss_mb']:.0f} MB (x"
          f"{full['peak_pss_mb'] / quarter['peak_pss_mb']:.2f} for x"
          f"{full['videos'] / quarter['videos']:.0f} videos); cache 8: "
          f"{small_cache['peak_pss_mb']:.0f} MB")


if __name__ == "__main__":
    sys.exit(main())
