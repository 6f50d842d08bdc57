"""Run the real `tune run` for many configs, fast: import torchtune once, fork per case.

Importing torch and torchtune takes most of a tiny run's time, so a parent process imports them
(and torchtune's command line, ``torchtune._cli.tune``) once, then forks a child per case. The
child changes to the case's folder, sets ``sys.argv = ["tune", "run", *args]`` and calls
torchtune's own entry point, the code the ``tune`` script runs; its stdout and stderr go to a log
file of its own. Two children run at a time (this machine has 2 cores), each with a timeout after
which only that child's PID is killed.

From Python (pytest, the benchmark) call :func:`run_tune`: it starts the parent as a subprocess,
``python -m tests.oracle.runner CASES.json RESULTS.json``, so that the calling process never
forks an interpreter with torch loaded. The same command works by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
JOBS = 2
TIMEOUT = 120.0
TAIL_LINES = 15
# Imported by the parent before it forks, so that no child pays for them (the recipes import
# them; importing is all that happens, every child still runs the whole recipe).
WARM_MODULES = (
    "torchtune._cli.tune",
    "torchtune.training",
    "torchtune.datasets",
    "torchtune.modules.peft",
    "torchdata.stateful_dataloader",
    "datasets",
)


@dataclass(frozen=True)
class TuneCase:
    """One ``tune run``.

    Attributes:
        name: Unique in one call; the key of its outcome and its log file's name.
        args: What follows ``tune run`` (``["full_finetune_single_device", "--config", …]``).
        cwd: The folder it runs from (an experiment's folder: commands are relative to it).
        timeout: Seconds before the child is killed; ``None``: the runner's ``--timeout``.
    """

    name: str
    args: tuple[str, ...]
    cwd: str
    timeout: float | None = None


@dataclass(frozen=True)
class TuneOutcome:
    """What one ``tune run`` did.

    Attributes:
        name: The case's name.
        exit_code: The process's exit status; negative for a signal (``-9`` after a timeout).
        reason: Why it failed, one line (the last exception line or the last line it wrote);
            empty when it trained.
        seconds: From fork to exit: the case's own time, with torchtune already imported.
        log: The file holding its stdout and stderr.
        tail: The last lines of that log.
    """

    name: str
    exit_code: int
    reason: str
    seconds: float
    log: str
    tail: str = ""

    @property
    def trained(self) -> bool:
        """Whether ``tune run`` exited 0 (the recipe set up, trained and saved)."""
        return self.exit_code == 0


@dataclass(frozen=True)
class TuneReport:
    """Every outcome of one runner process, with its timings.

    Attributes:
        outcomes: By case name, in the order given.
        import_seconds: The parent's one import of torch and torchtune.
        wall_seconds: The whole runner process, as the caller waited for it.
    """

    outcomes: dict[str, TuneOutcome] = field(default_factory=dict)
    import_seconds: float = 0.0
    wall_seconds: float = 0.0


def offline_env(workdir: Path) -> dict[str, str]:
    """The environment of every run: Hugging Face offline, its caches in ``workdir``.

    One thread per child: two children share two cores.
    """
    hf_home = workdir / "hf"
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HOME": str(hf_home),
        "HF_DATASETS_CACHE": str(hf_home / "datasets"),
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_tune(
    cases: Sequence[TuneCase],
    workdir: Path,
    *,
    jobs: int = JOBS,
    timeout: float = TIMEOUT,
) -> dict[str, TuneOutcome]:
    """Run every case with the real ``tune run``; its outcome by case name."""
    return run_tune_report(cases, workdir, jobs=jobs, timeout=timeout).outcomes


def run_tune_report(
    cases: Sequence[TuneCase],
    workdir: Path,
    *,
    jobs: int = JOBS,
    timeout: float = TIMEOUT,
) -> TuneReport:
    """:func:`run_tune` with the timings, for the benchmark."""
    names = [case.name for case in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names repeat: {names}")
    workdir.mkdir(parents=True, exist_ok=True)
    cases_file, results_file = workdir / "cases.json", workdir / "results.json"
    cases_file.write_text(json.dumps([asdict(case) for case in cases], indent=1), "utf-8")
    results_file.unlink(missing_ok=True)
    command = [sys.executable, "-m", "tests.oracle.runner", str(cases_file), str(results_file)]
    command += ["--jobs", str(jobs), "--timeout", str(timeout)]
    # Every child times out on its own; this only stops a parent that hangs.
    longest = max([timeout, *(case.timeout for case in cases if case.timeout is not None)])
    limit = 60 + longest * (len(cases) // max(jobs, 1) + 1)
    start = time.perf_counter()
    process = subprocess.run(
        command, cwd=REPO, env=offline_env(workdir), capture_output=True, text=True, timeout=limit
    )
    wall = time.perf_counter() - start
    if process.returncode != 0 or not results_file.exists():
        raise RuntimeError(
            f"the runner failed (exit {process.returncode}):\n{process.stdout}\n{process.stderr}"
        )
    report = read_results(results_file)
    return TuneReport(report.outcomes, report.import_seconds, wall)


def read_results(path: Path) -> TuneReport:
    """The report a runner process wrote."""
    data = json.loads(path.read_text("utf-8"))
    outcomes = {item["name"]: TuneOutcome(**item) for item in data["outcomes"]}
    return TuneReport(outcomes, data["import_seconds"], data["wall_seconds"])


# --- the parent process ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tests.oracle.runner CASES.json RESULTS.json [--jobs N] [--timeout S]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", type=Path, help="JSON list of {name, args, cwd}")
    parser.add_argument("results", type=Path, help="where the outcomes are written (JSON)")
    parser.add_argument("--jobs", type=int, default=JOBS)
    parser.add_argument("--timeout", type=float, default=TIMEOUT)
    options = parser.parse_args(argv)
    start = time.perf_counter()
    cases = [_case(item) for item in json.loads(options.cases.read_text("utf-8"))]
    entry = _import_torchtune()
    imported = time.perf_counter() - start
    logs = options.results.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    outcomes = run_forked(cases, entry, logs, jobs=options.jobs, timeout=options.timeout)
    report = {
        "import_seconds": imported,
        "wall_seconds": time.perf_counter() - start,
        "outcomes": [asdict(outcomes[case.name]) for case in cases],
    }
    options.results.write_text(json.dumps(report, indent=1), "utf-8")
    for case in cases:
        outcome = outcomes[case.name]
        print(f"{outcome.exit_code:>4} {outcome.seconds:6.2f}s {case.name}: {outcome.reason}")
    print(f"import {imported:.2f}s, total {report['wall_seconds']:.2f}s")
    return 0


def _case(item: dict[str, Any]) -> TuneCase:
    timeout = item.get("timeout")
    return TuneCase(
        str(item["name"]),
        tuple(str(arg) for arg in item["args"]),
        str(item["cwd"]),
        None if timeout is None else float(timeout),
    )


def _import_torchtune() -> Callable[[], None]:
    """Import torch, torchtune and what the recipes use; torchtune's CLI entry point."""
    import importlib

    for module in WARM_MODULES:
        importlib.import_module(module)
    from torchtune._cli.tune import main as tune_main

    entry: Callable[[], None] = tune_main
    return entry


@dataclass
class _Running:
    """A child that has not exited yet."""

    case: TuneCase
    started: float
    log: Path
    result: Path
    timeout: float
    timed_out: bool = False


def run_forked(
    cases: Sequence[TuneCase],
    entry: Callable[[], None],
    logs: Path,
    *,
    jobs: int = JOBS,
    timeout: float = TIMEOUT,
) -> dict[str, TuneOutcome]:
    """Fork a child per case, ``jobs`` at a time; each one's outcome by name."""
    pending = list(cases)
    running: dict[int, _Running] = {}
    outcomes: dict[str, TuneOutcome] = {}
    while pending or running:
        while pending and len(running) < jobs:
            case = pending.pop(0)
            stem = _file_name(case.name)
            log, result = logs / f"{stem}.log", logs / f"{stem}.json"
            limit = timeout if case.timeout is None else case.timeout
            pid = _fork(case, entry, log, result)
            running[pid] = _Running(case, time.perf_counter(), log, result, limit)
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            _kill_late(running)
            time.sleep(0.02)
            continue
        child = running.pop(pid)
        outcomes[child.case.name] = _outcome(child, status, time.perf_counter())
    return outcomes


def _file_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _kill_late(running: dict[int, _Running]) -> None:
    """SIGKILL each child past its timeout (that PID only: we forked it)."""
    now = time.perf_counter()
    for pid, child in running.items():
        if not child.timed_out and now - child.started > child.timeout:
            child.timed_out = True
            os.kill(pid, signal.SIGKILL)


def _fork(case: TuneCase, entry: Callable[[], None], log: Path, result: Path) -> int:
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never returns
        _child(case, entry, log, result)
    return pid


def _child(case: TuneCase, entry: Callable[[], None], log: Path, result: Path) -> None:
    """Run ``tune run`` as the ``tune`` script would, then leave without the parent's cleanup."""
    code, reason = 1, ""
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)
        os.chdir(case.cwd)
        sys.argv = ["tune", "run", *case.args]
        code, reason = _call(entry)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            result.write_text(json.dumps({"exit_code": code, "reason": reason}), "utf-8")
        finally:
            os._exit(code)  # never the parent's atexit handlers or its buffered output


