"""The curriculum settings of a verl run: the config's block, the environment filling gaps,
and errors that say where to set what is missing (no verl needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from trainer_client.integrations.verl.settings import connect, resolve, temporary_disk


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CURRICULUM_URL", "CURRICULUM_RUN_ID", "CURRICULUM_TOKEN", "CURRICULUM_BUFFER"):
        monkeypatch.delenv(name, raising=False)


def test_the_config_block_wins_and_the_environment_fills_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CURRICULUM_URL", "http://env:1")
    monkeypatch.setenv("CURRICULUM_RUN_ID", "from-env")
    monkeypatch.setenv("CURRICULUM_TOKEN", "rct_secret")
    settings = resolve({"run_id": "from-config", "strategy": {"name": "dump-ucb"}, "seed": "3"})
    assert settings == {
        "url": "http://env:1",
        "run_id": "from-config",
        "token": "rct_secret",
        "strategy": {"name": "dump-ucb"},
        "seed": 3,
    }


def test_empty_values_count_as_unset_and_the_error_names_both_places() -> None:
    with pytest.raises(ValueError, match=r"url and run_id.*CURRICULUM_URL, CURRICULUM_RUN_ID"):
        resolve({"url": "", "run_id": None})


def test_an_unknown_key_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown curriculum settings \\['stratgy'\\]"):
        resolve({"url": "http://x", "run_id": "r", "stratgy": "uniform"})


def test_an_omegaconf_block_is_read_as_plain_values() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    block = omegaconf.OmegaConf.create({"url": "http://x", "run_id": "r", "strategy": "uniform"})
    assert resolve(block)["strategy"] == "uniform"


def test_a_buffer_on_a_temporary_disk_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    buffer = str(tmp_path / "curriculum-buffer.jsonl")  # pytest's tmp_path is under /tmp
    with caplog.at_level(logging.WARNING, logger="trainer_client.integrations.verl.settings"):
        for _ in range(3):  # e.g. a TaskRunner that builds the sampler and the trainer
            assert (
                resolve({"url": "http://x", "run_id": "r", "buffer_path": buffer})["buffer_path"]
                == buffer
            )
    [record] = caplog.records
    assert record.levelname == "WARNING"
    assert f"buffer_path {buffer} is under /tmp" in record.getMessage()
    assert "Many nodes" in record.getMessage()


def test_a_temporary_disk_is_a_temporary_folder_or_a_tmpfs_mount(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw,relatime 0 0\n"
        "tmpfs /scratch tmpfs rw,size=1024k 0 0\n"
        "nfs:/export /scratch/shared nfs4 rw 0 0\n"
    )
    assert temporary_disk("/scratch/run/buffer.jsonl", str(mounts)) == "on a tmpfs (/scratch)"
    assert temporary_disk("/scratch/shared/buffer.jsonl", str(mounts)) is None  # nfs inside
    assert temporary_disk("/scratch2/buffer.jsonl", str(mounts)) is None
    assert temporary_disk("/data/buffer.jsonl", str(mounts)) is None
    assert temporary_disk("/var/tmp/buffer.jsonl", str(mounts)) == "under /var/tmp"
    assert temporary_disk("/dev/shm/buffer.jsonl", str(mounts)) == "under /dev/shm"
    assert temporary_disk("/data/buffer.jsonl", str(tmp_path / "no-such-file")) is None


def test_prompt_selection_declares_each_sources_row_count_to_a_new_run(service_url: str) -> None:
    labels = ["easy", "hard", "easy", "mid", "easy", "hard"]
    settings = resolve(
        {"url": service_url, "run_id": "verl-declared", "prompt_selection": {"mode": "coverage"}}
    )
    with connect(settings, labels) as client:
        config = client.run_info()["config"]
        assert config["prompts"] == {"easy": 3, "hard": 2, "mid": 1}
        assert config["prompt_selection"]["mode"] == "coverage"
        assert client.plan(0, 4).prompt_ids is not None
        client.delete()
    with connect(resolve({"url": service_url, "run_id": "verl-plain"}), labels) as client:
        assert not client.run_info()["config"].get("prompts")
        assert client.plan(0, 4).prompt_ids is None
        client.delete()
