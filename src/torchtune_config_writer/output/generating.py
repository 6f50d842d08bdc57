"""The public API: generate an experiment's folder, as the command line, hook and Action do."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

from ..errors import ConfigWriterError, ErrorList
from ..experiment.load import find_experiment_file
from ..generation.collisions import find_collisions, planned
from ..generation.inputs import Inputs, read_inputs, read_other_experiments
from ..generation.plan import Plan, plan_experiment
from ..generation.render import render_files
from ..workspace.layout import CONFIGS_DIR, RUN_MAPPING, run_files
from ..workspace.repository import ESCAPE_HINT, symlink_escape
from .lock import writing
from .ownership import check_generated_folder
from .write import WriteResult, write_generated_folder, write_new_folder


@dataclass(frozen=True)
class Generated:
    """What :func:`generate` produced for one experiment.

    Attributes:
        plan: The checked experiment and base.
        folder: The folder holding the run configs (``configs/``).
        run_mapping: The ``run_mapping.yaml`` written.
        write: What changed on disk (for an in-repo folder).
    """

    plan: Plan
    folder: Path
    run_mapping: Path
    write: WriteResult | None

    @property
    def run_files(self) -> list[Path]:
        """The run config files, in run order."""
        return run_files(self.folder)


def generate(
    path: Path | str,
    *,
    output_base_dir: Path | str | None = None,
    max_runs: int | None = None,
    refresh_base: bool = False,
    renumber: bool = False,
) -> Generated:
    """Generate the configs of one experiment.

    Args:
        path: ``experiment.yaml`` or its folder.
        output_base_dir: Write a new timestamped folder here instead of ``configs/`` beside the
            experiment (overrides ``output.base_dir``).
        max_runs: Refuse sweeps with more runs than this.
        refresh_base: Re-read a recipe base from the installed torchtune.
        renumber: Number the runs in sweep order instead of keeping the ids the committed
            ``run_mapping.yaml`` gives them.

    Returns:
        What was generated.

    Raises:
        ConfigWriterError: bad input; nothing on disk has changed.
    """
    return generate_many(
        [path],
        output_base_dir=output_base_dir,
        max_runs=max_runs,
        refresh_base=refresh_base,
        renumber=renumber,
    )[0]


def generate_many(
    paths: Sequence[Path | str],
    *,
    output_base_dir: Path | str | None = None,
    max_runs: int | None = None,
    refresh_base: bool = False,
    renumber: bool = False,
) -> list[Generated]:
    """Generate several experiments; bad input in any of them is found before any is written.

    Each experiment's folder is locked from before it is read until it is written, so two
    writers of one experiment take turns.
    """
    files = [find_experiment_file(Path(p)) for p in paths]
    with writing(path.parent / CONFIGS_DIR for path in files):
        found = ErrorList()  # the mistakes of every experiment, not only the first one's
        read = partial(read_inputs, max_runs=max_runs, refresh_base=refresh_base, renumber=renumber)
        made = [found.attempt(partial(_plan, read, p), None) for p in files]
        found.raise_found()
        plans = [plan for plan in made if plan is not None]
        # Two experiments of one repository never write to one folder.
        others = read_other_experiments([plan.experiment for plan in plans], max_runs)
        for collision in find_collisions(plans, planned(others)):
            raise collision.error()
        targets = [_target(plan, output_base_dir) for plan in plans]
        return [_write(plan, *target) for plan, target in zip(plans, targets, strict=True)]


def _plan(read: Callable[[Path], Inputs], path: Path) -> Plan:
    return plan_experiment(read(path))


def _target(plan: Plan, output_base_dir: Path | str | None) -> tuple[Path, bool]:
    """Where an experiment is written, checked: (folder, whether it is a timestamped one)."""
    experiment = plan.experiment
    if output_base_dir is not None:
        base_dir = Path(output_base_dir)
    elif experiment.output_base_dir is not None:
        base_dir = experiment.resolve_path(experiment.output_base_dir, ("output", "base_dir"))
    else:
        folder = experiment.folder / CONFIGS_DIR
        check_generated_folder(folder, launching=plan.launchers)
        return folder, False
    if base_dir.exists() and not base_dir.is_dir():
        raise ConfigWriterError("is a file, not a folder to write output folders in", base_dir)
    escape = symlink_escape(base_dir)
    if escape is not None:
        raise ConfigWriterError(
            f"leads out of the repository through a symlink (to {escape}): output folders are "
            f"written there only when you write that path itself; {ESCAPE_HINT}",
            base_dir,
        )
    return base_dir, True


def _write(plan: Plan, target: Path, timestamped: bool) -> Generated:
    if not timestamped:
        result = write_generated_folder(target, render_files(plan))
        return Generated(plan, target, target / RUN_MAPPING, result)
    stamp = datetime.now().strftime("%Y%m%d_%H%M%S")
    name = f"{plan.experiment.output_name}_{stamp}"
    root = write_new_folder(target, name, lambda chosen: render_files(plan, generation=chosen))
    return Generated(plan, root / CONFIGS_DIR, root / RUN_MAPPING, None)
