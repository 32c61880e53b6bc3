"""DUMP with learnt rehearsal: a curriculum that notices which buckets are being forgotten.

DUMP (:class:`curriculum_core.strategies.DumpUcb`) reads only the learning signal of what it
samples. A bucket mastered early shows ``|A| = 0`` and is left out; when the policy then
forgets it, nothing shows that until the slowly growing count bonus brings it back, and a
bucket brought back and relearnt is left out again. Discounted UCB
(:class:`curriculum_core.discounted.DiscountedDumpUcb`) fixes that by forgetting evidence
everywhere, which slows the runs whose buckets do not decay.

This rule learns, per bucket, whether it decays while left out, as spaced-repetition
schedulers learn each item's forgetting (Settles and Meeder 2016, "A trainable spaced
repetition model for language learning", ACL): every return to a bucket after a gap
compares its reward with its reward before the gap. A bucket whose reward reliably fell
with the length of its gaps gets a rehearsal share of the batch, up to uniform's; every
other bucket is scheduled by DUMP's rule alone. Where nothing is forgotten the rule is
DUMP's, up to noise; where everything is, it tends to uniform, which keeps every bucket in
the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from curriculum_core.params import check_params, param
from curriculum_core.stats import (
    DEFAULT_REWARD_ALPHA,
    DEFAULT_WINDOW,
    MAX_WINDOW,
    BatchSummary,
    RunStats,
)
from curriculum_core.strategies import mix_uniform, softmax, ucb_scores

PARTS = ("idle", "ref", "seen", "gap_drop", "gap_gap", "drop_drop", "returns")
"""The state's blocks, each of shape ``(K,)``, in order."""

MIN_RETURNS = 1.5
"""Discounted returns a bucket needs before its forgetting is judged: two returns, the first
discounted once by ``memory``, which is at least 0.5 so that two suffice (a slope fitted to
one return has no error estimate)."""


@dataclass(frozen=True)
class DumpRehearse:
    """DUMP's rule plus a rehearsal share for each bucket seen to be forgotten when left out.

    Time is counted in samples. ``idle_j`` is the number of samples in the reports that
    carried none of ``j`` since ``j`` was last reported. When ``j`` returns after such a gap
    ``g``, its drop ``d = ref_j - r_j`` (``r_j``: the report's mean reward of ``j``;
    ``ref_j``: its reward before the gap) is one observation of a line through the origin,
    ``d = rate_j * g``. The sums ``sum g d``, ``sum g^2``, ``sum d^2`` and the number of
    returns are discounted by ``memory`` at each return of ``j``. Every report carrying
    ``j`` moves ``ref_j`` towards ``r_j`` by ``ref_alpha`` (the first sets it).

    The least-squares rate is ``sum g d / sum g^2``, its standard error ``s / sqrt(sum g^2)``
    with ``s^2`` the residuals' variance, and ``t_j`` their ratio (0 before ``j`` has
    returned twice). The rehearsal share and the probabilities are

        ``m_j = rehearse * clip(t_j / confidence, 0, 1) / K``
        ``p = (1 - sum m) * softmax(UCB / tau) + m``

    with ``UCB`` DUMP's score (``window``, ``c``), mixed with uniform by ``floor``. ``c``,
    ``tau`` and ``window`` are DUMP's; the other defaults are the best of a sweep on the
    simulator (``benchmarks/simulated.py``, docs/benchmarks.md). A climbing or steady
    bucket's drops are at or below 0, so ``t_j <= 0`` and ``m_j = 0``. Reports without
    rewards teach nothing here: with none, the rule is DUMP's.
    """

    name: Literal["dump-rehearse"] = "dump-rehearse"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    c: float = param(1.0, ge=0, le=1e6)
    tau: float = param(0.1, gt=0)
    rehearse: float = param(1.0, ge=0, le=1)
    confidence: float = param(1.0, gt=0, le=1e6)
    memory: float = param(0.95, ge=0.5, le=1)
    ref_alpha: float = param(0.3, gt=0, le=1)
    floor: float = param(0.0, ge=0, lt=1)

    stateful: ClassVar[bool] = True
    reads_rewards: ClassVar[bool] = False  # rewards reach it through its state

    def __post_init__(self) -> None:
        check_params(self)

    def initial_state(self, k: int) -> np.ndarray:
        return np.zeros(len(PARTS) * k)

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        idle, ref, seen, gd, gg, dd, returns = (p.copy() for p in np.split(state, len(PARTS)))
        here = np.zeros(idle.shape[0], dtype=bool)
        here[batch.index[batch.count > 0]] = True
        for j, r in zip(batch.index.tolist(), batch.mean_reward.tolist(), strict=True):
            if not here[j] or not np.isfinite(r):
                continue
            if seen[j] and idle[j] > 0:
                gap, drop, keep = idle[j], ref[j] - r, self.memory
                gd[j] = keep * gd[j] + gap * drop
                gg[j] = keep * gg[j] + gap * gap
                dd[j] = keep * dd[j] + drop * drop
                returns[j] = keep * returns[j] + 1.0
            ref[j] = ref[j] + self.ref_alpha * (r - ref[j]) if seen[j] else r
            seen[j] = 1.0
        idle = np.where(here, 0.0, idle + float(batch.count.sum()))
        return np.concatenate([idle, ref, seen, gd, gg, dd, returns])

    def forgetting(self, state: np.ndarray) -> np.ndarray:
        """Per distribution, the t statistic of its forgetting rate (reward lost per idle
        sample), shape ``(K,)``: positive when its reward fell over its gaps, 0 until it
        has returned after a gap twice."""
        _idle, _ref, _seen, gd, gg, dd, returns = np.split(state, len(PARTS))
        judged = (returns >= MIN_RETURNS) & (gg > 0)
        gg_safe = np.where(judged, gg, 1.0)
        rate = gd / gg_safe
        resid = np.maximum(dd - gd * rate, 0.0) / np.maximum(returns - 1.0, 1e-12)
        se = np.sqrt(resid / gg_safe)
        # no residual at all: the fit is exact, and a positive rate is beyond doubt
        exact = np.where(rate > 0, np.inf, 0.0)
        t = np.where(se > 0, rate / np.where(se > 0, se, 1.0), exact)
        return np.where(judged, t, 0.0)

    def shares(self, state: np.ndarray) -> np.ndarray:
        """The rehearsal share ``m_j`` of each distribution, shape ``(K,)``."""
        k = state.shape[0] // len(PARTS)
        # min before the division: t / confidence overflows for a tiny confidence
        t = np.maximum(self.forgetting(state), 0.0)
        gate = np.minimum(t, self.confidence) / self.confidence
        return self.rehearse * gate / k

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return ucb_scores(stats, self.c)

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        m = self.shares(state)
        p = (1.0 - m.sum()) * softmax(self.scores(stats, state), self.tau) + m
        return mix_uniform(p, self.floor)
