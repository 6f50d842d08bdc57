"""Deleting a key of the base (``~key:``, torchtune's own syntax) and replacing a mapping whole
(``!replace``): the component swap that merging cannot write."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import check, generate

from .conftest import CliResult, experiment_text, runs_of

CONSTANT_LR = "torch.optim.lr_scheduler.ConstantLR"


def run_config(path: Path, run: int = 0) -> Any:
    return runs_of(path)[run]


def test_a_control_with_a_tilde_deletes_the_key_in_every_run(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(variables="seed: [1, 2]", controls="~profiler:\n~compile:")
    )
    generate(path)
    for run in (0, 1):
        config = run_config(path, run)
        assert "profiler" not in config and "compile" not in config
        assert config["seed"] == run + 1
    assert check([path]).exit_code == 0  # the hook's path agrees


def test_a_tilde_key_inside_a_mapping_value_deletes_that_key_of_the_base(
    write_experiment: Callable[..., Path],
) -> None:
    variables = f"""
    lr_scheduler:
      - _component_: {CONSTANT_LR}
        ~num_warmup_steps:
        factor: 1.0
      - num_warmup_steps: 10
    """
    path = write_experiment(experiment_text(variables=variables))
    generate(path)
    assert run_config(path, 0)["lr_scheduler"] == {"_component_": CONSTANT_LR, "factor": 1.0}
    kept = run_config(path, 1)["lr_scheduler"]
    assert kept["num_warmup_steps"] == 10 and "get_cosine" in kept["_component_"]


def test_replace_swaps_a_mapping_whole_in_controls_and_variables(
    write_experiment: Callable[..., Path],
) -> None:
    text = experiment_text(
        variables=f"""
        lr_scheduler:
          - !replace {{_component_: {CONSTANT_LR}, factor: 1.0}}
          - !replace
            _component_: torch.optim.lr_scheduler.LinearLR
            total_iters: 10
        """,
        controls="""
        dataset: !replace
          _component_: torchtune.datasets.alpaca_cleaned_dataset
          packed: false
        """,
    )
    path = write_experiment(text)
    generate(path)
    first, second = run_config(path, 0), run_config(path, 1)
    assert first["lr_scheduler"] == {"_component_": CONSTANT_LR, "factor": 1.0}
    assert second["lr_scheduler"] == {
        "_component_": "torch.optim.lr_scheduler.LinearLR",
        "total_iters": 10,
    }
    assert first["dataset"] == {
        "_component_": "torchtune.datasets.alpaca_cleaned_dataset",
        "packed": False,
    }
    mapping = (path.parent / "configs" / "run_mapping.yaml").read_text()
    assert "!replace" not in mapping  # plain YAML for every reader
    assert check([path]).exit_code == 0


@pytest.mark.parametrize(
    ("section", "entry", "line", "message"),
    [
        ("controls", "~compile: false", 7, "'~compile' deletes compile: give it no value"),
        ("controls", "~no_such_key:", 7, "'~no_such_key' deletes nothing: the base config has no"),
        ("controls", "~compile:\ncompile: true", 8, "'~compile' and 'compile' both set compile"),
        ("variables", "~compile: [1, 2]", 7, "'~compile' deletes compile in every run: put it"),
        (
            "controls",
            "lr_scheduler:\n  ~warmup:",
            8,
            "lr_scheduler.~warmup deletes nothing: lr_scheduler has no warmup in the base",
        ),
        ("controls", "epochs: !replace {a: 1}", 7, "epochs is an integer in the base (1)"),
        ("controls", "epochs: !replace 3", 7, "!replace takes a mapping"),
    ],
)
def test_a_deletion_or_replacement_that_cannot_be_is_refused_at_its_line(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    section: str,
    entry: str,
    line: int,
    message: str,
) -> None:
    text = experiment_text(**{section: entry})
    path = write_experiment(text)
    result = cli("generate", path)
    assert (result.code, result.out) == (2, ""), result
    assert (
        result.err.startswith(f"error: {path}:{line}:") or f"experiment.yaml:{line}:" in result.err
    )
    assert message in result.err
    assert not (path.parent / "configs").exists()


@pytest.mark.needs_torch
def test_a_replaced_scheduler_keeps_none_of_the_bases_arguments_where_a_merged_one_does(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    merged = write_experiment(
        experiment_text(controls=f"lr_scheduler:\n  _component_: {CONSTANT_LR}"), folder="merged"
    )
    merged.write_text(merged.read_text().replace("name: study", "name: merged"))
    swapped = write_experiment(
        experiment_text(controls=f"lr_scheduler: !replace {{_component_: {CONSTANT_LR}}}"),
        folder="swapped",
    )
    swapped.write_text(swapped.read_text().replace("name: study", "name: swapped"))
    for path in (merged, swapped):
        generate(path)
    # The cosine schedule's num_warmup_steps stays when merged, and ConstantLR refuses it; the
    # replaced mapping has none. (The recipe's own num_training_steps= to any scheduler is not
    # checked by validate yet: see docs/experiment-format.md.)
    kept = cli("validate", merged.parent)
    assert kept.code == 1 and "num_warmup_steps" in kept.out, kept.out
    clean = cli("validate", swapped.parent)
    assert "num_warmup_steps" not in clean.out, clean.out


@pytest.mark.parametrize(
    ("text", "at", "where"),
    [
        ("controls: !replace\n  seed: 1\n", "6:1", "controls"),
        ("variables: !replace\n  lora_rank: [8, 16]\n", "6:1", "variables"),
        (
            "variables:\n  lora: !replace\n    lora_rank: [8, 16]\n    lora_alpha: [16, 32]\n",
            "7:3",
            "variables.lora",
        ),
        (
            "variables:\n  lora_rank: [8, 16]\nexclude:\n- !replace {lora_rank: 8}\n",
            "9:3",
            "exclude.0",
        ),
        ("output: !replace\n  experiment_name: x\n", "6:1", "output"),
    ],
)
def test_replace_on_anything_but_a_config_value_is_refused_not_ignored(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    text: str,
    at: str,
    where: str,
) -> None:
    # generate took these as written (the tag dropped); schema --check refused them.
    path = write_experiment(experiment_text() + text)
    for command in ("generate", "schema --check"):
        result = cli(*command.split(), path)
        assert result.code == 2, (command, result.out)
        assert result.err.startswith(f"error: {path}:{at}: !replace works on config values ")
        assert f"not on {where}: drop the tag" in result.err
    assert not (path.parent / "configs").exists()
