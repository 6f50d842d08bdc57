"""Experiments of one repository kept apart: no two share a name or write to the same folder.

A copied experiment folder with one value changed still writes ``/scratch/study/run_000``; its
SLURM jobs carry the same name. Each experiment is fine alone, so this is checked across them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError, display_path
from ..keypaths import KeyPath
from .inputs import Inputs
from .output_dirs import location_of
from .plan import Plan, parts, plan_experiment


@dataclass(frozen=True)
class Collision:
    """One experiment that shares a name or an output folder with another.

    Attributes:
        plan: The experiment it is reported in.
        other: The other experiment file.
        message: What is shared and what to do.
        keypath: Where in the experiment file (the name, or the entry that set the folder).
        config_key: The output key in the runs' configs, or ``None`` for a shared name.
        runs: The runs of ``plan`` that write to a shared folder.
    """

    plan: Plan
    other: Path
    message: str
    keypath: KeyPath
    config_key: str | None = None
    runs: tuple[str, ...] = ()

    def error(self) -> ConfigWriterError:
        """The collision as the one error line of ``check``."""
        return self.plan.experiment.error(self.message, self.keypath)


def find_collisions(checked: Sequence[Plan], others: Iterable[Plan] = ()) -> list[Collision]:
    """Every experiment of ``checked`` that shares a name or a folder with another experiment.

    Args:
        checked: The experiments to report on.
        others: The rest of the repository, compared with but not reported on.

    Returns:
        At most one collision of each kind per pair of experiments, reported in the later one
        of ``checked`` (a pair within ``checked`` is reported once).
    """
    # One plan per experiment file, however it was named.
    unique = {os.path.realpath(p.experiment.path): p for p in [*others, *checked]}
    checked = [unique[os.path.realpath(p.experiment.path)] for p in checked]
    if len(unique) < 2:  # a name or a folder is shared by two
        return []
    ids = {id(p) for p in checked}
    plans = [*checked, *(p for p in unique.values() if id(p) not in ids)]
    reported = _paths(checked)
    found: list[Collision] = []
    named: dict[str, Plan] = {}
    for plan in plans:
        first = named.setdefault(plan.experiment.name, plan)
        pair = _reported_in(plan, first, reported)
        if pair is not None:
            here, there = pair
            found.append(
                Collision(
                    here,
                    there.experiment.path,
                    f"experiment.name {plan.experiment.name} is also the name of "
                    f"{display_path(there.experiment.path)}: the name labels SLURM jobs and "
                    "output folders; give each experiment its own name",
                    ("experiment", "name"),
                )
            )
    found.extend(_shared_folders(plans, reported))
    return found


# A run writing a folder: its experiment, run id and output key.
_Writer = tuple[Plan, str, str]


def _shared_folders(plans: list[Plan], reported: set[Path]) -> Iterable[Collision]:
    first_writers: dict[str, _Writer] = {}
    shared: dict[tuple[Path, Path], list[tuple[str, _Writer, _Writer]]] = {}
    for plan in plans:
        for ident, located in plan.outputs.locations():
            for key, location in located.items():
                place = location_of(plan.experiment.folder, location)
                first = first_writers.setdefault(place, (plan, ident, key))
                if first[0] is not plan:
                    both = (first[0].experiment.path, plan.experiment.path)
                    shared.setdefault(both, []).append((place, first, (plan, ident, key)))
    for places in shared.values():
        place, first, second = places[0]
        pair = _reported_in(second[0], first[0], reported)
        if pair is None:
            continue
        here, there = pair
        # Each shared place as (this experiment's writer, the other's).
        oriented = [(a, b) if a[0] is here else (b, a) for _, b, a in places]
        (_, own_run, own_key), (_, other_run, _) = oriented[0]
        which = f"{own_run} of both" if own_run == other_run else f"{own_run}, {other_run} there"
        more = f"; {len(places)} folders in all" if len(places) > 1 else ""
        where = here.written_at(parts(own_key), own_run)
        yield Collision(
            here,
            there.experiment.path,
            f"runs write where the runs of {display_path(there.experiment.path)} write: "
            f"{own_key} {display_path(Path(place))} ({which}{more}): one would overwrite the "
            f"other's checkpoints; give each experiment its own {own_key}"
            + ("" if where else " in controls (this one is the base config's)"),
            where or (),
            own_key,
            tuple(sorted({own[1] for own, _ in oriented})),
        )


def planned(others: Iterable[Inputs]) -> list[Plan]:
    """The other experiments of a repository, planned (:func:`~.inputs.read_other_experiments`).

    Broken ones are left out: each is reported when it is checked itself.
    """
    plans = []
    for inputs in others:
        try:
            plans.append(plan_experiment(inputs))
        except ConfigWriterError:
            continue
    return plans


def _reported_in(plan: Plan, other: Plan, reported: set[Path]) -> tuple[Plan, Plan] | None:
    """(the one to report in, the other) for two different experiments, if either is checked."""
    if other is plan:
        return None
    if plan.experiment.path in reported:
        return plan, other
    return (other, plan) if other.experiment.path in reported else None


def _paths(plans: Iterable[Plan]) -> set[Path]:
    return {plan.experiment.path for plan in plans}
