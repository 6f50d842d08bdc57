"""The files a commit deletes, and what they leave to check: pre-commit passes a hook only files
that exist, so a commit that deletes an experiment would never show its generated folder."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigWriterError
from ..experiment.load import EXPERIMENT_FILE_NAMES
from .affected import experiments_using, own_experiments
from .layout import CONFIGS_DIR
from .repository import repository_root

# Experiment files and base config files are YAML; any other file that matters is generated.
_YAML_SUFFIXES = (".yaml", ".yml")


def deleted_files(start: Path, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files that the change being committed deletes and that may affect generated configs
    (YAML files, files in a generated folder), sorted, under the work tree's top.

    The change is the one staged for commit, or, under ``pre-commit run --from-ref A --to-ref
    B`` (pre-push, CI), the one from ``A`` to ``B``, which pre-commit reads its files from. A file
    still on disk (``git rm --cached``) is left out: the check reads it where it is.

    Args:
        start: Where the git repository is looked for.
        environ: Where pre-commit's ``PRE_COMMIT_FROM_REF`` and ``PRE_COMMIT_TO_REF`` are read.

    Raises:
        ConfigWriterError: not inside a git repository, git missing, or git failing.
    """
    root = repository_root(start)
    if root is None:
        raise ConfigWriterError(
            "not inside a git repository: deleted files are read from git", start
        )
    # --no-renames: a moved experiment is a deletion of its old name (pre-commit passes the new).
    diff = ["git", "diff", "--name-only", "--no-renames", "--diff-filter=D", "-z"]
    old, new = environ.get("PRE_COMMIT_FROM_REF", ""), environ.get("PRE_COMMIT_TO_REF", "")
    if old and new:
        if old.startswith("-") or new.startswith("-"):  # git would read it as an option
            raise ConfigWriterError(
                f"--from-ref {old} --to-ref {new}: a commit name cannot start with '-'"
            )
        # As pre-commit does: from the merge base, or from A itself when there is none.
        listed = _git(root, [*diff, f"{old}...{new}"], check=False)
        if listed.returncode != 0:
            listed = _git(root, [*diff, f"{old}..{new}"])
    else:
        # GIT_INDEX_FILE is kept: `git commit -a` and `git commit PATH` stage into an index of
        # their own, which is the commit's.
        listed = _git(root, [*diff, "--cached"])
    names = (os.fsdecode(name) for name in listed.stdout.split(b"\0") if name)
    found = (root / name for name in names)
    return sorted(
        path
        for path in found
        if (path.suffix in _YAML_SUFFIXES or path.parent.name == CONFIGS_DIR)
        and not os.path.lexists(path)
    )


def _git(root: Path, command: list[str], check: bool = True) -> subprocess.CompletedProcess[bytes]:
    try:
        done = subprocess.run(
            command, cwd=root, capture_output=True, env={**os.environ, "LC_ALL": "C"}
        )
    except FileNotFoundError:
        raise ConfigWriterError("git is not installed: deleted files are read from git") from None
    if check and done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigWriterError(f"git diff failed: {said[-1] if said else done.returncode}", root)
    return done


@dataclass(frozen=True)
class LeftBehind:
    """What deleted files leave to check.

    Attributes:
        experiments: Experiments still there that lost a generated file or their base config.
        folders: Generated folders of deleted experiments or files, stale when no experiment is
            left beside them.
    """

    experiments: list[Path]
    folders: list[Path]


def left_behind(deleted: Iterable[Path], start: Path) -> LeftBehind:
    """What deleting ``deleted`` (gone from disk) leaves to check.

    A deleted experiment file leaves its generated folder; a deleted generated file leaves its
    experiment (the file is missing) or, with the experiment gone too, the folder; any other
    deleted YAML file may have been the base config of experiments, which are then broken.

    Args:
        deleted: Deleted files, as :func:`deleted_files` finds them.
        start: Where the git repository is looked for when base config users must be found.
    """
    experiments: list[Path] = []
    folders: list[Path] = []
    bases: list[Path] = []
    for path in deleted:
        if path.name in EXPERIMENT_FILE_NAMES:
            folder = path.parent
        elif path.parent.name == CONFIGS_DIR:
            folder = path.parent.parent
        else:
            bases.append(path)
            continue
        # The other spelling of the experiment file, or the experiment of a deleted run file.
        experiments.extend(own_experiments(folder))
        generated = folder / CONFIGS_DIR
        if generated.is_dir() and not generated.is_symlink():
            folders.append(generated)
    if bases:  # every experiment of the repository is read, as for a changed base config
        experiments.extend(experiments_using(bases, start))
    return LeftBehind(list(dict.fromkeys(experiments)), list(dict.fromkeys(folders)))
