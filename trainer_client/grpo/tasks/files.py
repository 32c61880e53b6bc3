"""Distributions read from a JSONL (or, with pyarrow installed, parquet) file.

Columns, one row per prompt:

- ``data_source`` (string): the distribution the row belongs to, e.g. ``"kk-5"``;
- ``prompt`` (string): the text the model continues;
- ``answer`` (string): the reference the reward checks against. verl-style rows that keep
  it in ``reward_model.ground_truth`` instead are read too;
- ``split`` (optional, ``"train"`` or ``"test"``): rows without it are split per
  distribution, ``n_test`` of them held out, chosen by the seed.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from trainer_client.grpo.tasks.base import Distribution, Example, RewardFn


def read_rows(path: str | Path) -> list[dict]:
    """The file's rows as dicts; ``.jsonl`` or ``.parquet`` by extension."""
    path = Path(path)
    if path.suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError as err:
            raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow") from err
        return pq.read_table(path).to_pylist()
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _answer(row: dict, where: str) -> str:
    if "answer" in row:
        return str(row["answer"])
    nested = row.get("reward_model")
    if isinstance(nested, dict) and "ground_truth" in nested:
        return str(nested["ground_truth"])
    raise ValueError(f"{where}: no 'answer' column (nor reward_model.ground_truth)")


def file_distributions(
    path: str | Path, reward: RewardFn, seed: int, n_test: int
) -> list[Distribution]:
    """One distribution per ``data_source`` in the file, in order of first appearance."""
    train: dict[str, list[Example]] = {}
    test: dict[str, list[Example]] = {}
    unsplit: dict[str, list[Example]] = {}
    for i, row in enumerate(read_rows(path)):
        where = f"{path} row {i + 1}"
        if "data_source" not in row or "prompt" not in row:
            raise ValueError(f"{where}: needs 'data_source' and 'prompt' columns")
        name = str(row["data_source"])
        example = Example(prompt=str(row["prompt"]), answer=_answer(row, where))
        split = row.get("split")
        bucket = {"train": train, "test": test, None: unsplit}.get(split)
        if bucket is None:
            raise ValueError(f"{where}: split must be 'train' or 'test', got {split!r}")
        for table in (train, test, unsplit):
            table.setdefault(name, [])
        bucket[name].append(example)
    out = []
    for name, rows in unsplit.items():
        rows = list(rows)
        random.Random(f"{name}-{seed}").shuffle(rows)
        held = min(n_test, len(rows) // 2) if len(rows) > 1 else 0
        test_rows = test[name] + rows[:held]
        train_rows = train[name] + rows[held:]
        train_split, test_split = tuple(train_rows or test_rows), tuple(test_rows or train_rows)
        out.append(Distribution(name, train_split, test_split, reward))
    return out
