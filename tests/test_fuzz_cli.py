"""Property-based fuzzing (Hypothesis) of the commands that read user files: `validate`,
`prepare`, `evaluate`, `features import-npy`. Whatever the bytes, the command returns 0 or 2
and never raises; when it refuses (2) it prints `error: ...` naming the file, no traceback,
and writes nothing. Inputs that are bad by construction must give 2. In-process calls of
`repurpose.cli.main`, bounded examples: the whole module runs in well under a minute."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repurpose.cli import main as cli_main
from repurpose.features.shards import FeatureStore

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

GOOD = {
    "youtube_id": "abcdefghijk",
    "timeRange": [0, 100.0],
    "segments": [[10.5, 30.25], [50, 70]],
    "timeRangeOffset": [0, 100.0],
    "segmentsOffset": [[10.5, 30.25], [50, 70]],
    "coverage": 0.4,
}
GOOD_PRED = {"youtube_id": "abcdefghijk", "window": [0, 100.0],
             "segments": [[10.0, 30.0, 0.9]]}

NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e308, -1e308, 1e10, 86400.0, 86401.0, 604800.0, 5e-324]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=20))
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12,
)


def _mutated(good: dict) -> st.SearchStrategy[dict]:
    """`good` with one field replaced by anything, removed, or its numbers replaced."""
    keys = sorted(good)

    def replace(key: str, value: object) -> dict:
        return {**good, key: value}

    def drop(key: str) -> dict:
        return {k: v for k, v in good.items() if k != key}

    return st.one_of(
        st.builds(replace, st.sampled_from(keys), JSON),
        st.builds(drop, st.sampled_from(keys)),
        st.builds(replace, st.sampled_from(keys), st.lists(NUMBERS, max_size=3)),
        st.builds(replace, st.sampled_from(keys),
                  st.lists(st.lists(NUMBERS, min_size=2, max_size=3), max_size=3)),
    )


def _dumps(value: object) -> str:
    return json.dumps(value, allow_nan=True)


SPLIT_TEXT = st.one_of(
    st.builds(_dumps, st.lists(_mutated(GOOD), min_size=1, max_size=3)),
    st.builds(_dumps, JSON),
    st.text(max_size=200),
    st.sampled_from(["[" * 100_000, '[{"a": ' * 5000, "[1e999999]", "[" + "9" * 5000 + "]"]),
)
BAD_SPLIT_TEXT = st.one_of(  # invalid whatever the draw
    st.builds(_dumps, st.one_of(SCALARS, st.dictionaries(st.text(max_size=5), JSON,
                                                          max_size=3))),
    st.builds(lambda e: _dumps([{**e, "youtube_id": "../etc/passwd"}]), _mutated(GOOD)),
    st.builds(lambda n: _dumps([{**GOOD, "timeRange": [0, n]}]),
              st.one_of(st.floats(min_value=604800.5, allow_nan=False, allow_infinity=False),
                        st.integers(min_value=10**6))),
)


def _call(argv: list[str]) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, stderr). An exception escaping is a test failure."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli_main(argv)
    return code, err.getvalue()


def _refused(code: int, err: str, path: Path) -> None:
    assert code == 2, err
    assert err.startswith("error: ") and str(path) in err and "Traceback" not in err, err


def _params(folder: Path) -> Path:
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump({
        "prepare": {"dataset": "fuzz", "splits": ["val"]},
        "orchestration": {"prefect": False, "task_runner": "serial"},
    }))
    return path


def _validate_and_prepare(text: str, must_fail: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        split = folder / "splits" / "val.json"
        split.parent.mkdir()
        split.write_text(text, encoding="utf-8", errors="surrogatepass")
        code, err = _call(["validate", str(split)])
        assert code in (0, 2), err
        if must_fail or code == 2:
            _refused(code, err, split)
        out = folder / "prepared"
        code2, err2 = _call(["prepare", "--splits-dir", str(split.parent), "--out", str(out),
                             "--params", str(_params(folder)), "--no-prefect"])
        assert code2 == code, err2  # prepare judges a file exactly as validate does
        if code2 == 2:
            _refused(code2, err2, split)
            assert not out.exists()
        else:
            assert (out / "windows.parquet").is_file()


@SETTINGS
@given(SPLIT_TEXT)
def test_validate_and_prepare_never_raise_and_refuse_cleanly(text: str) -> None:
    _validate_and_prepare(text, must_fail=False)


@SETTINGS
@given(BAD_SPLIT_TEXT)
def test_validate_and_prepare_refuse_bad_splits(text: str) -> None:
    _validate_and_prepare(text, must_fail=True)


PRED_LINE = st.one_of(
    st.builds(_dumps, _mutated(GOOD_PRED)),
    st.builds(_dumps, JSON),
    st.text(max_size=100).filter(lambda s: "\n" not in s and "\r" not in s),
    st.sampled_from(["[" * 100_000, '{"youtube_id": "x", "window": [0, 1' + "0" * 5000 + "]}"]),
)


@SETTINGS
@given(st.lists(PRED_LINE, min_size=1, max_size=3))
def test_evaluate_never_raises_and_refuses_cleanly(lines: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        gt = folder / "val.json"
        gt.write_text(json.dumps([GOOD]))
        pred = folder / "pred.jsonl"
        pred.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")
        out = folder / "metrics.json"
        code, err = _call(["evaluate", "--gt", str(gt), "--pred", str(pred), "--out", str(out),
                           "--params", str(_params(folder)), "--no-prefect"])
        assert code in (0, 2), err
        if code == 2:
            _refused(code, err, pred)
            assert not out.exists()
        else:
            assert json.loads(out.read_text())["counts"]["windows"] == 1


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


ARRAYS = hnp.arrays(
    dtype=st.one_of(hnp.floating_dtypes(), hnp.integer_dtypes(), hnp.boolean_dtypes(),
                    hnp.complex_number_dtypes()),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
)
NPY = st.one_of(
    st.builds(_npy_bytes, ARRAYS),
    st.builds(lambda a, cut: _npy_bytes(a)[:cut], ARRAYS, st.integers(0, 200)),
    st.builds(lambda a, pos, b: (lambda d: d[:pos] + bytes([b]) + d[pos + 1:])(_npy_bytes(a)),
              ARRAYS, st.integers(0, 127), st.integers(0, 255)),
    st.binary(max_size=300),
    st.just(_npy_bytes(np.array([{"a": 1}, None], dtype=object))),
)


@SETTINGS
@given(NPY)
def test_import_npy_never_raises_and_stores_only_finite_rows(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        src, out = folder / "src", folder / "out"
        src.mkdir()
        path = src / "abcdefghijk.npy"
        path.write_bytes(data)
        code, err = _call(["features", "import-npy", "--modality", "visual", "--src", str(src),
                           "--out", str(out)])
        assert code in (0, 2), err
        if code == 2:
            _refused(code, err, path)
            assert not out.exists()
        elif out.exists() and FeatureStore(out).videos:
            video = FeatureStore(out).read("abcdefghijk")
            assert np.isfinite(video.embedding.astype(np.float64)).all()


@SETTINGS
@given(st.builds(_npy_bytes, hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]), shape=st.tuples(
        st.integers(1, 6), st.integers(1, 6)),
    elements=st.floats(allow_nan=True, allow_infinity=True)).filter(
        lambda a: not np.isfinite(a.astype(np.float16)).all())))
def test_import_npy_refuses_every_array_with_a_non_finite_value(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "src", Path(tmp) / "out"
        src.mkdir()
        path = src / "abcdefghijk.npy"
        path.write_bytes(data)
        code, err = _call(["features", "import-npy", "--modality", "visual", "--src", str(src),
                           "--out", str(out)])
        _refused(code, err, path)
        assert not out.exists()


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12)
MODEL_JSON = st.one_of(
    st.binary(max_size=200),  # not JSON, not UTF-8
    st.builds(lambda v: json.dumps(v).encode(), JSON_VALUES),  # JSON of any shape
    st.builds(  # the right format with fields of any shape
        lambda fields: json.dumps({"format": "repurpose-model/2", **fields}).encode(),
        st.dictionaries(st.sampled_from(["model", "dims", "weights", "params", "features"]),
                        JSON_VALUES, max_size=5)),
    st.builds(  # a plausible model.json whose weights file holds garbage
        lambda arch, junk: json.dumps({
            "format": "repurpose-model/2", "weights": "model.safetensors", "params": {},
            "dims": {"visual": 4, "audio": 4, "text": 4}, "features": {},
            "model": {"arch": arch, "config": {}}}).encode() + b"\n" * (junk % 2),
        st.sampled_from(["mmct", "linear", "tal", "nope"]), st.integers(0, 1)),
)


@SETTINGS
@given(MODEL_JSON, st.binary(max_size=64))
def test_clip_refuses_any_bad_model_folder_cleanly(model_json: bytes, weights: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "model"
        model.mkdir()
        (model / "model.json").write_bytes(model_json)
        (model / "model.safetensors").write_bytes(weights)
        video = root / "talk.mp4"
        video.write_bytes(b"\0" * 16)  # never reached: the model folder is checked first
        out = root / "out"
        code, err = _call(["clip", str(video), "--model", str(model), "--out", str(out)])
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
        assert str(model) in lines[0]
        assert not any(p.is_file() for p in out.rglob("*")) if out.exists() else True
