"""Stage 3 of `validate`: what recipes refuse only once they run, on real torchtune configs.

Each case is a real built-in recipe config (or a custom copy of one) with one mistake that
``tune validate`` passes; whether ``tune run`` really fails on it is the oracle tier's to show
(tests/test_oracle.py). Here: the finding is at the right key and line and says which rule.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import generate
from torchtune_config_writer.generation.merge import FLOAT_KEYS
from torchtune_config_writer.generation.recipes import SINGLE_DEVICE_RECIPES, installed_torchtune
from torchtune_config_writer.validation.deep_check import deep_check
from torchtune_config_writer.validation.findings import ConfigResult, ValidationResult
from torchtune_config_writer.validation.torchtune_runtime import load_runtime, locate_component
from torchtune_config_writer.validation.type_check import parameter_annotations
from torchtune_config_writer.validation.validate import validate

from .conftest import CliResult, experiment_text

LORA = "llama3_2/1B_lora_single_device"
FULL = "llama3_2/1B_full_single_device"

# case: (recipe config, controls, a change to a custom copy of it or None,
#        expected (key path, check, words of the message) or None for no error)
CASES: dict[str, tuple[str, str, tuple[str, str] | None, tuple[str, str, str] | None]] = {
    "clean-lora": (LORA, "", None, None),
    "passthrough": (
        LORA,
        "dataset:\n  source: json\n  data_files: a.json\n  field: records\n  name: x",
        None,
        None,
    ),
    "in-backward-accumulation": (
        FULL,
        "gradient_accumulation_steps: 2",
        None,
        (
            "optimizer_in_bwd",
            "recipe-rule",
            "full_finetune_single_device refuses it (no gradient accumulation with "
            "optimizer_in_bwd): `tune run` fails; optimizer_in_bwd is true and "
            "gradient_accumulation_steps is 2",
        ),
    ),
    "in-backward-clipping": (
        FULL,
        "clip_grad_norm: 1.0",
        None,
        ("optimizer_in_bwd", "recipe-rule", "(no gradient clipping with optimizer_in_bwd)"),
    ),
    "offloading-on-cpu": (
        LORA,
        "device: cpu\nenable_activation_offloading: true\nenable_activation_checkpointing: true",
        None,
        ("enable_activation_offloading", "recipe-rule", "offloading needs CUDA"),
    ),
    "offloading-without-checkpointing": (
        LORA,
        "enable_activation_offloading: true",
        None,
        ("enable_activation_offloading", "recipe-rule", "without enable_activation_checkpointing"),
    ),
    "fp16": (LORA, "dtype: fp16", None, ("dtype", "recipe-rule", "(no fp16 training)")),
    "inference-collator": (
        LORA,
        "+collate_fn: torchtune.data.left_pad_sequence",
        None,
        ("collate_fn", "recipe-rule", "a collator for inference only"),
    ),
    "packed-without-max-seq-len": (
        LORA,
        "dataset.packed: true",
        None,
        (
            "dataset.packed",
            "recipe-rule",
            "alpaca_cleaned_dataset refuses it (packing needs tokenizer.max_seq_len)",
        ),
    ),
    "no-scheduler": (
        LORA,
        "lr_scheduler: null",
        None,
        ("lr_scheduler", "recipe-rule", "(a learning-rate scheduler)"),
    ),
    "misspelt-split": (
        LORA,
        "dataset:\n  spilt: train",
        None,
        ("dataset.spilt", "signature", "has no argument spilt: did you mean split?"),
    ),
    "misspelt-packed": (
        LORA,
        "dataset:\n  pakced: true",
        None,
        ("dataset.pakced", "signature", "has no argument pakced: did you mean packed?"),
    ),
    "misspelt-in-a-list": (
        LORA,
        "",
        (
            "dataset:\n  _component_: torchtune.datasets.alpaca_cleaned_dataset\n"
            "  packed: False  # True increases speed",
            "dataset:\n- _component_: torchtune.datasets.alpaca_cleaned_dataset\n"
            "- _component_: torchtune.datasets.alpaca_cleaned_dataset\n  pakced: true",
        ),
        ("dataset.1.pakced", "signature", "did you mean packed?"),
    ),
    "float-batch-size-in-a-custom-base": (
        LORA,
        "",
        ("batch_size: 4", "batch_size: 4.0"),
        ("batch_size", "recipe-rule", "batch_size is 4.0, but the recipe hands it to its "),
    ),
    "float-epochs-in-a-custom-base": (
        LORA,
        "",
        ("epochs: 1", "epochs: 1.5"),
        ("epochs", "recipe-rule", "loops over range(epochs)"),
    ),
}


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each case generated as a one-run experiment; case → its run_000.yaml."""
    root = tmp_path_factory.mktemp("rules")
    found = {}
    torchtune = installed_torchtune()
    assert torchtune is not None
    for case, (recipe, controls, change, _) in CASES.items():
        folder = root / case
        folder.mkdir()
        builtin = torchtune.find(recipe)
        assert builtin is not None
        base = f"base_config: {recipe}"
        if change is not None:
            text = builtin.path.read_text()
            assert change[0] in text
            (folder / "base.yaml").write_text(text.replace(change[0], change[1], 1))
            base = f"base_config_file: base.yaml\n  recipe: {builtin.recipe}"
        # Each its own name and output_dir: experiments validated together may share neither.
        controls = f"{controls}\noutput_dir: /scratch/{case}".lstrip()
        text = experiment_text(controls=controls, base=base).replace("name: study", f"name: {case}")
        (folder / "experiment.yaml").write_text(text)
        generate(folder)
        found[case] = folder / "configs" / "run_000.yaml"
    return found


