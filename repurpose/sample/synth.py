"""Rendering one sample video: a numpy-mixed soundtrack (tone beds + espeak-ng speech) and
one ffmpeg call whose lavfi filter graph draws the picture.

Inside annotated clips: a bright, colourful, moving picture (ffmpeg's `testsrc2` pattern),
a loud tone chord with a 2 Hz pulse, and dense spoken "highlight" sentences.
Outside: a dark, nearly still picture (a dim block drifting slowly over a flat dark colour),
a quiet low hum, and sparse, quieter "filler" sentences. So picture, sound and speech each
tell clips from the rest on their own.
"""

from __future__ import annotations

import os
import random
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from repurpose import io
from repurpose.media import run_ffmpeg
from repurpose.sample import tts
from repurpose.sample.spec import VideoSpec

HIGHLIGHT_LINES = (
    "This is the best part of the whole video.",
    "Wow, look at that, this is absolutely amazing!",
    "Here it comes, the moment you have all been waiting for.",
    "That was incredible, I cannot believe it actually worked.",
    "Watch closely, this trick is going to blow your mind.",
    "And that is the secret, right there.",
    "This is the highlight, do not miss it.",
    "Yes! We did it, that is a new record!",
    "Remember this tip, it will save you hours.",
    "Here is the big reveal.",
    "Look at those colors, it is stunning.",
    "Now this is where it gets really exciting.",
    "Watch this!",
    "Oh my goodness, did you see that?",
    "Best moment ever.",
)
FILLER_LINES = (
    "Okay, let me just check the settings here.",
    "Um, so anyway, where was I?",
    "Give me a second, I need to find the cable.",
    "Alright, nothing much is happening right now.",
    "Let me adjust the camera a little bit.",
    "Hmm, this part is a bit slow, sorry about that.",
    "I am just going to wait for it to load.",
    "So yeah, that is basically the setup.",
    "Let me read some of the comments.",
    "Okay, moving on.",
    "One moment please.",
    "I will be right back.",
)
HIGHLIGHT_VOICE = {"rate": 170, "pitch": 70}
FILLER_VOICE = {"rate": 140, "pitch": 35}
HIGHLIGHT_GAIN = 0.8  # speech gain (full scale = 1) inside clips
FILLER_GAIN = 0.3  # ... and outside
CHORD = (1.0, 1.26, 1.5, 2.0)  # major triad + octave, times the video's root frequency
ROOTS = (220.0, 247.0, 262.0, 294.0)  # Hz, one per video
DULL_COLOURS = ("0x1e2228", "0x24201c", "0x1c2420", "0x22202a")
AUDIO_RATE_OUT = 44100
AUDIO_BITRATE = "64k"
CRF = 28
PRESET = "veryfast"


@dataclass(frozen=True)
class RenderJob:
    """One video to render into `out_dir` (a picklable task argument)."""

    spec: VideoSpec
    out_dir: str

    @property
    def youtube_id(self) -> str:
        return self.spec.youtube_id

    @property
    def video_path(self) -> Path:
        return Path(self.out_dir) / f"{self.spec.youtube_id}.mp4"

    @property
    def script_path(self) -> Path:
        return Path(self.out_dir) / f"{self.spec.youtube_id}.script.json"


@dataclass(frozen=True)
class Line:
    """One spoken sentence of the soundtrack."""

    start: float
    end: float
    text: str
    kind: str  # "highlight" (inside a clip) or "filler" (outside)


def outside_stretches(duration: float, clips: tuple[tuple[float, float], ...]):
    """The [a, b] stretches of [0, duration] outside every clip."""
    out = []
    t = 0.0
    for a, b in sorted(clips):
        if a > t:
            out.append((t, a))
        t = max(t, b)
    if t < duration:
        out.append((t, float(duration)))
    return out


def plan_speech(spec: VideoSpec, rng: random.Random) -> list[tuple[Line, np.ndarray]]:
    """Sentences placed back to back inside clips and sparsely outside them, none crossing
    a clip boundary. Returns each line with its int16 samples."""
    placed: list[tuple[Line, np.ndarray]] = []

    def fill(a: float, b: float, lines, voice, first, pause, kind) -> None:  # noqa: ANN001
        t = a + rng.uniform(*first)
        while True:
            options = list(lines)
            rng.shuffle(options)
            for text in options:
                samples, sr = tts.speak(text, **voice)
                dur = len(samples) / sr
                if t + dur <= b - 0.3:
                    placed.append((Line(round(t, 3), round(t + dur, 3), text, kind), samples))
                    t += dur + rng.uniform(*pause)
                    break
            else:
                return  # nothing fits any more

    for a, b in spec.clips:
        fill(a, b, HIGHLIGHT_LINES, HIGHLIGHT_VOICE, (0.2, 0.6), (0.3, 0.8), "highlight")
    for a, b in outside_stretches(spec.duration, spec.clips):
        fill(a, b, FILLER_LINES, FILLER_VOICE, (1.0, 3.0), (4.0, 9.0), "filler")
    placed.sort(key=lambda p: p[0].start)
    return placed