def _call(entry: Callable[[], None]) -> tuple[int, str]:
    """Call the entry point; its exit code and, for an exception, its last line."""
    try:
        entry()
    except SystemExit as exit:
        if exit.code is None or exit.code == 0:
            return 0, ""
        if isinstance(exit.code, int):
            return exit.code, ""  # argparse has printed why: the log's last line says it
        print(exit.code, file=sys.stderr)
        return 1, str(exit.code)
    except BaseException as error:  # what the interpreter would print and exit 1 for
        traceback.print_exc()
        return 1, traceback.format_exception_only(type(error), error)[-1].strip()
    return 0, ""


def _outcome(child: _Running, status: int, ended: float) -> TuneOutcome:
    code = os.waitstatus_to_exitcode(status)
    tail = _tail(child.log)
    reason = ""
    if child.timed_out:
        reason = f"timed out after {child.timeout:g} s"
    elif code < 0:
        reason = f"killed by signal {-code}"
    elif code != 0:
        reason = _reported_reason(child.result) or _last_line(tail)
    return TuneOutcome(
        child.case.name, code, reason, round(ended - child.started, 3), str(child.log), tail
    )


def _reported_reason(result: Path) -> str:
    try:
        return str(json.loads(result.read_text("utf-8"))["reason"])
    except (OSError, ValueError, KeyError):
        return ""


def _tail(log: Path) -> str:
    try:
        text = log.read_text("utf-8", errors="replace")
    except OSError:
        return ""
    # tqdm redraws with carriage returns: keep the last state of each line.
    lines = [line.rsplit("\r", 1)[-1] for line in text.rstrip().split("\n")]
    return "\n".join(lines[-TAIL_LINES:])


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


if __name__ == "__main__":
    sys.exit(main())
