"""Every generated file means exactly what the experiment says, or generate says why not.

Each test drives the command line on an experiment a user could write, and reads what was
written the way torchtune reads it (OmegaConf) or the way the SLURM script would run it.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from .conftest import CliResult, experiment_text, mapping_of, runs_of

Write = Callable[..., Path]
Cli = Callable[..., CliResult]


def generated(cli: Cli, path: Path) -> list[dict[str, Any]]:
    result = cli("generate", path)
    assert result.code == 0, result.err
    return runs_of(path)


def refused(cli: Cli, path: Path, *said: str) -> str:
    before = sorted(p.name for p in path.parent.rglob("*"))
    result = cli("generate", path)
    assert result.code == 2, result.out
    assert result.err.startswith("error: "), result.err
    for words in said:
        assert words in result.err, result.err
    assert sorted(p.name for p in path.parent.rglob("*")) == before  # nothing written
    return result.err


# --- 1. !replace and ~key wherever a mapping value is written --------------------------------

SGD = "{_component_: torch.optim.SGD, lr: 0.1}"


@pytest.mark.parametrize(
    "variables",
    [
        f"optimizer: [!replace {SGD}, {{lr: 0.001}}]",  # flow
        """
        optimizer:
          - !replace
            _component_: torch.optim.SGD
            lr: 0.1
          - {lr: 0.001}
        """,  # block
        f"""
        pair:
          optimizer: [!replace {SGD}, {{lr: 0.001}}]
          seed: [1, 2]
        """,  # a linked group
    ],
)
@pytest.mark.parametrize("placeholders", [False, True])
def test_a_variables_replace_swaps_the_mapping_whole(
    write_experiment: Write, cli: Cli, variables: str, placeholders: bool
) -> None:
    controls = "output_dir: /scratch/{run_id}" if placeholders else "output_dir: /scratch/x"
    path = write_experiment(experiment_text(variables=variables, controls=controls))
    first, second = generated(cli, path)[:2]
    assert first["optimizer"] == {"_component_": "torch.optim.SGD", "lr": 0.1}  # no fused
    assert second["optimizer"]["fused"] is True and second["optimizer"]["lr"] == 0.001


def test_a_variables_deletion_deletes_in_its_runs_only(write_experiment: Write, cli: Cli) -> None:
    variables = "lr_scheduler: [{~num_warmup_steps: }, {num_warmup_steps: 5}]"
    path = write_experiment(
        experiment_text(variables=variables, controls="output_dir: /s/{run_id}")
    )
    first, second = generated(cli, path)
    assert "num_warmup_steps" not in first["lr_scheduler"]
    assert second["lr_scheduler"]["num_warmup_steps"] == 5


# --- 2. +key inside a mapping value ----------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "text"),
    [
        ("controls", "optimizer: {+amsgrad: true}"),
        ("variables", "optimizer: [{+amsgrad: true}, {+amsgrad: false}]"),
        ("controls", "+custom: {+enabled: true, +nested: {+deep: 1}}"),
    ],
)
def test_a_plus_key_inside_a_mapping_adds_the_key_itself(
    write_experiment: Write, cli: Cli, section: str, text: str
) -> None:
    path = write_experiment(experiment_text(**{section: text}))
    for run in generated(cli, path):
        written = yaml.safe_dump(run)
        assert "+" not in written.replace("+0", "")
    if "amsgrad" in text:
        assert runs_of(path)[0]["optimizer"]["amsgrad"] is True
    else:
        assert runs_of(path)[0]["custom"] == {"enabled": True, "nested": {"deep": 1}}


def test_a_plus_key_the_base_has_already_is_refused(write_experiment: Write, cli: Cli) -> None:
    path = write_experiment(experiment_text(controls="optimizer: {+lr: 0.1}"))
    refused(cli, path, "optimizer.+lr adds lr, but optimizer has lr in the base already")


# --- 3. placeholders --------------------------------------------------------------------------


def test_a_placeholder_with_a_format_spec_is_refused(write_experiment: Write, cli: Cli) -> None:
    path = write_experiment(
        experiment_text(variables="lora_rank: [8, 16]", controls="output_dir: /s/r{lora_rank:03d}")
    )
    refused(cli, path, "{lora_rank:03d}: a placeholder is a name alone", "write {lora_rank}")


@pytest.mark.parametrize("value", ["/data/a.json", "a/b", "..", "."])
def test_a_value_that_is_no_folder_name_is_refused_in_an_output_folder(
    write_experiment: Write, cli: Cli, value: str
) -> None:
    path = write_experiment(
        experiment_text(variables=f"+name: ['{value}', plain]", controls="output_dir: /s/{name}")
    )
    refused(cli, path, "{name} goes into an output folder", "no folder name")


def test_a_value_with_a_slash_may_fill_a_path_that_is_not_an_output_folder(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(
        experiment_text(
            variables="+part: [train/a, train/b]",
            controls="""
            output_dir: /s/{run_id}
            dataset: {data_files: "/data/{part}.json"}
            """,
        )
    )
    assert [run["dataset"]["data_files"] for run in generated(cli, path)] == [
        "/data/train/a.json",
        "/data/train/b.json",
    ]


def test_a_run_id_in_a_base_file_is_refused_at_its_line(write_experiment: Write, cli: Cli) -> None:
    path = write_experiment(
        experiment_text(base="base_config_file: base.yaml\n  recipe: full_finetune_single_device")
    )
    (path.parent / "base.yaml").write_text("output_dir: /scratch/{run_id}\nseed: 1\n")
    refused(cli, path, "base.yaml:1:1: {run_id} in the base config is not filled in")


# --- 4, 5, 6. output folders ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/scratch/x", "//scratch/x"),
        ("/scratch/x", "/scratch/./x/"),
        ("/scratch/x", "/scratch/y/../x"),
        ("results", "{folder}/results"),  # relative, and the same folder absolute
    ],
)
def test_one_folder_spelt_two_ways_is_one_folder(
    write_experiment: Write, cli: Cli, first: str, second: str
) -> None:
    path = write_experiment(experiment_text())
    second = second.format(folder=path.parent)
    text = experiment_text(
        variables="seed: [1, 2]",
        controls=f"""
        output_dir: {first}
        metric_logger: {{log_dir: "{second}"}}
        """,
    )
    path.write_text(text)
    generated(cli, path)
    # Runs that shared the folder are split: each run writes under its own.
    folders = {run["output_dir"] for run in runs_of(path)}
    assert len(folders) == 2


@pytest.mark.parametrize(
    ("output_dir", "said"),
    [
        ("~/results", "starts with ~, which torchtune does not expand"),
        ("$HOME/results", "holds a shell variable ($NAME), which OmegaConf does not expand"),
        ("/scratch/" + "x" * 256, "a folder name of 256 bytes, more than the 255"),
    ],
)
def test_an_output_folder_torchtune_would_not_write_as_written_is_refused(
    write_experiment: Write, cli: Cli, output_dir: str, said: str
) -> None:
    path = write_experiment(experiment_text(controls=f"output_dir: '{output_dir}'"))
    refused(cli, path, said)


def slurm_experiment(output_dir: str) -> str:
    return experiment_text(variables="seed: [1, 2]", controls=f'output_dir: "{output_dir}"') + (
        "launch:\n  slurm: {}\n"
    )


def test_the_slurm_script_resolves_an_environment_variable_as_omegaconf_does(
    write_experiment: Write, cli: Cli, tmp_path: Path
) -> None:
    path = write_experiment(slurm_experiment("${oc.env:SCRATCH}/study"))
    generated(cli, path)
    script = (path.parent / "configs" / "slurm_array.sh").read_text()
    table = script[
        script.index("output_dirs=(") : script.index(")\n", script.index("output_dirs=("))
    ]
    probe = f'{table})\necho "${{output_dirs[1]}}"\n'
    run = subprocess.run(
        ["bash", "-c", probe], env={"SCRATCH": str(tmp_path)}, capture_output=True, text=True
    )
    assert run.stdout.strip() == f"{tmp_path}/study/run_001"
    unset = subprocess.run(["bash", "-c", probe], env={}, capture_output=True, text=True)
    assert unset.returncode != 0 and "SCRATCH" in unset.stderr  # fails, as torchtune would


def test_an_output_folder_the_script_cannot_resolve_is_refused(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(slurm_experiment("${now:%Y}/study"))
    refused(cli, path, "holds an interpolation the SLURM script cannot resolve")


def test_another_experiments_run_file_is_no_base(write_experiment: Write, cli: Cli) -> None:
    first = write_experiment(experiment_text(controls="output_dir: /scratch/first"), "first")
    generated(cli, first)
    second = write_experiment(
        experiment_text(
            base="base_config_file: ../first/configs/run_000.yaml\n"
            "  recipe: lora_finetune_single_device"
        ),
        "second",
    )
    refused(cli, second, "is a run config another experiment generated")


# --- 7. launch --------------------------------------------------------------------------------


def launch_text(launch: str) -> str:
    return experiment_text(controls="output_dir: /scratch/x") + "launch:\n" + launch


@pytest.mark.parametrize(
    ("launch", "said"),
    [
        (
            "  nnodes: 2\n  nproc_per_node: 8\n  slurm: {sbatch: {nodes: 1}}\n",
            "sbatch nodes 1 asks Slurm for that many nodes, but each run starts torchrun on 2",
        ),
        ("  slurm: {sbatch: {nodes: 2}}\n", "but each run starts torchrun on 1"),
        ("  slurm: {sbatch: {arr: 0-3}}\n", "remove arr (sbatch reads --arr as --array)"),
    ],
)
def test_launch_settings_that_disagree_are_refused(
    write_experiment: Write, cli: Cli, launch: str, said: str
) -> None:
    path = write_experiment(launch_text(launch))
    refused(cli, path, said)


EVALUATION = """\
evaluation:
  tasks: [truthfulqa_mc2]
