"""The answers that show a run's state (``GET /v1/runs/{run}``, a plan), built from what the
store read and the core computed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic_core import to_json

from curriculum_core import (
    RunStats,
    assignment_of_counts,
    exploration_bonus,
    plan_rng,
    rehearsal_share,
    saturated,
    scores,
    starved,
)
from service.schemas import ActivityOut, DistributionStatsOut, ReporterOut, RunOut
from service.store.codec import KeptPlan, decode_plan
from service.store.redis_store import RunState

if TYPE_CHECKING:
    from service.run_cache import Run


def run_out(
    run: Run,
    state: RunState,
    stats: RunStats,
    strategy_state: np.ndarray,
    weights: np.ndarray,
    page: slice,
) -> RunOut:
    """The run's configuration, weights, per-distribution statistics (with what tells signal
    from exploration, and the starved and saturated flags) and its recent activity, the
    per-distribution parts for the distributions of ``page`` (a slice of the run's order with
    its start and stop in range)."""
    start, stop = page.start, page.stop
    rewards = state.inputs.rewards[page]
    score = scores(run.strategy, stats, strategy_state)[page]
    bonus = exploration_bonus(run.strategy, stats, strategy_state)[page]
    rehearsal = rehearsal_share(run.strategy, stats.k, strategy_state)[page]
    is_starved = starved(weights)[page]
    is_saturated = saturated(run.strategy, stats)[page]
    names = run.distributions[page]
    n, window_mean = stats.n[page], stats.window_mean[page]
    per_dist = {
        name: DistributionStatsOut(
            n=int(n[i]),
            window_mean=float(window_mean[i]),
            score=float(score[i]),
            weight=float(weights[start + i]),
            reward_n=int(rewards[i, 0]),
            reward_mean=float(rewards[i, 1]),
            reward_last=float(rewards[i, 2]),
            reward_best=float(rewards[i, 3]),
            exploration_bonus=float(bonus[i]),
            rehearsal_share=float(rehearsal[i]),
            starved=bool(is_starved[i]),
            saturated=bool(is_saturated[i]),
        )
        for i, name in enumerate(names)
    }
    activity = ActivityOut(
        reporters=[
            ReporterOut(rank=r.rank, step=r.step, version=r.version, at=r.at)
            for r in state.reporters or []
        ],
        last_step={
            name: step
            for name, step in zip(names, (state.last_step or [])[page], strict=False)
            if step is not None
        },
    )
    config = run.config_out()
    config.distributions = list(names)
    return RunOut(
        run_id=run.run_id,
        version=state.inputs.version,
        config=config,
        weights=dict(zip(names, np.asarray(weights[page]).tolist(), strict=True)),
        stats=per_dist,
        activity=activity,
        offset=start,
        total=run.k,
        next_offset=stop if stop < run.k else None,
    )


def plan_answer(run: Run, step: int, batch_size: int, kept: bytes, round: int = 0) -> bytes:
    """``POST /plan``'s answer (the JSON of a :class:`PlanOut`) from the plan the store keeps:
    the counts name the distributions, and the run's seed rebuilds the slot-by-slot
    assignment that was drawn (``assignment_of_counts``). A plan kept by an earlier version
    of the service as its answer's JSON is that answer (only round 0 was kept so)."""
    if kept[:1] == b"{":
        return kept
    plan = decode_plan(kept)
    counts = np.zeros(run.k, dtype=np.int64)
    counts[plan.index] = plan.count
    slots = assignment_of_counts(counts, plan_rng(run.seed, step, batch_size, round))
    return drawn_plan_answer(run, step, batch_size, plan, slots, round)


def drawn_plan_answer(
    run: Run, step: int, batch_size: int, plan: KeptPlan, slots: np.ndarray, round: int = 0
) -> bytes:
    """``POST /plan``'s answer from a plan and its slots' distributions (``slots``: the
    draw itself, or what :func:`plan_answer` rebuilds of it from the kept counts).

    The JSON :class:`PlanOut` gives (``model_dump_json``), byte for byte, joined from the
    run's names encoded once (:attr:`Run.names_json`): a plan names up to a batch of
    distributions, and building the model for it cost as much as the rest of a plan."""
    names = run.names_json
    counts = b",".join(
        [
            names[i] + b":%d" % c
            for i, c in zip(plan.index.tolist(), plan.count.tolist(), strict=True)
        ]
    )
    parts = [
        b'{"run_id":%s,"step":%d,"round":%d,"batch_size":%d,"version":%d,"counts":{%s},'
        % (to_json(run.run_id), step, round, batch_size, plan.version, counts),
        b'"assignment":[%s]' % b",".join([names[i] for i in slots.tolist()]),
    ]
    if plan.prompt_ids is not None:
        ids = ",".join(map(str, plan.prompt_ids.tolist())).encode()
        parts.append(b',"prompt_ids":[%s]' % ids)
    parts.append(b"}")
    return b"".join(parts)
