"""sbatch, run for a resubmission: each array in turn, its evaluation array after it with a
dependency on its job; what failed said with what was submitted before and what was not.

sbatch is one injected function (:data:`Sbatch`); :func:`run_sbatch` is the real one.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError
from ..launchers.arrays import ranges
from .catalog import run_number
from .resubmit import ArraySubmission, Resubmission

# sbatch's arguments and the folder it runs in, to its standard output (``--parsable``: the job
# id); raises SbatchFailed.
Sbatch = Callable[[Sequence[str], Path], str]


class SbatchFailed(Exception):
    """sbatch did not submit: the message is its last line of standard error, or why not."""


@dataclass(frozen=True)
class Submitted:
    """An array submitted: its job id, and its evaluation array's, if any."""

    array: ArraySubmission
    job: str
    evaluation_job: str | None = None


def dependency(job: str) -> str:
    """The evaluation array's option that starts its task N once training task N succeeded."""
    return f"--dependency=aftercorr:{job}"


def shell_commands(resubmission: Resubmission) -> list[str]:
    """The sbatch commands that :func:`submit` runs, as shell lines runnable from the
    experiment's folder: an evaluation array takes its training job's id from ``$job``."""
    lines = []
    for array in resubmission.arrays:
        training = shlex.join(["sbatch", *array.training])
        if array.evaluation is None:
            lines.append(training)
            continue
        *options, script = array.evaluation
        evaluation = shlex.join(["sbatch", *options])
        lines.append(
            f"job=$({training}) && {evaluation} {dependency('$job')} {shlex.quote(script)}"
        )
    return lines


def submit(
    resubmission: Resubmission,
    sbatch: Sbatch,
    on_submitted: Callable[[Submitted], None] | None = None,
) -> list[Submitted]:
    """Submit each array of ``resubmission``, each evaluation array after its training array.

    Args:
        resubmission: From :func:`~.resubmit.prepare_resubmission`.
        sbatch: Runs sbatch (:func:`run_sbatch`).
        on_submitted: Called as each array (and its evaluation) is submitted.

    Raises:
        ConfigWriterError: sbatch failed: what it said, what was submitted before, and what
            was not.
    """
    done: list[Submitted] = []
    for index, array in enumerate(resubmission.arrays):
        job = _submitted_job(sbatch, array.training, resubmission, done, index, False)
        evaluation_job = None
        if array.evaluation is not None:
            *options, script = array.evaluation
            arguments = (*options, dependency(job), script)
            half = Submitted(array, job)
            evaluation_job = _submitted_job(
                sbatch, arguments, resubmission, [*done, half], index, True
            )
        submitted = Submitted(array, job, evaluation_job)
        done.append(submitted)
        if on_submitted is not None:
            on_submitted(submitted)
    return done


def _submitted_job(
    sbatch: Sbatch,
    arguments: Sequence[str],
    resubmission: Resubmission,
    done: list[Submitted],
    index: int,
    evaluating: bool,
) -> str:
    array = resubmission.arrays[index]
    what = "the evaluation of " if evaluating else ""
    try:
        output = sbatch(arguments, resubmission.folder)
    except SbatchFailed as failed:
        said = f"sbatch failed for {what}{named_runs(array.runs)}: {failed}"
        raise ConfigWriterError(_failure(said, resubmission, done, index, evaluating)) from None
    job = output.strip().split(";", 1)[0]  # --parsable: "1234", or "1234;cluster"
    if not job.isdigit():
        said = (
            f"sbatch printed {output.strip()!r} for {what}{named_runs(array.runs)}, not a job "
            "id: squeue --me shows whether it was submitted"
        )
        raise ConfigWriterError(_failure(said, resubmission, done, index, evaluating))
    return job


def _failure(
    said: str, resubmission: Resubmission, done: list[Submitted], index: int, evaluating: bool
) -> str:
    """What sbatch said, what was submitted before, and what was not."""
    submitted = []
    for before in done:
        submitted.append(f"job {before.job} ({named_runs(before.array.runs)})")
        if before.evaluation_job is not None:
            runs = named_runs(before.array.runs)
            submitted.append(f"job {before.evaluation_job} (the evaluation of {runs})")
    if not submitted:
        return f"{said}; nothing was submitted"
    arrays = resubmission.arrays
    later = [run for array in arrays[index + 1 :] for run in array.runs]
    unsent = []
    if evaluating:
        unsent.append(f"the evaluation of {named_runs(arrays[index].runs)}")
    else:
        later = [*arrays[index].runs, *later]
    if later:
        unsent.append(named_runs(later))
    return f"{said}; submitted: {', '.join(submitted)}; not submitted: {', '.join(unsent)}"


def named_runs(ids: Sequence[str]) -> str:
    """``run_000-run_003, run_007``: consecutive runs as one range."""
    by_number = {run_number(run): run for run in ids}
    spans = ranges(sorted(by_number))
    return ", ".join(by_number[a] if a == b else f"{by_number[a]}-{by_number[b]}" for a, b in spans)


def run_sbatch(arguments: Sequence[str], folder: Path) -> str:
    """Run the real sbatch in ``folder``; its standard output.

    Raises:
        SbatchFailed: it failed (its last line of standard error), is missing, or hung.
    """
    try:
        done = subprocess.run(
            ["sbatch", *arguments],
            cwd=folder,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
        )
    except subprocess.TimeoutExpired:
        raise SbatchFailed(
            "it did not answer in 300 s, and may have submitted: squeue --me shows whether"
        ) from None
    except OSError as exc:
        raise SbatchFailed(exc.strerror or str(exc)) from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise SbatchFailed(lines[-1] if lines else f"exit code {done.returncode}")
    return done.stdout


def default_sbatch() -> Sbatch | None:
    """The real sbatch, or ``None`` where it is not installed."""
    return run_sbatch if shutil.which("sbatch") is not None else None
