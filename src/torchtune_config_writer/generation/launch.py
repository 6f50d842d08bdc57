"""Launching the runs: the ``tune run`` command of each, and a SLURM job array for all of them.

Commands run from the experiment's folder (the one holding ``experiment.yaml``), in the repository
and in a timestamped output folder alike, so they hold no absolute path.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from ..experiment.launch import Slurm
from ..workspace.layout import CONFIGS_DIR, SLURM_EVAL_SCRIPT, SLURM_SCRIPT, run_file
from .run_ids import RunIds

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


@dataclass(frozen=True)
class RunFolders:
    """Where one run writes, as its SLURM task needs it.

    Attributes:
        output_dir: The run's ``output_dir`` (its task's log goes there), or ``None``.
        final_checkpoint: The folder of its last epoch's checkpoint
            (``checkpointer.output_dir/epoch_{epochs - 1}``, where torchtune saves it), or
            ``None`` when the config does not say: such a run is always trained.
    """

    output_dir: str | None
    final_checkpoint: str | None


# sbatch options that say where the output goes: given, the user's choice stands.
_OUTPUT_OPTIONS = ("--output", "-o", "--error", "-e")


def render_slurm_script(
    slurm: Slurm,
    *,
    header: str,
    job_name: str,
    runs: list[RunFolders],
    ids: RunIds,
    command: str,
    mapping: tuple[str, str],
    nnodes: int | None = None,
    evaluates: bool = False,
    with_evaluation: bool = False,
) -> bytes:
    """A job array script whose task N runs ``command`` for run N (plus an offset, for studies
    larger than one array may be), its array holding exactly the runs' ids.

    Each task logs to ``slurm_<job>_<task>.log`` in its run's ``output_dir``, outside the
    committed folder, unless the sbatch options say where output goes; a run whose final
    checkpoint is saved already is not trained again, so submitting the same script again
    trains only what did not finish.

    Args:
        slurm: The ``launch.slurm`` settings.
        header: The generated-file comment lines.
        job_name: The default ``--job-name`` (the experiment's name).
        runs: Each run's folders, in run id order.
        ids: The runs' ids.
        command: The ``tune run`` command with ``"$config"`` for the run's config file.
        mapping: ``run_mapping.yaml`` from the experiment's folder, and its line naming the
            experiment, by which the script knows it runs in the right folder.
        nnodes: Nodes per run: more than one gets ``--nodes``, one task per node, and the
            command started on every node with ``srun``, as torchtune's multi-node example.
        evaluates: The evaluation array (``slurm_eval_array.sh``): task N evaluates run N's
            final checkpoint, submitted with ``--dependency=aftercorr:`` on the training array
            so that it starts once training task N succeeded.
        with_evaluation: The training array of an experiment that evaluates: its comment says
            how to submit both.
    """
    script_name = SLURM_EVAL_SCRIPT if evaluates else SLURM_SCRIPT
    run_count = len(runs)
    numbers = sorted(ids.numbers)
    multinode = nnodes is not None and nnodes > 1
    size = slurm.max_array_size
    parts = _array_parts(numbers, size)
    limit = f"%{slurm.max_parallel}" if slurm.max_parallel is not None else ""
    named = any(option.startswith("--job-name=") for option in slurm.sbatch)
    chosen_output = any(option.split("=", 1)[0] in _OUTPUT_OPTIONS for option in slurm.sbatch)
    logs = not chosen_output and all(run.output_dir is not None for run in runs)
    options = [
        *([] if named else [f"--job-name={shlex.quote(job_name)}"]),
        f"--array={_array_spec(*parts[0])}{limit}",
        *(["--output=/dev/null"] if logs else []),  # each task logs in its run's folder
        # A training task that failed never lets its evaluation start: cancel it, not wait.
        *(["--kill-on-invalid-dep=yes"] if evaluates else []),
        *(_node_options(nnodes, slurm.sbatch) if multinode and not evaluates else []),
        *slurm.sbatch,
    ]
    submit_line = f"sbatch {CONFIGS_DIR}/{script_name}"
    chain = (
        f"job=$(sbatch --parsable {CONFIGS_DIR}/{SLURM_SCRIPT}) && "
        f"sbatch --dependency=aftercorr:$job {CONFIGS_DIR}/{SLURM_EVAL_SCRIPT}"
    )
    script = "#!/bin/bash\n" + header
    does = "evaluates run N's final checkpoint" if evaluates else "trains run N"
    script += (
        f"# {job_name}: array task N {does} ({run_count} runs). From the folder of the "
        "experiment file:\n"
    )
    if (evaluates or with_evaluation) and len(parts) == 1:
        script += (
            "# submit the training array and, each evaluation task after its training task "
            f"succeeded, this one:\n#   {chain}\n"
        )
    elif evaluates or with_evaluation:
        script += (
            f"# more runs than one array may hold (launch.slurm.max_array_size: {size}): submit "
            "each part of the training array and its evaluation part:\n"
        )
        for start, members in parts:
            offset = f" --export=ALL,TCW_RUN_OFFSET={start}" if start else ""
            array = f"--array={_array_spec(start, members)}{limit}{offset}"
            script += (
                f"#   job=$(sbatch --parsable {array} {CONFIGS_DIR}/{SLURM_SCRIPT}) && sbatch "
                f"{array} --dependency=aftercorr:$job {CONFIGS_DIR}/{SLURM_EVAL_SCRIPT}\n"
            )
    elif len(parts) == 1:
        script += f"#   {submit_line}\n"
    else:
        script += (
            f"# more runs than one array may hold (launch.slurm.max_array_size: {size}), so "
            f"submit each of the {len(parts)} parts:\n"
        )
        for start, members in parts:
            offset = f" --export=ALL,TCW_RUN_OFFSET={start}" if start else ""
            array = f"--array={_array_spec(start, members)}{limit}{offset}"
            script += f"#   sbatch {array} {CONFIGS_DIR}/{SLURM_SCRIPT}\n"
    if logs:
        script += "# Each task logs to slurm_<job>_<task>.log in its run's output_dir.\n"
    if evaluates:
        script += "# A run without its final checkpoint is not evaluated (exit 2).\n"
    else:
        script += (
            "# A run whose final checkpoint is saved is not trained again: submit the same again "
            "to train\n# the runs that did not finish.\n"
        )
    script += "".join(f"#SBATCH {option}\n" for option in options)
    submit = f"cd to the folder of the experiment file and run {submit_line}"
    mapping_file, experiment_line = mapping
    script += (
        "set -eo pipefail\n"
        "if [[ -z ${SLURM_ARRAY_TASK_ID-} ]]; then\n"
        f'  echo "error: this is a job array and SLURM_ARRAY_TASK_ID is not set: {submit}" >&2\n'
        "  exit 2\n"
        "fi\n"
        "run=$((SLURM_ARRAY_TASK_ID + ${TCW_RUN_OFFSET:-0}))\n"
        f"if {_no_run_test(numbers)}; then\n"
        f'  echo "error: array task $SLURM_ARRAY_TASK_ID has no run: {job_name} has runs '
        f'{_described(numbers)}" >&2\n'
        "  exit 2\n"
        "fi\n"
    )
    script += (
        f"if ! grep -qxF {shlex.quote(experiment_line)} {mapping_file} 2>/dev/null; then\n"
        f'  echo "error: $PWD is not the folder of the experiment {job_name}: {submit}" >&2\n'
        "  exit 2\n"
        "fi\n"
        f"printf -v config '{CONFIGS_DIR}/{'eval_' if evaluates else ''}run_%0{ids.width}d.yaml' "
        '"$run"\n'
        "if [[ ! -f $config ]]; then\n"
        f'  echo "error: $config is missing: regenerate {job_name} (torchtune-config-writer '
        'generate)" >&2\n'
        "  exit 2\n"
        "fi\n"
    )
    script += _table("final_checkpoints", numbers, [run.final_checkpoint for run in runs])
    if logs:
        script += _table("output_dirs", numbers, [run.output_dir for run in runs])
        script += (
            'mkdir -p "${output_dirs[run]}"\n'
            'exec >>"${output_dirs[run]}/slurm_${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.log" '
            "2>&1\n"
        )
    if evaluates:
        script += (
            "final=${final_checkpoints[run]}\n"
            'if [[ -z $final || -z $(ls -A "$final" 2>/dev/null) ]]; then\n'
            '  echo "error: ${config}: its run has no final checkpoint in ${final:-its '
            'checkpointer.output_dir}: train it first" >&2\n'
            "  exit 2\n"
            "fi\n"
        )
    else:
        script += (
            "final=${final_checkpoints[run]}\n"
            'if [[ -n $final && -n $(ls -A "$final" 2>/dev/null) ]]; then\n'
            '  echo "${config}: finished already (its final checkpoint is in $final): not trained '
            'again"\n'
            "  exit 0\n"
            "fi\n"
        )
    script += "".join(f"{line}\n" for line in slurm.setup)
    if multinode and not evaluates:
        script += (
            'nodes=( $(scontrol show hostnames "$SLURM_JOB_NODELIST") )\n'
            'head_node_ip=$(srun --nodes=1 --ntasks=1 -w "${nodes[0]}" hostname --ip-address)\n'
            f"exec srun {command}\n"
        )
    else:
        script += f"exec {command}\n"
    return script.encode("utf-8")


def _node_options(nnodes: int | None, given: tuple[str, ...]) -> list[str]:
    """``--nodes`` and one task per node (each starts torchrun), unless the user's own say."""
    names = {option.split("=", 1)[0] for option in given}
    options = [] if names & {"--nodes", "-N"} else [f"--nodes={nnodes}"]
    return options + ([] if "--ntasks-per-node" in names else ["--ntasks-per-node=1"])


def _array_parts(numbers: list[int], size: int) -> list[tuple[int, list[int]]]:
    """The run numbers in arrays whose task ids stay below ``size`` (SLURM's MaxArraySize),
    each with the offset added to its task id: 0 for the first where it can be."""
    parts: list[tuple[int, list[int]]] = []
    for number in numbers:
        if not parts or number - parts[-1][0] >= size:
            parts.append((0 if number < size else number, []))
        parts[-1][1].append(number)
    return parts


def _ranges(numbers: list[int]) -> list[tuple[int, int]]:
    """Ascending numbers as runs of consecutive ones: [0, 1, 2, 5] → [(0, 2), (5, 5)]."""
    found: list[tuple[int, int]] = []
    for number in numbers:
        if found and number == found[-1][1] + 1:
            found[-1] = (found[-1][0], number)
        else:
            found.append((number, number))
    return found


def _array_spec(offset: int, numbers: list[int]) -> str:
    """``--array``'s task ids for runs ``numbers``: ``0-3``, or ``0-1,4,6-9`` where ids retired."""
    spans = _ranges([number - offset for number in numbers])
    if len(spans) == 1:
        return f"{spans[0][0]}-{spans[0][1]}"
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans)