@pytest.fixture(scope="module")
def result(cases: dict[str, Path]) -> ValidationResult:
    return validate(list(cases.values()))


def result_of(result: ValidationResult, config: Path) -> ConfigResult:
    (match,) = [item for item in result.configs if item.config == config]
    return match


@pytest.mark.needs_torch
@pytest.mark.parametrize("case", CASES)
def test_each_run_time_mistake_is_one_error_at_its_key_naming_the_rule(
    case: str, cases: dict[str, Path], result: ValidationResult
) -> None:
    config = cases[case]
    errors = [f for f in result_of(result, config).findings if f.severity == "error"]
    expected = CASES[case][3]
    if expected is None:
        assert errors == []
        return
    keypath, check, words = expected
    assert [(f.keypath, f.check) for f in errors] == [(keypath, check)], errors
    assert words in errors[0].message
    # The finding points at the config's line of that key.
    last = keypath.rsplit(".", 1)[-1]
    line = config.read_text().splitlines()[errors[0].line - 1]  # type: ignore[operator]
    assert line.lstrip("- ").startswith(f"{last}:")


@pytest.mark.needs_torch
def test_a_finding_set_by_the_experiment_points_at_its_line(
    cases: dict[str, Path], result: ValidationResult
) -> None:
    findings = result_of(result, cases["in-backward-accumulation"]).findings
    (finding,) = [f for f in findings if f.severity == "error"]
    assert finding.experiment_line is None  # optimizer_in_bwd comes from the recipe config
    findings = result_of(result, cases["misspelt-split"]).findings
    (finding,) = [f for f in findings if f.severity == "error"]
    assert finding.experiment_line == 8  # dataset: / spilt: train


@pytest.mark.needs_torch
def test_no_builtin_config_breaks_a_rule_of_its_own_recipe() -> None:
    torchtune = installed_torchtune()
    assert torchtune is not None
    runtime = load_runtime()
    checked = 0
    for builtin in torchtune.configs:
        if not builtin.path.exists():
            continue
        data = yaml.safe_load(builtin.path.read_text())
        problems = deep_check(runtime, data, builtin.recipe_file)
        wrong = [p for p in problems if p.check in ("recipe-rule", "signature")]
        assert wrong == [], (builtin.name, wrong)
        checked += 1
    assert checked > 150


@pytest.mark.needs_torch
def test_the_float_keys_are_the_integers_of_builtin_configs_that_torchtune_reads_as_floats() -> (
    None
):
    torchtune = installed_torchtune()
    assert torchtune is not None
    runtime = load_runtime()
    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            component = node.get("_component_")
            annotations = {}
            if isinstance(component, str):
                located, severity, _ = locate_component(runtime, component)
                annotations = parameter_annotations(located) if severity is None else {}
            for key, value in node.items():
                wanted = annotations.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and wanted is float:
                    found.add(key)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for builtin in torchtune.configs:
        if builtin.path.exists():
            walk(yaml.safe_load(builtin.path.read_text()))
    # PPO's top-level gamma and reward_penalty go to no component: its recipe does float math.
    assert found == FLOAT_KEYS - {"gamma", "reward_penalty"}


@pytest.mark.needs_torchtune
def test_the_recorded_single_device_recipes_are_torchtunes() -> None:
    torchtune = installed_torchtune()
    assert torchtune is not None and torchtune.version == "0.6.1"
    assert torchtune.single_device == SINGLE_DEVICE_RECIPES


def test_nproc_per_node_on_a_single_device_recipe_is_refused_at_its_line(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text() + "launch:\n  nproc_per_node: 2\n")
    result = cli("generate", path)
    assert result.code == 2
    assert result.err == (
        f"error: {path}:7:3: launch.nproc_per_node writes `tune run --nproc_per_node 2 "
        "lora_finetune_single_device`, which fails at once: lora_finetune_single_device does "
        "not support distributed training (torchtune's recipe registry); remove "
        "nproc_per_node, or train with a *_distributed recipe\n"
    )
    assert not (path.parent / "configs").exists()


@pytest.mark.needs_torch
def test_validate_reports_an_experiment_that_writes_where_another_does(
    tmp_path: Path, write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    first = write_experiment(experiment_text(controls="output_dir: /scratch/a"), folder="a")
    second = write_experiment(
        experiment_text(controls="output_dir: /scratch/b").replace("name: study", "name: b"),
        folder="b",
    )
    assert cli("generate", first, second).code == 0
    second.write_text(second.read_text().replace("/scratch/b", "/scratch/a"))
    result = validate([second])
    (config,) = result.configs
    shared = [f for f in config.findings if f.check == "output-location"]
    assert [f.keypath for f in shared] == ["output_dir"]
    assert "write: output_dir /scratch/a (run_000 of both" in shared[0].message
    assert shared[0].experiment_line == 7
