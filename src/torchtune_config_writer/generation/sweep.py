"""The full factorial sweep: one run per combination of variable values, in the order written."""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ..experiment.design import Rule, grid
from ..experiment.parameters import linked_axes, run_count
from ..keypaths import KeyPath
from .merge import DELETE, merge_at
from .output_dirs import OUTPUT_DIR, output_keys, references, split_value
from .placement import Placement, lookup
from .run_ids import RecordedIds, RunIds, assign_ids, combination_key, fresh_ids, run_number
from .templates import RUN_ID, fill, needs_filling, placeholders, text_of


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


def value_index(variables: tuple[Placement, ...], variable: Placement, run_index: int) -> int:
    """Which of ``variable``'s values combination ``run_index`` has (last axis fastest)."""
    axes = _axes(variables)
    position = next(n for n, axis in enumerate(axes) if variable in axis)
    faster = math.prod(len(axis[0].parameter.values) for axis in axes[position + 1 :])
    return run_index // faster % len(variable.parameter.values)


# A run id that is not known yet reads as the placeholder it fills (see run_ids._without_id).
RUN_ID_KEPT = itertools.repeat("{run_id}")


def _deleting(placement: Placement, value: Any) -> Any:
    """A condition's ``~key`` deletes the key, as a control's does."""
    return DELETE if placement.parameter.name.startswith("~") else value


def holds_run_id(variables: tuple[Placement, ...]) -> bool:
    """Whether some variable's value holds ``{run_id}`` (the mapping records it filled)."""
    return any(
        name == RUN_ID
        for placement in variables
        for value in placement.parameter.values
        for _, name in placeholders(value)
    )


def _axes(variables: tuple[Placement, ...]) -> list[tuple[Placement, ...]]:
    return list(linked_axes(variables, lambda placement: placement.parameter))


