"""Importing a verl route on a verl without it names the versions each route supports (a
stand-in ``verl`` package plays verl 0.8, which has neither hook; no verl needed)."""

from __future__ import annotations

import importlib
import sys
import types

import pytest

ROUTES = [
    "trainer_client.integrations.verl.sampler",
    "trainer_client.integrations.verl.trainer",
    "trainer_client.integrations.verl.main_ppo",
]


def _forget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every verl module and route out of ``sys.modules`` (put back after the test)."""
    for name in list(sys.modules):
        if name == "verl" or name.startswith("verl.") or name in ROUTES:
            monkeypatch.delitem(sys.modules, name)


@pytest.fixture
def verl_0_8(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``verl`` package as verl 0.8's: ``DataProto`` and ``__version__``, and no
    ``verl.experimental.dataset`` or ``verl.trainer.ppo.v1`` to import."""
    _forget(monkeypatch)
    verl = types.ModuleType("verl")
    verl.__path__ = []  # a package whose submodules are not there
    verl.__version__ = "0.8.0"  # type: ignore[attr-defined]
    verl.DataProto = object  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "verl", verl)


@pytest.mark.parametrize("route", ROUTES)
def test_verl_0_8_is_refused_naming_the_supported_versions(verl_0_8: None, route: str) -> None:
    with pytest.raises(ImportError) as raised:
        importlib.import_module(route)
    message = str(raised.value)
    assert message.startswith("verl 0.8.0 has no verl.")
    assert "verl 0.5-0.7 with trainer_client.integrations.verl.sampler.CurriculumSampler" in message
    assert "verl 0.9+ with python -m trainer_client.integrations.verl.main_ppo" in message
    assert "verl 0.8 has neither hook" in message


def test_without_verl_the_error_is_pythons_own(monkeypatch: pytest.MonkeyPatch) -> None:
    _forget(monkeypatch)
    monkeypatch.setitem(sys.modules, "verl", None)  # import verl raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match="verl"):
        importlib.import_module("trainer_client.integrations.verl.sampler")
