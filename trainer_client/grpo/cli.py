"""Command line: ``train_main(argv)`` trains, ``demo_main(argv)`` runs the CPU demo.

Config precedence: defaults < ``--config`` file (JSON or TOML) < ``--resume`` checkpoint's
config < explicit flags (``--steps`` etc. and ``--set key=value``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import torch

from curriculum_core import DEFAULT_STRATEGY, STRATEGIES
from trainer_client.grpo.checkpoint import latest_checkpoint, read_checkpoint
from trainer_client.grpo.config import TrainConfig, read_config_file
from trainer_client.grpo.scheduler import LocalScheduler, Scheduler, ServiceScheduler
from trainer_client.grpo.tasks import Distribution
from trainer_client.grpo.trainer import GRPOTrainer
from trainer_client.run_files import (
    RunRecord,
    buffer_path,
    buffered_run_id,
    leftover_message,
    pending_calls,
    read_run,
    write_run,
)

FLAGS = {
    # flag: (config field, type, help)
    "--model": ("model", str, "'tiny' or a local model directory"),
    "--task": ("task", str, "reverse | kk | file"),
    "--data-file": ("data_file", str, "JSONL/parquet with data_source, prompt, answer"),
    "--steps": ("steps", int, "total optimisation steps"),
    "--scheduler": ("scheduler", str, "service (default) | local (in-process, no service)"),
    "--strategy": (
        "strategy",
        str,
        " | ".join(STRATEGIES) + f" (default {DEFAULT_STRATEGY})",
    ),
    "--output-dir": ("output_dir", str, "where metrics, checkpoints and reports go"),
    "--seed": ("seed", int, "run seed"),
    "--lr": ("lr", float, "GRPO learning rate"),
    "--kl-beta": ("kl_beta", float, "weight of the KL penalty"),
    "--warmstart-steps": ("warmstart_steps", int, "supervised warm-start steps"),
    "--eval-every": ("eval_every", int, "evaluate every N steps (0: never)"),
    "--checkpoint-every": ("checkpoint_every", int, "checkpoint every N steps (0: at end)"),
    "--device": ("device", str, "auto | cpu | cuda"),
    "--dtype": ("dtype", str, "auto (bfloat16 on CUDA, float32 on a CPU) | float32 | bfloat16"),
}


def parser() -> argparse.ArgumentParser:
    """The ``train`` command's arguments."""
    p = argparse.ArgumentParser(description="GRPO with a curriculum scheduler")
    p.add_argument("--config", help="a .json or .toml file of TrainConfig fields")
    p.add_argument(
        "--resume", help="checkpoint folder to continue from, or 'auto' (latest in the output dir)"
    )
    for flag, (_, kind, text) in FLAGS.items():
        p.add_argument(flag, type=kind, help=text)
    p.add_argument(
        "--levels",
        type=lambda s: [int(x) for x in s.split(",")],
        help="comma-separated difficulty levels, e.g. 3,4,5,6,7,8",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config field; VALUE is parsed as JSON when it can be",
    )
    p.add_argument(
        "--dynamic-sampling",
        action="store_true",
        default=None,
        help="drop zero-variance groups and refill the batch from further generation rounds "
        "(DAPO); --set max_rounds=N caps the rounds per step (default 4)",
    )
    p.add_argument(
        "--prompt-ids",
        action="store_true",
        default=None,
        help="let the scheduler choose each slot's prompt too (prompt selection: each prompt "
        "once per pass, prompts whose groups keep having equal rewards passed over); "
        '--set prompt_selection_params=\'{"mode": "coverage"}\' sets its parameters',
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_service_flags(p)
    return p


def add_service_flags(p: argparse.ArgumentParser) -> None:
    """The flags that say which scheduling service to use, and as whom."""
    p.add_argument(
        "--service-url",
        help="scheduling service URL, or several replicas' separated by commas (tried in "
        "turn when one fails); unset: start a local one on its embedded Redis, with its data "
        "in OUTPUT_DIR/scheduler",
    )
    p.add_argument("--run-id", help="run id on the scheduling service (default: a new run)")
    p.add_argument(
        "--token",
        help="the run's token to attach to an existing run, or the operator token to create "
        "one on a deployment that requires it",
    )


def prompt_counts(distributions: list[Distribution]) -> dict[str, int]:
    """Each distribution's train row count: the prompts a run with prompt selection
    declares (prompt id ``i`` is train row ``i``)."""
    return {d.name: len(d.train) for d in distributions}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def resolve_config(args: argparse.Namespace) -> tuple[TrainConfig, Path | None]:
    """The run's config and the checkpoint to resume from (``None`` for a fresh run)."""
    data: dict[str, Any] = {}
    if args.config:
        try:
            data.update(read_config_file(args.config))  # checked whole, with the flags, below
        except ValueError as err:
            raise SystemExit(f"bad config: {err}") from err
    explicit = {
        field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in FLAGS.items()
    }
    explicit = {k: v for k, v in explicit.items() if v is not None}
    if args.levels is not None:
        explicit["levels"] = args.levels
    if args.dynamic_sampling:
        explicit["dynamic_sampling"] = True
    if args.prompt_ids:
        explicit["prompt_selection"] = True
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set needs KEY=VALUE, got {item!r}")
        explicit[key] = _parse_value(value)
    resume = None
    if args.resume:
        out_dir = explicit.get("output_dir", data.get("output_dir", TrainConfig.output_dir))
        resume = latest_checkpoint(out_dir) if args.resume == "auto" else Path(args.resume)
        if resume is None:
            raise SystemExit(f"--resume auto: no checkpoint-* folder in {out_dir}")
        data.update(read_checkpoint(resume)[2])
    data.update(explicit)
    try:
        return TrainConfig.from_dict(data), resume
    except (TypeError, ValueError) as err:
        raise SystemExit(f"bad config: {err}") from err


def build_scheduler(args: argparse.Namespace, distributions: list[str]) -> Scheduler:
    """The scheduler ``args`` ask for: ``LocalScheduler`` in-process, or the HTTP service.

    ``args`` needs ``scheduler``, ``strategy``, ``strategy_params`` and ``seed``, and may
    carry ``prompts`` (each distribution's prompt count: plans then name each slot's prompt)
    and ``prompt_selection`` (their selection parameters); service mode also reads
    ``service_url``, ``run_id``, ``token`` and ``buffer_path`` (None: reports owed during an
    outage are kept in memory only) and creates the run on the service (or attaches to it
    when it exists with the same configuration).
    """
    prompts = {
        "prompts": getattr(args, "prompts", None),
        "prompt_selection": getattr(args, "prompt_selection", None),
    }
    if args.scheduler == "local":
        return LocalScheduler(
            distributions, args.strategy, args.seed, **prompts, **args.strategy_params
        )
    from trainer_client.client import CurriculumClient

    if not args.service_url:
        raise SystemExit("--scheduler service needs --service-url")
    client = CurriculumClient.create_or_attach(
        args.service_url,
        distributions,
        run_id=args.run_id,
        token=args.token,
        strategy={"name": args.strategy, **args.strategy_params},
        seed=args.seed,
        buffer_path=getattr(args, "buffer_path", None),
        **prompts,
    )
    if client.token and client.token != args.token:
        print(
            f"scheduler run {client.run_id!r} created; its token (shown once): {client.token}",
            file=sys.stderr,
        )
    return ServiceScheduler(client)


def _run_to_attach(
    folder: Path, run_id: str | None, token: str | None, resuming: bool
) -> tuple[str | None, str | None]:
    """The run id and token to use: the ones given, else, on resume, those recorded in the
    output folder, so a resumed run goes on in the same scheduling run."""
    recorded = read_run(folder)
    owed_to = buffered_run_id(folder)
    if not resuming:
        if owed_to is not None and owed_to != run_id:
            raise SystemExit(
                f"{buffer_path(folder)} holds {pending_calls(folder)} call(s) owed to "
                f"scheduling run {owed_to!r}; replay them first (`python -m trainer_client "
                f"replay {folder}`), continue that run (`--resume auto`), or delete the file"
            )
        return run_id, token
    if recorded is not None and run_id in (None, recorded.run_id):
        return recorded.run_id, token or recorded.token
    return run_id or owed_to, token


@contextmanager
def scheduler_session(
    config: TrainConfig,
    distributions: list[str],
    service_url: str | None,
    run_id: str | None,
    token: str | None,
    *,
    resuming: bool = False,
    prompts: Mapping[str, int] | None = None,
) -> Iterator[Scheduler]:
    """The run's scheduler for the duration of the block.

    With ``config.prompt_selection``, ``prompts`` must give each distribution's train row
    count (:func:`prompt_counts`): the run declares them, and its plans name each slot's row.

    Service mode with no ``service_url`` starts ``python -m service`` on its embedded Redis
    (data in ``OUTPUT_DIR/scheduler``, so a resumed run finds its state) and stops it after.
    In service mode, what the service is owed is kept in ``OUTPUT_DIR/scheduler-buffer.jsonl``
    and the run in ``OUTPUT_DIR/scheduler-run.json`` (:mod:`trainer_client.run_files`); when
    the block ends normally, the service gets up to ``config.scheduler_drain_s`` seconds to
    take what it is owed, and what it did not take stays on disk with a message saying how
    it will be replayed.
    """
    if config.prompt_selection and prompts is None:
        raise ValueError("prompt_selection needs prompts: each distribution's train row count")
    folder = Path(config.output_dir)
    given_token = token
    with ExitStack() as stack:
        if config.scheduler == "service" and not service_url:
            from trainer_client.local_service import LocalService

            service = stack.enter_context(LocalService(folder / "scheduler"))
            service_url = service.url
            print(f"started a local scheduling service at {service_url}", file=sys.stderr)
        if config.scheduler == "service":
            run_id, token = _run_to_attach(folder, run_id, token, resuming)
        sched_args = argparse.Namespace(
            scheduler=config.scheduler,
            strategy=config.strategy,
            strategy_params=config.strategy_params,
            seed=config.seed,
            service_url=service_url,
            run_id=run_id,
            token=token,
            buffer_path=buffer_path(folder),
            prompts=dict(prompts) if config.prompt_selection and prompts else None,
            prompt_selection=config.prompt_selection_params or None,  # only with prompts
        )
        scheduler = build_scheduler(sched_args, distributions)
        if not isinstance(scheduler, ServiceScheduler):
            yield scheduler
            return
        client = scheduler.client

        def record() -> None:
            # the run's own token, not one the caller gave (an operator's, say)
            own = client.token if client.token != given_token else None
            write_run(folder, RunRecord(client.run_id, own, service_url))

        record()
        stack.callback(scheduler.close)
        yield scheduler
        drained = scheduler.close(config.scheduler_drain_s)
        record()
        if not drained:
            print(leftover_message(folder, service_url, config.scheduler_drain_s), file=sys.stderr)


def train_main(argv: list[str] | None = None) -> int:
    """Train from command-line arguments; returns the process exit code."""
    args = parser().parse_args(argv)
    config, resume = resolve_config(args)
    torch.manual_seed(config.seed)
    distributions = config.distributions()
    names = [d.name for d in distributions]
    with scheduler_session(
        config,
        names,
        args.service_url,
        args.run_id,
        args.token,
        resuming=resume is not None,
        prompts=prompt_counts(distributions),
    ) as scheduler:
        trainer = GRPOTrainer(
            config, scheduler, resume, distributions, progress=not args.no_progress
        )
        final = trainer.train()
        trainer.log.close()
    for key, value in final.items():
        print(f"{key}: {value:.3f}")
    print(f"metrics: {trainer.log.path}")
    return 0


if __name__ == "__main__":
    sys.exit(train_main())
