"""Binary layouts of the values the store keeps (see :mod:`service.store.keys`).

Pure functions over bytes and numpy arrays; the Lua scripts read and write the same layouts.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass

import numpy as np

from curriculum_core import BatchSummary
from curriculum_core.prompts import PromptState
from service.store.keys import (
    HISTORY_HEADER_BYTES,
    JOURNAL_HEADER_BYTES,
    PLAN_FORMAT,
    PLAN_HEADER_BYTES,
    REWARD_FIELDS,
    WINDOW_HEADER_BYTES,
)

_F64 = np.dtype("<f8")
_F32 = np.dtype("<f4")


def pack_f64(values: np.ndarray) -> bytes:
    """A float vector as packed little-endian float64."""
    return np.ascontiguousarray(values, dtype=_F64).tobytes()


def unpack_f64(blob: bytes) -> np.ndarray:
    """Packed little-endian float64 back to a (writable) array."""
    return np.frombuffer(blob, dtype=_F64).astype(np.float64)


@dataclass(frozen=True)
class PackedReport:
    """A report's numbers in the layout ``lua/report.lua`` reads: three arguments in all,
    however many distributions the report touches.

    ``heads``: per advantage entry ``<u4 index, u4 count, u4 m>`` (``count`` samples were
    reported, the last ``m = min(count, window)`` are sent). ``values``: those entries' ``m``
    absolute advantages as float32, oldest first, one entry after the other. ``rewards``: per
    reward entry ``<u4 index, u4 count, f8 batch mean>``.
    """

    heads: bytes
    values: bytes
    rewards: bytes

    @property
    def advantage_entries(self) -> int:
        return len(self.heads) // 12

    @property
    def reward_entries(self) -> int:
        return len(self.rewards) // 16


_REWARD_ENTRY = np.dtype([("index", "<u4"), ("count", "<u4"), ("mean", "<f8")])


def pack_report(
    advantages: list[tuple[int, list[float]]],
    rewards: list[tuple[int, list[float]]],
    window: int,
) -> PackedReport:
    """Pack ``(distribution index, values)`` entries (non-empty lists) for the report script."""
    tails = [values[-window:] for _, values in advantages]
    heads = np.array(
        [(index, len(values), min(len(values), window)) for index, values in advantages],
        dtype="<u4",
    ).reshape(-1, 3)
    total = int(heads[:, 2].sum())
    flat = np.fromiter(itertools.chain.from_iterable(tails), dtype=np.float64, count=total)
    packed_rewards = np.array(
        [(index, len(values), float(np.mean(values))) for index, values in rewards],
        dtype=_REWARD_ENTRY,
    )
    return PackedReport(
        heads=heads.tobytes(),
        values=np.abs(flat).astype(_F32).tobytes(),
        rewards=packed_rewards.tobytes(),
    )


def unpack_rewards(blob: bytes) -> np.ndarray:
    """The rewards array, shape ``(K, 4)``: count, moving average, last batch mean, best
    moving average."""
    return unpack_f64(blob).reshape(-1, REWARD_FIELDS)


def encode_window(values: np.ndarray, window: int) -> bytes:
    """A ring buffer holding ``values`` (oldest first, at most ``window``), as Lua writes it."""
    vals = np.asarray(values, dtype=_F32)[-window:]
    length = vals.size
    data = np.zeros(window, dtype=_F32)
    data[:length] = vals
    head = length % window
    total = float(vals.astype(np.float64).sum())
    return struct.pack("<IId", head, length, total) + data.tobytes()


def decode_window(blob: bytes) -> np.ndarray:
    """The values of a ring buffer blob, oldest first, as float32."""
    head, length, _ = struct.unpack_from("<IId", blob)
    data = np.frombuffer(blob, dtype=_F32, offset=WINDOW_HEADER_BYTES)
    if length < data.size:
        return data[:length].copy()
    return np.concatenate([data[head:], data[:head]])


STATS_DTYPE = np.dtype(
    [("n", "<f8"), ("mean", "<f8"), ("head", "<u4"), ("length", "<u4"), ("sum", "<f8")]
)
"""A record of the ``stats`` string (keys.py)."""


def unpack_stats(blob: bytes) -> np.ndarray:
    """The ``stats`` string as a structured array of :data:`STATS_DTYPE`, shape ``(K,)``."""
    return np.frombuffer(blob, dtype=STATS_DTYPE)


def pack_stats(n: np.ndarray, mean: np.ndarray, windows: dict[int, bytes]) -> bytes:
    """The ``stats`` string of counts ``n``, window means ``mean`` and the ring headers of
    ``windows`` (ring buffer blobs of :func:`encode_window`, by distribution index)."""
    stats = np.zeros(len(n), dtype=STATS_DTYPE)
    stats["n"] = n
    stats["mean"] = mean
    for index, blob in windows.items():
        head, length, total = struct.unpack_from("<IId", blob)
        stats["head"][index], stats["length"][index], stats["sum"][index] = head, length, total
    return stats.tobytes()


def split_windows(stats: bytes, rings: bytes, window: int) -> dict[int, bytes]:
    """The non-empty windows of a run, as ring buffer blobs (:func:`encode_window`'s layout)
    by distribution index, from its ``stats`` and ``windows`` strings.

    The rings' string is allocated whole (K rings) when a run is created or imported; a
    shorter one is read as if padded with zeros.
    """
    records = unpack_stats(stats)
    size = 4 * window
    out: dict[int, bytes] = {}
    for index in np.flatnonzero(records["length"]):
        record = records[index]
        ring = rings[index * size : (index + 1) * size].ljust(size, b"\0")
        header = struct.pack("<IId", record["head"], record["length"], record["sum"])
        out[int(index)] = header + ring
    return out


def join_rings(windows: dict[int, bytes], window: int, k: int) -> bytes:
    """The ``windows`` string of ``k`` rings holding those of ``windows`` (ring buffer blobs
    by distribution index); their headers go to ``stats`` (:func:`pack_stats`)."""
    size = 4 * window
    flat = bytearray(size * k)
    for index, blob in windows.items():
        if len(blob) != WINDOW_HEADER_BYTES + size:
            raise ValueError(f"window {index} has {len(blob)} bytes, expected {16 + size}")
        flat[index * size : (index + 1) * size] = blob[WINDOW_HEADER_BYTES:]
    return bytes(flat)


@dataclass(frozen=True)
class HistoryEntry:
    """Weights and window means after the last report of one step."""

    step: int
    version: int
    weights: np.ndarray
    window_mean: np.ndarray


def encode_history(entry: HistoryEntry) -> bytes:
    """A history entry as the list stores it."""
    header = struct.pack("<dd", float(entry.step), float(entry.version))
    return (
        header
        + np.asarray(entry.weights, dtype=_F32).tobytes()
        + np.asarray(entry.window_mean, dtype=_F32).tobytes()
    )


def decode_history(blob: bytes) -> HistoryEntry:
    """A stored history entry back to numbers."""
    step, version = struct.unpack_from("<dd", blob)
    body = np.frombuffer(blob, dtype=_F32, offset=HISTORY_HEADER_BYTES)
    k = body.size // 2
    return HistoryEntry(
        step=int(step),
        version=int(version),
        weights=body[:k].astype(np.float64),
        window_mean=body[k:].astype(np.float64),
    )


def encode_journal_body(batch: BatchSummary) -> bytes:
    """A report's summary as a journal entry, less the version the script prepends."""
    m = batch.index.shape[0]
    return (
        struct.pack("<I", m)
        + np.asarray(batch.index, dtype="<i4").tobytes()
        + np.asarray(batch.count, dtype=_F64).tobytes()
        + np.asarray(batch.mean_abs_advantage, dtype=_F64).tobytes()
        + np.asarray(batch.mean_reward, dtype=_F64).tobytes()
    )


def decode_journal(blob: bytes) -> tuple[int, BatchSummary]:
    """A journal entry: the version it produced and the report's summary."""
    version, m = struct.unpack_from("<dI", blob)
    offset = JOURNAL_HEADER_BYTES
    index = np.frombuffer(blob, dtype="<i4", count=m, offset=offset).astype(np.int64)
    offset += 4 * m
    rest = np.frombuffer(blob, dtype=_F64, count=3 * m, offset=offset).reshape(3, m)
    return int(version), BatchSummary(
        index=index,
        count=rest[0].copy(),
        mean_abs_advantage=rest[1].copy(),
        mean_reward=rest[2].copy(),
    )


UNRANKED = "-"
"""The ``ranks`` field of reports that named no rank (keys.py)."""


@dataclass(frozen=True)
class Reporter:
    """The last applied report of one rank (``rank`` ``None``: reports that named none)."""

    rank: int | None
    at: float
    step: int
    version: int


def rank_field(rank: int | None) -> str:
    """The field of ``ranks`` that holds rank ``rank``'s last report."""
    return UNRANKED if rank is None else str(rank)


def decode_reporters(flat: list[bytes]) -> list[Reporter]:
    """``HGETALL ranks`` (field, value, field, value, ...) as reporters, by rank (the
    unranked last)."""
    out = []
    for field, value in zip(flat[::2], flat[1::2], strict=True):
        name = field.decode("ascii") if isinstance(field, bytes) else str(field)
        at, step, version = struct.unpack("<ddd", value)
        rank = None if name == UNRANKED else int(name)
        out.append(Reporter(rank=rank, at=at, step=int(step), version=int(version)))
    return sorted(out, key=lambda r: (r.rank is None, r.rank or 0))


def decode_last_steps(blob: bytes, k: int) -> list[int | None]:
    """The ``last_step`` string as the step of the last report that sampled each of ``k``
    distributions (``None``: never)."""
    stored = np.zeros(k)
    known = np.frombuffer(blob[: 8 * k], dtype=_F64)
    stored[: known.size] = known
    return [int(v) - 1 if v > 0 else None for v in stored.tolist()]


@dataclass(frozen=True)
class KeptPlan:
    """A plan as the ``plans`` hash keeps it: the version of the weights it was drawn from
    and its non-zero counts (distribution indices ascending). The slot-by-slot assignment
    follows from the counts and the run's seed (``curriculum_core.assignment_of_counts``).
    ``prompt_ids``: the prompt of each slot, in a run that declares prompts."""

    version: int
    index: np.ndarray
    count: np.ndarray
    prompt_ids: np.ndarray | None = None


def encode_plan(plan: KeptPlan) -> bytes:
    """The byte :data:`PLAN_FORMAT`, ``<i8 version, u4 m>``, then ``m`` uint32 indices and
    ``m`` uint32 counts: 13 + 8 m bytes, whatever the batch size and the names' lengths;
    then, with prompts, one uint32 prompt id per slot."""
    m = int(plan.index.size)
    ids = b"" if plan.prompt_ids is None else np.asarray(plan.prompt_ids, dtype="<u4").tobytes()
    return (
        PLAN_FORMAT
        + struct.pack("<qI", plan.version, m)
        + np.asarray(plan.index, dtype="<u4").tobytes()
        + np.asarray(plan.count, dtype="<u4").tobytes()
        + ids
    )


def decode_plan(blob: bytes) -> KeptPlan:
    """A kept plan back to numbers (:func:`encode_plan`)."""
    if blob[:1] != PLAN_FORMAT:
        raise ValueError(f"not a kept plan: it begins with {blob[:1]!r}")
    version, m = struct.unpack_from("<qI", blob, len(PLAN_FORMAT))
    rest = np.frombuffer(blob, dtype="<u4", offset=PLAN_HEADER_BYTES)
    return KeptPlan(
        version=version,
        index=rest[:m].astype(np.int64),
        count=rest[m : 2 * m].astype(np.int64),
        prompt_ids=rest[2 * m :].astype(np.int64) if rest.size > 2 * m else None,
    )


PROMPT_DIST_DTYPE = np.dtype(
    [
        ("drawn", "<i8"),
        ("keep", "<f8"),
        ("skipped", "<f8"),
        ("zero_variance", "<f8"),
        ("considered", "<i8"),
        ("groups", "<i8"),
        ("forced", "<i8"),
    ]
)
"""A record of the ``prompt_dists`` string (keys.py): a distribution's fields of
:class:`~curriculum_core.prompts.PromptState`."""


def pack_prompt_dists(state: PromptState) -> bytes:
    """The ``prompt_dists`` string of ``state``."""
    out = np.zeros(state.counts.size, dtype=PROMPT_DIST_DTYPE)
    for name in PROMPT_DIST_DTYPE.names or ():
        out[name] = getattr(state, name)
    return out.tobytes()


def prompt_state_of(counts: tuple[int, ...], dists: bytes, records: bytes = b"") -> PromptState:
    """The :class:`PromptState` of a run with ``counts`` prompts per distribution from its
    ``prompt_dists`` string and its records (``b""``: none read; the state then holds no
    records, enough for what reads only the per-distribution fields or the offsets)."""
    stored = np.frombuffer(dists, dtype=PROMPT_DIST_DTYPE)
    return PromptState(
        counts=np.asarray(counts, dtype=np.int64),
        records=np.frombuffer(records, dtype=np.uint8).copy(),
        **{name: stored[name].copy() for name in PROMPT_DIST_DTYPE.names or ()},
    )
