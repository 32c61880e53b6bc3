"""Task generators, solvers and reward functions on worked examples."""

import json
import random
from pathlib import Path

import pytest

from trainer_client.grpo.tasks import build_distributions, file_distributions, reverse_reward
from trainer_client.grpo.tasks.knights_knaves import (
    Puzzle,
    generate_puzzle,
    kk_reward,
    parse_answer,
    puzzle_example,
    solve,
)
from trainer_client.grpo.tasks.reverse import reverse_example


def test_reverse_reward_worked_examples() -> None:
    """Right (even with surrounding whitespace), wrong digits, bad format, empty."""
    completions = ["1704", " 1704\n", "1740", "17 04", "answer: 1704", ""]
    assert reverse_reward(completions, ["1704"] * 6) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0]


def test_reverse_example() -> None:
    example = reverse_example(5, random.Random(3))
    assert len(example.answer) == 5 and example.prompt == example.answer[::-1] + "="


def test_kk_solver_on_classic_puzzle() -> None:
    """A says "we are both knaves": A must be a knave (a knight could not say it) and the
    claim must be false, so B is a knight. The only solution is (knave, knight)."""
    puzzle = Puzzle(("A", "B"), ((0, ("and", ("knave", 0), ("knave", 1))),), (False, True))
    assert solve(puzzle) == [(False, True)]


def test_kk_solver_finds_every_solution() -> None:
    """A says "B is a knight", B says "A is a knight": both knights or both knaves."""
    puzzle = Puzzle(("A", "B"), ((0, ("knight", 1)), (1, ("knight", 0))), (True, True))
    assert sorted(solve(puzzle)) == [(False, False), (True, True)]


@pytest.mark.parametrize("n", [3, 5, 8])
def test_generated_puzzles_have_one_solution_the_truth(n: int) -> None:
    rng = random.Random(n)
    for _ in range(5):
        puzzle = generate_puzzle(n, rng)
        assert solve(puzzle) == [puzzle.truth]
        assert len(puzzle.claims) == n


def test_kk_reward_right_wrong_and_bad_format() -> None:
    answer = "Zoey=knight, Mia=knave, Liam=knight"
    completions = [
        "Zoey tells the truth.\nAnswer: Zoey=knight, Mia=knave, Liam=knight",  # right
        "Answer: Liam=knight, Zoey=knight, Mia=knave",  # right, other order
        "Answer: Zoey=knight, Mia=knight, Liam=knight",  # wrong role
        "Answer: Zoey=knight, Mia=knave",  # someone missing
        "Answer: Zoey=knight, Mia=knave, Liam=knight, Mia=knave",  # someone twice
        "Zoey=knight, Mia=knave, Liam=knight",  # no Answer: line
        "Answer: Zoey is a knight, Mia=knave, Liam=knight",  # entry malformed
    ]
    assert kk_reward(completions, [answer] * 7) == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_kk_answer_uses_last_answer_line() -> None:
    text = "Answer: A=knave, B=knave\nno wait\nAnswer: A=knight, B=knave"
    assert parse_answer(text, ["A", "B"]) == {"A": True, "B": False}


def test_kk_prompt_mentions_everyone_and_answer_is_canonical() -> None:
    puzzle = generate_puzzle(4, random.Random(0))
    example = puzzle_example(puzzle)
    assert all(name in example.prompt for name in puzzle.names)
    assert kk_reward([f"Answer: {example.answer}"], [example.answer]) == [1.0]


@pytest.mark.parametrize("task,levels", [("reverse", [2, 5]), ("kk", [3, 6])])
def test_generation_is_deterministic_by_seed(task: str, levels: list[int]) -> None:
    a = build_distributions(task, levels, seed=1, n_train=30, n_test=8)
    b = build_distributions(task, levels, seed=1, n_train=30, n_test=8)
    c = build_distributions(task, levels, seed=2, n_train=30, n_test=8)
    assert [d.name for d in a] == [f"{'rev' if task == 'reverse' else 'kk'}-{n}" for n in levels]
    assert [(d.train, d.test) for d in a] == [(d.train, d.test) for d in b]
    assert [d.train for d in a] != [d.train for d in c]


def test_test_split_is_held_out() -> None:
    for d in build_distributions("reverse", [4], seed=0, n_train=200, n_test=32):
        assert len(d.test) == 32 and len(d.train) == 200
        assert not {e.prompt for e in d.test} & {e.prompt for e in d.train}


def test_tiny_distribution_falls_back_to_memorisation() -> None:
    """Reversing one digit has 10 prompts; nothing can be held out, train = test."""
    (d,) = build_distributions("reverse", [1], seed=0, n_train=50, n_test=32)
    assert len(d.test) == 10 and set(d.train) == set(d.test)


def test_jsonl_distributions(tmp_path: Path) -> None:
    rows = [{"data_source": "a", "prompt": f"p{i}", "answer": str(i)} for i in range(6)]
    rows += [
        {
            "data_source": "b",
            "prompt": "q",
            "reward_model": {"ground_truth": "x"},
            "split": "train",
        },
        {"data_source": "b", "prompt": "r", "answer": "y", "split": "test"},
    ]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    a, b = file_distributions(path, reverse_reward, seed=0, n_test=2)
    assert (a.name, len(a.train), len(a.test)) == ("a", 4, 2)
    assert [e.answer for e in b.train] == ["x"] and [e.prompt for e in b.test] == ["r"]


def test_jsonl_rejects_rows_without_columns(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"prompt": "p", "answer": "a"}) + "\n")
    with pytest.raises(ValueError, match="row 1: needs 'data_source'"):
        file_distributions(path, reverse_reward, seed=0, n_test=1)
