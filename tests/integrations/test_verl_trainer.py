"""verl 0.9's v1 route: ``CurriculumPPOTrainer`` built from verl's composed ``ppo_trainer``
config, running verl's own ``step``: its data set and collate, its TransferQueue (on a local
Ray), its replay buffer and its GRPO advantages, scheduled by a real service. Each step's
prompts follow the plan, each step is reported once with the mean |advantage| over the
response mask by data_source, and verl's checkpoint carries the curriculum across a resume.
With DAPO's group filter (verl's replay buffer evicting, refilling, discarding the surplus),
the refills follow the step's rounds' plans and every generated group is reported once.

What needs GPUs is replaced: the rollout (a stand-in agent loop that writes trajectories
into the TransferQueue as verl's does, with rewards set by source), the actor's log-prob and
update passes, the reordering of batch balancing (its padding is verl's own, and is not
reported), and the actor's weights in checkpoints. Runs only where verl 0.9+ is installed
(``scripts/test-verl 0.9.1``).
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch

with warnings.catch_warnings():  # verl's imports warn about Ray's and its own deprecations
    warnings.simplefilter("ignore")
    pytest.importorskip("verl.trainer.ppo.v1", reason="needs verl 0.9+")
    import ray
    import transfer_queue as tq
    from omegaconf import OmegaConf
    from verl.trainer.ppo.padding_utils import upsample_batch_to_divisible_size
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    from tests.integrations.prompt_support import (
        Group,
        expected_records,
        groups_counted,
        service_records,
    )
    from tests.integrations.verl_support import SOURCES, SeenOnSave, compose, write_train_file
    from trainer_client import CurriculumClient
    from trainer_client.integrations.verl.trainer import CurriculumPPOTrainer

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

BATCH, N, LENGTH = 4, 2, 4  # prompts a step, responses a prompt, response tokens


@pytest.fixture(scope="module")
def transfer_queue() -> Iterator[None]:
    """verl's TransferQueue on a local Ray: one storage unit, as small as it goes."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    tq.init(
        OmegaConf.create(
            {
                "backend": {
                    "SimpleStorage": {"num_data_storage_units": 1, "total_storage_size": 1000}
                }
            }
        )
    )
    yield
    tq.close()
    ray.shutdown()


@pytest.fixture
def train_file(tmp_path: Path) -> str:
    return write_train_file(tmp_path)


def _config(
    train_file: str,
    out: Path,
    service_url: str,
    run_id: str,
    token: str | None,
    extra: tuple[str, ...] = (),
    strategy: str = "dump-ucb",
) -> Any:
    """verl's ``ppo_trainer`` config composed with the launch recipe's overrides."""
    overrides = [
        *extra,
        "trainer.use_v1=True",
        "trainer.v1.trainer_mode=sync",
        f"data.train_files={train_file}",
        f"data.val_files={train_file}",
        f"data.train_batch_size={BATCH}",
        "data.filter_overlong_prompts=False",
        "data.dataloader_num_workers=0",
        "algorithm.adv_estimator=grpo",
        f"actor_rollout_ref.rollout.n={N}",
        f"trainer.default_local_dir={out}",
        "trainer.logger=[]",
        f"+curriculum.url={service_url}",
        f"+curriculum.run_id={run_id}",
        f"+curriculum.strategy={strategy}",
        "+curriculum.seed=1",
    ]
    if token is not None:
        overrides.append(f"+curriculum.token={token}")
    return compose(overrides)


