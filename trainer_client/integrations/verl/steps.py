"""What both verl routes do each step: draw its prompts by its plan, and report it once.

verl trains on one controller process, which holds the whole batch: one report a step
carries every sample, under the id ``{run}/step-{step}/rank-0``. In a run that declares its
prompts, that report also carries the step's ``groups`` (:func:`prompt_groups`): the
responses of one verl ``uid`` (one prompt of the batch) together, named by their row's
distribution and prompt id.

With dynamic sampling (DAPO's group filter) a step generates more than it trains: refills
are drawn from the plans of the step's rounds 1, 2, ..., and :class:`StepLedger` keeps
every generated response of the step until its report: the trained ones with verl's
advantages, the groups the filter dropped (reported as ``filtered``: advantage 0, their
real rewards), and the surplus groups verl generated past the batch and discarded (with the
advantages verl's estimator gives them, :func:`estimator_advantages`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from trainer_client.client import CurriculumClient
from trainer_client.integrations.reporting import mean_abs_over_mask, round_report, row_sums
from trainer_client.sampler import CurriculumBatchSampler

logger = logging.getLogger(__name__)
_warned: set[str] = set()  # the estimators warned about, once each


def step_draw(
    labels: Sequence[str], client: CurriculumClient, batch_size: int, seed: int
) -> CurriculumBatchSampler:
    """The bundled sampler's draw; verl's loop numbers the steps, so only its
    ``global_batch(step)`` (the step's rows by its plan) is used."""
    return CurriculumBatchSampler(
        list(labels), client, batch_size, num_steps=0, seed=seed, rank=0, world_size=1
    )


def sequence_values(
    advantages: torch.Tensor, mask: torch.Tensor, scores: torch.Tensor | None
) -> tuple[list[float], list[float] | None]:
    """Each response's mean ``|advantage|`` over its response ``mask`` and its reward (its
    token scores summed over the mask; ``None`` without scores). ``(batch, length)`` each."""
    rewards = row_sums(scores, mask) if scores is not None else None
    return mean_abs_over_mask(advantages, mask), rewards


def prompt_groups(
    draw: CurriculumBatchSampler,
    uids: Sequence[Any],
    rows: Sequence[int | None],
    rewards: Sequence[float | None],
) -> list[dict[str, Any]]:
    """The step's groups as a report's ``groups`` takes them: the sequences of one verl
    ``uid`` (the responses to one prompt of the batch) together, named by their dataset
    row's distribution and prompt id (``draw.prompt_of``), with their rewards, in the order
    their uids first come. A sequence without a row (a prompt verl drew itself) or without a
    reward is left out."""
    by_uid: dict[str, tuple[int, list[float]]] = {}
    for uid, row, reward in zip(uids, rows, rewards, strict=True):
        if row is None or reward is None:
            continue
        kept_row, values = by_uid.setdefault(str(uid), (int(row), []))
        if kept_row != int(row):
            raise ValueError(f"verl's uid {uid} holds rows {kept_row} and {row}: not one prompt")
        values.append(float(reward))
    groups = []
    for row, values in by_uid.values():
        name, prompt = draw.prompt_of(row)
        groups.append({"distribution": name, "prompt": prompt, "rewards": values})
    return groups


def report_step(
    client: CurriculumClient,
    step: int,
    sources: Sequence[str],
    advantages: Sequence[float],
    rewards: Sequence[float | None] | None,
    groups: Sequence[Mapping[str, Any]] | None = None,
    filtered: Mapping[str, Sequence[Sequence[float]]] | None = None,
) -> None:
    """Report step ``step``'s samples, grouped by ``data_source``, once (with the step's
    ``groups`` and the groups a filter dropped, ``filtered``, when given)."""
    by_advantage, by_reward = round_report(sources, advantages, rewards)
    client.report(
        step,
        by_advantage,
        by_reward,
        filtered={k: [list(g) for g in v] for k, v in filtered.items()} if filtered else None,
        report_id=f"{client.run_id}/step-{step}/rank-0",
        with_weights=False,
        groups=groups or None,
    )


@dataclass
class StepLedger:
    """One step's generated responses, each once, until the step's report.

    - :meth:`trained`: responses with an advantage (the trained batch; or surplus groups,
      with the advantage verl's estimator gives them). An advantage of ``None`` keeps a
      response out of the advantages and rewards; its group still counts for prompt
      selection.
    - :meth:`dropped`: responses of groups a filter dropped: reported as ``filtered``, one
      list of rewards a group (``uid``), advantage 0.

    ``rows``: each response's dataset row (``None``: unknown), which names its group's
    prompt in a run that declares prompts.
    """

    sources: list[str] = field(default_factory=list)
    advantages: list[float | None] = field(default_factory=list)
    rewards: list[float | None] = field(default_factory=list)
    uids: list[str] = field(default_factory=list)
    rows: list[int | None] = field(default_factory=list)
    was_dropped: list[bool] = field(default_factory=list)

    def trained(
        self,
        sources: Sequence[str],
        advantages: Sequence[float | None],
        rewards: Sequence[float | None],
        uids: Sequence[str],
        rows: Sequence[int | None],
    ) -> None:
        """Responses reported with their advantage (mean ``|A|``) and reward."""
        self._add(sources, advantages, rewards, uids, rows, dropped=False)

    def dropped(
        self,
        sources: Sequence[str],
        rewards: Sequence[float],
        uids: Sequence[str],
        rows: Sequence[int | None],
    ) -> None:
        """Responses of groups a filter dropped (their rewards are real, their advantage 0)."""
        self._add(sources, [None] * len(sources), rewards, uids, rows, dropped=True)

    def _add(
        self,
        sources: Sequence[str],
        advantages: Sequence[float | None],
        rewards: Sequence[float | None],
        uids: Sequence[str],
        rows: Sequence[int | None],
        dropped: bool,
    ) -> None:
        for source, advantage, reward, uid, row in zip(
            sources, advantages, rewards, uids, rows, strict=True
        ):
            self.sources.append(str(source))
            self.advantages.append(advantage)
            self.rewards.append(reward)
            self.uids.append(str(uid))
            self.rows.append(row)
            self.was_dropped.append(dropped)

    def filtered(self) -> dict[str, list[list[float]]]:
        """The dropped groups' rewards by source, one list a ``uid``."""
        by_uid: dict[str, dict[str, list[float]]] = {}
        for source, reward, uid, dropped in zip(
            self.sources, self.rewards, self.uids, self.was_dropped, strict=True
        ):
            if dropped and reward is not None:
                by_uid.setdefault(source, {}).setdefault(uid, []).append(float(reward))
        return {source: list(groups.values()) for source, groups in by_uid.items()}

    def report(
        self, client: CurriculumClient, step: int, draw: CurriculumBatchSampler | None
    ) -> bool:
        """Report the step once (nothing when it generated nothing); ``draw``: the step's
        sampler when its plan named the prompts, for the ``groups``. True if reported."""
        kept = [
            (source, advantage, reward)
            for source, advantage, reward, dropped in zip(
                self.sources, self.advantages, self.rewards, self.was_dropped, strict=True
            )
            if advantage is not None and not dropped
        ]
        filtered = self.filtered()
        if not kept and not filtered:
            return False
        groups = None
        if draw is not None and draw.names_prompts:
            groups = prompt_groups(draw, self.uids, self.rows, self.rewards)
        sources = [source for source, _, _ in kept]
        advantages = [advantage for _, advantage, _ in kept]
        rewards = [reward for _, _, reward in kept]
        report_step(client, step, sources, advantages, rewards, groups, filtered)
        return True


def estimator_advantages(
    compute: Callable[[Any], Any],
    token_rewards: torch.Tensor,
    mask: torch.Tensor,
    uids: Sequence[str],
    estimator: str,
) -> list[float] | None:
    """Each response's mean ``|advantage|`` over its ``mask``, as verl's estimator gives it
    (``compute``: verl's ``compute_advantage`` bound to the run's algorithm settings),
    from its ``token_rewards`` and its group (``uids``) alone: for groups verl generated
    but did not train. ``None`` (and a warning, once an estimator) where the estimator needs
    what such a group lacks: a critic's values (GAE), a baseline rollout (ReMax), log-probs."""
    from verl import DataProto  # only where verl runs

    data = DataProto.from_dict(
        tensors={"token_level_rewards": token_rewards.float(), "response_mask": mask.float()},
        non_tensors={"uid": np.array([str(u) for u in uids], dtype=object)},
    )
    try:
        data = compute(data)
    except (KeyError, TypeError) as error:
        if estimator not in _warned:
            _warned.add(estimator)
            logger.warning(
                "verl's %s advantages need more than a discarded group has (%r): the groups "
                "verl generated past the batch are reported for prompt selection only",
                estimator,
                error,
            )
        return None
    return mean_abs_over_mask(data.batch["advantages"], mask)
