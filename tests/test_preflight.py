"""`validate --preflight`: the paths a config reads exist here, the places it writes are writable.

``preflight_problems`` needs no torch, so its tests run everywhere; only the end-to-end test
through ``validate`` is marked ``torchtune``.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.validation.deep_check import Problem
from torchtune_config_writer.validation.findings import Severity
from torchtune_config_writer.validation.preflight import preflight_problems
from torchtune_config_writer.validation.validating import validate

from .conftest import CliResult, experiment_text, python_without_torch

MODEL_FILES = ("original/tokenizer.model", "config.json", "model.safetensors")


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    """A machine with a downloaded model and a local data file, under ``tmp_path``."""
    for name in (*MODEL_FILES, "data/alpaca.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    return tmp_path


def config(root: Path) -> dict[str, Any]:
    """A config shaped like torchtune's llama3_2/1B_lora_single_device, every path under root."""
    return {
        "output_dir": f"{root}/results",
        "model_dir": str(root),
        "tokenizer": {
            "_component_": "torchtune.models.llama3.llama3_tokenizer",
            "path": "${model_dir}/original/tokenizer.model",
            "max_seq_len": None,
        },
        "checkpointer": {
            "_component_": "torchtune.training.FullModelHFCheckpointer",
            "checkpoint_dir": "${model_dir}",
            "checkpoint_files": ["model.safetensors"],
            "recipe_checkpoint": None,
            "output_dir": "${output_dir}",
            "model_type": "LLAMA3_2",
        },
        "resume_from_checkpoint": False,
        "dataset": {
            "_component_": "torchtune.datasets.alpaca_dataset",
            "source": "json",
            "data_files": f"{root}/data/alpaca.json",
        },
        "metric_logger": {
            "_component_": "torchtune.training.metric_logging.DiskLogger",
            "log_dir": "${output_dir}/logs",
        },
        "profiler": {"enabled": True, "output_dir": "${output_dir}/profiling_outputs"},
    }


def changed(root: Path, **changes: Any) -> dict[str, Any]:
    """The config with keys set, parts joined by ``__`` (``checkpointer__checkpoint_dir=...``)."""
    data = config(root)
    for key, value in changes.items():
        *parents, last = key.split("__")
        node = data
        for part in parents:
            node = node[part]
        node[last] = value
    return data


def keypaths(problems: list[Problem]) -> list[tuple[str | int, ...]]:
    return [problem.keypath for problem in problems]


def test_a_config_whose_paths_are_all_there_has_no_problems(machine: Path) -> None:
    assert preflight_problems(config(machine), machine) == []


def test_a_missing_tokenizer_file_is_one_finding_at_its_key(machine: Path) -> None:
    (machine / "original/tokenizer.model").unlink()
    (problem,) = preflight_problems(config(machine), machine)
    assert problem.keypath == ("tokenizer", "path")
    assert (problem.severity, problem.check) == (Severity.ERROR, "preflight")
    expected = f"tokenizer.path {machine}/original/tokenizer.model does not exist here: "
    assert problem.message.startswith(expected)
    assert "tune download" in problem.message  # what to do


@pytest.mark.parametrize("key", ["merges_file", "special_tokens_path", "vocab_path"])
def test_every_file_a_tokenizer_builder_takes_is_checked(machine: Path, key: str) -> None:
    data = config(machine)
    data["tokenizer"][key] = str(machine / "missing.txt")
    assert keypaths(preflight_problems(data, machine)) == [("tokenizer", key)]


def test_a_tokenizer_path_that_is_a_folder_is_not_a_file(machine: Path) -> None:
    data = changed(machine, tokenizer__path=str(machine / "original"))
    (problem,) = preflight_problems(data, machine)
    assert "is not a file" in problem.message


def test_a_missing_checkpoint_dir_is_one_finding_not_one_per_file(machine: Path) -> None:
    data = changed(machine, checkpointer__checkpoint_dir=str(machine / "elsewhere"))
    (problem,) = preflight_problems(data, machine)
    assert problem.keypath == ("checkpointer", "checkpoint_dir")
    assert "does not exist here" in problem.message


def test_a_checkpoint_file_missing_from_the_list_is_found_at_its_index(machine: Path) -> None:
    files = ["model.safetensors", "model-2.safetensors"]
    problems = preflight_problems(changed(machine, checkpointer__checkpoint_files=files), machine)
    assert keypaths(problems) == [("checkpointer", "checkpoint_files", 1)]
    assert f"model-2.safetensors is not in {machine}" in problems[0].message


def test_the_hf_checkpointer_needs_the_models_config_json(machine: Path) -> None:
    (machine / "config.json").unlink()
    (problem,) = preflight_problems(config(machine), machine)
    assert problem.keypath == ("checkpointer", "checkpoint_dir")
    assert f"{machine}/config.json" in problem.message


