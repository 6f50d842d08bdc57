"""The repository boundary: what the tool reads or writes must not lead out of it by a symlink."""

from __future__ import annotations

import os
from pathlib import Path


def repository_root(start: Path) -> Path | None:
    """The top of the git work tree holding ``start`` (found by its ``.git``), or ``None``."""
    path = Path(os.path.abspath(start))
    return next((folder for folder in (path, *path.parents) if (folder / ".git").exists()), None)


def symlink_escape(path: Path) -> str | None:
    """Where ``path`` really leads, if it lies inside a repository as written but outside it once
    symlinks are followed; else ``None``.

    A path written to lie outside the repository (an absolute ``base_config_file``) is the
    user's explicit choice and is not an escape.
    """
    root = repository_root(path if path.is_dir() else path.parent)
    if root is None:
        return None
    real_root = os.path.realpath(root)
    real = os.path.realpath(path)
    return None if real == real_root or real.startswith(real_root + os.sep) else real


ESCAPE_HINT = "keep it inside the repository, or write the outside path itself"
