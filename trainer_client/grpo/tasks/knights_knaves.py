"""Knights-and-Knaves puzzles, one distribution per number of people (``kk-3`` ... ``kk-8``).

Knights always tell the truth, knaves always lie. Each person makes one statement about the
others; the generator keeps drawing statements until the puzzle has exactly one solution
(checked by :func:`solve`, which tries all ``2**n`` assignments). The expected completion ends
with a line ``Answer: Zoey=knight, Oliver=knave, ...`` naming every person once.
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass

from trainer_client.grpo.tasks.base import Distribution, Example, make_splits

NAMES = (
    "Zoey",
    "Oliver",
    "Ethan",
    "Mia",
    "Liam",
    "Ava",
    "Noah",
    "Emma",
    "Lucas",
    "Aria",
    "Jack",
    "Lily",
)

Statement = tuple
"""A claim as a small tree: ``("knight", j)``, ``("knave", j)``, ``("same", j, k)``,
``("diff", j, k)``, ``("and", a, b)`` or ``("or", a, b)`` with ``a, b`` atomic claims and
``j, k`` person indices."""


@dataclass(frozen=True)
class Puzzle:
    """People's names, who says what (``(speaker, statement)`` pairs), and the true roles
    (``True`` = knight)."""

    names: tuple[str, ...]
    claims: tuple[tuple[int, Statement], ...]
    truth: tuple[bool, ...]


def holds(statement: Statement, roles: tuple[bool, ...]) -> bool:
    """Whether ``statement`` is true when ``roles[j]`` says whether person ``j`` is a knight."""
    kind = statement[0]
    if kind == "knight":
        return roles[statement[1]]
    if kind == "knave":
        return not roles[statement[1]]
    if kind == "same":
        return roles[statement[1]] == roles[statement[2]]
    if kind == "diff":
        return roles[statement[1]] != roles[statement[2]]
    if kind == "and":
        return holds(statement[1], roles) and holds(statement[2], roles)
    if kind == "or":
        return holds(statement[1], roles) or holds(statement[2], roles)
    raise ValueError(f"unknown statement kind {kind!r}")


def negate(statement: Statement) -> Statement:
    """The statement's negation, in the same small language (De Morgan for and/or)."""
    flip = {"knight": "knave", "knave": "knight", "same": "diff", "diff": "same"}
    kind = statement[0]
    if kind in flip:
        return (flip[kind], *statement[1:])
    inner = (negate(statement[1]), negate(statement[2]))
    return ("or" if kind == "and" else "and", *inner)


def solve(puzzle: Puzzle) -> list[tuple[bool, ...]]:
    """Every role assignment consistent with the claims: a knight's claim holds, a knave's
    does not. A well-posed puzzle has exactly one."""
    n = len(puzzle.names)
    return [
        roles
        for roles in itertools.product((True, False), repeat=n)
        if all(holds(s, roles) == roles[speaker] for speaker, s in puzzle.claims)
    ]


def _atom(speaker: int, n: int, rng: random.Random) -> Statement:
    others = [j for j in range(n) if j != speaker]
    if rng.random() < 0.7 or len(others) < 2:
        return (rng.choice(("knight", "knave")), rng.choice(others))
    j, k = rng.sample(others, 2)
    return (rng.choice(("same", "diff")), j, k)


def _claim(speaker: int, n: int, rng: random.Random) -> Statement:
    if rng.random() < 0.6:
        return _atom(speaker, n, rng)
    return (rng.choice(("and", "or")), _atom(speaker, n, rng), _atom(speaker, n, rng))


def generate_puzzle(n: int, rng: random.Random, max_tries: int = 1000) -> Puzzle:
    """A puzzle with ``n`` people and a unique solution, deterministic given ``rng``."""
    names = tuple(rng.sample(NAMES, n))
    truth = tuple(rng.random() < 0.5 for _ in range(n))
    for _ in range(max_tries):
        claims = []
        for speaker in range(n):
            s = _claim(speaker, n, rng)
            # A knight's claim must hold and a knave's must not: negate the draw if needed.
            claims.append((speaker, s if holds(s, truth) == truth[speaker] else negate(s)))
        puzzle = Puzzle(names, tuple(claims), truth)
        if len(solve(puzzle)) == 1:
            return puzzle
    raise RuntimeError(f"no unique {n}-person puzzle in {max_tries} tries")


