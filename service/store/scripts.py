"""The Lua scripts of ``service/store/lua``, loaded once per client.

Each script is prefixed with ``_common.lua`` (shared helpers and status codes) and gets the
run's keys as ``KEYS`` in the order of :data:`service.store.keys.RUN_KEY_NAMES`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

SCRIPT_NAMES: tuple[str, ...] = (
    "create",
    "report",
    "read_state",
    "set_weights",
    "get_plan",
    "put_plan",
    "delete",
    "export",
    "import",
    "history",
    "read_prompts",
)


def script_source(name: str) -> str:
    """The full source of script ``name``: the common prelude, then the script."""
    lua = resources.files("service.store") / "lua"
    common = (lua / "_common.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return f"{common}\n{body}"


def register_scripts(client: Any) -> dict[str, Any]:
    """Register every script on a redis-py asyncio client (plain or cluster)."""
    return {name: client.register_script(script_source(name)) for name in SCRIPT_NAMES}
