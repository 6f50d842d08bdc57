"""`diff --base REF`: what a change does to every run, read from real git repositories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import generate

from .conftest import EXAMPLES, REPO, CliResult

STUDY = "lora_rank_study"


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose first commit holds the lora_rank_study example (4 runs)."""
    path = tmp_path / "repo"
    shutil.copytree(EXAMPLES / STUDY, path / STUDY)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "base")
    monkeypatch.chdir(path)
    return path


def edit(repo: Path, old: str, new: str, name: str = STUDY) -> None:
    experiment = repo / name / "experiment.yaml"
    text = experiment.read_text()
    assert old in text
    experiment.write_text(text.replace(old, new))
    generate(experiment)


def review(cli: Callable[..., CliResult], base: str = "main") -> dict[str, Any]:
    result = cli("diff", "--base", base, "--format", "json")
    assert result.code == 0, result.err
    data: dict[str, Any] = json.loads(result.out)
    return data


def folder(data: dict[str, Any], name: str = STUDY) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in data["folders"] if f["folder"] == name)
    return found


def test_added_removed_and_changed_runs_and_a_control_changed_in_every_run_once(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    edit(repo, "[8, 16, 32, 64]", "[8, 16, 64, 128]")
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    study = folder(review(cli))
    assert study["status"] == "changed"
    assert study["added"] == [{"id": "run_004", "params": {"lora_rank": 128}}]
    assert study["removed"] == [{"id": "run_002", "params": {"lora_rank": 32}}]
    assert study["renamed"] == []
    [change] = study["changes"]  # one control, one line, with the runs it changed in
    assert change["key"] == "optimizer.lr"
    assert (change["before"], change["after"]) == (0.0003, 0.0001)
    assert change["runs"] == ["run_000", "run_001", "run_003"]
    assert study["base_changed"] is False
    text = cli("diff", "--base", "main").out
    assert "  ~ optimizer.lr: 0.0003 → 0.0001  (all 3 runs)\n" in text
    assert "  + run_004  lora_rank=128\n" in text and "  - run_002  lora_rank=32\n" in text


def test_runs_numbered_afresh_are_renamed_not_added(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    edit(repo, "[8, 16, 32, 64]", "[8, 32, 64]")
    generate(repo / STUDY, renumber=True)  # run_002 (32) is now run_001, run_003 (64) run_002
    study = folder(review(cli))
    assert study["renamed"] == [
        {"from": "run_002", "to": "run_001"},
        {"from": "run_003", "to": "run_002"},
    ]
    assert study["removed"] == [{"id": "run_001", "params": {"lora_rank": 16}}]
    assert study["added"] == []
    # Their output folders follow their ids: that is what changed in them.
    assert {c["key"] for c in study["changes"]} == {"output_dir"}


def test_experiments_added_and_deleted(repo: Path, cli: Callable[..., CliResult]) -> None:
    git(repo, "rm", "-rq", STUDY)
    shutil.copytree(EXAMPLES / "lr_batch_sweep", repo / "sweep")
    data = review(cli)
    deleted = folder(data)
    assert deleted["status"] == "deleted" and len(deleted["removed"]) == 4
    added = folder(data, "sweep")
    assert added["status"] == "added" and added["runs_after"] == 9
    text = cli("diff", "--base", "main").out
    assert f"{STUDY}: deleted, had 4 runs" in text and "sweep: new experiment, 9 runs" in text


def test_nothing_changed_says_so_and_markdown_has_the_table(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    assert "no generated folder changed" in cli("diff", "--base", "main").out
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    markdown = cli("diff", "--base", "main", "--format", "markdown").out
    assert markdown.startswith("## What this change does to the runs\n")
    assert "| changed | all 4 runs | `optimizer.lr` | `0.0003` | `0.0001` |" in markdown


def test_the_other_commit_is_read_from_git_objects_not_the_work_tree(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    git(repo, "commit", "-qam", "lower lr")
    edit(repo, "learning_rate: 1e-4", "learning_rate: 5e-5")
    [change] = folder(review(cli, "HEAD"))["changes"]
    assert (change["before"], change["after"]) == (0.0001, 5e-05)
    [change] = folder(review(cli, "HEAD~1"))["changes"]
    assert (change["before"], change["after"]) == (0.0003, 5e-05)


@pytest.mark.needs_torchtune
def test_a_changed_base_is_said_once(repo: Path, cli: Callable[..., CliResult]) -> None:
    edit(repo, "llama3_2/1B_lora_single_device", "llama3_2/3B_lora_single_device")
    study = folder(review(cli))
    assert study["base_changed"] is True
    assert study["base_before"].startswith("llama3_2/1B_lora_single_device (torchtune")
    assert study["base_after"].startswith("llama3_2/3B_lora_single_device (torchtune")
    text = cli("diff", "--base", "main").out
    assert "base changed: llama3_2/1B_lora_single_device" in text


def test_an_unknown_base_is_one_error_that_says_to_fetch_it(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("diff", "--base", "no-such-branch")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: no-such-branch is not a commit of this repository")
    assert "fetch-depth: 0" in result.err and len(result.err.splitlines()) == 1


def test_the_hook_path_never_imports_gitpython(repo: Path) -> None:
    script = (
        "import sys\n"
        "from torchtune_config_writer.cli import main\n"
        "code = main(['check', '--fix'])\n"
        "assert 'git' not in sys.modules, 'check imported gitpython'\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=repo, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_json_docs_commands_md_shows_is_what_diff_writes(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    edit(repo, "[8, 16, 32, 64]", "[8, 16, 64, 128]")
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    page = (REPO / "docs" / "commands.md").read_text(encoding="utf-8")
    shown = page.split("### `diff --format json`", 1)[1].split("```json\n", 1)[1].split("```")[0]
    written = cli("diff", "--base", "main", "--format", "json").out
    commit = json.loads(written)["base_commit"]
    assert written.replace(commit, json.loads(shown)["base_commit"]) == shown


def test_output_dash_is_standard_output_and_an_unwritable_file_one_error(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    edit(repo, "learning_rate: 3e-4", "learning_rate: 1e-4")
    printed = cli("diff", "--base", "main", "--format", "json")
    assert cli("diff", "--base", "main", "--format", "json", "--output", "-").out == printed.out
    result = cli("diff", "--base", "main", "--output", repo / "missing" / "table.txt")
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith("error: ") and len(result.err.splitlines()) == 1
    assert "cannot write the report" in result.err
