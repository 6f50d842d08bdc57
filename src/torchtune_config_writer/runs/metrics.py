"""A run's metrics, read from the files its metric logger and its evaluation wrote: pure reads of
a folder, no torch.

- torchtune's ``DiskLogger``: ``log_<unix time>.txt`` in ``log_dir``, one line per step,
  ``Step N | name:value name:value `` (``training/metric_logging.py``). A resumed run opens a new
  file: the files are read in the order of the time in their names, and a later file's value for
  a step replaces an earlier one.
- ``TensorBoardLogger``: ``events.out.tfevents.*`` under ``log_dir`` (a ``run_<rank>_<time>``
  folder each start), read with the ``tensorboard`` package's own reader when it is installed.
- ``WandBLogger``: ``wandb/offline-run-*/`` under ``log_dir`` (a folder each start): an older
  wandb's ``files/wandb-history.jsonl`` (a step a line) where there is one, else the history in
  its ``run-<id>.wandb`` (read with wandb's own protobuf where wandb is installed:
  :mod:`.wandb_store`), else ``files/wandb-summary.json`` (the last values). A row's step is
  torchtune's ``global_step``, else wandb's ``_step``.
- The evaluation, in its ``output_dir``: every ``*.json`` under it with a ``results`` mapping of
  task to metrics (lm_eval's results file), and the results table that torchtune's
  ``eleuther_eval`` recipe logs (the only record it leaves: :mod:`.eval_table`), the last one
  in the newest of the logs (``*.log``, ``*.txt``, ``*.out``) at its top. A results file wins:
  a task it holds (by its name or its alias) is not read from the table, whose other tasks
  are added. Each value is ``task/metric`` (``hellaswag/acc``; the filter is kept after a comma
  unless it is ``none``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .eval_table import Results, find_eval_logs, read_eval_logs, task_name
from .wandb_store import NO_WANDB, StoreError, read_store_history

DISK, TENSORBOARD, WANDB, EVALUATION = "log", "tensorboard", "wandb", "eval"
_DISK_LOG = re.compile(r"log_(\d+)\.txt")
_TENSOR = re.compile(r"tensor\(([^,)]+)")  # tensor(1.25), tensor(1.25, grad_fn=...
_EVENTS_PREFIX = "events.out.tfevents."
_EVENTS_TIME = re.compile(r"events\.out\.tfevents\.(\d+)")
_WANDB_RUN = re.compile(r"(offline-)?run-.*")
_WANDB_STEPS = ("global_step", "_step")
NO_TENSORBOARD = (
    "tensorboard is not installed, its event files are not read (pip install tensorboard)"
)


@dataclass(frozen=True)
class Metric:
    """One metric of a run: its value at each step it was logged at.

    Attributes:
        name: As its logger names it (``loss``, ``tokens_per_second_per_gpu``, ``hellaswag/acc``).
        steps: ``(step, value)`` in step order; an evaluation's one value is at step 0.
        source: Which files it came from: ``log``, ``tensorboard``, ``wandb`` or ``eval``.
    """

    name: str
    steps: tuple[tuple[int, float], ...]
    source: str

    @property
    def final(self) -> float:
        """The value at the last step."""
        return self.steps[-1][1]

    @property
    def last_step(self) -> int:
        return self.steps[-1][0]

    @property
    def minimum(self) -> float:
        return min(value for _, value in self.steps)

    @property
    def maximum(self) -> float:
        return max(value for _, value in self.steps)


@dataclass(frozen=True)
class RunMetrics:
    """Everything read for one run.

    Attributes:
        metrics: Each metric by name (the first source that has a name keeps it: the text logs,
            TensorBoard, W&B, then the evaluation).
        logged: Whether any log file of the metric logger exists (even an empty one).
        notes: What could not be read, and why.
    """

    metrics: dict[str, Metric] = field(default_factory=dict)
    logged: bool = False
    notes: tuple[str, ...] = ()

    @property
    def steps_done(self) -> int | None:
        """The last training step logged, or ``None`` with no training metric."""
        steps = [m.last_step for m in self.metrics.values() if m.source != EVALUATION]
        return max(steps) if steps else None


def read_run_metrics(
    log_dir: Path | None, eval_dir: Path | None = None, log_file: str | None = None
) -> RunMetrics:
    """The metrics in a run's ``log_dir`` and its evaluation's ``eval_dir`` (either may be
    ``None`` or missing); ``log_file`` is DiskLogger's ``filename`` where the config names one."""
    found: dict[str, Metric] = {}
    notes: list[str] = []
    files = _LogFiles()
    if log_dir is not None:
        files = find_log_files(log_dir, log_file)
        _keep(found, read_disk_logs(files.disk))
        if files.events:
            try:
                _keep(found, read_tensorboard(files.events))
            except ModuleNotFoundError:
                notes.append(NO_TENSORBOARD)
        _keep(found, read_wandb(files.wandb, notes))
    if eval_dir is not None and eval_dir.is_dir():
        _keep(found, read_evaluation(eval_dir, notes))
    return RunMetrics(found, bool(files.disk or files.events or files.wandb), tuple(notes))


