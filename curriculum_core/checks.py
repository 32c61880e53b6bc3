"""Validation of strategy constants, with messages that name the parameter."""

from __future__ import annotations

import math

from curriculum_core.stats import check_window

__all__ = ["check_finite", "check_fraction", "check_rate", "check_window"]


def check_finite(name: str, value: float, *, low: float, strict: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is finite and ``>= low`` (``> low`` if strict)."""
    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        sign = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {sign} {low}, got {value}")


def check_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 <= value < 1``."""
    if not (math.isfinite(value) and 0 <= value < 1):
        raise ValueError(f"{name} must be in [0, 1), got {value}")


def check_rate(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``0 < value <= 1``."""
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{name} must be in (0, 1], got {value}")
