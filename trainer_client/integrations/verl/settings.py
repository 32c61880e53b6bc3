"""The curriculum settings of a verl run: a ``curriculum`` block of verl's config, with the
environment filling what it leaves out.

=============  ======================  ====================================================
key            environment             meaning
=============  ======================  ====================================================
url            ``CURRICULUM_URL``      the service's base URL (required)
run_id         ``CURRICULUM_RUN_ID``   the run's id (required: a restart attaches to it)
token          ``CURRICULUM_TOKEN``    the run's token, when the run exists already
strategy       (none)                  a strategy name or ``{"name": ..., ...}`` (service's
                                       default when absent)
seed           (none)                  the run's seed and the draws' (default ``0``)
buffer_path    ``CURRICULUM_BUFFER``   a JSONL file that keeps reports owed during an outage
=============  ======================  ====================================================

Keep the token in the environment: verl prints its whole config and sends it to the
loggers. verl builds the sampler and the trainer in a Ray actor; a local Ray cluster started
by the launching process passes its environment on, an existing cluster needs it in
``ray_kwargs.ray_init.runtime_env.env_vars``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from trainer_client.client import CurriculumClient

ENVIRONMENT = {
    "url": "CURRICULUM_URL",
    "run_id": "CURRICULUM_RUN_ID",
    "token": "CURRICULUM_TOKEN",
    "buffer_path": "CURRICULUM_BUFFER",
}


def plain(value: Any) -> Any:
    """An OmegaConf node as plain dicts and lists (anything else as it is)."""
    try:
        from omegaconf import OmegaConf
    except ImportError:  # pragma: no cover - verl always brings omegaconf
        return value
    if OmegaConf.is_config(value):
        return OmegaConf.to_container(value, resolve=True)
    return value


def resolve(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """The settings: ``block``'s values, the environment's where ``block`` has none."""
    settings = {k: v for k, v in (plain(block) or {}).items() if v not in (None, "")}
    for key, variable in ENVIRONMENT.items():
        if key not in settings and os.environ.get(variable):
            settings[key] = os.environ[variable]
    missing = [k for k in ("url", "run_id") if k not in settings]
    if missing:
        raise ValueError(
            f"the curriculum needs {' and '.join(missing)}: set them in verl's config "
            f"(curriculum.{missing[0]}=...) or in the environment "
            f"({', '.join(ENVIRONMENT[k] for k in missing)})"
        )
    unknown = sorted(set(settings) - {*ENVIRONMENT, "strategy", "seed"})
    if unknown:
        raise ValueError(f"unknown curriculum settings {unknown}; known: url, run_id, token, "
                         "strategy, seed, buffer_path")  # fmt: skip
    settings["seed"] = int(settings.get("seed", 0))
    return settings


def connect(settings: Mapping[str, Any], distributions: Sequence[str]) -> CurriculumClient:
    """The run's client (the run is created when it does not exist yet)."""
    return CurriculumClient.create_or_attach(
        str(settings["url"]),
        sorted(set(distributions)),
        run_id=str(settings["run_id"]),
        token=settings.get("token"),
        strategy=settings.get("strategy"),
        seed=int(settings["seed"]),
        buffer_path=settings.get("buffer_path"),
    )
