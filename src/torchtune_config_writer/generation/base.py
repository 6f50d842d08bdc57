"""The base config of an experiment: a recipe config, recorded like a lock file, or a file.

A recipe name resolves to the bytes ``tune cp`` copies. Those bytes are recorded in the generated
folder (``base.lock.yaml``) with the recipe name and torchtune version, and reused while the
recipe name is unchanged, so that generating needs no torchtune and gives the same bytes whatever
torchtune (if any) is installed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigWriterError, display_path
from ..experiment.launch import RECIPE_NAME
from ..experiment.load import Experiment
from ..installing import INSTALL_ADVICE
from ..reading import read_bounded
from ..workspace.layout import CONFIGS_DIR, GENERATED_MARK, LOCK_FILE, LOCK_MARK
from ..workspace.repository import ESCAPE_HINT, repository_root, symlink_escape
from ..yaml_read import Document, a_type_name, parse_yaml, read_yaml_file
from . import builtin_configs

_LOCK_FIRST_LINE = LOCK_MARK.decode()  # one definition, in layout.py
# The header's lines at most: the first, recipe, torchtune, sha256, tune run, and "The bytes of".
_LOCK_HEADER_LINES = 6


@dataclass(frozen=True)
class Base:
    """A resolved base config.

    Attributes:
        label: What the experiment names: the recipe config name or the file as written.
        document: The parsed base (positions point into the file it was read from).
        builtin_config: The name of the torchtune recipe config it is
            (``llama3_2/1B_lora_single_device``), or ``None`` for a file base.
        torchtune_version: The torchtune the recipe config came from.
        raw: The exact bytes of the recipe config (what ``tune cp`` writes).
        recorded: True when read from the recorded lock rather than from torchtune.
        runs_with: The torchtune recipe that ``tune run`` runs the recipe config with, from
            torchtune's registry (``lora_finetune_single_device``), or ``None`` if not known.
        lock: The lock file it was read from, when recorded.
    """

    label: str
    document: Document
    builtin_config: str | None = None
    torchtune_version: str | None = None
    raw: bytes = b""
    recorded: bool = False
    runs_with: str | None = None
    lock: Path | None = None

    @property
    def config(self) -> dict[str, Any]:
        """The base config's values."""
        data: dict[str, Any] = self.document.data
        return data


def load_base(experiment: Experiment, lock_dir: Path | None, refresh: bool = False) -> Base:
    """Resolve the experiment's base config.

    Args:
        experiment: The checked experiment.
        lock_dir: Where a recorded base may be (``configs/``); ``None`` never reuses one.
        refresh: Resolve a recipe from the installed torchtune even if one is recorded.

    Raises:
        ConfigWriterError: unknown recipe, missing file, no torchtune when one is needed,
            or a base that is not a YAML mapping.
    """
    file_path = experiment.base_config_path()
    if file_path is not None:
        return _checked(_from_file(experiment, file_path))
    recipe = experiment.base_config
    assert recipe is not None
    if lock_dir is not None and not refresh:
        recorded = read_lock(lock_dir / LOCK_FILE)
        if recorded is None or recorded.builtin_config != recipe:
            # A new experiment on a recipe another one records: the repository's record, so
            # that it is generated alike with or without torchtune (the hook has none).
            recorded = _recorded_elsewhere(experiment, recipe)
        if recorded is not None:
            return _checked(_with_runs_with(recorded))
    return _checked(_from_torchtune(experiment, recipe))


def _recorded_elsewhere(experiment: Experiment, recipe: str) -> Base | None:
    """The first other experiment's recorded base of ``recipe`` in the repository, if any."""
    from ..workspace.affected import (
        repository_experiments,  # reads the repository: only when needed
    )

    root = repository_root(experiment.folder)
    if root is None:
        return None
    try:
        listed = repository_experiments(root)
    except ConfigWriterError:
        return None
    for other in listed:
        if other.parent.resolve() == experiment.folder.resolve():
            continue
        try:
            recorded = read_lock(other.parent / CONFIGS_DIR / LOCK_FILE)
        except ConfigWriterError:
            continue  # a broken lock is reported when its own experiment is checked
        if recorded is not None and recorded.builtin_config == recipe:
            return recorded
    return None


