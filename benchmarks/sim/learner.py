"""A population model of a policy under GRPO, per prompt distribution (pure numpy).

The model knows nothing about any scheduling strategy; it only turns a batch composition into
rollout outcomes and learning. Every constant below is given in :class:`Dynamics` (one
instance per regime, see :mod:`sim.regimes`), with its unit.

State
    One logit ``z_j`` per distribution ``j = 0..K-1``; the success probability of one rollout
    on ``j`` is ``s_j = sigmoid(z_j)`` (the *true* success rate, which is what the metrics
    read; the scheduler only ever sees sampled rewards and advantages). ``z_j`` starts at
    ``z0_j``. Distributions flagged ``frozen`` never change (an impossible source, s = 0, or a
    trivial one, s = 1).

One step, given the plan's ``assignment`` (B slots, one distribution each)
    1. Rollouts: each slot is one prompt with ``G`` rollouts; rollout ``i`` is correct with
       probability ``s_j``, ``c_i ~ Bernoulli(s_j)``.
    2. Reward: ``r_i = c_i`` (binary), or, with ``partial_credit = eps > 0``,
       ``r_i = (1 - eps) c_i + eps u_i`` with ``u_i ~ Uniform(0, 1)``: a partial-credit term
       (format, length, a judge's noise) that varies between rollouts but that the policy
       cannot learn to improve: it carries no learning signal.
    3. Advantages, GRPO: ``A_i = (r_i - mean(r)) / (std(r) + 1e-6)`` per group (population
       std). These and the rewards are what the trainer reports.
    4. Learning: only a group whose *correctness* disagrees (``0 < sum c_i < G``, a "mixed"
       group) carries a gradient that moves ``s_j``. With std-normalised advantages every
       mixed group contributes a gradient of about the same size, so the logit step is
       ``dz_j = eta * m_j``, ``m_j`` the number of mixed groups on ``j`` in the step
       (``eta`` in logits per mixed group).
    5. Transfer: skill generalises to neighbouring difficulties (``j +- 1`` in the
       distribution order): ``z_{j+-1} += transfer * dz_j``, except across a cut link
       (``breaks``: a ``j`` there means ``j`` and ``j + 1`` are unrelated sources).
    6. Forgetting: a distribution that received no mixed group in the step (so no gradient
       of its own) drifts back: ``z_j <- z_j - forget_j * (z_j - zf_j)``, towards its
       forgetting floor ``zf_j`` (its start ``z0_j`` unless a regime says otherwise);
       ``forget_j`` is a fraction per step (0: no forgetting). With ``rehearsal`` set, only a
       distribution that had no prompt in the batch at all forgets: seeing its prompts, even
       solved ones, keeps the skill (the learner of the forgetting regimes where a mastered
       bucket stays mastered while it is sampled and is lost when it is left out).
    7. Interference: learning one distribution can cost another (two tasks that pull one
       skill in opposite directions): for each ``(i, j, f)`` in ``interference``,
       ``z_j -= f * eta * m_i``. Lost skill this way is lost until relearnt, whatever the
       floor says.
    8. Shocks (drifting regime): at steps listed in ``shocks`` a distribution's logit drops by
       a given amount (its prompt pool was replaced by harder prompts), and its floor with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

GRPO_EPS = 1e-6
"""The epsilon of the GRPO std normalisation, as trainers use it."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, elementwise."""
    return 1.0 / (1.0 + np.exp(-z))


