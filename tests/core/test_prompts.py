"""Prompt selection (:mod:`curriculum_core.prompts`) and its hooks in :class:`RunModel`,
against values worked out by hand.

Records are one byte: bits 0-4 the zero-variance streak, bit 5 "the streak is of solved
groups", bit 6 "ever solved". With the defaults (``keep`` starts at 0.5, ``max_skip`` 0.9)
a streak of ``z`` is skipped with probability ``min(0.9, 1 - 0.5 ** z)``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curriculum_core import PromptSelection, PromptState, ReportError, RunModel
from curriculum_core.params import parameters_of
from curriculum_core.prompts import (
    EVER_SOLVED,
    SMALL_POOL,
    SOLVED_STREAK,
    STREAK_MAX,
    _take,
    apply_outcomes,
    diagnostics,
    next_record,
    outcome_of,
    pass_key,
    pass_order,
    plan_prompts,
    prompt_rng,
    skip_probability,
)

DEFAULTS = PromptSelection()
SMALL_POOL_PLUS = SMALL_POOL + 1


def _groups(name: str, prompts: list[int], rewards: list[list[float]]) -> list[dict]:
    return [
        {"distribution": name, "prompt": p, "rewards": r}
        for p, r in zip(prompts, rewards, strict=True)
    ]


def _report(model: RunModel, rid: str, groups: list[dict]) -> None:
    """Apply ``groups`` with their advantages (group-centred) under ``rid``."""
    checked = model.validate_groups(groups)
    adv: dict[str, list[float]] = {}
    for g in checked:
        mean = sum(g.rewards) / len(g.rewards)
        adv.setdefault(g.distribution, []).extend(r - mean for r in g.rewards)
    assert model.apply(rid, adv, None, checked)


# --- the pass order -------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 7, 16, 17, 100, 1000, 4097])
def test_every_pass_is_a_permutation(n: int) -> None:
    for pass_number in (0, 1, 9):
        order = pass_order(pass_key(3, 1, pass_number), n, np.arange(n))
        assert sorted(order.tolist()) == list(range(n))


def test_passes_distributions_and_seeds_give_other_orders() -> None:
    n = 50
    base = pass_order(pass_key(0, 0, 0), n, np.arange(n)).tolist()
    for key in (pass_key(0, 0, 1), pass_key(0, 1, 0), pass_key(1, 0, 0)):
        assert pass_order(key, n, np.arange(n)).tolist() != base
    assert pass_order(pass_key(0, 0, 0), n, np.arange(n)).tolist() == base


def test_n_draws_over_n_prompts_take_each_once_when_nothing_is_skipped() -> None:
    model = RunModel(["a"], seed=5, prompts={"a": 37})
    ids = [
        p
        for step, size in enumerate((5, 16, 1, 15))
        for p in model.plan_step(step, size).prompt_ids
    ]
    assert sorted(ids) == list(range(37))
    more = model.plan_step(4, 37).prompt_ids  # the second pass: every prompt once more
    assert sorted(more) == list(range(37))
    assert diagnostics(model.prompts, model.names)["a"] | {} == {
        "prompts": 37, "pass": 2, "position": 0, "skipped": 0.0, "zero_variance": 0.0,
        "forced": 0, "keep": 0.5,
    }  # fmt: skip


def test_a_batch_larger_than_the_pool_finishes_one_pass_before_the_next() -> None:
    ids = RunModel(["a"], seed=1, prompts={"a": 3}).plan_step(0, 8).prompt_ids
    assert sorted(ids[:3]) == sorted(ids[3:6]) == [0, 1, 2]


# --- records and skip probabilities -------------------------------------------------------


def test_records_follow_the_groups() -> None:
    """next_record(record, zero_variance, solved, any_solved)."""
    wrong, right, mixed = (True, False, False), (True, True, True), (False, False, True)
    r = next_record(0, *wrong)
    assert r == 1  # an unsolved streak of 1, never solved
    r = next_record(r, *wrong)
    assert r == 2
    r = next_record(r, *mixed)
    assert r == EVER_SOLVED  # streak over; a rollout was solved
    r = next_record(r, *right)
    assert r == EVER_SOLVED | SOLVED_STREAK | 1
    r = next_record(r, *right)
    assert r == EVER_SOLVED | SOLVED_STREAK | 2
    r = next_record(r, *wrong)  # forgotten: a new streak, of the other kind
    assert r == EVER_SOLVED | 1
    for _ in range(40):
        r = next_record(r, *wrong)
    assert r == EVER_SOLVED | STREAK_MAX  # saturates
    assert r < 256


def test_outcome_of_a_group() -> None:
    assert outcome_of(0, 3, [1.0, 1.0], 0.0).zero_variance
    o = outcome_of(0, 3, [0.0, 1.0], 0.0)
    assert (o.zero_variance, o.solved, o.any_solved) == (False, False, True)
    o = outcome_of(0, 3, [0.2, 0.2], 0.5)  # a format reward under the bar: unsolved
    assert (o.zero_variance, o.solved, o.any_solved) == (True, False, False)


def test_skip_probability_rises_with_the_streak_and_is_capped() -> None:
    records = np.array([0, 1, 2, 3, 4, STREAK_MAX], dtype=np.uint8)
    p = skip_probability(records, 0.5, DEFAULTS)
    assert p.tolist() == pytest.approx([0.0, 0.5, 0.75, 0.875, 0.9, 0.9])
    assert skip_probability(records, 0.0, DEFAULTS).tolist() == [0.0, *[0.9] * 5]
    capped = PromptSelection(max_skip=0.6)
    assert skip_probability(records, 0.5, capped).tolist() == pytest.approx(
        [0.0, 0.5, 0.6, 0.6, 0.6, 0.6]
    )
    assert not skip_probability(records, 0.5, PromptSelection(mode="coverage")).any()


def test_a_forgotten_prompt_is_not_skipped() -> None:
    forgotten = np.array([EVER_SOLVED | 5], dtype=np.uint8)
    hopeless = np.array([5], dtype=np.uint8)
    mastered = np.array([EVER_SOLVED | SOLVED_STREAK | 5], dtype=np.uint8)
    assert skip_probability(forgotten, 0.5, DEFAULTS).tolist() == [0.0]
    assert skip_probability(hopeless, 0.5, DEFAULTS).tolist() == pytest.approx([0.9])
    assert skip_probability(mastered, 0.5, DEFAULTS).tolist() == pytest.approx([0.9])
    half = PromptSelection(forgotten_skip=0.5)
    assert skip_probability(forgotten, 0.5, half).tolist() == pytest.approx([0.45])


def test_max_skip_must_stay_below_one() -> None:
    with pytest.raises(ValueError, match="max_skip"):
        PromptSelection(max_skip=1.0)
    with pytest.raises(ValueError, match="unknown prompt_selection"):
        RunModel(["a"], prompts={"a": 2}, prompt_selection={"bogus": 1})
    names = [p.name for p in parameters_of(PromptSelection)]
    assert names[:2] == ["mode", "target_zero_variance"]


def test_take_forces_a_slot_after_max_skips_in_a_row() -> None:
    skip = np.array([True, True, True, False, True, True, True, True, True])
    taken, forced, used, run = _take(skip, 10, 0, 2)
    # rows: 1 2 [3 forced] 0(taken) 1 2 [3 forced] 1 2
    assert taken.tolist() == [2, 3, 6]
    assert forced.tolist() == [True, False, True]
    assert (used, run) == (9, 2)
    taken, forced, used, run = _take(np.array([True, False]), 1, 2, 2)  # carried row of 2
    assert (taken.tolist(), forced.tolist(), used, run) == ([0], [True], 1, 0)
    taken, _, used, _ = _take(np.array([False, False, False]), 2, 0, 2)
    assert (taken.tolist(), used) == ([0, 1], 2)


def test_a_distribution_of_hopeless_prompts_still_fills_its_slots() -> None:
    """Every prompt has a long unsolved streak and keep = 0: each is passed over with
    probability 0.9, and a slot is forced after 32 in a row; the slots are filled, and the
    skipped share and forced slots say so."""
    state = PromptState.initial([20])
    state = PromptState(**{**state.__dict__, "records": np.full(20, 9, dtype=np.uint8)})
    state = PromptState(**{**state.__dict__, "keep": np.zeros(1)})
    ids, after = plan_prompts(
        state, DEFAULTS, np.zeros(64, dtype=np.int64), 0, np.random.default_rng(0)
    )
    assert ids.size == 64 and ids.min() >= 0 and ids.max() < 20
    d = diagnostics(after, ["hard"])["hard"]
    assert 0.85 < d["skipped"] < 0.95  # about 9 in 10 drawn are passed over
    assert d["pass"] * 20 + d["position"] == int(after.considered[0]) > 64 * 5
    # with max_skips = 1 every second of a row is forced
    few = PromptSelection(max_skips=1)
    _, after = plan_prompts(state, few, np.zeros(64, dtype=np.int64), 0, np.random.default_rng(0))
    assert int(after.forced[0]) > 40


def test_keep_adapts_to_the_zero_variance_share() -> None:
    """keep 0.5, adapt 0.1, target 0.1: a report of 4 groups of which 3 are zero-variance
    gives share 0.75, keep 0.5 + 0.1 (0.1 - 0.75) = 0.435; the recent share is set to 0.75.
    A second report with no zero-variance group: keep 0.435 + 0.01 = 0.445, recent share
    0.9 * 0.75 = 0.675."""
    model = RunModel(["a", "b"], prompts={"a": 4, "b": 2})
    _report(model, "1", _groups("a", [0, 1, 2, 3], [[1, 1], [0, 0], [0, 0], [0, 1]]))
    assert model.prompts.keep.tolist() == pytest.approx([0.435, 0.5])
    assert model.prompts.zero_variance.tolist() == pytest.approx([0.75, 0.0])
    _report(model, "2", _groups("a", [0], [[0, 1]]))
    assert model.prompts.keep.tolist() == pytest.approx([0.445, 0.5])
    assert model.prompts.zero_variance.tolist() == pytest.approx([0.675, 0.0])
    assert model.prompts.records.tolist() == [EVER_SOLVED, 1, 1, EVER_SOLVED, 0, 0]
    assert model.prompts.groups.tolist() == [5, 0]
    coverage = RunModel(["a"], prompts={"a": 2}, prompt_selection={"mode": "coverage"})
    _report(coverage, "1", _groups("a", [0, 1], [[1, 1], [0, 0]]))
    assert coverage.prompts.keep.tolist() == [0.5]  # nothing to adapt


def test_skipped_prompts_come_back_less_often_but_come_back() -> None:
    """Prompt 0 of 4 is hopeless (a long unsolved streak), the rest are fresh: over 200
    passes it is taken in about 1 in 10 (skip 0.9 once keep has fallen), never 0."""
    model = RunModel(["a"], seed=2, prompts={"a": 4})
    for i in range(20):
        _report(model, f"w{i}", _groups("a", [0], [[0.0, 0.0]]))
    taken = [model.plan_step(step, 3).prompt_ids for step in range(200)]
    zero = sum(ids.count(0) for ids in taken)
    assert 0 < zero < 0.25 * 200
    others = sum(ids.count(1) for ids in taken)
    assert others > 150


def test_a_prompt_solved_once_and_then_forgotten_keeps_coming() -> None:
    """Prompt 0 was solved, then 20 all-wrong groups: forgotten, so it is drawn every pass,
    unlike prompt 1, all-wrong from the start."""
    model = RunModel(["a"], seed=4, prompts={"a": 3})
    _report(model, "s", _groups("a", [0], [[1.0, 0.0]]))
    for i in range(20):
        _report(model, f"w{i}", _groups("a", [0, 1], [[0.0, 0.0], [0.0, 0.0]]))
    ids = [p for step in range(100) for p in model.plan_step(step, 2).prompt_ids]
    passes = model.prompts.drawn[0] // 3
    assert ids.count(0) == passes  # once every pass
    assert ids.count(1) < passes / 4


# --- RunModel -------------------------------------------------------------------------------

MAIN_PLAN_0 = ["b", "b", "a", "a", "c", "b", "a", "a", "c", "b", "b", "a"]
MAIN_PLAN_3 = ["a", "a", "a", "a", "a", "a", "a", "a", "c", "a", "c", "a"]
"""What the core drew before prompts existed: seed 7, distributions a, b, c, batches of 12,
step 0 before any report and step 3 after one."""


@pytest.mark.parametrize("prompts", [None, {"a": 5, "b": 1, "c": 1000}])
def test_declaring_prompts_changes_no_distribution_draw(prompts: dict | None) -> None:
    model = RunModel(["a", "b", "c"], None, 7, prompts=prompts)
    assert model.plan_step(0, 12).assignment == MAIN_PLAN_0 == model.plan(0, 12)
    model.apply("r1", {"a": [1.0, -1.0], "b": [0.0, 0.0]}, {"a": [1, 0], "b": [1, 1]})
    assert model.plan_step(3, 12).assignment == MAIN_PLAN_3
    plan = model.plan_step(3, 12)
    assert (plan.prompt_ids is None) == (prompts is None)


def test_a_run_without_prompts_snapshots_as_before() -> None:
    snap = RunModel(["a", "b"], seed=1).snapshot()
    assert "prompt_state" not in snap
    assert set(snap["config"]) == {"distributions", "strategy", "seed", "created_at"}


def test_plans_are_fixed_by_the_first_request_and_deterministic() -> None:
    def run() -> tuple[RunModel, list[list[int]]]:
        model = RunModel(["a", "b"], seed=3, prompts={"a": 9, "b": 40})
        plans = []
        for step in range(6):
            plan = model.plan_step(step, 8)
            plans.append(plan.prompt_ids)
            rewards = [[float(p % 2), float(p % 2)] for p in plan.prompt_ids]
            groups = [
                {"distribution": d, "prompt": p, "rewards": r}
                for d, p, r in zip(plan.assignment, plan.prompt_ids, rewards, strict=True)
            ]
            _report(model, str(step), groups)
        return model, plans

    (first, plans), (_, again) = run(), run()
    assert plans == again
    drawn = first.prompts.drawn.copy()
    assert first.plan_step(5, 8).prompt_ids == plans[5]  # a repeat moves nothing
    assert first.prompts.drawn.tolist() == drawn.tolist()


def test_snapshot_round_trip_keeps_the_prompt_state() -> None:
    model = RunModel(
        ["a", "b"], seed=9, prompts={"a": 30, "b": 3}, prompt_selection={"max_skip": 0.8}
    )
    for step in range(5):
        plan = model.plan_step(step, 6)
        groups = [
            {"distribution": d, "prompt": p, "rewards": [0.0, float(p % 3 == 0)]}
            for d, p in zip(plan.assignment, plan.prompt_ids, strict=True)
        ]
        _report(model, f"r{step}", groups)
    snap = json.loads(json.dumps(model.snapshot()))
    assert snap["config"]["prompts"] == {"a": 30, "b": 3}
    assert snap["config"]["prompt_selection"]["max_skip"] == 0.8
    back = RunModel.from_snapshot(snap)
    assert back.snapshot() == snap
    assert back.prompts.records.tobytes() == model.prompts.records.tobytes()
    assert back.plan_step(5, 6) == model.plan_step(5, 6)


def test_a_snapshot_without_prompt_state_starts_the_prompts_afresh() -> None:
    model = RunModel(["a"], seed=1, prompts={"a": 4})
    model.plan_step(0, 3)
    snap = model.snapshot()
    del snap["prompt_state"]
    back = RunModel.from_snapshot(snap)
    assert back.prompts.drawn.tolist() == [0]


def test_bad_groups_are_refused() -> None:
    model = RunModel(["a"], prompts={"a": 4})
    for groups, match in [
        ([{"distribution": "x", "prompt": 0, "rewards": [1]}], "lacks"),
        ([{"distribution": "a", "prompt": 4, "rewards": [1]}], r"\[0, 4\)"),
        ([{"distribution": "a", "prompt": True, "rewards": [1]}], "integer"),
        ([{"distribution": "a", "prompt": 1, "rewards": []}], "one or more"),
        ([{"distribution": "a", "prompt": 1, "rewards": [float("nan")]}], "finite"),
    ]:
        with pytest.raises(ReportError, match=match):
            model.validate_groups(groups)
    with pytest.raises(ReportError, match="declares none"):
        RunModel(["a"]).validate_groups([{"distribution": "a", "prompt": 0, "rewards": [1]}])
    with pytest.raises(ValueError, match="every distribution"):
        RunModel(["a", "b"], prompts={"a": 4})


def test_a_million_prompts_take_a_megabyte() -> None:
    state = PromptState.initial([500_000, 500_000])
    assert state.records.nbytes == 1_000_000 <= 8 * 2**20
    snap = state.to_json()
    assert len(snap["records"]) < 1.5e6
    assert PromptState.from_json([500_000, 500_000], snap).records.nbytes == 1_000_000


def test_outcomes_of_one_prompt_apply_in_order() -> None:
    state = PromptState.initial([2])
    outs = [outcome_of(0, 1, [0.0, 0.0], 0.0), outcome_of(0, 1, [0.0, 0.0], 0.0)]
    assert apply_outcomes(state, DEFAULTS, outs).records.tolist() == [0, 2]


def test_kept_whole_passes_match_the_direct_order() -> None:
    """Small pools read each pass from a kept order; it is the Feistel order itself."""
    from curriculum_core.prompts import prompts_at

    n = 45
    direct = np.concatenate([pass_order(pass_key(6, 2, t), n, np.arange(n)) for t in range(3)])
    assert prompts_at(6, 2, n, 10, 100).tolist() == direct[10:110].tolist()


def test_kept_blocks_of_large_pools_match_the_direct_order() -> None:
    """Pools over SMALL_POOL read each pass a kept block at a time; across blocks and passes
    it is the Feistel order itself."""
    from curriculum_core.prompts import PASS_BLOCK, SMALL_POOL, prompts_at

    n = SMALL_POOL + 3 * PASS_BLOCK // 2  # a last block shorter than the others
    near_end = n - PASS_BLOCK // 2 - 7
    want = np.concatenate(
        [
            pass_order(pass_key(6, 2, 0), n, np.arange(near_end, n)),
            pass_order(pass_key(6, 2, 1), n, np.arange(0, PASS_BLOCK + 5)),
        ]
    )
    got = prompts_at(6, 2, n, near_end, want.size)
    assert got.tolist() == want.tolist()
    middle = prompts_at(6, 2, n, PASS_BLOCK - 3, 6)  # the seam of blocks 0 and 1
    assert (
        middle.tolist()
        == pass_order(pass_key(6, 2, 0), n, np.arange(PASS_BLOCK - 3, PASS_BLOCK + 3)).tolist()
    )


def test_plans_of_a_large_pool_walk_each_block_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cycle walk costs about as much for a few positions as for a block of them: plans
    over pools past SMALL_POOL walk a block once, then read it (a million prompts over 12
    distributions: one walk per distribution for thousands of plans)."""
    import curriculum_core.prompts as prompts

    walks: list[int] = []
    real = prompts.pass_order

    def counted(keys: np.ndarray, n: int, positions: np.ndarray) -> np.ndarray:
        walks.append(len(positions))
        return real(keys, n, positions)

    monkeypatch.setattr(prompts, "pass_order", counted)
    prompts._KEPT.clear()
    state = PromptState.initial([83_334] * 12)
    assignment = np.arange(128) % 12
    for step in range(20):
        _, state = plan_prompts(state, DEFAULTS, assignment, 99, np.random.default_rng(step))
    assert walks == [prompts.PASS_BLOCK] * 12


