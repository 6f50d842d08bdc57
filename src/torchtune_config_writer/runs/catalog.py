"""The runs of an experiment and where each writes: read from the same plan that ``generate``
writes from, so that ``status`` and ``results`` look where the runs' configs send them.

A relative folder of a config is relative to where its command runs: the folder of the
experiment file (``run_mapping.yaml`` says so), which is what it is resolved against here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..generation.eval_configs import evaluation_config, final_checkpoint
from ..generation.inputs import newest_generation, read_inputs
from ..generation.output_dirs import OUTPUT_DIR, folder_in
from ..generation.plan import Plan, plan_experiment
from ..generation.run_ids import run_number as number_of_id
from ..workspace.layout import CONFIGS_DIR, eval_file, run_file


@dataclass(frozen=True)
class RunRecord:
    """One run of the sweep, as its config has it.

    Attributes:
        id: Its id (``run_003``).
        params: Its variables' values, as ``run_mapping.yaml`` gives them.
        config: Its merged config (what ``configs/run_003.yaml`` holds).
        config_file: That file.
        output_dir: Its ``output_dir``, or ``None`` without one.
        final_checkpoint: Where torchtune saves its last epoch, or ``None`` when unknown.
        log_dir: ``metric_logger.log_dir`` (DiskLogger's text logs, TensorBoard's events, W&B's
            offline folder), or ``None``.
        log_file: DiskLogger's ``filename`` where the config names one (else it writes
            ``log_<time>.txt``).
        eval_dir: The ``output_dir`` of its evaluation config, with an evaluation.
    """

    id: str
    params: dict[str, Any]
    config: dict[str, Any]
    config_file: Path
    output_dir: Path | None
    final_checkpoint: Path | None
    log_dir: Path | None
    eval_dir: Path | None = None
    log_file: str | None = None


@dataclass(frozen=True)
class Catalog:
    """An experiment's plan and its runs, in run id order."""

    plan: Plan
    runs: tuple[RunRecord, ...]


def read_catalog(path: Path | str, *, max_runs: int | None = None) -> Catalog:
    """The runs of the experiment at ``path`` (its file or folder); ``max_runs`` as
    ``generate --max-runs``.

    Raises:
        ConfigWriterError: the experiment cannot be read or planned (as ``generate`` says).
    """
    plan = plan_experiment(read_inputs(path, max_runs=max_runs))
    experiment = plan.experiment
    folder = experiment.folder
    generation = None
    configs = folder / CONFIGS_DIR
    if experiment.output_base_dir is not None:  # timestamped: the newest generation's runs
        newest = newest_generation(experiment)
        if newest is not None:
            configs, generation = newest, newest.parent.name

    def where(text: str | None) -> Path | None:
        return None if text is None else folder / Path(text).expanduser()

    runs = []
    for run in plan.runs(generation):
        config = run.config
        eval_dir = None
        # Without an output_dir the evaluation's would be "./": the whole study, not this run's.
        if experiment.evaluation is not None and folder_in(config, OUTPUT_DIR) is not None:
            eval_dir = where(
                folder_in(evaluation_config(config, experiment.evaluation), OUTPUT_DIR)
            )
        runs.append(
            RunRecord(
                id=run.id,
                params=dict(run.params),
                config=config,
                config_file=configs / run_file(run.id),
                output_dir=where(folder_in(config, OUTPUT_DIR)),
                final_checkpoint=where(final_checkpoint(config)),
                log_dir=where(folder_in(config, "metric_logger.log_dir")),
                eval_dir=eval_dir,
                log_file=_disk_log_file(config),
            )
        )
    return Catalog(plan, tuple(runs))


def _disk_log_file(config: dict[str, Any]) -> str | None:
    """DiskLogger's ``filename``, where the run's config names one."""
    logger = config.get("metric_logger")
    name = logger.get("filename") if isinstance(logger, dict) else None
    return name if isinstance(name, str) and name else None


def run_number(run_id: str) -> int:
    """``run_012`` → 12: task N of the job array trains run N. A plan's ids are all run ids."""
    number = number_of_id(run_id)
    assert number is not None, f"{run_id} is no run id"
    return number


def eval_config_file(record: RunRecord) -> Path:
    """The evaluation config of ``record``'s run, beside its config."""
    return record.config_file.parent / eval_file(record.id)
