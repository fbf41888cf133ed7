"""`repurpose clip`, start to finish: input -> features -> model -> ranked clips -> files.

Outputs in `<out>/`: `clip-01.mp4` ... (best first), `clip-NN.jpg` thumbnails, `clip-NN.srt`
with `--subtitles srt` (`.ass` with `--subtitles ass`), `index.html` (the preview page) and
`clips.json`, the manifest:

    {"format": "repurpose-clips/1", "source": {input, url, path, sha256, duration, width,
     height, fps, has_audio, rotation, display}, "model": {dir, params_hash, data_hash,
     features, postprocess}, "asr", "options", "windows": [[start, end], ...],
     "candidates": N, "shots": [...], "preview": "index.html",
     "clips": [{"rank", "start", "end", "duration", "score", "window", "file", "subtitles",
                "thumbnail", "text", "snap": {"model": [start, end], "start": {to, shift},
                "end": {to, shift}}, "reframe": {mode, face_share, crop, max_step_px,
                mean_step_px} | null, "size": [w, h]}, ...]}

Clip boundaries are snapped to sentences / words / shot cuts (`repurpose.clip.boundaries`);
`--min-duration` / `--max-duration` apply to the snapped clips.

(times in seconds of the source video). All files are written to temporary names; only when
every clip is encoded are they renamed into place, clip files of an earlier run that are no
longer wanted removed, and the manifest written last. Per-video work lives in `<out>/.work/`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from repurpose import io
from repurpose.clip.subtitles import CaptionStyle
from repurpose.errors import UserError
from repurpose.media import MediaError
from repurpose.params import DEFAULT_PARAMS, load_params

log = logging.getLogger(__name__)

FORMAT = "repurpose-clips/1"
MANIFEST = "clips.json"
WORK = ".work"
SUBTITLE_MODES = ("none", "srt", "ass", "burn")
CLIP_FILE = re.compile(r"^clip-\d+\.(mp4|srt|ass|jpg)$")
PREVIEW = "index.html"
OVERLAP = 0.5  # a clip sharing more than this share of its length with a better one is dropped


@dataclass(frozen=True)
class ClipOptions:
    """What the command was asked for."""

    model: str = "models"
    out: str = "clips"
    params: str | None = None  # None: ./params.yaml when present, else built-in defaults
    max_clips: int | None = 10
    min_score: float | None = None
    vertical: bool = False
    subtitles: str = "none"  # none | srt | ass | burn
    window_seconds: int = 1800
    min_duration: float | None = None  # s: drop clips shorter than this (after snapping)
    max_duration: float | None = None  # s: drop clips longer than this (after snapping)
    size: tuple[int, int] = (1080, 1920)  # --vertical output (width, height)
    reframe: str = "auto"  # auto: follow faces / motion; centre: always the centre
    snap: bool = True  # snap boundaries to sentences, words and shot cuts
    captions: CaptionStyle = field(default_factory=CaptionStyle)

    def check(self) -> None:
        """UserError for options that contradict each other or are out of range."""
        if self.max_clips is not None and self.max_clips < 1:
            raise UserError(f"--max-clips must be >= 1, got {self.max_clips}")
        if self.min_duration is not None and self.min_duration <= 0:
            raise UserError(f"--min-duration must be > 0, got {self.min_duration}")
        if (self.min_duration is not None and self.max_duration is not None
                and self.max_duration < self.min_duration):
            raise UserError(f"--max-duration {self.max_duration} is below --min-duration "
                            f"{self.min_duration}")
        if min(self.size) < 2 or any(v % 2 for v in self.size):
            raise UserError(f"--size must be two even numbers >= 2, got "
                            f"{self.size[0]}x{self.size[1]}")
        if self.reframe not in ("auto", "centre"):
            raise UserError(f"--reframe must be auto or centre, got {self.reframe!r}")
        if self.subtitles not in SUBTITLE_MODES:
            raise UserError(f"--subtitles must be one of {', '.join(SUBTITLE_MODES)}")
        if self.window_seconds < 1:
            raise UserError(f"--window-seconds must be >= 1, got {self.window_seconds}")


def read_params(path: str | None) -> dict[str, Any]:
    """The params file; with no --params, ./params.yaml if it exists, else {} (every section
    then takes its defaults)."""
    if path is None:
        if not Path(DEFAULT_PARAMS).is_file():
            log.info("no %s here: using default transcribe/download settings", DEFAULT_PARAMS)
            return {}
        path = DEFAULT_PARAMS
    return load_params(path)


class StepProgress:
    """A progress bar over the steps (stderr; off when stderr is not a terminal) and printed
    lines that do not break it."""

    def __init__(self, total: int, enabled: bool | None = None):
        from tqdm import tqdm

        self.seconds: dict[str, float] = {}
        self._started = False
        self._current: str | None = None
        self._since = time.monotonic()
        self.bar = tqdm(total=total, desc="clip: start", unit="step", file=sys.stderr,
                        disable=None if enabled is None else not enabled, leave=False,
                        bar_format="{desc:<22} {n_fmt}/{total_fmt} |{bar}| {elapsed}")

    def step(self, name: str) -> None:
        """Start step `name` (the previous one is done)."""
        if self._started and self.bar.n < self.bar.total:
            self.bar.update(1)
        self._started = True
        self._mark(name)
        self.bar.set_description_str(f"clip: {name}")

    def _mark(self, name: str | None) -> None:
        now = time.monotonic()
        if self._current is not None:
            group = self._current.split(" ")[0]  # "export 2/5" -> "export"
            self.seconds[group] = self.seconds.get(group, 0.0) + now - self._since
        self._current, self._since = name, now

    def timings(self) -> str:
        """Seconds per step, e.g. `transcribe 6.1 s, visual 3.2 s, ...`."""
        self._mark(None)
        return ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())

    def add(self, n: int) -> None:
        self.bar.total += n
        self.bar.refresh()

    def echo(self, line: str) -> None:
        from tqdm import tqdm

        tqdm.write(line, file=sys.stdout)

    def close(self) -> None:
        if self._started:
            self.bar.update(1)
        self.bar.close()


def _clock(seconds: float) -> str:
    m, s = divmod(max(0.0, seconds), 60)
    h, m = divmod(int(m), 60)
    return f"{h}:{m:02d}:{s:04.1f}" if h else f"{m}:{s:04.1f}"


def table(clips: list[dict[str, Any]]) -> list[str]:
    """The printed summary of the clips."""
    if not clips:
        return ["no clips"]
    lines = [f"{'#':>3}  {'start':>9}  {'end':>9}  {'length':>7}  {'score':>6}  file"]
    for c in clips:
        files = c["file"] + (f" + {c['subtitles']}" if c.get("subtitles") else "")
        lines.append(f"{c['rank']:>3}  {_clock(c['start']):>9}  {_clock(c['end']):>9}  "
                     f"{c['duration']:>6.1f}s  {c['score']:>6.3f}  {files}")
    return lines


def _stale(out: Path, keep: set[str]) -> list[Path]:
    return [p for p in out.iterdir() if p.is_file() and CLIP_FILE.match(p.name)
            and p.name not in keep]


def check_out(out: Path) -> None:
    """UserError (one line) unless `out` is, or can be made, a folder we can write in."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe_file = out / f".write-test-{os.getpid()}.tmp"
        probe_file.write_bytes(b"")
        probe_file.unlink()
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write there ({exc.strerror or exc})") from exc


