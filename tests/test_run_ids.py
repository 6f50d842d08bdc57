"""Run ids that survive a growing sweep: the committed run_mapping.yaml records them like a lock."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from torchtune_config_writer import check, generate
from torchtune_config_writer.generation.inputs import read_inputs
from torchtune_config_writer.generation.plan import plan_experiment
from torchtune_config_writer.generation.run_ids import (
    RecordedIds,
    RunIds,
    assign_ids,
    combination_key,
    parse_recorded_ids,
    read_recorded_mapping,
)
from torchtune_config_writer.launchers.arrays import array_parts, array_spec
from torchtune_config_writer.workspace.layout import run_files

from .conftest import CliResult, mapping_of, snapshot

BASE = "output_dir: /scratch/base\nseed: 0\nepochs: 1\nbatch_size: 2\noptimizer:\n  lr: 0.001\n"


def study(
    write_experiment: Callable[..., Path], variables: str, extra: str = "", folder: str = "exp"
) -> Path:
    path = write_experiment(
        "experiment:\n  name: grow\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: full_finetune_single_device\n"
        f"variables:\n{variables}{extra}",
        folder=folder,
    )
    (path.parent / "base.yaml").write_text(BASE)
    return path


def ids_and_params(path: Path) -> dict[str, dict[str, Any]]:
    return {run["id"]: run["params"] for run in mapping_of(path)}


def configs(path: Path) -> dict[str, bytes]:
    return {name: data for name, data in snapshot(path.parent / "configs").items()}


def set_variables(path: Path, variables: str) -> None:
    text = path.read_text()
    head = text.split("variables:\n")[0]
    tail = text.split("variables:\n")[1]
    rest = re.sub(r"^(  .*\n)+", "", tail, count=1)
    path.write_text(f"{head}variables:\n{variables}{rest}")


def test_adding_a_value_keeps_every_run_its_id_and_its_bytes(
    write_experiment: Callable[..., Path],
) -> None:
    path = study(write_experiment, "  batch_size: [2, 8]\n  seed: [1, 2]\n")
    generate(path)
    before = configs(path)
    set_variables(path, "  batch_size: [2, 4, 8]\n  seed: [1, 2]\n")
    generate(path)
    after = configs(path)
    # The four runs that exist already are byte for byte the same files.
    for run in ("run_000", "run_001", "run_002", "run_003"):
        assert after[f"{run}.yaml"] == before[f"{run}.yaml"]
    assert ids_and_params(path) == {
        "run_000": {"batch_size": 2, "seed": 1},
        "run_001": {"batch_size": 2, "seed": 2},
        "run_002": {"batch_size": 8, "seed": 1},
        "run_003": {"batch_size": 8, "seed": 2},
        "run_004": {"batch_size": 4, "seed": 1},  # the new ones take the next ids, sweep order
        "run_005": {"batch_size": 4, "seed": 2},
    }
    assert "retired" not in yaml.safe_load((path.parent / "configs/run_mapping.yaml").read_text())
    assert check([path]).exit_code == 0


def test_removed_runs_retire_their_ids_and_no_new_run_gets_them_again(
    write_experiment: Callable[..., Path],
) -> None:
    path = study(write_experiment, "  seed: [1, 2, 3, 4]\n")
    generate(path)
    set_variables(path, "  seed: [1, 3]\n")
    generate(path)
    assert sorted(configs(path)) == [
        "run_000.yaml",
        "run_002.yaml",
        "run_mapping.yaml",
    ]
    mapping = yaml.safe_load((path.parent / "configs/run_mapping.yaml").read_text())
    assert mapping["retired"] == ["run_001", "run_003"]
    # A value added later, or one removed before and written again, takes an id never given.
    set_variables(path, "  seed: [1, 3, 2, 9]\n")
    generate(path)
    assert ids_and_params(path) == {
        "run_000": {"seed": 1},
        "run_002": {"seed": 3},
        "run_004": {"seed": 2},
        "run_005": {"seed": 9},
    }
    mapping = yaml.safe_load((path.parent / "configs/run_mapping.yaml").read_text())
    assert mapping["retired"] == ["run_001", "run_003"]
    assert check([path]).exit_code == 0


def test_the_same_experiment_and_mapping_give_the_same_bytes_anywhere(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = study(write_experiment, "  seed: [1, 2, 3]\n")
    generate(path)
    set_variables(path, "  seed: [3, 7, 1]\n")
    generate(path)
    copy = tmp_path / "elsewhere" / "exp"
    shutil.copytree(path.parent, copy)
    generate(copy)  # regenerated from the copy's committed mapping
    assert configs(copy / "experiment.yaml") == configs(path)


def test_a_fresh_folder_and_renumber_number_in_sweep_order(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = study(write_experiment, "  seed: [1, 2, 3]\n")
    generate(path)
    set_variables(path, "  seed: [0, 2, 3]\n")
    generate(path)
    assert list(ids_and_params(path)) == ["run_001", "run_002", "run_003"]
    result = cli("generate", "--renumber", path)
    assert result.code == 0, result.err
    assert ids_and_params(path) == {
        "run_000": {"seed": 0},
        "run_001": {"seed": 2},
        "run_002": {"seed": 3},
    }
    renumbered = configs(path)
    shutil.rmtree(path.parent / "configs")
    generate(path)
    assert configs(path) == renumbered


def test_generate_says_which_ids_are_new_and_which_retired(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = study(write_experiment, "  seed: [1, 2]\n")
    cli("generate", path)
    set_variables(path, "  seed: [2, 5]\n")
    result = cli("generate", path)
    assert "(kept the recorded ids; new: run_002; retired: run_000)" in result.out


def test_a_run_id_placeholder_in_a_value_still_finds_its_run(
    write_experiment: Callable[..., Path],
) -> None:
    path = study(
        write_experiment,
        '  output_dir: ["/scratch/a/{run_id}", "/scratch/b/{run_id}"]\n',
    )
    generate(path)
    set_variables(path, '  output_dir: ["/scratch/c/{run_id}", "/scratch/a/{run_id}"]\n')
    generate(path)
    assert ids_and_params(path) == {
        "run_000": {"output_dir": "/scratch/a/run_000"},
        "run_002": {"output_dir": "/scratch/c/run_002"},
    }


def test_values_identify_a_run_whatever_the_key_order_but_types_stay_apart() -> None:
    one = combination_key({"+x": {"a": 1, "b": [1, 2]}, "y": 1})
    assert one == combination_key({"y": 1, "x": {"b": [1, 2], "a": 1}})
    assert combination_key({"y": 1}) != combination_key({"y": 1.0})
    assert combination_key({"y": 1}) != combination_key({"y": True})
    assert combination_key({"y": "1"}) != combination_key({"y": 1})


def test_ids_past_the_recorded_width_are_written_whole_and_listed_in_order(
    tmp_path: Path,
) -> None:
    ids = assign_ids(["a", "b"], None)
    assert ids == RunIds((0, 1), 3)
    wide = RunIds((999, 1000), 3)
    assert [wide.name(n) for n in wide.numbers] == ["run_999", "run_1000"]
    for name in ("run_1000.yaml", "run_999.yaml", "run_010.yaml"):
        (tmp_path / name).write_text("")
    listed = [p.name for p in run_files(tmp_path)]
    assert listed == ["run_010.yaml", "run_999.yaml", "run_1000.yaml"]


def test_array_parts_keep_task_ids_below_the_array_size_and_skip_retired_ids() -> None:
    assert array_parts([0, 1, 2, 3], 4) == [(0, [0, 1, 2, 3])]
    assert array_parts([0, 2, 3, 5, 6, 7], 4) == [(0, [0, 2, 3]), (5, [5, 6, 7])]
    assert array_parts([6, 7], 4) == [(6, [6, 7])]
    assert array_spec(0, [0, 1, 2, 3]) == "0-3"
    assert array_spec(0, [0]) == "0-0"
    assert array_spec(0, [0, 2, 3, 5]) == "0,2-3,5"
    assert array_spec(5, [5, 6, 8]) == "0-1,3"


def test_the_slurm_script_runs_exactly_the_ids_that_exist(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = study(
        write_experiment,
        "  seed: [1, 2, 3, 4]\n",
        "controls:\n  output_dir: /scratch/grow\nlaunch:\n  slurm: {}\n",
    )
    generate(path)
    set_variables(path, "  seed: [1, 3, 4, 8]\n")
    generate(path)
    script = (path.parent / "configs/slurm_array.sh").read_text()
    assert "#SBATCH --array=0,2-4\n" in script
    assert "  [4]=/scratch/grow/run_004\n" in script
    tune = tmp_path / "bin" / "tune"
    tune.parent.mkdir()
    tune.write_text('#!/bin/bash\necho "tune $*"\n')
    tune.chmod(0o755)
    env = {"PATH": f"{tune.parent}:/usr/bin:/bin", "SLURM_ARRAY_JOB_ID": "7"}
    trained = {}
    for task in range(6):
        done = subprocess.run(
            ["bash", "configs/slurm_array.sh"],
            cwd=path.parent,
            env={**env, "SLURM_ARRAY_TASK_ID": str(task)},
            capture_output=True,
            text=True,
        )
        trained[task] = done.returncode
        if task in (1, 5):
            assert "has no run: grow has runs 0, 2-4" in done.stderr
            assert "has no run" in (path.parent / f"slurm-7_{task}.out").read_text()
    assert trained == {0: 0, 1: 2, 2: 0, 3: 0, 4: 0, 5: 2}


def test_validation_points_at_the_value_of_a_run_whose_id_is_not_its_position(
    write_experiment: Callable[..., Path],
) -> None:
    path = study(write_experiment, "  seed: [1, 2]\n  batch_size: [2, 4]\n")
    generate(path)
    set_variables(path, "  seed: [5, 1, 2]\n  batch_size: [2, 4]\n")
    generate(path)
    plan = plan_experiment(read_inputs(path))
    # run_004 is seed 5, the first value written, though its id is the fifth; run_000 is seed 1.
    assert plan.written_at(("seed",), "run_004") == ("variables", "seed", 0)
    assert plan.written_at(("batch_size",), "run_005") == ("variables", "batch_size", 1)
    assert plan.written_at(("seed",), "run_000") == ("variables", "seed", 1)
    assert plan.written_at(("seed",), "run_009") is None


@pytest.mark.parametrize(
    ("mapping", "message", "line"),
    [
        (
            "runs:\n- id: run_000\n  params: {seed: 1}\n<<<<<<< HEAD\n- id: run_001\n",
            "holds a merge conflict: keep one side's file",
            4,
        ),
        ("runs:\n- id: run_000\n  params: {seed: 1}\n- id: 7\n", "has no run id", 4),
        (
            "runs:\n- id: run_000\n  params: {seed: 1}\n- id: run_000\n  params: {seed: 2}\n",
            "an id a run above has already",
            4,
        ),
        ("runs:\n- id: run_000\n  params: {seed: 1}\nretired: run_4\n", "retired lists", 4),
        ("experiment: grow\n", "records no runs", 1),
    ],
)
def test_a_broken_mapping_is_one_error_at_its_line_and_nothing_is_written(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    mapping: str,
    message: str,
    line: int,
) -> None:
    path = study(write_experiment, "  seed: [1, 2]\n")
    generate(path)
    written = path.parent / "configs/run_mapping.yaml"
    header = "".join(written.read_text().splitlines(keepends=True)[:3])  # still the tool's file
    written.write_text(header + mapping)
    line += 3
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2
    [error] = result.err.splitlines()
    assert re.match(rf"error: \S*exp/configs/run_mapping\.yaml:{line}:\d+: ", error), error
    assert message in error
    assert "--renumber" in error or "git checkout" in error  # the way out
    assert snapshot(path.parent) == before
    assert cli("generate", "--renumber", path).code == 0  # the way out the message gives


def _recorded(path: Path) -> RecordedIds | None:
    raw = read_recorded_mapping(path)
    return None if raw is None else parse_recorded_ids(raw, path, run_id_filled=False)


def test_a_mapping_rewritten_in_another_yaml_style_records_the_same_ids(
    write_experiment: Callable[..., Path],
) -> None:
    path = study(write_experiment, "  seed: [1, 2, 3]\n  optimizer: [{lr: 0.1}, {lr: 1e-5}]\n")
    generate(path)
    set_variables(path, "  seed: [1, 3]\n  optimizer: [{lr: 0.1}, {lr: 1e-5}]\n")
    generate(path)
    written = path.parent / "configs/run_mapping.yaml"
    as_written = _recorded(written)
    text = written.read_text()
    header = "".join(text.splitlines(keepends=True)[:3])
    written.write_text(header + yaml.safe_dump(yaml.safe_load(text), default_flow_style=False))
    assert _recorded(written) == as_written
    assert as_written is not None and len(as_written.numbers) == 4
    assert as_written.retired == {2, 3}
