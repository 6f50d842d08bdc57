"""The core's first step: an experiment's inputs, read, placed and checked into a :class:`Plan`.

The pipeline is one way: :func:`~.inputs.read_inputs` reads, :func:`plan_experiment` checks
(reading nothing), :func:`~.render.render_files` makes the bytes; ``generate`` writes them and
``check`` compares them with disk, so the two cannot disagree. Every error in the experiment or
its base is found here, before the first byte is rendered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from ..errors import ConfigWriterError, ErrorList
from ..experiment.design import Rule
from ..experiment.load import Experiment
from ..interpolation_bound import ResolvingBound, Unbounded, resolving_problem
from ..keypaths import KeyPath, dotted
from ..launchers import BACKENDS, LaunchBackend
from ..workspace.layout import (
    CONFIGS_DIR,
    LOCK_FILE,
)
from ..yaml_write import dump_inline
from . import builtin_configs
from .base import Base
from .eval_configs import (
    EvaluationProblem,
    evaluation_config,
    recipe_problem,
)
from .inputs import RECIPE_KEY, Inputs
from .merge import DELETE, LIST_OF_MAPPINGS_KEYS, MergeConflict, merge_at
from .output_dirs import (
    OutputLayout,
    location_problem,
    plan_outputs,
    shared_locations,
)
from .placement import (
    Placement,
    Section,
    check_interpolations,
    check_placeholders,
    lookup,
    place_parameters,
    resolve_parameter,
)
from .readings import surprising_readings
from .run_ids import parse_recorded_ids
from .sweep import Run, Sweep, holds_run_id
from .templates import RUN_ID, needs_filling, placeholders, strings


@dataclass(frozen=True)
class Plan:
    """An experiment checked against its base, ready to render.

    Attributes:
        experiment: The experiment file.
        base: Its resolved base config.
        controlled: The base with the controls merged in.
        placements: Every control and variable, resolved and type-checked, controls first.
        sweep: The variables crossed over ``controlled``.
        outputs: Where each run writes, and which output keys are split per run.
        recipe: The torchtune recipe that trains the configs, or ``None`` when the experiment
            does not say (a custom base without ``framework_config.recipe``).
        warnings: Values kept as given that read otherwise than one might expect, each
            ``FILE:LINE:COLUMN: message`` (``generate`` prints them).
        recipe_source: The bytes of a recipe file of the user's (a timestamped folder holds a
            copy, since its commands run it).
    """

    experiment: Experiment
    base: Base
    controlled: dict[str, Any]
    placements: tuple[Placement, ...]
    sweep: Sweep
    outputs: OutputLayout
    recipe: str | None = None
    warnings: tuple[str, ...] = ()
    recipe_source: bytes | None = None

    @property
    def variables(self) -> tuple[Placement, ...]:
        """The variables, in the order written."""
        return tuple(p for p in self.placements if p.section is Section.VARIABLES)

    @property
    def run_count(self) -> int:
        """The number of runs."""
        return self.experiment.run_count

    @property
    def launchers(self) -> tuple[LaunchBackend, ...]:
        """The launch back ends the experiment launches with (``launch.slurm``), which write
        their files into the generated folder."""
        sections = self.experiment.launch.backends
        return tuple(backend for key, backend in BACKENDS.items() if key in sections)

    def runs(self, generation: str | None = None) -> Iterator[Run]:
        """Every run of the sweep, in run id order, each with its complete merged config.

        Args:
            generation: The folder name of a timestamped generation, put into its output
                folders; ``None`` for the in-repository folder.
        """
        tag = None if generation is None else (generation, self.outputs.roots())
        return self.sweep.runs(self.outputs.split, tag)

    def written_at(self, keypath: KeyPath, run_id: str | None = None) -> KeyPath | None:
        """Where in the experiment file the value at config ``keypath`` was set, if it was.

        Args:
            keypath: A key path of a run's config.
            run_id: Which run, to find a variable's value; ``None`` matches controls only.
        """
        return written_at(self.placements, self.sweep, keypath, run_id)


def written_at(
    placements: tuple[Placement, ...], sweep: Sweep, keypath: KeyPath, run_id: str | None = None
) -> KeyPath | None:
    """:meth:`Plan.written_at`, before the plan is made."""
    setters = [p for p in placements if keypath[: len(p.path)] == p.path]
    if not setters:
        return None
    placement = max(setters, key=lambda p: len(p.path))
    where: KeyPath = placement.parameter.keypath
    index = 0
    if placement.section is Section.VARIABLES:
        found = None if run_id is None else sweep.value_index(run_id, placement)
        if found is None:
            return None
        index = found
        where = (*where, index)
    inner = keypath[len(placement.path) :]
    # A mapping value merges: the key may come from the base, not from the experiment.
    value = placement.parameter.values[index]
    for part in inner:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return (*where, *inner)


def plan_experiment(inputs: Inputs) -> Plan:
    """Place every parameter of an experiment over its base and check every value, reading
    nothing: what is read is in ``inputs`` (:func:`~.inputs.read_inputs`).

    Raises:
        ConfigWriterError: anything wrong with the experiment or its base.
    """
    experiment, base = inputs.experiment, inputs.base
    # Each control, variable and value is checked on its own, every mistake kept, so that
    # independent ones are reported together; nothing is rendered while any is left.
    found = ErrorList()
    placements = place_parameters(experiment, base.config, found)
    controlled: dict[str, Any] = base.config
    for placement in placements:
        for at, value in placement.written():
            merge = partial(_merge_checked, experiment, controlled, placement, value, at)
            merged = found.attempt(merge, None)
            if placement.section is Section.CONTROLS and merged is not None:
                controlled = merged
    # A condition's keys are named as in the runs: the base with the controls in.
    conditional = _place_conditions(experiment, controlled, placements, found)
    setting = tuple(p for _, sets in conditional for p in sets)
    for placement in setting:  # a condition's value over the controlled base, as a control's
        value = placement.parameter.values[0]
        at = placement.parameter.keypath
        found.attempt(partial(_merge_checked, experiment, controlled, placement, value, at), None)
    check_placeholders(experiment, (*placements, *setting), found)
    _check_base_placeholders(experiment, base, found)
    check_interpolations(experiment, (*placements, *setting), found)
    recipe = found.attempt(partial(_training_recipe, inputs), None)
    _check_dataset_lists(experiment, placements, recipe, found)
    found.raise_found()
    variables = tuple(p for p in placements if p.section is Section.VARIABLES)
    templated = tuple(
        p
        for p in placements
        if p.section is Section.CONTROLS and needs_filling(p.parameter.values[0])
    )
    # The in-repository folder keeps its run ids; a timestamped generation is a new folder,
    # whose runs write to folders of their own, and numbers afresh.
    recorded = None
    if inputs.recorded_mapping is not None:
        run_id_filled = holds_run_id(variables)
        recorded = parse_recorded_ids(inputs.recorded_mapping, inputs.mapping_path, run_id_filled)
    sweep = Sweep(
        controlled, variables, templated, recorded, experiment.design.combinations, conditional
    )
    _check_resolving(experiment, base, placements, sweep)  # before anything follows a ${...}
    outputs = plan_outputs(sweep.output_keys(), sweep.output_runs(), experiment.folder)
    warnings = surprising_readings(experiment, (*placements, *setting), base.config)
    warnings += _machine_paths(experiment, inputs.repository)
    source = None if inputs.recipe_file is None else inputs.recipe_file.source
    plan = Plan(
        experiment, base, controlled, placements, sweep, outputs, recipe, tuple(warnings), source
    )
    _check_locations(plan)
    for _, first, second in shared_locations([(experiment.folder, outputs)]):
        raise _shared_location_error(plan, first, second)
    if experiment.evaluation is not None:
        not_evaluable = recipe_problem(recipe)
        if not_evaluable is not None:
            raise experiment.error(not_evaluable, ("evaluation",))
        for run in plan.runs():  # every run's evaluation config can be written, or why not
            try:
                evaluation_config(run.config, experiment.evaluation)
            except EvaluationProblem as problem:
                raise experiment.error(f"{run.id}: {problem}", ("evaluation",)) from None
    return plan


def _place_conditions(
    experiment: Experiment,
    base: dict[str, Any],
    placements: tuple[Placement, ...],
    found: ErrorList,
) -> tuple[tuple[Rule, tuple[Placement, ...]], ...]:
    """Each condition's rule and its keys, resolved as controls are; a key a variable sets is
    refused (the variable would decide it in some runs and the condition in others)."""
    varied = {p.path for p in placements if p.section is Section.VARIABLES}
    conditional = []
    for condition in experiment.design.conditions:
        sets = []
        for parameter in condition.sets:
            path = found.attempt(partial(resolve_parameter, experiment, parameter, base), None)
            if path is None:
                continue
            if any(path[: len(v)] == v or v[: len(path)] == path for v in varied):
                found.add(
                    experiment.error(
                        f"'{parameter.name}' is set by a variable: a condition sets other keys",
                        parameter.keypath,
                    )
                )
                continue
            sets.append(Placement(parameter, path, Section.CONDITIONS))
        conditional.append((condition.when, tuple(sets)))
    return tuple(conditional)


def _check_resolving(
    experiment: Experiment, base: Base, placements: tuple[Placement, ...], sweep: Sweep
) -> None:
    """Every run's interpolations resolve at a bounded cost: one that would take hours (a chain
    of values each using the one before twice), loop, or chain deeper than OmegaConf can follow
    is refused where its value was written.

    Raises:
        ConfigWriterError: for the first run that does not, at the experiment's line that set
            the value, else at the base config's (named with the run's id when the base with the
            controls is within the bound, so that the run's variables make it so).
    """
    bound = ResolvingBound(sweep.controlled)  # the runs share its mappings
    # A variable is merged in where its values hold interpolations or the interpolations read
    # its key (top-level); the others (model.lora_rank, seed) change nothing here.
    varied = {placement.path[0] for placement in sweep.variables}
    wanted = {
        placement.path[0]
        for placement in sweep.variables
        if any("${" in text for value in placement.parameter.values for _, text in strings(value))
    }
    checking = True
    while checking:
        checking = False
        checked = None
        for run_id, config in sweep.runs_under(wanted):
            if config is checked:
                continue  # runs that differ in nothing merged in
            checked = config
            problem = bound.problem(config)
            more = (bound.keys_read & varied) - wanted
            if more:  # they read a key a variable sets: every run again, with it merged in
                wanted |= more
                checking = True
                break
            if problem is not None:
                raise _resolving_error(experiment, base, placements, sweep, run_id, problem)


def _resolving_error(
    experiment: Experiment,
    base: Base,
    placements: tuple[Placement, ...],
    sweep: Sweep,
    run_id: str,
    problem: Unbounded,
) -> ConfigWriterError:
    message = problem.message
    if resolving_problem(sweep.controlled) is None:  # the run's own values make it so
        message = f"{run_id}: {message}"
    where = written_at(placements, sweep, problem.keypath, run_id)
    if where is None:  # a value of the base config's
        return base.document.error(message, problem.keypath)
    return experiment.error(message, where)


def _machine_paths(experiment: Experiment, root: Path | None) -> list[str]:
    """A base or recipe file read from outside the repository works on this machine only: the
    pre-commit hook and the Action, elsewhere, cannot find it."""
    found = []
    for written, keypath in (
        (experiment.base_config_file, ("framework_config", "base_config_file")),
        (experiment.recipe if experiment.recipe and experiment.recipe.endswith(".py") else None,
         ("framework_config", "recipe")),
    ):  # fmt: skip
        if written is None:
            continue
        path = experiment.resolve_path(written, keypath)
        inside = root is not None and os.path.abspath(path).startswith(os.path.abspath(root) + "/")
        if written.startswith("~") or (root is not None and not inside):
            where = experiment.error("", keypath).location()
            found.append(
                f"{where}: {keypath[-1]} {written} is read from outside the repository: "
                "generating works on this machine, but the pre-commit hook and the Action, on "
                "other machines, cannot find it (exit 2 there); keep it in the repository, "
                "relative to the experiment's folder"
            )
    return found


def _check_base_placeholders(experiment: Experiment, base: Base, found: ErrorList) -> None:
    """A ``{run_id}`` or ``{variable}`` in the base config is not filled (only the experiment
    file's strings are): each one is an error at its line of the base."""
    names = {RUN_ID, *(p.name.lstrip("+") for p in experiment.variables)}
    for keypath, name in placeholders(base.config):
        if name in names:
            found.add(
                base.document.error(
                    f"{{{name}}} in the base config is not filled in: only the experiment file's "
                    f"strings are; set {dotted(keypath)} in the experiment's controls, where "
                    f"{{{name}}} is each run's",
                    keypath,
                )
            )


def _check_locations(plan: Plan) -> None:
    """Every output folder is one torchtune writes where it says, and one every launch back end
    can use (the SLURM script resolves it as OmegaConf will on the machine that trains).

    Raises:
        ConfigWriterError: the first that is not, at the experiment line that set it.
    """
    seen: set[tuple[str, str]] = set()
    launchers = plan.launchers
    for run_id, located in plan.outputs.locations():
        for key, location in located.items():
            if (key, location) in seen:
                continue
            seen.add((key, location))
            problem = location_problem(location)
            for backend in launchers:
                problem = problem or backend.location_problem(location)
            if problem is not None:
                where = plan.written_at(parts(key), run_id) or ()
                raise plan.experiment.error(f"{key} {location} {problem}", where)


def _shared_location_error(
    plan: Plan, first: tuple[Path, str, str], second: tuple[Path, str, str]
) -> ConfigWriterError:
    """Two runs of one experiment that write one folder under different keys (no split helps)."""
    (_, run_a, key_a), (_, run_b, key_b) = first, second
    located = dict(plan.outputs.locations())
    where = plan.written_at(parts(key_b), run_b) or plan.written_at(parts(key_a), run_a)
    return plan.experiment.error(
        f"runs {run_a} and {run_b} both write to {located[run_b][key_b]} ({key_a} of {run_a}, "
        f"{key_b} of {run_b}): torchtune would mix their checkpoints; give each run its own "
        "folder (e.g. through {run_id})",
        where or (),
    )


def parts(key: str) -> KeyPath:
    """A dotted config key as a key path: ``dataset.0.source`` → ``("dataset", 0, "source")``."""
    return tuple(int(part) if part.isdigit() else part for part in key.split("."))


def _training_recipe(inputs: Inputs) -> str | None:
    """``framework_config.recipe``, else the one torchtune's registry gives a recipe config."""
    experiment, base = inputs.experiment, inputs.base
    recipe = experiment.recipe
    if inputs.recipe_file is not None and inputs.recipe_file.problem is not None:
        raise experiment.error(inputs.recipe_file.problem, RECIPE_KEY)
    if recipe is None and base.builtin_config is not None:
        recipe = base.runs_with
        if recipe is None:
            raise experiment.error(
                f"{CONFIGS_DIR}/{LOCK_FILE} does not record the recipe that runs "
                f"'{base.builtin_config}' "
                "(it was written by torchtune-config-writer 0.1), and reading it needs torchtune: "
                "run `torchtune-config-writer generate` where torchtune is installed and commit "
                "the lock, or name it with framework_config.recipe",
                ("framework_config", "base_config"),
            )
    nnodes = experiment.launch.nnodes
    if recipe is not None and nnodes is not None and nnodes > 1 and recipe in inputs.single_device:
        raise experiment.error(
            f"launch.nnodes writes `tune run --nnodes {nnodes} … {recipe}`, which fails at once: "
            f"{recipe} does not support distributed training (torchtune's recipe registry); "
            "remove nnodes, or train with a distributed recipe (the *_multinode configs use "
            "full_finetune_distributed)",
            ("launch", "nnodes"),
        )
    nproc = experiment.launch.nproc_per_node
    if recipe is not None and nproc is not None and recipe in inputs.single_device:
        raise experiment.error(
            f"launch.nproc_per_node writes `tune run --nproc_per_node {nproc} {recipe}`, which "
            f"fails at once: {recipe} does not support distributed training (torchtune's recipe "
            "registry); remove nproc_per_node, or train with a *_distributed recipe",
            ("launch", "nproc_per_node"),
        )
    if recipe is None and experiment.launch.slurm is not None:
        raise experiment.error(
            "launch.slurm runs `tune run RECIPE`, but a base_config_file does not say which "
            "recipe: add framework_config.recipe (e.g. lora_finetune_single_device)",
            ("launch", "slurm"),
        )
    return recipe


def _check_dataset_lists(
    experiment: Experiment,
    placements: tuple[Placement, ...],
    recipe: str | None,
    found: ErrorList,
) -> None:
    """A list under ``dataset`` only for a recipe that concatenates one (a recipe file of the
    user's is taken at its word)."""
    if recipe is None or recipe.endswith(".py") or recipe in builtin_configs.DATASET_LIST_RECIPES:
        return
    for placement in placements:
        if placement.path not in LIST_OF_MAPPINGS_KEYS:  # dataset.data_files: [...] is no list
            continue  # of datasets
        for at, value in placement.written():
            if isinstance(value, list):
                found.add(
                    experiment.error(
                        f"{recipe} builds one dataset from dataset: a list of datasets needs a "
                        "recipe that concatenates them (lora_finetune_single_device, "
                        "full_finetune_single_device, their distributed twins, …)",
                        at,
                    )
                )


def _merge_checked(
    experiment: Experiment, config: dict[str, Any], placement: Placement, value: Any, at: KeyPath
) -> dict[str, Any]:
    if placement.parameter.name.startswith("~"):
        value = DELETE
    try:
        merged: dict[str, Any] = merge_at(config, placement.path, value)
    except MergeConflict as conflict:
        # A conflict inside a mapping value points at its inner key in the experiment file.
        keypath = (*at, *conflict.path[len(placement.path) :])
        message = str(conflict)
        values = placement.parameter.values
        # lora_attn_modules: [q_proj, v_proj] as a variable is two runs of one string each.
        flat_list = (
            placement.section is Section.VARIABLES
            and conflict.path == placement.path
            and not any(isinstance(one, (list, dict)) for one in values)
            and isinstance(lookup(config, placement.path), list)
        )
        if flat_list:
            shown = dump_inline(list(values))
            message += (
                f"; as a variable, {shown} is {len(values)} runs of one value each: to sweep "
                f"lists, write a list of lists ([{shown}, …]), or put one list under controls"
            )
        raise experiment.error(message, keypath) from None
    return merged
