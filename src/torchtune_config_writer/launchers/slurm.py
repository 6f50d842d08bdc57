"""The SLURM back end (``launch.slurm``): a job array whose task N trains run N, and with
``evaluation:`` a second whose task N evaluates it, once training task N succeeded.

Each task logs to ``slurm_<job>_<task>.log`` in its run's ``output_dir``, outside the committed
folder, unless the sbatch options say where output goes (what stops a task before its log starts
is in ``slurm-<job>_<task>.out`` where it was submitted); a run whose final checkpoint is saved
already is not trained again, so submitting the same script again trains only what did not
finish, and one stopped part-way resumes after its last whole epoch. Near its time limit a
training task stops and requeues itself (``--signal``), when it saved an epoch. The scripts are
the sections of ``slurm_array.sh.template``, filled in.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..experiment.launch import Launch, Slurm, evaluation_options, nodes_agree, read_slurm
from ..workspace.layout import CONFIGS_DIR, eval_file, run_file
from ..yaml_read import Document
from ..yaml_write import dump_yaml
from .arrays import array_option, array_parts, contiguous, described, no_run_test, offset_option
from .backend import RenderedRuns, RunFolders
from .commands import EVAL_RECIPE, tune_run
from .shell import UnresolvableFolder, shell_path

if TYPE_CHECKING:
    from ..generation.plan import Plan

SLURM_SCRIPT = "slurm_array.sh"
SLURM_EVAL_SCRIPT = "slurm_eval_array.sh"
TEMPLATE = "slurm_array.sh.template"

# How long before its time limit Slurm signals a training task to stop and requeue itself: time
# to stop torchrun and call scontrol (Slurm sends it up to a minute early or late).
REQUEUE_SECONDS = 120
REQUEUE_SIGNAL = f"B:USR1@{REQUEUE_SECONDS}"
# sbatch options that say where the output goes: given, the user's choice stands.
_OUTPUT_OPTIONS = ("--output", "-o", "--error", "-e")


class SlurmBackend:
    """``launch.slurm``: ``slurm_array.sh``, and ``slurm_eval_array.sh`` for an experiment that
    evaluates (see :class:`~.backend.LaunchBackend`)."""

    section = "slurm"
    file_names = re.compile(r"slurm(_eval)?_array\.sh")

    def read_section(self, doc: Document, value: Any) -> Slurm:
        return read_slurm(doc, value)

    def check_section(self, doc: Document, launch: Launch) -> None:
        if launch.slurm is not None:
            nodes_agree(doc, launch.slurm, launch.nnodes)

    def location_problem(self, location: str) -> str | None:
        try:
            shell_path(location)
        except UnresolvableFolder:
            return (
                "holds an interpolation the SLURM script cannot resolve as OmegaConf would on "
                "the machine that trains (it reads this folder for the run's log and its final "
                "checkpoint): give a folder, or ${oc.env:VAR}"
            )
        return None

    def files(self, plan: Plan, rendered: RenderedRuns) -> Iterator[tuple[str, bytes]]:
        slurm = plan.experiment.launch.slurm
        if slurm is None or plan.recipe is None:  # the recipe runs in every task
            return
        yield SLURM_SCRIPT, _training_script(plan, plan.recipe, slurm, rendered)
        if plan.experiment.evaluation is not None:
            yield SLURM_EVAL_SCRIPT, _evaluation_script(plan, slurm, rendered)


SLURM = SlurmBackend()


def _training_script(plan: Plan, recipe: str, slurm: Slurm, rendered: RenderedRuns) -> bytes:
    """``slurm_array.sh``: task N trains run N. More than one node per run gets ``--nodes``, one
    task per node, and the command started on every node with ``srun``, as torchtune's
    multi-node example; its comment says how to submit it with the evaluation array, if any.

    A run stopped part-way resumes after its last whole epoch; near its time limit a task stops
    and requeues itself, unless the sbatch options say ``no-requeue``."""
    launch = plan.experiment.launch
    nnodes = launch.nnodes
    multinode = nnodes is not None and nnodes > 1
    command = tune_run(recipe, '"$config"', launch.nproc_per_node, nnodes, rendezvous=True)
    launched = f"srun {command}" if multinode else command
    names = {option.split("=", 1)[0] for option in slurm.sbatch}
    # --no-requeue says this job is not to be requeued: then no signal is asked for or trapped.
    requeueing = "--no-requeue" not in names
    signal = [] if "--signal" in names or not requeueing else [f"--signal={REQUEUE_SIGNAL}"]
    return _array_script(
        "training",
        plan,
        slurm,
        rendered,
        script=SLURM_SCRIPT,
        config_file=run_file,
        job_name=plan.experiment.name,
        sbatch=slurm.sbatch,
        options=[*(_node_options(nnodes, slurm.sbatch) if multinode else []), *signal],
        runs=rendered.runs,
        paired=plan.experiment.evaluation is not None,
        resume=_fill("resume"),
        requeue=_fill("requeue", seconds=str(REQUEUE_SECONDS)) if requeueing else "",
        find_nodes=_fill("find_nodes") if multinode else "",
        start=_fill("start_requeueing" if requeueing else "start", launch=launched),
    )


def _evaluation_script(plan: Plan, slurm: Slurm, rendered: RenderedRuns) -> bytes:
    """``slurm_eval_array.sh``: task N evaluates run N's final checkpoint, submitted with
    ``--dependency=aftercorr:`` on the training array so that it starts once training task N
    succeeded."""
    return _array_script(
        "evaluation",
        plan,
        slurm,
        rendered,
        script=SLURM_EVAL_SCRIPT,
        config_file=eval_file,
        job_name=f"{plan.experiment.name}-eval",
        sbatch=evaluation_options(slurm),
        # A training task that failed never lets its evaluation start: cancel it, not wait.
        options=["--kill-on-invalid-dep=yes"],
        runs=rendered.evaluations,
        paired=True,
        command=tune_run(EVAL_RECIPE, '"$config"', None),
    )


def _array_script(
    section: str,
    plan: Plan,
    slurm: Slurm,
    rendered: RenderedRuns,
    *,
    script: str,
    config_file: Callable[[str], str],
    job_name: str,
    sbatch: tuple[str, ...],
    options: list[str],
    runs: tuple[RunFolders, ...],
    paired: bool,
    **values: str,
) -> bytes:
    """A job array script whose task N runs run N (plus an offset, for studies larger than one
    array may be), its array holding exactly the runs' ids.

    Args:
        section: The template's section of this array.
        script: Its file name.
        config_file: The name of the config a task runs, from its run id.
        job_name: The default ``--job-name``.
        sbatch: The user's options for it.
        options: The options it adds after ``--array`` and ``--output``.
        runs: Each run's folders, in run id order.
        paired: The training and the evaluation array of one experiment: the comment says how
            to submit both.
        values: The section's own placeholders.
    """
    ids = plan.sweep.ids
    numbers = sorted(ids.numbers)
    parts = array_parts(numbers, slurm.max_array_size)
    named = any(option.startswith("--job-name=") for option in sbatch)
    chosen_output = any(option.split("=", 1)[0] in _OUTPUT_OPTIONS for option in sbatch)
    logs = not chosen_output and all(run.output_dir is not None for run in runs)
    written = [
        *([] if named else [f"--job-name={shlex.quote(job_name)}"]),
        array_option(*parts[0], slurm.max_parallel),
        *(["--output=/dev/null"] if logs else []),  # each task logs in its run's folder
        *options,
        *sbatch,
    ]
    experiment_line = dump_yaml({"experiment": plan.experiment.name}).rstrip("\n")
    # printf's pattern of a task's config from its run number: configs/run_%03d.yaml.
    config_files = f"{CONFIGS_DIR}/{config_file(f'run_%0{ids.width}d')}"
    logging = ""
    if logs:
        logging = _fill("logging", output_dirs=_rows(numbers, [run.output_dir for run in runs]))
    find_run = _fill(
        "find_run",
        script=f"{CONFIGS_DIR}/{script}",
        no_run=no_run_test(numbers),
        job_name=job_name,
        runs=described(numbers),
        experiment_line=shlex.quote(experiment_line),
        run_mapping=rendered.run_mapping,
        config_files=config_files,
        final_checkpoints=_rows(numbers, [run.final_checkpoint for run in runs]),
        early_output=_fill("early_output") if logs else "",
        logging=logging,
    )
    text = _fill(
        section,
        header=rendered.header,
        job_name=job_name,
        run_count=str(len(runs)),
        submitting=_submitting(parts, slurm, script, paired),
        logs_note=_fill("logs_note") if logs else "",
        sbatch="".join(f"#SBATCH {option}\n" for option in written),
        find_run=find_run,
        setup="".join(f"{line}\n" for line in slurm.setup),
        **values,
    )
    return text.encode("utf-8")


def _submitting(parts: list[tuple[int, list[int]]], slurm: Slurm, script: str, paired: bool) -> str:
    """The comment lines that say how to submit the array: each part of it where the runs need
    more than one, and with the evaluation array after the training array."""
    training, evaluation = f"{CONFIGS_DIR}/{SLURM_SCRIPT}", f"{CONFIGS_DIR}/{SLURM_EVAL_SCRIPT}"
    size = slurm.max_array_size
    arrays = [
        " ".join([array_option(start, members, slurm.max_parallel), *offset_option(start)])
        for start, members in parts
    ]
    if paired and len(parts) == 1:
        return _fill("submit_with_evaluation", training=training, evaluation=evaluation)
    if paired:
        each = "".join(
            _fill("submit_part_with_evaluation", array=a, training=training, evaluation=evaluation)
            for a in arrays
        )
        return _fill("submit_parts_with_evaluation", size=str(size), parts=each)
    if len(parts) == 1:
        return _fill("submit", script=f"{CONFIGS_DIR}/{script}")
    each = "".join(_fill("submit_part", array=a, script=f"{CONFIGS_DIR}/{script}") for a in arrays)
    return _fill("submit_parts", size=str(size), count=str(len(parts)), parts=each)


def _node_options(nnodes: int | None, given: tuple[str, ...]) -> list[str]:
    """``--nodes`` and one task per node (each starts torchrun), unless the user's own say."""
    names = {option.split("=", 1)[0] for option in given}
    options = [] if names & {"--nodes", "-N"} else [f"--nodes={nnodes}"]
    return options + ([] if "--ntasks-per-node" in names else ["--ntasks-per-node=1"])