def render(statement: Statement, names: tuple[str, ...]) -> str:
    """The statement in English, e.g. ``"Mia is a knave or Zoey and Liam are the same kind"``."""
    kind = statement[0]
    if kind in ("knight", "knave"):
        return f"{names[statement[1]]} is a {kind}"
    if kind in ("same", "diff"):
        what = "the same kind" if kind == "same" else "different kinds"
        return f"{names[statement[1]]} and {names[statement[2]]} are {what}"
    return f"{render(statement[1], names)} {kind} {render(statement[2], names)}"


def format_answer(names: tuple[str, ...], roles: tuple[bool, ...]) -> str:
    """The canonical answer, e.g. ``"Zoey=knight, Oliver=knave"``."""
    return ", ".join(f"{n}={'knight' if r else 'knave'}" for n, r in zip(names, roles, strict=True))


def puzzle_example(puzzle: Puzzle) -> Example:
    """The prompt a model sees and the canonical answer."""
    people = ", ".join(puzzle.names[:-1]) + f" and {puzzle.names[-1]}"
    said = " ".join(
        f'{puzzle.names[i]} says: "{render(s, puzzle.names)}."' for i, s in puzzle.claims
    )
    prompt = (
        "Knights always tell the truth and knaves always lie. "
        f"You meet {len(puzzle.names)} people: {people}. {said} "
        "Who is a knight and who is a knave? End with one line "
        "'Answer: <name>=<knight or knave>, ...' naming every person once.\n"
    )
    return Example(prompt=prompt, answer=format_answer(puzzle.names, puzzle.truth))


_ENTRY = re.compile(r"^\s*([A-Za-z]+)\s*=\s*(knight|knave)\s*\.?\s*$")


def parse_answer(text: str, names: list[str]) -> dict[str, bool] | None:
    """The roles claimed on the completion's last ``Answer:`` line, or ``None`` if malformed.

    Well-formed means: an ``Answer:`` line whose comma-separated entries are ``Name=knight``
    or ``Name=knave`` and name each of ``names`` exactly once.

    >>> parse_answer("thinking...\\nAnswer: Mia=knave, Zoey=knight", ["Zoey", "Mia"])
    {'Mia': False, 'Zoey': True}
    >>> parse_answer("Answer: Mia=knave", ["Zoey", "Mia"]) is None
    True
    """
    lines = [line for line in text.splitlines() if "Answer:" in line]
    if not lines:
        return None
    entries = lines[-1].split("Answer:", 1)[1].split(",")
    roles: dict[str, bool] = {}
    for entry in entries:
        match = _ENTRY.match(entry)
        if match is None or match.group(1) in roles:
            return None
        roles[match.group(1)] = match.group(2) == "knight"
    return roles if sorted(roles) == sorted(names) else None


def kk_reward(completions: list[str], answers: list[str]) -> list[float]:
    """1.0 when the completion is well-formed (see :func:`parse_answer`) and every role is
    right; 0.0 for a wrong role or a malformed answer.

    >>> kk_reward(["Answer: Zoey=knight, Mia=knave", "Answer: Zoey=knave, Mia=knave",
    ...            "Zoey=knight, Mia=knave"], ["Zoey=knight, Mia=knave"] * 3)
    [1.0, 0.0, 0.0]
    """
    rewards = []
    for completion, answer in zip(completions, answers, strict=True):
        names = [entry.split("=")[0].strip() for entry in answer.split(",")]
        expected = parse_answer(f"Answer: {answer}", names)
        got = parse_answer(completion, list(expected or {}))
        rewards.append(float(expected is not None and got == expected))
    return rewards


def kk_distributions(sizes: list[int], seed: int, n_train: int, n_test: int) -> list[Distribution]:
    """One distribution ``kk-<n>`` per number of people, each from its own seeded generator."""
    if any(not 2 <= n <= len(NAMES) for n in sizes):
        raise ValueError(f"Knights-and-Knaves sizes must be in 2..{len(NAMES)}, got {sizes}")
    out = []
    for n in sizes:
        rng = random.Random(f"kk-{n}-{seed}")
        train, test = make_splits(
            lambda r, n=n: puzzle_example(generate_puzzle(n, r)), rng, n_train, n_test
        )
        out.append(Distribution(f"kk-{n}", train, test, kk_reward))
    return out
