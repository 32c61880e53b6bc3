"""Which verl each route runs on, and the error an import gives on any other.

verl 0.5-0.7 have the ``data.sampler`` curriculum hook (``verl.experimental.dataset``),
verl 0.9+ the v1 trainer (``verl.trainer.ppo.v1``); verl 0.8 has neither.
"""

from __future__ import annotations

import sys

ROUTES = {
    "sampler": ("verl.experimental.dataset", "0.5-0.7", "trainer_client.integrations.verl.sampler"),
    "trainer": ("verl.trainer.ppo.v1", "0.9+", "trainer_client.integrations.verl.main_ppo"),
}


def unsupported(route: str, error: ModuleNotFoundError) -> ImportError:
    """The error for importing ``route`` (``"sampler"`` or ``"trainer"``) where the installed
    verl lacks the module ``error`` names; ``error`` itself when verl is missing or the
    missing module is not verl's."""
    missing = error.name or ""
    if not missing.startswith("verl.") or "verl" not in sys.modules:
        return error
    version = getattr(sys.modules["verl"], "__version__", "unknown")
    module, versions, _ = ROUTES[route]
    return ImportError(
        f"verl {version} has no {module}, which the curriculum {route} needs (verl {versions}). "
        f"Supported: verl 0.5-0.7 with {ROUTES['sampler'][2]}.CurriculumSampler, and verl "
        f"0.9+ with python -m {ROUTES['trainer'][2]}; verl 0.8 has neither hook."
    )