class Rollout:
    """A stand-in for verl's AgentLoopManagerTQ: ``N`` trajectories a prompt into the
    TransferQueue, keyed and tagged as verl's agent loop does. Reward 1 for every ``easy``
    response, 0 for every ``hard`` one, and 1 for the first of each ``mid`` group only: so
    GRPO's advantages are 0 for easy and hard and ±0.7071 for mid."""

    REWARDS: ClassVar[dict[str, list[float]]] = {
        "easy": [1.0] * N, "hard": [0.0] * N, "mid": [float(s == 0) for s in range(N)],
    }  # fmt: skip

    def __init__(self) -> None:
        self.seen: dict[int, list[str]] = {}  # each step's first batch (the plan's)
        self.rows: dict[int, list[int]] = {}  # the data's own extra_info.index of each prompt
        # every batch handed to the rollout: its step, sources, rows and uids
        self.calls: list[tuple[int, list[str], list[int], list[str]]] = []

    def generate_sequences(self, batch: Any) -> None:
        step = int(batch["global_steps"])
        sources = [str(s) for s in batch["data_source"]]
        self.seen.setdefault(step, sources)
        self.rows.setdefault(step, [int(i) for i in batch["index"]])
        rows, uids = [int(i) for i in batch["index"]], [str(u) for u in batch["uid"]]
        self.calls.append((step, sources, rows, uids))
        keys, fields, tags = [], [], []
        for uid, source in zip(batch["uid"], sources, strict=True):
            for session in range(N):
                reward = self.REWARDS[source][session]
                mask = torch.tensor([1, 1, 1, 0])  # the last token is not the policy's
                scores = torch.zeros(LENGTH)
                scores[2] = reward
                keys.append(f"{uid}_{session}_0")
                fields.append(
                    {
                        "prompts": torch.tensor([1, 2]),
                        "responses": torch.tensor([3, 4, 5, 6]),
                        "response_mask": mask,
                        "rm_scores": scores,
                        "old_log_probs": torch.zeros(LENGTH),
                        "uid": str(uid),
                        "data_source": source,
                    }
                )
                tags.append({"status": "success", "global_steps": step, "prompt_len": 2,
                             "response_len": LENGTH, "seq_len": 2 + LENGTH,
                             "min_global_steps": step, "max_global_steps": step})  # fmt: skip
        tq.kv_batch_put(
            keys=keys, partition_id="train", fields=list_of_dict_to_tensordict(fields), tags=tags
        )
        for uid in batch["uid"]:
            tq.kv_put(key=str(uid), partition_id="train", tag={"status": "finished"})


class Stub:
    """What stands in for verl's GPU-bound managers: every call does nothing."""

    reward_loop_worker_handles: ClassVar[list[Any]] = []  # rewards come with the trajectories

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _trainer(config: Any, client: CurriculumClient | None = None) -> CurriculumPPOTrainer:
    """The trainer set up as ``init()`` does, with the GPU-bound parts stubbed."""
    trainer = CurriculumPPOTrainer(config, client=client)
    trainer.tokenizer = trainer.processor = None
    trainer._init_dataloader()
    trainer.agent_loop_manager = Rollout()
    trainer.checkpoint_manager = trainer.reward_loop_manager = Stub()
    trainer.actor_rollout_wg = Stub()
    trainer.curr_step_profile = False
    keep = lambda batch, *args, **kwargs: batch  # noqa: E731
    # balancing over 3 data-parallel ranks: verl's own padding, 8 trajectories -> 9
    trainer._balance_batch = lambda batch, metrics: upsample_batch_to_divisible_size(batch, 3, 0)
    trainer._compute_old_log_prob = keep
    trainer._update_actor = keep
    return trainer


def _run_step(trainer: CurriculumPPOTrainer, step: int) -> None:
    """One step of verl's ``fit``: the step, then the TransferQueue emptied."""
    trainer.global_steps = step
    batch = trainer.step({}, {})
    tq.kv_clear(keys=batch.keys, partition_id=batch.partition_id)


