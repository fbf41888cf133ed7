"""The `evaluate` params section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repurpose.evaluation.evaluator import DEFAULT_BUCKETS
from repurpose.evaluation.metrics import THRESHOLDS
from repurpose.params import ParamsError, require

SECTION = "evaluate"


@dataclass(frozen=True)
class EvaluateConfig:
    """Thresholds, length buckets and baseline settings."""

    thresholds: tuple[float, ...] = THRESHOLDS
    length_buckets: tuple[float, ...] = DEFAULT_BUCKETS
    baseline_seed: int = 0
    baseline_draws: int = 5

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> EvaluateConfig:
        """Read and check the `evaluate` section (every key required)."""
        thresholds = require(section, "thresholds", list, SECTION)
        if not thresholds or not all(isinstance(t, int | float) and not isinstance(t, bool)
                                     and 0 < t <= 1 for t in thresholds):
            raise ParamsError(f"params {SECTION}.thresholds: expected numbers in (0, 1], "
                              f"got {thresholds!r}")
        edges = require(section, "length_buckets", list, SECTION)
        if not all(isinstance(e, int | float) and not isinstance(e, bool) and e > 0
                   for e in edges) or sorted(edges) != edges:
            raise ParamsError(f"params {SECTION}.length_buckets: expected increasing positive "
                              f"seconds, got {edges!r}")
        seed = require(section, "baseline_seed", int, SECTION)
        draws = require(section, "baseline_draws", int, SECTION)
        if draws < 1:
            raise ParamsError(f"params {SECTION}.baseline_draws: must be >= 1")
        return cls(tuple(float(t) for t in thresholds), tuple(float(e) for e in edges),
                   seed, draws)
