"""verl 0.5-0.7's curriculum sampler, built by verl's own ``create_rl_sampler`` from its data
config, over verl's ``RLHFDataset`` in verl's ``StatefulDataLoader`` set-up, fed real
``DataProto`` batches, scheduled by a real service: each step's prompts follow its plan, each
step is reported once with the mean |advantage| over the response mask, and verl's data.pt
carries the curriculum across a resume.

Runs only where verl 0.5-0.7 is installed (``scripts/test-verl 0.7.1``); skipped elsewhere.
"""

from __future__ import annotations

import uuid
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

with warnings.catch_warnings():  # verl's imports warn about Ray's and its own deprecations
    warnings.simplefilter("ignore")
    pytest.importorskip("verl.experimental.dataset.sampler", reason="needs verl 0.5-0.7")
    from torchdata.stateful_dataloader import StatefulDataLoader
    from verl import DataProto
    from verl.trainer.main_ppo import create_rl_sampler
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    from tests.integrations.prompt_support import (
        Group,
        expected_records,
        groups_counted,
        service_records,
    )
    from tests.integrations.verl_support import SOURCES, compose, write_train_file
    from trainer_client import CurriculumClient
    from trainer_client.integrations.verl.sampler import CurriculumSampler

# verl 0.7 calls torch and datasets APIs that the versions installed beside it deprecate
pytestmark = pytest.mark.filterwarnings(
    "ignore:'set_vital' is deprecated:UserWarning",
)

BATCH, N, LENGTH = 4, 2, 5  # prompts a step, responses a prompt, response tokens


@pytest.fixture
def train_file(tmp_path: Path) -> str:
    return write_train_file(tmp_path)


def _data_config(
    service_url: str, run_id: str, token: str | None = None, extra: tuple[str, ...] = ()
) -> Any:
    """verl's ``data`` config, composed from its shipped YAML with the documented overrides."""
    overrides = [
        *extra,
        f"data.train_batch_size={BATCH}",
        "data.dataloader_num_workers=0",
        "data.filter_overlong_prompts=False",
        "data.sampler.class_path=pkg://trainer_client.integrations.verl.sampler",
        "data.sampler.class_name=CurriculumSampler",
        f"+data.sampler.curriculum.url={service_url}",
        f"+data.sampler.curriculum.run_id={run_id}",
        "+data.sampler.curriculum.strategy=dump-ucb",
        "+data.sampler.curriculum.seed=1",
    ]
    if token is not None:
        overrides.append(f"+data.sampler.curriculum.token={token}")
    return compose(overrides).data


def _loader(config: Any, train_file: str) -> StatefulDataLoader:
    """The train dataloader exactly as verl's RayPPOTrainer makes it."""
    dataset = RLHFDataset(data_files=train_file, tokenizer=None, config=config)
    return StatefulDataLoader(
        dataset=dataset,
        batch_size=config.get("gen_batch_size", config.train_batch_size),
        num_workers=config["dataloader_num_workers"],
        drop_last=True,
        collate_fn=collate_fn,
        sampler=create_rl_sampler(config, dataset),
    )


