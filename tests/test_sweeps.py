"""Beyond the full factorial: linked variables, and values filled in for each run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from torchtune_config_writer import ConfigWriterError, generate
from torchtune_config_writer.generation import builtin_configs, templates

from .conftest import RECIPE, CliResult, experiment_text, mapping_of, runs_of


def generated_runs(experiment: Path) -> list[dict[str, Any]]:
    """Each run config as torchtune reads it, in run order."""
    generated = generate(experiment)
    return [
        OmegaConf.to_container(OmegaConf.load(path), resolve=False) for path in generated.run_files
    ]


# Linked variables


def test_a_linked_group_varies_together_and_crosses_the_other_variables(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            learning_rate: [1e-4, 3e-4]
            lora:
              lora_rank: [8, 16, 32]
              lora_alpha: [16, 32, 64]
            """
        )
    )
    runs = generated_runs(path)
    pairs = [
        (run["optimizer"]["lr"], run["model"]["lora_rank"], run["model"]["lora_alpha"])
        for run in runs
    ]
    assert pairs == [
        (1e-4, 8, 16),
        (1e-4, 16, 32),
        (1e-4, 32, 64),
        (3e-4, 8, 16),
        (3e-4, 16, 32),
        (3e-4, 32, 64),
    ]
    assert [run["params"] for run in mapping_of(path)][:2] == [
        {"learning_rate": 1e-4, "lora_rank": 8, "lora_alpha": 16},
        {"learning_rate": 1e-4, "lora_rank": 16, "lora_alpha": 32},
    ]


def test_a_linked_group_first_changes_slowest(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            lora:
              lora_rank: [8, 16]
              lora_alpha: [16, 32]
            batch_size: [2, 4]
            """
        )
    )
    runs = generated_runs(path)
    assert [(r["model"]["lora_rank"], r["batch_size"]) for r in runs] == [
        (8, 2),
        (8, 4),
        (16, 2),
        (16, 4),
    ]


def test_a_value_may_repeat_inside_a_linked_group(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            schedule:
              batch_size: [4, 4, 8]
              learning_rate: [1e-4, 3e-4, 3e-4]
            """
        )
    )
    runs = generated_runs(path)
    assert [(r["batch_size"], r["optimizer"]["lr"]) for r in runs] == [
        (4, 1e-4),
        (4, 3e-4),
        (8, 3e-4),
    ]


def test_the_run_limit_counts_a_linked_group_once(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            seed: [1, 2]
            lora:
              lora_rank: [8, 16, 32]
              lora_alpha: [16, 32, 64]
            """
        )
    )
    assert cli("generate", path, "--max-runs", "6").code == 0
    refused = cli("generate", path, "--max-runs", "5")
    assert refused.code == 2
    assert "the variables give 6 runs (2 × 3), more than the limit of 5" in refused.err


# Values filled in for each run


def test_run_id_and_variables_fill_strings_of_controls_and_variables(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
            lora_rank: [8, 16]
            learning_rate: [1e-4, 3e-4]
            +dataset.data_files: ['/data/a_{lora_rank}.json', /data/b.json]
            """,
            controls="""
            output_dir: /scratch/{run_id}
            metric_logger:
              log_dir: ${output_dir}/logs/rank{lora_rank}_lr{learning_rate}
            """,
        )
    )
    runs = generated_runs(path)
    assert [run["output_dir"] for run in runs] == [f"/scratch/run_00{n}" for n in range(8)]
    assert runs[0]["metric_logger"]["log_dir"] == "${output_dir}/logs/rank8_lr0.0001"
    assert runs[7]["metric_logger"]["log_dir"] == "${output_dir}/logs/rank16_lr0.0003"
    assert [run["dataset"]["data_files"] for run in runs[:2]] == ["/data/a_8.json", "/data/b.json"]
    assert runs[4]["dataset"]["data_files"] == "/data/a_16.json"
    # The mapping and the header give the values each run has, filled in.
    assert mapping_of(path)[4]["params"]["dataset.data_files"] == "/data/a_16.json"  # no +
    header = (path.parent / "configs" / "run_004.yaml").read_text().splitlines()[2]
    assert header.endswith("+dataset.data_files=/data/a_16.json")
    # {run_id} gives every run its own folder, so none is appended.
    assert [run.get("output_dir") for run in mapping_of(path)][1] == "/scratch/run_001"


def test_runs_that_a_placeholder_does_not_tell_apart_still_get_their_own_output_dir(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="lora_rank: [8, 16]\nseed: [1, 2]",
            controls="output_dir: /scratch/rank{lora_rank}",
        )
    )
    assert [run["output_dir"] for run in generated_runs(path)] == [
        "/scratch/rank8/run_000",
        "/scratch/rank8/run_001",
        "/scratch/rank16/run_002",
        "/scratch/rank16/run_003",
    ]