def _contiguous(numbers: list[int]) -> bool:
    return numbers == list(range(len(numbers)))


def _no_run_test(numbers: list[int]) -> str:
    """The bash test that ``$run`` is no run's number."""
    if _contiguous(numbers):
        return f"(( run >= {len(numbers)} ))"
    spans = " || ".join(
        f"run == {a}" if a == b else f"(run >= {a} && run <= {b})" for a, b in _ranges(numbers)
    )
    return f"! (( {spans} ))"


def _described(numbers: list[int]) -> str:
    """``0 to 3``, or ``0-1, 4, 6-9``."""
    if _contiguous(numbers):
        return f"0 to {len(numbers) - 1}"
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in _ranges(numbers))


def _table(name: str, numbers: list[int], values: list[str | None]) -> str:
    """A bash array of one shell word per run (an empty one where there is none), indexed by
    run number."""
    if _contiguous(numbers):
        items = "".join(f"  {shell_path(value or '')}\n" for value in values)
    else:
        items = "".join(
            f"  [{number}]={shell_path(value or '')}\n"
            for number, value in zip(numbers, values, strict=True)
        )
    return f"{name}=(\n{items})\n"


# ${oc.env:VAR} and ${oc.env:VAR,default}: the only interpolations a folder of the script may
# hold, each a shell expansion of the same variable (the others are filled in before).
_ENV = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)(?:,([A-Za-z0-9_./-]*))?\}")


class UnresolvableFolder(ValueError):
    """A folder whose interpolation the SLURM script cannot resolve as OmegaConf would."""


def shell_path(folder: str) -> str:
    """``folder`` as one shell word that the task resolves as OmegaConf resolves the config on
    the same machine: ``${oc.env:SCRATCH}/x`` is ``"${SCRATCH?…}"'/x'`` (unset: the task fails,
    as torchtune does), ``${oc.env:SCRATCH,/tmp}`` is ``"${SCRATCH-/tmp}"``; the rest quoted.

    Raises:
        UnresolvableFolder: another interpolation (a resolver the script cannot run).
    """
    words, end = [], 0
    for match in _ENV.finditer(folder):
        if match.start() > end:
            words.append(shlex.quote(folder[end : match.start()]))
        variable, default = match[1], match[2]
        if default is None:
            words.append(f'"${{{variable}?is not set, and the config reads it}}"')
        else:
            words.append(f'"${{{variable}-{default}}}"')
        end = match.end()
    rest = folder[end:]
    if "${" in rest:
        raise UnresolvableFolder(rest)
    if rest or not words:
        words.append(shlex.quote(rest))
    return "".join(words)
