"""``validate``: every generated config through torchtune's check and ours, in one process."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigWriterError, require_path
from ..experiment.load import EXPERIMENT_FILE_NAMES
from ..generation.collisions import Collision, find_collisions, planned
from ..generation.inputs import newest_generation, read_inputs, read_other_experiments
from ..generation.plan import Plan, parts, plan_experiment
from ..interpolation_bound import resolving_problem
from ..keypaths import KeyPath, dotted
from ..launchers.commands import EVAL_RECIPE
from ..wording import closest
from ..workspace.affected import (
    experiment_of,
    experiments_in,
    find_affected_experiments,
    repository_experiments,
)
from ..workspace.layout import (
    CONFIGS_DIR,
    RUN_MAPPING,
    eval_files,
    has_tool_header,
    is_eval_file,
    run_files,
)
from ..yaml_read import Document, read_yaml_file
from .deep_check import Problem, deep_check
from .execution.stage import CHECK as EXECUTION_CHECK
from .execution.stage import EXECUTE_EACH, NOT_INSTALLED, Subject, Verdict, run_stage
from .findings import ConfigResult, Finding, Severity, Status, TuneVerdict, ValidationResult
from .preflight import preflight_problems
from .torchtune_runtime import (
    ReusedConfig,
    Runtime,
    load_runtime,
    locate_component,
    require_installed,
    tune_validate,
)

if TYPE_CHECKING:
    from .execution.client import Executor

# Our findings that are why `tune validate` fails or crashes (a wrong type is not one of them).
_EXPLAINS_TUNE_VALIDATE = frozenset({"import", "interpolation", "signature"})


@dataclass(frozen=True)
class Step:
    """What validation is doing, for a progress display.

    Attributes:
        stage: ``importing torch and torchtune``, ``checking`` or ``running recipes``.
        index: The item the stage has come to (from 0), with ``total`` items; a stage that is
            not counted (the import) has ``total`` 0.
        total: How many items the stage has.
        item: The config checked, where the stage goes config by config.
    """

    stage: str
    index: int = 0
    total: int = 0
    item: Path | None = None


Progress = Callable[[Step], None]
IMPORTING, CHECKING, EXECUTING = "importing torch and torchtune", "checking", "running recipes"


@dataclass(frozen=True)
class Target:
    """A config to validate, with the experiment it came from when known.

    Attributes:
        config: The config file.
        plan: Its experiment, checked, for the lines that set values and the recipe.
        recipe: The recipe that runs it, for a config no experiment names (``--recipe``).
    """

    config: Path
    plan: Plan | None = None
    recipe: str | None = None

    @property
    def runs_with(self) -> str | None:
        """What ``tune run`` runs it with: a recipe name, or a ``.py`` relative to ``folder``."""
        if is_eval_file(self.config):
            return EVAL_RECIPE
        return self.plan.recipe if self.plan is not None and self.plan.recipe else self.recipe

    @property
    def folder(self) -> Path:
        """Where ``tune run`` runs: the experiment's folder, else the current one."""
        return self.plan.experiment.folder if self.plan is not None else Path.cwd()

    @property
    def processes(self) -> int:
        """How many processes ``tune run`` starts: the launch section's, else, for a config on
        its own with a distributed recipe, two (as ``--nproc_per_node 2`` would)."""
        if self.plan is not None:
            launch = self.plan.experiment.launch
            return (launch.nproc_per_node or 1) * (launch.nnodes or 1)
        return 2 if self.recipe is not None and "distributed" in self.recipe else 1

    @property
    def base(self) -> Path | None:
        """The experiment's base config file (training configs only)."""
        if self.plan is None or is_eval_file(self.config):
            return None
        return self.plan.base.document.path


def validate(
    paths: Sequence[Path | str] = (),
    *,
    affected: bool = False,
    start: Path | str = ".",
    progress: Progress | None = None,
    preflight: bool = False,
    recipe: str | None = None,
    execute: bool = True,
    execute_each: int = EXECUTE_EACH,
) -> ValidationResult:
    """Validate generated configs: torchtune's ``tune validate`` check, then ours, then the
    recipe itself, executed on this machine at no real cost.

    Args:
        paths: Experiments (files or folders), folders of experiments, or config files. Empty:
            every experiment of the git repository around ``start``.
        affected: Read ``paths`` as changed files and validate the experiments they affect
            (as ``check`` does); files that affect none are ignored.
        start: Where the repository is looked for.
        progress: Called with each :class:`Step`: the import, before each config's checks and
            before each batch of recipe runs.
        preflight: Also check, on the machine that will train, that the files each config reads
            exist and its output locations are writable; executions use the real files only.
        recipe: The recipe that runs configs no experiment generated.
        execute: Run each config's recipe (off: the static checks only).
        execute_each: Past this many distinct configs, configs with values of the same classes
            share one execution.

    Raises:
        ConfigWriterError: a path does not exist or holds nothing generated, or torch and
            torchtune are missing or broken.
    """
    chosen = [Path(p) for p in paths]
    if affected:
        # Experiments with nothing generated in the repository (timestamped output) are skipped:
        # the drift check is the one to say a folder is missing.
        found = find_affected_experiments(chosen, Path(start))
        chosen = [path for path in found if (path.parent / CONFIGS_DIR).is_dir()]
        if not chosen:
            return ValidationResult()  # nothing to validate: no need for torch either
    targets = find_targets(chosen, Path(start), recipe)
    return validate_targets(
        targets, progress, preflight=preflight, execute=execute, execute_each=execute_each
    )


