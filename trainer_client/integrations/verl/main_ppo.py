"""``python -m trainer_client.integrations.verl.main_ppo``: verl's ``main_ppo`` (same Hydra
config and overrides) training with :class:`~.trainer.CurriculumPPOTrainer`.

::

    CURRICULUM_TOKEN=rct_... python -m trainer_client.integrations.verl.main_ppo \\
        +curriculum.url=http://scheduler:8000 +curriculum.run_id=my-verl-run \\
        data.train_files=... <the rest of a verl 0.9 command>

``trainer.use_v1=True`` and ``trainer.v1.trainer_mode=sync`` are verl 0.9.1's defaults;
the launcher refuses a config that sets them otherwise. verl's ``TaskRunnerV1`` builds the
trainer named by ``trainer.v1.trainer_mode`` in its own Ray actor;
:class:`CurriculumTaskRunner` is that runner, with ``sync`` naming the curriculum trainer in
its process only (the trainer's code reads ``trainer_mode == "sync"`` for the synchronous
semantics, so the mode keeps its name).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer_client.integrations.verl.versions import unsupported

try:
    from verl.trainer.ppo.v1 import trainer_base
except ModuleNotFoundError as error:  # verl up to 0.8: no v1 trainer
    raise unsupported("trainer", error) from error
import hydra
import ray
import verl.trainer.main_ppo as verl_main
from verl.trainer.ppo.utils import need_critic, need_reference_policy
from verl.utils.config import validate_config
from verl.utils.device import auto_set_device

from trainer_client.integrations.verl.trainer import CurriculumPPOTrainer


class CurriculumTaskRunner(verl_main.TaskRunnerV1.__ray_actor_class__):  # type: ignore[misc, name-defined]
    """verl's v1 task runner, training with :class:`CurriculumPPOTrainer`."""

    def run(self, config: Any) -> None:
        trainer_base.TRAINER_REGISTRY["sync"] = CurriculumPPOTrainer  # this actor's process
        super().run(config)


def run(config: Any) -> None:
    """What verl's ``main`` does with a config, for the v1 trainer, with the curriculum."""
    auto_set_device(config)
    validate_config(
        config=config,
        use_reference_policy=need_reference_policy(config),
        use_critic=need_critic(config),
    )
    if not config.trainer.get("use_v1", False) or config.trainer.v1.trainer_mode != "sync":
        raise SystemExit(
            "the curriculum trainer needs trainer.use_v1=True trainer.v1.trainer_mode=sync"
        )
    verl_main.run_ppo(config, task_runner_class=ray.remote(CurriculumTaskRunner))


def main() -> None:
    """Parse verl's Hydra config and overrides from the command line, then :func:`run`."""
    config_dir = Path(verl_main.__file__).parent / "config"
    hydra.main(config_path=str(config_dir), config_name="ppo_trainer", version_base=None)(run)()


if __name__ == "__main__":
    main()
