"""Atomic file output: write to a temporary name in the same folder, then rename."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


UMASK = _umask()



@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.chmod(0o666 & ~UMASK)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write bytes."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Atomically write UTF-8 text."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    """Atomically write JSON (keys in insertion order, newline-terminated)."""
    write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def write_parquet(path: str | os.PathLike[str], table: pa.Table, **kwargs: Any) -> None:
    """Atomically write a pyarrow table as Parquet."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **kwargs)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces `path` whole, else it is removed.
    Staging folders of `path` that a killed writer left behind are removed first."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(final.parent, names=[final.name])
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    tmp.chmod(0o777 & ~UMASK)
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a hidden staging folder inside `folder`; on success each file in it replaces its
    namesake in `folder` (every other file there is left alone), else it is removed."""
    final = Path(folder)
    final.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".staging.", suffix=".tmp", dir=final))
    tmp.chmod(0o777 & ~UMASK)
    try:
        yield tmp
        for item in sorted(tmp.iterdir()):
            os.replace(item, final / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# `.<name>.<8 random characters>.tmp`: what atomic_path, atomic_dir and atomic_files create
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$")


def remove_stale_tmp(folder: str | os.PathLike[str], names: Iterable[str] | None = None) -> int:
    """Delete the hidden temporary files and folders a killed writer left in `folder` (only
    those for `names` when given); call it while holding the folder's lock. Returns the count."""
    path = Path(folder)
    wanted = None if names is None else set(names)
    removed = 0
    try:
        children = list(path.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for child in children:
        match = _TMP_NAME.match(child.name)
        if not match or (wanted is not None and match["name"] not in wanted):
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
        removed += 1
    return removed


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike[str], what: str = "run") -> Iterator[None]:
    """Hold an exclusive lock on `folder/.lock` (one writer per output folder); a second holder
    gets a UserError at once instead of waiting."""
    from repurpose.errors import UserError

    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "a+") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise UserError(f"{path}: another {what} is using this folder") from exc
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
