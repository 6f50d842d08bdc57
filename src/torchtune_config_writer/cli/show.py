"""``show EXP``: what each run of an experiment changes in its base config, as a plain text table;
writes nothing.

A run is compared with the base as :mod:`~torchtune_config_writer.config_diff` compares configs
(the comparison ``diff`` makes too): mappings key by key, a list whose mappings were merged into
(``dataset.0.packed: true``) item by item, every other value whole. A key path set to one value
in every run is listed once; the key paths that differ between runs are the columns of a table
of runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..config_diff import MISSING, differences, same
from ..errors import ExitCode
from ..generation.placement import lookup
from ..generation.plan import Plan, plan_experiment
from ..yaml_io import KeyPath, dump_inline
from .common import add_max_runs


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], summary: str) -> None:
    parser = commands.add_parser("show", help=summary)
    parser.add_argument(
        "experiment", type=Path, metavar="EXP", help="an experiment.yaml, or the folder holding one"
    )
    add_max_runs(parser)
    parser.add_argument(
        "--wide",
        action="store_true",
        help=f"show every value whole (by default values are cut at {DEFAULT_CELL_WIDTH} "
        "characters)",
    )


def run(args: argparse.Namespace) -> int:
    plan = plan_experiment(args.experiment, max_runs=args.max_runs)
    cell_width = None if args.wide else DEFAULT_CELL_WIDTH
    sys.stdout.write(format_runs(plan, cell_width=cell_width, unicode=_can_show("→…")))
    return ExitCode.OK


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


def _can_show(text: str) -> bool:
    try:
        text.encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


DEFAULT_CELL_WIDTH = 60
_GAP = "  "


def format_runs(
    plan: Plan, *, cell_width: int | None = DEFAULT_CELL_WIDTH, unicode: bool = True
) -> str:
    """The runs of a plan and what each changes relative to its base config.

    Args:
        plan: The checked plan.
        cell_width: Cut longer values to this many characters, ending with an ellipsis;
            ``None`` shows every value whole.
        unicode: Write ``→`` and ``…``; ``False`` writes ``->`` and ``...`` instead, for terminals
            that cannot show them.

    Returns:
        The text, ending with a newline: a title line, the key paths every run sets to one
        value (base value → value), then a table of the key paths that differ between runs,
        with a ``(base)`` row. Keys the base does not have show as ``(new)``, keys a run does
        not have as ``-``.
    """
    arrow, ellipsis = ("→", "…") if unicode else ("->", "...")

    def cut(text: str) -> str:
        if cell_width is None or len(text) <= cell_width:
            return text
        return text[: max(cell_width - len(ellipsis), 0)] + ellipsis

    def cut_middle(text: str) -> str:
        # The start and the end: lists of modules often differ only in their last items.
        if cell_width is None or len(text) <= cell_width:
            return text
        keep = max(cell_width - len(ellipsis), 2)
        return text[: keep - keep // 2] + ellipsis + text[len(text) - keep // 2 :]

    def cell(value: Any, missing: str) -> str:
        return cut(missing if value is MISSING else dump_inline(value))

    base = plan.base.config
    changes = _collect_changes(plan)
    order = _key_order(base, changes)
    shared = [path for path in order if changes[path].in_every_run(plan.run_count)]
    columns = [path for path in order if not changes[path].in_every_run(plan.run_count)]
    # The variables' columns in the order written (the fastest-changing last), after the keys
    # that differ for another reason (an output folder split per run).
    setters = [placement.path for placement in plan.variables]

    def written(path: KeyPath) -> tuple[int, int]:
        ranks = [rank for rank, at in enumerate(setters) if path[: len(at)] == at]
        return (1, ranks[0]) if ranks else (0, 0)

    columns.sort(key=written)

    runs = "1 run" if plan.run_count == 1 else f"{plan.run_count} runs"
    lines = [f"{plan.experiment.name}: {runs} of {plan.base.label}", *_design_lines(plan), ""]
    if shared:
        lines.append("Every run changes:" if plan.run_count > 1 else "The run changes:")
        rows = [
            (_display_path(path), cell(lookup(base, path), "(new)"), cell(changes[path].value, "-"))
            for path in shared
        ]
        path_width = max(len(path) for path, _, _ in rows)
        old_width = max(len(old) for _, old, _ in rows)
        for path, old, new in rows:
            lines.append(f"{_GAP}{path:<{path_width}}{_GAP}{old:<{old_width}} {arrow} {new}")
    elif plan.run_count > 1:
        lines.append("No change is shared by every run.")
    else:
        lines.append("The run is the base config, unchanged.")
    if columns:
        table = [
            ["run", *(_display_path(path) for path in columns)],
            ["(base)", *(cell(lookup(base, path), "(new)") for path in columns)],
        ]
        # A second pass over the sweep: a column's width is known only once every run has been
        # compared, and keeping every run's config would hold the whole sweep in memory.
        for run in plan.runs():
            texts = [dump_inline(v) if (v := lookup(run.config, path)) is not MISSING else "-"
                     for path in columns]  # fmt: skip
            table.append([run.id, *texts])
        lines.append("")
        lines.extend(_align(_cut_columns(table, (cut, cut_middle))))
    return "\n".join(lines) + "\n"


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


def _collect_changes(plan: Plan) -> dict[KeyPath, _Change]:
    changes: dict[KeyPath, _Change] = {}
    for run in plan.runs():
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


def _display_path(path: KeyPath) -> str:
    """``model.lora_rank``; a key a terminal cannot show on one line is written as YAML."""
    return ".".join(str(key) if str(key).isprintable() else dump_inline(key) for key in path)


def _cut_columns(table: list[list[str]], cuts: tuple[Any, ...]) -> list[list[str]]:
    """The runs' cells cut to the cell width at their end, or where that makes two different
    values read alike, at their middle, or else whole: runs must be told apart."""
    header, base, *runs = table
    for column in range(1, len(header)):
        whole = {row[column] for row in runs}
        for cut in cuts:
            if len({cut(text) for text in whole}) == len(whole):
                for row in runs:
                    row[column] = cut(row[column])
                break
    return [header, base, *runs]


def _align(rows: list[list[str]]) -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell, no trailing spaces."""
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return [
        _GAP.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
