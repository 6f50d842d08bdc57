"""The ``launch`` section and ``framework_config.recipe``: how the runs are started, as written.

A key of ``launch:`` other than ``nproc_per_node`` and ``nnodes`` is a launch back end's section
(``launchers/``); the SLURM back end's, ``slurm``, is read here.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import ErrorList
from ..yaml_read import Document, a_type_name
from .sections import reject_unknown_keys

if TYPE_CHECKING:
    from ..launchers.backend import LaunchBackend

# The launch section's own keys; each launch back end's key follows them.
_LAUNCH_KEYS = ("nproc_per_node", "nnodes")
_SLURM_KEYS = ("sbatch", "evaluation_sbatch", "max_parallel", "max_array_size", "setup")
# Slurm's own default MaxArraySize: array indices run from 0 to 1000.
DEFAULT_MAX_ARRAY_SIZE = 1001
# A torchtune recipe name (lora_finetune_single_device, and the registry's dev/generate_v2) or a
# recipe file (recipes/my_recipe.py): both go into a shell command unquoted.
RECIPE_NAME = re.compile(r"[A-Za-z0-9_]+(?:/[A-Za-z0-9_]+)*")
RECIPE = re.compile(rf"{RECIPE_NAME.pattern}|[A-Za-z0-9_.][A-Za-z0-9_./-]*\.py")
_SBATCH_OPTION = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


@dataclass(frozen=True)
class Slurm:
    """``launch.slurm``: write a job array script, array task N running run N.

    Attributes:
        sbatch: ``#SBATCH`` options in the order written (``--name=value``, or ``--name`` alone).
        max_parallel: How many array tasks may run at once, or ``None`` for no limit.
        setup: Shell lines run before ``tune run`` (``module load``, activating an environment).
        max_array_size: The cluster's ``MaxArraySize``: a larger study is split into arrays of
            at most this many tasks, each run given by its task and an offset.
        evaluation_sbatch: The evaluation array's own options, or ``None`` for the training
            array's without what sizes a training run (see :func:`evaluation_options`).
    """

    sbatch: tuple[str, ...] = ()
    max_parallel: int | None = None
    setup: tuple[str, ...] = ()
    max_array_size: int = DEFAULT_MAX_ARRAY_SIZE
    evaluation_sbatch: tuple[str, ...] | None = None


# What sizes one training run: an evaluation runs on one device, so its array does not copy them.
_RUN_SIZE = frozenset(
    {
        "--nodes", "-N", "--ntasks", "-n", "--ntasks-per-node", "--gpus", "-G",
        "--gpus-per-node", "--gpus-per-task", "--gres", "--cpus-per-task", "-c",
        "--cpus-per-gpu", "--mem", "--mem-per-cpu", "--mem-per-gpu", "--time", "-t",
        "--exclusive",
    }
)  # fmt: skip


def evaluation_options(slurm: Slurm) -> tuple[str, ...]:
    """The evaluation array's sbatch options: its own where given, else the training array's
    without what sizes a training run, and one GPU where training asked for GPUs."""
    if slurm.evaluation_sbatch is not None:
        return slurm.evaluation_sbatch
    names = [option.split("=", 1)[0] for option in slurm.sbatch]
    kept = tuple(o for o, name in zip(slurm.sbatch, names, strict=True) if name not in _RUN_SIZE)
    gpus = any(name.startswith("--gpus") or name in ("-G", "--gres") for name in names)
    return (*kept, "--gpus=1") if gpus else kept


@dataclass(frozen=True)
class Launch:
    """The ``launch`` section.

    Attributes:
        nproc_per_node: Processes per run (``tune run --nproc_per_node N``), or ``None``.
        nnodes: Nodes per run (``tune run --nnodes N``, launched with ``srun`` on each node of
            the SLURM job), or ``None`` for one.
        backends: The section of each launch back end the experiment launches with, as its back
            end read it, by its key (``slurm``).
    """

    nproc_per_node: int | None = None
    nnodes: int | None = None
    backends: Mapping[str, object] = field(default_factory=dict)

    @property
    def slurm(self) -> Slurm | None:
        """The job array to write (``launch.slurm``), or ``None``."""
        section = self.backends.get("slurm")
        return section if isinstance(section, Slurm) else None


def launch_keys() -> tuple[str, ...]:
    """The keys ``launch:`` may hold: its own, then each launch back end's."""
    return (*_LAUNCH_KEYS, *_backends())


def _backends() -> dict[str, LaunchBackend]:
    # The back ends render from a plan, which reads experiments: looked up when a section is
    # read, not imported with this module.
    from ..launchers import BACKENDS

    return BACKENDS


def read_launch(doc: Document, section: dict[str, Any]) -> Launch:
    """The checked ``launch`` section (empty when the experiment has none).

    Raises:
        ConfigWriterError: unknown keys, or a value of the wrong kind, at its line.
    """
    backends = _backends()
    found = ErrorList()  # each key on its own, every mistake kept
    keys = (*_LAUNCH_KEYS, *backends)
    found.attempt(partial(reject_unknown_keys, doc, section, keys, ("launch",), "key"), 0)
    nproc = found.attempt(partial(_positive_int, doc, section, ("launch", "nproc_per_node")), None)
    nnodes = found.attempt(partial(_positive_int, doc, section, ("launch", "nnodes")), None)
    if nnodes is not None and nnodes > 1 and nproc is None and "nproc_per_node" not in section:
        found.add(
            doc.error(
                f"launch.nnodes: {nnodes} runs each run on {nnodes} nodes: give "
                "launch.nproc_per_node too (the processes, usually GPUs, on each node)",
                ("launch", "nnodes"),
            )
        )
    read: dict[str, object] = {}
    for key, backend in backends.items():
        value = section.get(key)
        if value is not None:  # `slurm: ~` is no slurm
            read[key] = found.attempt(partial(backend.read_section, doc, value), None)
    found.raise_found()
    launch = Launch(nproc, nnodes, read)
    for key in read:
        found.attempt(partial(backends[key].check_section, doc, launch), None)
    found.raise_found()
    return launch


