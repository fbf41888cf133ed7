"""Decoding for per-second features: one frame per second, one audio second per row.

Frames: one sequential PyAV decode of the whole stream (no seeking); for each requested time the
frame *shown* at that time (the last frame whose timestamp is <= it) is converted to RGB,
resized so its short side is `resize` (bicubic, swscale) and centre-cropped to `crop` x `crop`.
Each decoded frame is converted at most once, only if some requested time selects it. Exact for
variable frame rate too, since it goes by each frame's own timestamp. Times are file times:
0 is the container start (as ffmpeg counts), i.e. `source_offset` in absolute source seconds.

Audio: an ffmpeg pipe (`f32le`, mono, resampled to the model's rate, `aresample=async=1:
first_pts=0` so sample 0 is file time 0 and gaps are filled), read in blocks so that hours of
audio never sit in memory at once; cut into one-second segments `[t, t + 1)`.

`naive_frames_by_seeking` is the per-second seek loop the benchmark compares against.
"""

from __future__ import annotations

import os
import queue
import subprocess
import tempfile
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from repurpose.media import MediaError, ffmpeg_exe


class DecodeError(MediaError):
    """A stream could not be decoded at all."""


@dataclass(frozen=True)
class FrameGeometry:
    """Resize the short side to `resize` pixels, then centre-crop `crop` x `crop`."""

    resize: int
    crop: int

    def scaled_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after the short-side resize."""
        if width <= 0 or height <= 0:
            raise DecodeError(f"bad frame size {width}x{height}")
        if width <= height:
            return self.resize, max(self.crop, round(height * self.resize / width))
        return max(self.crop, round(width * self.resize / height)), self.resize


@dataclass
class FrameStats:
    """What the frame decode saw (filled while decoding)."""

    n_frames: int = 0
    first_time: float | None = None
    last_time: float | None = None
    width: int = 0
    height: int = 0
    bad_packets: int = 0
    intervals: list[float] = field(default_factory=list)

    @property
    def variable_frame_rate(self) -> bool:
        """Frame intervals spread by more than half the median interval (ignoring 1% outliers)."""
        if len(self.intervals) < 3:
            return False
        d = np.asarray(self.intervals)
        d = d[d > 0]
        if len(d) < 3:
            return False
        lo, hi = np.percentile(d, [1, 99])
        return bool((hi - lo) > 0.5 * float(np.median(d)))


def decode_frames(path: str | os.PathLike[str], times: np.ndarray, geometry: FrameGeometry,
                  stats: FrameStats | None = None, hold: float = 1.0,
                  lead_hold: float = 1.0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield `(i, rgb uint8 [crop, crop, 3])` for each ascending file time `times[i]` covered by
    the video: the frame shown at that time. A time before the first frame takes the first
    frame if within `lead_hold` s; after the last frame, the last frame is held for
    max(`hold`, its duration) s. Times not covered are skipped (the caller sees the gap)."""
    import av

    stats = stats if stats is not None else FrameStats()
    times = np.asarray(times, dtype=np.float64)
    n = len(times)
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as exc:  # type: ignore[attr-defined]
        raise DecodeError(f"{path}: cannot open: {exc}") from exc
    with container:
        if not container.streams.video:
            raise DecodeError(f"{path}: no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        origin = container.start_time / 1_000_000 if container.start_time is not None else 0.0
        i = 0
        prev = None  # (time, frame, converted or None)
        prev_duration = 0.0
        for frame, t in _frames_with_times(container, stream, origin, stats):
            if prev is not None:
                stats.intervals.append(t - prev[0])
            current = (t, frame, None)
            while i < n and times[i] < t:
                if prev is not None:
                    prev = _converted(prev, geometry)
                    yield i, prev[2]
                elif t - times[i] <= lead_hold:  # before the first frame: take it if close
                    current = _converted(current, geometry)
                    yield i, current[2]
                i += 1
            prev = current
            prev_duration = (float(frame.duration * frame.time_base)
                             if frame.duration and frame.time_base else 0.0)
        if prev is None:
            bad = f" ({stats.bad_packets} bad packets)" if stats.bad_packets else ""
            raise DecodeError(f"{path}: no decodable video frame{bad}")
        end = prev[0] + max(hold, prev_duration)
        while i < n and times[i] < end:
            prev = _converted(prev, geometry)
            yield i, prev[2]
            i += 1


def _frames_with_times(container, stream, origin: float, stats: FrameStats):  # noqa: ANN001
    """Decoded frames with their file time; bad packets are counted and skipped."""
    import av

    for packet in container.demux(stream):
        try:
            frames = packet.decode()
        except av.error.FFmpegError:  # type: ignore[attr-defined]
            stats.bad_packets += 1
            continue
        for frame in frames:
            if frame.time is None:
                continue
            t = float(frame.time) - origin
            if stats.last_time is not None and t <= stats.last_time:
                continue  # duplicate or out-of-order timestamp: keep the stream monotonic
            stats.n_frames += 1
            if stats.first_time is None:
                stats.first_time = t
                stats.width, stats.height = frame.width, frame.height
            stats.last_time = t
            yield frame, t


def _converted(entry: tuple, geometry: FrameGeometry) -> tuple:
    t, frame, rgb = entry
    if rgb is None:
        rgb = frame_to_rgb(frame, geometry)
    return t, frame, rgb


def frame_to_rgb(frame, geometry: FrameGeometry) -> np.ndarray:  # noqa: ANN001 - av.VideoFrame
    """Short-side resize (bicubic) + centre crop, as uint8 [crop, crop, 3]."""
    w, h = geometry.scaled_size(frame.width, frame.height)
    rgb = frame.reformat(width=w, height=h, format="rgb24", interpolation="BICUBIC").to_ndarray()
    top, left = (h - geometry.crop) // 2, (w - geometry.crop) // 2
    return np.ascontiguousarray(rgb[top:top + geometry.crop, left:left + geometry.crop])


def naive_frames_by_seeking(path: str | os.PathLike[str], times: np.ndarray,
                            geometry: FrameGeometry) -> Iterator[tuple[int, np.ndarray]]:
    """The slow way, for the benchmark only: seek to each time and decode forward to it."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for i, t in enumerate(np.asarray(times, dtype=np.float64)):
            container.seek(int(t / stream.time_base), stream=stream, backward=True)
            chosen = None
            for frame in container.decode(stream):
                if frame.time is not None and frame.time > t and chosen is not None:
                    break
                chosen = frame
            if chosen is not None:
                yield i, frame_to_rgb(chosen, geometry)


def batched(items: Iterable[tuple[int, np.ndarray]], size: int,
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Group `(index, array)` pairs into `(indices [B], stacked [B, ...])` batches."""
    idx: list[int] = []
    arrays: list[np.ndarray] = []
    for i, a in items:
        idx.append(i)
        arrays.append(a)
        if len(idx) >= size:
            yield np.asarray(idx), np.stack(arrays)
            idx, arrays = [], []
    if idx:
        yield np.asarray(idx), np.stack(arrays)


_DONE = object()


def prefetch(items: Iterable, depth: int = 2) -> Iterator:
    """Run an iterator in a background thread, `depth` items ahead (decode overlaps compute)."""
    q: queue.Queue = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def worker() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((True, item))
            q.put((True, _DONE))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put((False, exc))

    thread = threading.Thread(target=worker, daemon=True, name="prefetch")
    thread.start()
    try:
        while True:
            ok, item = q.get()
            if not ok:
                raise item
            if item is _DONE:
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)