class Sweep:
    """The runs of an experiment: its controlled base crossed with its variables.

    Args:
        controlled: The base with the controls merged in (placeholders not yet filled).
        variables: The variables, resolved and type-checked against ``controlled``.
        templated: The controls whose values hold placeholders, filled in for each run.
        recorded: The ids the committed ``run_mapping.yaml`` gives, or ``None`` to number the
            runs in sweep order.
        combinations: Each run's value index for each variable, in sweep order, where
            ``exclude`` or ``search`` chose them; ``None`` for the full grid.
        conditional: Each condition's rule and the keys it sets, merged into the runs it
            matches after the variables.
    """

    def __init__(
        self,
        controlled: dict[str, Any],
        variables: tuple[Placement, ...],
        templated: tuple[Placement, ...] = (),
        recorded: RecordedIds | None = None,
        combinations: tuple[tuple[int, ...], ...] | None = None,
        conditional: tuple[tuple[Rule, tuple[Placement, ...]], ...] = (),
    ) -> None:
        self.controlled = controlled
        self.variables = variables
        self.templated = templated
        self.conditional = conditional
        self._given = combinations
        self._axes = _axes(variables)
        self.count = (
            len(combinations)
            if combinations is not None
            else run_count(placement.parameter for placement in variables)
        )
        self._fills = (
            bool(templated)
            or any(needs_filling(value) for p in variables for value in p.parameter.values)
            or any(needs_filling(p.parameter.values[0]) for _, sets in conditional for p in sets)
        )
        # How each value reads in a placeholder, worked out once rather than once per run.
        self._texts = [
            (p.parameter.name.lstrip("+"), [text_of(value) for value in p.parameter.values])
            for p in variables
        ]
        self.ids = fresh_ids(self.count) if recorded is None else self._assign(recorded)
        self._positions = (
            None
            if self.ids.in_sweep_order
            else {number: index for index, number in enumerate(self.ids.numbers)}
        )

    def _assign(self, recorded: RecordedIds) -> RunIds:
        """The ids of the combinations, each known by the values the mapping records for it."""
        names = [placement.parameter.name for placement in self.variables]
        keys = [
            combination_key(dict(zip(names, values, strict=True)))
            for values, _ in self._values(self._positions_in_sweep_order(), RUN_ID_KEPT)
        ]
        return assign_ids(keys, recorded)

    def value_index(self, run_id: str, variable: Placement) -> int | None:
        """Which of ``variable``'s values run ``run_id`` has; ``None`` for no run."""
        position = self.position(run_id)
        if position is None:
            return None
        if self._given is not None:
            return self._given[position][self.variables.index(variable)]
        return value_index(self.variables, variable, position)

    def position(self, run_id: str) -> int | None:
        """Which combination, in sweep order, run ``run_id`` is; ``None`` for no run."""
        number = run_number(run_id)
        if number is None:
            return None
        if self._positions is None:
            return number if number < self.count else None
        return self._positions.get(number)

    def runs(
        self,
        split: tuple[KeyPath, ...] = (),
        generation: tuple[str, tuple[KeyPath, ...]] | None = None,
    ) -> Iterator[Run]:
        """Every run, the last variable changing fastest.

        Args:
            split: Output keys whose folder each run gets its own of, by appending its run id.
            generation: A timestamped generation's folder name and the output keys that
                follow no other: they get the name inserted, so that no two generations write
                to one folder (``/scratch/study/study_20261202_120000/run_000``).
        """
        name, roots = generation if generation is not None else ("", ())
        changed = tuple(dict.fromkeys((*roots, *split)))
        names = [placement.parameter.name for placement in self.variables]
        for ident, values, controls in self._combinations():
            config = self.controlled
            for placement, value in zip(self.variables, values, strict=True):
                config = merge_at(config, placement.path, value)
            for placement, value in controls:
                config = merge_at(config, placement.path, _deleting(placement, value))
            for path in changed:
                value = lookup(config, path)
                if not isinstance(value, str):
                    continue
                if path in roots:
                    value = split_value(value, name)
                if path in split:
                    value = split_value(value, ident)
                config = merge_at(config, path, value)  # the key keeps its place in the order
            yield Run(ident, dict(zip(names, values, strict=True)), config)

    def output_runs(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each run's id and config, with only what can change where runs write merged in.

        A variable merges in when its key could hold an output folder or be referred to from
        one (``${output_dir}``), and the controls holding placeholders always do; the others
        (``model.lora_rank``) are skipped, and runs that merge nothing share one config.
        """
        keys = self.output_keys()
        wanted = {key[0] for key in keys}
        wanted.update(references(self.controlled))
        for placement in self.variables:
            for value in placement.parameter.values:
                wanted.update(references(value))
        return self.runs_under(wanted)

    def runs_under(self, keys: Collection[str | int]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Each run's id and config with only the variables under the top-level ``keys`` merged
        in, and the controls that differ from run to run (holding placeholders, a condition's);
        runs that merge nothing share one config, ``controlled`` itself."""
        merged = [i for i, p in enumerate(self.variables) if p.path[0] in keys]
        for ident, values, controls in self._combinations():
            config = self.controlled
            for index in merged:
                config = merge_at(config, self.variables[index].path, values[index])
            for placement, value in controls:
                config = merge_at(config, placement.path, _deleting(placement, value))
            yield ident, config

    def output_keys(self) -> tuple[KeyPath, ...]:
        """The output keys any run has, top-level ``output_dir`` first, then in config order."""
        found = dict.fromkeys(output_keys(self.controlled))
        for placement in self.variables:
            for value in placement.parameter.values:
                found.update(dict.fromkeys(output_keys(value, placement.path)))
        return tuple(sorted(found, key=lambda keypath: keypath != (OUTPUT_DIR,)))

    def _positions_in_sweep_order(self) -> Iterator[list[int]]:
        """Each combination's value index for each variable, the last variable fastest."""
        if self._given is not None:
            yield from (list(at) for at in self._given)
            return
        yield from grid(tuple(placement.parameter for placement in self.variables))

    def _combinations(self) -> Iterator[tuple[str, list[Any], list[tuple[Placement, Any]]]]:
        """Each run's id, its variables' values and its templated controls' values, filled in,
        in run id order."""
        ids = self.ids
        positions: Iterable[list[int]] = self._positions_in_sweep_order()
        numbers: Iterable[int] = ids.numbers
        if self._positions is not None:
            ordered = sorted(zip(ids.numbers, positions, strict=True))
            numbers = [number for number, _ in ordered]
            positions = [at for _, at in ordered]
        idents = [ids.name(number) for number in numbers]
        for ident, (values, controls) in zip(idents, self._values(positions, idents), strict=True):
            yield ident, values, controls

    def _values(
        self, positions: Iterable[list[int]], run_ids: Iterable[str]
    ) -> Iterator[tuple[list[Any], list[tuple[Placement, Any]]]]:
        """The variables' and the templated controls' values at each position, filled in."""
        for at, ident in zip(positions, run_ids, strict=False):
            values = [p.parameter.values[i] for p, i in zip(self.variables, at, strict=True)]
            # A condition's keys follow the templated controls (merged after the variables).
            sets = [
                p for rule, placements in self.conditional if rule.matches(at) for p in placements
            ]
            if not self._fills:
                yield values, [(p, p.parameter.values[0]) for p in sets]
                continue
            texts = {RUN_ID: ident}
            for (name, each), i in zip(self._texts, at, strict=True):
                text = each[i]
                if text is not None:
                    texts[name] = text
            controls = [(p, fill(p.parameter.values[0], texts)) for p in (*self.templated, *sets)]
            yield [fill(value, texts) for value in values], controls
