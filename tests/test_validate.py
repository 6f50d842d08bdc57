"""`validate`: torchtune's verdict for every config, and what `tune validate` misses.

Each stage-2 check is shown on a real generated config on which the real `tune validate` passes
or crashes; our finding names the config line, and the experiment line where it set the value.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.errors import display_path
from torchtune_config_writer.generation import builtin_configs
from torchtune_config_writer.generation.builtin_configs import installed_torchtune
from torchtune_config_writer.installing import torchao_advice
from torchtune_config_writer.validation.findings import Finding, Status, ValidationResult
from torchtune_config_writer.validation.reports import render_json, render_text
from torchtune_config_writer.validation.validating import Target, validate, validate_targets

from .conftest import RECIPE, CliResult, experiment_text
from .terminal_run import in_terminal

TUNE = str(Path(sys.executable).with_name("tune"))


def recipe_text() -> str:
    """The built-in config the experiments use, as `tune cp` copies it."""
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    found = torchtune.find(RECIPE)
    assert found is not None
    return found.path.read_text()


# case: (controls set by the experiment, change to a custom copy of the recipe config or None)
CASES: dict[str, tuple[str, tuple[str, str] | None]] = {
    "clean": ("", None),
    "bad-import": ("optimizer:\n  _component_: torch.optim.AdamWW", None),
    "bad-interpolation": ("metric_logger:\n  log_dir: ${outptu_dir}/logs", None),
    # The experiment's own type check refuses a string over the float; a custom base has it.
    "string-lr": ("", ("  lr: 3e-4", '  lr: "3e-4"')),
    "nested": (
        "",
        (
            "dataset:\n  _component_: torchtune.datasets.alpaca_cleaned_dataset\n"
            "  packed: False  # True increases speed",
            "dataset:\n- _component_: torchtune.datasets.alpaca_cleaned_dataset\n  packed: 'no'\n"
            "- _component_: torchtune.datasets.no_such_dataset",
        ),
    ),
    "optional-package": (
        "optimizer:\n  _component_: bitsandbytes.optim.PagedAdamW8bit\n  fused: null",
        None,
    ),
    "unread-key": ("+epoch: 3", None),
}


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case generated as its own one-run experiment; case → its run_000.yaml."""
    root = tmp_path_factory.mktemp("cases")
    found = {}
    for case, (controls, base_change) in CASES.items():
        folder = root / case
        folder.mkdir()
        base = f"base_config: {RECIPE}"
        if base_change is not None:
            old, new = base_change
            assert old in recipe_text()
            (folder / "base.yaml").write_text(recipe_text().replace(old, new))
            base = "base_config_file: base.yaml"
        # Each its own name and output_dir: experiments validated together may share neither.
        own = f"{controls}\noutput_dir: /scratch/{case}".lstrip()
        text = experiment_text(controls=own, base=base).replace("name: study", f"name: {case}")
        (folder / "experiment.yaml").write_text(text)
        generate(folder)
        found[case] = folder / "configs" / "run_000.yaml"
    return found


@pytest.fixture(scope="module")
def result(configs: dict[str, Path]) -> ValidationResult:
    return validate(list(configs.values()))


def findings_of(result: ValidationResult, config: Path) -> list[Finding]:
    (match,) = [item for item in result.configs if item.config == config]
    return list(match.findings)


def line_of(config: Path, text: str) -> int:
    return next(i for i, line in enumerate(config.read_text().splitlines(), 1) if text in line)


