"""The drift hook through the real pre-commit client, in temporary git repositories.

The hook is installed from a commit of this working tree into pre-commit's own environment, as a
user's `.pre-commit-config.yaml` would install it: without torch or torchtune.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import torchtune_config_writer

from .conftest import EXAMPLES, REPO, copy_experiment, copy_working_tree, snapshot

HOOK = "check-torchtune-configs"
HOOK_NAME = "torchtune configs match their experiments"


def run(cwd: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a command; its output, stdout and stderr together, is in ``.stdout``.

    git runs the hook with its stdout sent to stderr, so a commit's story is in both.
    """
    return subprocess.run(
        args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One pre-commit cache for the session, so the hook's environment is built once."""
    return {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path_factory.mktemp("pre-commit-home")),
        "PRE_COMMIT_COLOR": "never",
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }


@pytest.fixture(scope="session")
def hook_repo(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> tuple[Path, str]:
    """A git repository holding this working tree (tracked and new files), and its commit."""
    dest = tmp_path_factory.mktemp("hook-repo")
    copy_working_tree(dest)
    for args in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "hook")):
        run(dest, *args, env=env).check_returncode()
    sha = run(dest, "git", "rev-parse", "HEAD", env=env).stdout.strip()
    return dest, sha


@pytest.fixture
def repo(tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]) -> Path:
    """A user's repository: two experiments, generated and committed, and the hook installed."""
    for name in ("lora_rank_study", "lr_batch_sweep"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    source, sha = hook_repo
    (tmp_path / ".pre-commit-config.yaml").write_text(
        f"repos:\n- repo: {source}\n  rev: {sha}\n  hooks:\n  - id: {HOOK}\n"
    )
    for args in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "start")):
        run(tmp_path, *args, env=env).check_returncode()
    run(tmp_path, sys.executable, "-m", "pre_commit", "install", env=env).check_returncode()
    return tmp_path


def commit(repo: Path, env: dict[str, str], *paths: str) -> subprocess.CompletedProcess[str]:
    run(repo, "git", "add", *(paths or ("-A",)), env=env).check_returncode()
    return run(repo, "git", "commit", "-m", "change", env=env)


def status(repo: Path, env: dict[str, str]) -> str:
    return run(repo, "git", "status", "--porcelain", env=env).stdout


def shown_block(page: str, containing: str, language: str = "yaml") -> str:
    """The code block of ``page`` (a path from the repository's root) that holds ``containing``:
    the tests run what the docs show."""
    text = (REPO / page).read_text(encoding="utf-8")
    blocks = re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)
    [block] = [block for block in blocks if containing in block]
    return str(block)


UPSTREAM = "https://github.com/OWNER/torchtune-config-writer"


