"""Bad experiment input is refused through the command line, and nothing on disk changes.

Every case runs ``generate`` on an experiment whose folder already holds a generated
``configs/``, after replacing ``experiment.yaml`` with the bad version, and checks the contract
of the product: exit code 2, nothing on stdout, exactly one ``error:`` line on stderr naming the
file (and the line where the YAML gives one), no traceback, and every file left as it was.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import RECIPE, CliResult, experiment_text, snapshot

HEAD = "experiment:\n  name: study\n  framework: torchtune\n"
BASE = f"framework_config:\n  base_config: {RECIPE}\n"

# A valid experiment: generated first, so that each bad version has a folder it could damage.
VALID = experiment_text(variables="lora_rank: [8, 16]", controls="learning_rate: 0.0002")
# Another valid experiment beside it: its own name and output_dir.
SECOND = VALID.replace("name: study", "name: second") + "  output_dir: /scratch/second\n"
# The line of the first entry of variables or controls in experiment_text() (after its section's
# own line): the table's positions in such experiments count from it.
FIRST = len(experiment_text().splitlines()) + 2


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip()


def listing(folder: Path) -> list[str]:
    """Every file and folder under ``folder``, so that a stray new one is noticed too."""
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def assert_refused(
    result: CliResult, where: str, line: int | None, fragment: str | tuple[str, ...]
) -> str:
    """The one-line refusal of the product; returns the message after the location.

    Args:
        result: What the command line did.
        where: The file the message must name, as shown (relative to the cwd).
        line: The line it must point at, or ``None`` for a path with no position in it (a
            folder, a file of the wrong name).
        fragment: Text the message must contain (or several texts, all of them).
    """
    assert "Traceback" not in result.out + result.err
    assert result.code == 2, result.err
    assert result.out == ""
    assert result.err.endswith("\n")
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    error = lines[0]
    assert error.startswith("error: "), error
    location = f"error: {where}:{line}:" if line is not None else f"error: {where}: "
    assert error.startswith(location), f"expected {location!r} in {error!r}"
    if line is not None:  # file:line:column: message
        column, _, message = error[len(location) :].partition(": ")
        assert column.isdigit(), error
    else:
        message = error[len(location) :]
    for part in (fragment,) if isinstance(fragment, str) else fragment:
        assert part in message, f"expected {part!r} in {error!r}"
    return message


@pytest.fixture
def generated(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
    write_experiment: Callable[..., Path],
) -> Path:
    """``exp/experiment.yaml`` with its ``configs/`` generated; the cwd is ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    path = write_experiment(VALID)
    result = cli("generate", path)
    assert result.code == 0, result.err
    assert (path.parent / "configs" / "run_001.yaml").is_file()
    return path


def generate_bad(
    cli: Callable[..., CliResult], path: Path, text: str | bytes, *options: str
) -> CliResult:
    """Overwrite the generated experiment ``path`` with ``text`` and run ``generate`` on it.

    Asserts that nothing on disk changed: the generated ``configs/`` byte for byte, and no file
    or folder appeared, changed or went anywhere under the cwd (no half-written folder, no file
    made by a command smuggled into the YAML).
    """
    configs = path.parent / "configs"
    generated_files = snapshot(configs)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(dedent(text), encoding="utf-8")
    everything = snapshot(Path.cwd())
    entries = listing(Path.cwd())
    result = cli("generate", path, *options)
    assert snapshot(configs) == generated_files
    assert listing(Path.cwd()) == entries
    assert snapshot(Path.cwd()) == everything
    return result