"""


def test_the_evaluation_array_runs_on_one_device_unless_told(
    write_experiment: Write, cli: Cli
) -> None:
    sbatch = '{partition: gpu, gpus-per-node: 8, cpus-per-task: 32, time: "24:00:00"}'
    launch = f"  slurm: {{sbatch: {sbatch}}}\n"
    path = write_experiment(launch_text(launch) + EVALUATION)
    result = cli("generate", path)
    assert result.code == 0, result.err
    evaluation = (path.parent / "configs" / "slurm_eval_array.sh").read_text()
    training = (path.parent / "configs" / "slurm_array.sh").read_text()
    assert "#SBATCH --gpus-per-node=8" in training
    assert "#SBATCH --partition=gpu" in evaluation and "#SBATCH --gpus=1" in evaluation
    assert "gpus-per-node" not in evaluation and "cpus-per-task" not in evaluation
    assert "--time" not in evaluation
    own = launch.replace("}}\n", "}, evaluation_sbatch: {partition: eval, time: '01:00:00'}}\n")
    path.write_text(launch_text(own) + EVALUATION)
    assert cli("generate", path).code == 0
    evaluation = (path.parent / "configs" / "slurm_eval_array.sh").read_text()
    assert "#SBATCH --partition=eval" in evaluation and "#SBATCH --time=01:00:00" in evaluation


# --- 8. a design that leaves nothing ------------------------------------------------------------


def test_exclusions_that_remove_every_run_are_refused(write_experiment: Write, cli: Cli) -> None:
    text = experiment_text(variables="seed: [1, 2]") + "exclude:\n  - {seed: 1}\n  - {seed: 2}\n"
    refused(cli, write_experiment(text), "exclude removes every combination: no run is left")


def test_search_with_exclusions_counts_what_the_grid_has_left(
    write_experiment: Write, cli: Cli
) -> None:
    text = (
        experiment_text(variables="seed: [1, 2, 3, 4]")
        + "exclude:\n  - {seed: 1}\n  - {seed: 2}\nsearch: {random: 3, seed: 0}\n"
    )
    refused(cli, write_experiment(text), "the grid has only 2 different combinations left")


def test_an_integer_range_gives_whole_numbers_as_its_example(
    write_experiment: Write, cli: Cli
) -> None:
    text = experiment_text(variables="lora_rank: {integer: [a, b]}") + "search: {random: 2}\n"
    refused(cli, write_experiment(text), "integer takes [low, high], two whole numbers")


@pytest.mark.parametrize("limit", [".nan", ".inf", "-.inf"])
def test_an_evaluation_limit_that_is_no_number_is_refused(
    write_experiment: Write, cli: Cli, limit: str
) -> None:
    text = experiment_text(controls="output_dir: /s") + EVALUATION + f"  limit: {limit}\n"
    refused(cli, write_experiment(text), "evaluation.limit")


# --- 9. run ids past 999 ------------------------------------------------------------------------


@pytest.mark.slow
def test_ids_past_999_keep_their_width_and_check_is_clean(
    write_experiment: Write, cli: Cli
) -> None:
    def sweep(seeds: range) -> None:
        path.write_text(
            experiment_text(variables=f"seed: {list(seeds)}", controls="output_dir: /s/{run_id}")
        )
        assert cli("generate", path).code == 0

    path = write_experiment(experiment_text())
    sweep(range(600))  # run_000 ... run_599
    sweep(range(600, 1200))  # those retire: the new runs are run_600 ... run_1199
    sweep(range(1000, 1200))  # only ids past 999 are left, beside 3-digit retired ones
    ids = [run["id"] for run in mapping_of(path)]
    assert ids[0] == "run_1000" and ids[-1] == "run_1199"
    assert cli("check", path).code == 0


# --- 10. YAML 1.1 readings ----------------------------------------------------------------------


def test_yaml_readings_that_surprise_are_kept_and_warned_about_at_their_line(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            seed: [010, 42]
            +note: [yes, maybe, no]
            """,
            controls="output_dir: /s/{run_id}",
        )
    )
    result = cli("generate", path)
    assert result.code == 0
    warnings = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert any("seed: 010 is read as the octal number 8" in line for line in warnings)
    assert any("note: yes is read as the boolean true" in line for line in warnings)
    assert any("note: no is read as the boolean false" in line for line in warnings)
    assert {run["seed"] for run in runs_of(path)} == {8, 42}  # kept, as torchtune reads them


