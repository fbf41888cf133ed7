"""Issue 12 items 5 and 14: `features import-npy` refuses every bad array with exit 2 and one
line naming the file, writes nothing, and never stores a NaN or infinite row."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from repurpose.cli import main as cli_main
from repurpose.features.shards import FeatureStore

GOOD_ID, BAD_ID = "aaaaaaaaaaa", "bbbbbbbbbbb"


def _save(path: Path, array: np.ndarray) -> Path:
    with open(path, "wb") as fh:
        np.save(fh, array, allow_pickle=True)
    return path


def _nan_row(p: Path) -> None:
    a = np.ones((5, 4), np.float32)
    a[3, 1] = np.nan
    _save(p, a)


def _inf_row(p: Path) -> None:
    a = np.ones((5, 4), np.float32)
    a[2] = np.inf
    _save(p, a)


def _float16_overflow(p: Path) -> None:
    _save(p, np.full((3, 4), 1e6, np.float32))  # finite in float32, inf once stored as float16


def _truncated(p: Path) -> None:
    _save(p, np.ones((100, 8), np.float32))
    p.write_bytes(p.read_bytes()[:-200])


def _not_npy(p: Path) -> None:
    p.write_text("<html>not an array</html>")


def _empty_file(p: Path) -> None:
    p.write_bytes(b"")


def _dangling(p: Path) -> None:
    os.symlink(p.parent / "gone.npy", p)


def _pickled_objects(p: Path) -> None:
    _save(p, np.array([{"a": 1}, None], dtype=object))


def _raw_pickle(p: Path) -> None:
    p.write_bytes(pickle.dumps([[1.0, 2.0]]))


def _complex(p: Path) -> None:
    _save(p, np.ones((3, 4), np.complex64))


def _one_d(p: Path) -> None:
    _save(p, np.ones(7, np.float32))


def _folder(p: Path) -> None:
    p.mkdir()


def _huge_header(p: Path) -> None:
    with open(p, "wb") as fh:  # a header promising 36 TB, then 16 bytes
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 9)})
        fh.write(b"\0" * 16)


def _broken_header(p: Path) -> None:
    _save(p, np.ones((2, 2), np.float32))
    p.write_bytes(p.read_bytes().replace(b"(2, 2)", b"(10**1"))


CASES = {
    "nan_row": (_nan_row, "row 3"),
    "inf_row": (_inf_row, "row 2"),
    "float16_overflow": (_float16_overflow, "float16 range"),
    "truncated": (_truncated, "truncated"),
    "not_npy": (_not_npy, "not a .npy file"),
    "empty_file": (_empty_file, "not a .npy file"),
    "dangling_symlink": (_dangling, "dangling symlink"),
    "pickled_object_array": (_pickled_objects, "pickled objects are never loaded"),
    "raw_pickle": (_raw_pickle, "not a .npy file"),
    "complex": (_complex, "expected real numbers"),
    "one_dimensional": (_one_d, "T x D"),
    "a_folder": (_folder, "cannot read"),
    "lying_header": (_huge_header, "truncated"),
    "broken_header": (_broken_header, "not a .npy file"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_npy_is_refused_with_one_line_and_nothing_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str) -> None:
    make, words = CASES[case]
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    _save(src / f"{GOOD_ID}.npy", np.ones((6, 4), np.float32))
    bad = src / f"{BAD_ID}.npy"
    make(bad)
    code = cli_main(["features", "import-npy", "--modality", "visual", "--src", str(src),
                     "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(bad) in lines[0] and words in lines[0], lines[0]
    assert not out.exists()


def test_good_arrays_still_import_and_read_back(tmp_path: Path) -> None:
    src, out = tmp_path / "src", tmp_path / "out"
    src.mkdir()
    data = np.arange(24, dtype=np.float32).reshape(6, 4)
    _save(src / f"{GOOD_ID}.npy", data)
    assert cli_main(["features", "import-npy", "--modality", "visual", "--src", str(src),
                     "--out", str(out), "--dtype", "float32"]) == 0
    video = FeatureStore(out).read(GOOD_ID)
    assert np.array_equal(video.embedding, data) and list(video.t) == list(range(6))
