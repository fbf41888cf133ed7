"""Feature throughput: all offline modalities of one video, today's way against the one pass.

    .venv/bin/python benchmarks/features_throughput.py [--duration 600] [--work DIR]
        [--sets sample,paper] [--repeat 1] [--precision fp32|bf16]
        [--onepass concurrent=true torch_threads=1 ...]

Generates a 360p, 30 fps video (ffmpeg lavfi `testsrc2`, espeak-ng speech looped with pauses as
its soundtrack; kept in `--work` and reused), then measures, in one run and on that file:
- decode only: frames at 1 fps (one sequential decode), the naive seek loop (over
  `--naive-seconds`), audio seconds at 16 and 32 kHz;
- per backend set (`sample`: efficientnet-lite0, logmel, Whisper tiny.en, MiniLM;
  `paper`: CLIP ViT-B/32 and PANNs Cnn14 with RANDOM weights of the real classes, speed only,
  plus tiny.en and MiniLM), two ways, models already loaded, nothing cached:
  `today`: the stages' per-video functions one after another, each decoding the file itself,
  the sections' batch sizes, default threads (torch: one per core; CTranslate2: 4);
  `onepass`: `repurpose.onepass` with params `onepass` (or `--onepass` overrides).
  Per modality: wall seconds and x real time; in total: wall seconds, x real time, speed-up;
  and the largest difference between the two ways' stored vectors.
The machine load (`os.getloadavg()`) is printed with each measurement: on a shared machine the
absolute numbers move with it, the ratio of the two ways (measured back to back) less, and the
CPU seconds each way used (this process's threads and its ffmpeg children) least: on a quiet
2-core machine the wall time cannot beat CPU seconds / 2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from repurpose import onepass  # noqa: E402
from repurpose.io import sha256_file  # noqa: E402
from repurpose.pervideo.decode import (  # noqa: E402
    AudioStats,
    FrameGeometry,
    audio_seconds,
    decode_frames,
    naive_frames_by_seeking,
)
from repurpose.pervideo.inputs import VideoInput  # noqa: E402
from repurpose.pervideo.results import ResultCache  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("Welcome back to the channel. Today we are testing how fast the feature pipeline runs "
        "on a long video. Here comes the best part, watch closely. That was amazing.")
MODALITIES = ("visual", "audio", "text")


def make_video(work: Path, duration: float) -> Path:
    """The benchmark video (generated once per duration into `work`)."""
    from repurpose.sample.tts import speak
    from tests.synthetic_media import speech_video

    path = work / f"bench_{int(duration)}s_360p.mp4"
    if not path.is_file():
        samples, sr = speak(TEXT)
        t0 = time.perf_counter()
        speech_video(path, samples, sr, lead=1.0, tail=1.0, size=(640, 360), fps=30,
                     total=duration)
        print(f"generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def load() -> str:
    """The 1-minute load average, as printed."""
    return f"{os.getloadavg()[0]:.1f}"


def cpu_seconds() -> float:
    """CPU seconds used so far by this process (all its threads) and its finished children
    (ffmpeg): unlike wall time, hardly moved by other users' load."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def set_params(name: str, work: Path) -> dict:
    """params.yaml's sections with the set's backends (random-weight files made in `work`)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    sections = {k: params[k] for k in ("extract", "transcribe", "embed_text")}
    ex = sections["extract"]
    ex["visual"]["device"] = ex["audio"]["device"] = "cpu"
    sections["transcribe"]["device"] = sections["embed_text"]["device"] = "cpu"
    if name == "sample":
        ex["visual"]["backend"], ex["audio"]["backend"] = "efficientnet-lite0", "logmel"
    else:
        ex["visual"]["backend"], ex["audio"]["backend"] = "clip-vit-b32", "panns-cnn14"
        ex["visual"]["clip-vit-b32"] = {"weights": str(random_clip(work))}
        ex["audio"]["panns-cnn14"] = {"weights": str(random_cnn14(work))}
    return {**sections, "onepass": params.get("onepass") or {}}


def random_clip(work: Path) -> Path:
    """A RANDOM-weight CLIPVisionModelWithProjection at ViT-B/32 sizes, saved the real way."""
    folder = work / "random-clip-vit-b32"
    if not (folder / "config.json").is_file():
        import torch
        from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

        torch.manual_seed(0)
        CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)).save_pretrained(folder)
    return folder


def random_cnn14(work: Path) -> Path:
    """A RANDOM-weight PANNs Cnn14 checkpoint in the official format (`{'model': ...}`)."""
    path = work / "random-Cnn14.pth"
    if not path.is_file():
        import torch

        from repurpose.features.panns import new_cnn14

        torch.manual_seed(0)
        torch.save({"model": new_cnn14().state_dict()}, path)
    return path


def decode_rows(video: Path, dur: float, naive_seconds: float) -> list[dict]:
    """Decode-only throughput: the ceiling of any extraction."""
    rows = []
    times = np.arange(int(round(dur))) + 0.5
    geometry = FrameGeometry(256, 224)
    for name, n_s, fn in (
            ("frames 1 fps (PyAV, sequential)", dur,
             lambda: sum(1 for _ in decode_frames(video, times, geometry))),
            ("frames, naive seek per second", min(naive_seconds, dur),
             lambda: sum(1 for _ in naive_frames_by_seeking(
                 video, times[:int(min(naive_seconds, dur))], geometry))),
            ("audio 16 kHz (ffmpeg pipe)", dur, lambda: sum(len(r) for r, _ in audio_seconds(
                video, 16000, 0.0, len(times), 64, AudioStats()))),
            ("audio 32 kHz (ffmpeg pipe)", dur, lambda: sum(len(r) for r, _ in audio_seconds(
                video, 32000, 0.0, len(times), 64, AudioStats())))):
        la = load()
        t0 = time.perf_counter()
        fn()
        wall = time.perf_counter() - t0
        rows.append({"what": name, "wall_s": round(wall, 2), "x_rt": round(n_s / wall, 1),
                     "load": la})
    return rows


def today(jobs: onepass.OnePassJobs, asr_backend) -> dict[str, float]:  # noqa: ANN001
    """The stages' way: each modality's per-video function in turn, each decoding the file."""
    from repurpose.asr.transcribe import output_document, transcribe_video
    from repurpose.features.extract import extract_video
    from repurpose.features.text import EmbedJob, embed_video, text_key

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    extract_video(jobs.visual)
    seconds["visual"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    extract_video(jobs.audio)
    seconds["audio"] = time.perf_counter() - t0
    job = jobs.transcribe.__class__(jobs.video, asr_backend, jobs.transcribe.cache_root,
                                    jobs.transcribe.key)
    t0 = time.perf_counter()
    res = transcribe_video(job)
    seconds["asr"] = time.perf_counter() - t0
    doc = output_document(jobs.video, res, asr_backend, jobs.asr_weights)
    path = Path(jobs.transcribe.cache_root).parent / "document.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    cfg, weights, root = jobs.text
    t0 = time.perf_counter()
    embed_video(EmbedJob(jobs.video.youtube_id, str(path), cfg.backend, root,
                         text_key(cfg, weights, res.entry.key, doc["rows"]), cfg.dtype,
                         cfg.batch_size))
    seconds["text"] = time.perf_counter() - t0
    return seconds


def with_precision(params: dict, precision: str) -> dict:
    """`params` with `precision` for every visual/audio backend that has the setting."""
    import copy

    from repurpose.features.backends import backend_class

    out = copy.deepcopy(params)
    for modality in ("visual", "audio"):
        section = out["extract"][modality]
        if "precision" in backend_class(modality, section["backend"]).defaults:
            section.setdefault(section["backend"], {})["precision"] = precision
    return out


def measure_set(name: str, video: VideoInput, work: Path, overrides: dict,
                repeat: int, precision: str = "fp32") -> list[dict]:
    """Today's way and the one pass (at `precision`), back to back (`repeat` times), on fresh
    caches."""
    from repurpose.asr.backends import asr_backend_from_section

    params = set_params(name, work)
    configs = onepass.FeatureConfigs.from_params(params)
    pass_configs = onepass.FeatureConfigs.from_params(with_precision(params, precision))
    stages_way = onepass.OnePassSettings(concurrent=False, torch_threads=0, asr_threads=0)
    settings = onepass.OnePassSettings.from_section({**params["onepass"], **overrides})
    rows = []
    for r in range(repeat):
        caches = {way: Path(tempfile.mkdtemp(prefix=f"cache-{name}-{way}-", dir=work))
                  for way in ("today", "onepass")}
        jobs = {"today": onepass.plan(video, configs, caches["today"], stages_way),
                "onepass": onepass.plan(video, pass_configs, caches["onepass"], settings)}
        asr_today = asr_backend_from_section(params["transcribe"])
        for j in jobs.values():  # load every model before timing
            for backend in (j.visual.backend, j.audio.backend, j.transcribe.backend,
                            j.text[0].backend):
                backend.model()
        asr_today.model()
        for way in ("today", "onepass"):
            la = load()
            t0, c0 = time.perf_counter(), cpu_seconds()
            if way == "today":
                seconds = today(jobs[way], asr_today)
            else:
                result = onepass.run(jobs[way], settings)
                seconds = dict(result.seconds)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            label = way if way == "today" or precision == "fp32" else f"{way} {precision}"
            rows.append({"set": name, "way": label, "round": r + 1, "load": la,
                         "load_after": load(), "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
                         "steps": {k: round(v, 2) for k, v in seconds.items()}})
        rows[-1]["max_abs_diff"] = max_differences(jobs)
    return rows


def max_differences(jobs: dict[str, onepass.OnePassJobs]) -> dict[str, float]:
    """Per modality: the largest |today - onepass| over the stored vectors."""
    out = {}
    for modality in MODALITIES:
        arrays = []
        for j in jobs.values():
            root, key = ((j.text[2], None) if modality == "text"
                         else (getattr(j, modality).cache_root, getattr(j, modality).key))
            cache = ResultCache(root)
            if key is None:
                key = next(p.stem for p in (cache.root / j.video.youtube_id).glob("*.npy"))
            arrays.append(cache.array(j.video.youtube_id, key).astype(np.float32))
        out[modality] = float(np.abs(arrays[0] - arrays[1]).max())
    return out


def print_report(dur: float, decode: list[dict], runs: list[dict], settings: str) -> None:
    """Markdown tables: decode ceilings, then per set and way, per modality and in total."""
    import torch

    print(f"\nFeature throughput on a {dur:.0f} s 640x360 30 fps video "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}); onepass settings: {settings}\n")
    print("| decode only | wall s | x real time | load |\n|---|---:|---:|---:|")
    for r in decode:
        print(f"| {r['what']} | {r['wall_s']} | {r['x_rt']} | {r['load']} |")
    print("\n| set | way | round | load before/after | visual | audio | audio decode | asr | "
          "text | total wall s | total x real time | speed-up | CPU s | video-s per CPU-s |")
    print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for i, r in enumerate(runs):
        steps = r["steps"]
        cell = {k: (f"{steps[k]} s ({dur / steps[k]:.0f}x)" if steps.get(k) else "-")
                for k in ("visual", "audio", "audio decode", "asr", "text")}
        speedup = ""
        if r["way"].startswith("onepass") and i and runs[i - 1]["way"] == "today":
            speedup = (f"{runs[i - 1]['wall_s'] / r['wall_s']:.2f}x wall, "
                       f"{runs[i - 1]['cpu_s'] / r['cpu_s']:.2f}x CPU")
        print(f"| {r['set']} | {r['way']} | {r['round']} | {r['load']} / {r['load_after']} | "
              f"{cell['visual']} | {cell['audio']} | {cell['audio decode']} | {cell['asr']} | "
              f"{cell['text']} | {r['wall_s']} | {dur / r['wall_s']:.1f} | {speedup} | "
              f"{r['cpu_s']} | {dur / r['cpu_s']:.1f} |")
    for r in runs:
        if "max_abs_diff" in r:
            print(f"\n{r['set']} round {r['round']}: largest |today - onepass| per modality: "
                  + ", ".join(f"{k} {v:.2e}" for k, v in r["max_abs_diff"].items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="video length in seconds")
    ap.add_argument("--naive-seconds", type=float, default=60.0,
                    help="seconds of video the naive seek loop covers")
    ap.add_argument("--work", type=Path, default=None, help="folder for the generated files")
    ap.add_argument("--sets", default="sample,paper", help="backend sets: sample, paper")
    ap.add_argument("--repeat", type=int, default=1, help="rounds of today + onepass per set")
    ap.add_argument("--onepass", nargs="*", default=[], metavar="KEY=VALUE",
                    help="override params onepass, e.g. torch_threads=2 concurrent=false")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="the one pass's visual/audio precision (today's way: fp32)")
    ap.add_argument("--no-decode", action="store_true", help="skip the decode-only rows")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    if set(sets) - {"sample", "paper"}:
        ap.error("--sets: choose from sample, paper")
    overrides = {k: yaml.safe_load(v) for k, v in (o.split("=", 1) for o in args.onepass)}
    work = args.work or Path(tempfile.mkdtemp(prefix="features-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    path = make_video(work, args.duration)
    video = VideoInput("benchvideo1", str(path), sha256_file(path), 0.0, args.duration, True)
    decode = [] if args.no_decode else decode_rows(path, args.duration, args.naive_seconds)
    runs = []
    for name in sets:
        print(f"{name} ... (load {load()})", file=sys.stderr)
        runs += measure_set(name, video, work, overrides, args.repeat, args.precision)
    print_report(args.duration, decode, runs, json.dumps(overrides) if overrides else "params")
    if args.json:
        args.json.write_text(json.dumps({"decode": decode, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
