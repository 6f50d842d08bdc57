"""Designing a study: combinations excluded, values set only for some, seeded random search."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.experiment.design import SIGNIFICANT_DIGITS, draw_value

from .conftest import RECIPE, CliResult, mapping_of, runs_of, snapshot

HEAD = f"""\
experiment:
  name: study
  framework: torchtune
framework_config:
  base_config: {RECIPE}
"""
GRID = "variables:\n  batch_size: [2, 4, 8]\n  lora_rank: [8, 16, 64]\n"
SEARCH = """\
variables:
  optimizer.lr: {log_uniform: [1e-5, 1e-3]}
  lora_rank: [8, 16, 32]
  lora_dropout: {uniform: [0.0, 0.1]}
  batch_size: {integer: [1, 8]}
"""


def params(path: Path) -> list[dict[str, Any]]:
    return [run["params"] for run in mapping_of(path)]


def refused(cli: Callable[..., CliResult], path: Path) -> list[tuple[int, str]]:
    """Each error as (line, message); nothing is written."""
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2 and result.out == "", result.out
    assert snapshot(path.parent) == before
    found = []
    for line in result.err.splitlines():
        where, message = line.removeprefix("error: ").split(": ", 1)
        found.append((int(where.split(":")[1]), message))
    return found


def test_exclude_leaves_out_the_combinations_it_names_and_the_rest_number_in_order(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        HEAD
        + GRID
        + "exclude:\n  - {batch_size: 8, lora_rank: 64}\n  - {batch_size: 2, lora_rank: 8}\n"
    )
    generate(path)
    combos = [(p["batch_size"], p["lora_rank"]) for p in params(path)]
    assert combos == [(2, 16), (2, 64), (4, 8), (4, 16), (4, 64), (8, 8), (8, 16)]
    assert [run["id"] for run in mapping_of(path)] == [f"run_{n:03d}" for n in range(7)]
    assert [run["batch_size"] for run in runs_of(path)] == [2, 2, 4, 4, 4, 8, 8]


def test_a_condition_sets_its_keys_only_in_the_runs_it_names(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD
        + GRID
        + "conditions:\n  - when: {batch_size: 2}\n    set: {gradient_accumulation_steps: 16}\n"
        + "  - when: {batch_size: 8, lora_rank: 64}\n    set: {optimizer.lr: 1e-5}\n"
    )
    generate(path)
    for run in runs_of(path):
        wanted = 16 if run["batch_size"] == 2 else 8  # the recipe config's own is 8
        assert run["gradient_accumulation_steps"] == wanted
        both = run["batch_size"] == 8 and run["model"]["lora_rank"] == 64
        assert (run["optimizer"]["lr"] == 1e-5) is both
    shown = cli("show", path).out
    assert "when batch_size is 2: set gradient_accumulation_steps to 16 (3 runs)" in shown


def test_every_rule_must_match_and_name_real_variables_and_values(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD
        + "variables:\n  batch_size: [2, 4]\n  lora_size:\n    lora_rank: [8, 16]\n"
        + "    lora_alpha: [16, 32]\n"
        + "exclude:\n  - {batch_sise: 2}\n  - {batch_size: 3}\n  - {lora_rank: 8, lora_alpha: 32}\n"
        + "conditions:\n  - when: {lora_rank: 16, lora_alpha: 16}\n    set: {seed: 1}\n"
        + "  - when: {batch_size: 2}\n    set: {batch_size: 4}\n"
    )
    errors = refused(cli, path)
    assert [line for line, _ in errors] == [12, 13, 19], errors
    messages = [message for _, message in errors]
    assert "'batch_sise' is not a variable: did you mean 'batch_size'?" in messages[0]
    assert "batch_size has no value 3: it has 2, 4" in messages[1]
    assert "'batch_size' is a variable" in messages[2]
    # Well formed, they are matched against the runs: a linked group's values go together,
    # and the condition on batch_size 2 meets no run once batch_size 2 is excluded.
    text = path.read_text().replace("batch_sise", "batch_size").replace("batch_size: 3", "seed: 0")
    text = text.replace("  - {seed: 0}\n", "").replace("set: {batch_size: 4}", "set: {seed: 4}")
    path.write_text(text)
    errors = refused(cli, path)
    assert [line for line, _ in errors] == [13, 15, 17], errors
    assert all("matches no combination" in message for _, message in errors)


def test_a_condition_value_is_checked_against_the_base_and_two_may_not_clash(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD
        + GRID
        + "conditions:\n  - when: {batch_size: 2}\n    set: {gradient_accumulation_steps: many}\n"
    )
    [(line, message)] = refused(cli, path)
    assert line == 11 and "gradient_accumulation_steps is an integer in the base" in message
    path.write_text(
        HEAD
        + GRID
        + "conditions:\n  - when: {batch_size: 2}\n    set: {seed: 1}\n"
        + "  - when: {lora_rank: 8}\n    set: {seed: 2}\n"
    )
    [(line, message)] = refused(cli, path)
    assert line == 12 and "two conditions set seed in the same runs" in message


def test_a_seeded_search_draws_the_same_runs_anywhere_and_more_runs_keep_the_first(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(HEAD + SEARCH + "search: {random: 6, seed: 7}\n")
    generate(path)
    drawn = params(path)
    assert len(drawn) == 6 and len({str(p) for p in drawn}) == 6
    # The promise to every machine and every Python: seed 7 draws these (SHA-256, decimal).
    assert drawn[0] == {
        "optimizer.lr": 2.793e-05,
        "lora_rank": 8,
        "lora_dropout": 0.01969,
        "batch_size": 4,
    }
    copy = tmp_path / "elsewhere"
    shutil.copytree(path.parent, copy)
    shutil.rmtree(copy / "configs")
    generate(copy)
    assert snapshot(copy / "configs") == snapshot(path.parent / "configs")
    path.write_text(path.read_text().replace("random: 6", "random: 9"))
    generate(path)
    grown = params(path)
    assert grown[:6] == drawn and len(grown) == 9
    path.write_text(path.read_text().replace("seed: 7", "seed: 8"))
    generate(path, renumber=True)
    assert params(path)[:6] != drawn


def test_drawn_values_stay_in_their_ranges_and_read_as_four_digits() -> None:
    units = [n / 997 for n in range(997)]
    logs = [draw_value("log_uniform", 1e-5, 1e-3, u) for u in units]
    assert all(1e-5 <= value <= 1e-3 for value in logs)
    assert all(
        len(f"{value:.{SIGNIFICANT_DIGITS}g}") <= 9 and float(f"{value:.4g}") == value
        for value in logs
    )
    integers = {draw_value("integer", 1, 8, u) for u in units}
    assert integers == set(range(1, 9))
    assert draw_value("uniform", 0.0, 0.1, 0.5) == 0.05


def test_a_search_of_the_grid_alone_samples_different_combinations(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(
        HEAD + GRID + "exclude:\n  - {batch_size: 8}\nsearch: {random: 5, seed: 1}\n"
    )
    generate(path)
    combos = [(p["batch_size"], p["lora_rank"]) for p in params(path)]
    assert len(set(combos)) == 5 and all(batch != 8 for batch, _ in combos)
    path.write_text(path.read_text().replace("random: 5", "random: 7"))
    [(line, message)] = refused(cli, path)
    assert "search.random asks for 7 runs, but the grid has only 6" in message


def test_ranges_need_a_search_and_a_sample_past_the_run_limit_is_refused_first(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(HEAD + SEARCH)
    [(line, message)] = refused(cli, path)
    assert line == 7 and "optimizer.lr is a range" in message and "search:" in message
    path.write_text(HEAD + SEARCH + "search: {random: 5000, seed: 1}\n")
    [(line, message)] = refused(cli, path)
    assert "search.random asks for 5,000 runs, more than the limit of 1,000" in message


@pytest.mark.parametrize(
    ("section", "fragment"),
    [
        ("search: {random: 0, seed: 1}", "search.random must be a whole number of at least 1"),
        ("search: {random: 3}", "search.seed must be a whole number"),
        ("search: {randum: 3, seed: 1}", "did you mean 'random'?"),
        ("exclude: {batch_size: 2}", "exclude is a list"),
        ("conditions:\n  - when: {batch_size: 2}", "a condition has when: and set:"),
    ],
)
def test_malformed_sections_are_one_error_each(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    section: str,
    fragment: str,
) -> None:
    path = write_experiment(HEAD + GRID + section + "\n")
    [(_, message)] = refused(cli, path)
    assert fragment in message


def test_a_condition_may_delete_a_key_in_its_runs(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        HEAD + GRID + "conditions:\n  - when: {lora_rank: 64}\n    set: {~profiler: }\n"
    )
    generate(path)
    for run in runs_of(path):
        assert ("profiler" in run) is (run["model"]["lora_rank"] != 64)
