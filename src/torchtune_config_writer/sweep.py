"""The full factorial sweep: one run per combination of variable values, in the order written."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .merge import merge_at
from .parameters import Placement

OUTPUT_DIR = "output_dir"


@dataclass(frozen=True)
class Run:
    """One generated config.

    Attributes:
        id: ``run_000``, ``run_001``, ...
        params: Each variable's value in this run, by the name written in the experiment.
        config: The complete merged config.
    """

    id: str
    params: dict[str, Any]
    config: dict[str, Any]


def run_id(index: int, count: int) -> str:
    """``run_007``: three digits, more when a sweep has 1000 runs or more (``run_0007``)."""
    return f"run_{index:0{max(3, len(str(count)))}d}"


def run_count(variables: tuple[Placement, ...]) -> int:
    """The number of runs: the product of the variables' lengths (1 without variables)."""
    return math.prod(len(placement.parameter.values) for placement in variables)


def iter_runs(
    controlled: dict[str, Any], variables: tuple[Placement, ...], split_output_dir: bool
) -> Iterator[Run]:
    """Every run of the sweep, the last variable changing fastest.

    Args:
        controlled: The base with the controls merged in.
        variables: The variables, resolved and type-checked against ``controlled``.
        split_output_dir: Give each run its own ``output_dir`` by appending the run id.
    """
    count = run_count(variables)
    names = [placement.parameter.name for placement in variables]
    combinations = itertools.product(*(placement.parameter.values for placement in variables))
    for index, values in enumerate(combinations):
        config = controlled
        for placement, value in zip(variables, values, strict=True):
            config = merge_at(config, placement.path, value)
        ident = run_id(index, count)
        if split_output_dir:
            config = dict(config)  # the key keeps its place in the order
            config[OUTPUT_DIR] = f"{str(config[OUTPUT_DIR]).rstrip('/')}/{ident}"
        yield Run(ident, dict(zip(names, values, strict=True)), config)


def runs_share_output_dir(controlled: dict[str, Any], variables: tuple[Placement, ...]) -> bool:
    """Whether runs would write checkpoints to one ``output_dir`` (torchtune would mix them).

    Each value of a variable occurs in ``count / len(values)`` runs, so runs share an
    ``output_dir`` exactly when no variable sets it to a value of its own for every run.
    """
    count = run_count(variables)
    for placement in variables:
        if placement.path == (OUTPUT_DIR,):
            values = placement.parameter.values
            return count > len(values) and all(isinstance(value, str) for value in values)
    return count > 1 and isinstance(controlled.get(OUTPUT_DIR), str)
