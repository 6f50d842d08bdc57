"""Running the command line as a person (a terminal) and as CI (a log) sees it, for snapshots.

A terminal is a real pseudo-terminal (``pty``): the program's own ``isatty`` decides colour and
progress, as it does for a user. Snapshots live in ``tests/snapshots/``; with
``TCW_UPDATE_SNAPSHOTS=1`` a test writes what it saw there instead of comparing (review the diff).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

SNAPSHOTS = Path(__file__).parent / "snapshots"
COMMAND = [sys.executable, "-m", "torchtune_config_writer"]


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "CI")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "100", **extra})
    return env


def in_terminal(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """The exit code and what a terminal shows (standard output and error, as they come)."""
    main, secondary = pty.openpty()
    process = subprocess.Popen(
        [*COMMAND, *args], cwd=cwd, stdout=secondary, stderr=secondary, env=_environment(**env)
    )
    os.close(secondary)
    shown = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:  # the terminal's other end is closed: the program is done
            break
        if not chunk:
            break
        shown += chunk
    os.close(main)
    # The terminal's own line discipline writes a line feed as CR LF.
    return process.wait(), shown.decode().replace("\r\n", "\n")


def in_log(*args: str, cwd: Path, **env: str) -> tuple[int, str]:
    """The exit code and what a CI log shows: both streams into one pipe, ``CI`` set."""
    result = subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_environment(CI="true", **env),
    )
    return result.returncode, result.stdout


def visible(text: str) -> str:
    """Escape and carriage-return codes written so that a snapshot file shows them."""
    return text.replace("\x1b", "\\e").replace("\r", "\\r")


def assert_snapshot(name: str, text: str) -> None:
    """``text`` is ``tests/snapshots/<name>.txt`` (written there under TCW_UPDATE_SNAPSHOTS=1)."""
    path = SNAPSHOTS / f"{name}.txt"
    shown = visible(text)
    if os.environ.get("TCW_UPDATE_SNAPSHOTS") == "1":
        path.write_text(shown, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path.name}: run with TCW_UPDATE_SNAPSHOTS=1 and review"
    expected = path.read_text(encoding="utf-8")
    assert shown == expected, f"{path.name} differs (TCW_UPDATE_SNAPSHOTS=1 rewrites it)"