# --- audio -------------------------------------------------------------------------------------


@dataclass
class AudioStats:
    """What the audio decode saw."""

    samples: int = 0  # decoded samples (at the requested rate)
    peak: float = 0.0  # max |sample|
    loudest_rms: float = 0.0  # RMS of the loudest one-second segment
    stderr: str = ""

    @property
    def silent(self) -> bool:
        """No one-second segment louder than -60 dBFS RMS."""
        return self.loudest_rms < 1e-3


def _audio_cmd(path: str | os.PathLike[str], sample_rate: int) -> list[str]:
    return [
        ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-i", str(path),
        "-map", "0:a:0", "-vn", "-sn", "-dn", "-af", "aresample=async=1:first_pts=0",
        "-ac", "1", "-ar", str(sample_rate), "-f", "f32le", "pipe:1",
    ]


def audio_blocks(path: str | os.PathLike[str], sample_rate: int, block_seconds: float = 60.0,
                 stats: AudioStats | None = None) -> Iterator[np.ndarray]:
    """Mono float32 samples at `sample_rate` from file time 0, in blocks of ~`block_seconds`."""
    stats = stats if stats is not None else AudioStats()
    block_bytes = max(4, int(block_seconds * sample_rate) * 4)
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(_audio_cmd(path, sample_rate), stdout=subprocess.PIPE,
                                stderr=err, stdin=subprocess.DEVNULL)
        assert proc.stdout is not None
        pending = b""
        try:
            while True:
                chunk = proc.stdout.read(block_bytes)
                if not chunk:
                    break
                data = pending + chunk
                usable = len(data) - len(data) % 4
                pending = data[usable:]
                block = np.frombuffer(data[:usable], dtype="<f4").astype(np.float32)
                if len(block):
                    stats.samples += len(block)
                    stats.peak = max(stats.peak, float(np.abs(block).max()))
                    yield block
        finally:
            proc.stdout.close()
            if proc.poll() is None:
                proc.kill()
            rc = proc.wait()
            err.seek(0)
            stats.stderr = err.read().decode("utf-8", "replace").strip()[-2000:]
        if rc != 0 and stats.samples == 0:
            raise DecodeError(f"{path}: audio could not be decoded (ffmpeg {rc}): {stats.stderr}")


def read_audio(path: str | os.PathLike[str], sample_rate: int,
               stats: AudioStats | None = None) -> np.ndarray:
    """The whole first audio stream as mono float32 at `sample_rate`, from file time 0."""
    stats = stats if stats is not None else AudioStats()
    blocks = list(audio_blocks(path, sample_rate, stats=stats))
    audio = np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
    _update_loudness(stats, audio, sample_rate)
    return audio