@dataclass(frozen=True)
class _LogFiles:
    disk: tuple[Path, ...] = ()
    events: tuple[Path, ...] = ()
    wandb: tuple[Path, ...] = ()


def find_log_files(log_dir: Path, log_file: str | None = None) -> _LogFiles:
    """Each logger's files under ``log_dir``, oldest first, in one walk of it (a study's
    thousands of runs are read in one command); ``log_file``: DiskLogger's own name for its
    file (every start appends to it), read before any ``log_<time>.txt``."""
    disk: list[tuple[int, str]] = []
    events: list[tuple[int, str]] = []
    wandb: list[str] = []
    top = str(log_dir)
    for folder, _, names in os.walk(top):
        if folder == top:
            for name in names:
                time = disk_log_time(name, log_file)
                if time is not None:
                    disk.append((time, name))
        for name in names:
            if name.startswith(_EVENTS_PREFIX):
                match = _EVENTS_TIME.match(name)
                events.append((int(match.group(1)) if match else 0, os.path.join(folder, name)))
        run, files = os.path.split(folder)
        if (
            files == "files"
            and _WANDB_RUN.fullmatch(os.path.basename(run))
            and os.path.basename(os.path.dirname(run)) == "wandb"
        ):
            wandb.append(folder)
    return _LogFiles(
        tuple(log_dir / name for _, name in sorted(disk)),
        tuple(Path(path) for _, path in sorted(events)),
        # By the run folder's name (offline-run-<time>-<id>), not by its files/ (all alike).
        tuple(
            Path(path) for path in sorted(wandb, key=lambda p: os.path.basename(os.path.dirname(p)))
        ),
    )


def disk_log_time(name: str, log_file: str | None = None) -> int | None:
    """Where a file of ``metric_logger.log_dir`` comes among DiskLogger's, oldest first: the
    time in ``log_<time>.txt`` (``log_999.txt`` before ``log_1000.txt``), -1 for the config's
    own ``filename`` (every start appends to it); ``None`` for a file not DiskLogger's."""
    match = _DISK_LOG.fullmatch(name)
    if match:
        return int(match.group(1))
    return -1 if name == log_file else None


def _keep(found: dict[str, Metric], metrics: Iterable[Metric]) -> None:
    for metric in metrics:
        found.setdefault(metric.name, metric)


def read_disk_logs(paths: Iterable[Path]) -> list[Metric]:
    """The metrics of DiskLogger files given oldest first: a later value for a step wins."""
    series: dict[str, dict[int, float]] = {}
    for path in paths:
        try:
            text = path.read_text("utf-8", "replace")
        except OSError:  # a dangling link, a file this user may not read: the others count
            continue
        for name, by_step in parse_disk_log(text).items():
            if name in series:
                series[name].update(by_step)
            else:
                series[name] = by_step
    return _metrics(series, DISK)


def parse_disk_log(text: str) -> dict[str, dict[int, float]]:
    """Each metric's value by step in the ``Step N | name:value ...`` lines of ``text``; other
    lines (a line cut short by a crash, a value that is no number) are passed over."""
    # The hot loop of a study's thousands of logs: plain string methods, no regex a value.
    series: dict[str, dict[int, float]] = {}
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines.pop()  # a line being written, or cut short by a crash: its last value may be cut
    for line in lines:
        head, bar, rest = line.partition(" | ")
        if not bar or not head.startswith("Step "):
            continue
        try:
            step = int(head[5:])
        except ValueError:
            continue
        for item in rest.split():
            name, colon, text_value = item.rpartition(":")
            if not name:
                continue
            try:
                value = float(text_value)  # nan too: a loss that diverged
            except ValueError:
                tensor = _TENSOR.match(text_value)  # a value logged as a tensor
                if tensor is None:
                    continue
                try:
                    value = float(tensor.group(1))
                except ValueError:
                    continue
            by_step = series.get(name)
            if by_step is None:
                series[name] = by_step = {}
            by_step[step] = value
    return series


def _metrics(series: dict[str, dict[int, float]], source: str) -> list[Metric]:
    return [
        Metric(name, tuple(sorted(by_step.items())), source)
        for name, by_step in series.items()
        if by_step
    ]


def read_tensorboard(paths: Iterable[Path]) -> list[Metric]:
    """The scalars of TensorBoard event files given oldest first, read by ``tensorboard``.

    Raises:
        ModuleNotFoundError: tensorboard is not installed.
    """
    # Imported here: an optional package, and heavy; only runs logged to TensorBoard need it.
    from tensorboard.backend.event_processing.event_accumulator import (
        SCALARS,
        TENSORS,
        EventAccumulator,
    )
    from tensorboard.util import tensor_util

    series: dict[str, dict[int, float]] = {}
    for path in paths:
        events = EventAccumulator(str(path), size_guidance={SCALARS: 0, TENSORS: 0})
        events.Reload()
        tags = events.Tags()
        for tag in tags.get(SCALARS, []):
            for event in events.Scalars(tag):
                series.setdefault(tag, {})[event.step] = float(event.value)
        for tag in tags.get(TENSORS, []):  # scalars written as tensors (newer writers)
            for tensor_event in events.Tensors(tag):
                array = tensor_util.make_ndarray(tensor_event.tensor_proto)
                if array.size == 1:
                    series.setdefault(tag, {})[tensor_event.step] = float(array.reshape(-1)[0])
    return _metrics(series, TENSORBOARD)


