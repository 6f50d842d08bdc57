"""How the oracle's corpus (``cases.py``) is judged: by the real `tune run`, then by our tools.

:func:`judge_corpus` writes one experiment folder per case, generates it with our Python API,
trains every config it produced (or, where ``generate`` refuses or the case says ``raw``, the base
with the values put in by OmegaConf, as a user without this tool would have it) for two steps
with the real ``tune run``, validates every config in one call (and the configs whose mistake is
in a file only ``--preflight`` reads for real in another, with it) and returns, case by case,
what each of them said.
"""

from __future__ import annotations

import concurrent.futures
import json
import shlex
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from torchtune_config_writer.validation.findings import ConfigResult, Finding

from .assets import Assets
from .cases import CORPUS, TRAINS, Case, case_named

__all__ = ["CORPUS", "TRAINS", "Case", "case_named"]
from .runner import TuneCase, TuneOutcome, TuneReport, run_tune_report

RAW_CONFIG = "raw.yaml"

# --- writing a case's experiment ------------------------------------------------------------


def _section(name: str, text: str) -> str:
    body = textwrap.dedent(text).strip()
    return f"{name}:\n{textwrap.indent(body, '  ')}\n" if body else ""


def experiment_text(case: Case, output_dir: Path) -> str:
    """The case's ``experiment.yaml``: its own base file, its recipe, its own ``output_dir``."""
    controls = f"output_dir: {json.dumps(str(output_dir))}\n{textwrap.dedent(case.controls)}"
    return (
        f"experiment:\n  name: {case.name}\n  framework: torchtune\n"
        f"framework_config:\n  base_config_file: base.yaml\n  recipe: {case.recipe}\n"
        + _section("variables", case.variables)
        + _section("controls", controls)
        + _section("launch", case.launch)
    )


def base_text(case: Case, assets: Assets) -> str:
    """The tiny base, with the case's edit of its top-level keys (through OmegaConf)."""
    text = assets.bases[case.base].read_text("utf-8")
    if not case.base_edit:
        return text
    from omegaconf import DictConfig, OmegaConf

    config = OmegaConf.create(text)
    assert isinstance(config, DictConfig)
    for key, value in OmegaConf.create(textwrap.dedent(case.base_edit)).items():
        config[str(key)] = value
    return str(OmegaConf.to_yaml(config))


def write_case(case: Case, root: Path, assets: Assets) -> Path:
    """Write the case's folder under ``root`` (``experiment.yaml``, ``base.yaml``); the folder."""
    folder = root / case.name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "base.yaml").write_text(base_text(case, assets), "utf-8")
    (folder / "experiment.yaml").write_text(experiment_text(case, folder / "out"), "utf-8")
    for name, text in case.files.items():
        (folder / name).write_text(text, "utf-8")
    return folder


def write_raw_config(case: Case, folder: Path) -> Path:
    """The base with the controls put in by OmegaConf, as by hand, without our tool.

    Dotted names and ``+new_key`` work as in an experiment; aliases (``learning_rate``) do not.
    """
    from omegaconf import OmegaConf

    if case.variables.strip():
        raise ValueError(f"{case.name}: a raw config has no variables")
    config = OmegaConf.load(folder / "base.yaml")
    controls = OmegaConf.create(textwrap.dedent(case.controls) or "{}")
    OmegaConf.update(config, "output_dir", str(folder / "out"))
    for key, value in controls.items():
        OmegaConf.update(config, str(key).lstrip("+"), value, merge=True, force_add=True)
    path = folder / RAW_CONFIG
    OmegaConf.save(config, path)
    return path


def launch_args(case: Case) -> list[str]:
    """The ``tune run`` options the case's ``launch`` section gives (``--nproc_per_node``)."""
    launch = yaml.safe_load(textwrap.dedent(case.launch)) or {}
    nproc = launch.get("nproc_per_node")
    return [] if nproc is None else ["--nproc_per_node", str(nproc)]