def _update_loudness(stats: AudioStats, audio: np.ndarray, sample_rate: int) -> None:
    n = len(audio) // sample_rate
    if n:
        seconds = audio[: n * sample_rate].reshape(n, sample_rate).astype(np.float64)
        stats.loudest_rms = max(stats.loudest_rms, float(np.sqrt((seconds ** 2).mean(1)).max()))
    rest = audio[n * sample_rate:]
    if len(rest):
        stats.loudest_rms = max(stats.loudest_rms, float(np.sqrt((rest.astype(np.float64) ** 2)
                                                                 .mean())))


@dataclass
class DecodedAudio:
    """A file's whole first audio stream, decoded once at one rate and shared by every model at
    that rate (the ASR and an audio backend): the same samples each would decode itself."""

    samples: np.ndarray | None  # float32 [n] from file time 0; None when decoding failed
    stats: AudioStats
    error: DecodeError | None = None

    @classmethod
    def decode(cls, path: str | os.PathLike[str], sample_rate: int) -> DecodedAudio:
        """Decode (`read_audio`); a `DecodeError` is kept and raised to each consumer."""
        stats = AudioStats()
        try:
            return cls(read_audio(path, sample_rate, stats), stats)
        except DecodeError as exc:
            return cls(None, stats, exc)

    def read(self, stats: AudioStats | None = None) -> np.ndarray:
        """The samples as `read_audio` gives them, its stats copied into `stats`."""
        if self.error is not None:
            raise self.error
        assert self.samples is not None
        if stats is not None:
            stats.samples, stats.peak = self.stats.samples, self.stats.peak
            stats.loudest_rms, stats.stderr = self.stats.loudest_rms, self.stats.stderr
        return self.samples

    def seconds(self, sample_rate: int, first_time: float, n_rows: int, batch_rows: int,
                stats: AudioStats) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """`audio_seconds` over these samples (stats as `audio_seconds` fills them; a decode
        error is raised while iterating, as there)."""
        if self.error is not None:
            raise self.error
        assert self.samples is not None
        stats.samples, stats.peak, stats.stderr = (self.stats.samples, self.stats.peak,
                                                   self.stats.stderr)
        blocks = [self.samples] if len(self.samples) else []
        yield from seconds_of_blocks(blocks, sample_rate, first_time, n_rows, batch_rows, stats)


def audio_seconds(path: str | os.PathLike[str], sample_rate: int, first_time: float,
                  n_rows: int, batch_rows: int, stats: AudioStats | None = None,
                  ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield `(rows [B], segments float32 [B, sample_rate])` for row i = file time
    `[first_time + i, first_time + i + 1)`, i < n_rows, in batches of `batch_rows`.

    Parts of a row outside the decoded audio are zeros; rows with no decoded sample at all are
    not yielded (the caller sees which rows came)."""
    stats = stats if stats is not None else AudioStats()
    blocks = audio_blocks(path, sample_rate, block_seconds=max(batch_rows, 30), stats=stats)
    return seconds_of_blocks(blocks, sample_rate, first_time, n_rows, batch_rows, stats)


def seconds_of_blocks(blocks: Iterable[np.ndarray], sample_rate: int, first_time: float,
                      n_rows: int, batch_rows: int, stats: AudioStats,
                      ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """`audio_seconds` over consecutive sample blocks from file time 0 (any block sizes)."""
    sr = sample_rate
    start = int(round(first_time * sr))  # sample index of row 0 (may be negative)
    buf = np.zeros(0, np.float32)
    buf_start = 0  # sample index of buf[0]
    decoded = 0  # samples decoded so far
    row = 0
    pending_rows: list[int] = []
    pending: list[np.ndarray] = []

    def take(r: int) -> np.ndarray:
        a = start + r * sr
        seg = np.zeros(sr, np.float32)
        lo, hi = max(a, buf_start), min(a + sr, buf_start + len(buf))
        if hi > lo:
            seg[lo - a:hi - a] = buf[lo - buf_start:hi - buf_start]
        return seg

    def flush() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        nonlocal pending_rows, pending
        if pending_rows:
            segs = np.stack(pending)
            rms = np.sqrt((segs.astype(np.float64) ** 2).mean(1))
            stats.loudest_rms = max(stats.loudest_rms, float(rms.max()))
            yield np.asarray(pending_rows), segs
            pending_rows, pending = [], []

    for block in blocks:
        buf = np.concatenate([buf, block])
        decoded += len(block)
        while row < n_rows and start + (row + 1) * sr <= decoded:
            pending_rows.append(row)
            pending.append(take(row))
            row += 1
            if len(pending_rows) >= batch_rows:
                yield from flush()
        keep_from = max(buf_start, start + row * sr)  # samples still needed
        if keep_from > buf_start:
            cut = min(len(buf), keep_from - buf_start)
            buf, buf_start = buf[cut:], buf_start + cut
    while row < n_rows and start + row * sr < decoded:  # partial last rows
        pending_rows.append(row)
        pending.append(take(row))
        row += 1
    yield from flush()
