"""Prompt selection: which prompt of a distribution fills each slot of a plan.

The run's strategy chooses the distribution of every slot; this module chooses the prompt,
for runs that declare how many prompts each distribution has (``prompts: {dist: n}``;
prompt ids are ``0..n-1`` in the trainer's order of that distribution's rows). Two rules:

- **Coverage.** Inside a distribution, prompts come in passes: pass ``t`` visits every
  prompt once, in the order of a seeded permutation of ``0..n-1`` derived from
  ``(seed, distribution index, t)`` (:func:`pass_order`), so nothing but a per-distribution
  count of prompts drawn (``drawn``: pass ``drawn // n``, position ``drawn % n``) is stored.
- **Selection** (``mode="skip"``, the default). A prompt whose last ``z`` groups were all
  zero-variance (every rollout the same reward: all advantages 0, nothing learnt) is passed
  over, before any rollout, with probability ``min(max_skip, 1 - keep_j ** z)``
  (:func:`skip_probability`): it rises with the streak and stays below 1, so a skipped
  prompt always comes back. ``keep_j`` adapts per distribution after each report towards a
  target share of zero-variance groups (``keep_j += adapt * (target - share)``, within
  [0, 1]). A passed-over prompt is done for this pass; its streak is unchanged.

GRESO (Zheng et al. 2025, arXiv 2506.02177) found prompt value temporally consistent (a
prompt zero-variance in one epoch mostly stays so) and skips prompts by their recent
zero-variance history with a probability adapted to a target; the rule above is ours.

Two guards:

- **Forgetting is not hopelessness.** A prompt with an all-wrong streak that once had a
  solved rollout (reward above ``solved_above``) was forgotten, not hopeless: its skip
  probability is multiplied by ``forgotten_skip`` (default 0: never skipped), so skipping
  cannot lock forgetting in.
- **No silent starvation.** After ``max_skips`` passed-over prompts in a row for one slot,
  the next prompt fills the slot whatever its prediction (a *forced* slot, counted per
  distribution). A distribution whose prompts are all predicted uninformative therefore
  still yields prompts; :func:`diagnostics` shows its skipped share, its zero-variance share
  and its forced slots.

Per-prompt state is one byte (:data:`STREAK_BITS` bits of zero-variance streak, saturating,
whether that streak is of solved or unsolved groups, and whether the prompt was ever
solved): a million prompts take 1 MB. Everything here is a pure function of its arguments
and a seed (no clock, no global randomness), so the service runs the same code on what it
reads from Redis, and every rank of a run gets the same prompts.
"""

from __future__ import annotations

import base64
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

import numpy as np

from curriculum_core.params import check_params, param

STREAK_BITS = 5
STREAK_MAX = (1 << STREAK_BITS) - 1
"""The zero-variance streak saturates here (bits 0-4 of a record)."""
SOLVED_STREAK = 1 << 5
"""Record bit: the current streak is of solved groups (every reward above ``solved_above``);
unset, of unsolved ones."""
EVER_SOLVED = 1 << 6
"""Record bit: some rollout of the prompt was once solved."""

INITIAL_KEEP = 0.5
"""``keep_j`` before any report: a prompt with a streak of 1 is skipped half the time."""

RECENT_ALPHA = 0.1
"""Weight of each plan (report) in a distribution's recent skipped (zero-variance) share."""

MAX_PROMPTS = 2**40
"""The most prompts one distribution may declare (the service bounds it lower)."""

PROMPT_STREAM = 0x70726F6D
"""Tag that keeps prompt randomness a separate stream from the plan's distribution draws."""

_ROUNDS = 4