def test_interpolations_and_escaped_braces_are_kept_as_written(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="seed: [1, 2]",
            controls="""
            +prompt: 'Q: {{question}} ({seed}) ${oc.env:HOME,{x:1}} {"a": 1}'
            """,
        )
    )
    runs = generated_runs(path)
    assert runs[1]["prompt"] == 'Q: {question} (2) ${oc.env:HOME,{x:1}} {"a": 1}'


def test_strings_of_the_base_config_are_never_filled(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    (tmp_path / "exp").mkdir()
    base = "output_dir: /out/x\nprompt: 'Q: {question}'\nseed: 0\n"
    (tmp_path / "exp" / "base.yaml").write_text(base)
    path = write_experiment(
        experiment_text(variables="seed: [1, 2]", base="base_config_file: base.yaml")
    )
    # A base's own braces are its text; a {run_id} or {variable} there is refused
    # (test_meaning.py), since the base is not filled in.
    assert [run["prompt"] for run in generated_runs(path)] == ["Q: {question}"] * 2


def test_a_bool_and_a_null_read_as_in_yaml(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(
            variables="shuffle: [true, false]\nseed: [null, 7]",
            controls="output_dir: /o/shuffle_{shuffle}_seed_{seed}",
        )
    )
    assert [run["output_dir"] for run in generated_runs(path)] == [
        "/o/shuffle_true_seed_null",
        "/o/shuffle_true_seed_7",
        "/o/shuffle_false_seed_null",
        "/o/shuffle_false_seed_7",
    ]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("plain", ("plain",)),
        ("/s/{run_id}", ("/s/", "run_id")),
        ("${a.b}/{x}", ("${a.b}/", "x")),
        ("${oc.env:A,${b}}{c}", ("${oc.env:A,${b}}", "c")),
        ("{{x}}_{y}", ("{x}_", "y")),
        ('{"a": {"b": 1}}', ('{"a": {"b": 1}}',)),
        ("${unclosed {x}", ("${unclosed {x}",)),
    ],
)
def test_parse_tells_placeholders_from_text(text: str, parts: tuple[str, ...]) -> None:
    parsed = templates.parse(text)
    assert parsed == parts
    names = [part for part in parsed if isinstance(part, templates.Placeholder)]
    assert names == [part for part in parts if part in ("run_id", "x", "y", "c")]


def test_a_placeholder_error_is_raised_before_anything_is_written(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(controls="output_dir: /s/{run}"))
    with pytest.raises(ConfigWriterError, match=r"\{run\} names no variable"):
        generate(path)
    assert not (path.parent / "configs").exists()


def test_combinations_are_compared_whole_not_as_joined_text(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(variables="pair:\n  +a: ['x, y', x]\n  +b: [z, 'y, z']")
    )
    assert [(run["a"], run["b"]) for run in generated_runs(path)] == [("x, y", "z"), ("x", "y, z")]


@pytest.mark.slow
def test_the_run_limit_in_the_experiment_file_is_read_by_generate_and_check_without_flags(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    seeds = ", ".join(map(str, range(1200)))
    text = experiment_text(variables=f"seed: [{seeds}]")
    path = write_experiment(text)
    refused = cli("generate", path)
    assert refused.code == 2 and "more than the limit of 1,000" in refused.err
    assert "experiment.max_runs" in refused.err
    path.write_text(
        text.replace("  framework: torchtune\n", "  framework: torchtune\n  max_runs: 1200\n")
    )
    assert cli("generate", path).code == 0
    assert cli("check", path).code == 0  # as the hook and the Action run it: no flag
    # The flag still wins, for one call.
    lower = cli("check", path, "--max-runs", "1000")
    assert lower.code == 2 and "more than the limit of 1,000" in lower.err


@pytest.mark.parametrize("value", ["0", "many", "true", "1.5"])
def test_a_run_limit_that_is_not_a_positive_whole_number_is_refused_at_its_line(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult], value: str
) -> None:
    text = experiment_text().replace(
        "  framework: torchtune\n", f"  framework: torchtune\n  max_runs: {value}\n"
    )
    result = cli("generate", write_experiment(text))
    assert result.code == 2
    assert result.err.startswith("error: ") and ":4:" in result.err
    assert "experiment.max_runs must be a whole number of at least 1" in result.err


def test_numbers_fill_placeholders_in_their_shortest_form(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="learning_rate: [2.0e-05, 0.0003, 1.0e+20]",
            controls="output_dir: /scratch/lr{learning_rate}",
        )
    )
    generate(path)
    assert [run["output_dir"] for run in mapping_of(path)] == [
        "/scratch/lr2e-05",
        "/scratch/lr0.0003",
        "/scratch/lr1e+20",
    ]