def nodes_agree(doc: Document, slurm: Slurm, nnodes: int | None) -> None:
    """sbatch's nodes and launch.nnodes say one number: Slurm gives the job its nodes, and
    torchrun waits for ``--nnodes`` of them.

    Raises:
        ConfigWriterError: at the sbatch option that asks for another number.
    """
    for option in slurm.sbatch:
        name, _, value = option.partition("=")
        if name not in ("--nodes", "-N"):
            continue
        asked = nnodes or 1
        if value.strip("'\"") != str(asked):
            at = ("launch", "slurm", "sbatch", next(k for k in _sbatch_keys(doc) if k))
            raise doc.error(
                f"sbatch nodes {value} asks Slurm for that many nodes, but each run starts "
                f"torchrun on {asked} (launch.nnodes: {nnodes if nnodes else 'not set, so 1'}): "
                "give launch.nnodes the number and drop sbatch nodes (it is written for you)",
                at,
            )


def _sbatch_keys(doc: Document) -> list[str]:
    """The sbatch mapping's keys that name --nodes, as written."""
    section = doc.data.get("launch", {}).get("slurm", {}).get("sbatch", {})
    return [str(key) for key in section if str(key).replace("_", "-") in ("nodes", "N")]


def read_slurm(doc: Document, slurm: Any) -> Slurm:
    """The checked ``launch.slurm`` section.

    Raises:
        ConfigWriterError: unknown keys, or a value of the wrong kind, at its line.
    """
    keypath = ("launch", "slurm")
    if not isinstance(slurm, dict):
        raise doc.error(
            f"launch.slurm must be a mapping (sbatch:, max_parallel:, setup:), found "
            f"{a_type_name(slurm)}; write slurm: {{}} for the defaults",
            keypath,
        )
    found = ErrorList()
    found.attempt(partial(reject_unknown_keys, doc, slurm, _SLURM_KEYS, keypath, "key"), 0)
    sbatch = found.attempt(partial(_sbatch_options, doc, slurm.get("sbatch")), ())
    evaluation = found.attempt(
        partial(_sbatch_options, doc, slurm.get("evaluation_sbatch"), "evaluation_sbatch"), None
    )
    parallel = found.attempt(partial(_positive_int, doc, slurm, (*keypath, "max_parallel")), None)
    setup = found.attempt(partial(_setup_lines, doc, slurm.get("setup")), ())
    size = found.attempt(partial(_positive_int, doc, slurm, (*keypath, "max_array_size")), None)
    found.raise_found()
    if "evaluation_sbatch" not in slurm:
        evaluation = None
    return Slurm(sbatch, parallel, setup, size or DEFAULT_MAX_ARRAY_SIZE, evaluation)


def _positive_int(doc: Document, mapping: dict[str, Any], keypath: tuple[str, ...]) -> int | None:
    value = mapping.get(keypath[-1])
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise doc.error(f"{'.'.join(keypath)} must be a whole number of at least 1", keypath)
    return value


def _sbatch_options(doc: Document, options: Any, name: str = "sbatch") -> tuple[str, ...]:
    keypath = ("launch", "slurm", name)
    if options is None:
        return ()
    if not isinstance(options, dict):
        raise doc.error(
            f"launch.slurm.{name} must be a mapping of sbatch options, e.g. "
            '{partition: gpu, time: "04:00:00", gpus: 1}',
            keypath,
        )
    lines = []
    for name, value in options.items():
        at = (*keypath, name)
        option = str(name).replace("_", "-")
        if not _SBATCH_OPTION.fullmatch(str(name)):
            raise doc.error(f"'{name}' is not an sbatch option name, e.g. partition", at)
        if len(option) > 1 and "array".startswith(option.lower()):
            # sbatch takes any unambiguous start of a long option: --arr is --array.
            abbreviated = f" (sbatch reads --{option} as --array)" if option != "array" else ""
            raise doc.error(
                f"the array is written for you, one task per run: remove {name}{abbreviated} "
                "(launch.slurm.max_parallel limits how many run at once)",
                at,
            )
        if value is True:
            lines.append(f"--{option}")
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            text = str(value)
            if not text or any(char in text for char in "\n\r\\"):
                raise doc.error(f"sbatch option {name} needs a one-line value without '\\'", at)
            lines.append(f"--{option}={shlex.quote(text)}")
        else:
            raise doc.error(
                f"sbatch option {name} must be text or a number, or true for a flag", at
            )
    return tuple(lines)


def _setup_lines(doc: Document, setup: Any) -> tuple[str, ...]:
    keypath = ("launch", "slurm", "setup")
    if setup is None:
        return ()
    if not isinstance(setup, list) or not all(isinstance(line, str) for line in setup):
        raise doc.error(
            'launch.slurm.setup must be a list of shell lines, e.g. ["module load cuda"]', keypath
        )
    for index, line in enumerate(setup):
        if "\n" in line or "\r" in line:
            raise doc.error(
                "each setup line is one line: give several as a list", (*keypath, index)
            )
    return tuple(setup)
