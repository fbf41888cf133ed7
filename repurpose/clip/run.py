"""`repurpose clip`, start to finish: input -> features -> model -> ranked clips -> files.

Outputs in `<out>/`: `clip-01.mp4` ... (best first), `clip-NN.srt` with `--subtitles srt`, and
`clips.json`, the manifest:

    {"format": "repurpose-clips/1", "source": {input, url, path, sha256, duration, width,
     height, fps, has_audio}, "model": {dir, params_hash, data_hash, features, postprocess},
     "asr", "options", "windows": [[start, end], ...], "candidates": N,
     "clips": [{"rank", "start", "end", "duration", "score", "window", "file", "subtitles",
                "text"}, ...]}

(times in seconds of the source video). All files are written to temporary names; only when
every clip is encoded are they renamed into place, clip files of an earlier run that are no
longer wanted removed, and the manifest written last. Per-video work lives in `<out>/.work/`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from repurpose import io
from repurpose.errors import UserError
from repurpose.params import DEFAULT_PARAMS, load_params

log = logging.getLogger(__name__)

FORMAT = "repurpose-clips/1"
MANIFEST = "clips.json"
WORK = ".work"
SUBTITLE_MODES = ("none", "srt", "burn")
CLIP_FILE = re.compile(r"^clip-\d+\.(mp4|srt)$")


@dataclass(frozen=True)
class ClipOptions:
    """What the command was asked for."""

    model: str = "models"
    out: str = "clips"
    params: str | None = None  # None: ./params.yaml when present, else built-in defaults
    max_clips: int | None = 10
    min_score: float | None = None
    vertical: bool = False
    subtitles: str = "none"  # none | srt | burn
    window_seconds: int = 1800

    def check(self) -> None:
        if self.max_clips is not None and self.max_clips < 1:
            raise UserError(f"--max-clips must be >= 1, got {self.max_clips}")
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


class Progress:
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


def run(input_: str, opts: ClipOptions, progress_bar: bool | None = None,
        echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Repurpose `input_` (a path or an http(s) URL); return the manifest (also written)."""
    from repurpose.clip.export import export_clip, require_burn
    from repurpose.clip.features import compute_features
    from repurpose.clip.predict import (
        postprocess_config,
        predict_segments,
        select,
        snap_to_frames,
    )
    from repurpose.clip.source import resolve_source
    from repurpose.clip.subtitles import clip_text, clip_words, cues, srt
    from repurpose.training.loop import resolve_device
    from repurpose.training.run import load_model

    opts.check()
    params = read_params(opts.params)
    if opts.subtitles == "burn":
        require_burn()  # before any long work
    out = Path(opts.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a folder")
    work = out / WORK
    progress = Progress(total=8, enabled=progress_bar)
    say = echo or progress.echo
    try:
        progress.step("model")
        device = resolve_device("auto")
        net, info = load_model(opts.model, device)
        post = postprocess_config(info, params)

        progress.step("input")
        source = resolve_source(input_, work, params.get("download"))
        if source.url:
            say(f"downloaded {source.url}: {source.downloaded} ({source.path.name})")
        say(f"input {source.input}: {source.info.duration:.1f} s, {source.info.width}x"
            f"{source.info.height}, sha256 {source.sha256[:12]}")

        feats = compute_features(source, info, params, work, progress.step)
        for line in feats.lines():
            say(line)

        progress.step("predict")
        windows, segments = predict_segments(net, feats.features, source.video_id,
                                             source.info.duration, opts.window_seconds, post,
                                             device)
        chosen = [snap_to_frames(s, source.info.fps, source.info.duration)
                  for s in select(segments, opts.max_clips, opts.min_score)]
        say(f"predict: {len(windows)} window(s), {len(segments)} candidate clip(s), "
            f"{len(chosen)} kept")
        progress.add(len(chosen))

        out.mkdir(parents=True, exist_ok=True)
        clips: list[dict[str, Any]] = []
        with contextlib.ExitStack() as stack:  # every file renamed into place at the end
            for rank, seg in enumerate(chosen, 1):
                progress.step(f"export {rank}/{len(chosen)}")
                stem = f"clip-{rank:02d}"
                words = clip_words(feats.transcript, seg.start, seg.end)
                cue_list = cues(words, seg.start, seg.end)
                subtitle_file = None
                burn_path = None
                if opts.subtitles == "srt":
                    subtitle_file = f"{stem}.srt"
                    tmp = stack.enter_context(io.atomic_path(out / subtitle_file))
                    tmp.write_text(srt(cue_list), encoding="utf-8")
                elif opts.subtitles == "burn" and cue_list:  # nothing said: nothing to burn
                    burn_path = work / "burn" / f"{stem}.srt"
                    io.write_text(burn_path, srt(cue_list))
                tmp = stack.enter_context(io.atomic_path(out / f"{stem}.mp4"))
                export_clip(source.path, seg.start, seg.end, tmp, source.info.width,
                            source.info.height, vertical=opts.vertical, burn=burn_path)
                clips.append({
                    "rank": rank, "start": seg.start, "end": seg.end,
                    "duration": round(seg.end - seg.start, 3), "score": round(seg.score, 6),
                    "window": seg.window, "file": f"{stem}.mp4", "subtitles": subtitle_file,
                    "burned_subtitles": opts.subtitles == "burn", "text": clip_text(words),
                })
        keep = {c["file"] for c in clips} | {c["subtitles"] for c in clips if c["subtitles"]}
        for path in _stale(out, keep):
            path.unlink()

        progress.step("manifest")
        manifest = {
            "format": FORMAT,
            "source": {"input": source.input, "url": source.url, "path": str(source.path),
                       "sha256": source.sha256, **{k: source.info.to_dict()[k] for k in (
                           "duration", "width", "height", "fps", "has_audio")}},
            "model": {"dir": str(opts.model), "params_hash": info.get("params_hash"),
                      "data_hash": info.get("data_hash"), "best": info.get("best"),
                      "features": {m: {k: f.get(k) for k in ("backend", "weights", "dim")}
                                   for m, f in info["features"].items()},
                      "postprocess": post.to_dict()},
            "asr": feats.asr,
            "options": {k: v for k, v in asdict(opts).items() if k not in ("out",)},
            "windows": [[a, b] for a, b in windows],
            "candidates": len(segments),
            "clips": clips,
        }
        io.write_json(out / MANIFEST, manifest)
    finally:
        progress.close()
    for line in table(clips):
        say(line)
    say(f"wrote {len(clips)} clip(s) and {MANIFEST} to {out} ({progress.timings()})")
    return manifest
