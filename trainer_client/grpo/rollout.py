"""Batched sampling with the KV cache, and the per-token log-probabilities GRPO needs.

Prompts are left-padded so every row's last prompt token sits in the same column; the loop
then feeds one new token per row per step, reusing the cache. Position ids are computed from
the attention mask, so padding never shifts a row's positions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class Rollout:
    """A batch of prompts with one completion each, laid out as ``[prompt | completion]``.

    ``input_ids`` and ``attention_mask`` have shape ``(N, P + T)``: ``P`` left-padded prompt
    columns, then ``T`` completion columns. ``completion_mask`` ``(N, T)`` is 1 on the
    completion's tokens up to and including its EOS, 0 after it. ``texts`` are the decoded
    completions without special tokens.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    prompt_len: int
    texts: list[str]


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase, prompts: list[str], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids and attention mask of ``prompts``, left-padded, both ``(N, P)``."""
    rows = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
    return ids, mask


def positions(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position id of every column: the count of real tokens before it (0 on left padding)."""
    return (attention_mask.cumsum(-1) - 1).clamp(min=0)


def _cache_name(model: PreTrainedModel) -> str:
    """The KV cache's name in ``forward`` and its output: ``cache`` (newer transformers 5.x)
    or ``past_key_values`` (transformers up to at least 5.17)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


@torch.no_grad()
def generate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Rollout:
    """Sample one completion per prompt; ``temperature == 0`` decodes greedily.

    Stops early once every row has emitted EOS. Rows that finished keep receiving the pad
    token (masked out), so all rows stay in lock-step in the cache.
    """
    device = next(model.parameters()).device
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids, prompt_mask = encode_prompts(tokenizer, prompts, device)  # (N, P)
    n, prompt_len = ids.shape
    mask = prompt_mask
    pos = positions(mask)  # (N, P)
    cache_name = _cache_name(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    cache: Any = out[cache_name]
    logits = out.logits[:, -1]  # (N, V)
    next_pos = pos[:, -1:] + 1  # (N, 1)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    new_tokens, alive = [], []
    for t in range(max_new_tokens):
        if temperature == 0:
            token = logits.argmax(-1)  # (N,)
        else:
            probs = F.softmax(logits.float() / temperature, dim=-1)  # (N, V)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (N,)
        token = torch.where(done, torch.full_like(token, pad), token)
        alive.append(~done)  # a row's EOS counts as a completion token; what follows does not
        new_tokens.append(token)
        done = done | (token == eos)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        mask = torch.cat([mask, torch.ones(n, 1, dtype=mask.dtype, device=device)], dim=1)
        out = model(
            input_ids=token[:, None],
            attention_mask=mask,
            position_ids=next_pos,
            use_cache=True,
            **{cache_name: cache},
        )
        cache, logits = out[cache_name], out.logits[:, -1]
        next_pos = next_pos + 1
    completion = torch.stack(new_tokens, dim=1)  # (N, T)
    completion_mask = torch.stack(alive, dim=1).long()  # (N, T)
    texts = tokenizer.batch_decode(
        [row[m.bool()].tolist() for row, m in zip(completion, completion_mask, strict=True)],
        skip_special_tokens=True,
    )
    return Rollout(
        input_ids=torch.cat([ids, completion], dim=1),
        attention_mask=torch.cat([prompt_mask, completion_mask], dim=1),
        completion_mask=completion_mask,
        prompt_len=prompt_len,
        texts=texts,
    )


def completion_logprobs(model: PreTrainedModel, rollout: Rollout) -> torch.Tensor:
    """Log-probability of each completion token under ``model``, shape ``(N, T)``.

    Differentiable; call it under ``torch.no_grad()`` for the reference or old policy.
    """
    mask = rollout.attention_mask
    logits = model(
        input_ids=rollout.input_ids, attention_mask=mask, position_ids=positions(mask)
    ).logits  # (N, P + T, V)
    # The logit at column c predicts the token at column c + 1.
    logits = logits[:, rollout.prompt_len - 1 : -1].float()  # (N, T, V)
    targets = rollout.input_ids[:, rollout.prompt_len :]  # (N, T)
    return torch.gather(F.log_softmax(logits, dim=-1), 2, targets[..., None]).squeeze(-1)


def select_rows(parts: list[tuple[Rollout, list[int]]], pad_id: int) -> Rollout:
    """Rows ``rows`` of each rollout, in order, as one rollout: prompts left-padded again to
    the widest, completions right-padded to the longest. Positions follow the attention
    mask, so the extra padding changes no row's log-probabilities."""
    if len(parts) == 1 and parts[0][1] == list(range(len(parts[0][0].texts))):
        return parts[0][0]  # the whole of one rollout: nothing to copy
    width = max(r.prompt_len for r, _ in parts)  # P
    length = max(r.completion_mask.shape[1] for r, _ in parts)  # T
    ids, masks, completion_masks, texts = [], [], [], []
    for r, rows in parts:
        idx = torch.tensor(rows, dtype=torch.long, device=r.input_ids.device)
        left, right = width - r.prompt_len, length - r.completion_mask.shape[1]
        prompt = F.pad(r.input_ids[idx, : r.prompt_len], (left, 0), value=pad_id)  # (n, P)
        completion = F.pad(r.input_ids[idx, r.prompt_len :], (0, right), value=pad_id)  # (n, T)
        prompt_mask = F.pad(r.attention_mask[idx, : r.prompt_len], (left, 0))  # (n, P)
        completion_mask = F.pad(r.completion_mask[idx], (0, right))  # (n, T)
        ids.append(torch.cat([prompt, completion], dim=1))
        masks.append(torch.cat([prompt_mask, completion_mask], dim=1))
        completion_masks.append(completion_mask)
        texts += [r.texts[i] for i in rows]
    return Rollout(
        input_ids=torch.cat(ids),
        attention_mask=torch.cat(masks),
        completion_mask=torch.cat(completion_masks),
        prompt_len=width,
        texts=texts,
    )
