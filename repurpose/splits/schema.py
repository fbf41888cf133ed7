"""Repurpose-10K split entries: parsing and validation with messages naming file, entry, field."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repurpose.errors import UserError

YOUTUBE_ID = re.compile(r"[A-Za-z0-9_-]{11}")
TOLERANCE = 1e-3  # seconds: float noise allowed in derived fields and window bounds
MAX_TIME = 7 * 86400.0  # seconds: no source time (window or clip bound) past 7 days
MAX_WINDOW = 86400.0  # seconds: no window longer than 24 h (real windows are <= 30 min)
MAX_COVERAGE = 1.0 + TOLERANCE  # coverage is a share of the window
MAX_REPORTED = 20


def is_safe_id(value: object) -> bool:
    """True if `value` is an 11-character YouTube id, safe to use in a file name."""
    return isinstance(value, str) and YOUTUBE_ID.fullmatch(value) is not None


def check_id(value: object) -> str:
    """Return `value` if it is a safe YouTube id, else raise ValueError: check before any path."""
    if not is_safe_id(value):
        raise ValueError(f"unsafe youtube_id {value!r}: expected 11 characters of [A-Za-z0-9_-]")
    return value  # type: ignore[return-value]


@dataclass(frozen=True)
class SplitEntry:
    """One window of one source video, as a split file describes it (absolute seconds)."""

    split: str
    index: int  # position in its file
    youtube_id: str
    start: float
    end: float
    clips: tuple[tuple[float, float], ...]  # window seconds (segmentsOffset)
    coverage: float | None = None

    @property
    def duration(self) -> float:
        """Window length in seconds."""
        return self.end - self.start

    @property
    def window_id(self) -> str:
        """Stable id of the window: `<youtube_id>@<start>-<end>`."""
        return f"{self.youtube_id}@{_fmt(self.start)}-{_fmt(self.end)}"

    def absolute_clips(self) -> tuple[tuple[float, float], ...]:
        """Clips in absolute source seconds."""
        return tuple((a + self.start, b + self.start) for a, b in self.clips)


def _fmt(x: float) -> str:
    text = f"{x + 0.0:.3f}".rstrip("0").rstrip(".")  # + 0.0 turns -0.0 into 0.0
    return "0" if text == "-0" else text


@dataclass(frozen=True)
class Problem:
    """One validation failure."""

    file: str
    index: int | None
    field: str | None
    message: str
    youtube_id: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.index is not None:
            entry = f"entry {self.index}"
            if self.youtube_id is not None:
                entry += f" (youtube_id {self.youtube_id!r})"
            where.append(entry)
        if self.field is not None:
            where.append(f"field '{self.field}'")
        return ": ".join([*where, self.message])


class SplitValidationError(UserError):
    """A split file is invalid; `problems` lists every failure found."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = [str(p) for p in problems[:MAX_REPORTED]]
        if len(problems) > MAX_REPORTED:
            lines.append(f"... and {len(problems) - MAX_REPORTED} more problems")
        if len(problems) == 1:  # one problem, one line
            super().__init__(lines[0])
        else:
            super().__init__(f"{len(problems)} invalid value(s):\n  " + "\n  ".join(lines))


@dataclass
class ParsedSplit:
    """A validated split file: its entries plus what is odd but allowed."""

    path: str
    split: str
    entries: list[SplitEntry] = field(default_factory=list)  # every valid entry, in file order
    duplicates: list[int] = field(default_factory=list)  # indices of exact repeats of earlier ones

    def unique_entries(self) -> list[SplitEntry]:
        """Entries without exact repeats (the first occurrence is kept)."""
        repeated = set(self.duplicates)
        return [e for e in self.entries if e.index not in repeated]


def split_name(path: str | os.PathLike[str]) -> str:
    """Split name of a file: its stem (`val.json` -> `val`)."""
    return Path(path).stem


def load_split(path: str | os.PathLike[str], split: str | None = None) -> ParsedSplit:
    """Read and validate one split file; raise SplitValidationError listing every problem."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SplitValidationError([Problem(file, None, None, "file not found")]) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SplitValidationError([Problem(file, None, None, f"cannot read: {exc}")]) from exc
    deep = "JSON nested too deeply (a split file is a list of flat objects)"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        raise SplitValidationError([Problem(file, None, None, msg)]) from exc
    except RecursionError as exc:
        raise SplitValidationError([Problem(file, None, None, deep)]) from exc
    except ValueError as exc:  # e.g. an integer literal of more than 4300 digits
        raise SplitValidationError([Problem(file, None, None, f"invalid JSON: {exc}")]) from exc
    try:
        return parse_split(data, file, split or split_name(path))
    except RecursionError as exc:  # an entry deep enough that re-encoding it overflows
        raise SplitValidationError([Problem(file, None, None, deep)]) from exc


def parse_split(data: Any, file: str, split: str) -> ParsedSplit:
    """Validate decoded JSON `data` of `file`; raise SplitValidationError listing every problem."""
    if not isinstance(data, list):
        raise SplitValidationError(
            [Problem(file, None, None, f"top level must be a JSON list, got {_kind(data)}")]
        )
    parsed = ParsedSplit(path=file, split=split)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(data):
        entry, entry_problems = _parse_entry(raw, file, split, index)
        problems.extend(entry_problems)
        if entry is None:
            continue
        fingerprint = json.dumps(raw, sort_keys=True)
        if fingerprint in seen:
            parsed.duplicates.append(index)
        seen.setdefault(fingerprint, index)
        parsed.entries.append(entry)
    if problems:
        raise SplitValidationError(problems)
    return parsed


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return {dict: "an object", list: "a list", str: "a string", int: "a number",
            float: "a number"}.get(type(value), type(value).__name__)


def _number(value: Any) -> float | str:
    """The value as float, or a message saying what is wrong with it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"expected a number, got {_kind(value)}"
    try:
        number = float(value)
    except OverflowError:
        return "number too large"
    if not math.isfinite(number):
        return f"NaN or infinite number ({value!r})"
    return number + 0.0  # -0.0 -> 0.0: one window id per window


