"""The one reading step: everything an experiment's files are made from, read from disk, git
and torchtune before anything is planned.

:func:`~.plan.plan_experiment` and :func:`~.render.render_files` turn :class:`Inputs` into
bytes and read nothing themselves, so ``generate``, ``check``, ``show`` and ``validate`` share
one path from the same inputs, and a caller that has the inputs in memory needs no disk.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError
from ..experiment.load import Experiment, load_experiment
from ..reading import read_bounded
from ..workspace.layout import CONFIGS_DIR, LOCK_FILE, RUN_MAPPING, latest_complete_folder
from ..workspace.repository import repository_root, symlink_escape
from . import builtin_configs
from .base import Base, load_base
from .run_ids import read_recorded_mapping

RECIPE_KEY = ("framework_config", "recipe")


@dataclass(frozen=True)
class RecipeFile:
    """What reading ``framework_config.recipe``, a recipe file of the user's, found.

    Attributes:
        problem: Why it cannot be used (said at the experiment's line), or ``None``.
        source: Its bytes (a timestamped folder gets a copy), when it can be used.
    """

    problem: str | None
    source: bytes | None = None


@dataclass(frozen=True)
class Inputs:
    """Everything the files of one experiment are made from, read.

    Attributes:
        experiment: The experiment file, parsed and checked on its own.
        base: Its base config, resolved (recorded lock, torchtune's file, or the user's).
        recorded_mapping: The committed ``run_mapping.yaml`` (whose run ids are kept), or
            ``None``: none, renumbering, or a timestamped generation (which numbers afresh).
        mapping_path: Where ``recorded_mapping`` was read, for messages.
        recipe_file: The recipe file, when ``framework_config.recipe`` names a ``.py``.
        single_device: The recipes ``tune run`` launches on one process only (torchtune's
            registry), read only when the launch section asks for several.
        repository: The git repository around the experiment, when it names files outside
            its folder (they must stay inside for the hook and the Action).
    """

    experiment: Experiment
    base: Base
    recorded_mapping: bytes | None = None
    mapping_path: Path = Path(RUN_MAPPING)
    recipe_file: RecipeFile | None = None
    single_device: frozenset[str] = frozenset()
    repository: Path | None = None


def read_inputs(
    path: Path | str,
    *,
    max_runs: int | None = None,
    refresh_base: bool = False,
    renumber: bool = False,
) -> Inputs:
    """Read an experiment and everything its files are made from.

    Args:
        path: ``experiment.yaml`` or its folder.
        max_runs: The run limit, checked before anything else is read.
        refresh_base: Resolve a recipe from torchtune even when one is recorded.
        renumber: Number the runs in sweep order, not by the ids the committed
            ``run_mapping.yaml`` gives them.

    Raises:
        ConfigWriterError: the experiment, its base or its run mapping cannot be read.
    """
    experiment = load_experiment(Path(path), max_runs=max_runs)
    # configs/, or the staged folder where an interrupted write (no atomic swap) left no configs/;
    # an experiment that writes timestamped folders finds its base in the newest of them.
    configs = latest_complete_folder(experiment.folder / CONFIGS_DIR)
    if experiment.output_base_dir is not None:
        configs = newest_generation(experiment) or configs
    base = load_base(experiment, configs, refresh=refresh_base)
    recorded = None
    if not renumber and experiment.output_base_dir is None:
        recorded = read_recorded_mapping(configs / RUN_MAPPING)
    recipe = experiment.recipe
    launch = experiment.launch
    several = (launch.nnodes is not None and launch.nnodes > 1) or launch.nproc_per_node
    single_device = builtin_configs.single_device_recipes() if several else frozenset()
    outside = experiment.base_config_file is not None or (recipe or "").endswith(".py")
    return Inputs(
        experiment,
        base,
        recorded,
        configs / RUN_MAPPING,
        _read_recipe_file(experiment, recipe) if recipe and recipe.endswith(".py") else None,
        single_device,
        repository_root(experiment.folder) if outside else None,
    )


def _read_recipe_file(experiment: Experiment, recipe: str) -> RecipeFile:
    recipe_file = experiment.resolve_path(recipe, RECIPE_KEY)
    try:
        is_file = recipe_file.is_file()
    except OSError as exc:  # a name too long for the file system, a folder one may not read
        return RecipeFile(f"cannot read framework_config.recipe {recipe}: {exc.strerror or exc}")
    if not is_file:
        return RecipeFile(
            f"framework_config.recipe {recipe} is not a file: give a recipe .py relative to "
            "the experiment's folder (where the commands run), or a torchtune recipe name"
        )
    escape = symlink_escape(recipe_file)  # a timestamped folder gets a copy of it
    if escape is not None:
        return RecipeFile(
            f"framework_config.recipe {recipe} leads out of the repository through a "
            f"symlink (to {escape}): keep the recipe file itself in the experiment's folder"
        )
    try:
        return RecipeFile(None, read_bounded(recipe_file))
    except OSError as exc:
        return RecipeFile(f"cannot read framework_config.recipe {recipe}: {exc.strerror or exc}")


def newest_generation(experiment: Experiment) -> Path | None:
    """The ``configs/`` of the newest timestamped folder that records the experiment's base."""
    base_dir = experiment.resolve_path(experiment.output_base_dir or "", ("output", "base_dir"))
    stamped = re.compile(rf"{re.escape(experiment.output_name)}_(\d{{8}}_\d{{6}})(?:_(\d+))?")
    try:
        names = [entry.name for entry in os.scandir(base_dir) if entry.is_dir()]
    except OSError:
        return None  # none written yet, or not readable: the base is resolved afresh
    found = [(m[1], int(m[2] or 1), name) for name in names if (m := stamped.fullmatch(name))]
    for *_, name in sorted(found, reverse=True):
        if (base_dir / name / CONFIGS_DIR / LOCK_FILE).is_file():
            return base_dir / name / CONFIGS_DIR
    return None


def read_other_experiments(checked: list[Experiment], max_runs: int | None) -> list[Inputs]:
    """The other experiments of the git repositories the checked ones are in, read: what a
    collision is looked for in (two experiments that write one folder).

    Unreadable ones are left out: each is reported when it is checked itself. An experiment
    outside a git repository has no others.
    """
    from ..workspace.affected import repository_experiments  # git: only when needed

    seen = {os.path.realpath(experiment.path) for experiment in checked}
    roots = {root for e in checked if (root := repository_root(e.folder)) is not None}
    others = []
    for root in sorted(roots):
        for path in repository_experiments(root):
            if os.path.realpath(path) in seen:
                continue
            seen.add(os.path.realpath(path))
            try:
                others.append(read_inputs(path, max_runs=max_runs))
            except ConfigWriterError:
                continue
    return others
