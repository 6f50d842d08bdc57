"""The ``tune run`` command of a run, as ``run_mapping.yaml`` lists it and a launcher starts it.

Commands run from the experiment's folder (the one holding ``experiment.yaml``), in the repository
and in a timestamped output folder alike, so they hold no absolute path.
"""

from __future__ import annotations

from ..workspace.layout import CONFIGS_DIR, run_file

# The recipe that evaluates a run's checkpoint (its config: generation/eval_configs.py).
EVAL_RECIPE = "eleuther_eval"
# What torchtune's own multi-node SLURM example passes: every node of the job meets the first.
RENDEZVOUS = '--rdzv_id "$SLURM_JOB_ID" --rdzv_backend c10d --rdzv_endpoint "$head_node_ip:29500" '


def tune_run(
    recipe: str,
    config: str,
    nproc_per_node: int | None,
    nnodes: int | None = None,
    *,
    rendezvous: bool = False,
) -> str:
    """``tune run [--nnodes N] [--nproc_per_node N] [--rdzv_* …] RECIPE --config CONFIG``.

    Args:
        rendezvous: Add the rendezvous arguments of a multi-node SLURM job (``$SLURM_JOB_ID``,
            ``$head_node_ip``), when ``nnodes`` is more than one.
    """
    multinode = nnodes is not None and nnodes > 1
    torchrun = f"--nnodes {nnodes} " if multinode else ""
    torchrun += f"--nproc_per_node {nproc_per_node} " if nproc_per_node is not None else ""
    torchrun += RENDEZVOUS if multinode and rendezvous else ""
    return f"tune run {torchrun}{recipe} --config {config}"


def run_config(run_id: str) -> str:
    """A run's config file as a command gives it, from the experiment's folder."""
    return f"{CONFIGS_DIR}/{run_file(run_id)}"