@dataclass(frozen=True)
class PromptSelection:
    """A run's prompt selection parameters (``prompt_selection`` at creation).

    ``mode``: ``skip`` (the default) passes over prompts predicted to give a zero-variance
    group; ``coverage`` only draws every prompt once per pass. ``target_zero_variance``:
    the share of a distribution's reported groups that may be zero-variance before its
    skipping tightens. ``max_skip``: the highest skip probability (below 1, so every prompt
    comes back). ``adapt``: the step of ``keep_j`` per report. ``forgotten_skip``: factor on
    the skip probability of an unsolved streak on a prompt once solved (0: never skipped).
    ``solved_above``: a rollout with a reward above this solved its prompt (0 for 0/1
    rewards). ``max_skips``: prompts passed over in a row for one slot before the next one
    fills it regardless.
    """

    mode: Literal["skip", "coverage"] = "skip"
    target_zero_variance: float = param(0.1, ge=0, le=1)
    max_skip: float = param(0.9, ge=0, lt=1)
    adapt: float = param(0.1, ge=0, le=1)
    forgotten_skip: float = param(0.0, ge=0, le=1)
    solved_above: float = param(0.0, ge=-1e38, le=1e38)
    max_skips: int = param(32, ge=1, le=1000)

    def __post_init__(self) -> None:
        check_params(self)


def selection_from_dict(data: Mapping[str, Any] | None) -> PromptSelection:
    """Prompt selection parameters from their wire form (None: the defaults).

    Raises ``ValueError`` naming an unknown parameter or a value out of range.
    """
    params = dict(data or {})
    allowed = {f.name for f in fields(PromptSelection)}
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise ValueError(
            f"unknown prompt_selection parameter(s) {unknown}; it takes {sorted(allowed)}"
        )
    return PromptSelection(**params)


def selection_to_dict(selection: PromptSelection) -> dict[str, Any]:
    """The wire form of prompt selection parameters, every one spelled out."""
    return {f.name: getattr(selection, f.name) for f in fields(selection)}


# --- the pass order -----------------------------------------------------------------------


def pass_key(seed: int, distribution: int, pass_number: int) -> np.ndarray:
    """The four round keys (uint64) of pass ``pass_number`` of distribution ``distribution``."""
    seq = np.random.SeedSequence([seed, PROMPT_STREAM, distribution, pass_number])
    return seq.generate_state(_ROUNDS, np.uint64)


_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _feistel(x: np.ndarray, keys: np.ndarray, half: int) -> np.ndarray:
    mask = np.uint64((1 << half) - 1)
    shift = np.uint64(half)
    left, right = x >> shift, x & mask
    for key in keys:
        left, right = right, left ^ (_mix(right ^ key) & mask)
    return (left << shift) | right


def pass_order(keys: np.ndarray, n: int, positions: np.ndarray) -> np.ndarray:
    """The prompts at ``positions`` (each in ``0..n-1``) of the pass keyed by ``keys``.

    A bijection of ``0..n-1``: a 4-round Feistel network on the ``2 * h`` bits above ``n``,
    cycle-walked back into range. O(1) per position, whatever ``n``, so a plan costs the
    same for a hundred prompts as for a billion. Returns int64, the shape of ``positions``.
    """
    half = max(1, math.ceil((n - 1).bit_length() / 2))
    x = np.asarray(positions, dtype=np.uint64).copy()
    with np.errstate(over="ignore"):
        x = _feistel(x, keys, half)
        out = np.flatnonzero(x >= np.uint64(n))
        while out.size:
            x[out] = _feistel(x[out], keys, half)
            out = out[x[out] >= np.uint64(n)]
    return x.astype(np.int64)


SMALL_POOL = 1 << 16
"""Distributions of at most this many prompts have each pass's whole order computed once
and kept; larger ones have it computed and kept a block of :data:`PASS_BLOCK` positions at a
time (:data:`_KEPT`): the same numbers, fewer calls (the cycle walk's rounds cost about as
much for a few positions as for thousands)."""

PASS_BLOCK = 1 << 14
"""Positions of a kept block of a large pool's pass."""

KEPT_POSITIONS = 1 << 22
"""Positions of kept pass orders, all runs together (32 MiB): the least recently used are
dropped past it."""


