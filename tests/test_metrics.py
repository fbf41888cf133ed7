"""Metrics against hand-computed values; the evaluator over files; baselines; no torch needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from repurpose.evaluation.baselines import baseline_metrics, even_predictions, random_predictions
from repurpose.evaluation.evaluator import (
    PredictionsError,
    evaluate,
    evaluate_files,
    join,
    load_ground_truth,
    load_predictions,
)
from repurpose.evaluation.metrics import (
    WindowResult,
    average_precision,
    evaluate_windows,
    interpolated_ap,
    length_buckets,
    window_precision,
    window_recall,
)

REPO = Path(__file__).resolve().parents[1]


def W(pred, gt, duration=120.0, key="w"):  # noqa: ANN001, ANN201, N802
    return WindowResult(key, duration, np.asarray(pred, float).reshape(-1, 3), gt)


def test_reference_precision_edge_cases() -> None:
    gt = np.array([[0.0, 10.0], [20.0, 30.0]])
    assert window_precision(np.zeros((0, 3)), gt, 0.5) == 0.0  # no prediction -> 0
    # one prediction overlapping two clips: only its best IoU counts (5/25 with either), the
    # overlaps are not added up (that would be 10/30)
    assert window_precision(np.array([[5.0, 25.0, 1.0]]), gt, 0.2) == 1.0
    assert window_precision(np.array([[5.0, 25.0, 1.0]]), gt, 0.3) == 0.0
    # two predictions hitting the same clip both count (precision, no one-to-one matching)
    preds = np.array([[0.0, 10.0, 0.9], [1.0, 10.0, 0.8], [50.0, 60.0, 0.7]])
    assert window_precision(preds, gt, 0.5) == pytest.approx(2 / 3)
    assert window_precision(preds, gt, 0.95) == pytest.approx(1 / 3)  # IoU 0.9 fails 0.95
    # recall: clips matched by some prediction
    assert window_recall(preds, gt, 0.5) == 0.5
    assert window_recall(np.zeros((0, 3)), gt, 0.5) == 0.0


def test_mean_over_windows_then_thresholds() -> None:
    windows = [
        W([[0, 10, 0.9]], [[0, 10]], key="a"),  # perfect
        W([[0, 10, 0.9]], [[0, 16]], key="b"),  # IoU 0.625: hits 0.5 and 0.6 only
        W([], [[0, 10]], key="c"),  # empty window scores 0
    ]
    out = evaluate_windows(windows)
    assert out["precision"]["0.5"] == pytest.approx(2 / 3)
    assert out["precision"]["0.7"] == pytest.approx(1 / 3)
    assert out["precision"]["avg"] == pytest.approx((2 / 3 * 2 + 1 / 3 * 3) / 5)
    assert out["recall"]["0.6"] == pytest.approx(2 / 3)
    p, r = out["precision"]["0.5"], out["recall"]["0.5"]
    assert out["f1"]["0.5"] == pytest.approx(2 * p * r / (p + r))
    assert set(out) == {"precision", "recall", "f1", "map"}
    assert list(out["map"]) == ["0.5", "0.6", "0.7", "0.8", "0.9", "avg"]


def test_average_precision_by_hand() -> None:
    # window a: clips [0,10], [20,30]; window b: clip [0,10] (3 clips in all)
    windows = [
        W([[0, 10, 0.9], [1, 10, 0.8], [20, 30, 0.5]], [[0, 10], [20, 30]], key="a"),
        W([[0, 10, 0.7]], [[0, 10]], key="b"),
    ]
    # ranked: 0.9 TP, 0.8 FP (its clip already taken: one-to-one), 0.7 TP, 0.5 TP
    # precision 1, 1/2, 2/3, 3/4 at recall 1/3, 1/3, 2/3, 1
    # envelope: 1, 3/4, 3/4, 3/4 -> AP = 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 5/6
    assert average_precision(windows, 0.5) == pytest.approx(5 / 6)
    # the duplicate ranked last instead: precision 1, 1, 1, 3/4 at recall 1/3, 2/3, 1, 1 -> 1
    windows[0] = W([[0, 10, 0.9], [1, 10, 0.1], [20, 30, 0.5]], [[0, 10], [20, 30]], key="a")
    assert average_precision(windows, 0.5) == pytest.approx(1.0)
    # at 0.95 the duplicate (IoU 0.9) cannot match anything either way
    assert average_precision(windows, 0.95) == pytest.approx(1.0)
    assert average_precision([W([], [[0, 10]])], 0.5) == 0.0
    assert interpolated_ap(np.array([1.0]), np.array([1.0])) == 1.0


def test_map_takes_the_best_unmatched_clip() -> None:
    # one prediction overlapping two clips: matched to the one with the highest IoU
    gt = [[0, 10], [8, 20]]
    windows = [W([[7, 20, 0.9], [0, 9, 0.8]], gt)]
    # [7,20] vs [8,20]: 12/13; vs [0,10]: 3/20 -> takes [8,20]; [0,9] then takes [0,10] (0.9)
    assert average_precision(windows, 0.5) == pytest.approx(1.0)


def test_length_buckets() -> None:
    assert [b[0] for b in length_buckets([60, 300])] == ["0-60s", "60-300s", ">=300s"]


def _split(path: Path, entries: list[tuple[str, float, float, list]]) -> Path:
    path.write_text(json.dumps([
        {"youtube_id": y, "timeRange": [s, e], "segments": [[a + s, b + s] for a, b in clips],
         "timeRangeOffset": [0, e - s], "segmentsOffset": clips}
        for y, s, e, clips in entries]))
    return path


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def gt_file(tmp_path: Path) -> Path:
    entries = [("aaaaaaaaaaa", 0, 120, [[10, 30], [60, 90]]),
               ("bbbbbbbbbbb", 1800, 3600, [[100, 150]]),
               ("ccccccccccc", 0, 45, [[5, 25]])]
    path = _split(tmp_path / "test.json", entries)
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data + [data[0]]))  # an exact duplicate entry: reported, ignored
    return path


def test_evaluator_files_missing_unknown_duplicate(tmp_path: Path, gt_file: Path) -> None:
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"youtube_id": "aaaaaaaaaaa", "window": [0, 120], "segments": [[10, 30, 0.9]]},
        {"youtube_id": "bbbbbbbbbbb", "window": [1800.0, 3600.0], "segments": [[100, 150, 0.8]]},
    ])  # window ccc missing: counts as empty
    result = evaluate_files(gt_file, pred)
    assert result["precision"]["0.5"] == pytest.approx(2 / 3)
    assert result["recall"]["0.5"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert result["map"]["0.9"] == pytest.approx(2 / 4)  # 2 TP first, 4 clips
    assert result["counts"] == {"windows": 3, "windows_with_predictions": 2, "predictions": 2,
                                "clips": 4}
    assert result["buckets"]["0-60s"]["windows"] == 1
    assert result["buckets"]["0-60s"]["precision"]["avg"] == 0.0
    assert result["buckets"][">=1800s"]["precision"]["avg"] == 1.0
    assert load_ground_truth(gt_file).duplicates == 1

    bad = _jsonl(tmp_path / "u.jsonl", [
        {"youtube_id": "zzzzzzzzzzz", "window": [0, 60], "segments": []},
        {"youtube_id": "aaaaaaaaaaa", "window": [0, 121], "segments": []},
    ])
    with pytest.raises(PredictionsError, match=r"2 window\(s\) not in .*aaaaaaaaaaa@0-121.*"
                                                r"zzzzzzzzzzz@0-60"):
        evaluate_files(gt_file, bad)
    twice = _jsonl(tmp_path / "d.jsonl", [
        {"youtube_id": "aaaaaaaaaaa", "window": [0, 120], "segments": []}] * 2)
    with pytest.raises(PredictionsError, match=r"d.jsonl:2: window aaaaaaaaaaa@0-120 appears"):
        load_predictions(twice)
    malformed = tmp_path / "m.jsonl"
    malformed.write_text('{"youtube_id": "aaaaaaaaaaa", "window": [0, 120], '
                         '"segments": [[30, 10, 1]]}\n')
    with pytest.raises(PredictionsError, match=r"m.jsonl:1: segments\[0\]"):
        load_predictions(malformed)


def test_baselines_are_seeded_and_capped(gt_file: Path) -> None:
    gt = load_ground_truth(gt_file)
    windows = join(gt, {})
    lengths = gt.clip_lengths()
    rng = np.random.default_rng(0)
    rand = random_predictions(windows, lengths, 0.3, 1, rng)
    # cap: 120 s -> 1, 1800 s -> 9, 45 s -> 1 (min_segments)
    assert [len(w.pred) for w in rand] == [1, 9, 1]
    for w in rand:
        assert (w.pred[:, 0] >= 0).all() and (w.pred[:, 1] <= w.duration).all()
        assert set(np.round(w.pred[:, 1] - w.pred[:, 0], 6)) <= set(np.round(lengths, 6))
    even = even_predictions(windows, 30.0, 0.3, 1)
    assert even[0].pred.tolist() == [[45.0, 75.0, 0.5]]
    a = baseline_metrics(windows, lengths, per_minute=0.3, min_segments=1, seed=3, draws=2,
                         thresholds=(0.5,), bucket_edges=(60,))
    b = baseline_metrics(windows, lengths, per_minute=0.3, min_segments=1, seed=3, draws=2,
                         thresholds=(0.5,), bucket_edges=(60,))
    assert a == b and set(a) == {"random", "even", "settings"}
    assert evaluate(windows)["precision"]["avg"] == 0.0


def test_standalone_evaluator_needs_no_torch(tmp_path: Path, gt_file: Path) -> None:
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"youtube_id": "aaaaaaaaaaa", "window": [0, 120], "segments": [[10, 30, 0.9]]}])
    out = tmp_path / "m.json"
    code = ("import sys; from repurpose.evaluation.__main__ import main; "
            f"rc = main(['--gt', {str(gt_file)!r}, '--pred', {str(pred)!r}, '--out', "
            f"{str(out)!r}]); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
    result = json.loads(out.read_text())
    assert set(result) >= {"precision", "recall", "f1", "map"}
    for metric in ("precision", "recall", "f1", "map"):
        assert list(result[metric]) == ["0.5", "0.6", "0.7", "0.8", "0.9", "avg"]


def test_evaluate_stage_writes_metrics_and_baselines(tmp_path: Path, gt_file: Path) -> None:
    from tests.synthetic_training import write_params

    params = write_params(tmp_path / "params.yaml")
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"youtube_id": "aaaaaaaaaaa", "window": [0, 120], "segments": [[10, 30, 0.9]]}])
    code = ("import sys; from repurpose.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    args = ["evaluate", "--params", str(params), "--no-prefect", "--gt", str(gt_file),
            "--pred", str(pred), "--out", str(tmp_path / "m.json"),
            "--baselines-out", str(tmp_path / "b.json"), "--buckets-out", str(tmp_path / "k.json")]
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=REPO, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stderr
    assert "model    precision" in run.stdout and "random" in run.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    base = json.loads((tmp_path / "b.json").read_text())
    assert metrics["precision"]["0.5"] == pytest.approx(1 / 3)
    assert base["settings"]["draws"] == 5 and "map" in base["even"]
    assert "buckets" not in metrics and "buckets" not in base["random"]
    assert json.loads((tmp_path / "k.json").read_text())["60-300s"]["windows"] == 1
    bad = _jsonl(tmp_path / "u.jsonl", [
        {"youtube_id": "zzzzzzzzzzz", "window": [0, 60], "segments": []}])
    run = subprocess.run([sys.executable, "-c", code, *args[:-8], "--pred", str(bad)],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and "zzzzzzzzzzz@0-60" in run.stderr
