"""`check` against what a repository's history does to generated folders: experiments removed,
checkouts that change line endings, a check-only hook."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import EXAMPLES, CliResult, snapshot


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=T", "-c", "user.email=t@e", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding two example experiments, generated and committed; the cwd."""
    for name in ("lora_rank_study", "lr_batch_sweep"):
        shutil.copytree(EXAMPLES / name, tmp_path / name)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "start")
    monkeypatch.chdir(tmp_path)
    return tmp_path


ORPHAN = (
    "stale: lora_rank_study/configs/ (its experiment.yaml is gone): delete the folder or "
    "restore the experiment\n"
)


def test_a_generated_folder_whose_experiment_was_removed_is_drift(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    git(repo, "rm", "-q", "lora_rank_study/experiment.yaml")
    before = snapshot(repo)
    for args in (
        ("check",),
        ("check", "lora_rank_study/configs/run_000.yaml"),
        ("check", "lora_rank_study/configs"),
        ("check", "."),  # what the GitHub Action runs
    ):
        result = cli(*args)
        assert (result.code, result.err) == (1, ""), args
        assert result.out.splitlines(keepends=True)[-1] == ORPHAN, args
    assert snapshot(repo) == before


def test_fix_keeps_a_folder_whose_experiment_was_removed(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    git(repo, "rm", "-q", "lora_rank_study/experiment.yaml")
    before = snapshot(repo)
    result = cli("check", "--fix")
    assert result.code == 1
    assert result.out == (
        "stale: lora_rank_study/configs/ (its experiment.yaml is gone): delete the folder or "
        "restore the experiment (--fix leaves it: it holds the runs' history)\n"
    )
    assert snapshot(repo) == before


def test_a_folder_named_configs_that_the_tool_did_not_write_is_not_an_orphan(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    own = repo / "tools" / "configs" / "run_000.yaml"
    own.parent.mkdir(parents=True)
    own.write_text("mine: 1\n")
    git(repo, "add", "-A")
    result = cli("check")
    assert (result.code, result.out) == (0, "✓ 2 experiments up to date\n")


def crlf_clone(repo: Path, tmp_path: Path) -> Path:
    clone = tmp_path / "clone"
    subprocess.run(
        ["git", "-c", "core.autocrlf=true", "clone", "-q", str(repo), str(clone)],
        check=True,
        capture_output=True,
    )
    git(clone, "config", "core.autocrlf", "true")
    assert b"\r\n" in (clone / "lora_rank_study/configs/run_000.yaml").read_bytes()
    return clone


def test_a_crlf_checkout_is_reported_as_line_endings_only(
    repo: Path, tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = crlf_clone(repo, tmp_path)
    monkeypatch.chdir(clone)
    before = snapshot(clone)
    result = cli("check")
    hint = 'add "**/configs/** text eol=lf" to .gitattributes'
    assert (result.code, result.err) == (1, "")
    assert result.out == (
        f"drift: lora_rank_study/configs/ differs only in line endings (CRLF): {hint}\n"
        f"drift: lr_batch_sweep/configs/ differs only in line endings (CRLF): {hint}\n"
        "run `torchtune-config-writer check --fix` to regenerate\n"
    )
    assert snapshot(clone) == before
    assert cli("check", "--fix").code == 1
    assert b"\r" not in (clone / "lora_rank_study/configs/run_000.yaml").read_bytes()
    assert b"\r" not in (clone / "lora_rank_study/configs/base.lock.yaml").read_bytes()
    assert cli("check").code == 0


def test_a_crlf_lock_is_still_the_recorded_base(
    repo: Path, tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchtune_config_writer.generation import builtin_configs

    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    clone = crlf_clone(repo, tmp_path)
    monkeypatch.chdir(clone)
    result = cli("check", "lora_rank_study")
    assert (result.code, result.err) == (1, "")
    assert "differs only in line endings (CRLF)" in result.out


def test_a_real_change_in_a_crlf_checkout_is_still_shown_as_a_diff(
    repo: Path, tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = crlf_clone(repo, tmp_path)
    monkeypatch.chdir(clone)
    run = clone / "lora_rank_study/configs/run_001.yaml"
    run.write_bytes(run.read_bytes().replace(b"lora_rank: 16", b"lora_rank: 17"))
    result = cli("check", "lora_rank_study")
    assert result.code == 1
    assert "-  lora_rank: 17\n+  lora_rank: 16\n" in result.out
    assert result.out.endswith(
        "drift: lora_rank_study/configs/ differs from lora_rank_study/experiment.yaml in 1 file, "
        "and only in line endings (CRLF) in 5 more files: "
        'add "**/configs/** text eol=lf" to .gitattributes\n'
        "run `torchtune-config-writer check --fix` to regenerate\n"
    )


def test_a_hand_edited_lock_is_refused_with_how_to_restore_it(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    lock = repo / "lora_rank_study" / "configs" / "base.lock.yaml"
    assert b"\n# sha256: " in lock.read_bytes()
    lock.write_bytes(lock.read_bytes().replace(b"lr: 3e-4", b"lr: 3e-3"))
    before = snapshot(repo)
    result = cli("check", "--fix")
    assert result.code == 2
    assert result.err == (
        "error: lora_rank_study/configs/base.lock.yaml:4: the recorded base config was edited: "
        "its bytes do not match the sha256 of its header; restore it "
        "(`git restore lora_rank_study/configs/base.lock.yaml`) or record it again with "
        "`torchtune-config-writer generate --refresh-base` where torchtune is installed\n"
    )
    assert snapshot(repo) == before


def test_a_lock_written_before_digests_still_generates_the_same_runs(
    repo: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchtune_config_writer.generation import builtin_configs

    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    lock = repo / "lora_rank_study" / "configs" / "base.lock.yaml"
    lines = lock.read_bytes().split(b"\n")
    lock.write_bytes(b"\n".join(line for line in lines if not line.startswith(b"# sha256: ")))
    result = cli("check", "lora_rank_study")
    # Only the header of the lock changes: every run file is byte-identical.
    assert result.code == 1
    assert "+# sha256: " in result.out
    assert (
        "drift: lora_rank_study/configs/ differs from lora_rank_study/experiment.yaml in 1 file\n"
        in result.out
    )


def test_a_change_repeated_across_runs_is_shown_once_with_the_runs_it_applies_to(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lr_batch_sweep" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("epochs: 5", "epochs: 6"))
    result = cli("check", experiment)
    assert result.code == 1
    assert result.out == (
        "--- lr_batch_sweep/configs/run_000.yaml (on disk)\n"
        "+++ lr_batch_sweep/configs/run_000.yaml (generated)\n"
        "@@ -38,7 +38,7 @@\n"
        "   num_warmup_steps: 100\n"
        " loss:\n"
        "   _component_: torchtune.modules.loss.CEWithChunkedOutputLoss\n"
        "-epochs: 5\n"
        "+epochs: 6\n"
        " max_steps_per_epoch: null\n"
        " gradient_accumulation_steps: 4\n"
        " clip_grad_norm: null\n"
        "the same change in 8 more files: run_001.yaml … run_008.yaml\n"
        "drift: lr_batch_sweep/configs/ differs from lr_batch_sweep/experiment.yaml in 9 files\n"
        "run `torchtune-config-writer check --fix` to regenerate\n"
    )


def test_a_change_beside_each_run_own_value_is_still_shown_once(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    # lora_alpha sits next to lora_rank, the variable: the lines around the change differ in
    # every run, the change itself does not.
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("lora_alpha: 16", "lora_alpha: 32"))
    result = cli("check", experiment)
    assert result.code == 1
    assert result.out.count("-  lora_alpha: 16\n+  lora_alpha: 32\n") == 1
    assert "   lora_rank: 8\n" in result.out  # the first run's diff, with its own lines
    assert "the same change in 3 more files: run_001.yaml, run_002.yaml, run_003.yaml\n" in (
        result.out
    )


def test_runs_with_different_changes_each_get_their_diff(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    configs = repo / "lr_batch_sweep" / "configs"
    for name, old, new in (
        ("run_001.yaml", "seed: 42", "seed: 1"),
        ("run_004.yaml", "seed: 42", "seed: 2"),
    ):
        (configs / name).write_text((configs / name).read_text().replace(old, new))
    result = cli("check", "lr_batch_sweep")
    assert result.code == 1
    assert "-seed: 1\n+seed: 42\n" in result.out and "-seed: 2\n+seed: 42\n" in result.out
    assert "the same change" not in result.out


def test_a_base_config_outside_a_repository_says_its_users_cannot_be_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_base.yaml").write_text("epochs: 1\n")
    result = cli("check", "a_base.yaml")
    assert (result.code, result.out, result.err) == (
        0,
        "✓ 0 experiments up to date\n",
        "note: a_base.yaml: not inside a git repository, so the experiments that use it as "
        "their base config cannot be found: name them (check EXPERIMENT...)\n",
    )


def test_files_of_a_timestamped_output_copy_named_one_by_one_are_not_experiments(
    repo: Path, cli: Callable[..., CliResult]
) -> None:
    experiment = repo / "lr_batch_sweep" / "experiment.yaml"
    experiment.write_text(experiment.read_text() + "output:\n  base_dir: outputs\n")
    assert cli("generate", experiment).code == 0
    (copy,) = (repo / "lr_batch_sweep" / "outputs").iterdir()
    before = snapshot(repo)
    for path in (copy / "experiment.yaml", copy / "configs" / "run_000.yaml", copy / "configs"):
        result = cli("check", "--fix", path)
        assert (result.code, result.out, result.err) == (0, "✓ 0 experiments up to date\n", ""), (
            path
        )
    assert snapshot(repo) == before


def test_experiments_in_a_submodule_are_said_to_be_skipped(
    repo: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    inner = tmp_path / "inner-source"
    shutil.copytree(EXAMPLES / "cap_viz_test", inner / "cap_viz_test")
    git(inner, "init", "-q")
    git(inner, "add", "-A")
    git(inner, "commit", "-qm", "inner")
    git(repo, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(inner), "vendor")
    result = cli("check")
    assert (result.code, result.out) == (0, "✓ 2 experiments up to date\n")
    assert result.err == (
        "note: vendor/ is a git submodule: its 1 experiment was not checked; check it from "
        "inside (cd vendor && torchtune-config-writer check)\n"
    )


def test_a_lock_of_another_torchtune_version_is_noted_once_and_still_wins(
    repo: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchtune_config_writer.generation import base

    copy = repo / "lora_rank_study_2"
    shutil.copytree(repo / "lora_rank_study", copy)
    text = (copy / "experiment.yaml").read_text()
    text = text.replace("name: lora_rank_study", "name: lora_rank_study_2")
    (copy / "experiment.yaml").write_text(text.replace("/lora_study", "/lora_study_2"))
    assert cli("check", "--fix").code == 1
    assert cli("check").err == ""  # the installed torchtune is the recorded one
    monkeypatch.setattr(base, "installed_torchtune_version", lambda: "0.7.0")
    result = cli("check")
    assert (result.code, result.out) == (0, "✓ 3 experiments up to date\n")
    assert result.err == (
        "note: the recorded base configs come from torchtune 0.6.1, and torchtune 0.7.0 is "
        "installed here: the records are used (`generate --refresh-base` re-reads them)\n"
    )


def test_a_run_file_linking_out_of_the_repository_is_one_error_and_never_read(
    repo: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    secret = tmp_path.parent / f"{tmp_path.name}-secret.txt"
    secret.write_text("the secret\n")
    run = repo / "lora_rank_study" / "configs" / "run_000.yaml"
    run.unlink()
    run.symlink_to(secret)
    result = cli("check")
    assert result.code == 2
    assert "the secret" not in result.out + result.err
    assert result.err == (
        "error: lora_rank_study/configs/run_000.yaml: run_000.yaml was not written by "
        "torchtune-config-writer (a symlink), which writes a file of that name here: rename "
        "yours or move it out of the folder, and generate again (nothing was changed)\n"
    )


def test_configs_that_is_a_file_is_one_error(repo: Path, cli: Callable[..., CliResult]) -> None:
    configs = repo / "lora_rank_study" / "configs"
    shutil.rmtree(configs)
    configs.write_text("not a folder\n")
    result = cli("check", "lora_rank_study")
    assert (result.code, result.out, result.err) == (
        2,
        "",
        "error: lora_rank_study/configs: is a file where the generated folder goes: move it away\n",
    )
