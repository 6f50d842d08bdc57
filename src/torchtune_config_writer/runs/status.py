"""Where each run of a study is: from its own files (final checkpoint, saved epochs, logs) and,
for the runs submitted as the generated job array, from Slurm.

A run is ``finished`` only when its final checkpoint is saved, whatever Slurm says; a run with no
trace anywhere is ``not started``, never done. Slurm and the process table are asked through
injected functions, so all of this is tested without a cluster.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..launchers.slurm import SLURM_SCRIPT
from .catalog import Catalog, RunRecord, run_number
from .metrics import disk_log_time
from .slurm_jobs import (
    SlurmCommand,
    TaskId,
    TaskState,
    early_outputs,
    query_tasks,
    run_command,
    slurm_installed,
    task_logs,
    tasks_of_script,
)

# Every status, in the order the counts list them.
STATUSES = (
    "finished",
    "running",
    "queued",
    "failed",
    "timed out",
    "out of memory",
    "preempted",
    "cancelled",
    "stopped (no final checkpoint)",
    "not started",
)
STOPPED = "stopped (no final checkpoint)"

# Slurm's states (squeue, sacct and scontrol spell them alike) as ours; COMPLETED is the run's
# files' to decide.
_SLURM_STATES = {
    **dict.fromkeys(
        ("PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"),
        "queued",
    ),
    **dict.fromkeys(
        ("RUNNING", "COMPLETING", "STAGE_OUT", "SIGNALING", "RESIZING", "SUSPENDED", "STOPPED"),
        "running",
    ),
    **dict.fromkeys(
        ("FAILED", "NODE_FAIL", "BOOT_FAIL", "SPECIAL_EXIT", "LAUNCH_FAILED"), "failed"
    ),
    **dict.fromkeys(("TIMEOUT", "DEADLINE"), "timed out"),
    "OUT_OF_MEMORY": "out of memory",
    "PREEMPTED": "preempted",
    **dict.fromkeys(("CANCELLED", "REVOKED"), "cancelled"),
}
_LIVE = ("queued", "running")
_STEP = re.compile(rb"^Step (\d+) \|", re.M)  # torchtune's DiskLogger: "Step 12 | loss:..."
RECIPE_STATE = Path("recipe_state") / "recipe_state.pt"  # torchtune's, for a resumable epoch

# Config files that a live process was started on, resolved, and its pid.
ProcessTable = Callable[[], dict[Path, int]]


@dataclass(frozen=True)
class RunStatus:
    """Where one run is.

    Attributes:
        id: The run's id.
        status: One of :data:`STATUSES`.
        reason: Why, in a few words.
        log: Its newest log (the Slurm task's, an early-failure ``.out``, or torchtune's), if any.
        task: Its newest Slurm array task (``1234_5``), if it was submitted.
    """

    id: str
    status: str
    reason: str
    log: Path | None = None
    task: str | None = None


@dataclass(frozen=True)
class StudyStatus:
    """Every run's status, and notes on where the statuses come from.

    Attributes:
        runs: Each run's status, in run id order.
        notes: Where the statuses come from, where that is less than Slurm and the files.
        slurm_answered: Whether Slurm was asked and answered, so that a queued task that wrote
            nothing yet is known (else such a run reads as ``not started``).
    """

    runs: tuple[RunStatus, ...]
    notes: tuple[str, ...] = field(default=())
    slurm_answered: bool = True

    def counts(self) -> dict[str, int]:
        """How many runs have each status, those with none left out, in :data:`STATUSES` order."""
        found = [run.status for run in self.runs]
        return {status: found.count(status) for status in STATUSES if status in found}


def catalog_status(catalog: Catalog, slurm: SlurmCommand | None = None) -> StudyStatus:
    """The status of each run of ``catalog``, from its files and, where installed, Slurm.

    Args:
        catalog: The experiment's runs (:func:`~torchtune_config_writer.runs.catalog.read_catalog`).
        slurm: Runs a Slurm command; by default Slurm's own, where its commands are installed.
    """
    experiment = catalog.plan.experiment
    script = None
    if experiment.launch.slurm is not None and catalog.runs:
        script = catalog.runs[0].config_file.parent / SLURM_SCRIPT
    return study_status(
        catalog.runs,
        experiment.folder,
        slurm=default_slurm() if slurm is None else slurm,
        script=script,
        one_array=not in_parts(catalog),
    )


def in_parts(catalog: Catalog) -> bool:
    """Whether the study's array is submitted in parts (its run numbers pass the cluster's
    MaxArraySize), where task N of a part is run N plus the part's offset."""
    launch = catalog.plan.experiment.launch.slurm
    numbers = [run_number(run.id) for run in catalog.runs]
    return launch is not None and max(numbers, default=0) >= launch.max_array_size


