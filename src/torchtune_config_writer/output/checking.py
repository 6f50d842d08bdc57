"""The drift check: regenerate in memory, compare with disk, and on request write the fix."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigWriterError, ExitCode, display_path
from ..generation import base
from ..generation.collisions import find_collisions, planned
from ..generation.inputs import read_inputs, read_other_experiments
from ..generation.plan import plan_experiment
from ..generation.render import render_files
from ..workspace.affected import (
    experiments_in,
    find_affected_experiments,
    orphan_folders,
    repository_experiments,
    submodules,
)
from ..workspace.deletions import left_behind
from ..workspace.layout import CONFIGS_DIR
from ..workspace.repository import repository_root
from .drift import Drift, find_drift
from .lock import writing
from .ownership import check_generated_folder, read_folder_files
from .write import WriteResult, write_generated_folder


@dataclass
class CheckResult:
    """What :func:`check` found.

    Attributes:
        drifts: One per experiment checked, in order; clean ones included.
        errors: Experiments that could not be checked (bad input), in order.
        fixed: What ``fix`` wrote, one per drifted experiment.
        orphans: Generated folders whose experiment is gone: drift that ``fix`` leaves alone.
        notes: What the check could not do or chose not to, and why (a base config whose users
            cannot be found, experiments in git submodules, the recorded bases' torchtune).
    """

    drifts: list[Drift] = field(default_factory=list)
    errors: list[ConfigWriterError] = field(default_factory=list)
    fixed: list[WriteResult] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        """2 for bad input, else 1 for drift (fixed or not), else 0."""
        if self.errors:
            return ExitCode.BAD_INPUT
        drifted = self.orphans or any(drift.drifted for drift in self.drifts)
        return ExitCode.FAILED if drifted else ExitCode.OK


def check(
    paths: Sequence[Path | str] = (),
    *,
    fix: bool = False,
    max_runs: int | None = None,
    start: Path | str = ".",
    deleted: Sequence[Path] = (),
) -> CheckResult:
    """Check generated folders against their experiments.

    Args:
        paths: Experiment files or folders, files in generated folders, or base config files
            (their experiments are checked). Empty, with no ``deleted`` either: every
            experiment in the git repository.
        fix: Write the regenerated folders of drifted experiments (nothing is written when any
            experiment has bad input).
        max_runs: The run limit, as for ``generate``.
        start: Where the git repository is looked for.
        deleted: Files a commit deletes, gone from disk (see
            :func:`~torchtune_config_writer.workspace.deletions.deleted_files`): the
            experiments they affect are checked too, and the generated folders they leave
            without an experiment are orphans.

    Raises:
        ConfigWriterError: a path does not exist, or no repository when one is needed.
    """
    start = Path(start)
    changed = [Path(p) for p in paths]
    whole_repository = not changed and not deleted
    if whole_repository:
        experiments = repository_experiments(start)
        folders: list[Path] = []  # orphan_folders looks through the whole repository
    else:
        left = left_behind(deleted, start)
        experiments = find_affected_experiments([*changed, *left.experiments], start)
        folders = [*changed, *left.folders]
    # --fix writes: each folder is locked from before it is read until it is written.
    with writing(path.parent / CONFIGS_DIR for path in experiments) if fix else nullcontext():
        result = _check(experiments, whole_repository, fix, max_runs)
    if whole_repository or folders:
        result.orphans = orphan_folders(folders, start)
    result.notes = [
        *_untraceable(changed, start),
        *_torchtune_versions(result.drifts),
        *(_submodules(start) if whole_repository else []),
    ]
    return result


def _untraceable(paths: list[Path], start: Path) -> Iterator[str]:
    """A file that is no experiment may be a base config, whose users only a repository lists:
    outside one, "0 experiments up to date" alone would read as "nothing uses it"."""
    if repository_root(start) is not None:
        return
    for path in paths:
        if path.is_file() and not experiments_in(path) and repository_root(path.parent) is None:
            yield (
                f"{display_path(path)}: not inside a git repository, so the experiments that use "
                "it as their base config cannot be found: name them (check EXPERIMENT...)"
            )


def _torchtune_versions(drifts: list[Drift]) -> Iterator[str]:
    """The lock wins over the installed torchtune; a different one is said once (the records
    stay as they are until ``--refresh-base``)."""
    recorded = sorted(
        {
            version
            for drift in drifts
            if drift.plan.base.recorded and (version := drift.plan.base.torchtune_version)
        }
    )
    installed = base.installed_torchtune_version() if recorded else None
    if installed is not None and recorded != [installed]:
        yield (
            f"the recorded base configs come from torchtune {', '.join(recorded)}, and "
            f"torchtune {installed} is installed here: the records are used "
            "(`generate --refresh-base` re-reads them)"
        )


def _submodules(start: Path) -> Iterator[str]:
    """git ls-files does not enter submodules: their experiments would be skipped silently."""
    for submodule in submodules(start):
        count = len(repository_experiments(submodule))
        if count:
            shown = display_path(submodule)
            what = "its 1 experiment was" if count == 1 else f"its {count} experiments were"
            pronoun = "it" if count == 1 else "them"
            yield (
                f"{shown}/ is a git submodule: {what} not checked; check {pronoun} from inside "
                f"(cd {shown} && torchtune-config-writer check)"
            )


def _check(
    experiments: list[Path], whole_repository: bool, fix: bool, max_runs: int | None
) -> CheckResult:
    result = CheckResult()
    plans = []
    for path in experiments:
        try:
            plan = plan_experiment(read_inputs(path, max_runs=max_runs))
            listed = None
            if plan.experiment.output_base_dir is None:  # what --fix would write, checked now
                folder = plan.experiment.folder / CONFIGS_DIR
                listed = read_folder_files(folder)  # each file read once, for both checks
                check_generated_folder(folder, launching=plan.launchers, listed=listed)
        except ConfigWriterError as error:
            result.errors.append(error)
            continue
        plans.append(plan)
        if listed is not None:  # timestamped output is not committed
            result.drifts.append(find_drift(plan, listed))
    # Checking the whole repository, every experiment of it is in `plans` already.
    others = (
        [] if whole_repository else read_other_experiments([p.experiment for p in plans], max_runs)
    )
    collisions = find_collisions(plans, planned(others))
    result.errors.extend(collision.error() for collision in collisions)
    if fix and not result.errors:
        drifted = [drift for drift in result.drifts if drift.drifted]
        for drift in drifted:
            result.fixed.append(write_generated_folder(drift.folder, render_files(drift.plan)))
    return result
