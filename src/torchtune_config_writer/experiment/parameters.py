"""``variables`` and ``controls``: the parameters of an experiment, and how the sweep crosses them.

A variable is a list of values to sweep. A mapping under ``variables`` is a linked group: its
variables go together position by position (``lora_rank: [8, 16]`` with ``lora_alpha: [16, 32]``
gives two runs, not four), and the group is crossed with the other variables as one.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from ..errors import ErrorList
from ..keypaths import KeyPath, dotted
from ..yaml_read import Document
from ..yaml_write import dump_inline

T = TypeVar("T")

_PARAMETER = re.compile(r"[+~]?[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*")
_GROUP = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Parameter:
    """One entry of ``variables`` or ``controls``.

    Attributes:
        name: The name as written, e.g. ``learning_rate``, ``optimizer.lr``, ``+clip_grad_norm``.
        values: The values to sweep (a control has exactly one).
        keypath: Where the entry sits in the experiment file, for messages.
        group: The linked group a variable belongs to (its values go with the other members'
            values at the same position), or ``None``.
        drawn_from: The range a variable's values are drawn from by ``search`` (its values
            are then the ones drawn), or ``None``.
    """

    name: str
    values: tuple[Any, ...]
    keypath: KeyPath
    group: str | None = None
    drawn_from: Range | None = None


RANGE_KINDS = ("uniform", "log_uniform", "integer")


@dataclass(frozen=True)
class Range:
    """A variable drawn from a range: ``{log_uniform: [1e-5, 1e-3]}``."""

    kind: str
    low: float
    high: float


def linked_axes(items: Iterable[T], parameter: Callable[[T], Parameter]) -> Iterator[tuple[T, ...]]:
    """``items`` in axes of the sweep: the members of a linked group together, others alone."""
    for group, members in itertools.groupby(items, key=lambda item: parameter(item).group):
        if group is None:
            yield from ((member,) for member in members)
        else:
            yield tuple(members)


def run_count(variables: Iterable[Parameter]) -> int:
    """How many runs the full factorial sweep of ``variables`` gives (a linked group is one
    axis): the one count that the run limit, the sweep and the run ids share."""
    return math.prod(len(axis[0].values) for axis in linked_axes(variables, lambda v: v))


def read_parameters(doc: Document, entries: dict[str, Any], section: str) -> tuple[Parameter, ...]:
    """The entries of ``variables`` or ``controls``, checked, in the order written.

    Raises:
        ConfigWriterError: a name that is not a parameter name, a variable that is not a
            non-empty list of distinct values, or a linked group that does not line up.
    """
    parameters: list[Parameter] = []
    found = ErrorList()  # each entry is checked on its own: every bad one is reported
    for name, value in entries.items():
        parameters.extend(found.attempt(partial(_read_entry, doc, section, name, value), []))
    found.raise_found()
    return tuple(parameters)


def _read_entry(doc: Document, section: str, name: Any, value: Any) -> list[Parameter]:
    keypath = (section, name)
    if section == "variables" and isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in RANGE_KINDS:  # {log_uniform: [1e-5, 1e-3]}
            _check_parameter_name(doc, name, keypath)
            return [Parameter(name, (), keypath, drawn_from=_read_range(doc, name, value, keypath))]
        return _linked_group(doc, name, value)
    _check_parameter_name(doc, name, keypath)
    if name.startswith("~"):  # torchtune's own syntax for deleting a key of the config
        if section != "controls":
            raise doc.error(
                f"'{name}' deletes {name[1:]} in every run: put it under controls (a "
                f"variable's mapping values may hold ~key: too)",
                keypath,
            )
        if value is not None:
            raise doc.error(
                f"'{name}' deletes {name[1:]}: give it no value ({name}:), or drop the ~ to set it",
                keypath,
            )
    if section == "controls":
        return [Parameter(name, (value,), keypath)]
    return [Parameter(name, _sweep_values(doc, value, keypath), keypath)]


def _read_range(doc: Document, name: str, value: dict[str, Any], keypath: KeyPath) -> Range:
    """``{uniform: [low, high]}``, ``{log_uniform: [...]}`` or ``{integer: [...]}``."""
    [(kind, bounds)] = value.items()
    numbers = isinstance(bounds, list) and len(bounds) == 2
    numbers = numbers and all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds
    )
    if not numbers:
        example = "[1, 8]" if kind == "integer" else "[1e-5, 1e-3]"
        what = "two whole numbers" if kind == "integer" else "two numbers"
        raise doc.error(
            f"{name}: {kind} takes [low, high], {what}, e.g. {{{kind}: {example}}}",
            (*keypath, kind),
        )
    low, high = bounds
    if not low < high:
        raise doc.error(f"{name}: {kind} needs low < high, found [{low}, {high}]", (*keypath, kind))
    if kind == "integer" and not all(isinstance(b, int) for b in bounds):
        raise doc.error(f"{name}: integer takes two whole numbers, e.g. [1, 8]", (*keypath, kind))
    if kind == "log_uniform" and low <= 0:
        raise doc.error(f"{name}: log_uniform needs low > 0, found {low}", (*keypath, kind))
    return Range(kind, low, high)


def _check_parameter_name(doc: Document, name: Any, keypath: KeyPath) -> None:
    if not isinstance(name, str) or not _PARAMETER.fullmatch(name):
        raise doc.error(
            f"'{name}' is not a parameter name: write a config key such as lora_rank, a dotted "
            "path such as optimizer.lr, +name to add a new key, or ~name to delete one",
            keypath,
        )


def _sweep_values(
    doc: Document, value: Any, keypath: KeyPath, linked: bool = False
) -> tuple[Any, ...]:
    dotted_name = dotted(keypath)
    if not isinstance(value, list):
        raise doc.error(
            f"{dotted_name} must be a list of the values to sweep, e.g. [8, 16]; "
            + (
                "every variable of a linked group is a list"
                if linked
                else "put a fixed value under controls"
            ),
            keypath,
        )
    if not value:
        raise doc.error(f"{dotted_name} is an empty list: give at least one value", keypath)
    if not linked:  # in a linked group a value may repeat, as long as the combinations do not
        _check_no_repeats(
            doc,
            [(dump_inline(item),) for item in value],
            keypath,
            f"{dotted_name} repeats the value",
        )
    return tuple(value)


def _check_no_repeats(
    doc: Document, idents: list[tuple[str, ...]], keypath: KeyPath, what: str, noun: str = "value"
) -> None:
    # Compared as written: 1, 1.0 and true are different values in a config.
    seen: dict[tuple[str, ...], int] = {}
    for index, ident in enumerate(idents):
        if ident in seen:
            shown = ident[0] if len(ident) == 1 else f"({', '.join(ident)})"
            raise doc.error(
                f"{what} {shown} (items {seen[ident] + 1} and {index + 1}): each {noun} once",
                (*keypath, index),
            )
        seen[ident] = index


def _linked_group(doc: Document, group: str, members: dict[str, Any]) -> list[Parameter]:
    """A mapping under ``variables``: variables that go together, the i-th values in one run."""
    keypath = ("variables", group)
    if not _GROUP.fullmatch(group):
        raise doc.error(
            f"'{group}' names a linked group of variables: use letters, digits and '_' only",
            keypath,
        )
    if len(members) < 2:
        member = next(iter(members), "key")
        raise doc.error(
            f"variables.{group} is a mapping, which links the variables in it, but it has "
            f"{'only ' + str(member) if members else 'none'}: link two or more, each a list of "
            f"values; to sweep one, write it as a variable: {member}: [...], or "
            f"{group}.{member}: [...] for a key inside {group}",
            keypath,
        )
    parameters: list[Parameter] = []
    for name, value in members.items():
        _check_parameter_name(doc, name, (*keypath, name))
        values = _sweep_values(doc, value, (*keypath, name), linked=True)
        first = parameters[0] if parameters else None
        if first is not None and len(values) != len(first.values):
            raise doc.error(
                f"variables.{group}.{name} has {len(values)} values but {first.name} has "
                f"{len(first.values)}: linked variables go together position by position, so "
                "give each the same number of values",
                (*keypath, name),
            )
        parameters.append(Parameter(name, values, (*keypath, name), group))
    combinations = [
        tuple(dump_inline(member.values[index]) for member in parameters)
        for index in range(len(parameters[0].values))
    ]
    _check_no_repeats(
        doc,
        combinations,
        (*keypath, parameters[0].name),
        f"variables.{group} repeats the combination",
        "combination",
    )
    return parameters


def check_variables_are_not_controls(
    doc: Document, variables: tuple[Parameter, ...], controls: tuple[Parameter, ...]
) -> None:
    control_names = {control.name for control in controls}
    for variable in variables:
        if variable.name in control_names:
            raise doc.error(
                f"'{variable.name}' is both a variable and a control: keep it in one of them",
                ("controls", variable.name),
            )
