"""What each run of a sweep changes in its base config: the result ``show`` reports, as text or
JSON.

A run is compared with the base as :mod:`~torchtune_config_writer.config_diff` compares configs
(the comparison ``diff`` makes too): mappings key by key, a list whose mappings were merged into
(``dataset.0.packed: true``) item by item, every other value whole. A key path set to one value
in every run is a shared change; the key paths that differ between runs are the columns of a
table of runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config_diff import differences, same
from ..generation.placement import lookup
from ..generation.plan import Plan
from ..keypaths import KeyPath
from ..yaml_write import dump_inline


@dataclass(frozen=True)
class SharedChange:
    """A key path every run sets to one value.

    Attributes:
        keypath: Where in the config.
        before: The base's value (:data:`~torchtune_config_writer.config_diff.MISSING` where
            the base has none).
        after: The runs' value (``MISSING`` where the runs have none).
    """

    keypath: KeyPath
    before: Any
    after: Any


@dataclass(frozen=True)
class Column:
    """A key path whose value differs between runs.

    Attributes:
        keypath: Where in the config.
        before: The base's value (``MISSING`` where the base has none).
        values: Each run's value, in the order of the runs (``MISSING`` where a run has none).
    """

    keypath: KeyPath
    before: Any
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SweepChanges:
    """What the runs of an experiment change in its base config.

    Attributes:
        experiment: The experiment's name.
        base: The base config's label (``llama3_2/1B_lora_single_device``, ``base.yaml``).
        design: What ``exclude``, ``conditions``, ``search`` and ``evaluation`` did, a line each.
        run_ids: The runs, in order.
        shared: The changes every run makes, in the config's order (new keys after).
        columns: The key paths that differ between runs: those of no variable first, then the
            variables' in the order written (the fastest-changing last).
    """

    experiment: str
    base: str
    design: tuple[str, ...]
    run_ids: tuple[str, ...]
    shared: tuple[SharedChange, ...]
    columns: tuple[Column, ...]


def sweep_changes(plan: Plan) -> SweepChanges:
    """Compare every run of ``plan`` with its base config.

    Args:
        plan: The checked plan.
    """
    base = plan.base.config
    ids: list[str] = []
    changes = _collect_changes(plan, ids)
    order = _key_order(base, changes)
    shared = [path for path in order if changes[path].in_every_run(plan.run_count)]
    varying = [path for path in order if not changes[path].in_every_run(plan.run_count)]
    # The variables' columns in the order written (the fastest-changing last), after the keys
    # that differ for another reason (an output folder split per run).
    setters = [placement.path for placement in plan.variables]

    def written(path: KeyPath) -> tuple[int, int]:
        ranks = [rank for rank, at in enumerate(setters) if path[: len(at)] == at]
        return (1, ranks[0]) if ranks else (0, 0)

    varying.sort(key=written)
    # A second pass over the sweep: the columns are known only once every run has been
    # compared, and keeping every run's config would hold the whole sweep in memory.
    values: list[list[Any]] = [[] for _ in varying]
    for run in plan.runs() if varying else ():
        for column, path in zip(values, varying, strict=True):
            column.append(lookup(run.config, path))
    return SweepChanges(
        experiment=plan.experiment.name,
        base=plan.base.label,
        design=tuple(_design_lines(plan)),
        run_ids=tuple(ids),
        shared=tuple(
            SharedChange(path, lookup(base, path), changes[path].value) for path in shared
        ),
        columns=tuple(
            Column(path, lookup(base, path), tuple(column))
            for path, column in zip(varying, values, strict=True)
        ),
    )


def _design_lines(plan: Plan) -> list[str]:
    """What ``exclude``, ``conditions`` and ``search`` did, one line each."""
    design = plan.experiment.design
    names = [variable.name for variable in design.variables]
    lines = []
    search = plan.experiment.document.data.get("search")
    if isinstance(search, dict):
        lines.append(f"drawn at random: {search['random']} runs, seed {search['seed']}")
    if design.excluded:
        lines.append(f"excluded: {design.excluded} of the combinations (exclude)")
    evaluation = plan.experiment.evaluation
    if evaluation is not None:
        limit = f", limit {evaluation.limit}" if evaluation.limit is not None else ""
        lines.append(
            f"evaluated with eleuther_eval: {', '.join(evaluation.tasks)}{limit} "
            "(configs/eval_run_*.yaml)"
        )
    for condition in design.conditions:
        when = ", ".join(
            f"{names[v]} is {dump_inline(design.variables[v].values[i])}"
            for v, i in condition.when.values
        )
        sets = ", ".join(f"{p.name} to {dump_inline(p.values[0])}" for p in condition.sets)
        matched = sum(condition.when.matches(list(at)) for at in design.combinations or ())
        lines.append(f"when {when}: set {sets} ({matched} runs)")
    return lines


class _Change:
    """How one key path changes across the runs: in how many, and whether always to one value."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.runs = 0
        self.one_value = True

    def add(self, value: Any) -> None:
        if self.runs and self.one_value and not same(self.value, value):
            self.one_value = False
        self.runs += 1

    def in_every_run(self, run_count: int) -> bool:
        return self.runs == run_count and self.one_value


def _collect_changes(plan: Plan, ids: list[str]) -> dict[KeyPath, _Change]:
    """Every key path some run changes; ``ids`` gets the runs' ids, in order."""
    changes: dict[KeyPath, _Change] = {}
    for run in plan.runs():
        ids.append(run.id)
        for difference in differences(plan.base.config, run.config):
            change = changes.get(difference.keypath)
            if change is None:
                change = changes[difference.keypath] = _Change(difference.new)
            change.add(difference.new)
    return changes


def _key_order(base: dict[str, Any], changes: dict[KeyPath, _Change]) -> list[KeyPath]:
    """The changed key paths in the order of the config: the base's order, new keys after."""
    tree = _shape(base)
    for path in changes:  # new keys join their mapping in the order runs first set them
        node = tree
        for key in path:
            node = node.setdefault(key, {})
    order: list[KeyPath] = []

    def walk(node: dict[Any, Any], path: KeyPath) -> None:
        for key, inner in node.items():
            if (*path, key) in changes:
                order.append((*path, key))
            walk(inner, (*path, key))

    walk(tree, ())
    return order


def _shape(value: Any) -> dict[Any, Any]:
    """The keys (and list indexes) of ``value`` as a tree of ordered dicts."""
    if isinstance(value, dict):
        return {key: _shape(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return {index: _shape(inner) for index, inner in enumerate(value)}
    return {}
