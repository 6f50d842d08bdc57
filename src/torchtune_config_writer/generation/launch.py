"""Launching the runs: the ``tune run`` command of each, and a SLURM job array for all of them.

Commands run from the experiment's folder (the one holding ``experiment.yaml``), in the repository
and in a timestamped output folder alike, so they hold no absolute path.
"""

from __future__ import annotations

import shlex

from ..experiment.launch import Slurm
from ..workspace.layout import CONFIGS_DIR, SLURM_SCRIPT, run_file


def tune_run(recipe: str, config: str, nproc_per_node: int | None) -> str:
    """``tune run [--nproc_per_node N] RECIPE --config CONFIG``."""
    torchrun = f"--nproc_per_node {nproc_per_node} " if nproc_per_node is not None else ""
    return f"tune run {torchrun}{recipe} --config {config}"


def run_config(run_id: str) -> str:
    """A run's config file as a command gives it, from the experiment's folder."""
    return f"{CONFIGS_DIR}/{run_file(run_id)}"


def render_slurm_script(
    slurm: Slurm,
    *,
    header: str,
    job_name: str,
    run_count: int,
    run_id_width: int,
    command: str,
    mapping: tuple[str, str],
) -> bytes:
    """A job array script whose task N runs ``command`` for run N.

    Args:
        slurm: The ``launch.slurm`` settings.
        header: The generated-file comment lines.
        job_name: The default ``--job-name`` (the experiment's name).
        run_count: How many runs, so array tasks ``0`` to ``run_count - 1``.
        run_id_width: The digits of a run id (``run_007`` has 3).
        command: The ``tune run`` command with ``"$config"`` for the run's config file.
        mapping: ``run_mapping.yaml`` from the experiment's folder, and its line naming the
            experiment, by which the script knows it runs in the right folder.
    """
    limit = f"%{slurm.max_parallel}" if slurm.max_parallel is not None else ""
    named = any(option.startswith("--job-name=") for option in slurm.sbatch)
    options = [
        *([] if named else [f"--job-name={shlex.quote(job_name)}"]),
        f"--array=0-{run_count - 1}{limit}",
        *slurm.sbatch,
    ]
    script = "#!/bin/bash\n" + header
    script += (
        f"# {job_name}: array task N trains run N ({run_count} runs). From the folder of the "
        "experiment file:\n"
        f"#   sbatch {CONFIGS_DIR}/{SLURM_SCRIPT}\n"
    )
    script += "".join(f"#SBATCH {option}\n" for option in options)
    submit = f"cd to the folder of the experiment file and run sbatch {CONFIGS_DIR}/{SLURM_SCRIPT}"
    mapping_file, experiment_line = mapping
    script += (
        "set -eo pipefail\n"
        "if [[ -z ${SLURM_ARRAY_TASK_ID-} ]]; then\n"
        f'  echo "error: this is a job array and SLURM_ARRAY_TASK_ID is not set: {submit}" >&2\n'
        "  exit 2\n"
        "fi\n"
        f"if ! grep -qxF {shlex.quote(experiment_line)} {mapping_file} 2>/dev/null; then\n"
        f'  echo "error: $PWD is not the folder of the experiment {job_name}: {submit}" >&2\n'
        "  exit 2\n"
        "fi\n"
        f"printf -v config '{CONFIGS_DIR}/run_%0{run_id_width}d.yaml' \"$SLURM_ARRAY_TASK_ID\"\n"
        "if [[ ! -f $config ]]; then\n"
        f'  echo "error: array task $SLURM_ARRAY_TASK_ID has no run: {job_name} has runs 0 to '
        f'{run_count - 1}" >&2\n'
        "  exit 2\n"
        "fi\n"
    )
    script += "".join(f"{line}\n" for line in slurm.setup)
    script += f"exec {command}\n"
    return script.encode("utf-8")
