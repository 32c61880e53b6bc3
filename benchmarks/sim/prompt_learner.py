"""A population model whose prompts differ inside a distribution (pure numpy).

The distribution-level learner of :mod:`sim.learner` treats every prompt of a distribution
alike. Here prompt ``i`` of distribution ``j`` has its own logit offset ``o_ji``: one
rollout on it is correct with probability ``sigmoid(z_j + o_ji)``. A share of each
distribution's prompts is *hopeless* (never solved, s = 0: a wrong reference answer, a task
beyond the model) and a share *trivial* (always solved, s = 1); neither ever changes.

One training step, given the groups trained on (distribution and prompt of each, and
whether its correctness disagreed, a "mixed" group):

1. Learning: each mixed group on ``(j, i)`` moves its distribution by ``eta`` logits and,
   less, its own offset by ``own * eta``; a neighbouring distribution (``j +- 1``) gains
   ``transfer`` of ``j``'s gain, as in :mod:`sim.learner`.
2. Forgetting (the forgetting regime): a distribution with no prompt in the trained batch
   loses ``forget`` of its logit distance to its floor.

Rollouts and learning are separate calls, so a trainer that generates several rounds per
step (dynamic sampling) rolls out more than it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.sim.learner import sigmoid
from benchmarks.sim.regimes import (
    ETA,
    FAST_FLOOR,
    LADDER_BOTTOM,
    LADDER_TOP,
    SOURCES_FORGET,
    TRANSFER,
)

PROMPTS = 32  # prompts per distribution
OFFSET_SD = 1.5  # spread of the learnable prompts' logit offsets
HOPELESS = 0.25  # share of each distribution's prompts never solved
TRIVIAL = 0.15  # share always solved
OWN = 0.5  # a prompt's own offset gains this fraction of its distribution's gain


@dataclass(frozen=True)
class PromptDynamics:
    """The constants of one regime, for one seed.

    ``z0``: start logits per distribution, shape ``(K,)``. ``offsets``: per prompt, shape
    ``(K, n)``. ``fixed``: per prompt, -1 hopeless, +1 trivial, 0 learnable, shape
    ``(K, n)``. ``forget``: fraction of the distance to ``floor`` lost per training step by
    a distribution absent from the trained batch (0: none). ``transfer`` as in
    :mod:`sim.learner`.
    """

    z0: np.ndarray
    offsets: np.ndarray
    fixed: np.ndarray
    transfer: float
    forget: float = 0.0
    floor: np.ndarray | None = None

    @property
    def k(self) -> int:
        return int(self.z0.size)

    @property
    def n(self) -> int:
        return int(self.offsets.shape[1])


def prompt_pool(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Offsets and hopeless/trivial flags of ``k`` distributions of :data:`PROMPTS`
    prompts, drawn from ``seed`` (each seed its own pool)."""
    rng = np.random.default_rng([seed, 4242])
    offsets = rng.normal(0.0, OFFSET_SD, (k, PROMPTS))
    u = rng.random((k, PROMPTS))
    fixed = np.where(u < HOPELESS, -1, np.where(u < HOPELESS + TRIVIAL, 1, 0))
    return offsets, fixed


@dataclass(frozen=True)
class PromptRegime:
    """One regime: distribution names, training steps of the budget, dynamics per seed."""

    name: str
    names: tuple[str, ...]
    steps: int
    about: str
    z0: np.ndarray
    transfer: float
    forget: float = 0.0

    def make(self, seed: int) -> PromptDynamics:
        offsets, fixed = prompt_pool(self.z0.size, seed)
        floor = np.minimum(self.z0, FAST_FLOOR) if self.forget else None
        return PromptDynamics(self.z0, offsets, fixed, self.transfer, self.forget, floor)


def prompt_regimes(scale: float = 1.0) -> dict[str, PromptRegime]:
    """The prompt-level regimes by name; ``scale`` multiplies the step budgets."""

    def n(steps: int) -> int:
        return max(5, int(steps * scale))

    pool = f"{PROMPTS} prompts each, {HOPELESS:.0%} hopeless, {TRIVIAL:.0%} trivial"
    regimes = [
        PromptRegime(
            "prompts12",
            tuple(f"d{j:02d}" for j in range(12)),
            n(300),
            f"ladder12 (logits +3 to -8, transfer {TRANSFER}); {pool}, offsets N(0, {OFFSET_SD})",
            np.linspace(LADDER_TOP, LADDER_BOTTOM, 12),
            TRANSFER,
        ),
        PromptRegime(
            "promptforget10",
            tuple(f"s{j:02d}" for j in range(10)),
            n(600),
            f"forget10's sources (logits +1 to -3, no transfer; one absent from a step's "
            f"trained batch forgets {SOURCES_FORGET}/step towards s = 0.047); {pool}",
            np.linspace(1.0, FAST_FLOOR, 10),
            0.0,
            SOURCES_FORGET,
        ),
    ]
    return {r.name: r for r in regimes}


class PromptLearner:
    """The learner state of one run (see the module docstring); ``rng`` its randomness."""

    def __init__(self, dynamics: PromptDynamics, group_size: int, rng: np.random.Generator):
        self.d = dynamics
        self.g = group_size
        self.rng = rng
        self.z = dynamics.z0.astype(np.float64).copy()
        self.o = dynamics.offsets.astype(np.float64).copy()
        self.zf = None if dynamics.floor is None else dynamics.floor.astype(np.float64)

    def success(self) -> np.ndarray:
        """True success probability per prompt, shape ``(K, n)``."""
        s = sigmoid(self.z[:, None] + self.o)
        return np.where(self.d.fixed == 0, s, (self.d.fixed > 0).astype(np.float64))

    def learnable_success(self) -> float:
        """Mean over distributions of the mean success of their learnable prompts."""
        s, live = self.success(), self.d.fixed == 0
        return float(np.mean([s[j][live[j]].mean() for j in range(self.d.k)]))

    def rollout(self, dists: np.ndarray, prompts: np.ndarray) -> np.ndarray:
        """0/1 rewards of ``G`` rollouts for each (distribution, prompt), shape ``(B, G)``."""
        p = self.success()[dists, prompts]
        return (self.rng.random((dists.size, self.g)) < p[:, None]).astype(np.float64)

    def learn(self, dists: np.ndarray, prompts: np.ndarray, mixed: np.ndarray) -> None:
        """One training step on the groups ``(dists, prompts)``; ``mixed`` marks the groups
        whose correctness disagreed (the only ones with a gradient)."""
        d = self.d
        gain = ETA * np.bincount(dists[mixed], minlength=d.k).astype(np.float64)
        dz = gain.copy()
        dz[1:] += d.transfer * gain[:-1]
        dz[:-1] += d.transfer * gain[1:]
        np.add.at(self.o, (dists[mixed], prompts[mixed]), OWN * ETA)
        if d.forget and self.zf is not None:
            absent = np.bincount(dists, minlength=d.k) == 0
            dz -= np.where(absent, d.forget * (self.z - self.zf), 0.0)
        self.z += dz
