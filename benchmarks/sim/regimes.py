"""The simulated regimes: which distributions, how they start, how they learn and forget.

Shared constants (every regime unless it says otherwise), chosen from the model's principles
before any strategy was run, and then left alone:

- ``ETA = 0.1`` logits per mixed group: a distribution at s = 0.5 that gets one mixed group
  per step for 20 steps moves to s = 0.88.
- ``TRANSFER = 0.3``: a neighbouring difficulty gains 30 % of a distribution's logit gain.
- Ladder start logits fall linearly from +3 (s = 0.95, easiest) to -8 (s = 3e-4, hardest):
  the hard end yields almost no mixed group until its neighbours have pulled it up.
- ``TARGET = 0.8``: the target mean success over the learnable distributions. Every
  learnable distribution can approach s = 1, so the reachable maximum is 1 and the target is
  0.8 of it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from benchmarks.sim.learner import Dynamics

ETA = 0.1
TRANSFER = 0.3
LADDER_TOP, LADDER_BOTTOM = 3.0, -8.0
TARGET = 0.8
PARTIAL_CREDIT = 0.1
FROZEN_LOGIT = 30.0  # |logit| of an impossible (s = 0) or trivial (s = 1) source


@dataclass(frozen=True)
class Regime:
    """One benchmark regime.

    ``names``: the run's distribution names. ``learnable``: indices the metrics average over.
    ``steps``: training steps per run. ``make``: the learner's :class:`Dynamics` for a seed
    (only the drifting regime's shock schedule depends on it). ``about``: one line for docs.
    ``forgets``: skill is lost within tens of steps (a bucket left out or not trained, or
    undone by another's training); the others are stationary or drift slowly.
    """

    name: str
    names: tuple[str, ...]
    learnable: tuple[int, ...]
    steps: int
    make: Callable[[int], Dynamics]
    about: str
    forgets: bool = False


def _ladder_logits(k: int) -> np.ndarray:
    return np.linspace(LADDER_TOP, LADDER_BOTTOM, k)


def ladder(k: int, steps: int, partial_credit: float = 0.0) -> Regime:
    """Easy-to-hard ladder of ``k`` difficulty buckets, transfer between neighbours."""
    z0 = _ladder_logits(k)
    dyn = Dynamics(
        z0=z0, eta=ETA, transfer=TRANSFER, forget=np.zeros(k), partial_credit=partial_credit
    )
    suffix = "-partial" if partial_credit else ""
    about = f"easy-to-hard ladder of {k} buckets, s0 from 0.95 to 3e-4, transfer {TRANSFER}"
    if partial_credit:
        about += f"; reward (1-{partial_credit}) * correct + {partial_credit} * U(0,1)"
    return Regime(
        name=f"ladder{k}{suffix}",
        names=tuple(f"d{j:02d}" for j in range(k)),
        learnable=tuple(range(k)),
        steps=steps,
        make=lambda _seed: dyn,
        about=about,
    )


def mixture(steps: int) -> Regime:
    """Six independent learnable sources plus one impossible and one trivial source."""
    z0 = np.array([-FROZEN_LOGIT, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, FROZEN_LOGIT])
    k = z0.size
    dyn = Dynamics(
        z0=z0,
        eta=ETA,
        transfer=0.0,
        forget=np.zeros(k),
        frozen=(0, k - 1),
    )
    names = ("impossible", "src-a", "src-b", "src-c", "src-d", "src-e", "src-f", "trivial")
    return Regime(
        name="mixture",
        names=names,
        learnable=tuple(range(1, k - 1)),
        steps=steps,
        make=lambda _seed: dyn,
        about="6 unrelated sources (s0 0.02..0.73, no transfer) + impossible (s=0) + trivial (s=1)",
    )


DRIFT_FORGET = 0.003
DRIFT_EVERY = 100
DRIFT_DROP = 4.0


def drifting(k: int, steps: int) -> Regime:
    """A ladder whose learnability moves: forgetting everywhere and periodic pool shocks.

    Every ``DRIFT_EVERY`` steps one bucket (drawn from the seed) has its prompt pool replaced
    by harder prompts: its logit and its forgetting floor drop by ``DRIFT_DROP``. Every idle
    bucket forgets ``DRIFT_FORGET`` of its distance to the floor per step.
    """
    z0 = _ladder_logits(k)

    def make(seed: int) -> Dynamics:
        rng = np.random.default_rng([seed, 7919])
        shocks = tuple(
            (at, int(rng.integers(k)), DRIFT_DROP) for at in range(DRIFT_EVERY, steps, DRIFT_EVERY)
        )
        return Dynamics(
            z0=z0, eta=ETA, transfer=TRANSFER, forget=np.full(k, DRIFT_FORGET), shocks=shocks
        )

    return Regime(
        name=f"drift{k}",
        names=tuple(f"d{j:02d}" for j in range(k)),
        learnable=tuple(range(k)),
        steps=steps,
        make=make,
        about=(
            f"ladder of {k} with forgetting {DRIFT_FORGET}/step when idle and, every "
            f"{DRIFT_EVERY} steps, one random bucket's logit dropped by {DRIFT_DROP}"
        ),
    )


FORGET_RATE = 0.02
FORGET_FLOOR = -4.0
FORGET_START = 2.0
FORGET_LADDER = 20


def forgetting(steps: int) -> Regime:
    """An early bucket mastered fast that decays when idle, beside a long ladder.

    Bucket ``early`` starts at logit ``FORGET_START`` (s = 0.88), is unrelated to the ladder
    (no transfer) and, when it gets no gradient, loses ``FORGET_RATE`` of its distance to
    logit ``FORGET_FLOOR`` (s = 0.018) per step (half-life about 35 steps). The
    ``FORGET_LADDER``-bucket ladder beside it does not forget and keeps a learning signal
    for hundreds of steps.
    """
    ladder_z = _ladder_logits(FORGET_LADDER)
    z0 = np.concatenate([[FORGET_START], ladder_z])
    k = z0.size
    forget = np.zeros(k)
    forget[0] = FORGET_RATE
    floor = z0.copy()
    floor[0] = FORGET_FLOOR
    dyn = Dynamics(z0=z0, eta=ETA, transfer=TRANSFER, forget=forget, floor=floor, breaks=(0,))
    return Regime(
        name="forgetting",
        names=("early", *(f"d{j:02d}" for j in range(FORGET_LADDER))),
        learnable=tuple(range(k)),
        steps=steps,
        make=lambda _seed: dyn,
        about=(
            f"bucket 'early' (s0 0.88, forgets {FORGET_RATE}/step towards s=0.018 when idle) "
            f"beside a {FORGET_LADDER}-bucket ladder"
        ),
        forgets=True,
    )


FAST_FORGET = 0.03
FAST_FLOOR = -3.0


def fast_forgetting(k: int, steps: int) -> Regime:
    """A ladder whose skill fades within tens of steps wherever it is left out of the batch.

    The learner rehearses (``Dynamics.rehearsal``): a bucket with no prompt in a step loses
    ``FAST_FORGET`` of its distance to ``min(z0, FAST_FLOOR)`` (half-life about 23 steps;
    s = 0.047 at the floor), one that is sampled keeps what it has. So a schedule must keep
    visiting what it has taught, and the hard end, which only transfer from its neighbours
    can pull up, keeps its gains only while it is sampled.
    """
    z0 = _ladder_logits(k)
    dyn = Dynamics(
        z0=z0,
        eta=ETA,
        transfer=TRANSFER,
        forget=np.full(k, FAST_FORGET),
        floor=np.minimum(z0, FAST_FLOOR),
        rehearsal=True,
    )
    return Regime(
        name=f"fastforget{k}",
        names=tuple(f"d{j:02d}" for j in range(k)),
        learnable=tuple(range(k)),
        steps=steps,
        make=lambda _seed: dyn,
        about=(
            f"ladder of {k}; a bucket left out of a step's batch forgets {FAST_FORGET}/step "
            f"towards s = 0.047 (half-life ~23 steps)"
        ),
        forgets=True,
    )


SOURCES_FORGET = 0.05


def _rehearsing_sources(z0: np.ndarray, frozen: tuple[int, ...] = ()) -> Dynamics:
    """Unrelated sources (no transfer) starting at ``z0``; one left out of a step's batch
    loses ``SOURCES_FORGET`` of its logit distance to ``min(z0, FAST_FLOOR)``."""
    return Dynamics(
        z0=z0,
        eta=ETA,
        transfer=0.0,
        forget=np.full(z0.size, SOURCES_FORGET),
        floor=np.minimum(z0, FAST_FLOOR),
        frozen=frozen,
        rehearsal=True,
    )


def forgetting_sources(k: int, steps: int) -> Regime:
    """Unrelated sources, each lost within tens of steps whenever it is left out.

    ``k`` sources start from s = 0.73 to 0.047 (logits +1 to -3), learn only from their own
    mixed groups (no transfer) and rehearse (``Dynamics.rehearsal``): a source with no prompt
    in a step loses ``SOURCES_FORGET`` of its logit distance to ``min(z0, FAST_FLOOR)``
    (half-life about 14 steps). A mastered source shows mean |A| near 0, so a schedule that
    reads only that signal leaves it out, and it is lost: the demo's rev-5.
    """
    dyn = _rehearsing_sources(np.linspace(1.0, FAST_FLOOR, k))
    return Regime(
        name=f"forget{k}",
        names=tuple(f"s{j:02d}" for j in range(k)),
        learnable=tuple(range(k)),
        steps=steps,
        make=lambda _seed: dyn,
        about=(
            f"{k} unrelated sources (s0 0.73 to 0.047); one left out of a step's batch "
            f"forgets {SOURCES_FORGET}/step towards s = 0.047 (half-life ~14 steps)"
        ),
        forgets=True,
    )


def forgetting_mixture(k: int, steps: int) -> Regime:
    """The sources of :func:`forgetting_sources` in a mixture with an impossible and a
    trivial source, as real prompt pools have: prompts no rollout solves and prompts every
    rollout solves. Neither teaches anything, so a batch share spent on them is lost to
    the sources that need rehearsal."""
    z0 = np.concatenate([[-FROZEN_LOGIT], np.linspace(1.0, FAST_FLOOR, k), [FROZEN_LOGIT]])
    n = z0.size
    dyn = _rehearsing_sources(z0, frozen=(0, n - 1))
    return Regime(
        name=f"forgetmix{k}",
        names=("impossible", *(f"s{j:02d}" for j in range(k)), "trivial"),
        learnable=tuple(range(1, n - 1)),
        steps=steps,
        make=lambda _seed: dyn,
        about=(
            f"the {k} sources of forget{k} beside an impossible (s = 0) and a trivial "
            f"(s = 1) source"
        ),
        forgets=True,
    )


CLASH = 0.5
CLASH_FORGET = 0.01


def interference(pairs: int, steps: int) -> Regime:
    """Pairs of sources in which learning one costs the other, like the demo's rev-5/rev-7.

    Pair ``i`` is an easier source ``a{i}`` (s0 0.5) and a harder ``b{i}`` (s0 0.05); each
    logit one gains by its own mixed groups costs its partner ``CLASH`` of it; no transfer
    between pairs; idle sources forget ``CLASH_FORGET`` per step towards their start.
    A schedule that moves on from a mastered ``a{i}`` to ``b{i}`` undoes ``a{i}``.
    """
    z0 = np.array([v for _ in range(pairs) for v in (0.0, -3.0)])
    k = z0.size
    clash = tuple((2 * i + a, 2 * i + 1 - a, CLASH) for i in range(pairs) for a in (0, 1))
    dyn = Dynamics(
        z0=z0,
        eta=ETA,
        transfer=0.0,
        forget=np.full(k, CLASH_FORGET),
        interference=clash,
    )
    return Regime(
        name=f"clash{pairs}",
        names=tuple(f"{ab}{i}" for i in range(pairs) for ab in ("a", "b")),
        learnable=tuple(range(k)),
        steps=steps,
        make=lambda _seed: dyn,
        about=(
            f"{pairs} pairs (s0 0.5 and 0.05) where a gain on one costs its partner {CLASH} "
            f"of it; idle sources forget {CLASH_FORGET}/step"
        ),
        forgets=True,
    )


def all_regimes(scale: float = 1.0) -> dict[str, Regime]:
    """Every regime by name; ``scale`` multiplies the step budgets (smoke runs use less)."""

    def n(steps: int) -> int:
        return max(5, int(steps * scale))

    regimes = [
        ladder(6, n(200)),
        ladder(12, n(300)),
        ladder(50, n(800)),
        ladder(6, n(200), partial_credit=PARTIAL_CREDIT),
        mixture(n(150)),
        drifting(8, n(500)),
        forgetting(n(500)),
        fast_forgetting(8, n(600)),
        forgetting_sources(10, n(600)),
        forgetting_mixture(10, n(600)),
        interference(3, n(600)),
    ]
    return {r.name: r for r in regimes}