@pytest.mark.needs_torch
def test_the_real_tune_validate_passes_or_crashes_on_every_case(configs: dict[str, Path]) -> None:
    def tune_validate(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([TUNE, "validate", str(path)], capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = dict(zip(configs, pool.map(tune_validate, configs.values()), strict=True))
    passes = {"clean", "string-lr", "nested", "unread-key"}
    for case, outcome in outcomes.items():
        if case in passes:
            assert outcome.returncode == 0 and "Config is well-formed!" in outcome.stdout, case
        else:  # it ends in a traceback, not a verdict
            assert outcome.returncode == 1 and "Traceback" in outcome.stderr, case


@pytest.mark.needs_torch
def test_our_stage_one_verdict_is_tune_validates(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    verdicts = {item.config: item.tune_validate for item in result.configs}
    crashed = {"bad-import", "bad-interpolation", "optional-package"}
    assert {case: verdicts[path] for case, path in configs.items()} == {
        case: "crashed" if case in crashed else "passed" for case in configs
    }


@pytest.mark.needs_torch
def test_a_clean_config_has_no_findings(result: ValidationResult, configs: dict[str, Path]) -> None:
    assert findings_of(result, configs["clean"]) == []


@pytest.mark.needs_torch
def test_a_component_that_does_not_import_names_a_close_one(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    config = configs["bad-import"]
    (finding,) = findings_of(result, config)
    assert (finding.severity, finding.check, finding.keypath) == (
        "error",
        "import",
        "optimizer._component_",
    )
    assert finding.message == (
        "torch.optim.AdamWW cannot be imported: torch.optim has no AdamWW: "
        "did you mean torch.optim.AdamW?"
    )
    assert finding.line == line_of(config, "_component_: torch.optim.AdamWW")
    assert (finding.experiment, finding.experiment_line) == (
        config.parent.parent / "experiment.yaml",
        8,
    )


@pytest.mark.needs_torch
def test_an_interpolation_that_does_not_resolve(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    config = configs["bad-interpolation"]
    (finding,) = findings_of(result, config)
    assert (finding.severity, finding.check, finding.keypath) == (
        "error",
        "interpolation",
        "metric_logger.log_dir",
    )
    assert "Interpolation key 'outptu_dir' not found" in finding.message
    assert finding.line == line_of(config, "log_dir: ${outptu_dir}/logs")
    assert finding.experiment_line == 8


@pytest.mark.needs_torch
def test_a_string_learning_rate_is_a_type_error(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    config = configs["string-lr"]
    (finding,) = findings_of(result, config)
    assert (finding.severity, finding.check, finding.keypath) == ("error", "type", "optimizer.lr")
    assert finding.message == "torch.optim.AdamW takes a number for lr, not '3e-4'"
    assert finding.line == line_of(config, "lr: '3e-4'")
    assert finding.experiment_line is None  # the base set it, not the experiment


@pytest.mark.needs_torch
def test_components_nested_in_lists_are_checked(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    config = configs["nested"]
    found = [(f.severity, f.check, f.keypath, f.line) for f in findings_of(result, config)]
    assert found == [
        ("error", "type", "dataset.0.packed", line_of(config, "packed: 'no'")),
        ("error", "import", "dataset.1._component_", line_of(config, "no_such_dataset")),
    ]


@pytest.mark.needs_torch
def test_a_missing_optional_package_is_unverified_not_broken(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    item = next(i for i in result.configs if i.config == configs["optional-package"])
    assert item.status == "unverified"
    (finding,) = item.findings
    assert finding.message.startswith("bitsandbytes.optim.PagedAdamW8bit needs bitsandbytes")
    assert not result.failed() or any(f.severity == "error" for f in result.findings)
    only = validate_targets([Target(configs["optional-package"])])
    assert not only.failed() and only.failed(unverified_fails=True)


@pytest.mark.needs_torch
def test_a_top_level_key_the_recipe_never_reads_is_a_warning(
    result: ValidationResult, configs: dict[str, Path]
) -> None:
    config = configs["unread-key"]
    (finding,) = findings_of(result, config)
    assert (finding.severity, finding.check, finding.keypath) == ("warning", "unread-key", "epoch")
    assert "not read by the recipe lora_finetune_single_device" in finding.message
    assert (finding.line, finding.experiment_line) == (line_of(config, "epoch: 3"), 7)


@pytest.mark.needs_torch
def test_every_builtin_recipe_config_is_validated_in_one_run() -> None:
    targets = [Target(c.path) for c in installed_torchtune().configs if c.path.exists()]
    result = validate_targets(targets)
    assert len(result.configs) == len(targets) > 150
    for item in result.configs:
        if item.tune_validate == "passed":
            assert item.status == "valid", item
        else:  # tune validate crashes on these: each needs a package this machine lacks
            assert item.status == "unverified", item
            assert all(
                f.message.split(" needs ")[1].split(",")[0] in ("bitsandbytes", "torchvision")
                for f in item.findings
            ), item
    # Not vacuous: where those packages are missing, some configs are unverified for them.
    missing = [name for name in ("bitsandbytes", "torchvision") if find_spec(name) is None]
    assert bool(result.count(Status.UNVERIFIED)) == bool(missing)


@pytest.mark.needs_torch
def test_validate_command_writes_every_report_and_exits_1_on_errors(
    configs: dict[str, Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    reports = {kind: tmp_path / f"report.{kind}" for kind in ("txt", "md", "json")}
    result = cli(
        "validate",
        configs["clean"],
        configs["string-lr"],
        "--text",
        reports["txt"],
        "--markdown",
        reports["md"],
        "--json",
        reports["json"],
    )
    assert result.code == 1
    # The file lists every config (as -v prints); the terminal counts those without findings.
    written, printed = reports["txt"].read_text(), result.out
    findings = printed.rsplit("\n\n", 1)[0]
    assert printed.endswith("\n\n1 config without findings (-v lists every config)\n")
    assert written.startswith(findings + "\n\nconfigs:\n  ") and "optimizer.lr" in findings
    assert f"  {display_path(configs['clean'])}: valid (tune validate: passed" in written
    assert "optimizer.lr" in reports["md"].read_text()
    data = json.loads(reports["json"].read_text())
    assert [c["status"] for c in data["configs"]] == ["valid", "invalid"]


@pytest.mark.needs_torch
def test_annotations_point_at_the_config_line(
    configs: dict[str, Path], cli: Callable[..., CliResult]
) -> None:
    config = configs["bad-interpolation"]
    result = cli("validate", "--annotations", config)
    assert result.code == 1
    line = line_of(config, "${outptu_dir}")
    assert f",line={line}," in result.out and result.out.startswith("::error file=")
    assert ",line=8," in result.out  # and at the experiment line that set it


@pytest.mark.needs_torch
def test_warnings_fail_only_when_asked(
    configs: dict[str, Path], cli: Callable[..., CliResult]
) -> None:
    assert cli("validate", configs["unread-key"]).code == 0
    assert cli("validate", "--warnings-fail", configs["unread-key"]).code == 1


def test_a_path_that_does_not_exist_is_bad_input(
    cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("validate", tmp_path / "nope")
    assert result.code == 2 and result.err.startswith("error: ") and "does not exist" in result.err


@pytest.mark.needs_torch
def test_a_torchao_that_breaks_torchtune_gets_a_clear_message(
    configs: dict[str, Path], tmp_path: Path
) -> None:
    # A torchao that does not fit torchtune 0.6.1, as 0.16 and later do not: it imports, and
    # what torchtune imports from it is not there.
    (tmp_path / "torchao").mkdir()
    (tmp_path / "torchao" / "__init__.py").write_text("")
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "validate", str(configs["clean"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    # In a log the import is said first (a progress line), then the one error line.
    progress, error = result.stderr.split("\n", 1)
    assert progress == "validate: importing torch and torchtune"
    assert error.startswith("error: importing torchtune failed (")
    assert error.endswith(f"): {torchao_advice()}\n")
    assert error.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.needs_torch
def test_generate_validate_writes_the_report_into_a_timestamped_folder(
    write_experiment: Callable[..., Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]", controls="+epoch: 3"))
    result = cli("generate", "--validate", "--output-base-dir", tmp_path / "out", path)
    assert result.code == 0, result.out + result.err
    (folder,) = (tmp_path / "out").iterdir()
    report = (folder / "validation_report.txt").read_text()
    assert "2 configs" in report and "epoch" in report
    assert result.out.splitlines()[-1].startswith("✓ Validated 2 configs: 2 warning (")


@pytest.mark.needs_torch
def test_a_terminal_gets_a_progress_line(configs: dict[str, Path]) -> None:
    # in_terminal clears CI, which a CI host sets and which turns the live line into log lines.
    study = configs["clean"].parent.parent
    code, shown = in_terminal("validate", "configs/run_000.yaml", cwd=study)
    assert code == 0
    assert "checking 1/1 configs/run_000.yaml" in shown
    assert "\x1b[K" in shown  # redrawn in place, not a log's plain lines


@pytest.mark.needs_torch
def test_a_misspelt_argument_is_found_though_required_ones_come_from_the_recipe(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        experiment_text(
            controls="""
        optimizer:
          +weight_decy: 0.01
        lr_scheduler:
          +num_warmup_step: 10
    """
        )
    )
    generate(path)
    result = validate([path.parent])
    found = [(f.keypath, f.check, f.line is not None, f.experiment_line) for f in result.findings]
    assert ("optimizer", "signature", True, 7) in found
    assert ("lr_scheduler", "signature", True, 9) in found


@pytest.mark.needs_torch
def test_an_unset_environment_variable_is_unverified_not_a_type_error(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(controls="lora_rank: ${oc.decode:${oc.env:NO_SUCH_RANK}}")
    )
    generate(path)
    result = validate([path.parent])
    assert {f.severity for f in result.findings} == {"unverified"}
    assert not result.failed()


@pytest.mark.needs_torch
def test_a_key_the_base_set_is_not_blamed_on_the_experiment(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
        model:
          - {lora_rank: 8, _component_: torchtune.models.llama3_2.no_such_model}
          - {lora_rank: 16}
    """
        )
    )
    generate(path)
    result = validate([path.parent])
    lines = {f.config.name: f.experiment_line for f in result.findings}
    assert lines == {"run_000.yaml": 8}  # run_001's component is the base's and imports


@pytest.mark.needs_torch
def test_a_report_that_cannot_be_written_is_bad_input(
    configs: dict[str, Path], cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    result = cli("validate", configs["clean"], "--text", tmp_path / "missing" / "report.txt")
    assert result.code == 2 and result.err.startswith("error: ")
    assert "cannot write the report" in result.err and "Traceback" not in result.err


@pytest.mark.needs_torch
def test_a_custom_base_is_checked_against_the_recipe_the_experiment_names(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "base.yaml").write_text(recipe_text())
    base = "base_config_file: base.yaml\n  recipe: lora_finetune_single_device"
    path = write_experiment(experiment_text(controls="+epoch: 3", base=base))
    generate(path)
    (config,) = validate([path]).configs
    (finding,) = config.findings
    assert (finding.check, finding.keypath) == ("unread-key", "epoch")
    assert "not read by the recipe lora_finetune_single_device" in finding.message


@pytest.mark.needs_torch
def test_a_recipe_torchtune_does_not_have_is_an_error(
    write_experiment: Callable[..., Path],
) -> None:
    base = f"base_config: {RECIPE}\n  recipe: lora_finetune_singel_device"
    path = write_experiment(experiment_text(base=base))
    generate(path)
    (config,) = validate([path]).configs
    (finding,) = config.findings
    assert (finding.severity, finding.check) == ("error", "recipe")
    assert "did you mean lora_finetune_single_device?" in finding.message


@pytest.mark.needs_torch
def test_a_value_from_a_linked_group_points_at_its_line(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            seed: [1, 2]
            optimizers:
              optimizer._component_:
                - torch.optim.AdamW
                - torch.optim.SGDD
              learning_rate: [0.0003, 0.01]
            """
        )
    )
    generate(path)
    result = validate([path])
    bad = {item.config.name: item.findings for item in result.configs if item.findings}
    # Runs 1 and 3 have the second position of the group (seed is the slower axis).
    assert sorted(bad) == ["run_001.yaml", "run_003.yaml"]
    for findings in bad.values():
        (finding,) = findings
        assert finding.keypath == "optimizer._component_"
        assert finding.experiment_line == 11  # torch.optim.SGDD's item of the group


@pytest.mark.needs_torch
def test_a_recipe_file_that_is_not_python_is_one_error_line(
    write_experiment: Callable[..., Path], tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    (tmp_path / "exp" / "recipes").mkdir(parents=True)
    (tmp_path / "exp" / "recipes" / "bad.py").write_text("def main():\n    def (:\n")
    path = write_experiment(
        experiment_text(base=f"base_config: {RECIPE}\n  recipe: recipes/bad.py")
    )
    generate(path)
    result = cli("validate", path)
    assert result.code == 2 and "Traceback" not in result.err
    # Progress lines (this is a log, not a terminal) come before it: one error line.
    (line,) = [line for line in result.err.splitlines() if not line.startswith("validate: ")]
    assert line.startswith("error: ") and "recipes/bad.py:2:" in line
    assert "the recipe is not valid Python" in line


@pytest.fixture
def validated(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate() answers with a known result at once: the reports' routing is under test."""
    from torchtune_config_writer.validation import validating as module

    from .test_reports import four_configs

    monkeypatch.setattr(module, "validate", lambda *args, **kwargs: four_configs())


def test_a_report_to_standard_output_is_printed_alone(
    validated: None, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    from .test_reports import four_configs

    expected = four_configs()
    text = tmp_path / "report.txt"
    result = cli("validate", "--json", "-", "--text", text)
    assert result.code == 1 and result.err == ""
    assert result.out == render_json(expected)  # the JSON alone, not the text report too
    assert text.read_text() == render_text(expected)
    assert cli("validate", "--text", "-").out == render_text(expected)  # once
    markdown = cli("validate", "--markdown", "-", "--json", tmp_path / "r.json")
    assert markdown.out.startswith("## torchtune-config-writer validation report\n")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--json", "-", "--markdown", "-"], "--markdown - and --json - both write to standard"),
        (["--text", "-", "--json", "-"], "--text - and --json - both write to standard output"),
        (["--annotations", "--json", "-"], "--annotations and --json - both write to standard"),
    ],
)
def test_two_things_on_standard_output_is_one_error_before_validating(
    cli: Callable[..., CliResult], args: list[str], said: str, tmp_path: Path
) -> None:
    result = cli("validate", tmp_path / "no-such-experiment", *args)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"error: {said}") and len(result.err.splitlines()) == 1