# --- messages that sent users the wrong way -----------------------------------------------------


@pytest.mark.parametrize("recipe", ["ppo_full_finetune_single_device", "eleuther_eval", "generate"])
def test_evaluation_on_a_recipe_that_fine_tunes_nothing_says_so(
    write_experiment: Write, cli: Cli, recipe: str
) -> None:
    base = f"base_config_file: base.yaml\n  recipe: {recipe}"
    path = write_experiment(experiment_text(base=base) + EVALUATION)
    (path.parent / "base.yaml").write_text("output_dir: /s\nseed: 0\n")
    refused(cli, path, f"but {recipe} fine-tunes no `model` into checkpoints of its own")


def test_a_key_under_a_replaced_control_is_named_among_the_replacements_keys(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(
        experiment_text(
            controls=f"""
            optimizer: !replace {SGD}
            optimizer.momentm: 0.9
            """
        )
    )
    refused(
        cli, path, "'optimizer.momentm' is not in the base config: optimizer has _component_, lr."
    )


def test_a_condition_on_a_key_a_control_added_finds_it(write_experiment: Write, cli: Cli) -> None:
    text = experiment_text(variables="seed: [1, 2]", controls="+custom_flag: true")
    text += "conditions:\n  - when: {seed: 1}\n    set: {custom_flg: false}\n"
    refused(cli, write_experiment(text), "did you mean 'custom_flag'?")
    path = write_experiment(text.replace("custom_flg", "custom_flag"))
    assert [run["custom_flag"] for run in generated(cli, path)] == [False, True]


def test_a_misspelt_key_inside_a_mapping_value_gets_a_did_you_mean(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(experiment_text(controls="model: {lora_apha: 16}"))
    refused(cli, path, "model.lora_apha is not in the base config: did you mean model.lora_alpha?")


def test_a_folder_of_experiments_is_named_for_what_it_holds(tmp_path: Path, cli: Cli) -> None:
    for name in ("a", "b"):
        (tmp_path / "studies" / name).mkdir(parents=True)
        (tmp_path / "studies" / name / "experiment.yaml").write_text(experiment_text())
    result = cli("generate", tmp_path / "studies")
    assert "holds 2 experiment folders (a/experiment.yaml, b/experiment.yaml)" in result.err
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "study1.yaml").write_text(experiment_text())
    result = cli("generate", tmp_path / "flat")
    assert "study1.yaml look like experiment files" in result.err


def test_a_timestamped_experiment_validates_its_newest_folder(
    write_experiment: Write, cli: Cli
) -> None:
    path = write_experiment(
        experiment_text(controls="output_dir: /s") + "output:\n  base_dir: out\n"
    )
    assert cli("generate", path).code == 0
    from torchtune_config_writer.validation.validating import find_targets

    (stamped,) = (path.parent / "out").iterdir()
    for named in (path.parent, stamped):
        (target,) = find_targets([named], path.parent)
        assert target.config == stamped / "configs" / "run_000.yaml" and target.plan is not None


def test_show_tells_runs_apart_whose_values_differ_past_the_cell_width(
    write_experiment: Write, cli: Cli
) -> None:
    modules = "q_proj, k_proj, v_proj, output_proj, gate_proj, up_proj"
    variables = f"""
    lora_attn_modules:
      - [{modules}, w1]
      - [{modules}, w2]
    """
    path = write_experiment(experiment_text(variables=variables))
    out = cli("show", path).out
    run_lines = [line for line in out.splitlines() if line.startswith("run_")]
    assert len(run_lines) == 2 and "w1]" in run_lines[0] and "w2]" in run_lines[1]


def test_a_base_file_outside_the_repository_is_warned_about(
    write_experiment: Write, cli: Cli, tmp_path: Path
) -> None:
    path = write_experiment(experiment_text())
    subprocess.run(["git", "init", "-q", str(path.parent)], check=True)
    outside = tmp_path / "elsewhere.yaml"
    outside.write_text("output_dir: /s\nseed: 0\n")
    path.write_text(
        experiment_text(base=f"base_config_file: {outside}\n  recipe: full_finetune_single_device")
    )
    result = cli("generate", path)
    assert result.code == 0
    assert "is read from outside the repository" in result.err


# --- the table of where each form works (docs/experiment-format.md) ---------------------------

DOCS = Path(__file__).resolve().parent.parent / "docs" / "experiment-format.md"
FORMS = ("!replace", "~key", "+key", "placeholders")


def forms_table() -> dict[tuple[str, str], bool]:
    """(place, form) → whether the docs say the form works there."""
    text = DOCS.read_text()
    lines = text[text.index("| place | `!replace`") :].splitlines()
    table = {}
    for line in lines[2:]:
        if not line.startswith("| "):
            break
        place, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        for form, cell in zip(FORMS, cells, strict=True):
            table[(place, form)] = cell == "yes"
    return table


# Each place and form: the experiment's sections, and what the first run must then hold.
SWAP = "!replace {_component_: torch.optim.SGD, lr: 0.1}"
GROUP = "variables:\n  pair:\n    seed: [1, 2]\n"
WHEN = "variables:\n  seed: [1, 2]\nconditions:\n  - when: {seed: 1}\n"
EVAL = "evaluation: {tasks: [truthfulqa_mc2]"


def swapped(run: dict[str, Any]) -> bool:
    return "fused" not in run["optimizer"]


def deleted(run: dict[str, Any]) -> bool:
    return "profiler" not in run or "num_warmup_steps" not in run["lr_scheduler"]


def added(run: dict[str, Any]) -> bool:
    return run["custom"] == 1


def filled(run: dict[str, Any]) -> bool:
    return run.get("output_dir") == "/s/run_000" or run.get("tag") == "arun_000"


def anything(run: dict[str, Any]) -> bool:
    return True


EXAMPLES: dict[tuple[str, str], tuple[str, Callable[[dict[str, Any]], bool]]] = {
    ("controls", "!replace"): (f"controls:\n  optimizer: {SWAP}\n", swapped),
    ("controls", "~key"): ("controls:\n  ~profiler:\n", deleted),
    ("controls", "+key"): ("controls:\n  +custom: 1\n", added),
    ("controls", "placeholders"): ("controls:\n  output_dir: /s/{run_id}\n", filled),
    ("variables", "!replace"): (f"variables:\n  optimizer: [{SWAP}, {{lr: 0.1}}]\n", swapped),
    ("variables", "~key"): (
        "variables:\n  lr_scheduler: [{~num_warmup_steps: }, {num_warmup_steps: 5}]\n",
        deleted,
    ),
    ("variables", "+key"): ("variables:\n  +custom: [1, 2]\n", added),
    ("variables", "placeholders"): ("variables:\n  +tag: ['a{run_id}', b]\n", filled),
    ("linked groups", "!replace"): (f"{GROUP}    optimizer: [{SWAP}, {{lr: 0.1}}]\n", swapped),
    ("linked groups", "~key"): (
        f"{GROUP}    lr_scheduler: [{{~num_warmup_steps: }}, {{num_warmup_steps: 5}}]\n",
        deleted,
    ),
    ("linked groups", "+key"): (f"{GROUP}    +custom: [1, 2]\n", added),
    ("linked groups", "placeholders"): (f"{GROUP}    +tag: ['a{{run_id}}', b]\n", filled),
    ("conditions", "!replace"): (f"{WHEN}    set: {{optimizer: {SWAP}}}\n", swapped),
    ("conditions", "~key"): (f"{WHEN}    set: {{~profiler: }}\n", deleted),
    ("conditions", "+key"): (f"{WHEN}    set: {{+custom: 1}}\n", added),
    ("conditions", "placeholders"): (f"{WHEN}    set: {{output_dir: '/s/{{run_id}}'}}\n", filled),
    ("evaluation", "!replace"): ("evaluation: !replace {tasks: [truthfulqa_mc2]}\n", anything),
    ("evaluation", "~key"): (f"{EVAL}, ~limit: }}\n", anything),
    ("evaluation", "+key"): ("evaluation: {+tasks: [truthfulqa_mc2]}\n", anything),
    ("evaluation", "placeholders"): (f"{EVAL}, include_path: '/t/{{run_id}}'}}\n", anything),
    ("launch", "!replace"): ("launch: {slurm: {sbatch: !replace {partition: gpu}}}\n", anything),
    ("launch", "~key"): ("launch: {~nnodes: }\n", anything),
    ("launch", "+key"): ("launch: {+nproc_per_node: 1}\n", anything),
    ("launch", "placeholders"): ("launch: {slurm: {sbatch: {job_name: 'j{run_id}'}}}\n", anything),
}


def test_the_table_names_every_place_and_form() -> None:
    assert set(forms_table()) == set(EXAMPLES)


@pytest.mark.parametrize(("place", "form"), sorted(EXAMPLES))
def test_each_form_works_where_the_table_says_and_is_refused_elsewhere(
    write_experiment: Write, cli: Cli, place: str, form: str
) -> None:
    sections, holds = EXAMPLES[(place, form)]
    text = experiment_text(base="base_config: llama3_2/1B_lora_single_device") + sections
    if "output_dir" not in sections:
        text += "" if "controls:" in sections else "controls:\n"
        text = text.replace("controls:\n", "controls:\n  output_dir: /s/x\n", 1)
    path = write_experiment(text)
    if forms_table()[(place, form)]:
        (first, *_) = generated(cli, path)
        assert holds(first), first
    else:
        refused(cli, path, "not in " + place)
