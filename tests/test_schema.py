"""The JSON Schema of experiment.yaml accepts what the loader accepts and refuses its mistakes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

import torchtune_config_writer
from torchtune_config_writer.experiment import launch
from torchtune_config_writer.experiment import load as experiment
from torchtune_config_writer.yaml_read import read_yaml_file

from .conftest import EXAMPLES, CliResult, python_without_torch

SCHEMA_PATH = Path(torchtune_config_writer.__file__).with_name("experiment.schema.json")
SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)
CHECK_JSONSCHEMA = str(Path(sys.executable).with_name("check-jsonschema"))
EXAMPLE_FILES = sorted(EXAMPLES.glob("*/experiment.yaml"))

# A custom base (no torchtune needed) with the recipe that runs it.
HEAD = """\
experiment:
  name: study
  framework: torchtune
framework_config:
  base_config_file: base.yaml
  recipe: lora_finetune_single_device
"""


def test_the_schema_is_a_valid_draft_07_schema() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "http://json-schema.org/draft-07/schema#"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.parent.name)
def test_every_example_experiment_is_valid(path: Path) -> None:
    errors = [error.message for error in VALIDATOR.iter_errors(read_yaml_file(path).data)]
    assert errors == []


@pytest.mark.needs_cli("check-jsonschema")
def test_check_jsonschema_accepts_every_example() -> None:
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--schemafile", str(SCHEMA_PATH), *map(str, EXAMPLE_FILES)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok -- validation done" in result.stdout


def test_the_schema_names_exactly_the_loaders_sections_and_keys() -> None:
    sections = SCHEMA["properties"]
    slurm = sections["launch"]["properties"]["slurm"]
    assert list(sections) == list(experiment._SECTIONS)
    assert list(sections["experiment"]["properties"]) == list(experiment._EXPERIMENT_KEYS)
    fields = sections["framework_config"]["properties"]
    assert list(fields) == list(experiment._FRAMEWORK_CONFIG_KEYS)
    assert list(sections["output"]["properties"]) == list(experiment._OUTPUT_KEYS)
    assert list(sections["launch"]["properties"]) == list(launch.launch_keys())
    assert list(slurm["properties"]) == list(launch._SLURM_KEYS)
    # Each of those mappings refuses unknown keys, as the loader does.
    closed = [SCHEMA, slurm, *(sections[name] for name in ("experiment", "framework_config"))]
    closed += [sections["output"], sections["launch"]]
    assert all(mapping["additionalProperties"] is False for mapping in closed)
    assert SCHEMA["required"] == ["experiment", "framework_config"]


def described(schema: dict[str, Any], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every section, key and value schema a researcher can hover, with where it is."""
    for name, child in schema.get("properties", {}).items():
        if child is False:  # a name refused outright (sbatch `array`): its mapping says why
            continue
        yield f"{where}.{name}", child
        yield from described(child, f"{where}.{name}")
    for name, child in schema.get("patternProperties", {}).items():
        yield f"{where}[{name}]", child
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and "$ref" not in extra:
        yield f"{where}.*", extra
        yield from described(extra, f"{where}.*")
    for name, child in schema.get("definitions", {}).items():
        yield f"#{name}", child
        yield from described(child, f"#{name}")


def test_every_section_and_key_has_a_description() -> None:
    hovered = dict(described(SCHEMA))
    assert ".variables" in hovered and ".launch.slurm.sbatch.*" in hovered
    assert "#linkedGroup.*" in hovered
    undescribed = [where for where, schema in hovered.items() if not schema.get("description")]
    assert undescribed == []
    placeholders = [".variables", ".controls", "#sweep", "#linkedGroup.*", ".controls.*"]
    for where in placeholders:
        text = hovered[where]["markdownDescription"]
        assert "`{run_id}`" in text and "`{name}`" in text and "`{{name}}`" in text, where


