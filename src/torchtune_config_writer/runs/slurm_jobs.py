"""What Slurm says of a study's array tasks: their job ids read back from the files the generated
script writes, and their states from ``squeue``, ``sacct`` or ``scontrol``.

The script (``launchers/slurm_array.sh.template``) logs task T of job J to
``slurm_J_T.log`` in its run's ``output_dir``, and what stops a task before that to
``slurm-J_T.out`` where it was submitted. Slurm is asked through one injected function, so the
parsing is tested on canned output and the real commands in the Slurm tier.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

TASK_LOG = re.compile(r"slurm_(\d+)_(\d+)\.log")
EARLY_OUTPUT = re.compile(r"slurm-(\d+)_(\d+)\.out")

# What runs a Slurm command: its arguments in, its standard output back, or None where it failed
# (not installed, accounting not configured, a job it does not know).
SlurmCommand = Callable[[Sequence[str]], "str | None"]


@dataclass(frozen=True, order=True)
class TaskId:
    """One array task: ``job`` (the array's job id) and ``task`` (its index)."""

    job: int
    task: int

    def __str__(self) -> str:
        return f"{self.job}_{self.task}"


@dataclass(frozen=True)
class TaskState:
    """What Slurm says of one task.

    Attributes:
        state: Its state as Slurm spells it (``TIMEOUT``), without ``by <uid>``.
        reason: Slurm's reason (a pending task's ``Resources``), or ``""``.
        exit_code: Its exit code, where it ended and the source gives it.
        source: Which command said so: ``squeue``, ``sacct`` or ``scontrol``.
        signal: The signal that ended it (``ExitCode``'s ``0:9``), where one did.
    """

    state: str
    reason: str = ""
    exit_code: int | None = None
    source: str = ""
    signal: int | None = None


def task_logs(folder: Path) -> dict[TaskId, Path]:
    """The task logs (``slurm_<job>_<task>.log``) in ``folder``, by task."""
    found: dict[TaskId, Path] = {}
    try:
        names = [entry.name for entry in os.scandir(folder)]
    except OSError:  # not there yet (never started), or not readable: no logs
        return found
    for name in names:
        match = TASK_LOG.fullmatch(name)
        if match:
            found[TaskId(int(match[1]), int(match[2]))] = folder / name
    return found


def early_outputs(folder: Path) -> dict[TaskId, Path]:
    """The ``slurm-<job>_<task>.out`` files in ``folder``: tasks that stopped before their log."""
    found: dict[TaskId, Path] = {}
    for path in folder.glob("slurm-*_*.out"):
        match = EARLY_OUTPUT.fullmatch(path.name)
        if match:
            found[TaskId(int(match[1]), int(match[2]))] = path
    return found


def run_command(arguments: Sequence[str]) -> str | None:
    """Run a Slurm command; its output, or None where it is missing or fails."""
    if shutil.which(arguments[0]) is None:
        return None
    try:
        # A path or a job name in the output may be any bytes: shown escaped, never a crash.
        done = subprocess.run(
            list(arguments), capture_output=True, text=True, errors="replace", timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def slurm_installed() -> bool:
    """Whether Slurm's commands are on this machine's PATH."""
    return shutil.which("squeue") is not None


@dataclass(frozen=True)
class SlurmAnswer:
    """The states Slurm gave, by task; whether it answered (squeue), and with sacct."""

    states: dict[TaskId, TaskState]
    accounting: bool
    answered: bool = True


def query_tasks(jobs: Iterable[int], command: SlurmCommand = run_command) -> SlurmAnswer:
    """The state of every task of ``jobs`` that Slurm still knows.

    ``squeue`` first (a queued or running task), then ``sacct`` (any task, where accounting is
    set up), else ``scontrol show job`` (while Slurm remembers the job, ``MinJobAge``).
    """
    wanted = sorted(set(jobs))
    states: dict[TaskId, TaskState] = {}
    if not wanted:
        return SlurmAnswer(states, accounting=False)
    listed = ",".join(map(str, wanted))
    queue = command(["squeue", "--array", "--noheader", "--jobs", listed, "--format", "%i|%T|%r"])
    if queue is None:
        # squeue fails on a job it no longer holds ("Invalid job id specified"): that is an
        # ended job, for sacct or scontrol, unless squeue does not answer at all.
        if command(["squeue", "--noheader", "--me", "--format", "%i"]) is None:
            return SlurmAnswer(states, accounting=False, answered=False)
        queue = ""
    states.update(parse_squeue(queue))
    accounted = command(
        ["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", listed]
        + ["--format", "JobID,State,ExitCode,Reason"]
    )
    if accounted is not None:
        for task, state in parse_sacct(accounted).items():
            states.setdefault(task, state)
    else:
        for job in wanted:
            shown = command(["scontrol", "--oneliner", "show", "job", str(job)])
            if shown is not None:
                for task, state in parse_scontrol(shown).items():
                    states.setdefault(task, state)
    return SlurmAnswer(states, accounting=accounted is not None)


def tasks_of_script(
    script: Path, command: SlurmCommand = run_command
) -> dict[TaskId, TaskState] | None:
    """This user's queued and running tasks of ``script`` (squeue's batch script, resolved
    against the folder it was submitted from): a queued task has written nothing yet. ``None``
    where squeue fails."""
    listed = command(["squeue", "--me", "--array", "--noheader", "--format", "%i|%T|%r|%Z|%o"])
    if listed is None:
        return None
    wanted = script.resolve()
    states = {}
    for line in listed.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 5 or (Path(fields[3]) / fields[4]).resolve() != wanted:
            continue
        states.update(parse_squeue("|".join(fields[:3])))
    return states


def _indices(text: str) -> list[int]:
    """``3``, ``[1-3,5]`` or ``1-3%2`` as the indices they name."""
    text = text.strip("[]").split("%", 1)[0]
    found: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found.extend(range(int(first), int(last or first) + 1))
    return found


def _array_tasks(job_id: str) -> list[TaskId]:
    """``1234_5`` or ``1234_[1-3]`` as its tasks; nothing for a job that is no array task."""
    job, sep, index = job_id.partition("_")
    if not sep or not job.isdigit():
        return []
    return [TaskId(int(job), task) for task in _indices(index)]


def _state(text: str) -> str:
    return text.split()[0].upper() if text.strip() else "UNKNOWN"  # "CANCELLED by 1000"


def _exit_code(text: str) -> int | None:
    code = text.split(":", 1)[0]
    return int(code) if code.isdigit() else None


def _signal(text: str) -> int | None:
    """The signal of Slurm's ``ExitCode`` (``exit:signal``), if one ended the task."""
    number = text.partition(":")[2]
    return int(number) if number.isdigit() and number != "0" else None


def parse_squeue(text: str) -> dict[TaskId, TaskState]:
    """``squeue --array --noheader --format '%i|%T|%r'`` lines."""
    states = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3:
            continue
        reason = "" if fields[2] == "None" else fields[2]
        for task in _array_tasks(fields[0]):
            states[task] = TaskState(_state(fields[1]), reason, None, "squeue")
    return states


def parse_sacct(text: str) -> dict[TaskId, TaskState]:
    """``sacct --noheader --parsable2 --allocations --format JobID,State,ExitCode,Reason`` lines."""
    states = {}
    for line in text.splitlines():
        fields = line.strip().split("|")
        if len(fields) < 3:
            continue
        state = _state(fields[1])
        # sacct's Reason is why the task last waited: kept while it waits, never as why it ended
        # (a task of a %1 array that failed still says JobArrayTaskLimit).
        waiting = state == "PENDING" and len(fields) > 3 and fields[3] != "None"
        reason = fields[3] if waiting else ""
        for task in _array_tasks(fields[0]):
            states[task] = TaskState(
                state, reason, _exit_code(fields[2]), "sacct", _signal(fields[2])
            )
    return states


def parse_scontrol(text: str) -> dict[TaskId, TaskState]:
    """``scontrol --oneliner show job`` records, one a line (a pending array's tasks in one)."""
    states = {}
    for line in text.splitlines():
        fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
        job, index = fields.get("ArrayJobId", ""), fields.get("ArrayTaskId")
        if not job.isdigit() or index is None:
            continue
        reason = fields.get("Reason", "")
        state = TaskState(
            _state(fields.get("JobState", "")),
            "" if reason == "None" else reason,
            _exit_code(fields.get("ExitCode", "")),
            "scontrol",
            _signal(fields.get("ExitCode", "")),
        )
        for task in _indices(index):
            states[TaskId(int(job), task)] = state
    return states
