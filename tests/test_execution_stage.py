"""How the execution stage groups a sweep's configs, and the verdict each config gets.

No torch here: the worker is stood in for by an executor that reads each config and fails it
where a rule of the test says, so what is asserted is which executions the stage asks for and
what it concludes from them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from torchtune_config_writer.validation.execution.protocol import (
    DELETE,
    Mode,
    Outcome,
    Request,
    Status,
)
from torchtune_config_writer.validation.execution.stage import Subject, run_stage
from torchtune_config_writer.validation.findings import Severity

Rule = Callable[[dict[str, Any], Mode], Outcome | None]


class StandInExecutor:
    """Runs nothing: each request's config (base plus edits) is judged by ``rule``."""

    def __init__(self, rule: Rule | None = None, shrunk: bool = True) -> None:
        self.rule = rule
        self.shrunk = shrunk
        self.requests: list[Request] = []

    def run(self, wanted: Iterable[Request]) -> list[Outcome]:
        outcomes = []
        for request in wanted:
            self.requests.append(request)
            config = yaml.safe_load(Path(request.config).read_text())
            for keypath, value in request.edits:
                node = config
                for part in keypath[:-1]:
                    node = node[part]
                if value == DELETE:
                    del node[keypath[-1]]
                else:
                    node[keypath[-1]] = value
            judged = self.rule(config, request.mode) if self.rule else None
            shrunk = self.shrunk and request.mode is Mode.VALUES
            fine = Outcome(0, Status.PASSED, trains=True, steps=1, shrunk=shrunk)
            outcomes.append(judged or fine)
        return outcomes

    def modes(self) -> list[Mode]:
        return [request.mode for request in self.requests]


def write(folder: Path, name: str, data: dict[str, Any]) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def base_config() -> dict[str, Any]:
    return {
        "output_dir": "/scratch/base",
        "model": {"_component_": "torchtune.models.llama3_2.lora_llama3_2_1b", "lora_rank": 8},
        "optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4},
        "batch_size": 4,
    }


def sweep(folder: Path, values: list[dict[str, Any]]) -> list[Subject]:
    """One run per dict of top-level or model values, each writing to its own folder."""
    base = write(folder, "base", base_config())
    subjects = []
    for index, changed in enumerate(values):
        data = base_config()
        data["output_dir"] = f"/scratch/run_{index:03d}"
        for key, value in changed.items():
            if key in ("lora_rank", "num_layers"):
                data["model"][key] = value
            elif key == "lr":
                data["optimizer"]["lr"] = value
            else:
                data[key] = value
        config = write(folder, f"run_{index:03d}", data)
        subjects.append(Subject(config, "lora_finetune_single_device", folder, base))
    return subjects


def test_runs_that_differ_only_where_they_write_share_one_execution(tmp_path: Path) -> None:
    executor = StandInExecutor()
    verdicts = run_stage(sweep(tmp_path, [{}, {}, {}]), executor)  # type: ignore[arg-type]
    assert executor.modes() == [Mode.VALUES, Mode.SHAPE]
    assert [v.problems for v in verdicts] == [(), (), ()]
    assert verdicts[0].how.startswith("values: executed; shape: real size executed once for 3")
    assert verdicts[1].how.startswith("values: as run_000")


def test_every_distinct_config_runs_while_there_are_few(tmp_path: Path) -> None:
    executor = StandInExecutor()
    run_stage(sweep(tmp_path, [{"lr": lr} for lr in (1e-4, 2e-4, 3e-4)]), executor)  # type: ignore[arg-type]
    assert executor.modes().count(Mode.VALUES) == 3
    assert executor.modes().count(Mode.SHAPE) == 1  # learning rates do not change shapes


def test_past_the_limit_one_config_runs_per_class_of_values(tmp_path: Path) -> None:
    rates = [1e-5 * (i + 1) for i in range(40)] + [-1e-3]
    subjects = sweep(tmp_path, [{"lr": lr} for lr in rates])

    def negative_rate(config: dict[str, Any], mode: Mode) -> Outcome | None:
        if config["optimizer"]["lr"] < 0:
            return Outcome(0, Status.FAILED, "ValueError", "Invalid learning rate", site="adam")
        return None

    executor = StandInExecutor(negative_rate)
    verdicts = run_stage(subjects, executor, execute_each=32)  # type: ignore[arg-type]
    values = [r for r in executor.requests if r.mode is Mode.VALUES and r.config.endswith(".yaml")]
    runs = {Path(r.config).stem for r in values if "run_" in r.config}
    assert runs == {"run_000", "run_040"}  # one positive rate, the negative one
    assert all(not v.problems for v in verdicts[:40])
    assert "values: as run_000 (same classes of values)" in verdicts[39].how
    ((keypath, severity, message),) = verdicts[40].problems
    assert (keypath, severity) == (("optimizer", "lr"), Severity.ERROR)
    assert "the base config with only this change fails the same way" in message


