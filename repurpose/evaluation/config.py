"""The `evaluate` params section."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from repurpose.evaluation.evaluator import DEFAULT_BUCKETS
from repurpose.evaluation.metrics import THRESHOLDS
from repurpose.params import ParamsError, config_from_section

SECTION = "evaluate"


@dataclass(frozen=True)
class EvaluateConfig:
    """Thresholds, length buckets and baseline settings."""

    thresholds: tuple[float, ...] = THRESHOLDS
    length_buckets: tuple[float, ...] = DEFAULT_BUCKETS
    baseline_seed: int = 0
    baseline_draws: int = 5

    def __post_init__(self) -> None:
        if not self.thresholds or not all(_number(t) and 0 < t <= 1 for t in self.thresholds):
            raise ParamsError(f"params {SECTION}.thresholds: expected numbers in (0, 1], "
                              f"got {list(self.thresholds)!r}")
        edges = list(self.length_buckets)
        if not all(_number(e) and e > 0 for e in edges) or sorted(edges) != edges:
            raise ParamsError(f"params {SECTION}.length_buckets: expected increasing positive "
                              f"seconds, got {edges!r}")
        if self.baseline_draws < 1:
            raise ParamsError(f"params {SECTION}.baseline_draws: must be >= 1")

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> EvaluateConfig:
        """Read and check the `evaluate` section (every key required)."""
        return config_from_section(cls, dict(section), SECTION)


def _number(value: Any) -> bool:
    """True for an int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