# --- generating, running and validating -----------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A config ``tune run`` trains and ``validate`` checks.

    Attributes:
        run: The runner's case (its name is ``case`` or ``case/run_id``).
        config: The config file.
    """

    run: TuneCase
    config: Path

    @property
    def run_id(self) -> str:
        """``run_000`` for a generated config, ``raw`` for the raw one."""
        return self.run.name.partition("/")[2] or "raw"


@dataclass
class Prepared:
    """A case written and generated: what ``generate`` said and which configs to judge.

    Attributes:
        case: The case.
        folder: Its experiment's folder.
        refusal: ``generate``'s error (``ConfigWriterError``), or ``None`` when it generated.
        targets: The generated configs with their ``run_mapping.yaml`` commands, or the raw one.
        generate_seconds: How long ``generate`` took.
    """

    case: Case
    folder: Path
    refusal: str | None
    targets: list[Target]
    generate_seconds: float


def prepare_case(case: Case, root: Path, assets: Assets) -> Prepared:
    """Write the case, generate it with our Python API, and choose what ``tune run`` gets."""
    from torchtune_config_writer import ConfigWriterError, generate

    folder = write_case(case, root, assets)
    start = time.perf_counter()
    try:
        generate(folder)
        refusal = None
    except ConfigWriterError as error:
        refusal = str(error)
    seconds = time.perf_counter() - start
    if refusal is None and not case.raw:
        targets = generated_targets(case, folder)
    else:
        raw = write_raw_config(case, folder)
        args = (*launch_args(case), case.recipe, "--config", RAW_CONFIG)
        targets = [Target(TuneCase(case.name, args, str(folder)), raw)]
    return Prepared(case, folder, refusal, targets, seconds)


def generated_targets(case: Case, folder: Path) -> list[Target]:
    """Each run of ``run_mapping.yaml``: its config and exactly the arguments of its command."""
    mapping = yaml.safe_load((folder / "configs" / "run_mapping.yaml").read_text("utf-8"))
    targets = []
    for run in mapping["runs"]:
        words = shlex.split(run["command"])
        if words[:2] != ["tune", "run"]:
            raise ValueError(f"{case.name}: not a tune run command: {run['command']}")
        config = folder / words[words.index("--config") + 1]
        run_case = TuneCase(f"{case.name}/{run['id']}", tuple(words[2:]), str(folder))
        targets.append(Target(run_case, config))
    return targets


@dataclass
class Judged:
    """Everything said about one case.

    Attributes:
        case: The case.
        folder: Its experiment's folder.
        refusal: ``generate``'s error, or ``None``.
        targets: The configs ``tune run`` got.
        outcomes: What ``tune run`` did with each, in the same order.
        results: ``validate``'s result for each (``ConfigResult``), in the same order.
    """

    case: Case
    folder: Path
    refusal: str | None
    targets: list[Target]
    outcomes: list[TuneOutcome]
    results: list[ConfigResult]

    @property
    def trained(self) -> bool:
        """Whether ``tune run`` trained every config."""
        return all(outcome.trained for outcome in self.outcomes)

    @property
    def failed(self) -> bool:
        """Whether ``tune run`` refused every config (a case fails as a whole)."""
        return not any(outcome.trained for outcome in self.outcomes)

    @property
    def errors(self) -> list[Finding]:
        """``validate``'s error findings, across the configs."""
        return [f for result in self.results for f in result.findings if f.severity == "error"]

    @property
    def flagged(self) -> list[str]:
        """The key paths of the error findings, each once."""
        return list(dict.fromkeys(finding.keypath for finding in self.errors))

    @property
    def refused_for_it(self) -> bool:
        """Whether ``generate`` refused the experiment, naming the expected key."""
        if self.refusal is None:
            return False
        return any(key.rsplit(".", 1)[-1] in self.refusal for key in self.case.keys)

    @property
    def flagged_it(self) -> bool:
        """Whether ``validate`` has an error finding at an expected key path in every config."""
        keys = set(self.case.keys)
        return bool(self.results) and all(
            any(f.severity == "error" and f.keypath in keys for f in result.findings)
            for result in self.results
        )

    @property
    def tune_run_as_expected(self) -> bool:
        """Whether the corpus's expectation is what ``tune run`` did."""
        return self.trained if self.case.trains else self.failed

    @property
    def agrees(self) -> bool:
        """Whether our tools' verdict is ``tune run``'s.

        A config that trains must be generated and get no error; one that fails must be
        refused by ``generate`` for that key or get an error at that key.
        """
        if self.trained:
            return self.refusal is None and not self.errors
        if self.failed:
            return self.refused_for_it or self.flagged_it
        return False


