"""Published rivals of DUMP that keep a state of their own, updated by every report.

Each state is a float64 vector; :meth:`advance` is a pure function of the old state and one
report's :class:`BatchSummary`, so the store can fold it over the reports in order.
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
from curriculum_core.strategies import mix_uniform, softmax


@dataclass(frozen=True)
class Sec:
    """Self-Evolving Curriculum (Chen et al. 2025, arXiv 2505.14970).

    Each distribution has a value ``q_j`` (0 at the start). A report that carries samples of
    ``j`` moves it towards their mean absolute advantage: ``q_j <- (1 - lr) q_j + lr *
    mean|A|_j`` (the paper's TD(0) update with the advantage-based reward); the
    probabilities are Boltzmann, ``softmax(q / tau)``. The defaults are the paper's:
    ``lr = 0.5``, ``tau = 0.4``. State: ``q``, shape ``(K,)``.
    """

    name: Literal["sec"] = "sec"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    lr: float = param(0.5, gt=0, le=1)
    tau: float = param(0.4, gt=0)

    stateful: ClassVar[bool] = True
    reads_rewards: ClassVar[bool] = False  # rewards reach it through the journal

    def __post_init__(self) -> None:
        check_params(self)

    def initial_state(self, k: int) -> np.ndarray:
        return np.zeros(k)

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        q = state.copy()
        seen = batch.count > 0
        idx = batch.index[seen]
        q[idx] = (1 - self.lr) * q[idx] + self.lr * batch.mean_abs_advantage[seen]
        return q

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return state.copy()

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return softmax(state, self.tau)


def _reward_progress(
    last: np.ndarray, seen: np.ndarray, batch: BatchSummary
) -> tuple[np.ndarray, np.ndarray]:
    """Indices whose reward changed since their previous report, and that change.

    A distribution's first reward only sets its baseline. Updates ``last`` and ``seen`` in
    place.
    """
    has = ~np.isnan(batch.mean_reward)
    idx = batch.index[has]
    rewards = batch.mean_reward[has]
    before = seen[idx] > 0
    gain = rewards[before] - last[idx[before]]
    last[idx] = rewards
    seen[idx] = 1.0
    return idx[before], gain


@dataclass(frozen=True)
class LearningProgress:
    """Teacher-student curriculum, online variant (Matiisen et al. 2017, arXiv 1707.00183).

    The learning progress of distribution ``j`` is a moving average of the change of its
    mean reward between two reports that carry it: ``Q_j <- alpha (r_j - r_j,prev) +
    (1 - alpha) Q_j``; sampling is Boltzmann on ``|Q|`` (a falling reward is progress to
    re-learn too), mixed with uniform by ``epsilon``. The paper tunes its constants per task;
    ours (``alpha = 0.1``, ``tau = 0.05``, ``epsilon = 0.1``) suit rewards in [0, 1].
    State: last reward, ``Q`` and a seen flag, shape ``(3K,)``.
    """

    name: Literal["learning-progress"] = "learning-progress"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    alpha: float = param(0.1, gt=0, le=1)
    tau: float = param(0.05, gt=0)
    epsilon: float = param(0.1, ge=0, lt=1)

    stateful: ClassVar[bool] = True
    reads_rewards: ClassVar[bool] = False  # rewards reach it through the journal

    def __post_init__(self) -> None:
        check_params(self)

    def initial_state(self, k: int) -> np.ndarray:
        return np.zeros(3 * k)

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        last, progress, seen = (part.copy() for part in np.split(state, 3))
        idx, gain = _reward_progress(last, seen, batch)
        progress[idx] = self.alpha * gain + (1 - self.alpha) * progress[idx]
        return np.concatenate([last, progress, seen])

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return np.abs(np.split(state, 3)[1])

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return mix_uniform(softmax(self.scores(stats, state), self.tau), self.epsilon)


@dataclass(frozen=True)
class Exp3S:
    """Exp3.S bandit (Graves et al. 2017, arXiv 1704.03003) with learning progress as gain.

    Policy ``pi = (1 - epsilon) softmax(w) + epsilon / K``. A report's gain for each
    distribution it carries is the change of its mean reward since its previous report,
    rescaled into [-1, 1] by the 20th and 80th percentiles of the last ``history`` gains
    (the paper's scheme); the importance-weighted reward ``r_i / pi_i`` updates the weights
    with the fixed-share rule ``w_i <- log((1 - a) exp(w_i + eta r^_i) + a / (K - 1) *
    sum_{j != i} exp(w_j + eta r^_j))``. From the paper: ``epsilon = 0.05``, the fixed-share
    rule with a decaying share and the percentile rescaling; ours: ``eta = 0.1`` (the
    paper's 1e-3 is for runs of ~10^5 steps), ``history = 1000``, and the share
    ``a = 1 / (t + 1)`` at the ``t``-th update (the paper's ``1 / t`` would share everything
    at the first one). State: ``w``, last reward, seen flag (``K``
    each), then the step count, the ring position and fill, and the gain ring
    (``history``): shape ``(3K + 3 + history,)``.
    """

    name: Literal["exp3s"] = "exp3s"
    window: int = param(DEFAULT_WINDOW, ge=1, le=MAX_WINDOW)
    reward_alpha: float = param(DEFAULT_REWARD_ALPHA, gt=0, le=1)
    eta: float = param(0.1, gt=0)
    epsilon: float = param(0.05, ge=0, lt=1)
    history: int = param(1000, ge=2, le=100_000)

    stateful: ClassVar[bool] = True
    reads_rewards: ClassVar[bool] = False  # rewards reach it through the journal

    def __post_init__(self) -> None:
        check_params(self)

    def initial_state(self, k: int) -> np.ndarray:
        return np.zeros(3 * k + 3 + self.history)

    def _policy(self, w: np.ndarray) -> np.ndarray:
        return mix_uniform(softmax(w, 1.0), self.epsilon)

    def advance(self, state: np.ndarray, batch: BatchSummary) -> np.ndarray:
        k = (state.shape[0] - 3 - self.history) // 3
        w, last, seen = (state[i * k : (i + 1) * k].copy() for i in range(3))
        t, pos, filled = (float(x) for x in state[3 * k : 3 * k + 3])
        ring = state[3 * k + 3 :].copy()
        idx, gain = _reward_progress(last, seen, batch)
        if idx.size:
            for g in gain:
                ring[int(pos)] = g
                pos = (pos + 1) % self.history
                filled = min(filled + 1, self.history)
            low, high = np.percentile(ring[: int(filled)], [20, 80])
            scaled = np.zeros_like(gain)
            if high > low:
                scaled = np.clip(2 * (gain - low) / (high - low) - 1, -1, 1)
            pi = self._policy(w)
            estimate = np.zeros(k)
            np.add.at(estimate, idx, scaled / pi[idx])
            t += 1
            w = _fixed_share(w + self.eta * estimate, 1.0 / (t + 1))
        head = np.array([t, pos, filled])
        return np.concatenate([w, last, seen, head, ring])

    def scores(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        k = (state.shape[0] - 3 - self.history) // 3
        return state[:k].copy()

    def weights(self, stats: RunStats, state: np.ndarray) -> np.ndarray:
        return self._policy(self.scores(stats, state))


def _fixed_share(u: np.ndarray, share: float) -> np.ndarray:
    """``log((1 - share) e^u_i + share / (K - 1) sum_{j != i} e^u_j)``, shifted so max is 0."""
    k = u.shape[0]
    if k == 1:
        return np.zeros(1)
    top = u.max()
    e = np.exp(u - top)
    mixed = (1 - share) * e + share / (k - 1) * (e.sum() - e)
    w = np.log(np.maximum(mixed, np.finfo(np.float64).tiny))
    return w - w.max()
