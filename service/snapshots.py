"""Snapshots (``GET /export``, ``PUT /import``): a run's stored state to the wire format and
back, checked against the run it is imported into."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from curriculum_core import RunStats, initial_state, weights
from service.errors import RunConflict
from service.prompt_state import exported_prompt_state
from service.run_cache import Run
from service.schemas import HistoryPoint, Snapshot, SnapshotDistribution
from service.store.codec import (
    HistoryEntry,
    decode_history,
    decode_window,
    encode_history,
    encode_window,
)
from service.store.redis_store import RawSnapshot


def history_point(blob: bytes) -> HistoryPoint:
    """One stored history entry as the API shows it."""
    entry = decode_history(blob)
    return HistoryPoint(
        step=entry.step,
        version=entry.version,
        weights=entry.weights.tolist(),
        window_mean=entry.window_mean.tolist(),
    )


def snapshot_of(run: Run, raw: RawSnapshot) -> Snapshot:
    """The snapshot of what ``run`` has stored."""
    dists = {}
    for i, name in enumerate(run.distributions):
        blob = raw.windows.get(i)
        window = _shortest(decode_window(blob)) if blob is not None else []
        dists[name] = SnapshotDistribution(
            n=int(raw.n[i]),
            window=window,
            reward_n=int(raw.rewards[i, 0]),
            reward_mean=float(raw.rewards[i, 1]),
            reward_last=float(raw.rewards[i, 2]),
            reward_best=float(raw.rewards[i, 3]),
        )
    return Snapshot(
        run_id=run.run_id,
        version=raw.version,
        config=run.config_out(),
        distributions=dists,
        report_ids=raw.report_ids,
        history=[history_point(b) for b in raw.history],
        strategy_state=run.strategy_view(raw.inputs)[1].tolist(),
        prompt_state=exported_prompt_state(run, raw.prompts, raw.prompt_dists),
    )


@dataclass(frozen=True)
class ImportedState:
    """A snapshot's state in the store's form, ready for :meth:`RedisStore.import_`."""

    n: np.ndarray
    window_mean: np.ndarray
    rewards: np.ndarray
    weights: np.ndarray
    windows: dict[int, bytes]
    history: list[bytes]
    state: np.ndarray


def imported_state(run: Run, snapshot: Snapshot, history_limit: int) -> ImportedState:
    """The snapshot's state for ``run``: :class:`RunConflict` if it does not fit the run
    (other distributions, a history or strategy state of another shape). The newest
    ``history_limit`` history entries are kept."""
    names = list(snapshot.distributions)
    if names != list(run.distributions):
        raise RunConflict(
            f"the snapshot's distributions do not match run {run.run_id!r}'s: the run has "
            f"{run.k}, the snapshot {len(names)} (names and order must be equal)"
        )
    window = run.strategy.window
    k = run.k
    n = np.zeros(k)
    means = np.zeros(k)
    rewards = np.zeros((k, 4))
    blobs: dict[int, bytes] = {}
    for i, dist in enumerate(snapshot.distributions.values()):
        n[i] = dist.n
        rewards[i] = (dist.reward_n, dist.reward_mean, dist.reward_last, dist.reward_best)
        if dist.window:
            values = np.asarray(dist.window, dtype=np.float32)[-window:]
            blobs[i] = encode_window(values, window)
            means[i] = float(values.astype(np.float64).sum()) / values.size
    history = []
    for entry in snapshot.history:
        if len(entry.weights) != k or len(entry.window_mean) != k:
            raise RunConflict(
                f"the snapshot's history entry of step {entry.step} has arrays of "
                f"{len(entry.weights)} and {len(entry.window_mean)} numbers; run "
                f"{run.run_id!r} has {k} distributions"
            )
        history.append(
            encode_history(
                HistoryEntry(
                    entry.step,
                    entry.version,
                    np.asarray(entry.weights),
                    np.asarray(entry.window_mean),
                )
            )
        )
    state = _strategy_state(run, snapshot)
    stats = RunStats(n=n, window_mean=means, reward_mean=rewards[:, 1], reward_best=rewards[:, 3])
    return ImportedState(
        n=n,
        window_mean=means,
        rewards=rewards,
        weights=weights(run.strategy, stats, state),
        windows=blobs,
        history=history[-history_limit:],
        state=state,
    )


def _strategy_state(run: Run, snapshot: Snapshot) -> np.ndarray:
    """The snapshot's strategy state, checked against the run's strategy."""
    expected = initial_state(run.strategy, run.k)
    if not snapshot.strategy_state or snapshot.config.strategy.name != run.strategy.name:
        return expected  # the statistics carry over between strategies; a state does not
    state = np.asarray(snapshot.strategy_state, dtype=np.float64)
    if state.shape != expected.shape:
        raise RunConflict(
            f"the snapshot's strategy_state has {state.size} numbers; run {run.run_id!r}'s "
            f"strategy {run.strategy.name!r} with {run.k} distributions needs {expected.size}"
        )
    return state


def _shortest(values: np.ndarray) -> list[float]:
    """float32 values as the shortest decimals that read back to them (0.2, not 0.2000000029)."""
    return [float(str(v)) for v in values]
