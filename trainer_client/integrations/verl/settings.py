"""The curriculum settings of a verl run: a ``curriculum`` block of verl's config, with the
environment filling what it leaves out.

================  ======================  ==================================================
key               environment             meaning
================  ======================  ==================================================
url               ``CURRICULUM_URL``      the service's base URL (required)
run_id            ``CURRICULUM_RUN_ID``   the run's id (required: a restart attaches to it)
token             ``CURRICULUM_TOKEN``    the run's token, when the run exists already
strategy          (none)                  a strategy name or ``{"name": ..., ...}``
                                          (service's default when absent)
seed              (none)                  the run's seed and the draws' (default ``0``)
buffer_path       ``CURRICULUM_BUFFER``   a JSONL file that keeps reports owed during an
                                          outage
prompt_selection  (none)                  ``true``, or the selection's parameters
                                          (``{mode: coverage}``): a new run declares the
                                          train rows as its prompts (each ``data_source``'s
                                          row count), its plans name each slot's row and
                                          the reports each prompt's rewards
================  ======================  ==================================================

Keep the token in the environment: verl prints its whole config and sends it to the
loggers. verl builds the sampler and the trainer in a Ray actor (its ``TaskRunner``), which
Ray may place on any node: a local Ray cluster started by the launching process passes its
environment on; an existing cluster needs it in ``ray_kwargs.ray_init.runtime_env.env_vars``
(verl 0.6+) or in the environment of ``ray start`` on every node (verl 0.5). A
``buffer_path`` on a temporary disk (under ``/tmp``, ``/var/tmp`` or on a tmpfs) is lost
with the node or a restart: :func:`resolve` logs a warning, once a path.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainer_client.client import CurriculumClient
from trainer_client.sampler import prompt_counts

ENVIRONMENT = {
    "url": "CURRICULUM_URL",
    "run_id": "CURRICULUM_RUN_ID",
    "token": "CURRICULUM_TOKEN",
    "buffer_path": "CURRICULUM_BUFFER",
}
TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")
TEMPORARY_FILESYSTEMS = {"tmpfs", "ramfs"}
logger = logging.getLogger(__name__)
_warned: set[str] = set()  # the buffer paths warned about, once each


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
    unknown = sorted(set(settings) - {*ENVIRONMENT, "strategy", "seed", "prompt_selection"})
    if unknown:
        raise ValueError(f"unknown curriculum settings {unknown}; known: url, run_id, token, "
                         "strategy, seed, buffer_path, prompt_selection")  # fmt: skip
    settings["seed"] = int(settings.get("seed", 0))
    if settings.get("buffer_path"):
        warn_if_temporary(str(settings["buffer_path"]))
    return settings


def temporary_disk(path: str, mounts: str = "/proc/mounts") -> str | None:
    """Why ``path`` is on a temporary disk (a temporary folder, or the filesystem type of
    the mount that holds it, read from ``mounts``), or ``None``."""
    resolved = Path(path).resolve()
    for folder in TEMPORARY_FOLDERS:
        if resolved.is_relative_to(folder):
            return f"under {folder}"
    try:
        lines = Path(mounts).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    mount, kind = "", ""  # the deepest mount point holding the path, and its type
    for line in lines:
        point, point_kind = line.split()[1:3]
        if resolved.is_relative_to(point) and len(point) > len(mount):
            mount, kind = point, point_kind
    return f"on a {kind} ({mount})" if kind in TEMPORARY_FILESYSTEMS else None


def warn_if_temporary(path: str) -> None:
    """Log once a path that ``path`` is on a temporary disk, where the reports it keeps
    through an outage die with the node (or its restart)."""
    reason = temporary_disk(path)
    if reason is None or path in _warned:
        return
    _warned.add(path)
    logger.warning(
        "curriculum buffer_path %s is %s: the reports it keeps through an outage are lost "
        "with this node or its restart, and verl's TaskRunner may restart on another node; "
        "use shared storage (see docs/integrations.md, 'Many nodes')",
        path,
        reason,
    )


def connect(settings: Mapping[str, Any], distributions: Sequence[str]) -> CurriculumClient:
    """The run's client (the run is created when it does not exist yet). ``distributions``
    is each train row's ``data_source``: with ``prompt_selection``, a new run declares their
    counts as its prompts."""
    selection = settings.get("prompt_selection")
    options: dict[str, Any] = {}
    if selection:
        options["prompts"] = prompt_counts(distributions)
        if isinstance(selection, Mapping):
            options["prompt_selection"] = dict(selection)
    return CurriculumClient.create_or_attach(
        str(settings["url"]),
        sorted(set(distributions)),
        run_id=str(settings["run_id"]),
        token=settings.get("token"),
        strategy=settings.get("strategy"),
        seed=int(settings["seed"]),
        buffer_path=settings.get("buffer_path"),
        **options,
    )
