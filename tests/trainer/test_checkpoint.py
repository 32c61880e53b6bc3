"""A checkpoint is there whole or not at all: a save cut off half-way is never resumed."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer_client.grpo import checkpoint
from trainer_client.grpo.checkpoint import latest_checkpoint, read_checkpoint, save_checkpoint
from trainer_client.grpo.model import build_tiny, char_tokenizer


class Killed(Exception):
    """The process dying between the policy and the trainer state."""


def test_a_save_cut_off_leaves_the_last_whole_checkpoint_latest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokenizer = char_tokenizer()
    model = build_tiny(tokenizer, n_layer=1, n_embd=16, n_head=2)
    save_checkpoint(tmp_path / "checkpoint-3", model, tokenizer, None, {"step": 3}, {}, {})

    def killed(*_: object, **__: object) -> None:
        raise Killed

    monkeypatch.setattr(checkpoint.torch, "save", killed)
    with pytest.raises(Killed):
        save_checkpoint(tmp_path / "checkpoint-6", model, tokenizer, None, {"step": 6}, {}, {})
    monkeypatch.undo()

    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-3"
    assert read_checkpoint(tmp_path / "checkpoint-3")[0] == {"step": 3}
    # the next save of that step replaces the leftover and lands whole
    save_checkpoint(tmp_path / "checkpoint-6", model, tokenizer, None, {"step": 6}, {"a": 1}, {})
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-6"
    assert read_checkpoint(tmp_path / "checkpoint-6")[:2] == ({"step": 6}, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-3", "checkpoint-6"]
