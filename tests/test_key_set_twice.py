"""No key is set by two entries: the linear check reports exactly what the plain pairwise one
did, on random entries, and the work of a large experiment grows linearly (lines run, counted)."""

from __future__ import annotations

import random
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.experiment.parameters import Parameter
from torchtune_config_writer.generation.placement import (
    Placement,
    Section,
    _check_no_key_set_twice,
    _leaf_paths,
)
from torchtune_config_writer.keypaths import KeyPath, dotted

from .conftest import experiment_text


class Refused(Exception):
    pass


class FakeExperiment:
    def error(self, message: str, keypath: KeyPath = ()) -> Refused:
        return Refused(message, keypath)


def pairwise(placements: tuple[Placement, ...]) -> tuple[Any, ...] | None:
    """The check as it was: every leaf against every key path set before it."""
    owners: dict[KeyPath, Placement] = {}
    for placement in placements:
        for value in placement.parameter.values:
            for leaf in _leaf_paths(value, placement.path):
                for other_path, other in owners.items():
                    shorter, longer = sorted((leaf, other_path), key=len)
                    if other is placement or longer[: len(shorter)] != shorter:
                        continue
                    both = (
                        "a variable and a control"
                        if other.section != placement.section
                        else f"two {placement.section}"
                    )
                    return (
                        f"'{other.parameter.name}' and '{placement.parameter.name}' both set "
                        f"{dotted(min(leaf, other_path, key=len))}: a key may not be set by "
                        f"{both}; keep one",
                        placement.parameter.keypath,
                    )
                owners[leaf] = placement
    return None


def random_value(rng: random.Random, depth: int) -> Any:
    if depth > 2 or rng.random() < 0.5:
        return rng.randint(0, 3)
    return {rng.choice("abc"): random_value(rng, depth + 1) for _ in range(rng.randint(1, 2))}


def random_placements(rng: random.Random) -> Iterator[Placement]:
    for index in range(rng.randint(1, 6)):
        path = tuple(rng.choice("abc") for _ in range(rng.randint(1, 3)))
        section = rng.choice([Section.CONTROLS, Section.VARIABLES])
        count = 1 if section is Section.CONTROLS else rng.randint(1, 2)
        values = tuple(random_value(rng, len(path)) for _ in range(count))
        parameter = Parameter(f"p{index}", values, (section.value, f"p{index}"))
        yield Placement(parameter, path, section)


def test_the_linear_check_reports_what_the_pairwise_one_did() -> None:
    rng = random.Random(0)
    clashes = 0
    for _ in range(3000):
        placements = tuple(random_placements(rng))
        expected = pairwise(placements)
        try:
            _check_no_key_set_twice(FakeExperiment(), placements)  # type: ignore[arg-type]
            got = None
        except Refused as refused:
            got = refused.args
        assert got == expected, placements
        clashes += expected is not None
    assert 300 < clashes < 2700  # both outcomes are well exercised


def steps_to_generate(path: Path) -> int:
    """The lines of Python that generating ``path`` runs, loops counted per turn: work done,
    counted the same on any machine, where a time would not be."""
    count = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal count
        count += 1
        return trace

    sys.settrace(trace)
    try:
        generate(path)
    finally:
        sys.settrace(None)
    return count


def test_new_keys_cost_linear_work(write_experiment: Callable[..., Path]) -> None:
    # Twice the keys, twice the work (a quadratic check would make it four times).
    generate(write_experiment(experiment_text(), folder="warm"))  # lazy imports done first
    calls = []
    for keys in (1000, 2000):
        controls = "\n".join(f"+key_{index}: 1" for index in range(keys))
        experiment = experiment_text(controls=controls)
        calls.append(steps_to_generate(write_experiment(experiment, folder=f"exp{keys}")))
    assert calls[1] < 2.3 * calls[0], calls


def test_values_of_a_list_cost_linear_work(write_experiment: Callable[..., Path]) -> None:
    generate(write_experiment(experiment_text(), folder="warm"))
    calls = []
    for count in (5000, 10000):
        values = ", ".join(["1"] * count)
        experiment = experiment_text(controls=f"+big_list: [{values}]")
        calls.append(steps_to_generate(write_experiment(experiment, folder=f"exp{count}")))
    assert calls[1] < 2.3 * calls[0], calls


@pytest.mark.slow
def test_eight_thousand_new_keys_generate(write_experiment: Callable[..., Path]) -> None:
    controls = "\n".join(f"+key_{index}: 1" for index in range(8000))
    path = write_experiment(experiment_text(controls=controls))
    generated = generate(path)
    assert generated.plan.run_count == 1


def test_an_experiment_file_over_a_mebibyte_is_refused_before_it_is_read(
    write_experiment: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    controls = "\n".join(f"+key_{index}: {'x' * 40}" for index in range(25000))
    path = write_experiment(experiment_text(controls=controls))
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.startswith(f"error: {path}: is 1.")
    assert result.err.endswith(
        "MiB, more than the 1 MiB an experiment file may be: split the study into several "
        "experiment folders\n"
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["experiment.yaml"]


@pytest.mark.slow
def test_an_experiment_of_too_many_values_is_refused_at_the_key_that_holds_them(
    write_experiment: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    # Under a mebibyte, but 150,001 values: minutes of merging and writing, refused instead.
    values = ", ".join(["1"] * 150_000)
    path = write_experiment(experiment_text(controls=f"epochs: 1\n+big_list: [{values}]"))
    line = path.read_text(encoding="utf-8").splitlines().index(f"  +big_list: [{values}]") + 1
    result = cli("generate", path)
    assert result.code == 2
    assert re.fullmatch(
        rf"error: {re.escape(str(path))}:{line}:3: holds 150,0\d\d values, more than the "
        r"100,000 a config may: split it into smaller files or studies\n",
        result.err,
    )
    assert sorted(p.name for p in path.parent.iterdir()) == ["experiment.yaml"]


@pytest.mark.slow
def test_a_hundred_thousand_values_may_still_be_written(
    write_experiment: Callable[..., Path],
) -> None:
    values = ", ".join(["1"] * 90_000)
    path = write_experiment(experiment_text(controls=f"+big_list: [{values}]"))
    assert generate(path).plan.run_count == 1