@dataclass
class OracleRun:
    """The whole corpus judged, with timings.

    Attributes:
        judged: By case name, in corpus order.
        extra: Outcomes of the additional runner cases, by name.
        tune: The runner's report (its import time and wall time).
        generate_seconds: All ``generate`` calls, writing the folders included.
        validate_seconds: The one ``validate`` call, importing torch and torchtune included.
        wall_seconds: Everything, from writing the first folder to the last verdict.
    """

    judged: dict[str, Judged] = field(default_factory=dict)
    extra: dict[str, TuneOutcome] = field(default_factory=dict)
    tune: TuneReport = field(default_factory=TuneReport)
    generate_seconds: float = 0.0
    validate_seconds: float = 0.0
    wall_seconds: float = 0.0


def judge_corpus(
    cases: Sequence[Case],
    root: Path,
    assets: Assets,
    *,
    extra: Sequence[TuneCase] = (),
) -> OracleRun:
    """Write, generate, train and validate every case; what each tool said about each.

    ``tune run`` (a subprocess) and ``validate`` (this process) run at the same time: each
    starts by importing torch, and this machine has two cores.
    """
    start = time.perf_counter()
    prepared = [prepare_case(case, root, assets) for case in cases]
    generated = time.perf_counter() - start
    targets = [target for item in prepared for target in item.targets]
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(
            run_tune_report, [t.run for t in targets] + list(extra), root / "tune"
        )
        validate_start = time.perf_counter()
        plain = [t.config for item in prepared if not item.case.preflight for t in item.targets]
        results = _validate(plain)
        preflight = [t.config for item in prepared if item.case.preflight for t in item.targets]
        results.update(_validate(preflight, preflight=True))
        validated = time.perf_counter() - validate_start
        report = running.result()
    judged = {
        item.case.name: Judged(
            item.case,
            item.folder,
            item.refusal,
            item.targets,
            [report.outcomes[t.run.name] for t in item.targets],
            [results[t.config] for t in item.targets],
        )
        for item in prepared
    }
    extras = {case.name: report.outcomes[case.name] for case in extra}
    wall = time.perf_counter() - start
    return OracleRun(judged, extras, report, generated, validated, wall)


def _validate(configs: list[Path], *, preflight: bool = False) -> dict[Path, ConfigResult]:
    """``validate``'s result for each config, from one call."""
    from torchtune_config_writer.validation.validating import validate

    if not configs:
        return {}
    result = validate(configs, preflight=preflight)
    return {config_result.config: config_result for config_result in result.configs}


def checkpoints(config: Path) -> list[Path]:
    """The files of ``<checkpointer.output_dir>/epoch_0`` (what torchtune 0.6 saves after an
    epoch), as the config's interpolations resolve it."""
    from omegaconf import OmegaConf

    output_dir = OmegaConf.select(OmegaConf.load(config), "checkpointer.output_dir")
    epoch = Path(str(output_dir)) / "epoch_0"
    return sorted(path for path in epoch.iterdir() if path.is_file()) if epoch.is_dir() else []
