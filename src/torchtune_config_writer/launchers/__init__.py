"""The launch back ends: each one module, registered here by its key under ``launch:``.

A back end (:class:`~.backend.LaunchBackend`) reads its section of ``launch:``, names the files
it owns in ``configs/``, says which output folders its files cannot use, and renders its files
from a plan. The experiment's ``launch:`` keys, the names of the files the tool owns, and the
files ``render_files`` yields all come from :data:`BACKENDS`: a new scheduler is one module and
one entry here (and its section in ``experiment.schema.json``, for editors).
"""

from __future__ import annotations

from .backend import LaunchBackend, RenderedRuns, RunFolders
from .slurm import SLURM

__all__ = ["BACKENDS", "LaunchBackend", "RenderedRuns", "RunFolders", "owner_of"]

# Each back end by its key under ``launch:``, in the order the launch section's keys are listed.
BACKENDS: dict[str, LaunchBackend] = {backend.section: backend for backend in (SLURM,)}


def owner_of(name: str) -> LaunchBackend | None:
    """The back end that writes files named ``name`` in ``configs/``, if one does."""
    return next((b for b in BACKENDS.values() if b.file_names.fullmatch(name)), None)
