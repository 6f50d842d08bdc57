"""Runs never share an output folder: split within an experiment, refused across a repository.

torchtune writes checkpoints to ``checkpointer.output_dir/epoch_N`` and logs under ``output_dir``
and ``metric_logger.log_dir``; two runs resolving one of them to the same folder overwrite each
other's work.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import ConfigWriterError, generate
from torchtune_config_writer.generation.inputs import read_inputs
from torchtune_config_writer.generation.plan import plan_experiment

from .conftest import CliResult, experiment_text, snapshot

BASE = """\
base_dir: /data
output_dir: /tmp/out
model:
  lora_rank: 8
checkpointer:
  checkpoint_dir: ${base_dir}/ckpt
  output_dir: ${output_dir}
metric_logger:
  log_dir: ${output_dir}/logs
profiler:
  enabled: false
  output_dir: ${output_dir}/profiling
batch_size: 4
epochs: 1
"""


def custom(variables: str = "", controls: str = "", name: str = "study") -> str:
    text = experiment_text(variables, controls, base="base_config_file: base.yaml")
    return text.replace("name: study", f"name: {name}")


def write(
    write_experiment: Callable[..., Path], text: str, folder: str = "exp", base: str = BASE
) -> Path:
    path = write_experiment(text, folder=folder)
    (path.parent / "base.yaml").write_text(base, encoding="utf-8")
    return path


def configs(path: Path) -> list[dict[str, object]]:
    return [
        yaml.safe_load(config.read_text())
        for config in sorted((path.parent / "configs").glob("run_[0-9]*.yaml"))
    ]


def git_repo(folder: Path) -> None:
    subprocess.run(["git", "init", "-q", str(folder)], check=True)


def two_in_a_repository(
    tmp_path: Path, write_experiment: Callable[..., Path], a: str, b: str
) -> tuple[Path, Path]:
    """Experiments ``a/`` and ``b/`` (experiment texts) in one git repository."""
    git_repo(tmp_path)
    return write(write_experiment, a, folder="a"), write(write_experiment, b, folder="b")


def test_a_literal_checkpointer_output_dir_shared_by_all_runs_is_split_per_run(
    write_experiment: Callable[..., Path],
) -> None:
    path = write(
        write_experiment,
        custom(
            variables="lora_rank: [8, 16]",
            controls="output_dir: /scratch/study\ncheckpointer:\n  output_dir: /scratch/ckpts",
        ),
    )
    generate(path)
    runs = configs(path)
    assert [run["checkpointer"]["output_dir"] for run in runs] == [  # type: ignore[index]
        "/scratch/ckpts/run_000",
        "/scratch/ckpts/run_001",
    ]
    assert [run["output_dir"] for run in runs] == [
        "/scratch/study/run_000",
        "/scratch/study/run_001",
    ]
    # Keys that follow output_dir by interpolation already differ: they are left as written.
    logs = {run["metric_logger"]["log_dir"] for run in runs}  # type: ignore[index]
    assert logs == {"${output_dir}/logs"}


def test_an_output_key_that_differs_after_interpolation_is_not_split(
    write_experiment: Callable[..., Path],
) -> None:
    path = write(
        write_experiment,
        custom(
            variables="lora_rank: [8, 16]",
            controls="output_dir: /scratch/r{lora_rank}\n"
            "checkpointer:\n  output_dir: ${output_dir}/ckpt",
        ),
    )
    plan = plan_experiment(read_inputs(path))
    assert plan.outputs.split == ()
    assert [located["checkpointer.output_dir"] for _, located in plan.outputs.locations()] == [
        "/scratch/r8/ckpt",
        "/scratch/r16/ckpt",
    ]


def test_a_profiler_and_a_logger_folder_shared_by_all_runs_are_split(
    write_experiment: Callable[..., Path],
) -> None:
    path = write(
        write_experiment,
        custom(
            variables="lora_rank: [8, 16]",
            controls="output_dir: /s/{run_id}\nprofiler:\n  output_dir: /s/prof\n"
            "metric_logger:\n  log_dir: /s/logs",
        ),
    )
    plan = plan_experiment(read_inputs(path))
    assert plan.outputs.split == (("metric_logger", "log_dir"), ("profiler", "output_dir"))


def test_two_runs_writing_one_folder_under_different_keys_is_an_error_at_its_line(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    text = custom(
        variables="""
        outputs:
          output_dir: [/s/a, /s/b]
          checkpointer.output_dir: [/s/b, /s/a]
        """
    )
    path = write(write_experiment, text)
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert "runs run_000 and run_001 both write to /s/b" in result.err
    assert "experiment.yaml:8:" in result.err  # in the linked group's values
    assert snapshot(path.parent) == before


def test_a_copied_experiment_writing_the_same_folders_is_refused_by_check_and_generate(
    tmp_path: Path,
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    git_repo(tmp_path)
    sweep = custom(variables="lora_rank: [8, 16]", controls="output_dir: /scratch/rank_sweep")
    first = write(write_experiment, sweep, folder="rank_sweep")
    assert cli("generate", first).code == 0
    copied = write(
        write_experiment,
        sweep.replace("name: study", "name: rank_sweep_2").replace("[8, 16]", "[8, 32]"),
        folder="rank_sweep_2",
    )
    before = snapshot(tmp_path)
    for command in (("generate", copied), ("check",), ("check", "--fix", copied)):
        result = cli(*command)
        assert result.code == 2, result
        assert result.err == (
            "error: rank_sweep_2/experiment.yaml:9:3: runs write where the runs of "
            "rank_sweep/experiment.yaml write: output_dir /scratch/rank_sweep/run_000 (run_000 of "
            "both; 8 folders in all): one would overwrite the other's checkpoints; give each "
            "experiment its own output_dir\n"
        )
    assert snapshot(tmp_path) == before


def test_the_hook_compares_a_touched_experiment_with_all_others_of_the_repository(
    tmp_path: Path,
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
) -> None:
    first, second = two_in_a_repository(
        tmp_path,
        write_experiment,
        custom(controls="output_dir: /scratch/a"),
        custom(controls="output_dir: /scratch/b", name="b"),
    )
    assert cli("generate", first, second).code == 0
    second.write_text(second.read_text().replace("/scratch/b", "/scratch/a"))
    # What the hook runs: the changed file only.
    result = cli("check", "--fix", second)
    assert result.code == 2
    assert "b/experiment.yaml:7:3: runs write where the runs of" in result.err
    assert "a/experiment.yaml write: output_dir /scratch/a" in result.err


def test_two_experiments_of_one_name_are_refused(
    tmp_path: Path, write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    first, second = two_in_a_repository(
        tmp_path,
        write_experiment,
        custom(controls="output_dir: /scratch/a"),
        custom(controls="output_dir: /scratch/b"),
    )
    result = cli("generate", first, second)
    assert result.code == 2
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "b/experiment.yaml:2:3: experiment.name study is also the name of" in result.err
    assert not (tmp_path / "a" / "configs").exists()


def test_the_base_configs_default_output_dir_shared_by_two_experiments_says_to_set_one(
    tmp_path: Path, write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    first, second = two_in_a_repository(tmp_path, write_experiment, custom(), custom(name="b"))
    result = cli("generate", first, second)
    assert result.code == 2
    assert "output_dir /tmp/out" in result.err
    assert "give each experiment its own output_dir in controls" in result.err


def test_relative_output_folders_are_compared_from_each_experiments_folder(
    tmp_path: Path, write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    first, second = two_in_a_repository(
        tmp_path,
        write_experiment,
        custom(controls="output_dir: out"),
        custom(controls="output_dir: out", name="b"),
    )
    result = cli("generate", first, second)
    assert result.code == 0, result.err
    # ... and generate says where they land.
    assert (
        "! output_dir, checkpointer.output_dir, metric_logger.log_dir, profiler.output_dir: "
        in (result.out)
    )
    assert "relative, so the runs write under" in result.out


def test_a_float_never_replaces_an_integer_of_the_base(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write(write_experiment, custom(variables="batch_size: [2, 4.0]"))
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.endswith(
        ":7:19: batch_size is an integer in the base (4), but the experiment gives the float "
        "4.0: torchtune needs an integer here; write 4\n"
    )
    path.write_text(custom(controls="epochs: 1.5"))
    result = cli("generate", path)
    assert result.code == 2
    assert "epochs is an integer in the base (1), but the experiment gives the float 1.5" in (
        result.err
    )
    assert "give a whole number" in result.err


def test_a_float_may_replace_an_integer_torchtune_reads_as_a_float(
    write_experiment: Callable[..., Path],
) -> None:
    base = BASE.replace("  lora_rank: 8\n", "  lora_rank: 8\n  lora_alpha: 16\n")
    path = write(write_experiment, custom(controls="lora_alpha: 12.5"), base=base)
    generate(path)
    assert configs(path)[0]["model"] == {"lora_rank": 8, "lora_alpha": 12.5}


def test_the_same_experiment_without_the_mistake_generates_the_same_bytes(
    write_experiment: Callable[..., Path],
) -> None:
    good = custom(variables="batch_size: [2, 4]", controls="output_dir: /scratch/bs")
    path = write(write_experiment, good)
    generate(path)
    first = snapshot(path.parent / "configs")
    path.write_text(good.replace("[2, 4]", "[2, 4.0]"))
    with pytest.raises(ConfigWriterError):
        generate(path)
    path.write_text(good)
    generate(path)
    assert snapshot(path.parent / "configs") == first


def test_a_variable_an_output_folder_refers_to_keeps_the_runs_apart_without_a_split(
    write_experiment: Callable[..., Path],
) -> None:
    base = BASE.replace("output_dir: /tmp/out", "output_dir: /tmp/rank${model.lora_rank}")
    path = write(write_experiment, custom(variables="lora_rank: [8, 16]"), base=base)
    plan = plan_experiment(read_inputs(path))
    assert plan.outputs.split == ()
    assert [located["checkpointer.output_dir"] for _, located in plan.outputs.locations()] == [
        "/tmp/rank8",
        "/tmp/rank16",
    ]
    # A variable no output folder refers to leaves them shared: every run gets its own.
    path.write_text(custom(variables="batch_size: [2, 4]"))
    assert plan_experiment(read_inputs(path)).outputs.split == (("output_dir",),)