@pytest.mark.needs_pre_commit
def test_the_readme_installs_a_tag_and_its_first_command_and_hook_run(
    tmp_path: Path, hook_repo: tuple[Path, str], env: dict[str, str]
) -> None:
    # The README's lines as a user runs them, with a clone of this working tree, at a tag this
    # test creates, for the repository: into a fresh virtual environment, without torch, and
    # nothing of this test run's Python path.
    source, _ = hook_repo
    tag = f"v{torchtune_config_writer.__version__}"
    run(source, "git", "tag", "-f", tag, env=env).check_returncode()
    user_env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    venv = tmp_path / "venv"
    run(tmp_path, sys.executable, "-m", "venv", str(venv), env=user_env).check_returncode()

    [install] = shown_block("README.md", 'pip install "git+', "bash").splitlines()
    words = shlex.split(install.replace(UPSTREAM, source.as_uri()))
    assert words[:2] == ["pip", "install"] and words[2].endswith(f"@{tag}"), install
    installed = run(tmp_path, str(venv / "bin" / "pip"), *words[1:], env=user_env)
    assert installed.returncode == 0, installed.stdout[-3000:]
    where = "import importlib.util as u; print(u.find_spec('torchtune_config_writer').origin)"
    origin = run(tmp_path, str(venv / "bin" / "python"), "-c", where, env=user_env).stdout
    assert Path(origin.strip()).is_relative_to(venv)
    torch = "import importlib.util as u; print(u.find_spec('torch'))"
    assert run(tmp_path, str(venv / "bin" / "python"), "-c", torch, env=user_env).stdout == "None\n"

    # "In a clone of this repository at that tag": the README's first command and its output.
    clone = tmp_path / "clone"
    cloned = run(tmp_path, "git", "clone", "-q", "--branch", tag, str(source), str(clone), env=env)
    assert cloned.returncode == 0, cloned.stdout
    first = shown_block("README.md", "generate examples/lora_rank_study", "bash")
    [command] = [line for line in first.splitlines() if not line.startswith("#")]
    # As a shell runs it (`pip install . && ...`), with the fresh environment's tools first.
    in_venv = {**user_env, "PATH": f"{venv / 'bin'}{os.pathsep}{user_env.get('PATH', '')}"}
    shell = f"set -o pipefail; {{ {command}; }} 2>/dev/null | tail -n 3"  # pip's lines before
    generated = run(clone, "bash", "-c", shell, env=in_venv)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    shown = readme.split(first, 1)[1].split("```\n\n```\n", 1)[1].split("```", 1)[0]
    assert (generated.returncode, generated.stdout) == (0, shown)

    # The hook, from the README's `.pre-commit-config.yaml`, in a user's repository.
    user = tmp_path / "study"
    shutil.copytree(clone / "examples" / "lora_rank_study", user / "lora_rank_study")
    config = shown_block("README.md", "rev:").replace(UPSTREAM, source.as_uri())
    assert f"rev: {tag}\n" in config
    (user / ".pre-commit-config.yaml").write_text(config)
    for args in (("git", "init", "-q"), ("git", "add", "-A"), ("git", "commit", "-qm", "start")):
        run(user, *args, env=user_env).check_returncode()
    run(user, sys.executable, "-m", "pre_commit", "install", env=user_env).check_returncode()
    experiment = user / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16, 32, 64, 128]"))
    first_commit = commit(user, user_env)
    assert first_commit.returncode == 1, first_commit.stdout
    assert "missing: lora_rank_study/configs/run_004.yaml" in first_commit.stdout
    second_commit = commit(user, user_env)
    assert second_commit.returncode == 0, second_commit.stdout
    assert f"{HOOK_NAME}" in second_commit.stdout and "Passed" in second_commit.stdout


@pytest.mark.needs_pre_commit
def test_the_manifest_is_valid(env: dict[str, str]) -> None:
    result = run(
        REPO,
        sys.executable,
        "-m",
        "pre_commit",
        "validate-manifest",
        ".pre-commit-hooks.yaml",
        env=env,
    )
    assert result.returncode == 0, result.stdout


@pytest.mark.needs_pre_commit
def test_changing_a_variable_fails_regenerates_and_passes_next_time(
    repo: Path, env: dict[str, str]
) -> None:
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16, 32, 64, 128]"))
    first = commit(repo, env)
    assert first.returncode == 1, first.stdout
    assert f"{HOOK_NAME}" in first.stdout and "Failed" in first.stdout
    assert "missing: lora_rank_study/configs/run_004.yaml" in first.stdout
    assert "git add lora_rank_study/configs" in first.stdout
    # The new run file is untracked: the hook failed because it wrote it, not by pre-commit's diff.
    assert "?? lora_rank_study/configs/run_004.yaml" in status(repo, env)
    second = commit(repo, env)
    assert second.returncode == 0, second.stdout
    assert status(repo, env) == ""
    tracked = run(repo, "git", "ls-files", "lora_rank_study/configs", env=env).stdout.split()
    assert "lora_rank_study/configs/run_004.yaml" in tracked


@pytest.mark.needs_pre_commit
def test_a_hand_edit_of_a_generated_config_fails_and_is_restored(
    repo: Path, env: dict[str, str]
) -> None:
    run_file = repo / "lora_rank_study" / "configs" / "run_001.yaml"
    original = run_file.read_bytes()
    run_file.write_bytes(original.replace(b"lora_rank: 16", b"lora_rank: 17"))
    result = commit(repo, env)
    assert result.returncode == 1, result.stdout
    assert "-  lora_rank: 17\n+  lora_rank: 16" in result.stdout
    assert "files were modified by this hook" in result.stdout
    assert run_file.read_bytes() == original
    run(repo, "git", "add", "-A", env=env).check_returncode()
    assert status(repo, env) == ""  # back to what was committed


