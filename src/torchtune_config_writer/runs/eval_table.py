"""lm_eval's results table in an evaluation's log: torchtune 0.6.1's ``eleuther_eval`` recipe
writes no results file, it logs ``lm_eval.utils.make_table(output)`` (a Markdown table, written by
pytablewriter) and that log is the only record of its metrics.

The table, as lm_eval 0.4.3 and later print it (0.4.0-0.4.2 have no arrow column; the columns
are found by their headers)::

    |    Tasks     |Version|     Filter     |n-shot|  Metric  |   |Value |   |Stderr|
    |--------------|------:|----------------|-----:|----------|---|-----:|---|-----:|
    |gsm8k         |      3|flexible-extract|     5|exact_match|↑  | 0.300|±  |   N/A|
    |              |       |strict-match    |     5|exact_match|↑  | 0.250|±  |0.0120|
    |mmlu          |      2|none            |     0|acc       |↑  | 0.450|±  |0.0040|
    | - humanities |      2|none            |     0|acc       |↑  | 0.410|±  |0.0070|

- A row with an empty task cell is another metric of the task above.
- A task is named by its alias (``mmlu_humanities`` shows as `` - humanities``); the marks of
  the group tree before it are left out (lm_eval 0.4.13's make_table marks the tree itself, so
  an alias marked already shows twice: `` -  - humanities``).
- A value that is no number (``N/A``) is passed over; the stderr is kept as
  ``<metric>_stderr``, as lm_eval's results JSON names it.
- A ``Groups`` table (``make_table(results, "groups")``, printed after the tasks' by lm_eval's
  own command line) belongs to the ``Tasks`` table before it; a new ``Tasks`` table is a new
  evaluation (a task requeued by Slurm appends to its log), and the last one is the one read.
- A prefix before the header's first ``|`` (``0: `` from ``srun --label``) is taken off the
  rows that carry it; torchtune's own prefix (``INFO:torchtune.utils._logging:``, or lm_eval's
  timestamped one) stands on a line of its own above the table, which it logs after ``\\n\\n``.
- A table cut short (a task killed while it was written) keeps its whole rows.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

# task -> {"metric,filter": value}: the shape of the "results" of lm_eval's results JSON.
Results = dict[str, dict[str, float]]

# Where an evaluation's output goes: the Slurm array's slurm_<job>_<task>.log, or a file the
# user sent it to by hand (sbatch's own default is slurm-<job>.out).
LOG_SUFFIXES = (".log", ".txt", ".out")
_TASK_HEADERS = ("Tasks", "Task")  # Task: lm_eval 0.3
_GROUP_HEADER = "Groups"
_RULE = re.compile(r":?-+:?")
_TREE = re.compile(r"^(?:\s*-\s)+")  # " - humanities", " -  - formal_logic"


def task_name(alias: str) -> str:
    """A task's name as its table row shows it, without the marks of lm_eval's group tree."""
    return _TREE.sub("", alias).strip()


def metric_key(metric: str, filter_name: str) -> str:
    """The key lm_eval's results JSON gives a metric: ``acc,none``, ``exact_match,strict-match``."""
    return f"{metric},{filter_name or 'none'}"


def parse_results_tables(text: str) -> list[Results]:
    """Each evaluation's results in ``text``, oldest first: a ``Tasks`` table with the ``Groups``
    table after it."""
    evaluations: list[Results] = []
    lines = text.splitlines()  # \r too: progress bars redraw their line with it
    index = 0
    while index < len(lines):
        header = _header(lines[index])
        if header is None or index + 1 >= len(lines):
            index += 1
            continue
        prefix, columns, groups = header
        if _cells(lines[index + 1], prefix, len(columns), rule=True) is None:
            index += 1
            continue
        if groups and evaluations:
            results = evaluations[-1]
        else:
            results = {}
            evaluations.append(results)
        index += 2
        task = ""
        while index < len(lines):
            cells = _cells(lines[index], prefix, len(columns))
            if cells is None:
                break  # the end of the table, or a row cut short
            task = _add_row(results, dict(zip(columns, cells, strict=True)), task)
            index += 1
    return [results for results in evaluations if results]


def _header(line: str) -> tuple[str, list[str], bool] | None:
    """The prefix, column names (the first one ``Tasks``) and whether it is the ``Groups``
    table, of a table's header line; ``None`` for another line."""
    start = line.find("|")
    if start < 0:
        return None
    row = line[start:].rstrip()
    if not row.endswith("|"):
        return None
    columns = [cell.strip() for cell in row[1:-1].split("|")]
    if (
        columns[0] not in (*_TASK_HEADERS, _GROUP_HEADER)
        or "Metric" not in columns
        or "Value" not in columns
    ):
        return None
    groups = columns[0] == _GROUP_HEADER
    columns[0] = "Tasks"
    return line[:start], columns, groups


def _cells(line: str, prefix: str, width: int, *, rule: bool = False) -> list[str] | None:
    if prefix and line.startswith(prefix):
        line = line[len(prefix) :]
    row = line.rstrip()
    if not (row.startswith("|") and row.endswith("|")) or len(row) < 2:
        return None
    cells = row[1:-1].split("|")
    if len(cells) != width:
        return None
    if rule and not all(_RULE.fullmatch(cell.strip()) for cell in cells):
        return None
    return cells


def _add_row(results: Results, row: dict[str, str], task: str) -> str:
    """Add a row's value and stderr to ``results``; the task it belongs to."""
    task = task_name(row["Tasks"]) or task
    metric = row["Metric"].strip()
    if not task or not metric:
        return task
    key = metric_key(metric, row.get("Filter", "").strip())
    for name, cell in ((key, row["Value"]), (key.replace(",", "_stderr,", 1), row.get("Stderr"))):
        try:
            value = float(cell or "")
        except ValueError:
            continue  # N/A, or no stderr
        results.setdefault(task, {})[name] = value
    return task


def read_eval_logs(paths: Iterable[Path], notes: list[str]) -> Results:
    """The last evaluation in the newest of the logs ``paths`` (oldest first) that holds one."""
    for path in reversed(list(paths)):
        try:
            data = path.read_bytes()
        except OSError:
            notes.append(f"{path}: cannot be read")
            continue
        if b"|" not in data or b"Metric" not in data:  # most logs: no table to look for
            continue
        evaluations = parse_results_tables(data.decode("utf-8", "replace"))
        if evaluations:
            return evaluations[-1]
    return {}


def find_eval_logs(eval_dir: Path) -> list[Path]:
    """The logs in ``eval_dir`` (not below it), oldest first by modification time."""
    found: list[tuple[float, str]] = []
    try:
        entries = list(os.scandir(eval_dir))
    except OSError:
        return []
    for entry in entries:
        if entry.name.endswith(LOG_SUFFIXES):
            try:
                if entry.is_file():
                    found.append((entry.stat().st_mtime, entry.name))
            except OSError:
                continue
    return [eval_dir / name for _, name in sorted(found)]