# (experiment text, line the error points at, a distinctive part of the message)
CASES = [
    # ---- not YAML, or YAML the tool refuses to read ----
    pytest.param(
        """
        experiment:
          name: study: two
          framework: torchtune
        """,
        2,
        "not valid YAML: mapping values are not allowed",
        id="broken-yaml-syntax",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        variables:
          lora_rank: [8, 16
        controls:
          learning_rate: 0.0002
        """,
        7,
        "not valid YAML",
        id="unclosed-flow-list",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        experiment:
          name: other
        """,
        6,
        "duplicate key 'experiment' (first at line 1)",
        id="duplicate-top-level-key",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        controls:
          optimizer:
            lr: 0.0002
            weight_decay: 0.1
            lr: 0.0003
        """,
        10,
        "duplicate key 'lr' (first at line 8)",
        id="duplicate-nested-key",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        ---
        experiment:
          name: second
        """,
        6,
        "a single document",
        id="second-yaml-document",
    ),
    pytest.param(
        experiment_text().replace("name: study", "name: stu\x07dy"),
        2,
        "not allowed",
        id="control-character",
    ),
    pytest.param(
        # 3,000 levels of [[[...]]]: refused where the 101st level opens.
        experiment_text() + "variable: " + "[" * 3000 + "]" * 3000 + "\n",
        6,
        "nested more than 100 levels deep",
        id="deeply-nested-value",
    ),
    pytest.param("", 1, "found an empty file", id="empty-file"),
    pytest.param(
        """
        - experiment
        - variables
        """,
        1,
        "expected the experiment sections (experiment:, variables:, ...), found a list",
        id="list-not-mapping",
    ),
    # ---- sections and keys ----
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        variable:
          lora_rank: [8, 16]
        """,
        6,
        "unknown section 'variable': did you mean 'variables'?",
        id="unknown-section",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
          owner: ada
        framework_config:
          base_config: {RECIPE}
        """,
        4,
        "unknown key 'owner' in experiment",
        id="unknown-key-in-experiment",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
          recipes: lora_finetune_single_device
        """,
        6,
        "unknown key 'recipes' in framework_config: did you mean 'recipe'?",
        id="unknown-key-in-framework-config",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        output:
          base_directory: results
        """,
        7,
        "unknown key 'base_directory' in output: did you mean 'base_dir'?",
        id="unknown-key-in-output",
    ),
    pytest.param(
        f"""
        experiment:
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        """,
        1,
        "experiment.name is required",
        id="missing-name",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
        framework_config:
          base_config: {RECIPE}
        """,
        1,
        "experiment.framework is required",
        id="missing-framework",
    ),
    pytest.param(
        f"""
        framework_config:
          base_config: {RECIPE}
        """,
        1,
        "missing the 'experiment:' section",
        id="missing-experiment-section",
    ),
    pytest.param(
        f"""
        experiment:
          name: study
          framework: inspect
        framework_config:
          base_config: {RECIPE}
        """,
        3,
        "multi-framework support is not in this version",
        id="framework-inspect",
    ),
    pytest.param(
        f"""
        experiment:
          name: ../evil
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
        """,
        2,
        "experiment.name '../evil' becomes a folder name",
        id="unsafe-name",
    ),
    pytest.param(
        experiment_text().replace("name: study", 'name: "evil\\nname"'),
        2,
        "becomes a folder name",
        id="unsafe-name-with-newline",
    ),
    # ---- the base config ----
    pytest.param(
        f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}
          base_config_file: base.yaml
        """,
        6,
        "framework_config has both base_config",
        id="both-base-config-and-file",
    ),
    pytest.param(
        """
        experiment:
          name: study
          framework: torchtune
        framework_config: {}
        """,
        4,
        "framework_config needs one of base_config",
        id="neither-base-config-nor-file",
    ),
    pytest.param(
        """
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: llama3_2/1B_lora_single_devise
        """,
        5,
        "did you mean 'llama3_2/1B_lora_single_device'",
        id="unknown-recipe",
    ),
    pytest.param(
        """
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config_file: configs/missing.yaml
        """,
        5,
        "does not exist",
        id="base-config-file-missing",
    ),
    pytest.param(
        experiment_text(controls="+tags: !!set {lora, llama3}"),
        FIRST,
        "is not allowed",
        id="set-tag",
    ),
    # ---- variables and controls (experiment_text: the section on line 6, entries from 7) ----
    pytest.param(
        experiment_text(variables="lora_rank: 8"),
        FIRST,
        "variables.lora_rank must be a list of the values to sweep",
        id="variable-scalar-not-list",
    ),
    pytest.param(
        experiment_text(variables="lora_rank: []"),
        FIRST,
        "variables.lora_rank is an empty list",
        id="variable-empty-list",
    ),
    pytest.param(
        experiment_text(
            variables="""
            lora_rank:
              - 8
              - 16
              - 8
        """
        ),
        FIRST + 3,
        "variables.lora_rank repeats the value 8 (items 1 and 3)",
        id="variable-repeated-value",
    ),
    pytest.param(
        experiment_text(variables="lora_rank: [8, 16]", controls="lora_rank: 32"),
        FIRST + 2,
        "'lora_rank' is both a variable and a control",
        id="variable-and-control",
    ),
    pytest.param(
        experiment_text(
            variables="learning_rate: [0.0001, 0.0003]",
            controls="""
            optimizer:
              lr: 0.0002
        """,
        ),
        FIRST,
        "both set optimizer.lr",
        id="alias-and-mapping-set-one-key",
    ),
    pytest.param(
        experiment_text(controls="lora_rnk: 8"),
        FIRST,
        "'lora_rnk' is not in the base config: did you mean 'model.lora_rank'?",
        id="unknown-parameter",
    ),
    pytest.param(
        experiment_text(controls="_component_: torch.optim.SGD"),
        FIRST,
        "'_component_' occurs in several places of the base config (model._component_, "
        "tokenizer._component_",
        id="bare-name-in-several-places",
    ),
    pytest.param(
        experiment_text(controls="+clip_grad_norm: 1.0"),
        FIRST,
        "'+clip_grad_norm' adds a new key, but the base config already has clip_grad_norm",
        id="plus-on-existing-key",
    ),
    # ---- types: the message names the key path and both types ----
    pytest.param(
        experiment_text(controls="device: 1.5"),
        FIRST,
        "device is a string in the base (cuda), but the experiment gives a float (1.5)",
        id="float-over-string",
    ),
    pytest.param(
        experiment_text(controls='learning_rate: "fast"'),
        FIRST,
        "optimizer.lr is a float in the base (0.0003), but the experiment gives a string (fast)",
        id="string-over-float",
    ),
    pytest.param(
        experiment_text(controls="batch_size: [4, 8]"),
        FIRST,
        "batch_size is an integer in the base (4), but the experiment gives a list ([4, 8])",
        id="list-over-int",
    ),
    pytest.param(
        experiment_text(controls="dtype: {name: bf16}"),
        FIRST,
        "dtype is a string in the base (bf16), but the experiment gives a mapping",
        id="mapping-over-scalar",
    ),
    pytest.param(
        experiment_text(controls="batch_size: true"),
        FIRST,
        "batch_size is an integer in the base (4), but the experiment gives a boolean (true)",
        id="bool-over-int",
    ),
    pytest.param(
        experiment_text(
            controls="""
            optimizer:
              weight_decay: 0.1
              lr: fast
        """
        ),
        FIRST + 2,
        "optimizer.lr is a float in the base (0.0003), but the experiment gives a string",
        id="type-error-in-nested-control",
    ),
    pytest.param(
        experiment_text(
            variables="""
            lora_rank:
              - 8
              - sixteen
        """
        ),
        FIRST + 2,
        "model.lora_rank is an integer in the base (64), but the experiment gives a string",
        id="type-error-in-variable-value",
    ),
    pytest.param(
        experiment_text(controls="batch_size: [4, 8]"),
        FIRST,
        "batch_size is an integer in the base (4), but the experiment gives a list ([4, 8]): "
        "give an integer",
        id="type-error-wording",
    ),
    # ---- a wrong type or value in every section ----
    pytest.param(
        "experiment: [study, torchtune]\n" + BASE,
        1,
        "'experiment:' must be a mapping of keys, found a list",
        id="section-experiment-is-a-list",
    ),
    pytest.param(
        "experiment:\n  name: 42\n  framework: torchtune\n" + BASE,
        2,
        "experiment.name must be text, found the integer 42",
        id="name-is-a-number",
    ),
    pytest.param(
        "experiment:\n  name: study\n  framework: [torchtune]\n" + BASE,
        3,
        "experiment.framework must be text, found the list [torchtune]",
        id="framework-is-a-list",
    ),
    pytest.param(
        HEAD + "  tags: lora\n" + BASE,
        4,
        "experiment.tags must be a list of text",
        id="tags-is-text",
    ),
    pytest.param(
        HEAD + "  question: {what: rank}\n" + BASE,
        4,
        "experiment.question must be text",
        id="question-is-a-mapping",
    ),
    pytest.param(
        HEAD + "framework_config: llama3_2/1B_lora_single_device\n",
        4,
        "'framework_config:' must be a mapping of keys, found a string",
        id="framework-config-is-text",
    ),
    pytest.param(
        HEAD + "framework_config:\n  base_config: 7\n",
        5,
        "framework_config.base_config must be text, found the integer 7",
        id="base-config-is-a-number",
    ),
    pytest.param(
        HEAD + BASE + "variables: [lora_rank]\n",
        6,
        "'variables:' must be a mapping of keys, found a list",
        id="variables-is-a-list",
    ),
    pytest.param(
        HEAD + BASE + "controls: 5\n",
        6,
        "'controls:' must be a mapping of keys, found an integer",
        id="controls-is-a-number",
    ),
    pytest.param(
        HEAD + BASE + "output: ./outputs\n",
        6,
        "'output:' must be a mapping of keys, found a string",
        id="output-is-text",
    ),
    pytest.param(
        HEAD + BASE + "output:\n  base_dir: 5\n",
        7,
        "output.base_dir must be text, found the integer 5",
        id="output-base-dir-is-a-number",
    ),
    pytest.param(
        HEAD + BASE + "output:\n  experiment_name: ../../elsewhere\n",
        7,
        "output.experiment_name '../../elsewhere' becomes a folder name",
        id="output-name-escapes",
    ),
    pytest.param(
        HEAD + BASE + "variables:\n  lora rank: [8, 16]\n",
        7,
        "'lora rank' is not a parameter name",
        id="parameter-name-with-a-space",
    ),
    pytest.param(
        HEAD + BASE + "variables:\n  lora_rank:\n",
        7,
        "variables.lora_rank must be a list of the values to sweep",
        id="variable-is-null",
    ),
    pytest.param(
        HEAD + "framework_config:\n  base_config_file: .\n",
        5,
        "base_config_file . is a folder",
        id="base-config-file-is-a-folder",
    ),
    # Linked groups: a mapping under variables.
    pytest.param(
        experiment_text(variables="lora:\n  lora_rank: [8, 16, 32]\n  lora_alpha: [16, 32]"),
        FIRST + 2,
        "variables.lora.lora_alpha has 2 values but lora_rank has 3",
        id="linked-unequal-lengths",
    ),
    pytest.param(
        experiment_text(variables="dataset:\n  packed: [true, false]"),
        FIRST,
        (
            "variables.dataset is a mapping, which links the variables in it, but it has only "
            "packed",
            "dataset.packed: [...]",
        ),
        id="linked-group-of-one",
    ),
    pytest.param(
        experiment_text(variables="lora:\n  lora_rank: 8\n  lora_alpha: [16]"),
        FIRST + 1,
        "variables.lora.lora_rank must be a list of the values to sweep",
        id="linked-member-not-a-list",
    ),
    pytest.param(
        experiment_text(variables="lora:\n  lora_rank: [8, 16, 8]\n  lora_alpha: [16, 32, 16]"),
        FIRST + 1,
        "variables.lora repeats the combination (8, 16) (items 1 and 3)",
        id="linked-repeated-combination",
    ),
    pytest.param(
        experiment_text(variables="lora:\n  lora_rank: [8, 16]\n  model.lora_rank: [4, 2]"),
        FIRST + 2,
        "'lora_rank' and 'model.lora_rank' both set model.lora_rank",
        id="linked-members-set-one-key",
    ),
    pytest.param(
        experiment_text(
            variables="lora_rank: [8, 16]\nlora:\n  lora_alpha: [16, 32]\n  lora_rank: [4, 2]"
        ),
        FIRST + 3,
        "'lora_rank' and 'lora_rank' both set model.lora_rank",
        id="linked-member-is-also-a-variable",
    ),
    # Placeholders: {run_id} and {name} of a variable inside strings.
    pytest.param(
        experiment_text(variables="lora_rank: [8, 16]", controls="output_dir: /s/{lora_rnk}"),
        FIRST + 2,
        ("{lora_rnk} names no variable: did you mean {lora_rank}?", "write {{lora_rnk}}"),
        id="placeholder-misspelt",
    ),
    pytest.param(
        experiment_text(controls="output_dir: /s/{epochs}\nepochs: 3"),
        FIRST,
        "{epochs} names no variable: epochs is a control, the same in every run",
        id="placeholder-names-a-control",
    ),
    pytest.param(
        experiment_text(
            variables="lora_rank: [8, 16]",
            controls="dataset:\n  data_files:\n    - /d/{lora_rank}.json\n    - /d/{seed}.json",
        ),
        FIRST + 5,
        "{seed} names no variable",
        id="placeholder-inside-a-list-in-a-mapping",
    ),
    pytest.param(
        experiment_text(
            variables="checkpointer.checkpoint_files: [[a.bin], [b.bin]]",
            controls="output_dir: /s/{checkpointer.checkpoint_files}",
        ),
        FIRST + 2,
        "has the value [a.bin], which cannot go into a string",
        id="placeholder-of-a-list",
    ),
    pytest.param(
        experiment_text(variables="output_dir: ['/a/{output_dir}', /b]"),
        FIRST,
        "{output_dir} is inside a value of output_dir itself",
        id="placeholder-of-itself",
    ),
    pytest.param(
        experiment_text(
            variables="output_dir: ['/a/{run_id}', /b]\nmetric_logger.log_dir: ['{output_dir}']"
        ),
        FIRST + 1,
        "the values of output_dir hold placeholders themselves",
        id="placeholder-of-a-placeholder",
    ),
    pytest.param(
        experiment_text(variables="+run_id: [a, b]"),
        FIRST,
        "a variable may not be named run_id",
        id="variable-named-run-id",
    ),
    pytest.param(
        experiment_text(variables="profiler:\n  enabled: [true, false]\n  output_dir: [/a, /b]"),
        FIRST,
        "variables.profiler links the variables in it, but profiler is also a key of the base",
        id="linked-group-named-after-a-config-key",
    ),
    # Launching: framework_config.recipe and the launch section.
    pytest.param(
        experiment_text(base=f"base_config: {RECIPE}\n  recipe: 5"),
        FIRST - 1,
        "framework_config.recipe must be text, found the integer 5",
        id="recipe-is-a-number",
    ),
    pytest.param(
        experiment_text(base=f"base_config: {RECIPE}\n  recipe: lora finetune"),
        FIRST - 1,
        "framework_config.recipe 'lora finetune' is neither a torchtune recipe name",
        id="recipe-with-a-space",
    ),
    pytest.param(
        experiment_text() + "launch: 5\n",
        FIRST - 1,
        "'launch:' must be a mapping of keys, found an integer",
        id="launch-is-a-number",
    ),
    pytest.param(
        experiment_text() + "launch:\n  slurm: []\n",
        FIRST,
        "launch.slurm must be a mapping (sbatch:, max_parallel:, setup:), found a list",
        id="launch-slurm-is-a-list",
    ),
    pytest.param(
        experiment_text() + "launch:\n  slurm:\n    partition: gpu\n",
        FIRST + 1,
        "unknown key 'partition' in launch.slurm",
        id="launch-slurm-option-outside-sbatch",
    ),
    pytest.param(
        experiment_text() + "launch:\n  slurm:\n    sbatch:\n      array: 0-3\n",
        FIRST + 2,
        "the array is written for you, one task per run: remove array",
        id="launch-sbatch-array",
    ),
    pytest.param(
        experiment_text() + "launch:\n  slurm:\n    sbatch:\n      time: [1, 2]\n",
        FIRST + 2,
        "sbatch option time must be text or a number, or true for a flag",
        id="launch-sbatch-value-is-a-list",
    ),
    pytest.param(
        experiment_text() + "launch:\n  nproc_per_node: 0\n",
        FIRST,
        "launch.nproc_per_node must be a whole number of at least 1",
        id="launch-nproc-zero",
    ),
    pytest.param(
        experiment_text() + "launch:\n  slurm:\n    setup: module load cuda\n",
        FIRST + 1,
        "launch.slurm.setup must be a list of shell lines",
        id="launch-setup-is-text",
    ),
]


