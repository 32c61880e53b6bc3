"""GRPO's math: group-normalised advantages and the clipped surrogate with a k3 KL penalty.

Notation (Shao et al. 2024, DeepSeekMath): ``G`` completions per prompt, reward ``r_i``,
``A_i = (r_i - mean(r)) / (std(r) + eps)`` shared by every token of completion ``i``,
``ratio = exp(logp - logp_old)``, and the per-token objective
``min(ratio * A, clip(ratio, 1 - eps_clip, 1 + eps_clip) * A) - beta * KL``.
"""

from __future__ import annotations

import torch


def group_advantages(
    rewards: torch.Tensor, group_size: int, eps: float = 1e-4, *, normalize: bool = True
) -> torch.Tensor:
    """Advantage of each completion, ``(N,)`` for ``N = prompts * group_size`` rewards.

    Rewards are laid out prompt-major: completions ``[g*G, (g+1)*G)`` share prompt ``g``.
    The standard deviation is the population one (``correction=0``).

    Worked example, ``G = 2``: rewards ``[1, 0, 1, 1]`` give ``[1, -1, 0, 0]`` (up to eps):
    the first group has mean 0.5 and std 0.5; the second group's rewards are all equal, so
    its deviations are exactly 0 and ``0 / (0 + eps)`` is 0, never NaN. That is the point of
    ``eps``: a group that is all right or all wrong carries no signal about which completion
    was better, and must contribute no gradient (nor a NaN) rather than an arbitrary one.

    ``normalize=False`` returns the centred rewards ``r - mean(group)``: with a continuous
    reward, dividing by the std makes every group with any spread look alike (mean
    ``|A|`` near 0.8), which is useless as a curriculum signal; the centred value keeps the
    spread's size.
    """
    if rewards.numel() % group_size:
        raise ValueError(f"{rewards.numel()} rewards do not split into groups of {group_size}")
    if rewards.numel() == 0:  # no group (dynamic sampling dropped every one)
        return rewards.float()
    grouped = rewards.float().view(-1, group_size)  # (B, G)
    mean = grouped.mean(dim=1, keepdim=True)  # (B, 1)
    if not normalize:
        return (grouped - mean).view(-1)  # (N,)
    std = grouped.std(dim=1, keepdim=True, correction=0)  # (B, 1)
    return ((grouped - mean) / (std + eps)).view(-1)  # (N,)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(policy || reference) estimate ``exp(d) - d - 1`` with ``d = ref - logp``.

    Schulman's k3 estimator: unbiased, and never negative, unlike the plain ``-d``.
    E.g. ``logp = log 0.5``, ``ref = log 0.25``: ``d = -log 2``, KL = 0.5 + 0.693 - 1 = 0.193.
    """
    d = ref_logp - logp
    return torch.exp(d) - d - 1


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float = 0.2,
    kl_beta: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO loss to minimise and its metrics.

    ``logp``, ``old_logp``, ``ref_logp`` and ``mask`` are per completion token, ``(N, T)``;
    ``advantages`` is per completion, ``(N,)``. Each completion's token losses are averaged
    over its own tokens, then completions are averaged (GRPO's ``1/G sum_i 1/|o_i| sum_t``).
    ``ref_logp`` may be ``None`` when ``kl_beta == 0``.

    Metrics: ``loss``, ``kl`` (mean per token), ``clip_frac`` (share of tokens whose ratio
    left ``[1 - eps, 1 + eps]``), ``ratio`` (mean).
    """
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp)  # (N, T)
    adv = advantages[:, None]  # (N, 1)
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv)
    per_token = -surrogate  # (N, T)
    kl = torch.zeros_like(logp) if ref_logp is None else k3_kl(logp, ref_logp)  # (N, T)
    if kl_beta:
        per_token = per_token + kl_beta * kl
    lengths = mask.sum(dim=1).clamp(min=1)  # (N,)
    loss = ((per_token * mask).sum(dim=1) / lengths).mean()
    n_tokens = mask.sum().clamp(min=1)
    clipped = ((ratio - 1).abs() > clip_eps).to(logp.dtype)
    metrics = {
        "loss": loss.item(),
        "kl": ((kl * mask).sum() / n_tokens).item(),
        "clip_frac": ((clipped * mask).sum() / n_tokens).item(),
        "ratio": ((ratio * mask).sum() / n_tokens).item(),
    }
    return loss, metrics
