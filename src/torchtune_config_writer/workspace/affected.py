"""Which experiments a set of changed files affects, and every experiment of a repository."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

from ..errors import ConfigWriterError, require_path
from ..experiment.load import EXPERIMENT_FILE_NAMES, load_experiment
from .layout import CONFIGS_DIR, RUN_MAPPING, is_owned
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
    patterns = [f":(glob)**/{name}" for name in EXPERIMENT_FILE_NAMES]
    found = [root / name for name in git_listed(root, patterns) if (root / name).is_file()]
    return [path for path in found if not _is_output_copy(path)]


def git_listed(root: Path, patterns: list[str]) -> list[str]:
    """The files of the repository at ``root`` matching ``patterns``: tracked, or new and not
    ignored; sorted, relative to ``root``."""
    # git itself: gitpython would run this same command, after an import that takes 0.06 to
    # 0.13 s, a third of what the pre-commit hook may take.
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
            env={**os.environ, "LC_ALL": "C"},  # its warnings in the words read below
        )
    except FileNotFoundError:
        raise ConfigWriterError("git is not installed: name the experiments to check") from None
    except subprocess.CalledProcessError as exc:
        message = exc.stderr.decode(errors="replace").strip().splitlines()
        raise ConfigWriterError(
            f"git ls-files failed: {message[-1] if message else exc}", root
        ) from None
    # git lists nothing below a folder it may not open, and only warns: an experiment there
    # would be skipped with "up to date".
    for line in listed.stderr.decode(errors="replace").splitlines():
        unreadable = _UNREADABLE.match(line)
        if unreadable:
            raise ConfigWriterError(
                f"this user may not read it ({unreadable['reason']}), and experiments are "
                "looked for in every folder of the repository: give this user access to it, or "
                "add it to .gitignore if it holds none",
                root / unreadable["folder"],
            )
    return sorted({os.fsdecode(name) for name in listed.stdout.split(b"\0") if name})


_UNREADABLE = re.compile(r"warning: could not open directory '(?P<folder>.*)': (?P<reason>.*)$")


def orphan_folders(paths: Iterable[Path], start: Path) -> list[Path]:
    """Generated folders whose experiment is gone (``git rm experiment.yaml`` leaves its
    ``configs/``), among ``paths`` or, with none, in the whole repository around ``start``.

    A folder counts only if it holds a file the tool wrote: a ``configs/`` of the user's own is
    not one.

    Raises:
        ConfigWriterError: no paths and ``start`` is not inside a git repository.
    """
    candidates: list[Path] = []
    named = list(paths)
    if not named:
        root = repository_root(start)
        if root is None:
            return []  # repository_experiments has said so already
        candidates = _listed_generated_folders(root)
    for path in named:
        if path.name == CONFIGS_DIR and path.is_dir():
            candidates.append(path)
        elif path.parent.name == CONFIGS_DIR:
            candidates.append(path.parent)
        elif path.is_dir() and repository_root(path) is not None:
            # A folder of experiments (`check .`, as the GitHub Action runs): every one below it.
            inside = Path(os.path.abspath(path))
            root = repository_root(path)
            assert root is not None
            candidates.extend(
                folder
                for folder in _listed_generated_folders(root)
                if Path(os.path.abspath(folder)).is_relative_to(inside)
            )
    found: dict[Path, Path] = {}
    for folder in dict.fromkeys(candidates):  # a hook names each generated file of a folder
        key = _same_file_key(folder)
        if key not in found and _is_orphan(folder):
            found[key] = folder
    return list(found.values())


def _listed_generated_folders(root: Path) -> list[Path]:
    """The folders named ``configs`` holding a file git lists (tracked, or new and not ignored)."""
    listed = git_listed(root, [f":(glob)**/{CONFIGS_DIR}/*"])
    return list(dict.fromkeys((root / name).parent for name in listed))


def _is_orphan(folder: Path) -> bool:
    if folder.is_symlink() or not folder.is_dir():
        return False
    if any((folder.parent / name).is_file() for name in EXPERIMENT_FILE_NAMES):
        return False
    try:
        return any(is_owned(entry) for entry in folder.iterdir())
    except OSError:
        return False


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
    # By real path: an experiment named as written and found again as a base's user is one.
    found: dict[Path, Path] = {}
    users_by_root: dict[Path, dict[Path, list[Path]]] = {}
    # `pre-commit run --all-files` names every file of every generated folder: each folder's
    # experiment is looked up once.
    of_folder: dict[Path, list[Path]] = {}
    keys: dict[Path, Path] = {}
    for path in paths:
        require_path(path, "does not exist: name an experiment or a changed file")
        if (
            path.parent.name == CONFIGS_DIR
            and path.name not in EXPERIMENT_FILE_NAMES
            and path.is_file()
        ):
            if path.parent not in of_folder:
                of_folder[path.parent] = experiments_in(path)
            experiments = of_folder[path.parent]
        else:
            experiments = experiments_in(path)
        if not experiments:
            # A base config file: its users are in its repository, read once, only when needed.
            root = repository_root(path.parent) or repository_root(start)
            if root is None:
                continue
            if root not in users_by_root:
                users_by_root[root] = _base_users(repository_experiments(root))
            experiments = users_by_root[root].get(_same_file_key(path), [])
        for experiment in experiments:
            if experiment not in keys:
                keys[experiment] = _same_file_key(experiment)
            found.setdefault(keys[experiment], experiment)
    return list(found.values())


def experiments_in(path: Path) -> list[Path]:
    """The experiments ``path`` names: itself, the one of its folder or generated folder, or
    every one below a folder of experiments."""
    if path.is_dir():
        own = [path / name for name in EXPERIMENT_FILE_NAMES if (path / name).is_file()]
        if own:
            return [p for p in own if not _is_output_copy(p)]
        if path.name == CONFIGS_DIR:  # a generated folder stands for its experiment
            return experiments_in(path.parent)
        # A folder of experiments (examples/): every one below it that git lists, or, outside
        # a repository, every one below it.
        inside = Path(os.path.abspath(path))
        if repository_root(path) is not None:
            listed = repository_experiments(path)
            return [p for p in listed if Path(os.path.abspath(p)).is_relative_to(inside)]
        found = (p for name in EXPERIMENT_FILE_NAMES for p in path.rglob(name))
        return sorted(p for p in found if not _is_output_copy(p))
    experiment = experiment_of(path)
    # A copy in a timestamped output folder, named by one of its files, is no more an experiment
    # than when a folder above it is named: checking it would write configs/run_mapping.yaml.
    if experiment is None or _is_output_copy(experiment):
        return []
    return [experiment]


def own_experiments(folder: Path) -> list[Path]:
    """The experiment files in ``folder`` itself (none below it), unless it is a copy in a
    timestamped output folder."""
    own = [folder / name for name in EXPERIMENT_FILE_NAMES if (folder / name).is_file()]
    return [path for path in own if not _is_output_copy(path)]


def _is_output_copy(experiment: Path) -> bool:
    """A copy in a timestamped output folder, which keeps run_mapping.yaml beside it."""
    return (experiment.parent / RUN_MAPPING).is_file()


def experiment_of(path: Path) -> Path | None:
    """The experiment file of an experiment file, its folder, or a file in its ``configs/``."""
    if path.name in EXPERIMENT_FILE_NAMES:
        return path
    elif path.parent.name == CONFIGS_DIR:
        candidates = [path.parent.parent / name for name in EXPERIMENT_FILE_NAMES]
    else:
        return None
    return next((candidate for candidate in candidates if candidate.is_file()), None)


def experiments_using(bases: Iterable[Path], start: Path) -> list[Path]:
    """The experiments of the git repository around ``start`` whose base config file is one of
    ``bases``, there or not (a commit that deletes a base config leaves its users broken); none
    outside a repository."""
    root = repository_root(start)
    if root is None:
        return []
    users = _base_users(repository_experiments(root))
    found = (user for base in bases for user in users.get(_same_file_key(base), []))
    return list(dict.fromkeys(found))


def _base_users(experiments: list[Path]) -> dict[Path, list[Path]]:
    users: dict[Path, list[Path]] = {}
    for path in experiments:
        try:
            base = load_experiment(path, max_runs=2**63).base_config_path()
        except ConfigWriterError:
            continue  # a broken experiment is reported when it is checked itself
        if base is not None:  # missing too: a deleted base config is looked up by its users
            users.setdefault(_same_file_key(base), []).append(path)
    return users


def _same_file_key(path: Path) -> Path:
    return Path(os.path.realpath(path))


def submodules(start: Path) -> list[Path]:
    """The checked-out git submodules of the repository around ``start``, which ``git ls-files``
    does not look into; none (and no git call) without a ``.gitmodules``."""
    root = repository_root(start)
    if root is None or not (root / ".gitmodules").is_file():
        return []
    listed = subprocess.run(
        ["git", "config", "-z", "-f", ".gitmodules", "--get-regexp", r"^submodule\..*\.path$"],
        cwd=root,
        capture_output=True,
    ).stdout
    # -z: each entry is "key\nvalue\0", so a path may hold any character but NUL.
    paths = [entry.partition(b"\n")[2] for entry in listed.split(b"\0") if entry]
    found = [root / os.fsdecode(path) for path in paths if path]
    return [folder for folder in found if (folder / ".git").exists()]
