"""The curriculum settings of a verl run: the config's block, the environment filling gaps,
and errors that say where to set what is missing (no verl needed)."""

from __future__ import annotations

import pytest

from trainer_client.integrations.verl.settings import resolve


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CURRICULUM_URL", "CURRICULUM_RUN_ID", "CURRICULUM_TOKEN", "CURRICULUM_BUFFER"):
        monkeypatch.delenv(name, raising=False)


def test_the_config_block_wins_and_the_environment_fills_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CURRICULUM_URL", "http://env:1")
    monkeypatch.setenv("CURRICULUM_RUN_ID", "from-env")
    monkeypatch.setenv("CURRICULUM_TOKEN", "rct_secret")
    settings = resolve({"run_id": "from-config", "strategy": {"name": "dump-ucb"}, "seed": "3"})
    assert settings == {
        "url": "http://env:1",
        "run_id": "from-config",
        "token": "rct_secret",
        "strategy": {"name": "dump-ucb"},
        "seed": 3,
    }


def test_empty_values_count_as_unset_and_the_error_names_both_places() -> None:
    with pytest.raises(ValueError, match=r"url and run_id.*CURRICULUM_URL, CURRICULUM_RUN_ID"):
        resolve({"url": "", "run_id": None})


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown curriculum settings \\['stratgy'\\]"):
        resolve({"url": "http://x", "run_id": "r", "stratgy": "uniform"})


def test_an_omegaconf_block_is_read_as_plain_values() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    block = omegaconf.OmegaConf.create({"url": "http://x", "run_id": "r", "strategy": "uniform"})
    assert resolve(block)["strategy"] == "uniform"