def _span(n: int, block: int) -> tuple[int, int]:
    """The first position and the length of kept order ``block`` of a pass over ``n``
    prompts (a small pool's block 0 is its whole pass)."""
    if n <= SMALL_POOL:
        return 0, n
    first = block * PASS_BLOCK
    return first, min(PASS_BLOCK, n - first)


class _KeptOrders:
    """Pass orders computed once and kept, by ``(seed, distribution, pass, n, block)``,
    within :data:`KEPT_POSITIONS` positions (the least recently used dropped first). Plans
    may be computed in several threads at once."""

    def __init__(self, max_positions: int) -> None:
        self._orders: OrderedDict[tuple[int, int, int, int, int], np.ndarray] = OrderedDict()
        self._positions = 0
        self._max_positions = max_positions
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[int, int, int, int, int]) -> bool:
        return key in self._orders

    def order(
        self, seed: int, distribution: int, pass_number: int, n: int, block: int
    ) -> np.ndarray:
        key = (seed, distribution, pass_number, n, block)
        with self._lock:
            found = self._orders.get(key)
            if found is not None:
                self._orders.move_to_end(key)
                return found
        first, length = _span(n, block)
        keys = pass_key(seed, distribution, pass_number)
        order = pass_order(keys, n, np.arange(first, first + length))
        order.flags.writeable = False
        with self._lock:
            if key not in self._orders:
                self._orders[key] = order
                self._positions += order.size
                while self._positions > self._max_positions and len(self._orders) > 1:
                    _, dropped = self._orders.popitem(last=False)
                    self._positions -= dropped.size
        return order

    def clear(self) -> None:
        with self._lock:
            self._orders.clear()
            self._positions = 0


_KEPT = _KeptOrders(KEPT_POSITIONS)


def prompts_at(seed: int, distribution: int, n: int, start: int, count: int) -> np.ndarray:
    """The ``count`` prompts a distribution of ``n`` prompts yields from its ``start``-th
    draw on (draw ``d`` is position ``d % n`` of pass ``d // n``), int64."""
    out = np.empty(count, dtype=np.int64)
    _fill_prompts(out, seed, distribution, n, start)
    return out


def _fill_prompts(out: np.ndarray, seed: int, distribution: int, n: int, start: int) -> None:
    """Write into ``out`` the ``len(out)`` prompts of :func:`prompts_at` from ``start`` on."""
    count = out.size
    done = 0
    while done < count:
        pass_number, block, position = _where(n, start + done)
        order = _KEPT.order(seed, distribution, pass_number, n, block)
        take = min(count - done, order.size - position)
        out[done : done + take] = order[position : position + take]
        done += take


def _where(n: int, draw: int) -> tuple[int, int, int]:
    """The pass, the kept block and the position in that block of draw ``draw`` of a
    distribution of ``n`` prompts."""
    pass_number, position = divmod(draw, n)
    if n <= SMALL_POOL:
        return pass_number, 0, position
    block, position = divmod(position, PASS_BLOCK)
    return pass_number, block, position


def plan_cost(state: PromptState, assignment: np.ndarray, seed: int) -> int:
    """About how many items choosing the prompts of a plan whose distributions are
    ``assignment`` handles (:func:`plan_prompts`): the candidates of the first chunks, and
    the positions of the pass orders they read that are not kept (walked first); a caller
    runs a large one off its event loop."""
    per_distribution = np.bincount(np.asarray(assignment, dtype=np.int64))
    dists = np.flatnonzero(per_distribution)
    cost = 0
    for j, need, n, start in zip(
        dists.tolist(),
        per_distribution[dists].tolist(),
        state.counts[dists].tolist(),
        state.drawn[dists].tolist(),
        strict=True,
    ):
        size = 2 * need + 16
        cost += size
        first, last = _where(n, start), _where(n, start + size - 1)
        for pass_number, block in {first[:2], last[:2]}:
            if (seed, j, pass_number, n, block) not in _KEPT:
                cost += _span(n, block)[1]
    return cost


