"""Windows joined with feature shards as torch tensors; padding collate; deterministic batches.

Each item is a plain dict: `window_id`, `duration`, `visual`/`audio`/`text` [T, D_m] in the
shards' dtype (float16 or float32), `labels` int64 [T], `targets` float32 [T, 2], with T the
planned rows (see `index`), and `clips` float32 [G, 2] (the window's clips in window seconds;
`collate` pads them and adds `clip_mask` [B, G]). `collate` keeps the shards' dtype (float16
halves what a batch costs to pad, to pass from a worker and to copy to a GPU);
`repurpose.inference.to_device` makes the vectors float32 on the device. Inside a worker it
builds the batch in shared memory, as torch's default_collate does, so the batch reaches the
training process without another copy. Vectors are read per video from the shards through
pyarrow (one row group per video), with a small per-process LRU cache of whole videos, so a
window costs one row-group read per modality; memory is bounded by `cache_videos`, not by
the dataset (benchmarks/loader.py measures both). A process that reads windows switches
pyarrow to the system allocator unless `ARROW_DEFAULT_MEMORY_POOL` names one: with mimalloc,
pyarrow's default here, the kernel time of each whole-video read doubled.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset, get_worker_info

from repurpose.features.shards import FeatureStore, VideoFeatures, window_slice
from repurpose.model.config import MODALITIES
from repurpose.training.index import WindowPlan


def use_system_allocator() -> None:
    """pyarrow's system memory pool for this process, unless ARROW_DEFAULT_MEMORY_POOL is set,
    and glibc told to keep freed blocks (see `keep_freed_memory`)."""
    if not os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        pa.set_memory_pool(pa.system_memory_pool())
    keep_freed_memory()


def keep_freed_memory() -> bool:
    """Let glibc reuse the process's freed blocks instead of unmapping them: every window's
    decoded vectors are ~10-30 MB, above glibc's default mmap threshold, so each one would be
    fresh pages faulted in and zeroed by the kernel. Raises the mmap threshold to its 64-bit
    maximum (32 MiB) and the trim threshold; False where the C library is not glibc."""
    import ctypes

    try:  # the symbols already loaded in this process (no library search, no subprocess)
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3  # glibc's malloc.h
    return bool(mallopt(m_mmap_threshold, 32 * 2**20) and mallopt(m_trim_threshold, 2**30)
                and mallopt(m_top_pad, 2**26))


class WindowDataset(Dataset):
    """The planned windows of one split, features read lazily from the shards."""

    def __init__(self, plans: list[WindowPlan], features_dir: str | os.PathLike[str],
                 cache_videos: int = 64):
        self.plans = plans
        self.features_dir = Path(features_dir)
        self.cache_videos = max(1, cache_videos)
        self._stores: dict[str, FeatureStore] | None = None
        self._cache: OrderedDict[tuple[str, str], VideoFeatures] = OrderedDict()

    def __len__(self) -> int:
        return len(self.plans)

    def __getstate__(self) -> dict:  # workers get no open stores nor cache
        state = self.__dict__.copy()
        state["_stores"], state["_cache"] = None, OrderedDict()
        return state

    def _video(self, modality: str, youtube_id: str) -> VideoFeatures:
        key = (modality, youtube_id)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._stores is None:  # first read in this process (or DataLoader worker)
            use_system_allocator()
            self._stores = {m: FeatureStore(self.features_dir / m) for m in MODALITIES}
        video = self._stores[modality].read(youtube_id)
        self._cache[key] = video
        while len(self._cache) > self.cache_videos * len(MODALITIES):
            self._cache.popitem(last=False)
        return video

    def __getitem__(self, i: int) -> dict:
        plan = self.plans[i]
        w, n = plan.window, plan.rows
        item = {"window_id": w.window_id, "duration": float(w.duration), "index": i}
        for m in MODALITIES:
            rows = window_slice(self._video(m, w.youtube_id), w.start, w.end)[:n]
            item[m] = _shared_view(rows)  # [n, D_m], the stored dtype, no copy
        item["labels"] = torch.from_numpy(w.labels[:n].astype(np.int64))
        item["targets"] = torch.from_numpy(np.array(w.targets[:n], dtype=np.float32))
        item["clips"] = torch.from_numpy(np.asarray(w.clips, dtype=np.float32).reshape(-1, 2))
        return item


def _shared_view(rows: np.ndarray) -> torch.Tensor:
    """A tensor on the cached video's memory (read-only there: items are for collate, which
    copies them once into the batch; a copy here cost ~10 % of the loader's CPU)."""
    if rows.flags.writeable:
        return torch.from_numpy(rows)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(rows)


def _empty(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor; in a DataLoader worker, in shared memory (no copy on return)."""
    if get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    elem = torch.empty(0, dtype=dtype)
    storage = elem._typed_storage()._new_shared(math.prod(shape), device="cpu")
    return elem.new(storage).resize_(*shape)


def _pad(tensors: list[torch.Tensor], longest: int, dtype: torch.dtype) -> torch.Tensor:
    """[B, longest, ...] of `dtype`: each tensor copied (and converted) once, zeros after it."""
    out = _empty((len(tensors), longest, *tensors[0].shape[1:]), dtype)
    for b, t in enumerate(tensors):
        out[b, : len(t)].copy_(t)
        out[b, len(t):].zero_()
    return out


def collate(items: list[dict]) -> dict:
    """Pad to the longest window of the batch; `mask` [B, T] is True on real seconds."""
    longest = max(len(it["labels"]) for it in items)
    batch: dict = {
        "window_id": [it["window_id"] for it in items],
        "duration": [it["duration"] for it in items],
        "index": [it["index"] for it in items],
        "lengths": torch.tensor([len(it["labels"]) for it in items]),
    }
    batch["mask"] = torch.arange(longest)[None, :] < batch["lengths"][:, None]
    for key in MODALITIES:
        batch[key] = _pad([it[key] for it in items], longest, items[0][key].dtype)
    for key in ("labels", "targets", "clips"):
        first = items[0][key]
        out = first.new_zeros((len(items), longest, *first.shape[1:]))
        for b, it in enumerate(items):
            out[b, : len(it[key])] = it[key]
        batch[key] = out
    n_clips = torch.tensor([len(it["clips"]) for it in items])
    batch["clip_mask"] = torch.arange(batch["clips"].shape[1])[None, :] < n_clips[:, None]
    return batch


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, shuffle: bool = True,
                  world: int = 1, rank: int = 0) -> list[list[int]]:
    """This rank's batches of one epoch: a seeded permutation cut into global batches of
    `batch_size`, each split round-robin over the `world` ranks (every rank gets the same
    number of batches; a last batch smaller than `world` is topped up from the start)."""
    if n == 0:
        return []
    if shuffle:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g).tolist()
    else:
        order = list(range(n))
    out = []
    for lo in range(0, n, batch_size):
        chunk = order[lo: lo + batch_size]
        while len(chunk) < world:
            chunk.append(order[(lo + len(chunk)) % n])
        out.append(chunk[rank::world])
    return out
