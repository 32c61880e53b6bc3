"""verl 0.5-0.7's curriculum sampler, built by verl's own ``create_rl_sampler`` from its data
config, over verl's ``RLHFDataset`` in verl's ``StatefulDataLoader`` set-up, fed real
``DataProto`` batches, scheduled by a real service: each step's prompts follow its plan, each
step is reported once with the mean |advantage| over the response mask, and verl's data.pt
carries the curriculum across a resume. verl's DAPO recipe (not in verl's package) is
reproduced around the same parts, with its two documented calls: each round follows the
plan of its ``(step, round)`` and every generated group is reported once.

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
    from verl.trainer.ppo.ray_trainer import compute_advantage
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
    service_url: str,
    run_id: str,
    token: str | None = None,
    extra: tuple[str, ...] = (),
    strategy: str = "dump-ucb",
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
        f"+data.sampler.curriculum.strategy={strategy}",
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


# --- dynamic sampling: verl's DAPO recipe ----------------------------------------------------

GEN, TRAIN = 6, 4  # the recipe's data.gen_batch_size (a round's prompts), train_batch_size
REWARDS = {"easy": [1.0] * N, "hard": [0.0] * N, "mid": [float(s == 0) for s in range(N)]}


def _generated(batch_dict: dict[str, Any]) -> DataProto:
    """A round as verl's DAPO recipe holds it before its filter: the prompts under new
    uids, ``N`` responses each (interleaved), rewards set by source (easy all 1, hard all
    0, mid 1 then 0), ``token_level_scores`` = ``token_level_rewards`` (no KL in reward)."""
    batch = DataProto.from_single_dict(batch_dict)
    batch.non_tensor_batch["uid"] = np.array(
        [str(uuid.uuid4()) for _ in range(len(batch))], dtype=object
    )
    batch = batch.repeat(repeat_times=N, interleave=True)
    sources = batch.non_tensor_batch["data_source"].tolist()
    mask = torch.zeros(len(batch), LENGTH)
    mask[:, :3] = 1
    scores = torch.zeros(len(batch), LENGTH)
    scores[:, 2] = torch.tensor([REWARDS[s][i % N] for i, s in enumerate(sources)])
    batch.batch["response_mask"] = mask
    batch.batch["token_level_scores"] = scores
    batch.batch["token_level_rewards"] = scores.clone()
    return batch


def _dapo_recipe(
    loader: StatefulDataLoader, steps: int, algorithm: Any
) -> tuple[dict[int, list[DataProto]], dict[int, DataProto]]:
    """verl's DAPO recipe loop (``recipe/dapo/dapo_ray_trainer.py``, 0.5-0.7, read from
    source) around the real data loader, with the two calls the docs add: draw a round,
    filter out the groups whose ``seq_final_reward`` has std 0, ``record_round``; another
    round while fewer than ``TRAIN`` prompts were kept, else cut the kept ones to ``TRAIN``
    groups (the surplus discarded), verl's own ``compute_advantage``, ``update``. Returns
    each step's rounds and the batch it trained."""
    sampler: CurriculumSampler = loader.sampler
    rounds: dict[int, list[DataProto]] = {}
    trained: dict[int, DataProto] = {}
    step, batch, kept_prompts = 1, None, 0
    for _epoch in range(20):
        for batch_dict in loader:
            new = _generated(batch_dict)
            rounds.setdefault(step, []).append(new)
            metric = new.batch["token_level_rewards"].sum(dim=-1).numpy()
            values: dict[str, list[float]] = {}
            for uid, value in zip(new.non_tensor_batch["uid"], metric, strict=True):
                values.setdefault(uid, []).append(value)
            kept = [u for u, v in values.items() if np.std(v) > 0 or len(v) == 1]
            sampler.record_round(new, kept, algorithm)  # the docs' first call
            kept_prompts += len(kept)
            rows = [i for i, u in enumerate(new.non_tensor_batch["uid"]) if u in kept]
            new = new[rows]
            batch = new if batch is None else DataProto.concat([batch, new])
            if kept_prompts < TRAIN:
                continue
            batch = batch[: TRAIN * N]
            batch = compute_advantage(
                batch,
                adv_estimator=algorithm.adv_estimator,
                gamma=algorithm.gamma,
                lam=algorithm.lam,
                num_repeat=N,
                norm_adv_by_std_in_grpo=algorithm.norm_adv_by_std_in_grpo,
            )
            sampler.update(batch)  # the docs' second call
            trained[step] = batch
            step, batch, kept_prompts = step + 1, None, 0
            if step > steps:
                return rounds, trained
    raise AssertionError("the recipe did not reach its steps")


def _dapo_loader(
    service_url: str, train_file: str, run_id: str, extra: tuple[str, ...] = ()
) -> tuple[StatefulDataLoader, Any]:
    """The recipe's train data loader (``data.gen_batch_size`` prompts a round, a uniform
    curriculum: every round mixes the sources) and verl's ``algorithm`` config (GRPO)."""
    overrides = (*extra, f"+data.gen_batch_size={GEN}")
    config = _data_config(service_url, run_id, extra=overrides, strategy="uniform")
    algorithm = compose(["algorithm.adv_estimator=grpo"]).algorithm
    return _loader(config, train_file), algorithm