def _trained(batch_dict: dict[str, Any], step: int) -> tuple[DataProto, dict[str, float]]:
    """The batch as verl hands it to ``update``: ``N`` responses a prompt, advantages,
    response mask and scores; and the mean |advantage| each source should be reported with.

    Each response's advantage is ``±(step + slot) / 10`` on its first 3 tokens (the
    response) and 99 on the 2 padding tokens the mask hides."""
    batch = DataProto.from_single_dict(batch_dict)
    # verl's uid: one a prompt, given before the rollout repeats it
    batch.non_tensor_batch["uid"] = np.array([str(uuid.uuid4()) for _ in range(len(batch))])
    batch = batch.repeat(repeat_times=N, interleave=True)
    rows = len(batch)
    mask = torch.zeros(rows, LENGTH)
    mask[:, :3] = 1
    value = torch.tensor([(step + i // N) / 10 * (-1) ** i for i in range(rows)])
    advantages = torch.where(mask.bool(), value[:, None], torch.tensor(99.0))
    scores = torch.zeros(rows, LENGTH)
    scores[:, 2] = torch.arange(rows) % 2  # reward 0 or 1 on the last response token
    batch.batch["response_mask"] = mask
    batch.batch["advantages"] = advantages
    batch.batch["token_level_scores"] = scores
    sources = batch.non_tensor_batch["data_source"].tolist()
    expected = {s: float(np.mean([abs(v) for v, x in zip(value.tolist(), sources, strict=True)
                                  if x == s])) for s in set(sources)}  # fmt: skip
    return batch, expected


def test_verl_builds_it_and_each_step_follows_its_plan_and_is_reported_once(
    service_url: str, train_file: str
) -> None:
    config = _data_config(service_url, "verl-sampler")
    loader = _loader(config, train_file)
    sampler = loader.sampler
    assert isinstance(sampler, CurriculumSampler)
    assert len(loader) == 3 * 8 // BATCH  # verl's steps per epoch
    client = sampler.client
    for step, batch_dict in enumerate(loader, start=1):
        plan = client.plan(step, BATCH)
        assert plan.source == "service"
        assert dict(Counter(batch_dict["data_source"].tolist())) == plan.counts
        batch, _ = _trained(batch_dict, step)
        sampler.update(batch)
        sampler.update(batch)  # verl calls it once; a second call reports nothing
        if step == 3:
            break
    info = client.run_info()
    assert info["version"] == 3  # one report a step
    assert sum(s["n"] for s in info["stats"].values()) == 3 * BATCH * N
    history = client.history()["entries"]
    assert [e["step"] for e in history] == [1, 2, 3]
    client.delete()
    client.close()


def test_one_step_off_policy_reports_each_batch_under_the_step_that_drew_it(
    service_url: str, train_file: str
) -> None:
    """verl 0.7's one-step-off-policy recipe draws step g + 1's batch before step g's
    ``update`` (``_async_gen_next_batch`` before the update, read from its source): each
    report still carries the step whose plan drew its batch, and holds that batch's rows."""
    config = _data_config(service_url, "verl-one-step-off")
    loader = _loader(config, train_file)
    sampler: CurriculumSampler = loader.sampler
    client = sampler.client
    it = iter(loader)
    drawn = {1: next(it)}
    for step in (1, 2, 3):
        drawn[step + 1] = next(it)  # the next step's generation starts first
        before = client.run_info()["stats"]
        sampler.update(_trained(drawn[step], step)[0])
        after = client.run_info()["stats"]
        counts = Counter(drawn[step]["data_source"].tolist())
        assert dict(counts) == client.plan(step, BATCH).counts
        reported = {s: after[s]["n"] - before.get(s, {}).get("n", 0) for s in after}
        assert {s: n for s, n in reported.items() if n} == {s: N * c for s, c in counts.items()}
    assert [e["step"] for e in client.history()["entries"]] == [1, 2, 3]
    client.delete()
    client.close()


def test_a_step_reports_the_mean_abs_advantage_over_the_response_by_source(
    service_url: str, train_file: str
) -> None:
    """The window means the service keeps are the responses' mean |A| over the mask (the
    99s outside it left out), per source; the rewards are the summed token scores."""
    config = _data_config(service_url, "verl-values")
    loader = _loader(config, train_file)
    sampler = loader.sampler
    batch_dict = next(iter(loader))
    batch, means = _trained(batch_dict, 1)
    sampler.update(batch)
    stats = sampler.client.run_info()["stats"]
    rewards = batch.batch["token_level_scores"].sum(-1).tolist()
    sources = batch.non_tensor_batch["data_source"].tolist()
    for source, mean in means.items():
        assert stats[source]["window_mean"] == pytest.approx(mean, abs=1e-6)
        assert stats[source]["n"] == 2 * Counter(batch_dict["data_source"].tolist())[source]
        mine = [r for r, s in zip(rewards, sources, strict=True) if s == source]
        assert stats[source]["reward_n"] == len(mine)
        assert stats[source]["reward_last"] == pytest.approx(np.mean(mine))
    sampler.client.delete()
    sampler.client.close()


def test_verl_checkpoint_carries_the_curriculum_across_a_resume(
    service_url: str, train_file: str, tmp_path: Path
) -> None:
    """Two steps, verl's save (data.pt, before step 2's update, as verl orders them), step
    2's update, a third step; then a new process resumes from data.pt: the service is back
    at the checkpoint (step 1's report), the first batch is step 3's plan, and the epoch
    goes on to its end."""
    config = _data_config(service_url, "verl-resume")
    loader = _loader(config, train_file)
    first: CurriculumSampler = loader.sampler
    it = iter(loader)
    for step in (1, 2):
        batch_dict = next(it)
        if step == 2:
            torch.save(loader.state_dict(), tmp_path / "data.pt")  # verl's _save_checkpoint
        first.update(_trained(batch_dict, step)[0])
    first.update(_trained(next(it), 3)[0])
    assert first.client.run_info()["version"] == 3
    token = first.client.token
    first.client.close()

    resumed = _loader(_data_config(service_url, "verl-resume", token), train_file)
    resumed.load_state_dict(torch.load(tmp_path / "data.pt", weights_only=False))
    sampler: CurriculumSampler = resumed.sampler
    batches = iter(resumed)
    batch_dict = next(batches)  # the restore happens as verl's loop starts
    info = sampler.client.run_info()
    assert sum(s["n"] for s in info["stats"].values()) == BATCH * N  # step 1's report only
    plan = sampler.client.plan(3, BATCH)
    assert dict(Counter(batch_dict["data_source"].tolist())) == plan.counts
    sampler.update(_trained(batch_dict, 3)[0])
    info = sampler.client.run_info()
    assert sum(s["n"] for s in info["stats"].values()) == 2 * BATCH * N
    assert len(list(batches)) == 3  # steps 4-6 end the epoch of 24 rows
    assert sampler.next_step == 7
    sampler.client.delete()
    sampler.client.close()


def test_a_missing_url_says_where_to_set_it(train_file: str, monkeypatch: Any) -> None:
    monkeypatch.delenv("CURRICULUM_URL", raising=False)
    config = _data_config("", "x")  # an empty url counts as none
    with pytest.raises(ValueError, match="CURRICULUM_URL"):
        _loader(config, train_file)


def test_a_client_can_be_handed_in(service_url: str, train_file: str) -> None:
    config = _data_config(service_url, "unused")
    dataset = RLHFDataset(data_files=train_file, tokenizer=None, config=config)
    with CurriculumClient.create_or_attach(service_url, SOURCES, run_id="given") as client:
        sampler = CurriculumSampler(dataset, config, client=client)
        assert sampler.client is client
        assert len(sampler) == 6 * BATCH
        client.delete()


def test_prompt_selection_draws_the_named_rows_and_reports_each_prompts_group(
    service_url: str, train_file: str
) -> None:
    """``prompt_selection`` in the settings: the run declares 8 prompts a source, each step's
    rows are the ones its plan's prompt_ids name (read back from the data's own
    ``extra_info.index``), and after verl's batch balancing reorders the responses, each
    uid's group reaches the service once, under its prompt: the service's prompt state is
    what those groups give."""
    extra = ("+data.sampler.curriculum.prompt_selection.mode=coverage",)
    loader = _loader(_data_config(service_url, "verl-prompts", extra=extra), train_file)
    sampler: CurriculumSampler = loader.sampler
    client = sampler.client
    counts = dict.fromkeys(SOURCES, 8)
    info = client.run_info()
    assert info["config"]["prompts"] == counts
    names = info["config"]["distributions"]
    groups: list[Group] = []
    for step, batch_dict in enumerate(loader, start=1):
        plan = client.plan(step, BATCH)
        assert plan.prompt_ids is not None
        slots = list(zip(plan.assignment, plan.prompt_ids, strict=True))
        assert batch_dict["index"].tolist() == [8 * SOURCES.index(n) + p for n, p in slots]
        batch, _ = _trained(batch_dict, step)
        # slot j's rewards: [1, 1] (solved), [0, 0] or [0, 1] by (j + step) % 3; then the
        # responses reordered, as verl's balance_batch does
        patterns = [[1.0, 1.0], [0.0, 0.0], [0.0, 1.0]]
        scores = torch.zeros(len(batch), LENGTH)
        for i in range(len(batch)):
            scores[i, 2] = patterns[(i // N + step) % 3][i % N]
        batch.batch["token_level_scores"] = scores
        batch.reorder(torch.randperm(len(batch), generator=torch.Generator().manual_seed(step)))
        rewards = batch.batch["token_level_scores"].sum(-1).tolist()
        rows = batch.non_tensor_batch
        by_uid: dict[str, Group] = {}
        for uid, source, index, reward in zip(
            rows["uid"], rows["data_source"], rows["index"], rewards, strict=True
        ):
            group = by_uid.setdefault(uid, (source, int(index) - 8 * SOURCES.index(source), []))
            group[2].append(reward)
        groups += by_uid.values()
        sampler.update(batch)
        if step == 3:
            break
    state = client.export()["prompt_state"]
    assert state["groups"] == groups_counted(names, groups) and sum(state["groups"]) == 12
    assert service_records(names, counts, state) == expected_records(names, counts, groups)
    assert {tuple(sorted(rewards)) for _, _, rewards in groups} == {(1, 1), (0, 0), (0, 1)}
    client.delete()
    client.close()