def study_status(
    runs: Sequence[RunRecord],
    submitted_from: Path,
    *,
    slurm: SlurmCommand | None = run_command,
    script: Path | None = None,
    one_array: bool = True,
    processes: ProcessTable | None = None,
) -> StudyStatus:
    """The status of each of ``runs``.

    Args:
        runs: The study's runs (:func:`~torchtune_config_writer.runs.catalog.read_catalog`).
        submitted_from: Where the array was submitted (the experiment's folder, as the script
            requires), holding the early-failure ``slurm-<job>_<task>.out`` files.
        slurm: Runs a Slurm command (:func:`~.slurm_jobs.run_command`); ``None`` where Slurm is
            not installed: the files alone decide.
        script: The study's job array script (``configs/slurm_array.sh``), whose queued tasks
            squeue lists, or ``None`` without one.
        one_array: Whether the study fits one array (task N is run N); a study in parts maps a
            queued task to its run only once another task of its job has logged.
        processes: The live processes' config files (:func:`live_configs` by default).
    """
    tasks, offsets = _tasks_by_run(runs, submitted_from, one_array)
    notes: list[str] = []
    states: dict[TaskId, TaskState] = {}
    answered = slurm is not None
    if slurm is None:
        notes.append("Slurm's commands are not installed here: statuses come from the files alone")
    else:
        answered = True
        if script is not None:
            listed = tasks_of_script(script, slurm)
            answered = listed is not None
            states = listed or {}
            _add_queued(runs, tasks, states, offsets, one_array)
        latest = {found[-1][0].job for found in tasks.values() if found}
        if answered and latest:
            answer = query_tasks(latest, slurm)
            answered = answer.answered
            # A task cancelled while queued wrote nothing: its job, known by its siblings' logs,
            # still names it.
            _add_queued(runs, tasks, answer.states, offsets, one_array)
            states = {**answer.states, **states}
            if answered and not answer.accounting:
                notes.append(
                    "Slurm accounting (sacct) is not available: ended tasks' states come from "
                    "scontrol, which forgets a job MinJobAge after it ends, and from the files"
                )
        if not answered:
            notes.append("Slurm does not answer here (squeue failed): statuses come from the files")
    table: dict[Path, int] | None = None

    def live() -> dict[Path, int]:
        nonlocal table
        if table is None:
            table = (processes or live_configs)()
        return table

    return StudyStatus(
        tuple(_run_status(run, tasks.get(run.id, []), states, live) for run in runs),
        tuple(notes),
        answered,
    )


# A task and its file: its log, its early-failure output, or None while it is queued.
_Task = tuple[TaskId, "Path | None"]


def _tasks_by_run(
    runs: Sequence[RunRecord], submitted_from: Path, one_array: bool = True
) -> tuple[dict[str, list[_Task]], dict[int, int]]:
    """Each run's tasks, oldest first, from the logs in its output_dir and the ``.out`` files."""
    sharing: dict[Path, list[RunRecord]] = {}
    for run in runs:
        if run.output_dir is not None:
            sharing.setdefault(run.output_dir, []).append(run)
    by_number = {run_number(run.id): run.id for run in runs}
    found: dict[str, list[_Task]] = {}
    offsets: dict[int, int] = {}  # a job's TCW_RUN_OFFSET, read off a run's own log
    for folder, owners in sharing.items():
        for task, log in task_logs(folder).items():
            if len(owners) == 1:
                owner = owners[0].id
                offsets[task.job] = run_number(owner) - task.task
            else:  # generate splits output_dirs; one shared by hand: task N is run N
                owner = by_number.get(task.task, "")
                if owner not in {run.id for run in owners}:
                    continue
            found.setdefault(owner, []).append((task, log))
    for task, out in early_outputs(submitted_from).items():
        # A study in parts: a task's run is known only by its job's offset (another task's log).
        offset = offsets.get(task.job, 0 if one_array else None)
        if offset is None:
            continue
        owner = by_number.get(task.task + offset, "")
        if owner:
            found.setdefault(owner, []).append((task, out))
    for tasks in found.values():
        tasks.sort()
    return found, offsets


