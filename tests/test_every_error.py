"""Every independent mistake of an experiment at once, as torchtune's ConfigError lists them:
each its own `error:` line with line:column, exit 2, nothing written."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer import ConfigWriterError, generate

from .conftest import RECIPE, CliResult, snapshot

HEAD = f"""
        experiment:
          name: study
          framework: torchtune
        framework_config:
          base_config: {RECIPE}"""
ERROR_LINE = re.compile(r"error: (\S+?):(\d+):(\d+): (.+)")


def refusals(result: CliResult) -> list[tuple[str, int, str]]:
    """Each `error:` line as (file, line, message); nothing else may be printed."""
    assert "Traceback" not in result.err and result.out == ""
    assert result.code == 2
    found = []
    for line in result.err.splitlines():
        match = ERROR_LINE.fullmatch(line)
        assert match, line
        found.append((match[1], int(match[2]), match[4]))
    return found


def test_mistakes_in_every_section_are_reported_together_in_file_order(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        f"""
        experiment:
          name: study
          framework: torchtune
          nmae: typo
          tags: lora
        framework_config:
          base_config: {RECIPE}
        variables:
          model.lora_rank: []
          seed: [1, 1]
        controls:
          ~profiler: yes
        launch:
          nproc_per_node: 0
        outputs:
          base_dir: /x
        """
    )
    before = snapshot(path.parent)
    found = refusals(cli("generate", path))
    assert [(line, message.split(":")[0].split(" ")[0]) for _, line, message in found] == [
        (4, "unknown"),
        (5, "experiment.tags"),
        (9, "variables.model.lora_rank"),
        (10, "variables.seed"),
        (12, "'~profiler'"),
        (14, "launch.nproc_per_node"),
        (15, "unknown"),
    ]
    assert all(where.endswith("exp/experiment.yaml") for where, _, _ in found)
    assert snapshot(path.parent) == before


def test_mistakes_against_the_base_are_reported_together(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD
        + """
        variables:
          optimizer.learning_rate: [1e-4, 3e-4]
          batch_size: [big, 4]
          model.lora_rank: [8, 16]
        controls:
          lora_rnk: 8
          output_dir: /scratch/{nope}
          metric_logger:
            log_dir: /logs/${foo
        """
    )
    before = snapshot(path.parent)
    found = refusals(cli("generate", path))
    lines = [line for _, line, _ in found]
    assert lines == sorted(lines) == [7, 8, 11, 12, 14]
    messages = [message for _, _, message in found]
    assert "did you mean 'optimizer.lr'" in messages[0]
    assert "batch_size" in messages[1] and "integer" in messages[1]
    assert "lora_rnk" in messages[2]
    assert "{nope} names no variable" in messages[3]
    assert "OmegaConf" in messages[4]
    assert snapshot(path.parent) == before


def test_a_value_that_names_a_misplaced_variable_gets_no_second_error(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD
        + """
        variables:
          lora_rnk: [8, 16]
        controls:
          output_dir: /scratch/r{lora_rnk}
        """
    )
    [(_, line, message)] = refusals(cli("generate", path))
    assert line == 7 and "lora_rnk" in message


def test_generate_of_several_experiments_reports_the_mistakes_of_each(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    text = "experiment:\n  name: {name}\n  framework: torchtune\n  colour: red\n"
    text += f"framework_config:\n  base_config: {RECIPE}\n"
    first = write_experiment(text.format(name="one"), folder="one")
    second = write_experiment(text.format(name="two"), folder="two")
    found = refusals(cli("generate", first, second))
    assert [(Path(where).parent.name, line) for where, line, _ in found] == [("one", 4), ("two", 4)]
    assert not (first.parent / "configs").exists() and not (second.parent / "configs").exists()


def test_the_api_raises_one_error_that_holds_each_mistake(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        f"experiment:\n  name: s\n  framework: torchtune\n  a: 1\n  b: 2\n"
        f"framework_config:\n  base_config: {RECIPE}\n"
    )
    with pytest.raises(ConfigWriterError) as raised:
        generate(path)
    assert [error.line for error in raised.value.errors] == [4, 5]
    assert str(raised.value).splitlines() == [str(error) for error in raised.value.errors]