def _overlap(a: float, b: float, c: float, d: float) -> float:
    """Seconds shared by [a, b) and [c, d)."""
    return max(0.0, min(b, d) - max(a, c))


@dataclass(frozen=True)
class Chosen:
    """A clip to export: the model's segment and its snapped boundaries."""

    segment: Any  # repurpose.clip.predict.ClipCandidate
    start: float
    end: float
    snap: dict[str, Any]


def choose(segments: list[Any], words: list[Any], shots: list[float], duration: float,
           fps: float, opts: ClipOptions) -> list[Chosen]:
    """Ranked segments -> snapped clips within the duration limits, at most `max_clips`."""
    from repurpose.clip.boundaries import SnapSettings, snap_segment

    kept: list[Chosen] = []
    for seg in segments:
        if opts.max_clips is not None and len(kept) >= opts.max_clips:
            break
        if opts.snap:
            pair = snap_segment(seg.start, seg.end, words, shots, duration, fps, SnapSettings())
            if pair is None:
                continue
            a, b = pair
            snap = {"model": [seg.start, seg.end],
                    "start": {"to": a.to, "shift": a.shift}, "end": {"to": b.to, "shift": b.shift}}
            start, end = a.time, b.time
        else:
            start, end, snap = seg.start, seg.end, None
        length = end - start
        if any(_overlap(start, end, k.start, k.end) > OVERLAP * length for k in kept):
            continue  # mostly inside a better clip already kept
        if opts.min_duration is not None and length < opts.min_duration - 1e-6:
            continue
        if opts.max_duration is not None and length > opts.max_duration + 1e-6:
            continue
        kept.append(Chosen(seg, start, end, snap))
    return kept


