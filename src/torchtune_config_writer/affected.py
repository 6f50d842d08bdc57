"""Which experiments a set of changed files affects, and every experiment of a repository."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from .errors import ConfigWriterError
from .experiment import EXPERIMENT_FILE_NAMES, load_experiment
from .layout import CONFIGS_DIR
from .repository import repository_root


def repository_experiments(start: Path) -> list[Path]:
    """Every experiment file in the git repository around ``start``: tracked, or new and not
    ignored.

    Raises:
        ConfigWriterError: ``start`` is not inside a git repository.
    """
    root = repository_root(start)
    if root is None:
        raise ConfigWriterError("not inside a git repository: name the experiments to check", start)
    # git itself: gitpython would run this same command, after an import that takes 0.06 to
    # 0.13 s, a third of what the pre-commit hook may take.
    patterns = [f":(glob)**/{name}" for name in EXPERIMENT_FILE_NAMES]
    try:
        listed = subprocess.run(
            [
                "git",
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
                "--",
                *patterns,
            ],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except FileNotFoundError:
        raise ConfigWriterError("git is not installed: name the experiments to check") from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigWriterError(
            f"git ls-files failed: {message[-1] if message else exc}", root
        ) from None
    names = {os.fsdecode(name) for name in listed.split(b"\0") if name}
    return [root / name for name in sorted(names) if (root / name).is_file()]


def find_affected_experiments(paths: Iterable[Path], start: Path) -> list[Path]:
    """The experiments that changed ``paths`` affect, each once, in the order found.

    A path is an experiment file or its folder, a folder of experiments, a file in a generated
    folder (a hand edit there is drift), or a base config file that experiments use (all of
    them are affected). Other files (a workflow, some other YAML) affect nothing.

    Args:
        paths: Changed files, e.g. what pre-commit passes.
        start: Where to look for the git repository when base config users must be found.

    Raises:
        ConfigWriterError: a path does not exist.
    """
    found: dict[Path, None] = {}
    users_by_base: dict[Path, list[Path]] | None = None
    for path in paths:
        if not path.exists():
            raise ConfigWriterError("does not exist: name an experiment or a changed file", path)
        experiments = experiments_in(path)
        if experiments:
            found.update(dict.fromkeys(experiments))
            continue
        if users_by_base is None:  # read every experiment once, only when needed
            users_by_base = _base_users(repository_experiments(start))
        for user in users_by_base.get(_same_file_key(path), []):
            found[user] = None
    return list(found)


def experiments_in(path: Path) -> list[Path]:
    """The experiments ``path`` names: itself, the one of its folder or generated folder, or
    every one below a folder of experiments."""
    if path.is_dir():
        own = [path / name for name in EXPERIMENT_FILE_NAMES if (path / name).is_file()]
        # A folder of experiments (examples/): every one below it.
        return own or sorted(
            found
            for name in EXPERIMENT_FILE_NAMES
            for found in path.rglob(name)
            if not any(part.startswith(".") for part in found.relative_to(path).parts)
        )
    experiment = experiment_of(path)
    return [experiment] if experiment is not None else []


def experiment_of(path: Path) -> Path | None:
    """The experiment file of an experiment file, its folder, or a file in its ``configs/``."""
    if path.name in EXPERIMENT_FILE_NAMES:
        return path
    elif path.parent.name == CONFIGS_DIR:
        candidates = [path.parent.parent / name for name in EXPERIMENT_FILE_NAMES]
    else:
        return None
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def _base_users(experiments: list[Path]) -> dict[Path, list[Path]]:
    users: dict[Path, list[Path]] = {}
    for path in experiments:
        try:
            base = load_experiment(path, max_runs=2**63).base_config_path()
        except ConfigWriterError:
            continue  # a broken experiment is reported when it is checked itself
        if base is not None and base.exists():
            users.setdefault(_same_file_key(base), []).append(path)
    return users


def _same_file_key(path: Path) -> Path:
    return Path(os.path.realpath(path))
