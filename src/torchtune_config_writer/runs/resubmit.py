"""Submit the job array again for exactly the runs that did not finish and are not live.

``status`` says where each run is; the runs that failed, timed out, ran out of memory, were
preempted, stopped without their final checkpoint or never started are submitted again as the
generated script's array (cancelled ones only when asked: a run a user cancelled was usually
meant to stop), with more time or memory where asked, in parts as the script's own comment
submits them. This module says what to submit; sbatch.py submits it.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from ..errors import ConfigWriterError, all_of
from ..experiment.launch import Slurm
from ..launchers.arrays import array_option, array_parts, offset_option
from ..launchers.sbatch_limits import LimitError, scaled_memory, scaled_time
from ..launchers.slurm import SLURM_EVAL_SCRIPT, SLURM_SCRIPT
from ..output.checking import check
from ..wording import plural
from ..workspace.layout import CONFIGS_DIR
from . import status as status_module
from .catalog import Catalog, read_catalog, run_number
from .slurm_jobs import SlurmCommand, tasks_of_script
from .status import STATUSES, STOPPED, RunStatus, StudyStatus, catalog_status, in_parts

# The statuses resubmitted; "cancelled" too on request. Never finished, running or queued.
RESUBMITTED = ("failed", "timed out", "out of memory", "preempted", STOPPED, "not started")
CANCELLED = "cancelled"
_MEMORY_OPTIONS = ("--mem", "--mem-per-cpu", "--mem-per-gpu")


@dataclass(frozen=True)
class ArraySubmission:
    """One array of runs submitted with one set of options: its training array and, with an
    evaluation, its evaluation array.

    Attributes:
        runs: The runs' ids.
        options: What these runs get beyond the script's own options (``--time=04:00:00``).
        training: sbatch's arguments for the training array, the script last.
        evaluation: sbatch's arguments for the evaluation array, without the dependency on the
            training job (added once it is known), or ``None`` without an evaluation.
    """

    runs: tuple[str, ...]
    options: tuple[str, ...]
    training: tuple[str, ...]
    evaluation: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Resubmission:
    """What to submit again, and what is left alone.

    Attributes:
        folder: Where sbatch runs: the experiment's folder (for a timestamped generation, its
            folder, which holds its copy of the experiment).
        runs: The runs resubmitted, with their status, in run id order.
        options: The options each resubmitted run gets beyond the script's, by id.
        arrays: The sbatch submissions, in order.
        left_alone: How many runs of each status are not resubmitted, in status order.
        notes: Where the statuses come from, where that is less than Slurm and the files.
    """

    folder: Path
    runs: tuple[RunStatus, ...]
    options: dict[str, tuple[str, ...]]
    arrays: tuple[ArraySubmission, ...]
    left_alone: dict[str, int]
    notes: tuple[str, ...] = ()


def prepare_resubmission(
    path: Path | str,
    *,
    cancelled: bool = False,
    more_time: Fraction | None = None,
    more_memory: Fraction | None = None,
    max_runs: int | None = None,
    slurm: SlurmCommand | None = None,
    need_slurm: bool = True,
) -> Resubmission:
    """What to resubmit of the experiment at ``path``; submits nothing.

    Args:
        path: The experiment file, or its folder.
        cancelled: Resubmit cancelled runs too.
        more_time: Timed-out runs get this many times the experiment's ``--time``.
        more_memory: Runs out of memory get this many times its ``--mem`` (or ``--mem-per-cpu``,
            ``--mem-per-gpu``).
        max_runs: As ``generate --max-runs``.
        slurm: Runs a Slurm command for the runs' status; Slurm's own by default.
        need_slurm: Refuse where Slurm does not answer (a queued run would read as not started
            and be submitted twice); ``False`` for a dry run, which notes it instead.

    Raises:
        ConfigWriterError: no ``launch.slurm``; the generated folder is out of date; a factor
            without the option it scales; Slurm does not answer while ``need_slurm``.
    """
    catalog = read_catalog(path, max_runs=max_runs)
    experiment = catalog.plan.experiment
    launch = experiment.launch.slurm
    if launch is None:
        raise ConfigWriterError(
            "the experiment has no launch.slurm, so no job array to resubmit: add launch.slurm "
            "and generate",
            experiment.path,
        )
    _refuse_drift(experiment.path, max_runs)
    configs = configs_folder(catalog)
    # Timestamped: the newest generation's, never a configs/ left beside the experiment.
    stale = experiment.output_base_dir is not None and configs == experiment.folder / CONFIGS_DIR
    if stale or not (configs / SLURM_SCRIPT).is_file():
        raise ConfigWriterError(
            "there is no generated job array script to submit: generate the experiment first",
            experiment.path,
        )
    extra = _more(launch, more_time, more_memory, experiment.path)
    # Through the module, so that tests' stand-in for Slurm answers here as for status.
    slurm = status_module.default_slurm() if slurm is None else slurm
    status = catalog_status(catalog, slurm)
    if need_slurm and not status.slurm_answered:
        raise ConfigWriterError(
            "Slurm does not answer here (squeue), so queued and running runs cannot be told "
            "from those that need submitting: resubmit where Slurm answers (--dry-run shows "
            "the commands)"
        )
    if slurm is not None:
        _refuse_unknown_jobs(catalog, status, configs / SLURM_SCRIPT, slurm)
    return plan_resubmission(catalog, status, extra, cancelled=cancelled)


def _refuse_unknown_jobs(
    catalog: Catalog, status: StudyStatus, script: Path, slurm: SlurmCommand
) -> None:
    """A study in parts knows a queued part's runs only once one of its tasks has logged (its
    offset): until then those runs read as before, and would be submitted twice."""
    if not in_parts(catalog):
        return  # one array: task N is run N, every queued task is known
    listed = tasks_of_script(script, slurm) or {}
    known = {run.task.split("_", 1)[0] for run in status.runs if run.task is not None}
    unknown = sorted({task.job for task in listed} - {int(job) for job in known})
    if unknown:
        jobs = ", ".join(map(str, unknown))
        job, is_, it = ("job", "is", "it") if len(unknown) == 1 else ("jobs", "are", "each")
        raise ConfigWriterError(
            f"{job} {jobs} of this study {is_} queued, and which runs {it} trains is known only "
            f"once one of its tasks starts (a study in parts): resubmit then, or scancel first"
        )


def _more(
    slurm: Slurm, more_time: Fraction | None, more_memory: Fraction | None, experiment: Path
) -> dict[str, tuple[str, ...]]:
    """The options timed-out runs and runs out of memory get: the experiment's time limit and
    memory, scaled.

    Raises:
        ConfigWriterError: a factor without the option it scales, or one that cannot be.
    """
    time = _option(slurm, ("--time",)) if more_time is not None else None
    memory = _option(slurm, _MEMORY_OPTIONS) if more_memory is not None else None
    if more_time is not None and time is None:
        raise ConfigWriterError(
            "--more-time scales the experiment's time limit, and it has none: set time in "
            "launch.slurm.sbatch, then generate",
            experiment,
        )
    if more_memory is not None and memory is None:
        raise ConfigWriterError(
            "--more-memory scales the experiment's memory, and it asks for none: set mem in "
            "launch.slurm.sbatch, then generate",
            experiment,
        )
    extra: dict[str, tuple[str, ...]] = {}
    try:
        if time is not None and more_time is not None:
            extra["timed out"] = (f"--time={scaled_time(time[1], more_time)}",)
        if memory is not None and more_memory is not None:
            extra["out of memory"] = (f"{memory[0]}={scaled_memory(memory[1], more_memory)}",)
    except LimitError as error:
        raise ConfigWriterError(
            f"launch.slurm.sbatch: {error}: nothing to scale", experiment
        ) from None
    return extra


def _refuse_drift(experiment: Path, max_runs: int | None) -> None:
    """The generated folder must be what generate writes now, as ``check`` says: the array
    would train configs other than the experiment's."""
    result = check([experiment], max_runs=max_runs)
    if result.errors:
        raise all_of(result.errors)
    drifted = [drift for drift in result.drifts if drift.drifted]
    if drifted:
        files = len(drifted[0].files)
        differ = "differs" if files == 1 else "differ"
        raise ConfigWriterError(
            f"the generated configs are out of date ({plural(files, 'file')} {differ} from what "
            "the experiment generates): regenerate first (generate), then resubmit",
            experiment,
        )