def _write_subtitles(stack: contextlib.ExitStack, out: Path, work: Path, stem: str,
                     words: list[Any], c: Chosen, size: tuple[int, int],
                     opts: ClipOptions) -> tuple[str | None, Path | None]:
    """The clip's subtitle file beside it (srt / ass) or to burn: (file name, burn path)."""
    from repurpose.clip.subtitles import ass, cues, srt

    if opts.subtitles == "srt":
        tmp = stack.enter_context(io.atomic_path(out / f"{stem}.srt"))
        tmp.write_text(srt(cues(words, c.start, c.end)), encoding="utf-8")
        return f"{stem}.srt", None
    if opts.subtitles == "ass":
        tmp = stack.enter_context(io.atomic_path(out / f"{stem}.ass"))
        tmp.write_text(ass(words, c.start, c.end, size, opts.captions), encoding="utf-8")
        return f"{stem}.ass", None
    if opts.subtitles == "burn" and words:  # nothing said: nothing to burn
        if opts.captions.karaoke:
            path = work / "burn" / f"{stem}.ass"
            io.write_text(path, ass(words, c.start, c.end, size, opts.captions))
        else:
            path = work / "burn" / f"{stem}.srt"
            io.write_text(path, srt(cues(words, c.start, c.end)))
        return None, path
    return None, None


def _export_one(stack: contextlib.ExitStack, source: Any, out: Path, work: Path, rank: int,
                c: Chosen, transcript: dict[str, Any], opts: ClipOptions) -> dict[str, Any]:
    """Encode one clip (+ subtitles + thumbnail) to temporary names; its manifest entry."""
    from repurpose.clip.export import export_clip, output_size
    from repurpose.clip.preview import thumbnail
    from repurpose.clip.reframe import ReframeSettings, centre_crop, plan_crop, sendcmd_text
    from repurpose.clip.subtitles import clip_text, clip_words

    stem = f"clip-{rank:02d}"
    display = source.display_size
    crop = commands = None
    if opts.vertical and opts.reframe == "centre":
        crop = centre_crop(display, opts.size)
    elif opts.vertical:
        crop = plan_crop(source.path, c.start, c.end, display, source.info.fps,
                         ReframeSettings(size=opts.size))
        commands = work / "reframe" / f"{stem}.cmd"
        io.write_text(commands, sendcmd_text(crop))
    size = output_size(display, crop, opts.size if opts.vertical else None)
    words = clip_words(transcript, c.start, c.end)
    subtitle_file, burn = _write_subtitles(stack, out, work, stem, words, c, size, opts)
    tmp = stack.enter_context(io.atomic_path(out / f"{stem}.mp4"))
    export_clip(source.path, c.start, c.end, tmp, display[0], display[1], burn=burn, crop=crop,
                crop_commands=commands, size=size if opts.vertical else None)
    thumb = stack.enter_context(io.atomic_path(out / f"{stem}.jpg"))
    thumbnail(tmp, (c.end - c.start) / 2, thumb)
    seg = c.segment
    return {
        "rank": rank, "start": c.start, "end": c.end, "duration": round(c.end - c.start, 3),
        "score": round(seg.score, 6), "window": seg.window, "file": f"{stem}.mp4",
        "subtitles": subtitle_file, "burned_subtitles": burn is not None,
        "thumbnail": f"{stem}.jpg", "text": clip_text(words),
        "snap": c.snap, "reframe": crop.stats() if crop is not None else None,
        "size": list(size),
    }