def validate_targets(
    targets: list[Target],
    progress: Progress | None = None,
    *,
    preflight: bool = False,
    execute: bool = True,
    execute_each: int = EXECUTE_EACH,
) -> ValidationResult:
    """Validate the given configs in order (the public ``validate`` finds them first)."""
    from .execution.client import shared_executor

    report = progress or (lambda step: None)
    executor = shared_executor() if execute and targets else None
    require_installed()  # a missing torch is one error line, not a step that never ends
    report(Step(IMPORTING))  # a CI log is not silent for the ten seconds torch takes
    if executor is not None:
        executor.start()  # it imports torch while the static checks run here; it lives on
    runtime = load_runtime()
    result = ValidationResult(versions=dict(runtime.versions))
    plans = list({id(t.plan): t.plan for t in targets if t.plan is not None}.values())
    others = read_other_experiments([plan.experiment for plan in plans], None)
    collisions = find_collisions(plans, planned(others))
    reused = ReusedConfig()  # a sweep's configs in turn differ in a few values
    for index, target in enumerate(targets):
        report(Step(CHECKING, index, len(targets), target.config))
        shared = [collision for collision in collisions if collision.plan is target.plan]
        result.configs.append(
            validate_config(runtime, target, shared, preflight=preflight, reused=reused)
        )
    if executor is not None:
        executed = execute_targets(
            targets,
            result.configs,
            executor,
            preflight=preflight,
            execute_each=execute_each,
            progress=report,
        )
        result.configs[:] = executed
        result.versions.update(executor.versions)
    return result


def execute_targets(
    targets: list[Target],
    results: list[ConfigResult],
    executor: Executor,
    *,
    preflight: bool = False,
    execute_each: int = EXECUTE_EACH,
    progress: Progress | None = None,
) -> list[ConfigResult]:
    """The results with what running each config's recipe found (configs without an error of
    the static checks, whose recipe is known)."""
    chosen: list[int] = []
    subjects: list[Subject] = []
    updated = list(results)
    for index, (target, result) in enumerate(zip(targets, results, strict=True)):
        recipe = target.runs_with
        if result.status is Status.INVALID:
            updated[index] = replace(result, execution="not executed: fix the errors above first")
            continue
        if recipe is None:
            how = "not executed: the recipe is not known (give --recipe NAME)"
            updated[index] = replace(result, execution=how)
            continue
        chosen.append(index)
        # An evaluation config reads the checkpoint its run has yet to write: stood in for.
        real_files = preflight and not is_eval_file(target.config)
        subjects.append(
            Subject(target.config, recipe, target.folder, target.base, target.processes, real_files)
        )
    counted = None
    if progress is not None:
        report = progress

        def counted(done: int, total: int) -> None:
            report(Step(EXECUTING, done, total))

    verdicts = run_stage(subjects, executor, execute_each=execute_each, progress=counted)
    for index, verdict in zip(chosen, verdicts, strict=True):
        updated[index] = _with_execution(targets[index], updated[index], verdict)
    return updated


def _with_execution(target: Target, result: ConfigResult, verdict: Verdict) -> ConfigResult:
    problems = verdict.problems
    if result.status is Status.UNVERIFIED:
        # A package not installed here was said already; running into it again says nothing
        # more. What the run could not check for another reason is still said.
        problems = tuple(p for p in problems if not p[2].startswith(NOT_INSTALLED))
    if not problems:
        return replace(result, execution=verdict.how)
    document = read_yaml_file(target.config)
    experiment = target.plan.experiment.path if target.plan else None
    findings = [
        Finding(
            config=target.config,
            keypath=dotted(keypath),
            line=_line(document, keypath),
            severity=severity,
            check=EXECUTION_CHECK,
            message=message,
            experiment=experiment,
            experiment_line=_experiment_line(target.plan, keypath, target.config.stem),
        )
        for keypath, severity, message in problems
    ]
    return replace(result, findings=(*result.findings, *findings), execution=verdict.how)


