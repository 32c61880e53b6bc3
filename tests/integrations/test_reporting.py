"""The report every integration makes: per-sample values grouped by data_source."""

from __future__ import annotations

import math

import pytest
import torch

from trainer_client.integrations.reporting import (
    by_source,
    mean_abs_over_mask,
    round_report,
    row_sums,
)


def test_values_are_grouped_by_their_source_in_order_and_missing_ones_left_out() -> None:
    grouped = by_source(["a", "b", "a", "b", 7], [1.0, None, -2.0, math.nan, 3.0])
    assert grouped == {"a": [1.0, -2.0], "7": [3.0]}


def test_the_mean_abs_advantage_counts_only_the_masked_tokens() -> None:
    advantages = torch.tensor([[0.5, -0.5, 9.0], [-2.0, 9.0, 9.0], [9.0, 9.0, 9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    assert mean_abs_over_mask(advantages, mask) == pytest.approx([0.5, 2.0, 0.0])


def test_a_reward_is_the_sum_of_its_token_scores_over_the_mask() -> None:
    scores = torch.tensor([[0.0, 1.0, 5.0], [0.25, 0.25, 0.0]])
    assert row_sums(scores) == pytest.approx([6.0, 0.5])
    assert row_sums(scores, torch.tensor([[1, 1, 0], [1, 1, 1]])) == pytest.approx([1.0, 0.5])


def test_a_round_report_has_no_rewards_when_no_sample_has_one() -> None:
    assert round_report(["a", "b"], [0.1, 0.2], [None, math.nan]) == (
        {"a": [0.1], "b": [0.2]},
        None,
    )
    assert round_report(["a"], [0.1]) == ({"a": [0.1]}, None)
    assert round_report(["a", "a"], [0.1, 0.3], [1.0, 0.0]) == (
        {"a": [0.1, 0.3]},
        {"a": [1.0, 0.0]},
    )
