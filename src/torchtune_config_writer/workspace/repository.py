"""The repository boundary: what the tool reads or writes must not lead out of it by a symlink."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from ..errors import ConfigWriterError


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


def through_symlink(root: Path, name: str) -> bool:
    """Whether the file ``name`` (relative to the work tree's top ``root``) is a symlink or lies
    in a folder that is one: generated files are read only where they are written."""
    real_root = os.path.realpath(root)
    written = os.path.join(real_root, name)
    return os.path.realpath(written) != written


# What `git rev-parse --verify` prints for a commit: its full hash (SHA-1 or SHA-256).
_HASH = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
FETCH_HINT = (
    "fetch it first (in a GitHub workflow, actions/checkout with fetch-depth: 0, or git fetch "
    "origin BASE_SHA)"
)


def resolve_commit(root: Path, ref: str) -> str:
    """The full hash of the commit ``ref`` names in the repository at ``root``: whatever git
    accepts (a branch, a tag, ``main~3``, ``HEAD@{5}``, ``HEAD@{yesterday}``, a short hash).

    Raises:
        ConfigWriterError: git is missing, or ``ref`` names no commit of the repository.
    """
    if ref.startswith("-"):  # git would read it as an option (`--output=FILE`)
        raise ConfigWriterError(
            f"{ref} is no commit name (git would read it as an option): name the commit by its "
            "hash, or a branch as refs/heads/NAME"
        )
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
            cwd=root,
            capture_output=True,
            text=True,
            errors="replace",
            env={**os.environ, "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise ConfigWriterError("git is not installed: diff reads the commit with git") from None
    except ValueError:  # a NUL, which no argument can hold
        raise ConfigWriterError(f"{ref} is not a commit of this repository: {FETCH_HINT}") from None
    found = done.stdout.strip()
    if done.returncode != 0 or not _HASH.fullmatch(found):
        said = done.stderr.strip().splitlines()
        reason = f" ({said[-1]})" if said else ""
        raise ConfigWriterError(f"{ref} is not a commit of this repository{reason}: {FETCH_HINT}")
    return found