def _from_file(experiment: Experiment, path: Path) -> Base:
    written = experiment.base_config_file
    assert written is not None
    keypath = ("framework_config", "base_config_file")
    try:
        is_file, is_dir = path.is_file(), path.is_dir()
    except OSError as exc:  # e.g. a name too long for the file system
        raise experiment.error(
            f"cannot read base_config_file {written}: {exc.strerror}", keypath
        ) from None
    escape = symlink_escape(path) if is_file else None
    if escape is not None:
        raise experiment.error(
            f"base_config_file {written} leads out of the repository through a symlink (to "
            f"{escape}): {ESCAPE_HINT}",
            keypath,
        )
    if not is_file:
        problem = "is a folder" if is_dir else "does not exist"
        if not is_dir and os.path.exists(path):
            problem = "is not a regular file (a device, a pipe or a socket)"
        raise experiment.error(
            f"base_config_file {written} {problem}: give the path of a YAML config "
            "(relative paths start at the experiment's folder)",
            keypath,
        )
    document = read_yaml_file(path)
    if GENERATED_MARK in document.raw[:256]:
        raise experiment.error(
            f"base_config_file {written} is a run config another experiment generated: its "
            "runs would write into that experiment's output folders, and it changes whenever "
            "that experiment is regenerated; base this experiment on that one's base (its "
            f"base_config or base_config_file) and give its values here",
            keypath,
        )
    return Base(written, document)


def _from_torchtune(experiment: Experiment, recipe: str) -> Base:
    torchtune = builtin_configs.installed_torchtune()
    if torchtune is None:
        raise experiment.error(
            f"base_config '{recipe}' is not recorded in {CONFIGS_DIR}/{LOCK_FILE} yet, and "
            "reading it needs torchtune, which is not installed here: run "
            "`torchtune-config-writer generate` where torchtune is installed and commit the lock, "
            f"or {INSTALL_ADVICE}",
            ("framework_config", "base_config"),
        )
    config = torchtune.find(recipe)
    if config is None and recipe in torchtune.recipes:  # a recipe, not one of its configs
        own = [c.name for c in torchtune.configs if c.recipe == recipe and c.path.exists()]
        listing = ", ".join(own) if own else "none ships with torchtune"
        raise experiment.error(
            f"'{recipe}' is a torchtune recipe, and base_config names a recipe config: one of "
            f"its configs ({listing}); `tune run {recipe}` then runs it",
            ("framework_config", "base_config"),
        )
    if config is None:
        close = torchtune.close_matches(recipe)
        hint = f"did you mean {' or '.join(repr(name) for name in close)}? " if close else ""
        raise experiment.error(
            f"'{recipe}' is not a torchtune {torchtune.version} recipe config: {hint}"
            "See `torchtune-config-writer recipes` for the list",
            ("framework_config", "base_config"),
        )
    try:
        raw = read_bounded(config.path)
    except OSError as exc:  # torchtune 0.6.1 lists llama2/7B_full_early_exit but ships no file
        raise experiment.error(
            f"torchtune {torchtune.version} lists '{recipe}', but its file is not in the installed "
            f"package ({exc.strerror}): `tune cp` fails too; choose another recipe config",
            ("framework_config", "base_config"),
        ) from None
    document = parse_yaml(raw, config.path)
    return Base(recipe, document, recipe, torchtune.version, raw, runs_with=config.recipe)


def _with_runs_with(recorded: Base) -> Base:
    # A lock of version 0.1 does not record the recipe that runs the config: the installed
    # torchtune's registry knows it, and the lock is written again with it.
    if recorded.runs_with is not None:
        return recorded
    torchtune = builtin_configs.installed_torchtune()
    config = torchtune.find(recorded.label) if torchtune is not None else None
    if config is None:
        return recorded
    return dataclasses.replace(recorded, runs_with=config.recipe)