def test_each_step_follows_its_plan_and_is_reported_once_by_source(
    transfer_queue: None, service_url: str, train_file: str, tmp_path: Path
) -> None:
    trainer = _trainer(_config(train_file, tmp_path, service_url, "verl-v1", None))
    client = trainer.curriculum
    assert client is not None
    for step in (1, 2):
        _run_step(trainer, step)
        plan = client.plan(step, BATCH)
        assert plan.source == "service"
        assert dict(Counter(trainer.agent_loop_manager.seen[step])) == plan.counts
    info = client.run_info()
    assert info["version"] == 2  # one report a step
    assert [e["step"] for e in client.history()["entries"]] == [1, 2]
    stats = info["stats"]
    drawn = Counter(trainer.agent_loop_manager.seen[1]) + Counter(
        trainer.agent_loop_manager.seen[2]
    )
    for source in SOURCES:
        assert stats[source]["n"] == N * drawn[source]
    assert drawn["mid"] > 0  # the run's seed draws it (the one source with a signal)
    window = {"easy": 0.0, "hard": 0.0, "mid": 2**-0.5}  # GRPO's |A| over the mask
    reward = {"easy": 1.0, "hard": 0.0, "mid": 0.5}
    for source in drawn:
        assert stats[source]["window_mean"] == pytest.approx(window[source], abs=1e-4)
        assert stats[source]["reward_mean"] == pytest.approx(reward[source])
    client.delete()


def test_a_verl_checkpoint_carries_the_curriculum_across_a_resume(
    transfer_queue: None, service_url: str, train_file: str, tmp_path: Path
) -> None:
    """Steps 1-2, verl's checkpoint at step 2 (the curriculum in its folder before verl marks
    it latest and calls its checkpoint callback), a step 3 that the crash loses; a new trainer
    resumes from the checkpoint: the service is back at step 2 and step 3 is drawn by its
    plan and reported again."""
    callback = "trainer.checkpoint_callback_class=tests.integrations.verl_support.SeenOnSave"
    config = _config(train_file, tmp_path, service_url, "verl-v1-resume", None, (callback,))
    first = _trainer(config)
    assert first.curriculum is not None
    for step in (1, 2):
        _run_step(first, step)
    SeenOnSave.seen.clear()
    first._save_checkpoint()
    saved = json.loads((tmp_path / "global_step_2" / "curriculum.json").read_text())
    assert saved["step"] == 2
    # verl's callback (an upload's place) fires after it marks the step latest: the
    # curriculum is in the folder by then
    [seen] = SeenOnSave.seen
    assert seen["step"] == 2 and seen["latest"] == "2"
    assert seen["curriculum"] is not None and json.loads(seen["curriculum"]) == saved
    assert (tmp_path / "global_step_2" / "data.pt").exists()
    _run_step(first, 3)
    token = first.curriculum.token
    assert sum(s["n"] for s in first.curriculum.run_info()["stats"].values()) == 3 * BATCH * N
    first.curriculum.close()

    resumed = _trainer(_config(train_file, tmp_path, service_url, "verl-v1-resume", token))
    resumed._load_checkpoint()  # as init() does, after the data loader
    assert resumed.global_steps == 2
    client = resumed.curriculum
    assert client is not None
    assert sum(s["n"] for s in client.run_info()["stats"].values()) == 2 * BATCH * N
    _run_step(resumed, 3)
    assert dict(Counter(resumed.agent_loop_manager.seen[3])) == client.plan(3, BATCH).counts
    assert sum(s["n"] for s in client.run_info()["stats"].values()) == 3 * BATCH * N
    client.delete()
    client.close()


def test_prompt_selection_draws_the_named_rows_and_reports_each_prompts_group(
    transfer_queue: None, service_url: str, train_file: str, tmp_path: Path
) -> None:
    """``curriculum.prompt_selection``: the run declares 8 prompts a source, each step's
    prompts are the rows its plan's prompt_ids name (read back from the data's own
    ``extra_info.index``), and each uid's trajectories reach the service once as its
    prompt's group (batch balancing's padding left out): the service's prompt state is what
    those groups give."""
    extra = ("+curriculum.prompt_selection.mode=coverage",)
    trainer = _trainer(_config(train_file, tmp_path, service_url, "verl-v1-prompts", None, extra))
    client = trainer.curriculum
    assert client is not None
    counts = dict.fromkeys(SOURCES, 8)
    info = client.run_info()
    assert info["config"]["prompts"] == counts
    names = info["config"]["distributions"]
    groups: list[Group] = []
    for step in (1, 2, 3):
        _run_step(trainer, step)
        plan = client.plan(step, BATCH)
        assert plan.prompt_ids is not None
        slots = list(zip(plan.assignment, plan.prompt_ids, strict=True))
        assert trainer.agent_loop_manager.rows[step] == [8 * SOURCES.index(n) + p for n, p in slots]
        groups += [(n, p, Rollout.REWARDS[n]) for n, p in slots]
    state = client.export()["prompt_state"]
    assert state["groups"] == groups_counted(names, groups) and sum(state["groups"]) == 12
    assert service_records(names, counts, state) == expected_records(names, counts, groups)
    assert sum(s["n"] for s in client.run_info()["stats"].values()) == 3 * BATCH * N
    client.delete()