def test_dapo_recipe_rounds_follow_the_plans_and_every_generated_group_is_reported(
    service_url: str, train_file: str
) -> None:
    """verl's DAPO recipe draws rounds of ``GEN`` prompts until ``TRAIN`` groups passed its
    filter, and never calls ``update`` itself. With the two documented calls, round ``r``
    of step ``g`` is the plan of ``(g, GEN, r)``, the sampler's steps stay verl's (no drift
    by the extra draws), and each step's one report counts every generated response once:
    the dropped (easy, hard) groups with |A| 0 and their rewards, the trained mid groups
    with verl's GRPO advantages, and the surplus mid groups the recipe cut with the same."""
    loader, algorithm = _dapo_loader(service_url, train_file, "verl-dapo")
    sampler: CurriculumSampler = loader.sampler
    client = sampler.client
    rounds, trained = _dapo_recipe(loader, 3, algorithm)
    generated: Counter[str] = Counter()
    for step in (1, 2, 3):
        for r, batch in enumerate(rounds[step]):
            prompts = batch.non_tensor_batch["data_source"][::N].tolist()
            assert prompts == client.plan(step, GEN, round=r).assignment
            generated.update(prompts)
        assert set(trained[step].non_tensor_batch["data_source"]) == {"mid"}
    assert sum(len(r) for r in rounds.values()) > 3  # refill rounds were drawn
    assert generated["easy"] + generated["hard"] > 0  # dropped groups
    assert generated["mid"] > 3 * TRAIN  # surplus: mid groups past the trained batch
    assert sampler.next_step == 4 and sampler.drawn == sum(len(r) for r in rounds.values())
    info = client.run_info()
    assert info["version"] == 3  # one report a step
    assert [e["step"] for e in client.history()["entries"]] == [1, 2, 3]
    window = {"easy": 0.0, "hard": 0.0, "mid": 2**-0.5}  # GRPO's |A|; 0 for dropped groups
    reward = {"easy": 1.0, "hard": 0.0, "mid": 0.5}
    for source in SOURCES:
        stats = info["stats"][source]
        assert stats["n"] == stats["reward_n"] == N * generated[source]
        assert stats["window_mean"] == pytest.approx(window[source], abs=1e-4)
        assert stats["reward_mean"] == pytest.approx(reward[source])
    client.delete()
    client.close()


def test_dapo_recipe_reports_every_generated_group_for_prompt_selection(
    service_url: str, train_file: str
) -> None:
    """With ``prompt_selection``: each round's rows are the ones its plan names, and every
    generated group (trained, dropped or surplus) reaches the service once under its
    prompt: the prompt state is exactly what all of them give."""
    extra = ("+data.sampler.curriculum.prompt_selection.mode=coverage",)
    loader, algorithm = _dapo_loader(service_url, train_file, "verl-dapo-prompts", extra)
    client = loader.sampler.client
    rounds, _ = _dapo_recipe(loader, 2, algorithm)
    names = client.run_info()["config"]["distributions"]
    counts = dict.fromkeys(SOURCES, 8)
    groups: list[Group] = []
    for step, batches in rounds.items():
        for r, batch in enumerate(batches):
            plan = client.plan(step, GEN, round=r)
            assert plan.prompt_ids is not None
            slots = list(zip(plan.assignment, plan.prompt_ids, strict=True))
            rows = batch.non_tensor_batch["index"][::N].tolist()
            assert rows == [8 * SOURCES.index(n) + p for n, p in slots]
            groups += [(n, p, REWARDS[n]) for n, p in slots]
    assert len(groups) > 2 * GEN  # refill rounds
    state = client.export()["prompt_state"]
    assert state["groups"] == groups_counted(names, groups)
    assert service_records(names, counts, state) == expected_records(names, counts, groups)
    assert sum(s["n"] for s in client.run_info()["stats"].values()) == N * len(groups)
    client.delete()
    client.close()


def test_surplus_advantages_are_verls_estimators_or_none_without_a_critic() -> None:
    """A surplus group's advantages come from verl's ``compute_advantage``: GRPO gives a
    mixed pair ±0.7071; GAE needs a critic's values, which a discarded group never got."""
    from trainer_client.integrations.verl.sampler import _estimator
    from trainer_client.integrations.verl.steps import estimator_advantages

    mask = torch.ones(4, LENGTH)
    scores = torch.zeros(4, LENGTH)
    scores[[0, 2], -1] = 1.0
    uids = ["a", "a", "b", "b"]
    grpo = compose(["algorithm.adv_estimator=grpo"]).algorithm
    gae = compose(["algorithm.adv_estimator=gae"]).algorithm
    values = estimator_advantages(_estimator(grpo), scores, mask, uids, "grpo")
    assert values == pytest.approx([2**-0.5] * 4, abs=1e-4)
    assert estimator_advantages(_estimator(gae), scores, mask, uids, "gae") is None