def _add_queued(
    runs: Sequence[RunRecord],
    tasks: dict[str, list[_Task]],
    listed: dict[TaskId, TaskState],
    offsets: dict[int, int],
    one_array: bool,
) -> None:
    """Each task Slurm listed (queued, or ended before it wrote anything) to its run's tasks,
    without a file."""
    by_number = {run_number(run.id): run.id for run in runs}
    for task in listed:
        offset = offsets.get(task.job, 0 if one_array else None)
        owner = None if offset is None else by_number.get(task.task + offset)
        if owner is not None and all(known != task for known, _ in tasks.get(owner, [])):
            tasks.setdefault(owner, []).append((task, None))
            tasks[owner].sort(key=lambda found: found[0])


def _run_status(
    run: RunRecord,
    tasks: list[_Task],
    states: dict[TaskId, TaskState],
    live: Callable[[], dict[Path, int]],
) -> RunStatus:
    final = run.final_checkpoint
    finished = final is not None and _non_empty(final)
    if tasks:
        task, file = tasks[-1]
        early = file is not None and file.suffix == ".out"
        said = states.get(task)
        ours = _SLURM_STATES.get(said.state) if said is not None else None
        where = f"task {task}"
        if said is not None and ours == "running":
            return RunStatus(run.id, "running", f"{where} {_said(said)}", file, str(task))
        if finished:
            queued = f"; {where} is queued and will exit at once" if ours == "queued" else ""
            return RunStatus(
                run.id, "finished", f"final checkpoint in {final}{queued}", file, str(task)
            )
        if said is not None and ours is not None:
            reason = f"{where} {_said(said)}"
            if early and file is not None:
                reason += f": {_last_error(file)}"
            return RunStatus(run.id, ours, reason, file, str(task))
        if said is not None and said.state == "COMPLETED":
            return RunStatus(
                run.id,
                STOPPED,
                f"{where} ended COMPLETED, but {_missing(run)}{_progress(run)}",
                file,
                str(task),
            )
        if said is not None:
            reason = f"{where} {_said(said)}: {_missing(run)}{_progress(run)}"
            return RunStatus(run.id, STOPPED, reason, file, str(task))
        if early and file is not None:
            reason = f"{where} stopped before its log: {_last_error(file)}"
            return RunStatus(run.id, "failed", reason, file, str(task))
        reason = f"Slurm no longer knows {where}: {_missing(run)}{_progress(run)}"
        return RunStatus(run.id, STOPPED, reason, file, str(task))
    log = _newest_metric_log(run)
    if finished:
        return RunStatus(run.id, "finished", f"final checkpoint in {final}", log)
    table = live()
    pid = table.get(_resolved(run.config_file.parent) / run.config_file.name) if table else None
    if pid is not None:
        return RunStatus(run.id, "running", f"outside Slurm, process {pid}", log)
    wrote = log is not None or (run.log_dir is not None and _non_empty(run.log_dir))
    if wrote or _saved_epochs(run) or _has_recipe_state(run):  # TensorBoard or W&B logs too
        return RunStatus(run.id, STOPPED, f"no live process; {_missing(run)}{_progress(run)}", log)
    folder = run.output_dir if run.output_dir is not None else "its output_dir"
    return RunStatus(run.id, "not started", f"no task queued, no log or checkpoint in {folder}")


@functools.cache
def _resolved(folder: Path) -> Path:
    return folder.resolve()  # once for the configs folder all runs share


def _said(state: TaskState) -> str:
    text = state.state
    ours = _SLURM_STATES.get(state.state)
    if ours == "failed" and state.signal is not None and not state.exit_code:
        # Killed (Slurm's OverMemoryKill, an administrator's kill -9): "exit 0" would mislead.
        text += f" (signal {state.signal})"
    elif state.exit_code is not None and ours not in _LIVE:
        text += f" (exit {state.exit_code})"
    if state.reason:
        text += f", {state.reason}"
    return f"{text} [{state.source}]"


def _missing(run: RunRecord) -> str:
    if run.final_checkpoint is None:
        return "where its final checkpoint goes is unknown (no checkpointer.output_dir or epochs)"
    return f"no final checkpoint in {run.final_checkpoint}"