def _checked(base: Base) -> Base:
    if not isinstance(base.document.data, dict):
        found = "empty" if base.document.data is None else a_type_name(base.document.data)
        raise base.document.error(
            f"a base config must be a mapping of keys, but this one is {found}"
        )
    return base


def render_lock(base: Base) -> bytes:
    """The recorded base: a short header of comments, then the recipe config's exact bytes."""
    runs_with = f"# tune run: {base.runs_with}\n" if base.runs_with is not None else ""
    header = (
        f"{_LOCK_FIRST_LINE}\n"
        f"# recipe: {base.builtin_config}\n"
        f"# torchtune: {base.torchtune_version}\n"
        # A hand edit of the recorded bytes would otherwise show only as drift in the runs, and
        # check --fix would spread it into every one: the digest lets read_lock refuse it.
        f"# sha256: {hashlib.sha256(base.raw).hexdigest()}\n"
        f"{runs_with}"
        f"# The bytes of `tune cp {base.builtin_config}` follow. "
        "Refresh with `generate --refresh-base`.\n"
    )
    return header.encode("utf-8") + base.raw


def read_lock(path: Path) -> Base | None:
    """The base recorded at ``path``, or ``None`` if there is none or it is not one of ours.

    Raises:
        ConfigWriterError: the recorded config is not valid YAML.
    """
    try:
        raw = read_bounded(path)
    except OSError:
        return None
    # A checkout with core.autocrlf=true gives CRLF: the record is the same (tune cp's bytes are
    # LF), and check reports the file's line endings as such.
    raw = raw.replace(b"\r\n", b"\n")
    lines = raw.split(b"\n", _LOCK_HEADER_LINES)
    if len(lines) < 5 or lines[0].decode("utf-8", "replace") != _LOCK_FIRST_LINE:
        return None
    fields: dict[str, str] = {}
    for number, line in enumerate(lines[1:], start=1):
        text = line.decode("utf-8", "replace")
        if text.startswith("# The bytes of "):  # the last line of the header
            raw_config = b"\n".join(lines[number + 1 :])
            break
        key, _, value = text.removeprefix("# ").partition(": ")
        fields[key] = value
    else:
        return None
    digest = fields.get("sha256")
    # A lock written before digests has none: it is read unverified, as it always was.
    if digest is not None and digest != hashlib.sha256(raw_config).hexdigest():
        shown = display_path(path)
        raise ConfigWriterError(
            "the recorded base config was edited: its bytes do not match the sha256 of its "
            f"header; restore it (`git restore {shown}`) or record it again with "
            "`torchtune-config-writer generate --refresh-base` where torchtune is installed",
            path,
            list(fields).index("sha256") + 2,
        )
    recipe = fields.get("recipe", "")
    # The whole file parses as the config (the header is comments), so lines stay true.
    document = parse_yaml(raw, path)
    return Base(
        recipe,
        document,
        recipe,
        fields.get("torchtune"),
        raw_config,
        recorded=True,
        # Only a recipe name goes into commands: a hand-edited line must not inject shell code.
        runs_with=_recipe_name(fields.get("tune run")),
        lock=path,
    )


def _recipe_name(text: str | None) -> str | None:
    return text if text is not None and RECIPE_NAME.fullmatch(text) else None


def installed_torchtune_version() -> str | None:
    """The installed torchtune's version, read from its dist-info folder's name, or ``None``.

    Neither torchtune nor importlib.metadata is imported: ``importlib.metadata.version`` takes
    60 ms in a fresh process, this 0.6 ms, and check of 20 experiments is 48 to 76 ms faster for
    it (docs/performance.md).
    """
    spec = importlib.util.find_spec("torchtune")
    if spec is None or not spec.submodule_search_locations:
        return None
    site = Path(next(iter(spec.submodule_search_locations))).parent
    try:
        names = os.listdir(site)
    except OSError:
        return None
    found = [
        name[len("torchtune-") : -len(".dist-info")]
        for name in names
        if name.startswith("torchtune-") and name.endswith(".dist-info")
    ]
    return found[0] if len(found) == 1 else None
