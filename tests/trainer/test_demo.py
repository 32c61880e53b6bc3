"""The demo trains the curriculum and uniform on one seed and compares them honestly."""

import json
from pathlib import Path

import pytest

from trainer_client.grpo.demo import Arm, demo_main, verdict


def _arm(strategy: str, mean: list[float], after: dict[str, float]) -> Arm:
    return Arm(
        strategy=strategy,
        steps=[0, 100, 200],
        mean=mean,
        per_distribution={name: (0.5, value) for name, value in after.items()},
        final_weights={},
        step_s=0.1,
        wall_s=1.0,
    )


def test_a_loss_is_reported_as_a_loss() -> None:
    curriculum = _arm("dump-guard", [0.5, 0.55, 0.6], {"a": 1.0, "b": 0.1})
    uniform = _arm("uniform", [0.5, 0.6, 0.7], {"a": 0.9, "b": 0.8})
    lines = verdict(curriculum, uniform)
    assert lines[0].startswith("dump-guard is BEHIND uniform: a loss on this seed")
    assert "(-0.050)" in lines[0] and "(-0.100)" in lines[0]
    assert "dump-guard at not within the run, uniform at step 200" in lines[1]
    assert lines[2].endswith("b")  # uniform ends 0.7 above on b, not above on a


def test_a_win_and_the_steps_to_uniforms_final_level() -> None:
    curriculum = _arm("dump-guard", [0.5, 0.72, 0.75], {"a": 1.0})
    uniform = _arm("uniform", [0.5, 0.6, 0.7], {"a": 0.9})
    lines = verdict(curriculum, uniform)
    assert lines[0].startswith("dump-guard is ahead of uniform")
    assert "dump-guard at step 100, uniform at step 200" in lines[1]


@pytest.mark.timeout(600)
def test_demo_trains_both_arms_on_one_seed(tmp_path: Path, capsys) -> None:
    """A few steps of each arm, against a local service: both tables, the comparison, one
    chart with both curves, and two runs that started from the same evaluation."""
    out = tmp_path / "demo"
    code = demo_main(
        ["--steps", "2", "--warmstart-steps", "2", "--output-dir", str(out), "--no-progress"]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "dump-guard: test reward per distribution" in text
    assert "uniform: test reward per distribution" in text
    assert "with uniform" in text or "of uniform" in text or "BEHIND uniform" in text
    assert (out / "mean_test_reward.png").stat().st_size > 0
    starts = []
    for label in ("dump-guard", "uniform"):
        records = [
            json.loads(line) for line in (out / label / "metrics.jsonl").read_text().splitlines()
        ]
        config = next(r for r in records if "config" in r)["config"]
        assert config["strategy"] == label
        starts.append(next(r for r in records if "eval/mean" in r)["eval/mean"])
    assert starts[0] == starts[1]  # the same warm start: a paired comparison
