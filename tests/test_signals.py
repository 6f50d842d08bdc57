"""A closed pipe and Ctrl-C end the command line with one line and the shell's exit codes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer import generate

from .conftest import experiment_text, record_base, snapshot

COMMAND = [sys.executable, "-m", "torchtune_config_writer"]


@pytest.mark.slow
def test_check_into_a_pipe_closed_early_exits_141_without_a_traceback(
    write_experiment: Callable[..., Path],
) -> None:
    values = ", ".join(str(i) for i in range(400))
    path = write_experiment(experiment_text(variables=f"seed: [{values}]"))
    generate(path)
    # Each run's own change, so the report is far more than a pipe holds (64 KiB): the writer
    # is still writing when the reader goes away.
    shifted = ", ".join(str(i + 1000) for i in range(400))
    path.write_text(experiment_text(variables=f"seed: [{shifted}]"))
    process = subprocess.Popen(
        [*COMMAND, "check", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.read(100)  # like `| head`: read a little, then go away
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=60) == 141
    assert "Traceback" not in error and "BrokenPipe" not in error


@pytest.mark.slow
def test_ctrl_c_during_generate_is_one_line_exit_130_and_changes_nothing(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    values = ", ".join(str(i) for i in range(150))
    text = experiment_text(variables=f"seed: [{values}]\nlora_rank: [{values}]")
    template = write_experiment(text)
    record_base(template)  # a new process: the base as a commit records it, torchtune or not
    before = snapshot(template.parent)
    for attempt in range(3):  # a write that ends before the signal lands proves nothing: again
        folder = tmp_path / f"attempt_{attempt}"
        shutil.copytree(template.parent, folder)
        process = subprocess.Popen(
            [*COMMAND, "generate", "--max-runs", "30000", str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Interrupt it while it writes: once its staging folder is there (not during imports).
        deadline = time.monotonic() + 60
        while not any(".tcw-" in p.name for p in folder.iterdir()):
            assert process.poll() is None and time.monotonic() < deadline, "it never wrote"
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        out, error = process.communicate(timeout=60)
        if process.returncode == 0:
            continue
        assert (process.returncode, error) == (130, "interrupted\n")
        assert snapshot(folder) == before
        assert sorted(p.name for p in folder.iterdir()) == ["configs", "experiment.yaml"]
        return
    pytest.fail("the write ended before Ctrl-C landed, three times")


@pytest.mark.slow
@pytest.mark.parametrize("after", [0.0, 0.03, 0.06, 0.1, 0.15, 0.2])
def test_ctrl_c_while_the_command_line_is_imported_shows_no_traceback_of_ours(
    write_experiment: Callable[..., Path], after: float
) -> None:
    # Before Python runs any line of the tool (its own startup, runpy finding the package), an
    # interrupt is Python's to report; from the package's first line on, none is a traceback.
    path = write_experiment(experiment_text())
    record_base(path)
    for _ in range(3):
        process = subprocess.Popen(
            [*COMMAND, "check", str(path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(after)
        process.send_signal(signal.SIGINT)
        _, error = process.communicate(timeout=60)
        ours = b"Traceback" in error and b"torchtune_config_writer" in error
        assert not ours, error.decode()
        assert process.returncode in (0, 1, 130, 1 if b"Traceback" in error else -2, -2)