@pytest.mark.needs_pre_commit
def test_a_shared_base_config_change_regenerates_every_experiment_using_it(
    repo: Path, env: dict[str, str]
) -> None:
    second = copy_experiment(repo / "lr_batch_sweep", repo / "lr_batch_sweep_2")
    second.write_text(
        second.read_text().replace(
            "my_gpu_optimized.yaml", "../lr_batch_sweep/my_gpu_optimized.yaml"
        )
    )
    (repo / "lr_batch_sweep_2" / "my_gpu_optimized.yaml").unlink()
    assert commit(repo, env).returncode == 1  # its run_mapping.yaml names the base differently
    assert commit(repo, env).returncode == 0
    base = repo / "lr_batch_sweep" / "my_gpu_optimized.yaml"
    base.write_text(base.read_text().replace("weight_decay: 0.01", "weight_decay: 0.02"))
    result = commit(repo, env, str(base))
    assert result.returncode == 1, result.stdout
    for name in ("lr_batch_sweep", "lr_batch_sweep_2"):
        assert f"fixed: wrote {name}/configs/ (9 written, 0 removed)" in result.stdout
        assert "weight_decay: 0.02" in (repo / name / "configs" / "run_008.yaml").read_text()
    assert commit(repo, env).returncode == 0


@pytest.mark.needs_pre_commit
def test_a_commit_that_touches_no_experiment_leaves_generated_folders_alone(
    repo: Path, env: dict[str, str]
) -> None:
    # Commit a hand edit past the hook: a hook that looked at this experiment would now fail.
    run_file = repo / "lora_rank_study" / "configs" / "run_001.yaml"
    run_file.write_text(run_file.read_text().replace("lora_rank: 16", "lora_rank: 17"))
    run(repo, "git", "commit", "-qam", "drift", "--no-verify", env=env).check_returncode()
    before = snapshot(repo / "lora_rank_study")

    (repo / "README.md").write_text("Our study.\n")
    no_yaml = commit(repo, env)
    assert no_yaml.returncode == 0, no_yaml.stdout
    # always_run: the hook starts, reads the commit's deletions (none) and passes.
    assert f"{HOOK_NAME}" in no_yaml.stdout and "Passed" in no_yaml.stdout

    (repo / "notes.yaml").write_text("todo: [run it]\n")
    other_yaml = commit(repo, env)
    assert other_yaml.returncode == 0, other_yaml.stdout
    assert "Passed" in other_yaml.stdout
    assert snapshot(repo / "lora_rank_study") == before


@pytest.mark.needs_pre_commit
def test_run_on_all_files_finds_committed_drift(repo: Path, env: dict[str, str]) -> None:
    stale = repo / "lr_batch_sweep" / "configs" / "run_009.yaml"
    stale.write_text(
        "# Generated by torchtune-config-writer from ../experiment.yaml: a larger sweep\n"
    )
    run(repo, "git", "add", "-A", env=env).check_returncode()
    run(repo, "git", "commit", "-qm", "drift", "--no-verify", env=env).check_returncode()
    result = run(repo, sys.executable, "-m", "pre_commit", "run", "--all-files", env=env)
    assert result.returncode == 1, result.stdout
    assert "stale: lr_batch_sweep/configs/run_009.yaml" in result.stdout
    assert not stale.exists()
    again = run(repo, sys.executable, "-m", "pre_commit", "run", "--all-files", env=env)
    assert again.returncode == 0, again.stdout


