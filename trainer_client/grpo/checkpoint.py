"""Checkpoints: everything a run needs to continue exactly where it stopped.

Layout of ``checkpoint-<step>/``::

    policy/            model + tokenizer (save_pretrained; reloads with from_pretrained)
    reference/         the frozen KL reference model (only when kl_beta > 0)
    trainer_state.pt   step, optimizer state, RNG states
    scheduler.json     the scheduler's checkpoint (``Scheduler.export()``): with the service,
                       its snapshot; during an outage, the local state and the reports
                       still owed to it
    config.json        the run's TrainConfig, whole
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase


def save_checkpoint(
    path: str | Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    reference: PreTrainedModel | None,
    state: dict[str, Any],
    scheduler_snapshot: dict,
    config: dict[str, Any],
) -> Path:
    """Write a checkpoint to ``path`` and return it.

    It is written whole into a hidden folder beside ``path`` and then renamed, so a process
    killed mid-save leaves no ``checkpoint-<step>`` that ``--resume auto`` would take for
    done (only the hidden folder, which the next save of that step replaces).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save_pretrained(tmp / "policy")
    tokenizer.save_pretrained(tmp / "policy")
    if reference is not None:
        reference.save_pretrained(tmp / "reference")
    torch.save(state, tmp / "trainer_state.pt")
    (tmp / "scheduler.json").write_text(json.dumps(scheduler_snapshot), encoding="utf-8")
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict, dict[str, Any]]:
    """The trainer state, scheduler snapshot and config saved at ``path``.

    The models are loaded separately, with ``from_pretrained`` on ``policy/`` and
    ``reference/``.
    """
    path = Path(path)
    if not (path / "trainer_state.pt").is_file():
        raise FileNotFoundError(f"{path} is not a checkpoint: it has no trainer_state.pt")
    state = torch.load(path / "trainer_state.pt", weights_only=True)
    snapshot = json.loads((path / "scheduler.json").read_text(encoding="utf-8"))
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return state, snapshot, config


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    """The ``checkpoint-<step>`` folder in ``output_dir`` with the highest step, if any."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.name[11:].isdigit()]
    return max(found, key=lambda p: int(p.name[11:]), default=None)
