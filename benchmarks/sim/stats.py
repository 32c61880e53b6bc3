"""Per-run metrics and 95 % t-intervals over seeds (numpy only, no scipy)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

# two-sided 95 % quantiles t_{0.975, df}, df = 1..30
_T975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t975(df: int) -> float:
    """The 0.975 quantile of Student's t with ``df`` degrees of freedom (df >= 1)."""
    if df < 1:
        raise ValueError(f"need df >= 1, got {df}")
    if df <= len(_T975):
        return _T975[df - 1]
    z = 1.959964  # Cornish-Fisher expansion beyond the table, error < 1e-3
    return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def interval(values: Sequence[float]) -> dict[str, float]:
    """Mean and 95 % t-interval half-width of ``values`` (half-width 0 for one value)."""
    x = np.asarray(values, dtype=np.float64)
    mean = float(x.mean())
    half = float(t975(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return {"mean": mean, "half": half, "lo": mean - half, "hi": mean + half, "n": int(x.size)}


def curve_band(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-step mean and 95 % t half-width of ``curves``, shape ``(seeds, steps)``."""
    n = curves.shape[0]
    mean = curves.mean(axis=0)
    if n < 2:
        return mean, np.zeros_like(mean)
    return mean, t975(n - 1) * curves.std(axis=0, ddof=1) / math.sqrt(n)


def run_metrics(curve: Sequence[float], target: float) -> dict[str, Any]:
    """Metrics of one run's mean-success curve (one value per step, after the step).

    ``steps_to_target``: the first step count after which the mean success is >= ``target``
    (None if never). ``auc``: the curve's mean over the run, i.e. the area under it divided by
    the number of steps (in [0, 1]). ``final``: the last value.
    """
    c = np.asarray(curve, dtype=np.float64)
    hits = np.nonzero(c >= target)[0]
    return {
        "steps_to_target": int(hits[0]) + 1 if hits.size else None,
        "auc": float(c.mean()),
        "final": float(c[-1]),
    }
