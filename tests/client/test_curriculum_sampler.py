"""CurriculumBatchSampler: batches follow the plan, ranks split it without overlap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from trainer_client import CurriculumBatchSampler, CurriculumClient
from trainer_client.sampler import prompt_counts

NAMES = ["a", "b", "c", "d"]
LABELS = [NAMES[i % 4] for i in range(80)]  # 20 rows per distribution, interleaved


def test_batches_follow_the_plan_of_their_step(service_url: str) -> None:
    """Row i of a step's batch has the distribution the plan gives slot i; resume works."""
    with CurriculumClient.create_or_attach(service_url, NAMES, run_id="sampler") as client:
        client.report(0, {"a": [1.7] * 10, "b": [0.0] * 10})  # "b" now rarely planned
        rows = [{"data_source": label, "prompt": str(i)} for i, label in enumerate(LABELS)]
        sampler = CurriculumBatchSampler(rows, client, 16, num_steps=3, start_step=2, seed=5)
        batches = list(sampler)
        assert len(batches) == 3
        assert len({LABELS[i] for batch in batches for i in batch}) >= 3
        for step, batch in zip(range(2, 5), batches, strict=True):
            plan = client.plan(step, 16)
            assert [LABELS[i] for i in batch] == plan.assignment
            assert len(set(batch)) == 16, "rows are drawn without replacement"
        again = CurriculumBatchSampler(LABELS, client, 16, num_steps=3, start_step=2, seed=5)
        again.set_step(4)
        assert len(again) == 1 and list(again) == batches[2:]
        with pytest.raises(ValueError, match="no row of the dataset"):
            list(CurriculumBatchSampler(["z"] * 40, client, 16, num_steps=1))
        client.delete()


def test_a_refill_round_takes_the_rows_of_its_own_plan(service_url: str) -> None:
    """``global_batch(step, round)``: round 0 is the step's batch; round r > 0 is the plan
    of ``(step, batch_size, r)`` (every caller gets the same rows), drawn apart from
    round 0's."""
    with CurriculumClient.create_or_attach(service_url, NAMES, run_id="rounds") as client:
        sampler = CurriculumBatchSampler(LABELS, client, 16, num_steps=1, seed=5)
        again = CurriculumBatchSampler(LABELS, client, 16, num_steps=1, seed=5)
        assert sampler.global_batch(3, 0) == sampler.global_batch(3)
        batches = [sampler.global_batch(3, r) for r in range(3)]
        for r, batch in enumerate(batches):
            assert [LABELS[i] for i in batch] == client.plan(3, 16, round=r).assignment
            assert again.global_batch(3, r) == batch
        assert len({tuple(b) for b in batches}) == 3
        client.delete()


def _shard_worker(
    rank: int, world_size: int, url: str, run_id: str, token: str, out_dir: str
) -> None:
    dist.init_process_group(
        "gloo",
        init_method=f"file://{out_dir}/rendezvous",
        rank=rank,
        world_size=world_size,
    )
    try:
        with CurriculumClient(url, run_id, token, rank=rank) as client:
            sampler = CurriculumBatchSampler(LABELS, client, 8, num_steps=3, seed=9)
            shard = {"rank": sampler.rank, "world": sampler.world_size, "batches": list(sampler)}
        Path(out_dir, f"rank-{rank}.json").write_text(json.dumps(shard))
    finally:
        dist.destroy_process_group()


def test_two_ranks_get_disjoint_shards_whose_union_is_the_plan(
    service_url: str, tmp_path: Path
) -> None:
    """With torch.distributed (gloo, 2 processes), rank r takes slots r::2 of one batch."""
    with CurriculumClient.create_or_attach(service_url, NAMES, run_id="sharded") as client:
        client.report(0, {"c": [2.0] * 10})
        assert client.token is not None
        mp.spawn(
            _shard_worker,
            args=(2, service_url, "sharded", client.token, str(tmp_path)),
            nprocs=2,
            join=True,
        )
        shards = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in range(2)]
        assert [(s["rank"], s["world"]) for s in shards] == [(0, 2), (1, 2)]
        whole = CurriculumBatchSampler(LABELS, client, 8, num_steps=3, seed=9)
        for step in range(3):
            full = whole.global_batch(step)
            first, second = shards[0]["batches"][step], shards[1]["batches"][step]
            assert len(first) == len(second) == 4 and not set(first) & set(second)
            assert full[0::2] == first and full[1::2] == second
            assert [LABELS[i] for i in full] == client.plan(step, 8).assignment
        client.delete()


def test_a_run_that_declares_its_prompts_gets_the_rows_its_plans_name(service_url: str) -> None:
    """Declared with prompt_counts of the dataset, each slot is the prompt_ids[i]-th row of
    its distribution, prompt_of maps it back, and coverage draws no row of a distribution
    twice before all 20 came (a uniform draw would repeat within a few steps)."""
    counts = prompt_counts(LABELS)
    assert counts == dict.fromkeys(NAMES, 20)
    with CurriculumClient.create_or_attach(
        service_url, NAMES, run_id="prompts", prompts=counts,
        prompt_selection={"mode": "coverage"},
    ) as client:  # fmt: skip
        sampler = CurriculumBatchSampler(LABELS, client, 8, num_steps=8, seed=5)
        seen: dict[str, list[int]] = {name: [] for name in NAMES}
        for step, batch in enumerate(sampler):
            plan = client.plan(step, 8)
            assert plan.prompt_ids is not None
            slots = list(zip(plan.assignment, plan.prompt_ids, strict=True))
            # prompt p of "a" is row 4p, of "b" row 4p + 1, ... (the labels interleave)
            assert batch == [4 * p + NAMES.index(name) for name, p in slots]
            assert [sampler.prompt_of(r) for r in batch] == slots
            for row in batch:
                seen[LABELS[row]].append(row)
        for name, rows in seen.items():
            assert len(set(rows[:20])) == len(rows[:20]), f"{name} repeated a row within a pass"
        assert sum(len(rows) for rows in seen.values()) == 64
        # a dataset of 10 rows a distribution against a run of 20 prompts each
        step = next(s for s in range(8) if max(client.plan(s, 8).prompt_ids or [0]) >= 10)
        short = CurriculumBatchSampler(LABELS[:40], client, 8, num_steps=8, seed=5)
        with pytest.raises(ValueError, match="other prompt counts"):
            short.global_batch(step)
        client.delete()
