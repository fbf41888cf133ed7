"""`repurpose features import-npy | export-npy`: interop with the reference's per-video arrays.

The reference layout is one folder per modality (`video_clip_features/`, `audio_pann_features/`,
`caption_features/`) of `<youtube_id>.npy`, each `T x D`, one row per second *from second 0*.

- `import-npy --modality M --src DIR --out data/features/M`: every `<id>.npy` becomes rows
  `t = 0 .. T-1` of video `id`, in shards with the same stable membership as extraction
  (`--n-shards`). The shard metadata says where the numbers came from: `--backend` (default
  `imported`) and `--weights` (default `unknown`: say what produced them if you know). Each
  video's key in the shard is the sha256 of its file, so re-importing rewrites only shards whose
  arrays changed.
- `export-npy --src data/features/M --out DIR`: writes `<id>.npy` (`T x D`, float32 unless
  `--dtype float16`) for every video of the folder. Rows the shards do not hold (before the
  first downloaded second, or gaps) are zeros; the command says how many.
"""

from __future__ import annotations

import argparse
import hashlib
import math
from pathlib import Path

import numpy as np

from repurpose.errors import UserError
from repurpose.features.assembly import assemble_shards
from repurpose.features.shards import DTYPES, FeatureMeta, FeatureStore, VideoFeatures, shard_paths
from repurpose.pervideo.results import OK, Entry, ShardReport
from repurpose.splits.schema import is_safe_id

