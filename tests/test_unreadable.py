"""Folders and files this user may not read: one ``error:`` line naming the folder in the way and
what to do, exit 2, nothing changed (root runs these without the rights that bypass modes)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .conftest import EXAMPLES, snapshot

Run = Callable[..., subprocess.CompletedProcess[str]]
ACCESS = "permission denied: give this user access to it (ls -ld shows its owner and mode)\n"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding one generated experiment, ``study/`` (a custom base: no torchtune
    needed to regenerate it)."""
    subprocess.run(["git", "init", "-q", str(tmp_path / "repo")], check=True)
    shutil.copytree(EXAMPLES / "lr_batch_sweep", tmp_path / "repo" / "study")
    return tmp_path / "repo"


@pytest.fixture
def locked(repo: Path) -> Iterator[Callable[[str, int], None]]:
    """Set the mode of a path of ``repo``; every mode is restored afterwards, so that pytest can
    clean up."""
    changed: list[tuple[Path, int]] = []

    def lock(name: str, mode: int) -> None:
        path = repo / name
        changed.append((path, os.stat(path).st_mode))
        os.chmod(path, mode)

    yield lock
    for path, mode in reversed(changed):
        os.chmod(path, mode)


def refused(result: subprocess.CompletedProcess[str], where: str, message: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert (result.returncode, result.stdout) == (2, ""), result
    assert result.stderr == f"error: {where}: {message}", result.stderr


@pytest.mark.parametrize("command", ["check", "validate"])
@pytest.mark.parametrize("name", ["study", "study/configs"])
def test_a_named_folder_this_user_may_not_read_is_one_error_naming_it(
    unprivileged: Run, repo: Path, locked: Callable[[str, int], None], command: str, name: str
) -> None:
    locked(name, 0o000)
    refused(unprivileged(command, name, cwd=repo), name, ACCESS)


def test_a_folder_the_user_may_search_but_not_list_is_one_error(
    unprivileged: Run, repo: Path, locked: Callable[[str, int], None]
) -> None:
    locked("study", 0o311)  # the lock beside configs/ needs the folder opened
    before = snapshot(repo / "study")
    refused(unprivileged("generate", "study/experiment.yaml", cwd=repo), "study", ACCESS)
    locked("study", 0o755)
    assert snapshot(repo / "study") == before


def test_a_generated_folder_this_user_may_not_read_stops_generate_with_nothing_changed(
    unprivileged: Run, repo: Path, locked: Callable[[str, int], None]
) -> None:
    (repo / "study" / "experiment.yaml").write_text(
        (repo / "study" / "experiment.yaml").read_text().replace("seed: 42", "seed: 7")
    )
    before = snapshot(repo / "study")
    locked("study/configs", 0o000)
    result = unprivileged("generate", "study/experiment.yaml", cwd=repo)
    # The repository is searched first (another experiment may claim the same output_dir).
    refused(
        result,
        "study/configs",
        "this user may not read it (Permission denied), and experiments are looked for in every "
        "folder of the repository: give this user access to it, or add it to .gitignore if it "
        "holds none\n",
    )
    locked("study/configs", 0o755)
    assert snapshot(repo / "study") == before


def test_an_unreadable_folder_of_the_repository_is_not_passed_over_as_up_to_date(
    unprivileged: Run, repo: Path, locked: Callable[[str, int], None]
) -> None:
    # git ls-files lists nothing below a folder it may not open, and only warns: an experiment
    # in it would count as "0 experiments up to date".
    locked("study", 0o000)
    result = unprivileged("check", cwd=repo)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: study: this user may not read it (Permission denied)")
    # Ignored, it is not looked into, and the rest of the repository is checked.
    (repo / ".gitignore").write_text("study/\n")
    result = unprivileged("check", cwd=repo)
    assert (result.returncode, result.stdout) == (0, "✓ 0 experiments up to date\n"), result


def test_an_output_base_dir_this_user_may_not_read_is_one_error_and_nothing_is_created(
    unprivileged: Run, repo: Path, tmp_path: Path, locked: Callable[[str, int], None]
) -> None:
    outputs = tmp_path / "outputs"  # outside the repository: git does not look there
    outputs.mkdir()
    os.chmod(outputs, 0o000)
    try:
        before = snapshot(repo)
        args = ("generate", "study/experiment.yaml", "--output-base-dir", outputs)
        result = unprivileged(*args, cwd=repo)
        refused(result, str(outputs), ACCESS)
    finally:
        os.chmod(outputs, 0o755)
    assert list(outputs.iterdir()) == []
    assert snapshot(repo) == before


def test_a_recipe_in_a_folder_this_user_may_not_read_is_refused_at_its_line(
    unprivileged: Run, repo: Path, locked: Callable[[str, int], None]
) -> None:
    experiment = repo / "study" / "experiment.yaml"
    text = experiment.read_text()
    (repo / "study" / "recipes").mkdir()
    (repo / "study" / "recipes" / "my_recipe.py").write_text("print('training')\n")
    experiment.write_text(
        text.replace(
            "  base_config_file: my_gpu_optimized.yaml\n",
            "  base_config_file: my_gpu_optimized.yaml\n  recipe: recipes/my_recipe.py\n",
        )
    )
    locked("study/recipes", 0o000)
    result = unprivileged("generate", "study/experiment.yaml", cwd=repo)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: study/experiment.yaml:")
    assert "cannot read framework_config.recipe recipes/my_recipe.py: Permission denied" in (
        result.stderr
    )
