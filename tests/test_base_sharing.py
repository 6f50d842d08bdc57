"""The recorded base: a new experiment reuses the repository's record of its recipe config, so
it is generated alike with or without torchtune; a base file must be a regular file."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.generation import builtin_configs
from torchtune_config_writer.installing import INSTALL_ADVICE

from .conftest import CliResult, experiment_text, snapshot


def test_a_new_experiment_reuses_another_experiments_record_without_torchtune(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
) -> None:
    monkeypatch.chdir(tmp_path)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = write_experiment(experiment_text(controls="output_dir: /scratch/a"), folder="a")
    generate(first)  # records the recipe config, with torchtune
    second = write_experiment(
        experiment_text(controls="output_dir: /scratch/b").replace("name: study", "name: b"),
        folder="b",
    )
    monkeypatch.setattr(
        builtin_configs, "installed_torchtune", lambda: None
    )  # the hook's environment
    result = cli("generate", second)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0] == (
        "✓ Loaded base config: llama3_2/1B_lora_single_device "
        "(recorded in a/configs/base.lock.yaml, torchtune 0.6.1)"
    )
    lock = "configs/base.lock.yaml"
    assert (first.parent / lock).read_bytes() == (second.parent / lock).read_bytes()


def test_without_a_record_anywhere_it_still_says_to_install_torchtune(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    path = write_experiment(experiment_text())
    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    result = cli("generate", path)
    assert result.code == 2 and INSTALL_ADVICE in result.err


@pytest.mark.parametrize("special", ["/dev/null", "fifo"])
def test_a_base_config_file_that_is_no_regular_file_says_so(
    tmp_path: Path,
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    special: str,
) -> None:
    if special == "fifo":
        os.mkfifo(tmp_path / "fifo")
        special = str(tmp_path / "fifo")
    path = write_experiment(experiment_text(base=f"base_config_file: {special}"))
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.endswith(
        f":5:3: base_config_file {special} is not a regular file (a device, a pipe or a "
        "socket): give the path of a YAML config (relative paths start at the experiment's "
        "folder)\n"
    )
    assert snapshot(path.parent) == before