# --- per-prompt records -------------------------------------------------------------------


def skip_probability(
    records: np.ndarray, keep: float | np.ndarray, selection: PromptSelection
) -> np.ndarray:
    """The probability of passing over each prompt of ``records`` (uint8), shape as given;
    ``keep`` is its distribution's, one for all or one per prompt.

    ``min(max_skip, 1 - keep ** z)`` for a streak of ``z`` zero-variance groups (0 while
    ``z = 0``), times ``forgotten_skip`` for an unsolved streak of a prompt once solved;
    0 everywhere in ``coverage`` mode.
    """
    rec = np.asarray(records, dtype=np.uint8)
    if selection.mode == "coverage":
        return np.zeros(rec.shape)
    streak = (rec & STREAK_MAX).astype(np.float64)
    p = np.minimum(selection.max_skip, 1.0 - np.power(np.asarray(keep, dtype=np.float64), streak))
    # ever solved, and the streak is not of solved groups
    forgotten = (rec & (EVER_SOLVED | SOLVED_STREAK)) == EVER_SOLVED
    return np.where(forgotten, selection.forgotten_skip * p, p)


def next_record(record: int, zero_variance: bool, solved: bool, any_solved: bool) -> int:
    """A prompt's record after one group of it was reported.

    ``zero_variance``: every reward of the group was equal; ``solved``: every one was above
    ``solved_above``; ``any_solved``: at least one was. A zero-variance group extends the
    streak if it is of the same kind (solved or not) and starts a streak of 1 otherwise, so
    a solved prompt that turns all-wrong starts afresh; any other group ends the streak.
    """
    ever = (record & EVER_SOLVED) | (EVER_SOLVED if any_solved else 0)
    if not zero_variance:
        return ever
    kind = SOLVED_STREAK if solved else 0
    streak = record & STREAK_MAX
    same = streak > 0 and (record & SOLVED_STREAK) == kind
    return ever | kind | (min(streak + 1, STREAK_MAX) if same else 1)


@dataclass(frozen=True)
class GroupOutcome:
    """What one reported group says about its prompt (see :func:`next_record`)."""

    distribution: int
    prompt: int
    zero_variance: bool
    solved: bool
    any_solved: bool


def outcome_of(
    distribution: int, prompt: int, rewards: Sequence[float], solved_above: float
) -> GroupOutcome:
    """The outcome of one group of rewards (at least one) of ``prompt``."""
    low, high = min(rewards), max(rewards)
    return GroupOutcome(distribution, prompt, low == high, low > solved_above, high > solved_above)


def updated_records(
    current: Mapping[int, int], flat_ids: Sequence[int], outcomes: Sequence[GroupOutcome]
) -> dict[int, int]:
    """The new record of every prompt the outcomes name, applied in order (a prompt named
    twice moves twice). ``current`` holds the records of those prompts by flat id
    (``offsets[j] + prompt``); so does the result. The service reads and writes just those
    bytes."""
    out = dict(current)
    for flat, o in zip(flat_ids, outcomes, strict=True):
        out[flat] = next_record(out[flat], o.zero_variance, o.solved, o.any_solved)
    return out


# --- the state of a run's prompts -------------------------------------------------------------