def find_targets(paths: list[Path], start: Path, recipe: str | None = None) -> list[Target]:
    """The configs that ``validate`` paths name, each once (``recipe`` runs those that no
    experiment generated).

    Raises:
        ConfigWriterError: a path does not exist, or an experiment has no generated configs.
    """
    targets: dict[Path, Target] = {}
    plans: dict[Path, Plan | None] = {}  # one plan per experiment, however many configs

    def plan_of(experiment: Path | None) -> Plan | None:
        if experiment is None:
            return None
        key = experiment.resolve()
        if key not in plans:
            plans[key] = _plan_or_none(experiment)
        return plans[key]

    experiments = repository_experiments(start) if not paths else []
    for path in paths:
        require_path(path, "does not exist: name an experiment, a folder or a config")
        if path.is_file() and path.name not in EXPERIMENT_FILE_NAMES:  # a config file
            targets.setdefault(path, Target(path, plan_of(experiment_of(path)), recipe))
            continue
        copy = _timestamped_copy(path)
        if copy is not None:  # a timestamped output folder: its configs, with the copy's plan
            generated = copy.parent / CONFIGS_DIR
            for config in [*run_files(generated), *eval_files(generated)]:
                targets.setdefault(config, Target(config, plan_of(copy)))
            continue
        found = experiments_in(path)
        if not found:
            raise ConfigWriterError("holds no experiment.yaml and is not a config", path)
        experiments.extend(found)
    for experiment in experiments:
        configs = run_files(experiment.parent / CONFIGS_DIR)
        plan = plan_of(experiment)
        if not configs and plan is not None and plan.experiment.output_base_dir is not None:
            # It writes timestamped folders: the newest one's configs (where validating a
            # whole repository finds none yet, it says nothing of them).
            newest = newest_generation(plan.experiment)
            if newest is None and paths:
                raise ConfigWriterError(
                    "writes timestamped folders (output.base_dir), and none is there yet: run "
                    "`torchtune-config-writer generate` first, or name a generated folder",
                    experiment,
                )
            for config in run_files(newest) if newest is not None else []:
                targets.setdefault(config, Target(config, plan))
            continue
        if not configs:
            raise ConfigWriterError(
                "has no generated configs: run `torchtune-config-writer generate` first", experiment
            )
        # Each run's evaluation config (eleuther_eval) after the training configs.
        for config in [*configs, *eval_files(experiment.parent / CONFIGS_DIR)]:
            targets.setdefault(config, Target(config, plan))
    return list(targets.values())


def _timestamped_copy(path: Path) -> Path | None:
    """The experiment copy of a timestamped output folder that ``path`` names (the folder, or
    the copy itself): ``run_mapping.yaml`` beside it tells it from an experiment."""
    folder = path if path.is_dir() else path.parent
    for name in EXPERIMENT_FILE_NAMES:
        copy = folder / name
        if copy.is_file() and (folder / RUN_MAPPING).is_file() and path in (folder, copy):
            return copy
    return None


def _plan_or_none(experiment: Path) -> Plan | None:
    # Only for pointing at experiment lines and finding the recipe; a broken experiment is the
    # drift check's to report, and its configs are still worth validating.
    try:
        return plan_experiment(read_inputs(experiment, max_runs=2**63))
    except ConfigWriterError:
        return None


