"""Strategy parameters: each one's type, default and range, declared once on the strategy's
dataclass field (:func:`param`), checked here when a strategy is built, and read by the
service to state them in its API schema (:func:`parameters_of`).
"""

from __future__ import annotations

import functools
import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Literal

_RANGE = "range"


@dataclass(frozen=True)
class Range:
    """The range of a numeric parameter, in JSON Schema's terms (``None``: no such bound)."""

    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None

    def admits(self, value: float) -> bool:
        """Whether ``value`` lies in the range."""
        return not (
            (self.minimum is not None and value < self.minimum)
            or (self.exclusive_minimum is not None and value <= self.exclusive_minimum)
            or (self.maximum is not None and value > self.maximum)
            or (self.exclusive_maximum is not None and value >= self.exclusive_maximum)
        )

    def describe(self) -> str:
        """The range in words: ``between 1 and 10000``, ``in [0, 1)``, ``> 0``."""
        low = ("[", self.minimum) if self.minimum is not None else ("(", self.exclusive_minimum)
        high = ("]", self.maximum) if self.maximum is not None else (")", self.exclusive_maximum)
        if low[1] is not None and high[1] is not None:
            if low[0] == "[" and high[0] == "]":
                return f"between {_num(low[1])} and {_num(high[1])}"
            return f"in {low[0]}{_num(low[1])}, {_num(high[1])}{high[0]}"
        if low[1] is not None:
            return f"{'>=' if low[0] == '[' else '>'} {_num(low[1])}"
        if high[1] is not None:
            return f"{'<=' if high[0] == ']' else '<'} {_num(high[1])}"
        return "any finite number"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def param(
    default: Any,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> Any:
    """A strategy dataclass field with its default and range (for numbers)."""
    return field(default=default, metadata={_RANGE: Range(ge, gt, le, lt)})


@dataclass(frozen=True)
class Parameter:
    """One parameter of a strategy: its name, ``kind`` (``int``, ``float`` or ``str``),
    default, range (numbers) and ``choices`` (strings)."""

    name: str
    kind: type
    default: Any
    range: Range
    choices: tuple[str, ...] = ()


@functools.cache
def parameters_of(cls: type) -> tuple[Parameter, ...]:
    """The parameters of strategy class ``cls`` (every dataclass field but ``name``)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        if f.name == "name":
            continue
        hint = hints[f.name]
        choices: tuple[str, ...] = ()
        if typing.get_origin(hint) is Literal:
            choices, kind = tuple(typing.get_args(hint)), str
        elif hint in (int, float):
            kind = hint
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: a parameter is int, float or a Literal")
        out.append(Parameter(f.name, kind, f.default, f.metadata.get(_RANGE, Range()), choices))
    return tuple(out)


def check_params(strategy: Any) -> None:
    """Check every parameter of a strategy dataclass against its declaration, and normalise
    numbers to their kind (``12.0`` to ``12`` for an int, ``1`` to ``1.0`` for a float).

    Raises ``ValueError`` naming the parameter for a value of the wrong type or out of range.
    """
    for p in parameters_of(type(strategy)):
        value = getattr(strategy, p.name)
        if p.choices:
            if value not in p.choices:
                raise ValueError(f"{p.name} must be one of {list(p.choices)}, got {value!r}")
            continue
        number = _number(value)
        if number is None or (p.kind is int and not number.is_integer()):
            what = "an integer" if p.kind is int else "a finite number"
            raise ValueError(f"{p.name} must be {what} {p.range.describe()}, got {value!r}")
        if not p.range.admits(number):
            what = "" if p.kind is int else "a finite number "
            raise ValueError(f"{p.name} must be {what}{p.range.describe()}, got {value!r}")
        object.__setattr__(strategy, p.name, int(number) if p.kind is int else number)


def _number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` if it is not a finite number (or a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