def _rows(numbers: list[int], values: list[str | None]) -> str:
    """The rows of a bash array of one shell word per run (an empty one where there is none),
    indexed by run number."""
    if contiguous(numbers):
        return "".join(f"  {shell_path(value or '')}\n" for value in values)
    return "".join(
        f"  [{number}]={shell_path(value or '')}\n"
        for number, value in zip(numbers, values, strict=True)
    )


# A line that starts a section of the template, and a placeholder: alone on its line (filled
# with whole lines, or none), or within one.
_SECTION = re.compile(r"^#@ (\w+)\n", re.MULTILINE)
_PLACEHOLDER = re.compile(r"^@\{(\w+)\}\n|@\{(\w+)\}", re.MULTILINE)


@cache
def template_sections() -> dict[str, str]:
    """The sections of the template shipped in the package, by name."""
    package = resources.files("torchtune_config_writer.launchers")
    _, *parts = _SECTION.split(package.joinpath(TEMPLATE).read_text(encoding="utf-8"))
    # The file's own comment, then each section's name and its lines.
    names, sections = parts[::2], parts[1::2]
    return {name: lines.rstrip("\n") + "\n" for name, lines in zip(names, sections, strict=True)}


def _fill(section: str, **values: str) -> str:
    """A section of the template with its placeholders filled in."""
    text = template_sections()[section]
    return _PLACEHOLDER.sub(lambda match: values[match[1] or match[2]], text)