def write(folder: Path, text: str) -> Path:
    """An experiment folder around ``text``, with the custom base that HEAD names."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLES / "lr_batch_sweep" / "my_gpu_optimized.yaml", folder / "base.yaml")
    path = folder / "experiment.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def schema_errors(path: Path) -> list[str]:
    return [error.message for error in VALIDATOR.iter_errors(read_yaml_file(path).data)]


ACCEPTED = {
    "the smallest experiment": HEAD,
    "recipe: null and empty optional sections": HEAD.replace(
        "  recipe: lora_finetune_single_device\n", "  recipe: null\n"
    )
    + "variables:\ncontrols:\noutput:\nlaunch:\n",
    "notes, tags and an output name": HEAD.replace(
        "  framework: torchtune\n",
        "  framework: torchtune\n  question: Why?\n  hypothesis:\n  researcher: Alice\n"
        "  date: 2024-01-15\n  tags: [lora, llama3]\n",
    )
    + "output:\n  experiment_name: study-v2.1\n",
    "dotted, aliased and new names, placeholders and a linked group": HEAD
    + """\
variables:
  learning_rate: [1e-4, 3e-4]
  +warmup_ratio: [0.0, null]
  lora_size:
    model.lora_rank: [8, 16, 16]
    lora_alpha: [16, 32, 64]
controls:
  output_dir: /scratch/{run_id}/rank{model.lora_rank}_{{literal}}
  dataset: {packed: true}
""",
    # nproc_per_node needs a recipe that supports it (generate refuses it on a single device).
    "a slurm array with every option": HEAD.replace(
        "lora_finetune_single_device", "lora_finetune_distributed"
    )
    + """\
variables:
  seed: [1, 2, 3]
launch:
  nproc_per_node: 2
  slurm:
    sbatch: {partition: gpu, cpus_per_task: 8, mem-per-cpu: 4G, time: "04:00:00", exclusive: true}
    max_parallel: 2
    setup: ["module load cuda", ""]