HELP = "import/export per-second features as reference-layout <youtube_id>.npy folders"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sub-commands of `repurpose features`."""
    sub = parser.add_subparsers(dest="features_command", required=True, metavar="ACTION")
    imp = sub.add_parser("import-npy", help="folder of <youtube_id>.npy -> Parquet shards")
    imp.add_argument("--modality", required=True, choices=("visual", "audio", "text"))
    imp.add_argument("--src", required=True, type=Path, help="folder of <youtube_id>.npy")
    imp.add_argument("--out", required=True, type=Path, help="shard folder to write")
    imp.add_argument("--dtype", default="float16", choices=sorted(DTYPES))
    imp.add_argument("--n-shards", type=int, default=1, help="stable hash shards (default 1)")
    imp.add_argument("--backend", default="imported", help="backend name to record")
    imp.add_argument("--weights", default=None,
                     help="weights identity to record (default: unknown)")
    exp = sub.add_parser("export-npy", help="Parquet shards -> folder of <youtube_id>.npy")
    exp.add_argument("--src", required=True, type=Path, help="shard folder")
    exp.add_argument("--out", required=True, type=Path, help="folder for <youtube_id>.npy")
    exp.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    exp.add_argument("--ids", nargs="*", default=None, help="only these videos")


def main(args: argparse.Namespace) -> int:
    if args.features_command == "import-npy":
        n, report = import_npy(args.src, args.out, args.modality, dtype=args.dtype,
                               n_shards=args.n_shards, backend=args.backend,
                               weights=args.weights)
        print(f"import-npy: {n} videos from {args.src} -> {args.out} "
              f"({report.written} shards written, {report.unchanged} unchanged, "
              f"{report.removed} removed)")
        return 0
    n, filled = export_npy(args.src, args.out, dtype=args.dtype, ids=args.ids)
    print(f"export-npy: {n} videos from {args.src} -> {args.out}"
          + (f" ({filled} missing rows written as zeros)" if filled else ""))
    return 0


def import_npy(src: str | Path, out: str | Path, modality: str, dtype: str = "float16",
               n_shards: int = 1, backend: str = "imported", weights: str | None = None,
               ) -> tuple[int, ShardReport]:
    """Import a reference-layout folder; returns (videos, ShardReport)."""
    src, out = Path(src), Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: --out must be a folder, but it is a file")
    files = sorted(src.glob("*.npy"))
    if not files:
        raise UserError(f"{src}: no <youtube_id>.npy files")
    if n_shards <= 0:
        raise UserError(f"--n-shards must be positive, got {n_shards}")
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    dim = None
    for f in files:
        if not is_safe_id(f.stem):
            raise UserError(f"{f}: file name is not a youtube id (11 characters of "
                            "[A-Za-z0-9_-])")
        a = load_npy(f, dtype)
        if dim is None:
            dim = a.shape[1]
        elif a.shape[1] != dim:
            raise UserError(f"{f}: dimension {a.shape[1]} differs from {dim} of the others")
        arrays[f.stem] = a
        digests[f.stem] = hashlib.sha256(f.read_bytes()).hexdigest()[:32]
    weights = weights or "unknown"
    meta = FeatureMeta(modality=modality, backend=backend, weights=weights, dim=int(dim),
                       dtype=dtype, fps=1.0, params={"source": "npy"})
    entries = {yid: Entry(yid, digests[yid], OK, n_rows=len(a), first_t=0, dim=int(dim))
               for yid, a in arrays.items() if len(a)}
    report, _ = assemble_shards(out, meta, entries, lambda yid, _key: arrays[yid], n_shards)
    return len(entries), report


def load_npy(path: Path, dtype: str) -> np.ndarray:
    """A `T x D` real-number array from a .npy file, as `dtype`, every value finite; anything
    else (not .npy, truncated, pickled objects, a dangling link, NaN/inf) is a UserError."""
    try:
        with open(path, "rb") as fh:
            shape, kind = _npy_header(fh, path)
            if len(shape) != 2 or shape[1] == 0:
                raise UserError(f"{path}: expected a T x D array (D > 0), got shape {shape}")
            fh.seek(0)
            array = np.load(fh, allow_pickle=False)
    except FileNotFoundError as exc:
        raise UserError(f"{path}: cannot open (a dangling symlink?)") from exc
    except OSError as exc:
        raise UserError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except (ValueError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy array: {exc}") from exc
    with np.errstate(over="ignore", invalid="ignore"):  # overflow shows up as inf, below
        converted = array.astype(dtype)
    bad = ~np.isfinite(converted)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        why = "NaN or infinite" if not np.isfinite(array[row]).all() else f"beyond {dtype} range"
        raise UserError(f"{path}: row {row} (second {row}) has {why} values; "
                        f"{int(bad.any(axis=1).sum())} such rows in all")
    return converted


def _npy_header(fh, path: Path) -> tuple[tuple[int, ...], str]:  # noqa: ANN001
    """(shape, dtype kind) from a .npy header, after checking the file holds all the data."""
    try:
        version = np.lib.format.read_magic(fh)
        read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                else np.lib.format.read_array_header_2_0)
        shape, _fortran, dtype = read(fh)
    except Exception as exc:  # noqa: BLE001 - any failure to parse untrusted bytes
        raise UserError(f"{path}: not a .npy file ({type(exc).__name__}: {exc})") from exc
    if dtype.hasobject or dtype.kind not in "biuf":
        raise UserError(f"{path}: expected real numbers, got dtype {dtype} "
                        "(pickled objects are never loaded)")
    need = math.prod(int(x) for x in shape) * dtype.itemsize
    have = Path(path).stat().st_size - fh.tell()
    if have < need:
        raise UserError(f"{path}: truncated: header says {shape} of {dtype} "
                        f"({need:,} bytes), the file holds {have:,}")
    return tuple(int(x) for x in shape), dtype.kind


def export_npy(src: str | Path, out: str | Path, dtype: str = "float32",
               ids: list[str] | None = None) -> tuple[int, int]:
    """Write `<id>.npy` (rows from second 0) for the videos of a shard folder; returns
    (videos, rows filled with zeros)."""
    if not shard_paths(src):
        raise UserError(f"{src}: no feature shards (part-*.parquet)")
    store = FeatureStore(src)
    wanted = sorted(store.videos if ids is None else set(ids))
    missing = sorted(set(wanted) - store.videos)
    if missing:
        raise UserError(f"{src}: no features for {', '.join(missing[:10])}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    filled = 0
    from repurpose import io

    for yid, video in sorted(store.read_many(wanted).items()):
        array, zeros = to_dense(video, DTYPES[dtype])
        filled += zeros
        with io.atomic_path(out / f"{yid}.npy") as tmp, open(tmp, "wb") as fh:
            np.save(fh, array)
    return len(wanted), filled


def to_dense(video: VideoFeatures, dtype: type) -> tuple[np.ndarray, int]:
    """`T x D` from second 0 (T = last row + 1); rows not held are zeros. Returns (array,
    number of zero-filled rows)."""
    n = int(video.t[-1]) + 1 if len(video.t) else 0
    array = np.zeros((n, video.embedding.shape[1]), dtype=dtype)
    array[video.t] = video.embedding
    return array, n - len(video.t)
