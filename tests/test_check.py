"""`check`: regenerate in memory, report every difference, and fix only when asked."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer import generate, recipes

from .conftest import EXAMPLES, CliResult, copy_experiment, experiment_text, snapshot


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding two example experiments, generated; the cwd."""
    for name in ("lora_rank_study", "lr_batch_sweep"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    git(tmp_path, "init", "-q")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_right_after_generate_there_is_no_drift(repo: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("check")
    assert (result.code, result.out, result.err) == (0, "✓ 2 experiments up to date\n", "")


def test_a_hand_edit_is_shown_as_a_diff_and_not_fixed_without_fix(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    run = repo / "lora_rank_study" / "configs" / "run_001.yaml"
    run.write_text(run.read_text().replace("lora_rank: 16", "lora_rank: 17"))
    before = snapshot(repo)
    result = cli("check", run)
    assert result.code == 1
    assert result.out.splitlines()[:3] == [
        "--- lora_rank_study/configs/run_001.yaml (on disk)",
        "+++ lora_rank_study/configs/run_001.yaml (generated)",
        "@@ -6,7 +6,7 @@",
    ]
    assert "-  lora_rank: 17\n+  lora_rank: 16\n" in result.out
    assert result.out.endswith(
        "drift: lora_rank_study/configs/ differs from lora_rank_study/experiment.yaml in 1 file\n"
        "run `torchtune-config-writer check --fix` to regenerate\n"
    )
    assert snapshot(repo) == before


def test_missing_stale_and_lock_drift_are_all_reported(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    configs = repo / "lora_rank_study" / "configs"
    (configs / "run_003.yaml").unlink()
    (configs / "run_007.yaml").write_text("# left from a larger sweep\n")
    (configs / "base.lock.yaml").unlink()
    result = cli("check", "lora_rank_study")
    assert result.code == 1
    assert "missing: lora_rank_study/configs/run_003.yaml\n" in result.out
    assert (
        "stale: lora_rank_study/configs/run_007.yaml (the experiment no longer produces it)\n"
        in result.out
    )
    assert "missing: lora_rank_study/configs/base.lock.yaml\n" in result.out
    assert "in 3 files" in result.out


def test_another_recipe_changes_the_recorded_base(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(
        experiment.read_text().replace("1B_lora_single_device", "3B_lora_single_device")
    )
    result = cli("check", experiment)
    assert result.code == 1
    assert (
        "--- lora_rank_study/configs/base.lock.yaml (on disk)\n"
        "+++ lora_rank_study/configs/base.lock.yaml (generated)\n"
    ) in result.out
    assert (
        "-# recipe: llama3_2/1B_lora_single_device\n+# recipe: llama3_2/3B_lora_single_device\n"
        in result.out
    )


def test_fix_writes_the_folder_and_still_fails_naming_what_to_add(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[8, 16, 32, 64]", "[8, 16, 32, 64, 128]"))
    notes = repo / "lora_rank_study" / "configs" / "NOTES.md"
    notes.write_text("ours\n")
    result = cli("check", "--fix", experiment)
    assert result.code == 1
    assert "missing: lora_rank_study/configs/run_004.yaml" in result.out
    assert (
        "fixed: wrote lora_rank_study/configs/ (2 written, 0 removed): review it and "
        "`git add lora_rank_study/configs`" in result.out
    )
    assert cli("check").code == 0
    assert notes.read_text() == "ours\n"


def test_check_compares_with_the_same_bytes_generate_writes(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]", controls="epochs: 2"))
    generate(path)
    assert cli("check", path).code == 0


def test_a_shared_base_config_checks_every_experiment_that_uses_it(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    copy_experiment(repo / "lr_batch_sweep", repo / "lr_batch_sweep_2")
    git(repo, "add", "-A")
    base = repo / "lr_batch_sweep" / "my_gpu_optimized.yaml"
    (repo / "lr_batch_sweep_2" / "experiment.yaml").write_text(
        (repo / "lr_batch_sweep_2" / "experiment.yaml")
        .read_text()
        .replace("my_gpu_optimized.yaml", "../lr_batch_sweep/my_gpu_optimized.yaml")
    )
    base.write_text(base.read_text().replace("weight_decay: 0.01", "weight_decay: 0.02"))
    result = cli("check", "--fix", base)
    assert result.code == 1
    # The nine runs change; the second's run_mapping.yaml too, as it names the base as written.
    assert "fixed: wrote lr_batch_sweep/configs/ (9 written, 0 removed)" in result.out
    assert "fixed: wrote lr_batch_sweep_2/configs/ (10 written, 0 removed)" in result.out
    assert "lora_rank_study" not in result.out
    assert "weight_decay: 0.02" in (repo / "lr_batch_sweep_2/configs/run_000.yaml").read_text()


def test_files_that_affect_no_experiment_check_nothing(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    workflow = repo / ".github" / "workflows" / "ci.yml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("on: push\n")
    result = cli("check", "--fix", workflow)
    assert (result.code, result.out) == (0, "✓ 0 experiments up to date\n")


def test_no_recorded_base_and_no_torchtune_is_a_clear_error(
    repo: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recipes, "installed_torchtune", lambda: None)
    assert cli("check").code == 0  # the recorded bases are enough
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(
        experiment.read_text().replace("1B_lora_single_device", "3B_lora_single_device")
    )
    before = snapshot(repo)
    result = cli("check", "--fix")
    assert result.code == 2
    assert result.err.startswith("error: lora_rank_study/experiment.yaml:9:3: base_config ")
    assert "needs torchtune, which is not installed here" in result.err
    assert "commit the lock" in result.err
    assert snapshot(repo) == before


def test_bad_input_anywhere_means_fix_writes_nothing(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    run = repo / "lora_rank_study" / "configs" / "run_000.yaml"
    run.write_text("# hand edit\n")
    broken = repo / "lr_batch_sweep" / "experiment.yaml"
    broken.write_text(broken.read_text().replace("variables:", "variable:"))
    before = snapshot(repo)
    result = cli("check", "--fix")
    assert result.code == 2
    assert result.err.startswith(
        "error: lr_batch_sweep/experiment.yaml:11:1: unknown section 'variable'"
    )
    assert "after fixing the errors above, run `torchtune-config-writer check --fix`" in result.out
    assert snapshot(repo) == before


def test_without_paths_outside_a_repository_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    monkeypatch.chdir(tmp_path)
    result = cli("check")
    assert (result.code, result.err) == (
        2,
        "error: .: not inside a git repository: name the experiments to check\n",
    )


def test_experiments_writing_timestamped_folders_are_not_checked(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lr_batch_sweep" / "experiment.yaml"
    experiment.write_text(experiment.read_text() + "output:\n  base_dir: outputs\n")
    result = cli("check")
    assert (result.code, result.out) == (0, "✓ 1 experiment up to date\n")


# What the second review found


def test_a_staged_folder_left_by_an_interrupt_does_not_hide_drift(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    configs = repo / "lora_rank_study" / "configs"
    shutil.copytree(configs, configs.with_name(".configs.tcw-ready"))
    (configs.with_name(".configs.tcw-ready") / ".tcw-new").touch()
    run = configs / "run_000.yaml"
    run.write_text(run.read_text().replace("lora_rank: 8", "lora_rank: 9"))
    assert cli("check").code == 1
    assert cli("check", "--fix").code == 1
    assert cli("check").code == 0 and not configs.with_name(".configs.tcw-ready").exists()


def test_a_generated_folder_stands_for_its_experiment(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    run = repo / "lora_rank_study" / "configs" / "run_000.yaml"
    run.write_text(run.read_text().replace("lora_rank: 8", "lora_rank: 9"))
    result = cli("check", repo / "lora_rank_study" / "configs")
    assert result.code == 1 and "drift: lora_rank_study/configs/" in result.out


def test_copies_in_timestamped_output_folders_are_not_experiments(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lr_batch_sweep" / "experiment.yaml"
    experiment.write_text(experiment.read_text() + "output:\n  base_dir: outputs\n")
    assert cli("generate", experiment).code == 0
    # The copy under lr_batch_sweep/outputs/ is not an experiment; lr_batch_sweep itself writes
    # timestamped folders, so only lora_rank_study has a folder to check.
    for args, count in (
        (("check",), 1),
        (("check", "."), 1),
        (("check", repo / "lr_batch_sweep"), 0),
    ):
        result = cli(*args)
        expected = f"✓ {count} experiment{'s' if count != 1 else ''} up to date\n"
        assert (result.code, result.out) == (0, expected), args


def test_both_experiment_file_names_in_one_folder_are_refused(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    folder = repo / "lora_rank_study"
    shutil.copy(folder / "experiment.yaml", folder / "experiment.yml")
    result = cli("check", folder / "experiment.yml")
    assert result.code == 2 and "has both experiment.yaml and experiment.yml" in result.err


def test_a_base_config_is_traced_to_its_users_from_any_working_folder(
    repo: Path, cli: Callable[..., CliResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = repo / "lr_batch_sweep" / "my_gpu_optimized.yaml"
    base.write_text(base.read_text().replace("weight_decay: 0.01", "weight_decay: 0.02"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # outside any repository
    result = cli("check", base)
    assert result.code == 1 and "lr_batch_sweep/configs/" in result.out