""",
    "an empty slurm section": HEAD + "launch:\n  slurm: {}\n",
}


@pytest.mark.parametrize("text", ACCEPTED.values(), ids=ACCEPTED.keys())
def test_what_the_loader_accepts_the_schema_accepts(
    text: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = write(tmp_path / "exp", text)
    assert schema_errors(path) == []
    result = cli("generate", path)
    assert result.code == 0, result.err


# Each mistake: where the schema finds it, and a fragment of the loader's message (so that
# both refuse it for that reason, not another).
REFUSED = {
    "variable: instead of variables:": (
        (),
        HEAD + "variable:\n  lora_rank: [8, 16]\n",
        "unknown section 'variable': did you mean 'variables'?",
    ),
    "a variable that is not a list": (
        ("variables", "lora_rank"),
        HEAD + "variables:\n  lora_rank: 8\n",
        "variables.lora_rank must be a list of the values to sweep",
    ),
    "an empty list of values": (
        ("variables", "lora_rank"),
        HEAD + "variables:\n  lora_rank: []\n",
        "is an empty list",
    ),
    "a value twice": (
        ("variables", "lora_rank"),
        HEAD + "variables:\n  lora_rank: [8, 16, 8]\n",
        "repeats the value 8",
    ),
    "both base_config and base_config_file": (
        ("framework_config", "base_config_file"),
        HEAD.replace("  recipe:", "  base_config: llama3_2/1B_lora_single_device\n  recipe:"),
        "framework_config has both base_config",
    ),
    "neither base_config nor base_config_file": (
        ("framework_config",),
        HEAD.replace("  base_config_file: base.yaml\n", ""),
        "framework_config needs one of base_config",
    ),
    "framework: pytorch": (
        ("experiment", "framework"),
        HEAD.replace("framework: torchtune", "framework: pytorch"),
        "framework 'pytorch' is not supported",
    ),
    "a name that is not a folder name": (
        ("experiment", "name"),
        HEAD.replace("name: study", "name: my/study"),
        "experiment.name 'my/study' becomes a folder name",
    ),
    "an unknown key in experiment": (
        ("experiment",),
        HEAD.replace("  name: study\n", "  name: study\n  author: Bob\n"),
        "unknown key 'author' in experiment",
    ),
    "tags that are not a list": (
        ("experiment", "tags"),
        HEAD.replace("  name: study\n", "  name: study\n  tags: lora\n"),
        "experiment.tags must be a list of text",
    ),
    "a recipe with a space": (
        ("framework_config", "recipe"),
        HEAD.replace("recipe: lora_finetune_single_device", 'recipe: "lora finetune"'),
        "is neither a torchtune recipe name",
    ),
    "a parameter name with a dash": (
        ("controls",),
        HEAD + "controls:\n  lora-rank: 8\n",
        "'lora-rank' is not a parameter name",
    ),
    "a linked group of one member": (
        ("variables", "lora_size"),
        HEAD + "variables:\n  lora_size:\n    lora_rank: [8, 16]\n",
        "variables.lora_size is a mapping, which links the variables in it, but it has only "
        "lora_rank",
    ),
    "a linked group member that is not a list": (
        ("variables", "lora_size"),
        HEAD + "variables:\n  lora_size:\n    lora_rank: [8, 16]\n    lora_alpha: 16\n",
        "every variable of a linked group is a list",
    ),
    "a linked group with a dotted name": (
        ("variables", "model.lora"),
        HEAD + "variables:\n  model.lora:\n    lora_rank: [8, 16]\n    lora_alpha: [16, 32]\n",
        "'model.lora' names a linked group of variables",
    ),
    "launch.slurm.sbatch.array": (
        ("launch", "slurm", "sbatch"),
        HEAD + "launch:\n  slurm:\n    sbatch:\n      array: 0-3\n",
        "the array is written for you",
    ),
    "an sbatch option that is false": (
        ("launch", "slurm", "sbatch", "exclusive"),
        HEAD + "launch:\n  slurm:\n    sbatch:\n      exclusive: false\n",
        "sbatch option exclusive must be text or a number, or true for a flag",
    ),
    "an sbatch option written with its dashes": (
        ("launch", "slurm", "sbatch"),
        HEAD + "launch:\n  slurm:\n    sbatch:\n      --partition: gpu\n",
        "'--partition' is not an sbatch option name",
    ),
    "nproc_per_node: 0": (
        ("launch", "nproc_per_node"),
        HEAD + "launch:\n  nproc_per_node: 0\n",
        "launch.nproc_per_node must be a whole number of at least 1",
    ),
    "max_parallel: true": (
        ("launch", "slurm", "max_parallel"),
        HEAD + "launch:\n  slurm:\n    max_parallel: true\n",
        "launch.slurm.max_parallel must be a whole number of at least 1",
    ),
    "a setup that is one string": (
        ("launch", "slurm", "setup"),
        HEAD + "launch:\n  slurm:\n    setup: module load cuda\n",
        "launch.slurm.setup must be a list of shell lines",
    ),
    "a slurm array for a custom base without its recipe": (
        ("framework_config",),
        HEAD.replace("  recipe: lora_finetune_single_device\n", "") + "launch:\n  slurm: {}\n",
        "a base_config_file does not say which recipe",
    ),
}


@pytest.mark.parametrize(("where", "text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_a_mistake_is_refused_by_the_schema_and_by_the_loader(
    where: tuple[str, ...], text: str, message: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = write(tmp_path / "exp", text)
    errors = list(VALIDATOR.iter_errors(read_yaml_file(path).data))
    assert where in [tuple(error.absolute_path) for error in errors], [e.message for e in errors]
    result = cli("generate", path)
    assert result.code == 2
    assert message in result.err


def test_schema_prints_the_schema_file_exactly(cli: Callable[..., CliResult]) -> None:
    result = cli("schema")
    assert result.code == 0
    assert result.err == ""
    assert result.out == SCHEMA_PATH.read_text(encoding="utf-8")


def test_schema_writes_the_files_bytes_without_importing_torch(tmp_path: Path) -> None:
    script = textwrap.dedent("""
        import sys
        from torchtune_config_writer.cli import main
        code = main(["schema"])
        heavy = ("torch", "torchtune", "torchao")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        sys.exit(code or (3 if loaded else 0))
    """)
    result = python_without_torch(script, cwd=tmp_path, text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCHEMA_PATH.read_bytes()