def test_the_cost_of_a_plan_counts_the_pass_orders_not_kept() -> None:
    """A plan's first candidates, plus the positions of each pass order it reads that must
    be walked first: a whole pass of a small pool, a block of a large one; nothing once kept."""
    import curriculum_core.prompts as prompts

    prompts._KEPT.clear()
    state = PromptState.initial([1000, 83_334])
    assignment = np.array([0] * 10 + [1] * 20)
    candidates = (2 * 10 + 16) + (2 * 20 + 16)
    assert prompts.plan_cost(state, assignment, 7) == candidates + 1000 + prompts.PASS_BLOCK
    _, after = plan_prompts(state, DEFAULTS, assignment, 7, np.random.default_rng(0))
    assert prompts.plan_cost(after, assignment, 7) == candidates
    assert prompts.plan_cost(after, assignment, 8) > candidates  # another seed: other orders


def _serial_plan_prompts(
    state: PromptState,
    selection: PromptSelection,
    assignment: np.ndarray,
    seed: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, PromptState]:
    """The rule of plan_prompts as its docstring states it, one distribution after the other
    and one chunk after the other: what the batched implementation must match."""
    from dataclasses import replace

    from curriculum_core.prompts import RECENT_ALPHA, prompts_at

    slots = np.asarray(assignment, dtype=np.int64)
    ids = np.empty(slots.size, dtype=np.int64)
    drawn, forced = state.drawn.copy(), state.forced.copy()
    considered, skipped_now = np.zeros_like(drawn), np.zeros_like(drawn)
    for j in np.unique(slots).tolist():
        where = np.flatnonzero(slots == j)
        n, need = int(state.counts[j]), where.size
        chosen: list[np.ndarray] = []
        run, chunk = 0, 2 * need + 16
        while need:
            size = min(chunk, need * (selection.max_skips + 1))
            cand = prompts_at(seed, j, n, int(drawn[j]), size)
            if selection.mode == "coverage":
                skip = np.zeros(size, dtype=bool)
            else:
                records = state.records[state.offsets[j] + cand]
                skip = rng.random(size) < skip_probability(records, state.keep[j], selection)
            taken, was_forced, used, run = _take(skip, need, run, selection.max_skips)
            chosen.append(cand[taken])
            drawn[j] += used
            considered[j] += used
            skipped_now[j] += int(skip[:used].sum()) - int(was_forced.sum())
            forced[j] += int(was_forced.sum())
            need -= taken.size
            chunk *= 4
        ids[where] = np.concatenate(chosen)
    hit = considered > 0
    share = skipped_now / np.maximum(considered, 1)
    moved = (1 - RECENT_ALPHA) * state.skipped + RECENT_ALPHA * share
    recent = np.where(hit, np.where(state.considered == 0, share, moved), state.skipped)
    after = replace(
        state,
        drawn=drawn,
        forced=forced,
        considered=state.considered + considered,
        skipped=recent,
    )
    return ids, after


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_plans_match_the_rule_served_one_distribution_at_a_time(data: st.DataObject) -> None:
    """All first chunks are drawn and taken together, and a distribution they leave short
    goes on chunk by chunk before the next one: the same prompts, cursors, counts and skip
    draws as serving each distribution in turn, whatever the pools (a prompt or 100,000), the
    streaks (no skip, heavy skipping, forced slots) and the batch."""
    k = data.draw(st.integers(1, 8))
    big = st.integers(SMALL_POOL_PLUS, SMALL_POOL_PLUS + 40_000)
    counts = data.draw(st.lists(st.one_of(st.integers(1, 40), big), min_size=k, max_size=k))
    seed = data.draw(st.integers(0, 2**32))
    state = PromptState.initial(counts)
    rng = np.random.default_rng(seed)
    streaks = data.draw(st.sampled_from(["none", "some", "long"]))
    records = rng.integers(0, 128, state.records.size).astype(np.uint8)
    if streaks == "none":
        records[:] = 0
    elif streaks == "long":
        records |= STREAK_MAX
    from dataclasses import replace

    state = replace(
        state,
        records=records,
        drawn=rng.integers(0, 3 * np.asarray(counts) + 1),
        keep=rng.random(k) * data.draw(st.sampled_from([1.0, 1e-6])),
        forced=rng.integers(0, 5, k),
        considered=rng.integers(0, 9, k) * data.draw(st.sampled_from([0, 1])),
        skipped=rng.random(k),
    )
    selection = PromptSelection(
        mode=data.draw(st.sampled_from(["skip", "skip", "coverage"])),
        max_skip=data.draw(st.sampled_from([0.0, 0.5, 0.9, 0.999])),
        max_skips=data.draw(st.sampled_from([1, 2, 5, 32])),
        forgotten_skip=data.draw(st.sampled_from([0.0, 0.5])),
    )
    assignment = np.asarray(data.draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=300)))
    step = data.draw(st.integers(0, 1000))
    got_ids, got = plan_prompts(state, selection, assignment, seed, prompt_rng(seed, step, 9))
    want_ids, want = _serial_plan_prompts(
        state, selection, assignment, seed, prompt_rng(seed, step, 9)
    )
    assert got_ids.tolist() == want_ids.tolist()
    for name in ("drawn", "forced", "considered", "skipped", "keep", "zero_variance", "groups"):
        assert getattr(got, name).tolist() == getattr(want, name).tolist(), name