@dataclass(frozen=True)
class PromptState:
    """Everything prompt selection keeps for one run; arrays of shape ``(K,)`` unless said.

    ``counts``: prompts per distribution. ``records``: one byte per prompt, distribution
    after distribution, shape ``(sum counts,)``. ``drawn``: prompts drawn (taken or passed
    over) so far. ``keep``: the adaptive base of the skip probability. ``skipped`` and
    ``zero_variance``: recent shares (weight :data:`RECENT_ALPHA` per plan or report) of
    the prompts drawn that were passed over, and of the groups reported that were
    zero-variance. ``considered`` and ``groups``: their cumulative counts. ``forced``: slots
    filled past ``max_skips``.
    """

    counts: np.ndarray
    records: np.ndarray
    drawn: np.ndarray
    keep: np.ndarray
    skipped: np.ndarray
    zero_variance: np.ndarray
    considered: np.ndarray
    groups: np.ndarray
    forced: np.ndarray

    @classmethod
    def initial(cls, counts: Sequence[int]) -> PromptState:
        """The state before any plan, for distributions of ``counts`` prompts."""
        c = np.asarray(counts, dtype=np.int64)
        if c.ndim != 1 or c.size == 0 or c.min() < 1 or c.max() > MAX_PROMPTS:
            raise ValueError(f"prompt counts must be between 1 and {MAX_PROMPTS}, got {list(c)}")
        k = c.size
        zeros = np.zeros(k, dtype=np.int64)
        return cls(
            counts=c,
            records=np.zeros(int(c.sum()), dtype=np.uint8),
            drawn=zeros.copy(),
            keep=np.full(k, INITIAL_KEEP),
            skipped=np.zeros(k),
            zero_variance=np.zeros(k),
            considered=zeros.copy(),
            groups=zeros.copy(),
            forced=zeros.copy(),
        )

    @property
    def offsets(self) -> np.ndarray:
        """Where each distribution's records start in ``records``, shape ``(K,)``."""
        return np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)

    def to_json(self) -> dict[str, Any]:
        """The state for a snapshot: records as base64 of their bytes, the rest as lists."""
        out: dict[str, Any] = {"records": base64.b64encode(self.records.tobytes()).decode()}
        for f in fields(self):
            if f.name not in ("counts", "records"):
                out[f.name] = getattr(self, f.name).tolist()
        return out

    @classmethod
    def from_json(cls, counts: Sequence[int], data: Mapping[str, Any]) -> PromptState:
        """The state :meth:`to_json` wrote, for distributions of ``counts`` prompts.

        Raises ``ValueError`` when its sizes do not fit ``counts``.
        """
        fresh = cls.initial(counts)
        records = np.frombuffer(base64.b64decode(data["records"]), dtype=np.uint8).copy()
        if records.shape != fresh.records.shape:
            raise ValueError(
                f"the snapshot holds {records.size} prompt records; the run has "
                f"{fresh.records.size} prompts"
            )
        arrays: dict[str, Any] = {"records": records}
        for f in fields(cls):
            if f.name in ("counts", "records"):
                continue
            like = getattr(fresh, f.name)
            value = np.asarray(data.get(f.name, like), dtype=like.dtype)
            if value.shape != like.shape:
                raise ValueError(f"prompt state {f.name!r} must have {like.size} values")
            arrays[f.name] = value
        return replace(fresh, **arrays)


def _recent(old: np.ndarray, seen: np.ndarray, share: np.ndarray, hit: np.ndarray) -> np.ndarray:
    """Recent shares after one plan or report: the first observation sets the share, each
    later one moves it by :data:`RECENT_ALPHA`; distributions without one keep theirs."""
    moved = np.where(seen == 0, share, (1 - RECENT_ALPHA) * old + RECENT_ALPHA * share)
    return np.where(hit, moved, old)


