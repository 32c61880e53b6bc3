"""What a report puts into a distribution's window: the learning signal a strategy reads.

``dump-ucb`` reads the mean of each distribution's window. By default (``signal=
"advantage"``, the paper's rule) the window holds the samples' absolute advantages. With a
continuous reward and std-normalised advantages that signal is about the same for every
group with any spread, learnable or not (docs/benchmarks.md, failure mode a);
``signal="reward-spread"`` holds instead each sample's distance from the mean reward of
its distribution in the same report, ``|r_i - mean_j(r)|``, which is large only where the
rewards themselves disagree (``2 p (1 - p)`` in expectation for a 0/1 reward of success
rate ``p``) and needs no group structure, so the service can compute it from the report's
rewards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypeVar, get_args

import numpy as np

Signal = Literal["advantage", "reward-spread"]
"""What a ``dump-ucb`` window may hold."""
SIGNALS: tuple[str, ...] = get_args(Signal)

K = TypeVar("K")


class MissingRewards(ValueError):
    """The strategy's signal is computed from rewards that the report does not carry."""


def reward_spread(rewards: Sequence[float]) -> list[float]:
    """``|r_i - mean(r)|`` for each reward of one distribution in one report."""
    r = np.asarray(rewards, dtype=np.float64)
    return np.abs(r - r.mean()).tolist()


def window_values(
    signal: str,
    advantages: Mapping[K, Sequence[float]],
    rewards: Mapping[K, Sequence[float]] | None,
) -> dict[K, Sequence[float]]:
    """The values one report adds to each distribution's window (signed or not: the window
    keeps absolute values), for the distributions the report has advantages for.

    Raises :class:`MissingRewards` when the signal needs rewards and a distribution with
    advantages has none.
    """
    if signal == "advantage":
        return dict(advantages)  # the values themselves, not copied: this is every report
    if signal != "reward-spread":
        raise ValueError(f"signal must be one of {list(SIGNALS)}, got {signal!r}")
    out: dict[K, Sequence[float]] = {}
    for key, values in advantages.items():
        if len(values) == 0:
            continue
        r = (rewards or {}).get(key)
        if r is None or len(r) == 0:
            raise MissingRewards(
                f"signal 'reward-spread' is computed from rewards, and the report has none "
                f"for {key!r}: send rewards for every distribution that has advantages"
            )
        out[key] = reward_spread(r)
    return out
