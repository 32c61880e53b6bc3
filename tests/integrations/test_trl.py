"""CurriculumGRPOTrainer against the real TRL on a tiny model on the CPU, scheduled by a real
service: each round's prompts follow its plan, every sample is reported once, a resumed run
continues the curriculum without asking for the plans it skips, and a start in a new process
attaches to the run its output folder records."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from datasets import Dataset
from transformers import PrinterCallback
from trl import GRPOConfig

from local_processes import free_port
from tests.integrations.prompt_support import (
    Group,
    expected_records,
    groups_counted,
    service_records,
)
from trainer_client import CurriculumClient
from trainer_client.grpo.model import build_tiny, char_tokenizer
from trainer_client.grpo.tasks import reverse_distributions, reverse_reward
from trainer_client.integrations.trl import RUN_FOLDER, CurriculumGRPOTrainer, CurriculumRun
from trainer_client.protocol import Plan
from trainer_client.run_files import RUN_NAME

# TRL 1.16 itself calls a transformers API that transformers 5 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`is_gradient_checkpointing` is deprecated:FutureWarning"
)

LEVELS = [1, 2, 3]
GROUP, PROMPTS = 2, 4  # a round: 4 prompts x 2 completions


class RecordingClient(CurriculumClient):
    """Remembers which plans it asked for."""

    asked: list[int]

    def plan(self, step: int, batch_size: int) -> Any:
        self.asked.append(step)
        return super().plan(step, batch_size)


class Reward:
    """Exact match (or ``score``), remembering each round's data sources, dataset rows and
    rewards as TRL passes them."""

    __name__ = "exact_match"

    def __init__(self, score: Callable[[list[str], list[str]], list[float]] | None = None) -> None:
        self.score = score or reverse_reward
        self.rounds: dict[int, list[str]] = {}
        self.rows: dict[int, list[int]] = {}
        self.rewards: dict[int, list[float]] = {}

    def __call__(
        self, completions: list[str], answer: list[str], data_source: list[str],
        curriculum_round: list[int], row: list[int], **_: Any,
    ) -> list[float]:  # fmt: skip
        assert len(set(curriculum_round)) == 1
        k = curriculum_round[0]
        rewards = self.score(completions, answer)
        self.rounds.setdefault(k, []).extend(data_source)
        self.rows.setdefault(k, []).extend(row)
        self.rewards.setdefault(k, []).extend(rewards)
        return rewards


def odd_length(completions: list[str], answers: list[str]) -> list[float]:
    """1.0 for a completion of odd length: rewards that vary within a tiny model's groups."""
    return [float(len(c) % 2) for c in completions]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = char_tokenizer()
    build_tiny(tokenizer, 2, 32, 2, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _dataset() -> Dataset:
    rows = [(d.name, ex) for d in reverse_distributions(LEVELS, 0, 12, 2) for ex in d.train]
    return Dataset.from_dict(
        {
            "prompt": [ex.prompt for _, ex in rows],
            "answer": [ex.answer for _, ex in rows],
            "data_source": [name for name, _ in rows],
            "row": list(range(len(rows))),  # what the reward sees of the row trained
        }
    )


def _grpo_args(
    out: Path, steps: int, generations: int = GROUP, per_device: int = PROMPTS * GROUP
) -> GRPOConfig:
    """A few CPU steps of a tiny model; one round a step, a checkpoint every 2."""
    return GRPOConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        model_init_kwargs={"dtype": "float32", "attn_implementation": "eager"},
        per_device_train_batch_size=per_device,
        num_generations=generations,
        max_completion_length=4,
        learning_rate=1e-3,
        max_steps=steps,
        save_strategy="steps",
        save_steps=2,
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=3,
    )


