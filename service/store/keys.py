"""The Redis schema: every key the service writes, in one place.

All of one run's keys share the hash tag ``{run_id}``, so they live in one Redis Cluster slot
and a single Lua script can read and write them all atomically. Scripts receive every key in
``KEYS`` (never build one inside a script), in the order of :data:`RUN_KEY_NAMES`.

``rc:{run}:meta`` (hash)
    ``config``: the run's configuration as JSON (distributions, strategy, seed, created_at).
    ``incarnation``: random hex made at creation; a cached config is valid only while it
    matches, so a run deleted and created again is never served from a stale cache.
    ``token_hash``: SHA-256 hex of the run's bearer token.
    ``version``: number of state changes applied (reports and imports).
    ``weights``: current probabilities, packed little-endian float64, shape ``(K,)``.
    ``weights_version``: the ``version`` the stored ``weights`` were computed from.
    ``plan_max_step``: highest step planned so far (``-1`` before any).
    ``state_version``: the ``version`` the stored strategy ``state`` is the fold of.
    ``history_step``: the step of the newest ``history`` entry (absent while there is none).
    ``layout``: the storage layout the run was written in (:data:`STORE_LAYOUT`); the
    scripts touch no run of another layout.
    ``prompt_version``: runs that declare prompts only: see ``prompt_dists``.
    ``reported_at``: when the last report was applied, Unix seconds by the clock of the
    service process that applied it (absent before any).
``rc:{run}:stats`` (string)
    One 32-byte record per distribution, ``<f8 n, f8 mean, I4 head, I4 length, f8 sum>``:
    the cumulative sample count, the mean absolute advantage over the window (0 while it is
    empty), and the window ring's next position, fill and sum. The service reads ``n`` and
    ``mean`` of every distribution in one ``GET``; a report reads and writes one record per
    distribution it touches.
``rc:{run}:rewards`` (string)
    Per distribution four float64: rewards reported, their batch means' moving average,
    the last batch mean, and the highest the moving average has been; ``(K, 4)`` packed
    row-major.
``rc:{run}:windows`` (string)
    The windows' rings, ``window`` float32 absolute advantages per distribution, ring ``i``
    at byte ``4 * window * i`` (its head and length are in ``stats``), allocated whole when
    the run is created. A report writes only the ring positions it fills and reads only
    those it evicts, never a whole window.
``rc:{run}:reports`` (sorted set)
    Applied report ids, scored by the version they produced; trimmed to the newest
    ``report_id_retention``.
``rc:{run}:plans`` (hash)
    Field ``"{incarnation}:{step}:{batch_size}"`` (generation round 0) or
    ``"{incarnation}:{step}:{batch_size}:{round}"`` (round 1 and on): the plan fixed for it, as
    the format byte ``0x01`` (never ``{``, which began the JSON plans of earlier versions),
    ``<i8 version, u4 m>``, then ``m`` uint32 distribution indices (ascending) and their
    ``m`` uint32 counts (codec.encode_plan): the slot-by-slot assignment follows from the
    counts and the run's seed, so a plan takes ``13 + 8 m`` bytes whatever its batch size
    and the names' lengths. In a run that declares prompts, the batch's prompt ids follow,
    one uint32 per slot in slot order (``13 + 8 m + 4 B`` bytes). A kept plan is one
    ``HGET`` of this field; the incarnation in the field makes that read run-safe
    unscripted.
``rc:{run}:plan_steps`` (sorted set)
    The fields of ``plans``, scored by step (a step's rounds too), to drop plans older than
    the retention or past the plans' byte budget. ``meta.plan_bytes`` is what the kept plans
    count against that budget (``plan_cost`` in put_plan.lua); ``meta.plan_min_step`` is the
    lowest step whose plans were never dropped (absent: 0): a plan under it is expired,
    never drawn again.
``rc:{run}:history`` (list)
    One entry per step (the newest weights of that step win): header ``<f8 step, f8 version>``
    then the weights and the window means as float32 ``(K,)`` each.
``rc:{run}:state`` (string)
    The strategy's own state (empty for stateless strategies), packed float64, as of
    ``meta.state_version``.
``rc:{run}:journal`` (list)
    Stateful strategies only: the summary of every report applied after
    ``meta.state_version``, oldest first: ``<f8 version, I4 m>`` then ``m`` int32 indices
    and ``m`` float64 each of counts, mean absolute advantages and mean rewards (NaN where
    none). The state is the fold of the strategy's ``advance`` over these; whoever folds
    stores the result, and the entries it covered are trimmed.
``rc:{run}:ranks`` (hash)
    Field: the reporting rank (``"-"`` for reports that named none); value: its last
    applied report, ``<f8 at, f8 step, f8 version>`` (``at`` in Unix seconds). Shown, never
    scheduled on; not part of a snapshot.
``rc:{run}:last_step`` (string)
    Per distribution one float64, ``1 +`` the step of the last applied report that carried
    samples of it (0: never; the string is shorter than ``8 K`` bytes until the last
    distribution is first sampled). Written, never read, by a report: the last report wins
    (keeping the highest step instead cost a report touching 64 distributions 8 % more of
    Redis's time). Shown, never scheduled on; not part of a snapshot.

``rc:{run}:prompts`` (string)
    Runs that declare prompts only (``config.prompts``): one byte per prompt, the record of
    ``curriculum_core.prompts`` (zero-variance streak, its kind, ever solved), distribution
    after distribution in the run's order (prompt ``p`` of distribution ``j`` at byte
    ``offsets[j] + p``), allocated whole at creation. A report reads and writes only the
    bytes of the prompts it names (``GETRANGE``/``SETRANGE``); drawing a plan reads it whole
    (unless the process kept it as it last wrote or read it: ``service/run_state_cache.py``).
``rc:{run}:prompt_dists`` (string)
    Runs that declare prompts only: one 56-byte record per distribution, ``<i8 drawn, f8
    keep, f8 skipped, f8 zero_variance, i8 considered, i8 groups, i8 forced>``
    (codec.PROMPT_DIST_DTYPE; ``curriculum_core.prompts.PromptState``'s fields).
    ``meta.prompt_version`` names the state of ``prompts`` and ``prompt_dists``: 0 at
    creation, then a random integer that the writer of each change draws for the state
    after it (an import adds 1). The service computes a change with the core from the state
    at one version and the script that writes it (put_plan, report) applies it only while
    that version is the run's (else the answer is ``CONFLICT`` and the service reads and
    computes again). A version names one state, so a process may compute its next change
    from the state after its last, before that one is stored: it applies only if the last
    one did.

Besides a run's keys, the service reads nothing and keeps no index: ``GET /v1/runs`` lists
runs by ``SCAN`` over :data:`META_PATTERN` (every primary of a Cluster in turn).
"""

