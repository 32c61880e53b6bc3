"""Binary layouts of the values the store keeps (see :mod:`service.store.keys`).

Pure functions over bytes and numpy arrays; the Lua scripts read and write the same layouts.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from service.scheduling import BatchSummary
from service.store.keys import (
    HISTORY_HEADER_BYTES,
    JOURNAL_HEADER_BYTES,
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


def pack_abs_f32(values: list[float], window: int) -> bytes:
    """The absolute values of the last ``window`` of ``values``, packed float32, oldest first."""
    tail = np.abs(np.asarray(values[-window:], dtype=np.float64))
    return tail.astype(_F32).tobytes()


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
