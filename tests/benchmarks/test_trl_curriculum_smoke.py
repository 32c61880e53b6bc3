"""The TRL curriculum benchmark (TRL's sampler against CurriculumGRPOTrainer) runs end to end
(``--smoke``). Needs the ``trl`` extra; skipped without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import checkout_env

pytest.importorskip("trl")


def test_smoke_run_trains_every_arm_and_writes_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.trl_curriculum", "--smoke",
         "--out", str(out)],
        cwd=tmp_path, env=checkout_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["arms"]) == {"trl", "uniform", "dump-ucb"}
    for arm in ("uniform", "dump-ucb"):
        run = json.loads((out / f"{arm}-seed-0.json").read_text())
        assert [p["step"] for p in run["curve"]] == [0, 1, 2, 3]
        assert run["client_s"] > 0 and run["path_s"] > 0  # the curriculum's time was measured
        assert 0.0 <= summary["arms"][arm]["final"]["mean"] <= 1.0
    assert "| dump-ucb |" in proc.stdout


def test_scoring_a_left_padded_prompt_uses_the_positions_it_was_sampled_at() -> None:
    """TRL 1.16 scores completions without ``position_ids``; the benchmark's hook gives a
    left-padded prompt the positions of the unpadded one (GPT-2's are absolute)."""
    from types import SimpleNamespace

    import torch

    from benchmarks.trl_curriculum import positions_from_mask
    from trainer_client.grpo.model import build_tiny, char_tokenizer

    model = build_tiny(char_tokenizer(), seed=0).eval()
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    padded = torch.tensor([[0, 0, 0, 5, 6, 7, 8, 9, 10]])
    mask = torch.tensor([[0, 0, 0, 1, 1, 1, 1, 1, 1]])
    with torch.no_grad():
        alone = model(input_ids=ids).logits[0]
        shifted = model(input_ids=padded, attention_mask=mask).logits[0, 3:]
        assert (alone - shifted).abs().max() > 1e-3  # TRL's scoring: the padding shifts it
        positions_from_mask(SimpleNamespace(model=model, ref_model=None))
        fixed = model(input_ids=padded, attention_mask=mask).logits[0, 3:]
    torch.testing.assert_close(fixed, alone, rtol=1e-5, atol=1e-5)
