"""The headline numbers of a metrics file: the average over tIoU thresholds of each metric.

`metrics/headline.json` (`{"precision": .., "recall": .., "f1": .., "map": ..}`) is the file
DVC declares as metrics, so `dvc metrics show/diff` and `dvc exp show` print four readable
columns; the per-threshold detail stays in `metrics/test.json` (a plain output).
"""

from __future__ import annotations

from typing import Any

METRICS = ("precision", "recall", "f1", "map")


def headline(result: dict[str, Any]) -> dict[str, float]:
    """`{metric: its "avg"}` for the metrics of an evaluate result that has them."""
    out = {}
    for name in METRICS:
        value = result.get(name)
        if isinstance(value, dict) and isinstance(value.get("avg"), int | float):
            out[name] = round(float(value["avg"]), 6)
    return out