def _take(
    skip: np.ndarray, need: int, run: int, max_skips: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Which candidates fill slots, in order: those not passed over, and every
    ``max_skips + 1``-th of a row of passed-over ones (forced). ``run``: passed over in a
    row before the first candidate. Returns the taken indices (at most ``need``), which of
    them were forced, the candidates used, and the row length after them."""
    idx = np.arange(skip.size)
    last = np.maximum.accumulate(np.where(skip, -1 - run, idx))
    row = idx - last  # passed over in a row up to and including each candidate
    forced = skip & (row % (max_skips + 1) == 0)
    taken = np.flatnonzero(~skip | forced)[:need]
    used = int(taken[-1]) + 1 if taken.size == need else skip.size
    after = int(row[used - 1] % (max_skips + 1)) if used and skip[used - 1] else 0
    return taken, forced[taken], used, after


def plan_prompts(
    state: PromptState,
    selection: PromptSelection,
    assignment: np.ndarray,
    seed: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, PromptState]:
    """The prompt of each slot of a plan whose distributions are ``assignment``, and the
    state after it (cursors and recent skipped shares moved; records unchanged, shared).

    Distributions are served in index order, each its slots in order, the skip draws from
    ``rng`` (:func:`prompt_rng`): a distribution with ``s`` slots draws its candidates in
    chunks, ``min(2 s + 16, s (max_skips + 1))`` first, four times as many each time after,
    until its slots are filled. Returns the prompt ids (int64, parallel to ``assignment``)
    and the new state.
    """
    slots = np.asarray(assignment, dtype=np.int64)
    per_distribution = np.bincount(slots, minlength=state.counts.size)
    dists = np.flatnonzero(per_distribution)
    needs = per_distribution[dists]
    tally = _Tally(state)
    draws = _Draws(rng) if selection.mode == "skip" else None
    chosen: list[np.ndarray] = []
    start = 0
    while start < dists.size:
        # every first chunk at once; a distribution that they leave short is served on, chunk
        # by chunk, before the next ones' first chunks (the skip draws stay in their order)
        taken, served, short = _first_chunks(
            state, selection, dists[start:], needs[start:], seed, draws, tally
        )
        chosen.append(taken)
        start += served
        if short is not None:
            chosen.append(
                _more_chunks(state, selection, int(dists[start]), short, seed, draws, tally)
            )
            start += 1
    ids = np.empty(slots.size, dtype=np.int64)
    ids[np.argsort(slots, kind="stable")] = np.concatenate(chosen) if chosen else []
    hit = tally.considered > 0
    share = tally.skipped / np.maximum(tally.considered, 1)
    new = replace(
        state,
        drawn=tally.drawn,
        forced=tally.forced,
        considered=state.considered + tally.considered,
        skipped=_recent(state.skipped, state.considered, share, hit),
    )
    return ids, new


class _Tally:
    """What a plan's draws count per distribution: the cursors and forced slots after it
    (``drawn``, ``forced``), and the candidates it used and passed over (``considered``,
    ``skipped``)."""

    def __init__(self, state: PromptState) -> None:
        self.drawn = state.drawn.copy()
        self.forced = state.forced.copy()
        self.considered = np.zeros_like(self.drawn)
        self.skipped = np.zeros_like(self.drawn)


class _Draws:
    """A plan's skip draws: ``rng.random``'s stream, read ahead (``peek``) and then spent
    (``spend``) in the order the rule uses them, drawn when first needed (``random(a)`` then
    ``random(b)`` give the numbers of one ``random(a + b)``)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng
        self._values = np.empty(0)
        self._used = 0

    def peek(self, n: int) -> np.ndarray:
        """The next ``n`` numbers not spent yet."""
        missing = self._used + n - self._values.size
        if missing > 0:
            more = self._rng.random(missing)
            self._values = np.concatenate([self._values, more]) if self._values.size else more
        return self._values[self._used : self._used + n]

    def spend(self, n: int) -> None:
        self._used += n


@dataclass(frozen=True)
class _Short:
    """A distribution its first chunk left short: its prompts taken so far, the slots still
    to fill, the passed-over row carried into its next chunk and that chunk's size bound."""

    taken: np.ndarray
    need: int
    run: int
    chunk: int


def _first_chunks(
    state: PromptState,
    selection: PromptSelection,
    dists: np.ndarray,
    needs: np.ndarray,
    seed: int,
    draws: _Draws | None,
    tally: _Tally,
) -> tuple[np.ndarray, int, _Short | None]:
    """The first chunk of candidates of each of ``dists`` (ascending, ``needs`` slots each),
    computed together, as :func:`_take` would take them one distribution after the other.

    Returns the prompts taken, in distribution order, and how many distributions their
    first chunk served; the first distribution left short (if any) is counted in ``tally``
    for its first chunk and returned with what its next chunk starts from, and nothing of
    the distributions after it is taken (their chunks come after its next ones)."""
    period = selection.max_skips + 1
    sizes = np.minimum(2 * needs + 16, needs * period)
    ends = np.cumsum(sizes)
    begins = ends - sizes
    total = int(ends[-1])
    seg = np.repeat(np.arange(dists.size), sizes)
    cand = np.empty(total, dtype=np.int64)
    for j, n, start, first, end in zip(
        dists.tolist(),
        state.counts[dists].tolist(),
        tally.drawn[dists].tolist(),
        begins.tolist(),
        ends.tolist(),
        strict=True,
    ):
        _fill_prompts(cand[first:end], seed, j, n, start)
    skip = None
    if draws is not None:
        records = state.records[state.offsets[dists][seg] + cand]
        uniform = draws.peek(total)
        if (records & STREAK_MAX).any():  # else no candidate may be passed over
            skip = uniform < skip_probability(records, state.keep[dists][seg], selection)
    if skip is None or not skip.any():
        # nothing passed over: each distribution takes its first candidates
        if draws is not None:
            draws.spend(total)
        tally.drawn[dists] += needs
        tally.considered[dists] += needs
        return cand[np.arange(total) - begins[seg] < needs[seg]], dists.size, None
    idx = np.arange(total)
    # passed over in a row up to each candidate, counted from its distribution's first
    row = idx - np.maximum.accumulate(np.where(skip, begins[seg] - 1, idx))
    forced = skip & (row % period == 0)
    takeable = ~skip | forced
    before = np.zeros(total + 1, dtype=np.int64)  # takeable candidates before each one
    np.cumsum(takeable, out=before[1:])
    # where each distribution's last slot is filled (past its chunk: it is left short)
    filled = np.searchsorted(before, before[begins] + needs) - 1
    short = np.flatnonzero(filled >= ends)
    served = int(short[0]) if short.size else dists.size
    last = served + 1 if short.size else served  # the chunks that count
    stop = int(ends[last - 1])
    used = np.where(filled >= ends, sizes, filled - begins + 1)[:last]
    within = idx[:stop] < (begins[:last] + used)[seg[:stop]]
    taken = takeable[:stop] & within
    n_forced = np.add.reduceat(forced[:stop] & within, begins[:last])
    d = dists[:last]
    tally.drawn[d] += used
    tally.considered[d] += used
    tally.forced[d] += n_forced
    tally.skipped[d] += np.add.reduceat(skip[:stop] & within, begins[:last]) - n_forced
    assert draws is not None
    draws.spend(stop)
    if not short.size:
        return cand[taken], served, None
    split = int(begins[served])
    rest = _Short(
        taken=cand[split:stop][taken[split:]],
        need=int(needs[served] - (before[stop] - before[split])),
        run=int(row[stop - 1] % period) if skip[stop - 1] else 0,
        chunk=int(2 * needs[served] + 16) * 4,
    )
    return cand[:split][taken[:split]], served, rest


def _more_chunks(
    state: PromptState,
    selection: PromptSelection,
    j: int,
    short: _Short,
    seed: int,
    draws: _Draws | None,
    tally: _Tally,
) -> np.ndarray:
    """The prompts of distribution ``j`` after a first chunk that left it ``short``: chunk
    after chunk until its slots are filled; all its prompts, in order."""
    chosen = [short.taken]
    need, run, chunk = short.need, short.run, short.chunk
    n = int(state.counts[j])
    offset = int(state.offsets[j])
    while need:
        size = min(chunk, need * (selection.max_skips + 1))
        cand = prompts_at(seed, j, n, int(tally.drawn[j]), size)
        if draws is None:
            skip = np.zeros(size, dtype=bool)
        else:
            p = skip_probability(state.records[offset + cand], state.keep[j], selection)
            skip = draws.peek(size) < p
            draws.spend(size)
        taken, was_forced, used, run = _take(skip, need, run, selection.max_skips)
        chosen.append(cand[taken])
        tally.drawn[j] += used
        tally.considered[j] += used
        tally.skipped[j] += int(skip[:used].sum()) - int(was_forced.sum())
        tally.forced[j] += int(was_forced.sum())
        need -= taken.size
        chunk *= 4
    return np.concatenate(chosen)


def prompt_rng(seed: int, step: int, batch_size: int, round: int = 0) -> np.random.Generator:
    """The generator of round ``round`` of step ``step``'s skip draws: a stream apart from
    :func:`curriculum_core.composition.plan_rng`'s, so declaring prompts changes no
    distribution draw."""
    if round == 0:
        return np.random.default_rng([seed, step, batch_size, PROMPT_STREAM])
    return np.random.default_rng([seed, step, batch_size, PROMPT_STREAM, round])


def apply_outcomes(
    state: PromptState, selection: PromptSelection, outcomes: Iterable[GroupOutcome]
) -> PromptState:
    """The state after a report's groups: records moved (:func:`updated_records`), each
    reporting distribution's ``keep`` adapted to its share of zero-variance groups, and the
    recent zero-variance shares (:func:`observe_outcomes`). Returns a new state (records
    copied)."""
    outcomes = list(outcomes)
    if not outcomes:
        return state
    flat = flat_ids(state, outcomes)
    new_records = state.records.copy()
    touched = updated_records({f: int(state.records[f]) for f in flat}, flat, outcomes)
    new_records[list(touched)] = list(touched.values())
    return replace(observe_outcomes(state, selection, outcomes), records=new_records)


def flat_ids(state: PromptState, outcomes: Sequence[GroupOutcome]) -> list[int]:
    """The flat id (``offsets[j] + prompt``) of each outcome's prompt, in order."""
    offsets = state.offsets
    return [int(offsets[o.distribution]) + o.prompt for o in outcomes]


def observe_outcomes(
    state: PromptState, selection: PromptSelection, outcomes: Sequence[GroupOutcome]
) -> PromptState:
    """The state after a report's groups, records aside (unchanged, shared): each reporting
    distribution's ``keep`` adapted to its share of zero-variance groups, its group count
    and its recent zero-variance share. The service moves the records bytes it touches with
    :func:`updated_records` and the rest with this, so it never reads every record."""
    if not outcomes:
        return state
    k = state.counts.size
    index = np.array([o.distribution for o in outcomes], dtype=np.int64)
    groups = np.bincount(index, minlength=k)
    zero = np.bincount(index, weights=[o.zero_variance for o in outcomes], minlength=k)
    hit = groups > 0
    share = zero / np.maximum(groups, 1)
    keep = state.keep
    if selection.mode == "skip":
        moved = np.clip(keep + selection.adapt * (selection.target_zero_variance - share), 0, 1)
        keep = np.where(hit, moved, keep)
    return replace(
        state,
        keep=keep,
        groups=state.groups + groups,
        zero_variance=_recent(state.zero_variance, state.groups, share, hit),
    )


def diagnostics(state: PromptState, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per distribution name: ``prompts``, ``pass`` and ``position`` in it, the recent
    ``skipped`` share of prompts drawn and ``zero_variance`` share of groups reported,
    ``forced`` slots, and ``keep``."""
    out = {}
    for j, name in enumerate(names):
        n = int(state.counts[j])
        pass_number, position = divmod(int(state.drawn[j]), n)
        out[name] = {
            "prompts": n,
            "pass": pass_number,
            "position": position,
            "skipped": float(state.skipped[j]),
            "zero_variance": float(state.zero_variance[j]),
            "forced": int(state.forced[j]),
            "keep": float(state.keep[j]),
        }
    return out
