"""Charts and series read back from a metrics log."""

import json
from pathlib import Path

from trainer_client.grpo.report import series, write_report


def test_series_and_charts(tmp_path: Path) -> None:
    records = [
        {"step": 0, "eval/a": 0.1, "eval/b": 0.5, "eval/mean": 0.3},
        {"step": 0, "weight/a": 0.5, "weight/b": 0.5, "loss": 1.0},
        {"step": 1, "weight/a": 0.8, "weight/b": 0.2},
        {"step": 2, "eval/a": 0.4, "eval/b": 0.5, "eval/mean": 0.45},
    ]
    log = tmp_path / "metrics.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert series(records, "weight/") == {"a": ([0, 1], [0.5, 0.8]), "b": ([0, 1], [0.5, 0.2])}
    assert series(records, "eval/") == {"a": ([0, 2], [0.1, 0.4]), "b": ([0, 2], [0.5, 0.5])}
    charts = write_report(log, tmp_path)
    assert [c.name for c in charts] == ["weights.png", "test_reward.png"]
    assert all(c.read_bytes()[:4] == b"\x89PNG" for c in charts)