def mix_audio(
    spec: VideoSpec, speech: list[tuple[Line, np.ndarray]], sample_rate: int, rng: random.Random
) -> np.ndarray:
    """The mono int16 soundtrack, exactly `duration * sample_rate` samples."""
    n = int(spec.duration * sample_rate)
    t = np.arange(n, dtype=np.float64) / sample_rate
    gen = np.random.default_rng(spec.seed)

    # outside: a quiet mains-like hum and a little hiss (room tone)
    audio = 0.015 * np.sin(2 * np.pi * 90 * t) + 0.008 * np.sin(2 * np.pi * 180 * t)
    audio += 0.004 * gen.standard_normal(n)

    # inside: a chord with a 2 Hz pulse (a distinct, louder tone bed), crossfaded over 20 ms
    root = ROOTS[rng.randrange(len(ROOTS))]
    ramp = max(1, int(0.02 * sample_rate))
    for a, b in spec.clips:
        i, j = int(round(a * sample_rate)), min(n, int(round(b * sample_rate)))
        tc = t[i:j]
        music = sum(np.sin(2 * np.pi * root * r * tc) for r in CHORD) / len(CHORD)
        music *= 0.12 + 0.1 * np.maximum(0.0, np.sin(2 * np.pi * 2.0 * tc))
        mask = np.ones(j - i)
        k = min(ramp, (j - i) // 2)
        mask[:k] = np.linspace(0.0, 1.0, k, endpoint=False)
        mask[len(mask) - k :] = np.linspace(1.0, 0.0, k, endpoint=False)
        audio[i:j] = mask * music + (1.0 - mask) * audio[i:j]

    for line, samples in speech:
        gain = HIGHLIGHT_GAIN if line.kind == "highlight" else FILLER_GAIN
        i = int(round(line.start * sample_rate))
        seg = samples[: max(0, n - i)].astype(np.float64) / 32768.0
        audio[i : i + len(seg)] += gain * seg

    return (np.clip(audio, -1.0, 1.0) * 32767.0).round().astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono int16 samples as a WAV file."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(samples.astype("<i2").tobytes())


def enable_expr(clips: tuple[tuple[float, float], ...]) -> str:
    """An ffmpeg expression that is non-zero inside any clip: 'between(t,a,b)+...'."""
    return "+".join(f"between(t,{a:g},{b:g})" for a, b in clips) or "0"


def ffmpeg_args(spec: VideoSpec, wav: Path, out: Path, rng: random.Random) -> list[str]:
    """Arguments of the one ffmpeg call that renders `spec` (picture + `wav`) to `out`."""
    w, h, fps, d = spec.width, spec.height, spec.fps, spec.duration
    dull = DULL_COLOURS[rng.randrange(len(DULL_COLOURS))]
    drift = rng.uniform(3.0, 8.0)  # pixels per second of the dim block
    on = enable_expr(spec.clips)
    bw, bh = max(2, (w // 4) // 2 * 2), max(2, (h // 4) // 2 * 2)
    graph = (
        f"[0:v][1:v]overlay=x='mod(t*{drift:.3f},W+w)-w':y='(H-h)/2+H/12*sin(t/5)'[bg];"
        f"[bg][2:v]overlay=enable='{on}':format=yuv420,format=yuv420p[v]"
    )
    return [
        "-f", "lavfi", "-i", f"color=c={dull}:s={w}x{h}:r={fps}:d={d}",
        "-f", "lavfi", "-i", f"color=c=0x3a3f46:s={bw}x{bh}:r={fps}:d={d}",
        "-f", "lavfi", "-i", f"testsrc2=s={w}x{h}:r={fps}:d={d}",
        "-i", str(wav),
        "-filter_complex", graph, "-filter_complex_threads", "1",
        "-map", "[v]", "-map", "3:a",
        "-c:v", "libx264", "-preset", PRESET, "-crf", str(CRF), "-pix_fmt", "yuv420p",
        "-g", str(2 * fps), "-threads", "1", "-x264-params", "threads=1:sliced-threads=0",
        "-c:a", "aac", "-aac_coder", "fast", "-b:a", AUDIO_BITRATE,
        "-ar", str(AUDIO_RATE_OUT), "-ac", "1",
        "-t", str(d),
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-map_metadata", "-1", "-movflags", "+faststart",
        "-f", "mp4", str(out),
    ]  # fmt: skip


def render_video(job: RenderJob) -> dict[str, Any]:
    """Render one sample video and its speech script (both written atomically)."""
    spec = job.spec
    rng = random.Random(spec.seed)
    speech = plan_speech(spec, rng)
    sample_rate = tts.sample_rate()
    audio = mix_audio(spec, speech, sample_rate, rng)
    out_dir = Path(job.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, wav_name = tempfile.mkstemp(prefix=f".{spec.youtube_id}.", suffix=".wav", dir=out_dir)
    os.close(fd)
    wav = Path(wav_name)
    try:
        write_wav(wav, audio, sample_rate)
        with io.atomic_path(job.video_path) as tmp:
            run_ffmpeg(ffmpeg_args(spec, wav, tmp, rng))
    finally:
        wav.unlink(missing_ok=True)
    script = {
        "youtube_id": spec.youtube_id,
        "duration": spec.duration,
        "clips": [list(c) for c in spec.clips],
        "speech": [
            {"start": line.start, "end": line.end, "kind": line.kind, "text": line.text}
            for line, _ in speech
        ],
    }
    io.write_json(job.script_path, script)
    return {
        "youtube_id": spec.youtube_id,
        "path": str(job.video_path),
        "duration": spec.duration,
        "bytes": job.video_path.stat().st_size,
        "speech_lines": len(speech),
    }
