"""The one configuration object of a GRPO run; logged whole into metrics and checkpoints."""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from curriculum_core import DEFAULT_STRATEGY
from curriculum_core.prompts import selection_from_dict
from trainer_client.grpo.tasks import REWARDS, TASKS, Distribution, build_distributions


@dataclass
class TrainConfig:
    """Every knob of a run. Defaults train the tiny model on digit reversal on a CPU."""

    # --- model ---
    model: str = "tiny"
    """``"tiny"`` (a GPT-2 built from a config, character tokenizer) or a local directory
    that ``AutoModelForCausalLM.from_pretrained`` loads."""
    tiny_layers: int = 2
    """Transformer layers of the tiny model."""
    tiny_dim: int = 64
    """Hidden size of the tiny model."""
    tiny_heads: int = 4
    """Attention heads of the tiny model (must divide ``tiny_dim``)."""
    device: str = "auto"
    """``"auto"`` (CUDA if present, else the CPU), ``"cpu"`` or ``"cuda"``."""
    dtype: str = "auto"
    """Parameter dtype: ``"auto"`` (bfloat16 on CUDA, float32 on the CPU), ``"float32"`` or
    ``"bfloat16"``. The optimizer updates the parameters in this dtype: bfloat16 halves the
    memory of a large model but rounds away updates smaller than about 1/256 of a weight,
    so small models (the tiny one) train better in float32 on a GPU too."""

    # --- data ---
    task: str = "reverse"
    """``"reverse"`` (digit reversal, one distribution per length), ``"kk"``
    (Knights-and-Knaves, one per number of people) or ``"file"`` (``data_file``)."""
    levels: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8])
    """Difficulty of each generated distribution: digits to reverse, or people in a puzzle."""
    data_file: str | None = None
    """JSONL/parquet with ``data_source``, ``prompt``, ``answer`` columns (task ``file``)."""
    file_reward: str = "exact"
    """Reward for file data: ``"exact"`` (stripped string equality) or ``"kk"``."""
    train_size: int = 2000
    """Generated train prompts per distribution."""
    test_size: int = 64
    """Held-out test prompts per distribution, scored greedily every ``eval_every`` steps."""

    # --- GRPO ---
    steps: int = 1000
    """Optimisation steps (one batch of prompts each)."""
    prompts_per_step: int = 16
    """``B``: prompts per batch, composed by the scheduler."""
    group_size: int = 8
    """``G``: completions sampled per prompt; advantages are normalised within a group."""
    max_new_tokens: int = 9
    """Longest completion, in tokens (EOS included)."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts (evaluation is always greedy)."""
    lr: float = 1e-3
    """AdamW learning rate of the GRPO updates."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    clip_eps: float = 0.2
    """PPO clip range: the ratio is clipped to ``[1 - clip_eps, 1 + clip_eps]``."""
    kl_beta: float = 0.04
    """Weight of the k3 KL penalty to the frozen reference model; 0 drops the reference."""
    ppo_epochs: int = 1
    """Optimisation passes over each batch (ratios leave 1 from the second pass on)."""
    adv_eps: float = 1e-4
    """``eps`` in ``(r - mean) / (std + eps)``."""
    report_signal: str = "normalized"
    """What is reported to the scheduler as each sample's advantage: ``"normalized"`` (the
    advantage the loss uses, DUMP's signal) or ``"centered"`` (``r - mean(group)``, no std
    division; better with continuous rewards, where normalised advantages all look alike)."""
    max_grad_norm: float = 1.0
    """Gradient clipping threshold (L2 norm)."""
    dynamic_sampling: bool = False
    """DAPO's dynamic sampling: drop the groups whose rewards are all equal (zero advantage,
    no gradient) and refill the batch from the plans of the step's further generation rounds
    (1, 2, ...) until ``prompts_per_step`` groups are kept or ``max_rounds`` rounds ran, then
    train on the groups kept. Every generated group is reported to the scheduler, the
    dropped ones with zero advantages and their rewards."""
    max_rounds: int = 4
    """With ``dynamic_sampling``: most generation rounds per step (round 0 included); at
    most the service's ``CURRICULUM_MAX_ROUNDS`` (64 by default)."""

    # --- supervised warm start ---
    warmstart_steps: int = 0
    """Supervised steps on (prompt, answer) pairs from every distribution before GRPO, as
    real post-training starts from an instruct model; 0 skips it."""
    warmstart_batch: int = 64
    """Examples per warm-start step."""
    warmstart_lr: float = 3e-3
    """AdamW learning rate of the warm start."""

    # --- scheduler ---
    scheduler: str = "service"
    """``"service"`` (the HTTP scheduling service; a local one is started when no URL is
    given) or ``"local"`` (the same math in-process, no service)."""
    strategy: str = DEFAULT_STRATEGY
    """Scheduling strategy: ``"dump-guard"`` (the default), ``"dump-ucb"`` (the paper's),
    ``"dump-rehearse"``, ``"dump-ducb"``, ``"uniform"``, ``"sec"``, ``"learning-progress"`` or
    ``"exp3s"`` (docs/strategies.md)."""
    strategy_params: dict[str, Any] = field(default_factory=dict)
    """Strategy parameters, e.g. ``{"window": 300, "c": 1.0, "tau": 0.1}``."""
    prompt_selection: bool = False
    """Let the scheduler choose each slot's prompt, not only its distribution: the run is
    created with ``prompts`` (each distribution's train row count; prompt id ``i`` is row
    ``i`` of its train split), every prompt comes once per pass and prompts whose groups
    keep having equal rewards are passed over (docs/strategies.md, "Prompt selection");
    every generated group is reported with its prompt. Off: each slot's prompt is drawn
    uniformly, with replacement."""
    prompt_selection_params: dict[str, Any] = field(default_factory=dict)
    """With ``prompt_selection``: the run's ``prompt_selection`` parameters, e.g.
    ``{"mode": "coverage"}`` or ``{"target_zero_variance": 0.2}``; empty: the defaults."""
    scheduler_drain_s: float = 60.0
    """At the end of training, how long to wait for an unreachable scheduling service to
    take the calls it is owed before exiting anyway (they stay in
    ``OUTPUT_DIR/scheduler-buffer.jsonl`` for ``--resume`` or ``replay``), in seconds."""

    # --- evaluation, logging, checkpoints ---
    eval_every: int = 100
    """Score every test split every this many steps (and at the first and last); 0 never."""
    checkpoint_every: int = 0
    """Save a checkpoint every this many steps (and at the end); 0 only at the end."""
    output_dir: str = "runs/grpo"
    """Where ``metrics.jsonl``, checkpoints and reports go."""
    tensorboard: bool = False
    """Also write TensorBoard scalars (needs the ``tensorboard`` package)."""
    seed: int = 0
    """Seeds the model init, task generation, prompt draws, sampling and batch plans."""

    def __post_init__(self) -> None:
        positive = (
            "tiny_layers",
            "tiny_dim",
            "tiny_heads",
            "train_size",
            "test_size",
            "steps",
            "prompts_per_step",
            "group_size",
            "max_new_tokens",
            "ppo_epochs",
            "warmstart_batch",
            "max_rounds",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("eval_every", "checkpoint_every", "warmstart_steps"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.tiny_dim % self.tiny_heads:
            raise ValueError(
                f"tiny_heads ({self.tiny_heads}) must divide tiny_dim ({self.tiny_dim})"
            )
        if self.group_size < 2:
            raise ValueError("group_size must be >= 2: a group of one has no relative advantage")
        for name in ("lr", "warmstart_lr", "adv_eps", "max_grad_norm", "clip_eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value}")
        for name in ("temperature", "kl_beta", "weight_decay", "scheduler_drain_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.temperature == 0:
            raise ValueError("temperature must be > 0: GRPO needs varied completions per group")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "file" and not self.data_file:
            raise ValueError("task 'file' needs data_file (a JSONL or parquet path)")
        if self.task != "file" and not self.levels:
            raise ValueError(f"task {self.task!r} needs at least one level")
        if self.file_reward not in REWARDS:
            raise ValueError(
                f"file_reward must be one of {sorted(REWARDS)}, got {self.file_reward!r}"
            )
        if self.report_signal not in ("normalized", "centered"):
            raise ValueError(
                f"report_signal must be 'normalized' or 'centered', got {self.report_signal!r}"
            )
        if self.prompt_selection_params and not self.prompt_selection:
            raise ValueError("prompt_selection_params needs prompt_selection = true")
        selection_from_dict(self.prompt_selection_params)  # names and ranges, before any run
        if self.scheduler not in ("local", "service"):
            raise ValueError(f"scheduler must be 'local' or 'service', got {self.scheduler!r}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {self.device!r}")
        if self.dtype not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"dtype must be 'auto', 'float32' or 'bfloat16', got {self.dtype!r}")

    def distributions(self, seed: int | None = None) -> list[Distribution]:
        """The run's distributions from ``task``, ``levels``, ``data_file`` and the sizes,
        generated with ``seed`` (default: the config's)."""
        return build_distributions(
            self.task,
            self.levels,
            self.seed if seed is None else seed,
            self.train_size,
            self.test_size,
            self.data_file,
            self.file_reward,
        )

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-serialisable."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build from a dict, refusing unknown keys with their names."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | Path) -> TrainConfig:
        """Read a ``.json`` or ``.toml`` file of config keys."""
        return cls.from_dict(read_config_file(path))


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The keys of a ``.json`` or ``.toml`` config file, unchecked (other sources may
    complete them: :meth:`TrainConfig.from_dict` checks the whole)."""
    path = Path(path)
    if path.suffix == ".toml":
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    elif path.suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
    else:
        raise ValueError(f"config file {path} must end in .json or .toml")
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold an object of config keys")
    return data
