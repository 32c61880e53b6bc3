"""A short supervised warm start: teacher-forced cross-entropy on (prompt, answer) pairs.

Real GRPO post-training starts from an instruct model that already solves some prompts.
The tiny model starts from random weights, where a 0/1 reward is never earned and GRPO has
no signal; a few hundred supervised steps across all distributions give every bucket a
graded starting success rate (short ones near solved, long ones hardly).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from trainer_client.grpo.rollout import positions
from trainer_client.grpo.tasks import Distribution, Example


def sft_batch(
    tokenizer: PreTrainedTokenizerBase, examples: list[Example], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ``prompt + answer + EOS`` ids, attention mask and loss mask, each ``(N, L)``.

    The loss mask marks the answer and EOS tokens, the ones the model must learn to emit.
    Prompt and answer are tokenised apart so the mask boundary is exact for any tokenizer.
    """
    rows, targets = [], []
    for example in examples:
        prompt = tokenizer(example.prompt, add_special_tokens=False)["input_ids"]
        answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"]
        rows.append(prompt + answer + [tokenizer.eos_token_id])
        targets.append(len(answer) + 1)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    loss_mask = torch.tensor([[0] * (width - t) + [1] * t for t in targets], device=device)
    return ids, mask, loss_mask


def warm_start(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    distributions: list[Distribution],
    steps: int,
    batch_size: int,
    lr: float,
    rng: np.random.Generator,
) -> list[float]:
    """Train ``model`` in place for ``steps`` steps; returns the loss of each step.

    Each example comes from a distribution drawn uniformly, then a train prompt drawn
    uniformly from it, so every bucket gets the same share of supervision.
    """
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        examples = []
        for d in rng.integers(len(distributions), size=batch_size):
            train = distributions[d].train
            examples.append(train[rng.integers(len(train))])
        ids, mask, loss_mask = sft_batch(tokenizer, examples, device)  # (N, L) each
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions(mask)).logits
        # The logit at column c predicts the token at column c + 1.
        pred, target = logits[:, :-1].float(), ids[:, 1:]  # (N, L-1, V), (N, L-1)
        keep = loss_mask[:, 1:].bool()  # (N, L-1)
        loss = F.cross_entropy(pred[keep], target[keep])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
