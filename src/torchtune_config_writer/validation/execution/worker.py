"""The execution worker: imports torch and torchtune once, then runs each request in a fork.

    python -m torchtune_config_writer.validation.execution.worker [--jobs N]

It reads one JSON request per line on stdin and writes one JSON outcome per line on stdout, in
the order they finish, after a first line ``{"ready": {versions}}``. Two children run at a time
(this machine kind has two cores), each with its own timeout, after which only that child's PID
is killed. A child's output goes to a log file that is deleted with its scratch folder.

The validating process starts this as a subprocess, so that it never forks an interpreter in
which torch has run threads, and never carries the harness's patches itself.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import select
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ...errors import first_line
from .protocol import Outcome, Request, Status

JOBS = 2


@dataclass
class _Running:
    request: Request
    started: float
    folder: Path
    timed_out: bool = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=JOBS)
    options = parser.parse_args(argv)
    out = sys.stdout
    # Whatever torch, torchtune and the recipes print must not reach the protocol's stream.
    sys.stdout = sys.stderr
    root = Path(tempfile.mkdtemp(prefix="ttcw-execute-"))
    try:
        versions = _prepare(root)
    except Exception as exc:  # noqa: BLE001 - the caller reports why nothing could run
        _send(out, {"failed": f"{type(exc).__name__}: {first_line(exc)}"})
        shutil.rmtree(root, ignore_errors=True)
        return 0
    # Stopped (the client's close, or its own end): the children go with it, through finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        _send(out, {"ready": versions})
        _serve(out, root, options.jobs)
    except BrokenPipeError:  # the validating process is gone: nobody wants the outcomes
        pass
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _prepare(root: Path) -> dict[str, str]:
    """Import what every child needs, apply the harness, make the stand-in files once."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_DATASETS_CACHE"] = str(root / "datasets-cache")  # never the user's cache
    with contextlib.redirect_stdout(io.StringIO()):
        import torch

        torch.set_num_threads(1)  # two children share two cores; no thread pool to fork
        import importlib.metadata

        import datasets  # noqa: F401
        import torchdata.stateful_dataloader  # noqa: F401
        import torchtune
        import torchtune.datasets  # noqa: F401
        import torchtune.modules.peft  # noqa: F401
        import torchtune.training  # noqa: F401

        from . import harness, standins

        harness.install(root / "shared")
        folder = root / "shared" / "tokenizer"
        folder.mkdir(parents=True, exist_ok=True)
        for _ in standins.tokenizer_formats(folder):
            pass
    return {
        "torch": torch.__version__.split("+")[0],
        "torchtune": torchtune.__version__.split("+")[0],
        "torchao": importlib.metadata.version("torchao"),
    }


def _send(out: TextIO, message: object) -> None:
    text = message if isinstance(message, str) else json.dumps(message)
    out.write(text + "\n")
    out.flush()


def _serve(out: TextIO, root: Path, jobs: int) -> None:
    pending: list[Request] = []
    running: dict[int, _Running] = {}
    try:
        _loop(out, root, jobs, pending, running)
    finally:
        for pid in running:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)  # only children this process forked
            with contextlib.suppress(OSError):
                os.waitpid(pid, 0)


def _loop(
    out: TextIO, root: Path, jobs: int, pending: list[Request], running: dict[int, _Running]
) -> None:
    reading = True
    buffer = b""
    stdin = sys.stdin.buffer.fileno()
    while reading or running:
        while pending and len(running) < jobs:
            request = pending.pop(0)
            folder = root / f"e{request.id}"
            running[_fork(request, folder, root)] = _Running(request, time.monotonic(), folder)
        if reading:
            ready, _, _ = select.select([stdin], [], [], 0.01)
            if ready:
                chunk = os.read(stdin, 65536)
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                pending += [Request.from_json(line.decode()) for line in lines if line.strip()]
                if not chunk:  # the client closed its end: what is still asked is not wanted
                    reading = False
                    pending.clear()
                    for pid in running:
                        os.kill(pid, signal.SIGKILL)
        else:
            time.sleep(0.01)
        _reap(out, running)


def _fork(request: Request, folder: Path, root: Path) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child never returns
        code = 1
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            log = os.open(folder / "log.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(log, 1)
            os.dup2(log, 2)
            from . import harness

            outcome = harness.execute(request, folder)
            (folder / "outcome.json").write_text(outcome.to_json(), "utf-8")
            code = 0
        finally:
            os._exit(code)  # never the parent's cleanup or buffered output
    return pid


def _reap(out: TextIO, running: dict[int, _Running]) -> None:
    now = time.monotonic()
    for pid, child in running.items():
        if not child.timed_out and now - child.started > child.request.timeout:
            child.timed_out = True
            os.kill(pid, signal.SIGKILL)  # only a child this process forked
    while running:
        pid, status = os.waitpid(-1, os.WNOHANG)
        if pid == 0:
            return
        if pid not in running:
            continue
        child = running.pop(pid)
        _send(out, _outcome(child, status, now).to_json())
        shutil.rmtree(child.folder, ignore_errors=True)


def _outcome(child: _Running, status: int, now: float) -> Outcome:
    request = child.request
    seconds = round(now - child.started, 3)
    if child.timed_out:
        message = f"the execution took longer than {request.timeout:g} s and was stopped"
        return Outcome(request.id, Status.NOT_CHECKED, "Timeout", message, seconds=seconds)
    try:
        return Outcome.from_json((child.folder / "outcome.json").read_text("utf-8"))
    except (OSError, ValueError):
        code = os.waitstatus_to_exitcode(status)
        how = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        message = f"the execution ended without a verdict ({how}): {_tail(child.folder)}"
        return Outcome(request.id, Status.NOT_CHECKED, "Crash", message, seconds=seconds)


def _tail(folder: Path) -> str:
    try:
        lines = (folder / "log.txt").read_text("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


if __name__ == "__main__":
    sys.exit(main())