def _shots(source: Any, work: Path, enabled: bool) -> list[float]:
    """Shot cuts of the source (cached by its sha256), or [] when snapping is off."""
    from repurpose.clip.boundaries import cached_shots

    if not enabled:
        return []
    return cached_shots(source.path, work / "shots" / f"{source.sha256[:16]}.json")


def run(input_: str, opts: ClipOptions, progress_bar: bool | None = None,
        echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Repurpose `input_` (a path or an http(s) URL); return the manifest (also written)."""
    from repurpose.clip.export import require_burn
    from repurpose.clip.features import compute_features, feature_setup
    from repurpose.clip.predict import postprocess_config
    from repurpose.clip.preview import page
    from repurpose.training.loop import resolve_device
    from repurpose.training.train import load_model

    opts.check()
    params = read_params(opts.params)
    if opts.subtitles == "burn":
        require_burn()  # before any long work
    out = Path(opts.out)
    check_out(out)  # before any long work
    work = out / WORK
    progress = StepProgress(total=8, enabled=progress_bar)
    say = echo or progress.echo
    try:
        progress.step("model")
        device = resolve_device("auto")
        net, info = load_model(opts.model, device)
        post = postprocess_config(info, params)
        setup = feature_setup(info, params)  # before the download: weights, model record
        progress.step("input")
        source = _open_input(input_, work, params, say)
        feats = compute_features(source, setup, work, progress.step)
        for line in feats.lines():
            say(line)
        progress.step("predict")
        windows, candidates, shots, chosen = _choose_clips(net, feats, source, post, device,
                                                           work, opts, say)
        progress.add(len(chosen))
        clips = _export_all(chosen, source, out, work, feats.transcript, opts, progress)
        progress.step("manifest")
        manifest = build_manifest(source, opts, info, post, feats.asr, windows, candidates,
                                  shots, clips)
        _write_outputs(out, manifest, page)
    finally:
        progress.close()
    for line in table(clips):
        say(line)
    say(f"wrote {len(clips)} clip(s), {PREVIEW} and {MANIFEST} to {out} "
        f"({progress.timings()})")
    return manifest


def _open_input(input_: str, work: Path, params: dict[str, Any],
                say: Callable[[str], None]) -> Any:
    """The input as a local video (`source.Source`; a URL is downloaded first), described."""
    from repurpose.clip.source import download_config, is_url, resolve_source

    download = download_config(params.get("download")) if is_url(input_) else None
    source = resolve_source(input_, work, download)
    if source.url:
        say(f"downloaded {source.url}: {source.downloaded} ({source.path.name})")
    dw, dh = source.display_size
    turned = f" (shown {dw}x{dh}, rotated {source.rotation})" if source.rotation else ""
    say(f"input {source.input}: {source.info.duration:.1f} s, {source.info.width}x"
        f"{source.info.height}{turned}, sha256 {source.sha256[:12]}")
    return source


def _choose_clips(net: Any, feats: Any, source: Any, post: Any, device: Any, work: Path,
                  opts: ClipOptions, say: Callable[[str], None]
                  ) -> tuple[list[tuple[float, float]], int, list[float], list[Any]]:
    """(windows, number of candidates, shot cuts, chosen clips) of the model's predictions."""
    from repurpose.clip.boundaries import transcript_words
    from repurpose.clip.predict import predict_segments, select

    windows, segments = predict_segments(net, feats.features, source.video_id,
                                         source.info.duration, opts.window_seconds, post,
                                         device)
    shots = _shots(source, work, opts.snap)
    words = transcript_words(feats.transcript)
    chosen = choose(select(segments, None, opts.min_score), words, shots,
                    source.info.duration, source.info.fps, opts)
    say(f"predict: {len(windows)} window(s), {len(segments)} candidate clip(s), "
        f"{len(chosen)} kept")
    return windows, len(segments), shots, chosen


def build_manifest(source: Any, opts: ClipOptions, info: dict[str, Any], post: Any,
                   asr: Any, windows: list[tuple[float, float]], candidates: int,
                   shots: Any, clips: list[dict[str, Any]]) -> dict[str, Any]:
    """The manifest document: the input, the model and its settings, and every clip."""
    return {
        "format": FORMAT,
        "source": {"input": source.input, "url": source.url, "path": str(source.path),
                   "sha256": source.sha256, **{k: source.info.to_dict()[k] for k in (
                       "duration", "width", "height", "fps", "has_audio")},
                   "rotation": source.rotation, "display": list(source.display_size)},
        "model": {"dir": str(opts.model), "params_hash": info.get("params_hash"),
                  "data_hash": info.get("data_hash"), "best": info.get("best"),
                  "features": {m: {k: f.get(k) for k in ("backend", "weights", "dim")}
                               for m, f in info["features"].items()},
                  "postprocess": post.to_dict()},
        "asr": asr,
        "options": _options(opts),
        "windows": [[a, b] for a, b in windows],
        "candidates": candidates,
        "shots": shots,
        "preview": PREVIEW,
        "clips": clips,
    }


def _options(opts: ClipOptions) -> dict[str, Any]:
    """The options as JSON (without the output folder)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(opts).items()
            if k not in ("out",)}


def _export_all(chosen: list[Chosen], source: Any, out: Path, work: Path,
                transcript: dict[str, Any], opts: ClipOptions, progress: StepProgress
                ) -> list[dict[str, Any]]:
    """Every clip encoded, then all renamed into place; stale clip files removed."""
    clips: list[dict[str, Any]] = []
    try:
        with contextlib.ExitStack() as stack:  # every file renamed into place at the end
            for rank, c in enumerate(chosen, 1):
                progress.step(f"export {rank}/{len(chosen)}")
                try:
                    clips.append(_export_one(stack, source, out, work, rank, c, transcript,
                                             opts))
                except MediaError as exc:  # one line, not ffmpeg's whole log
                    text = " | ".join(x.strip() for x in str(exc).splitlines() if x.strip())
                    raise UserError(f"{source.input}: clip {rank} "
                                    f"({c.start:.2f}-{c.end:.2f} s) could not be encoded: "
                                    f"{text[-400:]}") from exc
        keep = {c["file"] for c in clips} | {c["thumbnail"] for c in clips}
        keep |= {c["subtitles"] for c in clips if c["subtitles"]}
        for path in _stale(out, keep):
            path.unlink()
    except OSError as exc:
        raise UserError(f"{exc.filename or out}: cannot write ({exc.strerror or exc})") from exc
    return clips


def _write_outputs(out: Path, manifest: dict[str, Any], page: Callable[[dict], str]) -> None:
    """The preview page, then the manifest (last: its presence means the run finished)."""
    try:
        io.write_text(out / PREVIEW, page(manifest))
        io.write_json(out / MANIFEST, manifest)
    except OSError as exc:
        raise UserError(f"{exc.filename or out}: cannot write ({exc.strerror or exc})") from exc