@pytest.mark.parametrize(("text", "line", "fragment"), CASES)
def test_bad_experiment_is_refused_and_nothing_changes(
    generated: Path,
    cli: Callable[..., CliResult],
    text: str,
    line: int,
    fragment: str | tuple[str, ...],
) -> None:
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", line, fragment)


def test_python_tag_is_refused_and_not_run(generated: Path, cli: Callable[..., CliResult]) -> None:
    tag = '!!python/object/apply:os.system ["echo hi > pwned.txt"]'
    text = experiment_text(controls=f"+note: {tag}")
    result = generate_bad(cli, generated, text)
    assert_refused(
        result,
        "exp/experiment.yaml",
        7,
        (
            "the tag !!python/object/apply:os.system is not allowed",
            "write plain YAML values",
        ),
    )
    assert not list(Path.cwd().rglob("pwned.txt"))


# Billion laughs: nine levels of nine aliases, 387 million strings if expanded.
BOMB = (
    "\n".join(
        ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
        + [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    )
    + "\n"
)


def test_alias_bomb_is_refused_before_it_is_expanded(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    # Expanded, it would be 9**9 strings: this test would not end (speed lives in benchmarks/).
    result = generate_bad(cli, generated, BOMB)
    # Pointed at the key that holds the expansion: a8, on line 9.
    assert_refused(result, "exp/experiment.yaml", 9, "refused as an alias bomb")


def test_alias_bomb_points_at_the_bomb(generated: Path, cli: Callable[..., CliResult]) -> None:
    # After a valid experiment (9 lines) the bomb runs from line 10; a8 holds it, on line 18.
    result = generate_bad(cli, generated, VALID + BOMB)
    assert_refused(result, "exp/experiment.yaml", 18, "refused as an alias bomb")


def test_not_utf8_points_at_the_byte(generated: Path, cli: Callable[..., CliResult]) -> None:
    # A Latin-1 "café" in a comment on line 3: the byte 0xe9 is the line's 29th.
    text = VALID.encode().replace(b"framework: torchtune", b"framework: torchtune # caf\xe9")
    result = generate_bad(cli, generated, text)
    assert_refused(
        result, "exp/experiment.yaml", 3, "not UTF-8 (byte 0xe9): save the file as UTF-8"
    )
    assert result.err.startswith("error: exp/experiment.yaml:3:29: ")


# ---- a base_config_file that is not a config: the message names that file ----


def test_base_config_file_that_is_a_list(generated: Path, cli: Callable[..., CliResult]) -> None:
    (generated.parent / "base.yaml").write_text("- lr: 0.1\n- lr: 0.2\n", encoding="utf-8")
    result = generate_bad(cli, generated, experiment_text(base="base_config_file: base.yaml"))
    assert_refused(
        result,
        "exp/base.yaml",
        1,
        "a base config must be a mapping of keys, but this one is a list",
    )


def test_base_config_file_that_is_empty(generated: Path, cli: Callable[..., CliResult]) -> None:
    (generated.parent / "base.yaml").write_text("# nothing yet\n", encoding="utf-8")
    result = generate_bad(cli, generated, experiment_text(base="base_config_file: base.yaml"))
    assert_refused(
        result, "exp/base.yaml", 1, "a base config must be a mapping of keys, but this one is empty"
    )


def test_base_config_file_that_is_not_yaml(generated: Path, cli: Callable[..., CliResult]) -> None:
    (generated.parent / "base.yaml").write_text("lr: 0.1\nmodel: {rank: 8\n", encoding="utf-8")
    result = generate_bad(cli, generated, experiment_text(base="base_config_file: base.yaml"))
    assert_refused(result, "exp/base.yaml", 2, "the flow mapping that starts here is not closed")


# ---- the run limit: checked before any other work (the base is never looked at) ----


def values(count: int) -> str:
    """A YAML list of ``count`` different integers."""
    return "[" + ", ".join(str(n) for n in range(1, count + 1)) + "]"


def test_sweep_over_the_default_limit(generated: Path, cli: Callable[..., CliResult]) -> None:
    # 11 × 10 × 10 = 1,100 runs, with other mistakes that only the base would show: a recipe
    # that does not exist, a parameter that is in no base, a value of the wrong type.
    text = experiment_text(
        base="base_config: llama3_2/no_such_recipe",
        variables=f"lora_rank: {values(11)}\nseed: {values(10)}\nnot_a_key: {values(10)}",
        controls="batch_size: many",
    )
    result = generate_bad(cli, generated, text)
    assert_refused(
        result,
        "exp/experiment.yaml",
        6,
        (
            "the variables give 1,100 runs (11 × 10 × 10), more than the limit of 1,000",
            "--max-runs",
        ),
    )


def test_huge_sweep_is_refused_without_enumerating_it(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    # Enumerated, 10**12 runs would not end: the count is refused before any run is made.
    text = experiment_text(variables="\n".join(f"v{i}: {values(1000)}" for i in range(4)))
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", 6, "give 1,000,000,000,000 runs")


def test_sweep_over_a_lower_max_runs(generated: Path, cli: Callable[..., CliResult]) -> None:
    text = experiment_text(
        base="base_config_file: no/such/base.yaml",
        variables="lora_rank: [8, 16]\nseed: [1, 2]",
    )
    result = generate_bad(cli, generated, text, "--max-runs", "3")
    assert_refused(
        result,
        "exp/experiment.yaml",
        6,
        (
            "the variables give 4 runs (2 × 2), more than the limit of 3",
            "--max-runs",
        ),
    )


# ---- which file: an experiment file is found and is named experiment.yaml ----


def test_experiment_file_with_another_name(generated: Path, cli: Callable[..., CliResult]) -> None:
    other = generated.with_name("study.yaml")
    other.write_text(VALID, encoding="utf-8")
    everything = snapshot(Path.cwd())
    entries = listing(Path.cwd())
    result = cli("generate", other)
    assert_refused(result, "exp/study.yaml", None, "experiment files are named experiment.yaml")
    assert listing(Path.cwd()) == entries
    assert snapshot(Path.cwd()) == everything


def test_folder_without_an_experiment_file(generated: Path, cli: Callable[..., CliResult]) -> None:
    (Path.cwd() / "empty").mkdir()
    everything = snapshot(Path.cwd())
    entries = listing(Path.cwd())
    result = cli("generate", "empty")
    assert_refused(result, "empty", None, "has no experiment.yaml")
    assert listing(Path.cwd()) == entries
    assert snapshot(Path.cwd()) == everything


def test_folder_with_two_experiment_files(generated: Path, cli: Callable[..., CliResult]) -> None:
    generated.with_name("experiment.yml").write_text(VALID, encoding="utf-8")
    everything = snapshot(Path.cwd())
    entries = listing(Path.cwd())
    result = cli("generate", "exp")
    assert_refused(result, "exp", None, "has both experiment.yaml and experiment.yml")
    assert listing(Path.cwd()) == entries
    assert snapshot(Path.cwd()) == everything


def test_experiment_path_that_does_not_exist(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    entries = listing(Path.cwd())
    result = cli("generate", "nowhere/experiment.yaml")
    assert_refused(result, "nowhere/experiment.yaml", None, "file not found")
    assert listing(Path.cwd()) == entries


# ---- several experiments on one command line: all are checked before any is written ----


def test_a_bad_second_experiment_stops_the_first_from_being_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
    write_experiment: Callable[..., Path],
) -> None:
    monkeypatch.chdir(tmp_path)
    first = write_experiment(VALID, folder="first")
    second = write_experiment(SECOND, folder="second")
    assert cli("generate", first, second).code == 0
    # The first changes validly (a third run), the second breaks.
    first.write_text(experiment_text(variables="lora_rank: [8, 16, 32]"), encoding="utf-8")
    second.write_text(experiment_text(controls="lora_rnk: 8"), encoding="utf-8")
    everything = snapshot(tmp_path)
    entries = listing(tmp_path)
    result = cli("generate", first, second)
    assert_refused(result, "second/experiment.yaml", 7, "did you mean 'model.lora_rank'?")
    assert listing(tmp_path) == entries
    assert snapshot(tmp_path) == everything
    assert not (tmp_path / "first" / "configs" / "run_002.yaml").exists()


def test_a_second_experiment_whose_configs_is_a_file_stops_the_first(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cli: Callable[..., CliResult],
    write_experiment: Callable[..., Path],
) -> None:
    monkeypatch.chdir(tmp_path)
    first = write_experiment(VALID, folder="first")
    second = write_experiment(SECOND, folder="second")
    (second.parent / "configs").write_text("not a folder\n")
    everything = snapshot(tmp_path)
    result = cli("generate", first, second)
    assert_refused(result, "second/configs", None, "is a file where the generated folder goes")
    assert snapshot(tmp_path) == everything and not (tmp_path / "first" / "configs").exists()


# ---- what the review found: each once gave a traceback, a crash or a wrong position ----


def test_flow_nesting_that_would_crash_libyaml_is_refused_at_its_line(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    # libyaml recurses in C while building nodes: 30,000 levels ended in a segfault.
    # The 101st "[" stands at column 7 + 100 of "  +x: [[[...".
    text = experiment_text(controls="+x: " + "[" * 30_000 + "]" * 30_000)
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", 7, "nested more than 100 levels deep")
    assert result.err.startswith("error: exp/experiment.yaml:7:107: ")


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("framework_config:\n  base_config_file: ~nosuchuser/base.yaml\n", 5),
        (f"framework_config:\n  base_config: {RECIPE}\noutput:\n  base_dir: ~nosuchuser/out\n", 7),
    ],
    ids=["base-config-file", "output-base-dir"],
)
def test_a_home_folder_of_no_user_is_refused(
    generated: Path, cli: Callable[..., CliResult], section: str, line: int
) -> None:
    text = "experiment:\n  name: study\n  framework: torchtune\n" + section
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", line, "cannot expand '~nosuchuser/")


def test_a_base_config_file_name_too_long_for_the_file_system(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    text = experiment_text(base=f"base_config_file: {'b' * 300}.yaml")
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", 5, "cannot read base_config_file bbb")


def test_an_experiment_path_too_long_for_the_file_system(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("generate", "x" * 5000)
    assert_refused(result, "x" * 5000, None, "cannot read: File name too long")


@pytest.mark.parametrize(
    ("entry", "key"),
    [("model: {null: 1}", "null"), ("dataset: {1: a}", "1"), ("dataset: {yes: a}", "yes")],
)
def test_keys_that_are_not_text_are_refused(
    generated: Path, cli: Callable[..., CliResult], entry: str, key: str
) -> None:
    # OmegaConf refuses a null key, and would read 1 and '1' as two different keys.
    result = generate_bad(cli, generated, experiment_text(controls=entry))
    assert_refused(result, "exp/experiment.yaml", 7, f"a key must be text: quote it ('{key}')")


def test_a_control_character_after_wide_characters_is_placed_in_characters(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    # libyaml reports a byte offset; the message counts characters, as editors do.
    text = experiment_text().replace("name: study", "name: " + "€" * 10 + "\x01")
    result = generate_bad(cli, generated, text)
    assert_refused(result, "exp/experiment.yaml", 2, "the character #x0001 is not allowed")
    assert result.err.startswith("error: exp/experiment.yaml:2:19: ")


@pytest.mark.parametrize(
    ("entry", "kind"),
    [("dataset:\n  ? [a, b]\n  : 1", "a list"), ("dataset:\n  ? {a: 1}\n  : 1", "a mapping")],
)
def test_a_complex_key_is_refused_in_the_users_terms(
    generated: Path, cli: Callable[..., CliResult], entry: str, kind: str
) -> None:
    result = generate_bad(cli, generated, experiment_text(controls=entry))
    assert_refused(
        result,
        "exp/experiment.yaml",
        8,
        f"a key must be a plain name, not {kind}: write the key as text",
    )
    assert "Node(" not in result.err


@pytest.mark.parametrize("command", ["check", "validate"])
def test_a_path_argument_too_long_for_the_file_system_is_one_error(
    cli: Callable[..., CliResult], command: str
) -> None:
    result = cli(command, "x" * 300)
    assert_refused(result, "x" * 300, None, "cannot read: File name too long")


def test_a_recipe_file_name_too_long_for_the_file_system_is_one_error(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    name = "r" * 300 + ".py"
    path = write_experiment(experiment_text(base=f"base_config: {RECIPE}\n  recipe: {name}"))
    result = cli("generate", path)
    assert_refused(
        result, str(path), 6, f"cannot read framework_config.recipe {name}: File name too long"
    )


# ---- messages in the user's terms ----


@pytest.mark.parametrize(
    "where", ["  name: study\n\tframework: torchtune\n", "  name: study\n \tframework: torchtune\n"]
)
def test_a_tab_in_the_indentation_is_named_with_its_line_and_column(
    generated: Path, cli: Callable[..., CliResult], where: str
) -> None:
    text = experiment_text().replace("  name: study\n  framework: torchtune\n", where)
    result = generate_bad(cli, generated, text)
    column = where.splitlines()[1].index("\t") + 1
    message = assert_refused(result, "exp/experiment.yaml", 3, "a tab in the indentation")
    assert result.err.startswith(f"error: exp/experiment.yaml:3:{column}: ")
    assert "replace the tab with spaces" in message


def test_a_name_that_is_not_ascii_says_ascii_and_suggests_a_spelling(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    text = experiment_text().replace("name: study", "name: étude_lr")
    result = generate_bad(cli, generated, text)
    assert_refused(
        result,
        "exp/experiment.yaml",
        2,
        ("has 'é', which is not ASCII", "use ASCII letters", "(e.g. 'etude_lr')"),
    )


@pytest.mark.needs_torchtune
def test_a_recipe_named_as_base_config_is_said_to_be_a_recipe_with_its_configs(
    generated: Path, cli: Callable[..., CliResult]
) -> None:
    text = experiment_text(base="base_config: lora_dpo_single_device")
    result = generate_bad(cli, generated, text)
    assert_refused(
        result,
        "exp/experiment.yaml",
        5,
        (
            "'lora_dpo_single_device' is a torchtune recipe, and base_config names a recipe "
            "config: one of its configs (",
            "llama3_1/8B_lora_dpo_single_device",
        ),
    )


@pytest.mark.parametrize(
    ("control", "hint"),
    [
        ("optimizer.learning_rate: 1.0e-4", "did you mean 'optimizer.lr'?"),
        ("optimizer.weight_decai: 0.1", "did you mean 'optimizer.weight_decay'?"),
        ("loss.beta: 0.1", "loss has _component_."),
    ],
)
def test_a_misspelt_key_under_a_known_parent_is_matched_among_that_parents_keys(
    generated: Path, cli: Callable[..., CliResult], control: str, hint: str
) -> None:
    result = generate_bad(cli, generated, experiment_text(controls=control))
    message = assert_refused(result, "exp/experiment.yaml", 7, hint)
    assert "did you mean 'loss'" not in message and "did you mean 'learning_rate'" not in message


@pytest.mark.needs_torchtune
@pytest.mark.parametrize("name", ["lora_rank", "model.lora_rank", "model.lora_attn_modules"])
def test_a_lora_argument_on_a_full_finetune_config_suggests_the_lora_config_of_that_model(
    generated: Path, cli: Callable[..., CliResult], name: str
) -> None:
    text = experiment_text(
        base="base_config: llama3_2/1B_full_single_device", controls=f"{name}: 8"
    )
    result = generate_bad(cli, generated, text)
    message = assert_refused(
        result,
        "exp/experiment.yaml",
        7,
        "use a LoRA config of the same model (llama3_2/1B_lora_single_device) as base_config",
    )
    assert f"'+{name}'" not in message