@pytest.mark.needs_torch
@pytest.mark.needs_pre_commit
def test_the_validation_hook_runs_on_push_with_the_tool_named_by_its_path(
    repo: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    # language: system, and this shell has no environment with the tool active.
    env = {**env, "PATH": path_without("torchtune-config-writer", env["PATH"])}
    config = repo / ".pre-commit-config.yaml"
    config.write_text(config.read_text() + "  - id: validate-torchtune-configs\n")
    run(repo, "git", "commit", "-qam", "validate", "--no-verify", env=env).check_returncode()
    by_hand = ("pre_commit", "run", "validate-torchtune-configs", "--hook-stage", "manual")
    not_found = run(repo, sys.executable, "-m", *by_hand, "--all-files", env=env)
    assert not_found.returncode == 1
    assert "Executable `torchtune-config-writer` not found" in not_found.stdout
    # What docs/pre-commit.md shows: the tool of an environment that has torch, by its path from
    # the repository's root (.venv: this test's environment, linked and ignored).
    (repo / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    with (repo / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write(".venv\n")
    shown = shown_block("docs/pre-commit.md", "entry: .venv/bin/torchtune-config-writer")
    config.write_text(config.read_text().replace("  - id: validate-torchtune-configs\n", shown))
    run(repo, "git", "commit", "-qam", "by path", "--no-verify", env=env).check_returncode()
    remote = tmp_path_factory.mktemp("remote")
    run(remote, "git", "init", "-q", "--bare", env=env).check_returncode()
    run(repo, "git", "remote", "add", "origin", str(remote), env=env).check_returncode()
    install = ("pre_commit", "install", "--hook-type", "pre-push")
    run(repo, sys.executable, "-m", *install, env=env).check_returncode()

    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16]"))
    assert commit(repo, env).returncode == 1  # the drift hook regenerates first
    committed = commit(repo, env)
    assert committed.returncode == 0, committed.stdout
    assert "torchtune configs are valid" not in committed.stdout  # not on every commit
    pushed = run(repo, "git", "push", "-q", "origin", "HEAD:main", env=env)
    assert pushed.returncode == 0, pushed.stdout
    assert "torchtune configs are valid" in pushed.stdout and "Passed" in pushed.stdout

    experiment.write_text(experiment.read_text() + "  optimizer._component_: torch.optim.AdamWW\n")
    assert commit(repo, env).returncode == 1
    assert commit(repo, env).returncode == 0
    refused = run(repo, "git", "push", "-q", "origin", "HEAD:main", env=env)
    assert refused.returncode != 0, refused.stdout
    assert "torchtune configs are valid" in refused.stdout and "Failed" in refused.stdout
    assert "did you mean torch.optim.AdamW?" in refused.stdout


@pytest.mark.needs_pre_commit
def test_a_copied_experiment_writing_where_the_original_does_fails_the_commit(
    repo: Path, env: dict[str, str]
) -> None:
    # The copy changes its name and one value, but not its output_dir: only the copy is
    # committed, and the hook compares it with every other experiment of the repository.
    shutil.copytree(repo / "lora_rank_study", repo / "rank_copy")
    copied = repo / "rank_copy" / "experiment.yaml"
    copied.write_text(
        copied.read_text()
        .replace("name: lora_rank_study", "name: rank_copy")
        .replace("[8, 16, 32, 64]", "[8, 16, 32, 128]")
    )
    before = snapshot(repo / "rank_copy")
    result = commit(repo, env, "rank_copy/experiment.yaml")
    assert result.returncode == 1, result.stdout
    assert (
        "error: rank_copy/experiment.yaml:24:3: runs write where the runs of "
        "lora_rank_study/experiment.yaml write: output_dir /scratch/results/lora_study/run_000"
    ) in result.stdout
    assert snapshot(repo / "rank_copy") == before  # nothing written on bad input


@pytest.mark.needs_pre_commit
def test_run_on_all_files_reports_a_folder_whose_experiment_was_removed(
    repo: Path, env: dict[str, str]
) -> None:
    run(repo, "git", "rm", "-q", "lora_rank_study/experiment.yaml", env=env).check_returncode()
    run(repo, "git", "commit", "-qm", "rm", "--no-verify", env=env).check_returncode()
    before = snapshot(repo / "lora_rank_study")
    result = run(repo, sys.executable, "-m", "pre_commit", "run", "--all-files", env=env)
    assert result.returncode == 1, result.stdout
    assert (
        "stale: lora_rank_study/configs/ (its experiment.yaml is gone): delete the folder or "
        "restore the experiment (--fix leaves it: it holds the runs' history)\n"
    ) in result.stdout
    assert snapshot(repo / "lora_rank_study") == before


@pytest.mark.needs_pre_commit
def test_the_check_only_hook_fails_on_drift_and_writes_nothing(
    repo: Path, env: dict[str, str]
) -> None:
    config = repo / ".pre-commit-config.yaml"
    config.write_text(config.read_text().replace(f"id: {HOOK}", f"id: {HOOK}-no-fix"))
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16]"))
    before = snapshot(repo / "lora_rank_study" / "configs")
    result = commit(repo, env)
    assert result.returncode == 1, result.stdout
    assert "torchtune configs match their experiments (check only)" in result.stdout
    assert "stale: lora_rank_study/configs/run_002.yaml" in result.stdout
    assert snapshot(repo / "lora_rank_study" / "configs") == before
    # The hint names the hook's own tool, in pre-commit's environment: it runs from the user's
    # shell, where no torchtune-config-writer need be on the PATH.
    [hint] = [line for line in result.stdout.splitlines() if line.endswith("to regenerate")]
    command = shlex.split(hint.removeprefix("run `").removesuffix("` to regenerate"))
    assert command[-2:] == ["check", "--fix"]
    assert Path(command[0]).is_relative_to(env["PRE_COMMIT_HOME"]), hint
    without_tool = {**env, "PATH": path_without("torchtune-config-writer", env["PATH"])}
    assert run(repo, *command, env=without_tool).returncode == 1  # drift, fixed
    run(repo, "git", "add", "-A", env=env).check_returncode()
    assert commit(repo, env).returncode == 0


@pytest.mark.needs_pre_commit
def test_the_fixing_hook_beside_the_check_only_hook_fixes_by_hand_only(
    repo: Path, env: dict[str, str]
) -> None:
    config = repo / ".pre-commit-config.yaml"
    shown = shown_block("docs/pre-commit.md", "stages: [manual]")
    config.write_text(config.read_text().replace(f"  hooks:\n  - id: {HOOK}\n", shown))
    run(repo, "git", "commit", "-qam", "hooks", "--no-verify", env=env).check_returncode()
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16]"))
    before = snapshot(repo / "lora_rank_study" / "configs")
    refused = commit(repo, env)
    assert refused.returncode == 1, refused.stdout
    assert "(check only)" in refused.stdout and "stale: lora_rank_study/configs/run_002.yaml" in (
        refused.stdout
    )
    assert f"{HOOK_NAME}...." not in refused.stdout  # the manual hook did not run
    assert snapshot(repo / "lora_rank_study" / "configs") == before
    by_hand = ("pre_commit", "run", HOOK, "--hook-stage", "manual")
    fixed = run(repo, sys.executable, "-m", *by_hand, env=env)
    assert fixed.returncode == 1, fixed.stdout
    assert "fixed: wrote lora_rank_study/configs/ (1 written, 2 removed)" in fixed.stdout
    run(repo, "git", "add", "-A", env=env).check_returncode()
    assert commit(repo, env).returncode == 0


