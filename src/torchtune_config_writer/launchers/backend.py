"""What a launch back end is: its section under ``launch:``, and the files it writes from a plan."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..experiment.launch import Launch
    from ..generation.plan import Plan
    from ..yaml_read import Document


@dataclass(frozen=True)
class RunFolders:
    """Where one run writes, as a launcher needs it.

    Attributes:
        output_dir: The run's ``output_dir`` (its task's log goes there), or ``None``.
        final_checkpoint: The folder of its last epoch's checkpoint
            (``checkpointer.output_dir/epoch_{epochs - 1}``, where torchtune saves it), or
            ``None`` when the config does not say: such a run is always trained.
    """

    output_dir: str | None
    final_checkpoint: str | None


@dataclass(frozen=True)
class RenderedRuns:
    """What a back end gets from ``render_files`` once every run is rendered: the runs are
    streamed once, so it keeps only this of each.

    Attributes:
        header: The comment lines that start every generated file.
        run_mapping: ``run_mapping.yaml`` as a path from the experiment's folder, where the
            commands run.
        runs: Each run's folders, in run id order.
        evaluations: Each run's evaluation (``output_dir`` of its evaluation config, the final
            checkpoint it reads), in run id order; empty when the experiment does not evaluate.
    """

    header: str
    run_mapping: str
    runs: tuple[RunFolders, ...]
    evaluations: tuple[RunFolders, ...] = ()


class LaunchBackend(Protocol):
    """A way to launch an experiment's runs (a scheduler), given by its key under ``launch:``.

    Attributes:
        section: Its key under ``launch:`` (``slurm``); an experiment that gives it launches with
            this back end.
        file_names: The names of the files it writes in ``configs/``. A file of such a name that
            carries the tool's header is the tool's (replaced, compared, removed when stale); one
            without is the user's, kept while the experiment does not launch with this back end.
    """

    section: str
    file_names: re.Pattern[str]

    def read_section(self, doc: Document, value: Any) -> object:
        """Its section as written (not ``None``), checked.

        Raises:
            ConfigWriterError: each mistake at its line (several at once with ``all_of``).
        """
        ...

    def check_section(self, doc: Document, launch: Launch) -> None:
        """What its section must agree on with the rest of ``launch:``, checked once every key
        of it reads.

        Raises:
            ConfigWriterError: at the line that disagrees.
        """
        ...

    def location_problem(self, location: str) -> str | None:
        """Why an output folder of a run cannot be one its files use, or ``None``: the rest of
        the message ``KEY LOCATION …`` at the experiment line that set the folder."""
        ...

    def files(self, plan: Plan, rendered: RenderedRuns) -> Iterator[tuple[str, bytes]]:
        """The files it writes for ``plan``, as (name in ``configs/``, bytes)."""
        ...