def test_formatted_checkpoint_files_are_expanded_as_torchtune_does(machine: Path) -> None:
    formatted = {"filename_format": "model-{}-of-{}.safetensors", "max_filename": "00003"}
    data = changed(machine, checkpointer__checkpoint_files=formatted)
    for n in (1, 2, 3):
        (machine / f"model-0000{n}-of-00003.safetensors").write_text("x")
    assert preflight_problems(data, machine) == []
    (machine / "model-00002-of-00003.safetensors").unlink()
    (machine / "model-00003-of-00003.safetensors").unlink()
    (problem,) = preflight_problems(data, machine)  # one key: one problem
    assert problem.keypath == ("checkpointer", "checkpoint_files", "filename_format")
    assert "model-00002-of-00003.safetensors (and 1 more it names) is not in" in problem.message


def test_adapter_and_recipe_checkpoints_are_checked_only_when_resuming(machine: Path) -> None:
    data = changed(
        machine,
        checkpointer__adapter_checkpoint="adapter.pt",
        checkpointer__recipe_checkpoint="r.pt",
    )
    assert preflight_problems(data, machine) == []  # not resuming: torchtune never reads them
    data["resume_from_checkpoint"] = True
    problems = preflight_problems(data, machine)
    assert keypaths(problems) == [
        ("checkpointer", "recipe_checkpoint"),
        ("checkpointer", "adapter_checkpoint"),
    ]
    # torchtune looks for both in the checkpointer's output_dir, not in checkpoint_dir.
    assert f"{machine}/results/r.pt" in problems[0].message
    assert f"{machine}/results/adapter.pt" in problems[1].message