@dataclass(frozen=True)
class Dynamics:
    """The constants of one regime's learner.

    ``z0``: start logits, shape ``(K,)``. ``eta``: logit gain per mixed group (logits).
    ``transfer``: fraction of a distribution's logit gain given to each neighbour (unitless).
    ``forget``: per-distribution fraction of the distance to the floor lost per step without
    a gradient (1/step), shape ``(K,)``. ``floor``: forgetting floor logits, shape ``(K,)``
    (``None``: the start). ``breaks``: ``j`` such that no transfer flows between ``j`` and
    ``j + 1``. ``frozen``: distributions whose logit never changes.
    ``partial_credit``: weight ``eps`` of the unlearnable continuous reward term (0: binary
    reward). ``shocks``: ``(step, distribution, logit drop)`` events. ``interference``:
    ``(i, j, f)``: each logit ``i`` gains by its own mixed groups costs ``j`` the fraction
    ``f`` of it (unitless). ``rehearsal``: forgetting spares every distribution that had a
    prompt in the step's batch, not only those with a mixed group.
    """

    z0: np.ndarray
    eta: float
    transfer: float
    forget: np.ndarray
    floor: np.ndarray | None = None
    breaks: tuple[int, ...] = ()
    frozen: tuple[int, ...] = ()
    partial_credit: float = 0.0
    shocks: tuple[tuple[int, int, float], ...] = ()
    interference: tuple[tuple[int, int, float], ...] = ()
    rehearsal: bool = False

    @property
    def k(self) -> int:
        """Number of distributions."""
        return int(self.z0.shape[0])


@dataclass(frozen=True)
class StepOutcome:
    """What one step produced: per-distribution lists of per-rollout values (for the report).

    ``advantages`` and ``rewards`` map a distribution index to its rollouts' values, in slot
    order; ``mixed`` counts the mixed groups per distribution, shape ``(K,)``.
    """

    advantages: dict[int, list[float]]
    rewards: dict[int, list[float]]
    mixed: np.ndarray


@dataclass
class PopulationLearner:
    """The learner state of one run; see the module docstring for the dynamics.

    ``group_size`` is G (rollouts per prompt). ``rng`` is the run's only randomness.
    """

    dynamics: Dynamics
    group_size: int
    rng: np.random.Generator
    z: np.ndarray = field(init=False)
    zf: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        d = self.dynamics
        self.z = d.z0.astype(np.float64).copy()
        self.zf = (d.z0 if d.floor is None else d.floor).astype(np.float64).copy()

    def success(self) -> np.ndarray:
        """True per-rollout success probability per distribution, shape ``(K,)``."""
        return sigmoid(self.z)

    def step(self, step: int, assignment: list[int]) -> StepOutcome:
        """Roll out the batch ``assignment`` (distribution index per slot), then learn."""
        d = self.dynamics
        g = self.group_size
        s = self.success()
        slots = np.asarray(assignment, dtype=np.int64)
        correct = (self.rng.random((slots.size, g)) < s[slots, None]).astype(np.float64)
        if d.partial_credit > 0:
            noise = self.rng.random((slots.size, g))
            rewards = (1.0 - d.partial_credit) * correct + d.partial_credit * noise
        else:
            rewards = correct
        adv = (rewards - rewards.mean(axis=1, keepdims=True)) / (
            rewards.std(axis=1, keepdims=True) + GRPO_EPS
        )
        hits = correct.sum(axis=1)
        is_mixed = (hits > 0) & (hits < g)
        mixed = np.bincount(slots[is_mixed], minlength=d.k).astype(np.float64)

        advantages: dict[int, list[float]] = {}
        reward_lists: dict[int, list[float]] = {}
        for i, j in enumerate(slots.tolist()):
            advantages.setdefault(j, []).extend(adv[i].tolist())
            reward_lists.setdefault(j, []).extend(rewards[i].tolist())

        self._learn(mixed, np.bincount(slots, minlength=d.k) > 0)
        self._shock(step)
        return StepOutcome(advantages=advantages, rewards=reward_lists, mixed=mixed)

    def _learn(self, mixed: np.ndarray, sampled: np.ndarray) -> None:
        d = self.dynamics
        gain = d.eta * mixed
        link = np.full(d.k - 1, d.transfer)
        link[list(d.breaks)] = 0.0
        dz = gain.copy()
        dz[1:] += link * gain[:-1]
        dz[:-1] += link * gain[1:]
        idle = ~sampled if d.rehearsal else mixed == 0
        dz -= np.where(idle, d.forget * (self.z - self.zf), 0.0)
        for i, j, f in d.interference:
            dz[j] -= f * gain[i]
        if d.frozen:
            dz[list(d.frozen)] = 0.0
        self.z += dz

    def _shock(self, step: int) -> None:
        for at, j, drop in self.dynamics.shocks:
            if at == step:
                self.z[j] -= drop
                self.zf[j] -= drop
