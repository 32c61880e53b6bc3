"""The README's configuration table lists every setting the code reads, with its default."""

from __future__ import annotations

import re
from pathlib import Path

from service.settings import ENV_PREFIX, Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _table_rows() -> dict[str, str]:
    rows = re.findall(r"^\| `([A-Z_]+)` \| `?([^|`]*)`? \|", README, flags=re.MULTILINE)
    return dict(rows)


def test_every_setting_is_documented_with_its_default() -> None:
    rows = _table_rows()
    for name, field in Settings.model_fields.items():
        env = ENV_PREFIX + name.upper()
        alias = field.validation_alias
        if alias is not None:
            env = str(alias.choices[0])  # type: ignore[union-attr]
        assert env in rows, f"{env} is missing from the README's configuration table"
        default = field.default
        shown = rows[env]
        if default is None:
            assert shown == "unset", env
        elif isinstance(default, bool):
            assert shown == str(default).lower(), env
        else:
            assert shown == str(default), (env, shown, default)