def test_a_class_whose_run_fails_runs_each_of_its_configs(tmp_path: Path) -> None:
    rates = [1e-5 * (i + 1) for i in range(40)]
    subjects = sweep(tmp_path, [{"lr": lr} for lr in rates])

    def one_rate_fails(config: dict[str, Any], mode: Mode) -> Outcome | None:
        if config["optimizer"]["lr"] == rates[0]:
            return Outcome(0, Status.FAILED, "ValueError", "that one", site="adam")
        return None

    executor = StandInExecutor(one_rate_fails)
    verdicts = run_stage(subjects, executor, execute_each=32)  # type: ignore[arg-type]
    assert [bool(v.problems) for v in verdicts] == [True] + [False] * 39
    assert all(v.how.startswith("values: executed") for v in verdicts)


def test_one_real_size_run_per_structure_and_none_for_a_tiny_model(tmp_path: Path) -> None:
    subjects = sweep(
        tmp_path, [{"num_layers": 2}, {"num_layers": 2, "lr": 1e-3}, {"num_layers": 3}]
    )
    executor = StandInExecutor()
    run_stage(subjects, executor)  # type: ignore[arg-type]
    assert executor.modes().count(Mode.SHAPE) == 2  # model dimensions are structure
    tiny = StandInExecutor(shrunk=False)
    verdicts = run_stage(subjects, tiny)  # type: ignore[arg-type]
    assert Mode.SHAPE not in tiny.modes()
    assert "shape: real size (the values run)" in verdicts[0].how


def test_two_changes_that_fail_together_are_each_a_finding(tmp_path: Path) -> None:
    subjects = sweep(tmp_path, [{"batch_size": 8, "lr": 1.0}])

    def together(config: dict[str, Any], mode: Mode) -> Outcome | None:
        if config["batch_size"] == 8 and config["optimizer"]["lr"] == 1.0:
            return Outcome(0, Status.FAILED, "RuntimeError", "both", site="step")
        return None

    (verdict,) = run_stage(subjects, StandInExecutor(together))  # type: ignore[arg-type]
    assert [p[0] for p in verdict.problems] == [("optimizer", "lr"), ("batch_size",)]
    assert all("changed together" in p[2] for p in verdict.problems)


def test_a_run_that_takes_no_step_is_a_warning_at_the_key_that_makes_it(tmp_path: Path) -> None:
    subjects = sweep(tmp_path, [{"epochs": 0, "lr": 1e-3}])

    def no_epochs(config: dict[str, Any], mode: Mode) -> Outcome | None:
        if config.get("epochs") == 0:
            return Outcome(0, Status.PASSED, trains=True, steps=0)
        return None

    (verdict,) = run_stage(subjects, StandInExecutor(no_epochs))  # type: ignore[arg-type]
    ((keypath, severity, message),) = verdict.problems
    assert (keypath, severity) == (("epochs",), Severity.WARNING)
    assert "trains nothing" in message


@pytest.mark.parametrize("status", [Status.UNVERIFIED, Status.NOT_CHECKED])
def test_what_could_not_be_checked_is_unverified_never_valid(
    tmp_path: Path, status: Status
) -> None:
    def cannot(config: dict[str, Any], mode: Mode) -> Outcome | None:
        return Outcome(0, status, "ModuleNotFoundError", "No module named 'bitsandbytes'")

    (verdict,) = run_stage(sweep(tmp_path, [{}]), StandInExecutor(cannot))  # type: ignore[arg-type]
    ((_, severity, message),) = verdict.problems
    assert severity == Severity.UNVERIFIED and "bitsandbytes" in message


def test_the_real_size_run_stands_for_a_config_whose_values_run_shrank_the_model(
    tmp_path: Path,
) -> None:
    # The first config of the structure fails before building the model (nothing shrank): the
    # real-size run is still made, by a config whose values run built it.
    subjects = sweep(tmp_path, [{"lr": -1.0}, {"lr": 1e-3}])

    def negative_fails_early(config: dict[str, Any], mode: Mode) -> Outcome | None:
        if config["optimizer"]["lr"] < 0:
            return Outcome(0, Status.FAILED, "ValueError", "Invalid learning rate", site="opt")
        return None

    executor = StandInExecutor(negative_fails_early)
    verdicts = run_stage(subjects, executor)  # type: ignore[arg-type]
    shape = [r for r in executor.requests if r.mode is Mode.SHAPE]
    assert [Path(r.config).name for r in shape] == ["run_001.yaml"]
    assert "shape: real size executed once for 2 configs" in verdicts[1].how


def test_each_subject_says_whether_its_files_are_real(tmp_path: Path) -> None:
    trains, evaluates = sweep(tmp_path, [{"lr": 1e-3}, {"lr": 2e-3}])
    subjects = [replace(trains, real_files=True), evaluates]
    executor = StandInExecutor()
    run_stage(subjects, executor)  # type: ignore[arg-type]
    real = {Path(r.config).name: r.real_files for r in executor.requests if not r.edits}
    assert real == {"run_000.yaml": True, "run_001.yaml": False}