def _pair(value: Any) -> tuple[float, float] | str:
    """A [start, end] pair of finite numbers with end > start, or a message."""
    if not isinstance(value, list) or len(value) != 2:
        return f"expected [start, end], got {json.dumps(value)[:60]}"
    a, b = _number(value[0]), _number(value[1])
    for x in (a, b):
        if isinstance(x, str):
            return x
    assert isinstance(a, float) and isinstance(b, float)
    if a < 0:
        return f"start {a:g} is negative"
    if b > MAX_TIME:
        return f"end {b:g} is past {MAX_TIME:g} s (7 days), the limit of a source video"
    if b <= a:
        return f"end {b:g} <= start {a:g}"
    return a, b


def _parse_entry(
    raw: Any, file: str, split: str, index: int
) -> tuple[SplitEntry | None, list[Problem]]:
    """Validate one entry; return it (or None) and its problems."""
    if not isinstance(raw, dict):
        return None, [Problem(file, index, None, f"entry must be an object, got {_kind(raw)}")]
    yid = raw.get("youtube_id")
    shown_id = yid if isinstance(yid, str) else None

    def problem(fld: str, msg: str) -> Problem:
        return Problem(file, index, fld, msg, shown_id)

    required = ("youtube_id", "timeRange", "segments")
    problems = [problem(f, "missing") for f in required if f not in raw]
    if problems:
        return None, problems
    if not isinstance(yid, str):
        problems.append(problem("youtube_id", f"expected a string, got {_kind(yid)}"))
    elif not is_safe_id(yid):
        problems.append(problem("youtube_id", "unsafe id: expected 11 characters of [A-Za-z0-9_-]"))
    window = _pair(raw["timeRange"])
    if isinstance(window, str):
        problems.append(problem("timeRange", window))
    clips = _clips(raw["segments"], "segments", problem, problems)
    if problems or window is None or isinstance(window, str) or clips is None:
        return None, problems
    start, end = window
    if end - start > MAX_WINDOW:
        problems.append(problem(
            "timeRange", f"window of {end - start:g} s is longer than {MAX_WINDOW:g} s (24 h)"
        ))
    for k, (a, b) in enumerate(clips):
        if a < start - TOLERANCE or b > end + TOLERANCE:
            problems.append(problem(
                f"segments[{k}]",
                f"clip [{a:g}, {b:g}] outside its window [{start:g}, {end:g}]",
            ))
    offsets = _check_derived(raw, start, end, clips, problem, problems)
    coverage = None
    if "coverage" in raw:
        cov = _number(raw["coverage"])
        if isinstance(cov, str):
            problems.append(problem("coverage", cov))
        elif cov < 0:
            problems.append(problem("coverage", f"negative coverage {cov:g}"))
        elif cov > MAX_COVERAGE:
            problems.append(problem("coverage", f"coverage {cov:g} is above 1 (a share)"))
        else:
            coverage = cov
    if problems:
        return None, problems
    clamped = tuple((max(0.0, a), min(end - start, b)) for a, b in offsets)
    return SplitEntry(split, index, yid, start, end, clamped, coverage), []


def _clips(value: Any, name: str, problem, problems: list[Problem]):  # noqa: ANN001
    if not isinstance(value, list):
        problems.append(problem(name, f"expected a list of [start, end], got {_kind(value)}"))
        return None
    if not value:
        problems.append(problem(name, "empty clip list"))
        return None
    clips = []
    for k, item in enumerate(value):
        pair = _pair(item)
        if isinstance(pair, str):
            problems.append(problem(f"{name}[{k}]", pair))
        else:
            clips.append(pair)
    return clips if len(clips) == len(value) else None


def _check_derived(raw, start, end, clips, problem, problems):  # noqa: ANN001, ANN202
    """Check timeRangeOffset / segmentsOffset against timeRange / segments; return window clips."""
    expected = [(a - start, b - start) for a, b in clips]
    if "timeRangeOffset" in raw:
        tro = raw["timeRangeOffset"]
        ok = (isinstance(tro, list) and len(tro) == 2
              and all(not isinstance(x, str) and isinstance(_number(x), float) for x in tro)
              and abs(tro[0]) <= TOLERANCE and abs(tro[1] - (end - start)) <= TOLERANCE)
        if not ok:
            problems.append(problem(
                "timeRangeOffset", f"expected [0, {end - start:g}], got {json.dumps(tro)[:60]}"
            ))
    if "segmentsOffset" not in raw:
        return expected
    offsets = _clips(raw["segmentsOffset"], "segmentsOffset", problem, problems)
    if offsets is None:
        return expected
    if len(offsets) != len(clips):
        problems.append(problem(
            "segmentsOffset", f"{len(offsets)} clips but segments has {len(clips)}"
        ))
        return expected
    for k, (got, want) in enumerate(zip(offsets, expected, strict=True)):
        if abs(got[0] - want[0]) > TOLERANCE or abs(got[1] - want[1]) > TOLERANCE:
            problems.append(problem(
                f"segmentsOffset[{k}]",
                f"[{got[0]:g}, {got[1]:g}] is not segments minus window start "
                f"[{want[0]:g}, {want[1]:g}]",
            ))
    return offsets
