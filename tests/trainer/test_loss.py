"""GRPO's math against hand-computed values."""

import math

import pytest
import torch

from trainer_client.grpo.loss import group_advantages, grpo_loss, k3_kl


def test_group_advantages_match_hand_values() -> None:
    """[1, 0 | 1, 1]: first group mean .5, std .5 -> +-1 (less eps); second all equal -> 0."""
    a = group_advantages(torch.tensor([1.0, 0.0, 1.0, 1.0]), group_size=2, eps=1e-4)
    assert a.tolist() == pytest.approx([0.5 / 0.5001, -0.5 / 0.5001, 0.0, 0.0])


def test_all_equal_group_has_zero_advantage_and_no_nan() -> None:
    """A group that is all right (or all wrong) carries no signal: exactly 0, never NaN."""
    a = group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), group_size=3)
    assert torch.equal(a, torch.zeros(6))


def test_group_advantages_population_std() -> None:
    """Rewards [0, 0, 0, 1]: mean .25, std sqrt(.1875) = .4330 -> [-.5774, ..., 1.7321]."""
    a = group_advantages(torch.tensor([0.0, 0.0, 0.0, 1.0]), group_size=4, eps=1e-4)
    std = math.sqrt(0.1875)
    assert a.tolist() == pytest.approx([-0.25 / (std + 1e-4)] * 3 + [0.75 / (std + 1e-4)])


def test_centred_advantages_keep_the_spread() -> None:
    """normalize=False: [0.9, 0.7 | 0.1, 0.1] -> r - mean = [0.1, -0.1, 0, 0], where the
    normalised values would be +-1 whatever the spread."""
    a = group_advantages(torch.tensor([0.9, 0.7, 0.1, 0.1]), group_size=2, normalize=False)
    assert a.tolist() == pytest.approx([0.1, -0.1, 0.0, 0.0])


def test_group_advantages_rejects_ragged_groups() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), group_size=4)


def test_k3_kl_hand_value_and_zero_at_equality() -> None:
    """logp = log .5, ref = log .25: d = -log 2, KL = .5 + log 2 - 1 = .19315."""
    kl = k3_kl(torch.tensor([math.log(0.5), -1.0]), torch.tensor([math.log(0.25), -1.0]))
    assert kl.tolist() == pytest.approx([0.5 + math.log(2) - 1, 0.0], abs=1e-6)


def test_loss_equals_negative_mean_advantage_at_ratio_one() -> None:
    """Ratio 1, no KL: per-completion loss is -A; mean over completions of [-1, 1, -.5]."""
    logp = torch.zeros(3, 2, requires_grad=True)
    mask = torch.tensor([[1, 1], [1, 0], [1, 1]])
    adv = torch.tensor([1.0, -1.0, 0.5])
    loss, metrics = grpo_loss(logp, logp.detach(), None, adv, mask, clip_eps=0.2)
    assert loss.item() == pytest.approx((-1.0 + 1.0 - 0.5) / 3)
    assert metrics["clip_frac"] == 0.0 and metrics["ratio"] == pytest.approx(1.0)
    loss.backward()
    # d(-ratio*A)/dlogp = -A / |o_i| / N per token; masked tokens get nothing.
    expected = torch.tensor([[-1 / 6, -1 / 6], [1 / 3, 0.0], [-0.5 / 6, -0.5 / 6]])
    assert torch.allclose(logp.grad, expected)


def test_clipped_ratio_stops_the_gradient() -> None:
    """Ratio e^.5 = 1.65 with A = +1 is clipped at 1.2 (no gradient); with A = -1 the
    unclipped term is the minimum, so it keeps its gradient and value -1.65 * -1."""
    logp = torch.tensor([[0.5], [0.5]], requires_grad=True)
    old = torch.zeros(2, 1)
    loss, metrics = grpo_loss(logp, old, None, torch.tensor([1.0, -1.0]), torch.ones(2, 1))
    ratio = math.exp(0.5)
    assert loss.item() == pytest.approx((-1.2 + ratio) / 2, rel=1e-5)
    assert metrics["clip_frac"] == 1.0
    loss.backward()
    assert logp.grad[0, 0].item() == 0.0
    assert logp.grad[1, 0].item() == pytest.approx(ratio / 2, rel=1e-5)


def test_kl_penalty_adds_beta_times_k3() -> None:
    """A = 0, so the loss is beta * mean KL: .1 * .19315."""
    logp = torch.full((1, 2), math.log(0.5))
    ref = torch.full((1, 2), math.log(0.25))
    loss, metrics = grpo_loss(logp, logp, ref, torch.zeros(1), torch.ones(1, 2), kl_beta=0.1)
    assert loss.item() == pytest.approx(0.1 * (0.5 + math.log(2) - 1), rel=1e-5)
    assert metrics["kl"] == pytest.approx(0.5 + math.log(2) - 1, rel=1e-5)
