"""The binary layouts the Lua scripts read, checked byte by byte."""

from __future__ import annotations

import struct

import numpy as np

from service.store.codec import (
    STATS_DTYPE,
    KeptPlan,
    decode_plan,
    decode_window,
    encode_plan,
    encode_window,
    join_rings,
    pack_report,
    pack_stats,
    split_windows,
    unpack_stats,
)
from service.store.keys import STATS_RECORD_BYTES


def test_pack_report_lays_out_heads_values_and_rewards() -> None:
    packed = pack_report(
        advantages=[(7, [1.5, -2.0, 0.25]), (2, [-3.0, 4.0, -5.0, 6.0])],
        rewards=[(7, [1.0, 0.0, 1.0]), (2, [0.5])],
        window=3,
    )
    assert packed.advantage_entries == 2
    assert packed.reward_entries == 2
    # the second entry has 4 samples and sends only the last 3 (the window)
    assert struct.unpack("<6I", packed.heads) == (7, 3, 3, 2, 4, 3)
    values = np.frombuffer(packed.values, dtype="<f4")
    np.testing.assert_array_equal(values, [1.5, 2.0, 0.25, 4.0, 5.0, 6.0])
    assert struct.unpack("<IIdIId", packed.rewards) == (7, 3, 2 / 3, 2, 1, 0.5)


def test_pack_report_with_no_rewards() -> None:
    packed = pack_report(advantages=[(0, [0.5])], rewards=[], window=300)
    assert packed.rewards == b""
    assert struct.unpack("<3I", packed.heads) == (0, 1, 1)
    assert np.frombuffer(packed.values, dtype="<f4").tolist() == [0.5]


def test_stats_and_rings_round_trip_with_a_short_last_ring() -> None:
    window = 4
    windows = {
        0: encode_window(np.array([3.0, 4.0, 5.0, 6.0, 7.0]), window),
        2: encode_window(np.array([1.0, 2.0]), window),
    }
    n, mean = np.array([5.0, 0.0, 2.0]), np.array([5.5, 0.0, 1.5])
    stats = pack_stats(n, mean, windows)
    assert STATS_DTYPE.itemsize == STATS_RECORD_BYTES and len(stats) == 3 * STATS_RECORD_BYTES
    records = unpack_stats(stats)
    assert records["n"].tolist() == [5.0, 0.0, 2.0] and records["mean"].tolist() == [5.5, 0, 1.5]
    assert records["length"].tolist() == [4, 0, 2] and records["head"].tolist() == [0, 0, 2]
    assert records["sum"].tolist() == [22.0, 0.0, 3.0]
    rings = join_rings(windows, window, 3)
    assert len(rings) == 3 * 4 * window
    assert split_windows(stats, rings, window) == windows  # window 1 is empty: left out
    assert decode_window(windows[0]).tolist() == [4.0, 5.0, 6.0, 7.0]
    # Lua's SETRANGE ends the string at the last byte written: here after ring 2's two values
    short = rings[: 2 * 4 * window + 4 * 2]
    got = split_windows(stats, short, window)
    assert got == windows
    assert decode_window(got[2]).tolist() == [1.0, 2.0]
    assert split_windows(pack_stats(np.zeros(2), np.zeros(2), {}), b"", window) == {}


def test_lua_scripts_and_python_agree_on_the_layout() -> None:
    from service.store.keys import STORE_LAYOUT
    from service.store.scripts import script_source

    assert f"local STORE_LAYOUT = '{STORE_LAYOUT}'" in script_source("report")


def test_lua_scripts_and_python_agree_on_the_status_codes() -> None:
    """Every status the scripts answer is a name that ``_common.lua`` defines with the value
    :class:`Status` gives it; no script answers a bare number."""
    import re
    from importlib import resources

    from service.store.replies import Status
    from service.store.scripts import SCRIPT_NAMES

    lua = resources.files("service.store") / "lua"
    common = (lua / "_common.lua").read_text(encoding="utf-8")
    defined = {n: int(v) for n, v in re.findall(r"^local ([A-Z_]+) = (-?\d+)\b", common, re.M)}
    assert defined == {status.name: status.value for status in Status}
    for name in SCRIPT_NAMES:
        body = (lua / f"{name}.lua").read_text(encoding="utf-8")
        answers = re.findall(r"return \{([^,}]+)", body) + re.findall(r"reply\(([^,]+),", body)
        assert answers, name
        for first in answers:
            assert first.strip() in {*defined, "status"}, (name, first)


def test_a_kept_plan_of_any_version_is_never_taken_for_a_json_plan() -> None:
    """Version 123 (0x7b, ``{``) once made a kept plan's first byte look like the JSON plan
    of an earlier version, which was then served raw; the format byte rules that out."""
    for version in (0, 123, 0x227B, 2**40 + 123):
        blob = encode_plan(KeptPlan(version=version, index=np.array([1]), count=np.array([3])))
        assert blob[:1] != b"{"
        back = decode_plan(blob)
        assert back.version == version and back.count.tolist() == [3]
