"""Finishing or discarding a write of a generated folder that was interrupted (even by SIGKILL).

Which of the two depends on how far the write got (the steps are in :mod:`.swap`): a folder still
being staged is discarded, one complete and marked is swapped in, and an old folder already
exchanged out is removed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..workspace.layout import STAGED_MARK, staging_folders
from .swap import finish, swap_in


def recover_interrupted_write(folder: Path) -> None:
    """Finish or discard a write of ``folder`` that was interrupted."""
    new, ready, old = staging_folders(folder)
    if new.exists():
        shutil.rmtree(new)
    if ready.exists() and not (ready / STAGED_MARK).exists():
        ready.rename(old)  # the old folder, already exchanged out of configs/
    if ready.exists():
        swap_in(folder, ready, old)
    finish(folder, old)
