"""The JSON Schema of experiment.yaml accepts what the loader accepts and refuses its mistakes."""

from __future__ import annotations

import json
import re
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
from torchtune_config_writer import yaml_read
from torchtune_config_writer.errors import ConfigWriterError
from torchtune_config_writer.experiment import launch
from torchtune_config_writer.experiment import load as experiment
from torchtune_config_writer.yaml_read import Replace, parse_yaml, read_yaml_file
from torchtune_config_writer.yaml_safety import REPLACE_TAG

from .conftest import EXAMPLES, CliResult, python_without_torch
from .test_meaning import forms_table

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


def test_schema_writes_the_files_bytes_without_importing_torch_or_jsonschema(
    tmp_path: Path,
) -> None:
    script = textwrap.dedent("""
        import sys
        from torchtune_config_writer.cli import main
        code = main(["schema"])
        heavy = ("torch", "torchtune", "torchao", "jsonschema")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        sys.exit(code or (3 if loaded else 0))
    """)
    result = python_without_torch(script, cwd=tmp_path, text=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == SCHEMA_PATH.read_bytes()


# --- schema --check: the schema on files read as the tool reads them -------------------------


def test_schema_check_accepts_every_example(cli: Callable[..., CliResult]) -> None:
    assert len(EXAMPLE_FILES) >= 2  # found, not listed
    result = cli("schema", "--check", *EXAMPLE_FILES)
    assert (result.code, result.err) == (0, "")
    assert result.out.endswith(f" {len(EXAMPLE_FILES)} experiment files match the schema\n")
    assert len(result.out.splitlines()) == 1
    assert cli("schema", "-q", "--check", *EXAMPLE_FILES) == CliResult(0, "", "")


def test_schema_check_takes_a_folder_as_generate_does(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    for name in ("experiment.yaml", "experiment.yml"):
        folder = tmp_path / name.replace(".", "_")
        write(folder, HEAD).rename(folder / name)
        result = cli("schema", "--check", folder)
        assert (result.code, result.err) == (0, "")
        assert result.out.endswith(" 1 experiment file matches the schema\n")
    # A folder and its own file are one experiment file.
    result = cli("schema", "--check", folder, folder / "experiment.yml")
    assert result.out.endswith(" 1 experiment file matches the schema\n")


@pytest.mark.parametrize(
    "missing",
    ["nowhere/experiment.yaml", "empty_folder"],
)
def test_schema_check_of_a_path_without_an_experiment_is_one_error_line(
    missing: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty_folder").mkdir()
    result = cli("schema", "--check", missing)
    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"error: {missing}: ")
    assert len(result.err.splitlines()) == 1


# Every form of the tag, in every place the format takes it (the table "Where each form works"
# of docs/experiment-format.md): what the loader accepts, schema --check accepts.
SGD = "{_component_: torch.optim.SGD, lr: 0.1}"
TAGGED = {
    ("controls", "block style"): HEAD
    + "controls:\n  optimizer: !replace\n    _component_: torch.optim.SGD\n    lr: 0.1\n",
    ("controls", "flow style"): HEAD + f"controls:\n  optimizer: !replace {SGD}\n",
    ("controls", "empty"): HEAD + "controls:\n  optimizer: !replace {}\n",
    ("controls", "the verbatim tag"): HEAD + f"controls:\n  optimizer: !<!replace> {SGD}\n",
    ("controls", "deep inside a value"): HEAD + "controls:\n  +custom: {inner: !replace {a: 1}}\n",
    ("variables", "flow and block"): HEAD
    + f"variables:\n  optimizer:\n    - !replace {SGD}\n    - !replace\n      lr: 0.2\n",
    ("variables", "anchored, matched through its alias by exclude and when"): HEAD
    + f"variables:\n  optimizer: [&sgd !replace {SGD}, {{lr: 0.2}}]\n  seed: [1, 2]\n"
    "exclude:\n  - {optimizer: *sgd, seed: 2}\n"
    "conditions:\n  - when: {optimizer: *sgd}\n    set: {batch_size: 2}\n",
    ("linked groups", "a member's value"): HEAD
    + f"variables:\n  pair:\n    seed: [1, 2]\n    optimizer: [!replace {SGD}, {{lr: 0.2}}]\n",
    ("conditions", "in set"): HEAD
    + f"variables:\n  seed: [1, 2]\nconditions:\n  - when: {{seed: 1}}\n"
    f"    set:\n      optimizer: !replace {SGD}\n",
}


def test_every_place_the_format_takes_replace_is_tried() -> None:
    table = forms_table()
    takes = {place for (place, form), works in table.items() if form == "!replace" and works}
    assert {place for place, _ in TAGGED} == takes


@pytest.mark.parametrize("text", TAGGED.values(), ids=[": ".join(key) for key in TAGGED])
def test_schema_check_accepts_replace_wherever_the_loader_does(
    text: str, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    path = write(tmp_path / "exp", text)
    assert any(isinstance(value, Replace) for value in all_values(read_yaml_file(path).data))
    result = cli("schema", "--check", path)
    assert (result.code, result.err) == (0, ""), result.err
    assert cli("generate", path).code == 0


def all_values(data: Any) -> Iterator[Any]:
    yield data
    children = data.values() if isinstance(data, dict) else data if isinstance(data, list) else []
    for child in children:
        yield from all_values(child)


# Mistakes, each line as schema --check prints it: file:line:column, what, what to do.
MISPLACED = "!replace works on config values (under controls, variables, conditions and exclude)"
VIOLATIONS = {
    "a wrong key, misspelt": (
        HEAD.replace("  name: study\n", "  name: study\n  max_run: 5\n"),
        ["3:3: unknown key 'max_run' in experiment: did you mean 'max_runs'?"],
    ),
    "a wrong type under a !replace the schema checks": (
        HEAD + "evaluation: !replace\n  tasks: truthfulqa_mc2\n  limit: 0\n",
        [
            f"7:1: {MISPLACED}, not on evaluation: drop the tag",
            "8:3: evaluation.tasks is 'truthfulqa_mc2', expected a list",
            "9:3: evaluation.limit is the integer 0: give more than 0",
        ],
    ),
    "a wrong key under a !replace on a section": (
        HEAD + "controls: !replace\n  seed: 1\n  lora-rank: 8\n",
        [
            f"7:1: {MISPLACED}, not on controls: drop the tag",
            "9:3: controls has the key 'lora-rank', which is not allowed: not a parameter name: "
            "write a config key such as lora_rank, a dotted path such as optimizer.lr, +name to "
            "add a new key, or ~name to delete one",
        ],
    ),
    "!replace on a linked group whose member is no list": (
        HEAD + "variables:\n  pair: !replace\n    seed: [1, 2]\n    batch_size: 4\n",
        [
            f"8:3: {MISPLACED}, not on variables.pair: drop the tag",
            "10:5: variables.pair.batch_size is the integer 4, expected a list: every variable "
            "of a linked group is a list of values, e.g. [8, 16]",
        ],
    ),
    "!replace where a variable's list belongs": (
        HEAD + "variables:\n  optimizer: !replace {lr: 0.1}\n",
        [
            "8:3: variables.optimizer has 1 key (lr): a linked group has at least 2",
            f"8:3: {MISPLACED}, not on variables.optimizer: drop the tag",
            "8:24: variables.optimizer.lr is the float 0.1, expected a list: every variable of a "
            "linked group is a list of values, e.g. [8, 16]",
        ],
    ),
    "!replace on a rule": (
        HEAD + "variables:\n  seed: [1, 2]\nconditions:\n  - when: !replace {seed: 1}\n"
        "    set: {batch_size: 2}\n",
        [f"10:5: {MISPLACED}, not on conditions.0.when: drop the tag"],
    ),
    "!replace in launch, on a mapping the schema refuses a key of": (
        HEAD.replace("single_device", "distributed")
        + "launch:\n  slurm:\n    sbatch: !replace {partition: gpu, array: 0-3}\n",
        [
            f"9:5: {MISPLACED}, not on launch.slurm.sbatch: drop the tag",
            "9:39: launch.slurm.sbatch may not have the key 'array': a mapping of sbatch "
            'options, e.g. {partition: gpu, time: "04:00:00"}, without array: the array is '
            "written for you, one task per run (launch.slurm.max_parallel limits how many run "
            "at once)",
        ],
    ),
    "an sbatch value of no type it takes": (
        HEAD + "launch:\n  slurm:\n    sbatch:\n      exclusive: false\n",
        [
            "10:7: launch.slurm.sbatch.exclusive is the boolean false, expected text, a number "
            "or true"
        ],
    ),
    "no base": (
        HEAD.replace("  base_config_file: base.yaml\n", ""),
        ["4:1: framework_config needs one of base_config and base_config_file: give exactly one"],
    ),
    "!replace before a list": (
        HEAD + "controls:\n  model: !replace [1, 2]\n",
        ["8:10: !replace takes a mapping: it replaces the base's mapping there whole"],
    ),
    "a tag the format does not have": (
        HEAD + "controls:\n  ~profiler: !delete\n",
        ["8:14: the tag !delete is not allowed"],
    ),
}


@pytest.mark.parametrize(("text", "lines"), VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_schema_check_reports_each_violation_at_its_line_and_column(
    text: str,
    lines: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "exp", text)
    before = sorted(tmp_path.rglob("*"))
    result = cli("schema", "--check", "exp")
    assert (result.code, result.out) == (2, "")
    reported = result.err.splitlines()
    assert len(reported) == len(lines), result.err
    for line, wanted in zip(reported, lines, strict=True):
        assert line.startswith(f"error: exp/experiment.yaml:{wanted}"), result.err
    assert sorted(tmp_path.rglob("*")) == before


def test_schema_check_reports_every_file_and_checks_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a", HEAD + "controls: {batch_size: 2}\nvariables:\n  seed: 1\n")
    write(tmp_path / "b", HEAD)
    write(tmp_path / "c", HEAD.replace("framework: torchtune", "framework: pytorch"))
    result = cli("schema", "--check", "a", "b", "c", "d")
    assert (result.code, result.out) == (2, "")
    assert [line.split(": ", 2)[1] for line in result.err.splitlines()] == [
        "a/experiment.yaml:9:3",
        "c/experiment.yaml:3:3",
        "d",
    ]


@pytest.mark.parametrize(("where", "text", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_schema_check_refuses_what_the_schema_refuses_on_one_line_each(
    where: tuple[str, ...],
    text: str,
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path / "exp", text)
    result = cli("schema", "--check", "exp")
    assert (result.code, result.out) == (2, "")
    positions = read_yaml_file(path).positions
    # At the key path the schema names, or at a key under it (the one that is wrong).
    at = {positions[key] for key in positions if key[: len(where)] == where}
    lines = [
        re.match(r"error: exp/experiment\.yaml:(\d+):(\d+): ", line)
        for line in result.err.splitlines()
    ]
    assert lines and all(lines), result.err
    assert lines[0] and (int(lines[0][1]), int(lines[0][2])) in at, result.err


def test_the_editor_settings_list_every_tag_the_loader_reads() -> None:
    """docs/editor-support.md's yaml.customTags names each tag of the loader with each kind of
    node it takes, as yaml-language-server spells them ("!tag mapping")."""
    tags = [tag for tag in yaml_read._Loader.yaml_constructors if str(tag).startswith("!")]
    assert REPLACE_TAG in tags
    samples = {"mapping": "{a: 1}", "sequence": "[1]", "scalar": "text"}
    read = set()
    for tag in tags:
        for kind, sample in samples.items():
            try:
                parse_yaml(f"key: {tag} {sample}\n".encode(), Path("tags.yaml"))
            except ConfigWriterError:
                continue
            read.add(f"{tag} {kind}")
    page = (Path(__file__).parent.parent / "docs" / "editor-support.md").read_text()
    settings = [
        json.loads(block)
        for block in re.findall(r"```json\n(.*?)```", page, re.S)
        if "yaml.customTags" in block
    ]
    assert settings and all(set(s["yaml.customTags"]) == read for s in settings), read


def test_the_schema_tells_where_replace_works() -> None:
    """Hovering a config value's place says what !replace does there."""
    sections = SCHEMA["properties"]
    places = [
        sections["controls"],
        sections["controls"]["additionalProperties"],
        SCHEMA["definitions"]["sweep"],
        SCHEMA["definitions"]["linkedGroup"]["additionalProperties"],
        sections["conditions"]["items"]["properties"]["set"],
    ]
    for place in places:
        assert "!replace {...}" in place["description"]
        assert "`!replace {...}`" in place["markdownDescription"]


def test_the_hooks_check_never_imports_jsonschema(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES / "lr_search", tmp_path / "lr_search")
    script = textwrap.dedent("""
        import sys
        from torchtune_config_writer.cli import main
        code = main(["check", "lr_search"])
        print(code, sorted(m for m in sys.modules if m.split(".")[0] == "jsonschema"))
    """)
    result = python_without_torch(script, cwd=tmp_path)
    assert result.stdout.splitlines()[-1] == "0 []", result.stdout + result.stderr