def validate_config(
    runtime: Runtime,
    target: Target,
    collisions: Sequence[Collision] = (),
    *,
    preflight: bool = False,
    reused: ReusedConfig | None = None,
) -> ConfigResult:
    """Stage 1 (torchtune's verdict), then stages 2 and 3 (our checks) of one config.

    Args:
        runtime: The imported torchtune.
        target: The config and its experiment.
        collisions: What its experiment shares with other experiments of the repository.
        preflight: Also check the paths it reads and writes on this machine.
        reused: The ``DictConfig`` of the config before, changed into this one where it can be.
    """
    experiment = target.plan.experiment.path if target.plan else None
    try:
        document = read_yaml_file(target.config)
    except ConfigWriterError as error:
        finding = Finding(
            target.config, "", error.line, Severity.ERROR, "yaml", error.message, experiment
        )
        return ConfigResult(target.config, TuneVerdict.CRASHED, (finding,), experiment)
    if not isinstance(document.data, dict):
        finding = Finding(
            target.config, "", 1, Severity.ERROR, "yaml", "a config must be a mapping", experiment
        )
        return ConfigResult(target.config, TuneVerdict.CRASHED, (finding,), experiment)
    unbounded = resolving_problem(document.data)
    if unbounded is not None:  # resolving it would not end, or end in a RecursionError
        finding = Finding(
            config=target.config,
            keypath=dotted(unbounded.keypath),
            line=_line(document, unbounded.keypath),
            severity=Severity.ERROR,
            check="interpolation",
            message=f"{unbounded.message}; nothing else of this config was checked or run",
            experiment=experiment,
            experiment_line=_experiment_line(target.plan, unbounded.keypath, target.config.stem),
        )
        return ConfigResult(target.config, TuneVerdict.CRASHED, (finding,), experiment)
    # A file the tool wrote is parsed once, for both torchtune's check and ours.
    ours = has_tool_header(document.raw)
    read = document.data if ours else None
    verdict, message, cfg = tune_validate(runtime, target.config, read, reused)
    evaluates = is_eval_file(target.config)
    recipe_file = _recipe_file(target.plan) if not evaluates else _eval_recipe_file()
    problems = _recipe_problems(target.plan, recipe_file) if not evaluates else []
    folder = target.folder
    problems += deep_check(runtime, document.data, recipe_file, cfg if ours else None, folder)
    # An evaluation config reads a checkpoint that exists only once its run trained.
    if preflight and not evaluates:
        # `tune run` runs from the experiment's folder; a config without one is in its configs/.
        folder = target.plan.experiment.folder if target.plan else target.config.parent.parent
        problems += preflight_problems(document.data, folder)
    explained = any(
        p.check in _EXPLAINS_TUNE_VALIDATE and p.severity != Severity.WARNING for p in problems
    )
    if (
        verdict != TuneVerdict.PASSED
        and not explained
        and not _imports_under_tune_run(runtime, message, folder)
    ):
        # torchtune says no and our checks do not say why: its own words are the finding.
        problems.insert(
            0, Problem((), Severity.ERROR, "tune-validate", f"tune validate: {message}")
        )
    for collision in collisions:
        if collision.config_key is None:
            problems.append(Problem((), Severity.ERROR, "experiments", collision.message))
        elif target.config.stem in collision.runs:
            keypath = parts(collision.config_key)
            problems.append(Problem(keypath, Severity.ERROR, "output-location", collision.message))
    run_id = target.config.stem
    findings = tuple(
        Finding(
            config=target.config,
            keypath=dotted(problem.keypath),
            line=_line(document, problem.keypath),
            severity=problem.severity,
            check=problem.check,
            message=problem.message,
            experiment=experiment,
            experiment_line=_experiment_line(target.plan, problem.keypath, run_id),
        )
        for problem in problems
    )
    return ConfigResult(target.config, verdict, findings, experiment)


def _imports_under_tune_run(runtime: Runtime, message: str, folder: Path) -> bool:
    """Whether ``tune validate`` failed only to import a module of the user's own beside the
    experiment, which ``tune run`` imports from there (``tune validate`` does not look there)."""
    loading = re.search(r"Error loading '([^']+)'", message)
    if loading is None:
        return False
    return locate_component(runtime, loading[1], folder)[1] is None


def _line(document: Document, keypath: KeyPath) -> int | None:
    """The line of a key in the config; none for a finding about the whole file."""
    found = document.position(keypath) if keypath else None
    return found[0] if found else None


def _recipe_file(plan: Plan | None) -> Path | None:
    """The script that trains the plan's configs: a ``.py`` beside it, or torchtune's own."""
    if plan is None or plan.recipe is None:
        return None
    if plan.recipe.endswith(".py"):
        return plan.experiment.resolve_path(plan.recipe, ("framework_config", "recipe"))
    from .recipe_keys import recipe_file_named

    return recipe_file_named(plan.recipe)


def _eval_recipe_file() -> Path | None:
    from .recipe_keys import recipe_file_named

    return recipe_file_named(EVAL_RECIPE)


def _recipe_problems(plan: Plan | None, recipe_file: Path | None) -> list[Problem]:
    if plan is None or plan.recipe is None or recipe_file is not None:
        return []
    from ..generation.builtin_configs import require_torchtune

    known = require_torchtune("checking recipes").recipes
    close = closest(plan.recipe, known)
    hint = f"did you mean {close}? " if close is not None else ""
    message = (
        f"`tune run {plan.recipe}` fails: torchtune has no recipe of that name; {hint}"
        "fix framework_config.recipe (see `torchtune-config-writer recipes`)"
    )
    return [Problem((), Severity.ERROR, "recipe", message)]


def _experiment_line(plan: Plan | None, keypath: KeyPath, run_id: str) -> int | None:
    """The line of the experiment file that set the value at ``keypath``, if it set it."""
    if plan is None or not keypath:
        return None
    where = plan.written_at(keypath, run_id)
    found = plan.experiment.document.position(where) if where is not None else None
    return found[0] if found else None