def _option(slurm: Slurm, names: tuple[str, ...]) -> tuple[str, str] | None:
    """The first of the sbatch options ``names`` the experiment gives, and its value."""
    for option in slurm.sbatch:
        name, _, value = option.partition("=")
        if name in names:
            # Written shell-quoted into #SBATCH lines (launch.py); the value as sbatch reads it.
            words = shlex.split(value)
            return name, words[0] if words else ""
    return None


def plan_resubmission(
    catalog: Catalog,
    status: StudyStatus,
    extra: dict[str, tuple[str, ...]] | None = None,
    *,
    cancelled: bool = False,
) -> Resubmission:
    """The arrays that submit exactly the runs to resubmit (a pure function of the status).

    Args:
        catalog: The experiment's runs; it must have ``launch.slurm``.
        status: Their status (:func:`~.status.catalog_status`).
        extra: sbatch options by status (``{"timed out": ("--time=08:00:00",)}``): runs of that
            status are submitted as an array of their own with them.
        cancelled: Resubmit cancelled runs too.
    """
    experiment = catalog.plan.experiment
    slurm = experiment.launch.slurm
    assert slurm is not None, "plan_resubmission needs launch.slurm"
    extra = extra or {}
    wanted = (*RESUBMITTED, CANCELLED) if cancelled else RESUBMITTED
    chosen = tuple(run for run in status.runs if run.status in wanted)
    left = [run.status for run in status.runs if run.status not in wanted]
    left_alone = {name: left.count(name) for name in STATUSES if name in left}
    options = {run.id: extra.get(run.status, ()) for run in chosen}
    groups: dict[tuple[str, ...], list[int]] = {}
    for run in chosen:
        groups.setdefault(options[run.id], []).append(run_number(run.id))
    ids = {run_number(run.id): run.id for run in catalog.runs}
    training = f"{CONFIGS_DIR}/{SLURM_SCRIPT}"
    evaluation = None
    if experiment.evaluation is not None:
        evaluation = f"{CONFIGS_DIR}/{SLURM_EVAL_SCRIPT}"
    arrays = []
    # Each set of options its own arrays, in the order of their first run.
    for group, numbers in sorted(groups.items(), key=lambda item: item[1][0]):
        for start, members in array_parts(numbers, slurm.max_array_size):
            # As the script's comment submits a part: task N is run N + TCW_RUN_OFFSET.
            array = [array_option(start, members, slurm.max_parallel), *offset_option(start)]
            arrays.append(
                ArraySubmission(
                    runs=tuple(ids[number] for number in members),
                    options=group,
                    training=("--parsable", *array, *group, training),
                    evaluation=None if evaluation is None else ("--parsable", *array, evaluation),
                )
            )
    folder = configs_folder(catalog).parent
    return Resubmission(folder, chosen, options, tuple(arrays), left_alone, status.notes)


def configs_folder(catalog: Catalog) -> Path:
    """The generated folder whose scripts are submitted: ``configs/`` beside the experiment, or
    the newest timestamped generation's (whose folder, holding a copy of the experiment, is
    where its scripts are submitted from)."""
    if catalog.runs:
        return catalog.runs[0].config_file.parent
    return catalog.plan.experiment.folder / CONFIGS_DIR