def _trainer(
    model_dir: Path | str,
    out: Path | str,
    curriculum: CurriculumClient | CurriculumRun,
    reward: Reward,
    steps: int,
    **shape: int,
) -> CurriculumGRPOTrainer:
    """``shape``: ``generations`` and ``per_device`` (default: 4 prompts x 2 completions)."""
    trainer = CurriculumGRPOTrainer(
        model=str(model_dir),
        reward_funcs=reward,
        args=_grpo_args(Path(out), steps, **shape),
        train_dataset=_dataset(),
        processing_class=char_tokenizer(),
        curriculum=curriculum,
    )
    trainer.remove_callback(PrinterCallback)
    return trainer


def _client(service_url: str, token: str | None = None) -> RecordingClient:
    names = [f"rev-{n}" for n in LEVELS]
    client = RecordingClient.create_or_attach(
        service_url, names, run_id="trl", token=token, strategy={"name": "dump-ucb"}, seed=1
    )
    client.asked = []
    return client


def test_rounds_follow_their_plans_and_every_sample_is_reported_once(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    reward = Reward()
    with _client(service_url) as client:
        _trainer(model_dir, tmp_path / "out", client, reward, steps=3).train()
        assert sorted(reward.rounds) == [0, 1, 2]
        for k, sources in reward.rounds.items():
            plan = client.plan(k, PROMPTS)
            assert plan.source == "service"
            assert {n: c // GROUP for n, c in Counter(sources).items()} == plan.counts
        info = client.run_info()
        assert sum(s["n"] for s in info["stats"].values()) == 3 * PROMPTS * GROUP
        assert info["version"] == 3  # one report a round
        client.delete()


def test_resume_from_a_trl_checkpoint_continues_the_curriculum(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    """Train 2 rounds (checkpoint-2), go on to round 4 from it: 4 rounds counted once, and
    the resumed run asks for no plan of the rounds it skips."""
    out = tmp_path / "out"
    with _client(service_url) as first:
        _trainer(model_dir, out, first, Reward(), steps=3).train()
        token = first.token
    state = (out / "checkpoint-2" / "curriculum.json").read_text()
    assert '"rounds_reported": 2' in state
    reward = Reward()
    with _client(service_url, token) as client:
        trainer = _trainer(model_dir, out, client, reward, steps=4)
        trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))
        assert sorted(reward.rounds) == [2, 3]
        assert min(client.asked) >= 2
        info = client.run_info()
        assert sum(s["n"] for s in info["stats"].values()) == 4 * PROMPTS * GROUP
        client.delete()


def test_two_processes_draw_disjoint_shares_of_one_plan_and_report_once_each(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    """Two processes (gloo on the CPU, launched by torch.distributed.run): in every round
    their prompts together are the round's plan, and each reports its share once."""
    with _client(service_url) as owner:
        token = owner.token
        assert token is not None
        command = [
            sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
            "--master_port", str(free_port()), "-m", "tests.integrations.trl_worker",
            service_url, owner.run_id, token, str(model_dir), str(tmp_path), "2", "",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        seen = [json.loads((tmp_path / f"rank-{r}.json").read_text())["rounds"] for r in (0, 1)]
        for k in (0, 1):
            plan = owner.plan(k, 2 * PROMPTS)  # a round of two processes: 8 prompts
            both = Counter(seen[0][str(k)]) + Counter(seen[1][str(k)])
            assert len(seen[0][str(k)]) == len(seen[1][str(k)]) == PROMPTS * GROUP
            assert {n: c // GROUP for n, c in both.items()} == plan.counts
        info = owner.run_info()
        assert info["version"] == 2 * 2  # two rounds, one report per process each
        assert sum(s["n"] for s in info["stats"].values()) == 2 * 2 * PROMPTS * GROUP
        owner.delete()


def _start(
    service_url: str, model_dir: Path, out: Path, steps: int, resume: str = "", fail_at: int = -1
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """One start of the run in a new process (tests/integrations/trl_restart_worker.py)."""
    command = [
        sys.executable, "-m", "tests.integrations.trl_restart_worker",
        service_url, str(model_dir), str(out), str(steps), resume, str(fail_at),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    return done, json.loads((out / "start.json").read_text())


def test_a_start_in_a_new_process_attaches_to_the_run_its_output_dir_records(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    """Three processes, none given a token: the first creates the run and fails in round 1;
    the second starts over, attaches with the saved token and fails in round 2 (after
    checkpoint-2); the third resumes from checkpoint-2. Every round is counted once."""
    from tests.integrations.trl_restart_worker import RUN_ID

    out = tmp_path / "out"
    done, first = _start(service_url, model_dir, out, steps=3, fail_at=1)
    assert done.returncode != 0 and "round 1 fails" in done.stderr
    record_path = out / RUN_FOLDER / RUN_NAME
    assert stat.S_IMODE(record_path.stat().st_mode) == 0o600  # it holds the run's token
    record = json.loads(record_path.read_text())
    assert record["run_id"] == first["run_id"] == RUN_ID
    assert record["token"] == first["token"] and record["token"].startswith("rct_")
    # TRL's push_to_hub uploads output_dir but "_*": the token stays on this machine
    assert str(record_path.relative_to(out)).startswith("_")

    done, second = _start(service_url, model_dir, out, steps=3, fail_at=2)
    assert done.returncode != 0 and "round 2 fails" in done.stderr, done.stderr[-3000:]
    assert (second["run_id"], second["token"]) == (RUN_ID, record["token"])
    assert sorted(second["rounds"]) == ["0", "1"]  # round 0 again: a duplicate report
    with CurriculumClient(service_url, RUN_ID, record["token"]) as owner:
        info = owner.run_info()
        assert info["version"] == 2
        assert sum(s["n"] for s in info["stats"].values()) == 2 * PROMPTS * GROUP

        done, third = _start(service_url, model_dir, out, 4, str(out / "checkpoint-2"))
        assert done.returncode == 0, done.stderr[-3000:]
        assert (third["run_id"], third["token"]) == (RUN_ID, record["token"])
        assert sorted(third["rounds"]) == ["2", "3"]
        info = owner.run_info()
        assert sum(s["n"] for s in info["stats"].values()) == 4 * PROMPTS * GROUP
        assert json.loads(record_path.read_text()) == record
        owner.delete()


def _slot_rows(plan: Plan | Sequence[str], prompt_ids: Sequence[int] | None = None) -> list[int]:
    """The dataset rows a plan that names its prompts asks for: prompt ``p`` of a source is
    its ``p``-th row in dataset order."""
    sources = _dataset()["data_source"]
    rows = {name: [i for i, s in enumerate(sources) if s == name] for name in set(sources)}
    assignment = getattr(plan, "assignment", plan)
    ids = getattr(plan, "prompt_ids", prompt_ids)
    assert ids is not None
    return [rows[name][p] for name, p in zip(assignment, ids, strict=True)]


def test_prompt_selection_trains_the_rows_the_plans_name_and_reports_every_group(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    """A run declared with the dataset's prompts (prompt_selection): every round trains the
    rows its plan's prompt_ids name, each repeated num_generations times; the service's
    prompt state is exactly what every group (prompt and rewards) moves it to; and a resume
    from checkpoint-2 keeps the remembered plans' prompt ids."""
    out = tmp_path / "out"
    run = CurriculumRun(
        service_url, run_id="trl-prompts", strategy={"name": "dump-ucb"}, seed=1,
        prompt_selection={"mode": "coverage"},
    )  # fmt: skip
    first = Reward(odd_length)
    trainer = _trainer(model_dir, out, run, first, steps=3)
    trainer.train()
    client = trainer.curriculum
    info = client.run_info()
    counts = dict(Counter(_dataset()["data_source"]))
    names = info["config"]["distributions"]
    assert info["config"]["prompts"] == counts
    plans = {k: client.plan(k, PROMPTS) for k in range(3)}  # kept plans: nothing moves
    for k, plan in plans.items():
        assert plan.prompt_ids is not None
        assert first.rows[k] == [r for r in _slot_rows(plan) for _ in range(GROUP)]
    assert len({r for k in range(3) for r in first.rows[k]}) == 3 * PROMPTS  # coverage
    saved = json.loads((out / "checkpoint-2" / "curriculum.json").read_text())
    assert saved["rounds_reported"] == 2 and "2" in saved["prompt_ids"]
    for k, ids in saved["prompt_ids"].items():
        assert (saved["plans"][k], ids) == (plans[int(k)].assignment, plans[int(k)].prompt_ids)
    client.close()

    resumed = Reward(odd_length)
    trainer = _trainer(model_dir, out, run, resumed, steps=4)
    trainer.train(resume_from_checkpoint=str(out / "checkpoint-2"))
    client = trainer.curriculum
    assert sorted(resumed.rounds) == [2, 3]
    # round 2 from the checkpoint's plan (the import dropped the service's plans), round 3
    # from the service's plan of the restored state
    assert resumed.rows[2] == first.rows[2]
    assert resumed.rows[3] == [r for r in _slot_rows(client.plan(3, PROMPTS)) for _ in range(GROUP)]

    sources = _dataset()["data_source"]

    def groups_of(reward: Reward, k: int) -> list[Group]:
        """Round k's groups: each slot's source, prompt id and its completions' rewards."""
        out = []
        for j in range(PROMPTS):
            row = reward.rows[k][GROUP * j]
            prompt = sources[:row].count(sources[row])  # its index among its source's rows
            out.append((sources[row], prompt, reward.rewards[k][GROUP * j : GROUP * (j + 1)]))
        return out

    groups = [g for k in (0, 1) for g in groups_of(first, k)]
    groups += [g for k in (2, 3) for g in groups_of(resumed, k)]
    state = client.export()["prompt_state"]
    assert state["groups"] == groups_counted(names, groups)
    assert service_records(names, counts, state) == expected_records(names, counts, groups)
    assert any(min(r) != max(r) for _, _, r in groups)  # varied groups as well as equal ones
    assert any(min(r) == max(r) for _, _, r in groups)
    client.delete()
    client.close()


def test_two_processes_report_each_group_once_and_whole_when_groups_span_them(
    service_url: str, model_dir: Path, tmp_path: Path
) -> None:
    """Two processes with prompt selection, 4 completions a prompt and 6 rows a process: a
    round is 3 prompts, and the second one's group spans both processes (rows 4-7). Each
    group is reported once, by the process holding its first row, with all 4 rewards: the
    service counts 3 groups a round and holds the records those groups give."""
    generations, rounds = 4, 2
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_port", str(free_port()), "-m", "tests.integrations.trl_worker",
        service_url, "trl-spanning", "", str(model_dir), str(tmp_path), str(rounds), "prompts",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
    record = json.loads((tmp_path / RUN_FOLDER / RUN_NAME).read_text())
    sources = _dataset()["data_source"]
    counts = dict(Counter(sources))
    groups: list[Group] = []
    with CurriculumClient(service_url, record["run_id"], record["token"]) as owner:
        names = owner.run_info()["config"]["distributions"]
        for k in map(str, range(rounds)):
            rows = seen[0]["rows"][k] + seen[1]["rows"][k]  # the round in process order
            rewards = seen[0]["rewards"][k] + seen[1]["rewards"][k]
            assert len(seen[0]["rows"][k]) == len(seen[1]["rows"][k]) == 6
            plan = owner.plan(int(k), 12 // generations)
            assert rows == [r for r in _slot_rows(plan) for _ in range(generations)]
            assert plan.prompt_ids is not None
            groups += [
                (name, p, rewards[generations * j : generations * (j + 1)])
                for j, (name, p) in enumerate(zip(plan.assignment, plan.prompt_ids, strict=True))
            ]
        state = owner.export()["prompt_state"]
        assert sum(state["groups"]) == 3 * rounds  # the spanning group once a round
        assert state["groups"] == groups_counted(names, groups)
        assert service_records(names, counts, state) == expected_records(names, counts, groups)
        owner.delete()