def test_resuming_without_named_checkpoints_looks_where_torchtune_does(machine: Path) -> None:
    data = changed(machine, resume_from_checkpoint=True)
    problems = preflight_problems(data, machine)
    assert keypaths(problems) == [
        ("checkpointer", "recipe_checkpoint"),
        ("checkpointer", "adapter_checkpoint"),
    ]
    assert f"{machine}/results/recipe_state/recipe_state.pt" in problems[0].message
    assert "latest epoch_N folder" in problems[1].message  # torchtune ends in a TypeError
    for name in ("recipe_state/recipe_state.pt", "epoch_0/x", "epoch_1/adapter_model.pt"):
        (machine / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        (machine / "results" / name).write_text("x")
    assert preflight_problems(data, machine) == []


def test_a_full_finetune_resumes_its_model_from_output_dir(machine: Path) -> None:
    # An epoch folder without adapter_model.pt: torchtune reads checkpoint_files from output_dir.
    for name in ("recipe_state/recipe_state.pt", "epoch_0/model.safetensors"):
        (machine / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        (machine / "results" / name).write_text("x")
    data = changed(machine, resume_from_checkpoint=True)
    (problem,) = preflight_problems(data, machine)
    assert problem.keypath == ("checkpointer", "checkpoint_files", 0)
    assert f"is not in {machine}/results" in problem.message
    data["checkpointer"]["checkpoint_files"] = ["epoch_0/model.safetensors"]
    assert preflight_problems(data, machine) == []


def test_the_files_of_a_hub_dataset_are_not_checked(machine: Path) -> None:
    dataset = {"source": "yahma/alpaca-cleaned", "data_files": "train-*.parquet"}
    assert preflight_problems(changed(machine, dataset=dataset), machine) == []


@pytest.mark.parametrize(
    ("data_files", "keypath"),
    [
        ("data/missing.json", ("dataset", "data_files")),
        (["data/alpaca.json", "data/missing.json"], ("dataset", "data_files", 1)),
        (
            {"train": "data/alpaca.json", "test": "data/missing.json"},
            ("dataset", "data_files", "test"),
        ),
        ("data/missing-*.json", ("dataset", "data_files")),
    ],
)
def test_local_json_files_are_checked_in_every_form(
    machine: Path, data_files: Any, keypath: tuple[str | int, ...]
) -> None:
    data = changed(machine, dataset={"source": "json", "data_files": data_files})
    assert keypaths(preflight_problems(data, machine)) == [keypath]


def test_datasets_in_a_list_are_checked_at_their_index(machine: Path) -> None:
    good = {"source": "json", "data_files": "data/alpaca.json"}
    bad = {"source": "csv", "data_files": "data/missing.csv"}
    local = {"source": "./data/saved_dataset"}
    data = changed(machine, dataset=[good, bad, local])
    assert keypaths(preflight_problems(data, machine)) == [
        ("dataset", 1, "data_files"),
        ("dataset", 2, "source"),
    ]


def test_relative_paths_resolve_against_the_run_folder(machine: Path) -> None:
    data = changed(machine, tokenizer__path="original/tokenizer.model", output_dir="results")
    assert preflight_problems(data, machine) == []
    (problem,) = preflight_problems(data, machine / "data")
    assert problem.keypath == ("tokenizer", "path")
    assert f"({machine}/data/original/tokenizer.model)" in problem.message


def test_interpolated_paths_are_resolved(machine: Path) -> None:
    data = changed(machine, model_dir=str(machine / "elsewhere"))
    assert keypaths(preflight_problems(data, machine)) == [
        ("tokenizer", "path"),
        ("checkpointer", "checkpoint_dir"),
    ]


def test_values_that_do_not_resolve_nulls_and_absent_keys_are_skipped(machine: Path) -> None:
    data = changed(machine, tokenizer__path="${no_such_key}/tokenizer.model")
    data["metric_logger"]["log_dir"] = None
    del data["dataset"]
    assert preflight_problems(data, machine) == []
    data["tokenizer"]["path"] = "${oops"  # malformed: OmegaConf refuses the whole config
    assert preflight_problems(data, machine) == []


def test_an_output_dir_under_a_regular_file_is_not_writable(machine: Path) -> None:
    (machine / "blocker").write_text("a file, where a folder would be made")
    data = changed(machine, output_dir=str(machine / "blocker" / "results"))
    problems = preflight_problems(data, machine)
    # The top-level one and every location interpolated from it, each at its own key.
    assert keypaths(problems) == [
        ("output_dir",),
        ("checkpointer", "output_dir"),
        ("metric_logger", "log_dir"),
        ("profiler", "output_dir"),
    ]
    assert f"is under the regular file {machine}/blocker" in problems[0].message


def test_an_output_dir_that_is_a_regular_file_is_not_writable(machine: Path) -> None:
    data = changed(machine)
    data["metric_logger"]["log_dir"] = str(machine / "config.json")
    (problem,) = preflight_problems(data, machine)
    assert problem.keypath == ("metric_logger", "log_dir")
    assert "is a regular file" in problem.message


def test_an_output_dir_in_a_read_only_folder_is_not_writable(
    machine: Path, without_root_rights: list[str]
) -> None:
    # In a new process that file modes apply to (root writes into read-only folders).
    (machine / "locked").mkdir()
    (machine / "locked").chmod(0o500)
    try:
        data = changed(machine, output_dir=str(machine / "locked" / "results"))
        code = (
            "import json, sys; from pathlib import Path\n"
            "from torchtune_config_writer.validation.preflight import preflight_problems\n"
            "problems = preflight_problems(json.loads(sys.argv[1]), Path(sys.argv[2]))\n"
            "print(json.dumps([list(problem.keypath) for problem in problems]))\n"
        )
        command = [*without_root_rights, sys.executable, "-c", code, json.dumps(data), machine]
        found = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        assert ["output_dir"] in json.loads(found)
    finally:
        (machine / "locked").chmod(0o700)


def test_a_switched_off_profiler_writes_nothing(machine: Path) -> None:
    (machine / "blocker").write_text("x")
    data = changed(machine, profiler={"enabled": False, "output_dir": f"{machine}/blocker/p"})
    assert preflight_problems(data, machine) == []


def test_a_path_starting_with_a_tilde_is_one_finding_since_torchtune_does_not_expand_it(
    machine: Path,
) -> None:
    data = changed(machine, tokenizer__path="~/tokenizer.model")
    (problem,) = preflight_problems(data, machine)
    assert problem.keypath == ("tokenizer", "path")
    assert "starts with ~, which torchtune does not expand" in problem.message
    assert str(Path("~/tokenizer.model").expanduser()) in problem.message


def test_the_config_is_not_changed(machine: Path) -> None:
    data = config(machine)
    before = copy.deepcopy(data)
    preflight_problems(data, machine)
    assert data == before


def test_preflight_does_not_import_torch() -> None:
    code = "import sys, torchtune_config_writer.validation.preflight; print('torch' in sys.modules)"
    result = python_without_torch(code, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.needs_torch
def test_validate_preflight_reports_a_missing_tokenizer_and_exits_1(
    machine: Path, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    controls = f"""
        output_dir: {machine}/results
        tokenizer:
          path: {machine}/missing/tokenizer.model
        checkpointer:
          checkpoint_dir: {machine}
        """
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "experiment.yaml").write_text(experiment_text(controls=controls))
    generate(folder)
    config_file = folder / "configs" / "run_000.yaml"

    result = cli("validate", "--preflight", folder)
    assert result.code == 1
    assert f"tokenizer.path {machine}/missing/tokenizer.model does not exist here" in result.out
    (checked,) = validate([folder], preflight=True).configs
    (finding,) = [f for f in checked.findings if f.check == "preflight"]
    assert finding.keypath == "tokenizer.path" and finding.config == config_file
    assert (
        finding.line is not None
        and "missing/tokenizer.model" in (config_file.read_text().splitlines()[finding.line - 1])
    )

    # The machine's files are stand-ins of one byte: running the recipe on them would fail.
    result = cli("validate", "--no-execute", folder)
    assert (
        result.code == 0 and "[preflight]" not in result.out and "tokenizer.path" not in result.out
    )