def test_run_mapping_names_a_new_keys_variable_as_its_key(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="+note: [a, b]"))
    generate(path)
    assert [run["params"] for run in mapping_of(path)] == [{"note": "a"}, {"note": "b"}]


def test_generate_says_whether_run_mapping_was_created_kept_or_updated(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    assert cli("generate", path).out.splitlines()[-1] == "✓ Created run_mapping.yaml"
    path.write_text(experiment_text(variables="lora_rank: [8, 16]", controls="epochs: 2"))
    assert cli("generate", path).out.splitlines()[-1] == "✓ Kept run_mapping.yaml"  # configs only
    path.write_text(experiment_text(variables="lora_rank: [8, 16]", controls="output_dir: /x"))
    assert cli("generate", path).out.splitlines()[-1] == "✓ Updated run_mapping.yaml"
    path.write_text(experiment_text(variables="lora_rank: [8, 32]", controls="output_dir: /x"))
    assert cli("generate", path).out.splitlines()[-1] == (
        "✓ Updated run_mapping.yaml (kept the recorded ids; new: run_002; retired: run_001)"
    )


def test_a_list_of_lists_sweeps_lists_and_a_flat_one_gets_the_hint(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        experiment_text(variables="lora_attn_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj]]")
    )
    generate(path)
    runs = [
        yaml.safe_load((path.parent / "configs" / f"run_00{n}.yaml").read_text()) for n in (0, 1)
    ]
    assert [run["model"]["lora_attn_modules"] for run in runs] == [
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj"],
    ]
    path.write_text(experiment_text(variables="lora_attn_modules: [q_proj, v_proj]"))
    result = cli("generate", path)
    assert result.code == 2
    assert (
        "as a variable, [q_proj, v_proj] is 2 runs of one value each: to sweep lists, write a "
        "list of lists ([[q_proj, v_proj], …]), or put one list under controls"
    ) in result.err


DATASETS = """
dataset:
  - {_component_: torchtune.datasets.alpaca_cleaned_dataset, packed: false}
  - {_component_: torchtune.datasets.slimorca_dataset, packed: false}
"""


def test_a_list_of_datasets_replaces_the_bases_one_for_a_recipe_that_concatenates(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(controls=DATASETS))
    generate(path)
    config = OmegaConf.to_container(OmegaConf.load(path.parent / "configs" / "run_000.yaml"))
    assert config["dataset"] == [  # type: ignore[index]
        {"_component_": "torchtune.datasets.alpaca_cleaned_dataset", "packed": False},
        {"_component_": "torchtune.datasets.slimorca_dataset", "packed": False},
    ]


@pytest.mark.parametrize(
    ("base", "controls", "message"),
    [
        (
            f"base_config: {RECIPE}\n  recipe: eleuther_eval",
            DATASETS,
            "eleuther_eval builds one dataset from dataset: a list of datasets needs a recipe",
        ),
        (
            f"base_config: {RECIPE}",
            "optimizer:\n  - {_component_: torch.optim.AdamW}",
            "optimizer is a mapping in the base",
        ),
    ],
)
def test_a_list_where_the_recipe_takes_one_mapping_is_refused_at_its_line(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    base: str,
    controls: str,
    message: str,
) -> None:
    result = cli("generate", write_experiment(experiment_text(base=base, controls=controls)))
    assert result.code == 2 and message in result.err, result.err


@pytest.mark.needs_torchtune
def test_the_recipes_that_take_a_list_of_datasets_are_the_ones_whose_source_concatenates() -> None:
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    concatenating = {
        name
        for name, source in torchtune.recipes.items()
        if source.suffix == ".py"
        and source.exists()
        and "isinstance(cfg_dataset, ListConfig)" in source.read_text()
    }
    assert concatenating == builtin_configs.DATASET_LIST_RECIPES


@pytest.mark.needs_torch
def test_a_list_of_datasets_passes_validate(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(controls=DATASETS))
    generate(path)
    result = cli("validate", path.parent)
    assert result.code == 0, result.out


def test_a_list_inside_the_dataset_is_no_list_of_datasets(
    write_experiment: Callable[..., Path],
) -> None:
    # Only dataset itself may become a list; a list-valued key inside it is for any recipe.
    text = experiment_text(
        base=f"base_config: {RECIPE}\n  recipe: eleuther_eval",
        controls="+dataset.data_files: [a.json, b.json]",
    )
    path = write_experiment(text)
    generate(path)
    assert runs_of(path)[0]["dataset"]["data_files"] == ["a.json", "b.json"]