def path_without(program: str, path: str) -> str:
    """``path`` without the folders that hold ``program``: a shell where it is not installed."""
    folders = path.split(os.pathsep)
    return os.pathsep.join(folder for folder in folders if not (Path(folder) / program).exists())


@pytest.mark.needs_pre_commit
def test_the_projects_own_hooks_run_ruff_mypy_and_the_drift_check_of_the_examples(
    env: dict[str, str],
) -> None:
    result = run(REPO, sys.executable, "-m", "pre_commit", "validate-config", env=env)
    assert result.returncode == 0, result.stdout
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    entries = {hook["id"]: hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    assert entries == {
        "ruff": "ruff check --force-exclude",
        "ruff-format": "ruff format --check --force-exclude",
        "mypy": "mypy --strict",
        "check-torchtune-configs": "torchtune-config-writer check --fix",
    }


@pytest.mark.needs_pre_commit
def test_a_study_over_the_default_limit_commits_with_its_own_limit_in_the_file(
    repo: Path, env: dict[str, str]
) -> None:
    experiment = repo / "lr_batch_sweep" / "experiment.yaml"
    seeds = ", ".join(map(str, range(120)))
    text = experiment.read_text().replace("  batch_size: [2, 4, 8]\n", f"  seed: [{seeds}]\n")
    text = text.replace("controls:\n  epochs: 5\n  seed: 42\n", "controls:\n  epochs: 5\n")
    # 3 × 120 = 360 runs: over a limit of 300 in the file (the default, 1,000, would pass) ...
    experiment.write_text(
        text.replace("  framework: torchtune\n", "  framework: torchtune\n  max_runs: 300\n")
    )
    refused = commit(repo, env)
    assert refused.returncode == 1 and "more than the limit of 300" in refused.stdout
    # ... and within the file's own limit of 400: the hook regenerates, the next commit passes.
    experiment.write_text(
        text.replace("  framework: torchtune\n", "  framework: torchtune\n  max_runs: 400\n")
    )
    assert commit(repo, env).returncode == 1  # the hook wrote the 360 runs
    second = commit(repo, env)
    assert second.returncode == 0, second.stdout


@pytest.mark.needs_pre_commit
def test_a_commit_that_only_deletes_an_experiment_fails_naming_its_stale_folder(
    repo: Path, env: dict[str, str]
) -> None:
    run(repo, "git", "rm", "-q", "lora_rank_study/experiment.yaml", env=env).check_returncode()
    before = snapshot(repo / "lora_rank_study")
    result = run(repo, "git", "commit", "-m", "retire the study", env=env)
    assert result.returncode == 1, result.stdout
    assert f"{HOOK_NAME}" in result.stdout and "Failed" in result.stdout
    assert (
        "stale: lora_rank_study/configs/ (its experiment.yaml is gone): delete the folder or "
        "restore the experiment (--fix leaves it: it holds the runs' history)\n"
    ) in result.stdout
    assert snapshot(repo / "lora_rank_study") == before
    # Deleting the folder too is a commit the hook lets through.
    run(repo, "git", "rm", "-q", "-r", "lora_rank_study/configs", env=env).check_returncode()
    result = run(repo, "git", "commit", "-m", "retire the study", env=env)
    assert result.returncode == 0, result.stdout


@pytest.mark.needs_pre_commit
def test_an_unrelated_commit_passes_without_importing_the_generator_or_torch(
    repo: Path, env: dict[str, str]
) -> None:
    # verbose: pre-commit shows the output of a hook that passes, here Python's import times.
    config = repo / ".pre-commit-config.yaml"
    config.write_text(config.read_text() + "    verbose: true\n")
    run(repo, "git", "commit", "-qam", "verbose", "--no-verify", env=env).check_returncode()
    (repo / "README.md").write_text("Our study.\n")
    result = commit(repo, env, "README.md")
    assert result.returncode == 0, result.stdout
    assert f"{HOOK_NAME}" in result.stdout and "Passed" in result.stdout
    assert "✓ 0 experiments up to date" in result.stdout
    profiled = {**env, "PYTHONPROFILEIMPORTTIME": "1"}
    (repo / "README.md").write_text("Our study, again.\n")
    result = commit(repo, profiled, "README.md")
    assert result.returncode == 0, result.stdout
    imported = [
        line.rpartition("|")[2].strip()
        for line in result.stdout.splitlines()
        if line.startswith("import time:")
    ]
    # The hook ran `check` (importlib's own import of the command's module is not timed).
    assert "torchtune_config_writer.workspace.deletions" in imported
    heavy = [
        name
        for name in imported
        if name.partition(".")[0] in ("torch", "torchtune", "git")
        or name.startswith(("torchtune_config_writer.generation", "torchtune_config_writer.output"))
    ]
    assert heavy == []


@pytest.mark.needs_pre_commit
def test_a_commit_that_deletes_a_base_config_fails_naming_the_experiment_using_it(
    repo: Path, env: dict[str, str]
) -> None:
    path = "lr_batch_sweep/my_gpu_optimized.yaml"
    run(repo, "git", "rm", "-q", path, env=env).check_returncode()
    result = run(repo, "git", "commit", "-m", "drop the base", env=env)
    assert result.returncode == 1, result.stdout
    assert (
        "error: lr_batch_sweep/experiment.yaml:9:3: base_config_file my_gpu_optimized.yaml does "
        "not exist"
    ) in result.stdout


@pytest.mark.needs_pre_commit
def test_a_commit_that_deletes_a_generated_config_fails_and_writes_it_back(
    repo: Path, env: dict[str, str]
) -> None:
    run_file = repo / "lora_rank_study" / "configs" / "run_001.yaml"
    original = run_file.read_bytes()
    run(repo, "git", "rm", "-q", "lora_rank_study/configs/run_001.yaml", env=env).check_returncode()
    result = run(repo, "git", "commit", "-m", "drop a run", env=env)
    assert result.returncode == 1, result.stdout
    assert "missing: lora_rank_study/configs/run_001.yaml" in result.stdout
    assert "fixed: wrote lora_rank_study/configs/ (1 written, 0 removed)" in result.stdout
    assert run_file.read_bytes() == original
    run(repo, "git", "add", "-A", env=env).check_returncode()
    assert status(repo, env) == ""  # back to what was committed


@pytest.mark.needs_pre_commit
def test_a_run_over_commits_that_delete_an_experiment_reports_its_stale_folder(
    repo: Path, env: dict[str, str]
) -> None:
    # As CI or pre-push runs the hook: over a range of commits, not what is staged.
    run(repo, "git", "rm", "-q", "lora_rank_study/experiment.yaml", env=env).check_returncode()
    run(repo, "git", "commit", "-qm", "rm", "--no-verify", env=env).check_returncode()
    result = run(
        repo,
        sys.executable,
        "-m",
        "pre_commit",
        "run",
        "--from-ref",
        "HEAD~1",
        "--to-ref",
        "HEAD",
        env=env,
    )
    assert result.returncode == 1, result.stdout
    assert "stale: lora_rank_study/configs/ (its experiment.yaml is gone)" in result.stdout
