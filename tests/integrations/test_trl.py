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
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("trl")

from datasets import Dataset
from transformers import PrinterCallback
from trl import GRPOConfig

from local_processes import free_port
from trainer_client import CurriculumClient
from trainer_client.grpo.model import build_tiny, char_tokenizer
from trainer_client.grpo.tasks import reverse_distributions, reverse_reward
from trainer_client.integrations.trl import RUN_FOLDER, CurriculumGRPOTrainer, CurriculumRun
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
    """Exact match, remembering each round's data sources as TRL passes them."""

    __name__ = "exact_match"

    def __init__(self) -> None:
        self.rounds: dict[int, list[str]] = {}

    def __call__(
        self, completions: list[str], answer: list[str], data_source: list[str],
        curriculum_round: list[int], **_: Any,
    ) -> list[float]:  # fmt: skip
        assert len(set(curriculum_round)) == 1
        self.rounds.setdefault(curriculum_round[0], []).extend(data_source)
        return reverse_reward(completions, answer)


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
        }
    )


def _grpo_args(out: Path, steps: int) -> GRPOConfig:
    """A few CPU steps of a tiny model; one round a step, a checkpoint every 2."""
    return GRPOConfig(
        output_dir=str(out),
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        model_init_kwargs={"dtype": "float32", "attn_implementation": "eager"},
        per_device_train_batch_size=PROMPTS * GROUP,
        num_generations=GROUP,
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
) -> CurriculumGRPOTrainer:
    trainer = CurriculumGRPOTrainer(
        model=str(model_dir),
        reward_funcs=reward,
        args=_grpo_args(Path(out), steps),
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
            service_url, owner.run_id, token, str(model_dir), str(tmp_path), "2",
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        seen = [json.loads((tmp_path / f"rank-{r}.json").read_text()) for r in (0, 1)]
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