from __future__ import annotations

import functools
import re

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""Run ids: no braces (they would break the hash tag), no colons, no spaces."""

_RUN_ID_RE = re.compile(RUN_ID_PATTERN)

RUN_KEY_NAMES: tuple[str, ...] = (
    "meta",
    "stats",
    "rewards",
    "windows",
    "reports",
    "plans",
    "plan_steps",
    "history",
    "state",
    "journal",
    "ranks",
    "last_step",
    "prompts",
    "prompt_dists",
)

META_PATTERN = "rc:{*}:meta"
"""Matches the ``meta`` key of every run, and no other key (run ids have no braces or
colons)."""

STORE_LAYOUT = 2
"""The layout of this module's keys. Layout 1 kept ``n`` and ``mean`` as two strings and each
window as a field of a hash; a run stored in another layout is refused (409) rather than
misread."""

WINDOW_HEADER_BYTES = 16
STATS_RECORD_BYTES = 32
HISTORY_HEADER_BYTES = 16
REWARD_FIELDS = 4
JOURNAL_HEADER_BYTES = 12
PLAN_FORMAT = b"\x01"
"""The first byte of a kept plan (a JSON plan of an earlier version begins with ``{``)."""
PLAN_HEADER_BYTES = 13
PLAN_ENTRY_OVERHEAD = 256
"""Bytes a kept plan counts against the plans' budget beyond its value and (twice) its
field: Redis's allocations, dict entries and skip-list node for one hash field and one
sorted-set member, rounded up (put_plan.lua)."""


def is_valid_run_id(run_id: str) -> bool:
    """Whether ``run_id`` may name a run."""
    return bool(_RUN_ID_RE.match(run_id))


@functools.lru_cache(maxsize=4096)
def run_keys(run_id: str) -> tuple[str, ...]:
    """Every key of run ``run_id``, in the order of :data:`RUN_KEY_NAMES`."""
    if not is_valid_run_id(run_id):
        raise ValueError(f"invalid run id {run_id!r}")
    return tuple(f"rc:{{{run_id}}}:{name}" for name in RUN_KEY_NAMES)


@functools.lru_cache(maxsize=4096)
def run_key_bytes(run_id: str) -> tuple[bytes, ...]:
    """:func:`run_keys` encoded: what a script call sends (bytes go out as they are, a str
    is encoded on every call)."""
    return tuple(key.encode() for key in run_keys(run_id))


PLANS_KEY = RUN_KEY_NAMES.index("plans")
PROMPT_DIST_BYTES = 56
"""A record of ``prompt_dists``."""


def run_id_of_meta_key(key: str) -> str | None:
    """The run id of a ``meta`` key (``rc:{kk}:meta`` -> ``kk``); ``None`` for another key."""
    if key.startswith("rc:{") and key.endswith("}:meta"):
        run_id = key[4:-6]
        return run_id if is_valid_run_id(run_id) else None
    return None


def plan_field(incarnation: str, step: int, batch_size: int, round: int = 0) -> str:
    """The field of ``plans`` that holds the plan of ``(step, batch_size, round)``.

    It starts with the run's incarnation, so a plain ``HGET`` finds a plan only for the run
    it was drawn for: the one round trip of a kept plan needs no script to check that. Round
    0 has the field plans had before rounds existed; a later round appends ``:{round}``.
    """
    base = f"{incarnation}:{step}:{batch_size}"
    return base if round == 0 else f"{base}:{round}"
