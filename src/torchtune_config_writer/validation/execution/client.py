"""The validating process's side of the execution worker: start it, send requests, get outcomes.

No torch here. Outcomes are cached by what was run (the same config with the same edits in the
same mode runs once however many configs ask), so that finding which value broke a run of a
sweep repeats no execution another run already made.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from .protocol import Outcome, Request, Status

TIMEOUT = 600.0  # a 70B config at its real size takes about a minute here
START_TIMEOUT = 300.0  # importing torch and torchtune takes 5 to 15 s here


class WorkerFailed(Exception):
    """The worker could not start (torch or torchtune do not import): nothing can execute."""


class Executor:
    """One worker process for the life of a validation.

    Args:
        jobs: Executions at a time.
        timeout: Seconds before one execution is stopped.
    """

    def __init__(self, jobs: int = 2, timeout: float = TIMEOUT) -> None:
        self._jobs = jobs
        self._timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._next = 0
        self._cache: dict[str, Outcome] = {}
        self.versions: dict[str, str] = {}
        self.failure: str | None = None
        self._lock = threading.Lock()  # one conversation with the worker at a time

    def start(self) -> None:
        """Start the worker (it imports torch while the caller does other work)."""
        if self._process is not None:
            return
        command = [sys.executable, "-m", f"{__package__}.worker", "--jobs", str(self._jobs)]
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        assert self._process.stdout is not None
        threading.Thread(target=self._read, args=(self._process.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self._lines.put(line.decode("utf-8", errors="replace"))
        self._lines.put(None)

    def _ready(self) -> None:
        if self.versions or self.failure is not None:
            if self.failure is not None:
                raise WorkerFailed(self.failure)
            return
        self.start()
        try:
            line = self._lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            line = json.dumps({"failed": f"the worker did not start in {START_TIMEOUT:g} s"})
        try:
            message: dict[str, Any] = json.loads(line) if line else {}
        except ValueError:
            message = {}
        if "ready" in message:
            self.versions = {str(k): str(v) for k, v in dict(message["ready"]).items()}
            return
        self.failure = str(message.get("failed", "the execution worker exited"))
        self._stop()
        raise WorkerFailed(self.failure)

    def run(self, wanted: Iterable[Request]) -> list[Outcome]:
        """Execute each request (its id and timeout are the executor's); outcomes in order.

        Raises:
            WorkerFailed: the worker could not start.
        """
        with self._lock:
            self._ready()
            asks = [_absolute(asked) for asked in wanted]
            keys = [_key(asked) for asked in asks]
            sent: dict[int, str] = {}
            requests: list[str] = []
            for asked, key in zip(asks, keys, strict=True):
                if key in self._cache or key in sent.values():
                    continue
                self._next += 1
                sent[self._next] = key
                requests.append(replace(asked, id=self._next, timeout=self._timeout).to_json())
            if sent:
                self._converse(requests, sent)
            return [self._cache[key] for key in keys]

    def _converse(self, requests: list[str], sent: dict[int, str]) -> None:
        """Send the requests and wait for every outcome, or for the worker's end."""
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write("".join(line + "\n" for line in requests).encode())
            self._process.stdin.flush()
        except OSError:  # the worker is gone: its end of the stream says so below
            pass
        while sent:
            line = self._lines.get()
            if line is None:  # the worker died (killed, out of memory): the next run restarts it
                message = "the execution worker exited before the run ended"
                for key in sent.values():
                    self._cache[key] = Outcome(0, Status.NOT_CHECKED, "Crash", message)
                self._stop()
                return
            try:
                outcome = Outcome.from_json(line)
            except (ValueError, KeyError, TypeError):
                continue  # not an outcome (a library's stray line)
            if outcome.id in sent:  # an outcome of a conversation given up on is dropped
                self._cache[sent.pop(outcome.id)] = outcome

    def forget(self) -> None:
        """Drop the outcomes kept so far."""
        self._cache.clear()

    def close(self) -> None:
        """Stop the worker (it stops its children) and forget it."""
        self._stop()
        self.failure = None

    def _stop(self) -> None:
        if self._process is None:
            return
        if self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()  # the worker kills its children and exits
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        self.versions = {}
        self._lines = queue.Queue()


_SHARED: list[Executor] = []


def shared_executor() -> Executor:
    """The process's one worker, started on first use and stopped at exit: a second
    ``validate`` in the same process (a test suite, a script) does not import torch again. Its
    outcomes are forgotten between validations (the files a config reads may have changed)."""
    if not _SHARED:
        executor = Executor()
        atexit.register(executor.close)
        _SHARED.append(executor)
    _SHARED[0].forget()
    return _SHARED[0]


def _key(request: Request) -> str:
    """What an execution depends on: the config's bytes as well as its name."""
    try:
        content = hashlib.sha256(Path(request.config).read_bytes()).hexdigest()
    except OSError:
        content = ""
    blob = replace(request, id=0, timeout=0).to_json() + content
    return hashlib.sha256(blob.encode()).hexdigest()


def _absolute(request: Request) -> Request:
    """The request with its paths absolute: the worker's folder is not the caller's, and the
    cache must not take one file for another of the same relative name. A recipe file is
    relative to ``cwd``, as ``tune run`` finds it."""
    return replace(
        request,
        config=str(Path(request.config).absolute()),
        cwd=str(Path(request.cwd).absolute()),
    )
