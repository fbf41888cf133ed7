"""Test fixture (not in the package): synthetic media for feature tests (ffmpeg lavfi; speech
via espeak-ng). `pattern_video` draws a blue picture that turns red during chosen seconds, with a
440 Hz tone audible during the same seconds, so a test can check which rows hold which second."""

from __future__ import annotations

import os
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from repurpose.media import run_ffmpeg


def _between(seconds: Sequence[int]) -> str:
    return "+".join(f"between(t,{s},{s + 0.999})" for s in seconds) or "0"


def pattern_video(path: str | os.PathLike[str], duration: float, red_seconds: Sequence[int] = (),
                  size: tuple[int, int] = (96, 64), fps: float = 10, audio: str = "tone",
                  vfr: bool = False, extra: Sequence[str] = ()) -> Path:
    """Write an mp4: blue, red during `red_seconds` (file seconds); audio 'tone' (440 Hz during
    the red seconds, quiet elsewhere), 'silence', or 'none'. `vfr` makes frame intervals vary."""
    w, h = size
    args = ["-f", "lavfi", "-i", f"color=c=blue:s={w}x{h}:r={fps}:d={duration}"]
    if audio == "tone":  # sample-exact: the tone is on exactly during the red seconds
        expr = f"0.5*sin(2*PI*440*t)*({_between(red_seconds)})"
        args += ["-f", "lavfi", "-i", f"aevalsrc='{expr}':s=16000:d={duration}"]
    elif audio == "silence":
        args += ["-f", "lavfi", "-i", f"anullsrc=r=16000:cl=mono:d={duration}"]
    elif audio != "none":
        raise ValueError(f"audio must be tone, silence or none, got {audio!r}")
    vf = f"drawbox=x=0:y=0:w=iw:h=ih:color=red:t=fill:enable='{_between(red_seconds)}'"
    if vfr:  # first half at the nominal rate, then only every third frame
        vf += f",select='lt(t,{duration / 2})+not(mod(n,3))'"
    args += ["-vf", vf, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
             "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"]
    if vfr:
        args += ["-fps_mode", "vfr"]
    args += ["-c:a", "aac", "-shortest"] if audio != "none" else ["-an"]
    args += [*extra, "-t", str(duration), str(path)]
    run_ffmpeg(args)
    return Path(path)


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int) -> Path:
    """Mono int16 WAV."""
    with wave.open(str(path), "wb") as wf:
        wf.setnchannels(1)
        wf.setsampwidth(2)
        wf.setframerate(sample_rate)
        wf.writeframes(np.asarray(samples, dtype=np.int16).tobytes())
    return Path(path)


def speech_video(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int,
                 lead: float = 1.0, tail: float = 1.0, size: tuple[int, int] = (96, 64),
                 fps: float = 5, total: float | None = None) -> Path:
    """An mp4 whose audio is `samples` (int16) after `lead` s of silence; the speech is looped
    with one-second pauses up to `total` s if given."""
    speech = np.asarray(samples, dtype=np.int16)
    pad = np.zeros(int(lead * sample_rate), np.int16)
    track = np.concatenate([pad, speech, np.zeros(int(tail * sample_rate), np.int16)])
    if total is not None:
        reps = int(np.ceil(total * sample_rate / len(track)))
        track = np.tile(track, reps)[: int(total * sample_rate)]
    duration = len(track) / sample_rate
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "speech.wav", track, sample_rate)
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc2=s={size[0]}x{size[1]}:r={fps}:d={duration}",
                    "-i", str(wav), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", "-shortest", str(path)])
    return Path(path)


def write_test_ledger(folder: str | os.PathLike[str], videos: dict[str, dict]) -> Path:
    """Write `<folder>/ledger.parquet` for files `<folder>/<id>.mp4` (status ok). Per id:
    `source_offset` (default 0), `duration` (default: probed), `has_audio` (default: probed)."""
    from repurpose.download.ledger import LedgerRow, write_ledger
    from repurpose.io import sha256_file
    from repurpose.media import MediaError, probe

    rows = []
    for yid, spec in sorted(videos.items()):
        path = Path(folder) / f"{yid}.mp4"
        try:
            info = probe(path)
            duration, has_audio = info.duration, info.has_audio
        except MediaError:
            duration, has_audio = 0.0, False
        rows.append(LedgerRow(
            youtube_id=yid, status="ok", sha256=sha256_file(path), file=path.name,
            source_offset=float(spec.get("source_offset", 0.0)),
            duration=float(spec.get("duration", duration)),
            has_audio=bool(spec.get("has_audio", has_audio)), bytes=path.stat().st_size,
        ))
    path = Path(folder) / "ledger.parquet"
    write_ledger(path, rows)
    return path