def _progress(run: RunRecord) -> str:
    """What the files say it got to: the last logged step, the epochs saved."""
    parts = []
    step = _last_step(run)
    if step is not None:
        parts.append(f"last logged step {step}")
    epochs = _saved_epochs(run)
    if epochs:
        parts.append(f"saved {', '.join(epochs)}")
    whole = last_whole_epoch(run)
    if whole is not None:
        # What the generated script does with it, and what torchtune 0.6.1 cannot keep.
        parts.append(f"submitted again it resumes after {whole}, losing the epoch it was in")
    elif _has_recipe_state(run) and not _saved_whole(_recipe_state(run)):
        parts.append("recipe_state.pt cut short: submitted again it starts over")
    elif epochs or step is not None:
        parts.append("no recipe_state.pt: submitted again it starts over")
    return f" ({'; '.join(parts)})" if parts else ""


def _non_empty(folder: Path) -> bool:
    try:
        with os.scandir(folder) as entries:
            return any(True for _ in entries)
    except OSError:
        return False


def _saved_epochs(run: RunRecord) -> list[str]:
    if run.final_checkpoint is None:
        return []
    try:
        names = os.listdir(run.final_checkpoint.parent)
    except OSError:
        return []
    epochs = [n for n in names if n.startswith("epoch_") and n[6:].isdigit()]
    return sorted(epochs, key=lambda name: int(name[6:]))


def _has_recipe_state(run: RunRecord) -> bool:
    return run.final_checkpoint is not None and _recipe_state(run).is_file()


def _recipe_state(run: RunRecord) -> Path:
    assert run.final_checkpoint is not None
    return run.final_checkpoint.parent / RECIPE_STATE


def _saved_whole(path: Path) -> bool:
    """Whether torch.save finished writing ``path``: a zip file ends with its end record (a
    file killed while it was written does not), as the SLURM script checks it."""
    return _tail(path, 22)[:4] == b"PK\x05\x06"


def last_whole_epoch(run: RunRecord) -> str | None:
    """The epoch folder a resubmitted run resumes after, as the SLURM script chooses it: the
    newest ``epoch_N`` with nothing in it newer than ``recipe_state.pt`` (a save cut short is
    newer), or ``None`` without a whole recipe_state.pt."""
    if run.final_checkpoint is None:
        return None
    folder = run.final_checkpoint.parent
    state = folder / RECIPE_STATE
    try:
        saved_at = state.stat().st_mtime_ns
    except OSError:
        return None
    if not _saved_whole(state):
        return None
    for name in reversed(_saved_epochs(run)):
        if _newest_change(folder / name) <= saved_at:
            return name
    return None


def _newest_change(folder: Path) -> int:
    """The newest modification time in ``folder``, itself and everything under it, as ``find
    -newer`` compares them (a folder that cannot be read is taken as newer than anything)."""
    try:
        newest = folder.stat().st_mtime_ns
        for parent, names, files in os.walk(folder):
            for name in (*names, *files):
                newest = max(newest, os.stat(os.path.join(parent, name)).st_mtime_ns)
    except OSError:
        return 2**63
    return newest


def _newest_metric_log(run: RunRecord) -> Path | None:
    """torchtune's DiskLogger file in ``metric_logger.log_dir`` written last."""
    if run.log_dir is None:
        return None
    try:
        names = os.listdir(run.log_dir)
    except OSError:
        return None
    timed = [(time, n) for n in names if (time := disk_log_time(n, run.log_file)) is not None]
    return run.log_dir / max(timed)[1] if timed else None


def _last_step(run: RunRecord) -> int | None:
    log = _newest_metric_log(run)
    if log is None:
        return None
    steps = _STEP.findall(_tail(log))
    return int(steps[-1]) if steps else None


def _tail(path: Path, size: int = 65536) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - size))
            return file.read()
    except OSError:
        return b""


def _last_error(path: Path) -> str:
    """The ``error:`` line a task wrote before its log started, or its last line."""
    lines = [line.strip() for line in _tail(path).decode(errors="replace").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.startswith("error:")]
    return (errors or lines or [f"{path} is empty"])[-1]


def live_configs() -> dict[Path, int]:
    """The config files (``*.yaml`` arguments, resolved) of this machine's live processes."""
    found: dict[Path, int] = {}
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: nothing is known to run
        return found
    for pid in pids:
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            configs = [a for a in arguments if a.endswith(b".yaml")]
            if not configs:
                continue
            cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        except OSError:  # gone, or another user's
            continue
        for config in configs:
            found.setdefault((cwd / os.fsdecode(config)).resolve(), int(pid))
    return found


def default_slurm() -> SlurmCommand | None:
    """The real Slurm commands, or ``None`` where they are not installed."""
    return run_command if slurm_installed() else None