DAPO = ("algorithm.filter_groups.enable=True", "algorithm.filter_groups.metric=reward")


def _dapo_steps(
    trainer: CurriculumPPOTrainer, steps: int
) -> tuple[dict[int, list[list[str]]], dict[int, list[str]]]:
    """``steps`` steps with DAPO's filter: each step's batches as the rollout got them (the
    plan's, then verl's refills), and the uids each step trained."""
    trained: dict[int, list[str]] = {}

    def update_actor(batch: Any, *args: Any, **kwargs: Any) -> Any:
        uids = [k.split("_")[0] for k, t in zip(batch.keys, batch.tags, strict=True)
                if not t.get("is_padding", False)]  # fmt: skip
        trained.setdefault(trainer.global_steps, []).extend(uids)
        return batch

    trainer._update_actor = update_actor
    for step in range(1, steps + 1):
        _run_step(trainer, step)
    batches: dict[int, list[list[str]]] = {}
    for step, sources, _, _ in trainer.agent_loop_manager.calls:
        batches.setdefault(step, []).append(sources)
    return batches, trained


def _refill_slots(client: CurriculumClient, step: int, count: int) -> list[tuple[str, int]]:
    """The first ``count`` slots of the step's rounds 1, 2, ..., each round a plan of
    ``BATCH`` slots: ``(distribution, prompt id)`` (prompt id -1 where the plan names none)."""
    slots: list[tuple[str, int]] = []
    for r in range(1, -(-count // BATCH) + 1):
        plan = client.plan(step, BATCH, round=r)
        slots += zip(plan.assignment, plan.prompt_ids or [-1] * BATCH, strict=True)
    return slots[:count]


def test_dynamic_sampling_refills_from_the_rounds_plans_and_reports_every_group(
    transfer_queue: None, service_url: str, train_file: str, tmp_path: Path
) -> None:
    """verl's DAPO filter (``algorithm.filter_groups``) in its synchronous replay buffer
    drops the easy and hard groups (equal rewards) and asks for refills until the batch has
    ``BATCH`` mid groups, then discards the surplus. The step's batch is its plan, the
    refills are the next slots of its rounds 1, 2, ..., and the service counts every
    generated trajectory once, under its step: the dropped groups with |A| 0 and their
    rewards, though the actor trained mid groups only."""
    # uniform: every step mixes the sources, so verl refills, and generates a surplus
    config = _config(train_file, tmp_path, service_url, "verl-v1-dapo", None, DAPO, "uniform")
    trainer = _trainer(config)
    client = trainer.curriculum
    assert client is not None
    batches, trained = _dapo_steps(trainer, 3)
    source_of = {
        uid: source
        for _, sources, _, uids in trainer.agent_loop_manager.calls
        for uid, source in zip(uids, sources, strict=True)
    }
    generated: Counter[str] = Counter()
    for step in (1, 2, 3):
        first, *refills = batches[step]
        assert first == client.plan(step, BATCH).assignment
        refilled = [s for batch in refills for s in batch]
        assert refilled == [n for n, _ in _refill_slots(client, step, len(refilled))]
        generated.update(first + refilled)
        # the actor trained BATCH groups, mid ones only: verl dropped the others
        assert {source_of[u] for u in trained[step]} == {"mid"}
        assert len(set(trained[step])) == BATCH
    assert generated["easy"] + generated["hard"] > 0  # dropped groups
    assert generated["mid"] > 3 * BATCH  # surplus: mid groups generated past the batch
    info = client.run_info()
    assert info["version"] == 3  # one report a step
    assert [e["step"] for e in client.history()["entries"]] == [1, 2, 3]
    stats = info["stats"]
    for source in SOURCES:
        assert stats[source]["n"] == N * generated[source]  # kept, dropped and surplus
        assert stats[source]["reward_n"] == N * generated[source]
    window = {"easy": 0.0, "hard": 0.0, "mid": 2**-0.5}  # the dropped groups' |A| is 0
    reward = {"easy": 1.0, "hard": 0.0, "mid": 0.5}
    for source in generated:
        assert stats[source]["window_mean"] == pytest.approx(window[source], abs=1e-4)
        assert stats[source]["reward_mean"] == pytest.approx(reward[source])
    client.delete()


def test_dynamic_sampling_reports_every_generated_group_for_prompt_selection(
    transfer_queue: None, service_url: str, train_file: str, tmp_path: Path
) -> None:
    """With ``prompt_selection`` and DAPO's filter: every generated group, trained, dropped
    or surplus, reaches the service once, under its prompt (the rows of the rounds' plans):
    the service's prompt state is exactly what all of them give."""
    extra = (*DAPO, "+curriculum.prompt_selection.mode=coverage")
    trainer = _trainer(_config(train_file, tmp_path, service_url, "verl-v1-dapo-p", None, extra))
    client = trainer.curriculum
    assert client is not None
    _dapo_steps(trainer, 2)
    names = client.run_info()["config"]["distributions"]
    counts = dict.fromkeys(SOURCES, 8)
    batches: dict[int, list[list[tuple[str, int]]]] = {}
    for step, sources, rows, _ in trainer.agent_loop_manager.calls:
        slots = [(n, r - 8 * SOURCES.index(n)) for n, r in zip(sources, rows, strict=True)]
        batches.setdefault(step, []).append(slots)
    groups: list[Group] = []
    for step, (first, *refills) in batches.items():  # the rows each round's plan names
        plan = client.plan(step, BATCH)
        assert first == list(zip(plan.assignment, plan.prompt_ids or [], strict=True))
        refilled = [slot for batch in refills for slot in batch]
        assert refilled == _refill_slots(client, step, len(refilled))
        groups += [(n, p, Rollout.REWARDS[n]) for n, p in first + refilled]
    assert len(groups) > 2 * BATCH  # refills happened
    state = client.export()["prompt_state"]
    assert state["groups"] == groups_counted(names, groups)
    assert service_records(names, counts, state) == expected_records(names, counts, groups)
    assert sum(s["n"] for s in client.run_info()["stats"].values()) == N * len(groups)
    client.delete()


def test_it_is_the_synchronous_v1_trainer_only(
    service_url: str, train_file: str, tmp_path: Path
) -> None:
    config = _config(train_file, tmp_path, service_url, "x", None)
    config.trainer.v1.trainer_mode = "colocate_async"
    with pytest.raises(ValueError, match=r"trainer\.v1\.trainer_mode=sync"):
        CurriculumPPOTrainer(config)


def test_the_launchers_ray_actor_builds_the_curriculum_trainer(
    transfer_queue: None, train_file: str, tmp_path: Path
) -> None:
    """``main_ppo``'s task runner, a real Ray actor as ``run_ppo`` makes it, running verl's
    ``TaskRunnerV1.run``: ``sync`` names the curriculum trainer there, which refuses a
    config without the service's URL before anything claims a GPU. (Kept last in the file:
    a test run after it found the module's TransferQueue hanging in ``kv_batch_put``.)"""
    from trainer_client.integrations.verl.main_ppo import CurriculumTaskRunner

    config = _config(train_file, tmp_path, "", "x", None)
    runner = ray.remote(CurriculumTaskRunner).remote()
    with pytest.raises(ray.exceptions.RayTaskError, match="the curriculum needs url"):
        ray.get(runner.run.remote(config), timeout=120)
    ray.kill(runner)
