"""The bundled GRPO trainer: PyTorch + transformers, batches composed by a curriculum scheduler.

Modules, in the order a step uses them: ``scheduler`` (the protocol and its local/service
implementations), ``tasks`` (prompt distributions and rewards), ``rollout`` (KV-cache
sampling), ``loss`` (advantages, clipped surrogate, KL), ``trainer`` (the loop), plus
``config``, ``model``, ``warmstart``, ``checkpoint``, ``metrics``, ``report``, ``cli`` and
``demo``. Entry points: :func:`train_main`, :func:`demo_main`.
"""

from trainer_client.grpo.cli import build_scheduler, train_main
from trainer_client.grpo.config import TrainConfig
from trainer_client.grpo.demo import demo_main
from trainer_client.grpo.scheduler import LocalScheduler, Scheduler, ServiceScheduler
from trainer_client.grpo.trainer import GRPOTrainer

__all__ = [
    "GRPOTrainer",
    "LocalScheduler",
    "Scheduler",
    "ServiceScheduler",
    "TrainConfig",
    "build_scheduler",
    "demo_main",
    "train_main",
]