def read_wandb(folders: Iterable[Path], notes: list[str]) -> list[Metric]:
    """The metrics of W&B run folders' ``files`` given oldest first (a later run's value for a
    step replaces an earlier one's): the ``wandb-history.jsonl`` an older wandb wrote, else the
    history in the run's ``run-<id>.wandb`` (all an offline run of wandb 0.31 keeps; read with
    wandb's own protobuf where it is installed), else ``wandb-summary.json``'s last values."""
    series: dict[str, dict[int, float]] = {}
    missing = False
    for files in folders:
        history = files / "wandb-history.jsonl"
        summary = files / "wandb-summary.json"
        try:
            stores = sorted(files.parent.glob("run-*.wandb"))
            if history.is_file():
                text = history.read_text(encoding="utf-8", errors="replace")
                for number, line in enumerate(text.splitlines(), 1):
                    row = _json_object(line, history, notes, number)
                    if row is not None:
                        _add_row(series, row)
            elif stores and _read_stores(stores, series, notes):
                pass  # every step logged, from the store
            elif summary.is_file():
                text = summary.read_text(encoding="utf-8", errors="replace")
                row = _json_object(text, summary, notes)
                if row is not None:
                    _add_row(series, row)
            elif stores:
                missing = True
        except OSError as exc:
            notes.append(f"cannot read {files}: {exc.strerror}")
    if missing:
        notes.append(NO_WANDB)
    return _metrics(series, WANDB)


def _read_stores(stores: list[Path], series: dict[str, dict[int, float]], notes: list[str]) -> bool:
    """Add the history of a run's ``.wandb`` files; ``False`` where wandb is not installed."""
    for store in stores:
        try:
            rows = read_store_history(store)
        except ImportError:
            return False
        except StoreError as exc:
            notes.append(f"{store}: {exc}")
            continue
        for row in rows:
            _add_row(series, row)
    return True


def _add_row(series: dict[str, dict[int, float]], row: dict[str, Any]) -> None:
    # torchtune's WandBLogger logs its training step as global_step; wandb's own _step counts
    # the calls of wandb.log from 0 (one behind, and two calls at one step are two _steps).
    step = next((row[key] for key in _WANDB_STEPS if _is_step(row.get(key))), 0)
    for name, value in row.items():
        if not name.startswith("_") and name != "global_step" and _is_number(value):
            series.setdefault(name, {})[int(step)] = float(value)


def _is_step(value: Any) -> bool:
    return _is_number(value) and float(value).is_integer()


def read_evaluation(eval_dir: Path, notes: list[str]) -> list[Metric]:
    """The metrics of an evaluation's ``output_dir``: its results JSON files (a later file's
    value replaces an earlier one), then the results table of its logs for the tasks that no
    results file holds."""
    results, tasks = read_results_json(sorted(eval_dir.rglob("*.json")), notes)
    logged = read_eval_logs(find_eval_logs(eval_dir), notes)
    for task, values in logged.items():
        if task not in tasks:
            results[task] = values
    series: dict[str, dict[int, float]] = {}
    for task, values in results.items():
        for key, value in values.items():
            metric, _, kind = key.partition(",")
            name = f"{task}/{metric}" + ("" if kind in ("", "none") else f",{kind}")
            series.setdefault(name, {})[0] = value
    return _metrics(series, EVALUATION)


def read_results_json(paths: Iterable[Path], notes: list[str]) -> tuple[Results, set[str]]:
    """The numbers of every results JSON (``{"results": {task: {metric: value}}}``) given, a
    later file's replacing an earlier one's; and the tasks they hold, by name and by alias."""
    results: Results = {}
    tasks: set[str] = set()
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            notes.append(f"{path}: cannot be read")
            continue
        document = _json_object(text, path, notes)
        found = document.get("results") if document is not None else None
        if not isinstance(found, dict):
            continue
        for task, values in found.items():
            if not isinstance(values, dict):
                continue
            tasks.add(str(task))
            alias = values.get("alias")
            if isinstance(alias, str):
                tasks.add(task_name(alias))
            for key, value in values.items():
                if _is_number(value):
                    results.setdefault(str(task), {})[str(key)] = float(value)
    return results, tasks


def _json_object(
    text: str, path: Path, notes: list[str], line: int | None = None
) -> dict[str, Any] | None:
    try:
        document = json.loads(text)
    except ValueError:
        where = f"{path}:{line}" if line is not None else str(path)
        notes.append(f"{where}: not JSON, passed over")
        return None
    return document if isinstance(document, dict) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
