"""CurriculumBatchSampler: batches follow the plan, ranks split it without overlap."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp

from trainer_client import CurriculumBatchSampler, CurriculumClient

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
