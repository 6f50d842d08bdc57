"""``validate --preflight``: what only the machine that trains can know.

The files a config reads must exist there and the folders it writes must be creatable there.
Paths are checked as torchtune 0.6.1 opens them: relative ones from the folder ``tune run`` runs
in, and ``~`` as written, since neither torchtune nor the libraries it hands paths to
(sentencepiece, tiktoken, tokenizers, datasets) expand it.
"""

from __future__ import annotations

import glob
import os
import re
from os.path import isdir, isfile  # false, where pathlib raises, past a folder one cannot search
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from ..generation.output_dirs import OUTPUT_KEYS
from ..generation.placement import lookup
from ..keypaths import KeyPath, dotted, leaves
from .deep_check import FILE_BUILDERS, Problem
from .findings import Severity

CHECK = "preflight"
# The parameters of torchtune's tokenizer builders that name files (llama3: path,
# special_tokens_path; qwen2: merges_file; phi4: vocab_path, merges_path; HuggingFace's own).
_TOKENIZER_FILES = (
    "path", "vocab_path", "merges_path", "merges_file", "special_tokens_path",
    "tokenizer_json_path", "tokenizer_config_json_path", "generation_config_path",
)  # fmt: skip
_LOCAL_SOURCE = ("/", "./", "../", "~")
_EPOCH = re.compile(r"^epoch_(\d+)")  # the folders a checkpointer saves, as torchtune finds them
FILE, FOLDER, PATH, WRITABLE = "file", "folder", "path", "writable folder"
_GET_MODEL = "download the model here (tune download ... --output-dir) or fix the path"
_GET_DATA = "copy the data here or fix the path"
_RESUME = "resume from a run that saved its checkpoint there, or set resume_from_checkpoint false"


def preflight_problems(data: dict[str, Any], run_folder: Path) -> list[Problem]:
    """What would stop training on this machine: paths a config reads, places it writes.

    Args:
        data: The config as loaded from YAML, interpolations unresolved. A value that does not
            resolve is skipped (the interpolation check reports it), as are nulls.
        run_folder: Where ``tune run`` runs (the experiment's folder): relative paths start there.

    Returns:
        One error per missing or unusable path, at its key path, in the config's order.
    """
    check = _Preflight(run_folder.absolute())
    values = _resolved(data)
    tokenizer = values.get("tokenizer")
    for key in _TOKENIZER_FILES if isinstance(tokenizer, dict) else ():
        check.path(("tokenizer", key), tokenizer.get(key), FILE, _GET_MODEL)
    for key, node in values.items():  # teacher_checkpointer, ref_checkpointer... read files too
        if str(key).endswith("checkpointer") and isinstance(node, dict):
            # The recipes resume `checkpointer` only; a checkpointer's own (deprecated) flag
            # makes any of them resume.
            resuming = key == "checkpointer" and values.get("resume_from_checkpoint") is True
            check.checkpointer((key,), node, resuming or node.get("resume_from_checkpoint") is True)
    datasets = values.get("dataset")
    for index, dataset in enumerate(datasets if isinstance(datasets, list) else [datasets]):
        if isinstance(dataset, dict):
            check.dataset(
                ("dataset", index) if isinstance(datasets, list) else ("dataset",), dataset
            )
    for keypath, value in leaves(values):
        # Every output_dir and log_dir at any depth, but a switched-off profiler writes nothing.
        if keypath[-1] in OUTPUT_KEYS and lookup(values, (*keypath[:-1], "enabled")) is not False:
            check.path(keypath, value, WRITABLE, "choose a folder this user can write to")
    order = {keypath: index for index, (keypath, _) in enumerate(leaves(data))}
    return sorted(check.problems, key=lambda problem: order.get(problem.keypath, len(order)))


def _resolved(data: dict[str, Any]) -> Any:
    """The config with interpolations filled in: None for one that does not resolve."""
    try:
        cfg = OmegaConf.create(data)
    except Exception:  # noqa: BLE001 - a malformed ${...}: every interpolation is skipped
        cfg = None

    def fill(node: Any, keypath: KeyPath) -> Any:
        if isinstance(node, dict):
            return {key: fill(value, (*keypath, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value, (*keypath, index)) for index, value in enumerate(node)]
        if not (isinstance(node, str) and "${" in node):
            return node
        if cfg is None:
            return None
        try:
            value = OmegaConf.select(cfg, dotted(keypath), throw_on_resolution_failure=True)
            if isinstance(value, (DictConfig, ListConfig)):  # ${files}: a list or mapping
                value = OmegaConf.to_container(value, resolve=True)
        except Exception:  # noqa: BLE001 - the interpolation check reports it
            return None
        return value

    return fill(data, ())


class _Preflight:
    """The checks of one config, collecting problems; paths relative to ``run_folder``."""

    def __init__(self, run_folder: Path) -> None:
        self.run_folder = run_folder
        self.problems: list[Problem] = []

    def add(self, keypath: KeyPath, message: str) -> None:
        self.problems.append(Problem(keypath, Severity.ERROR, CHECK, message))

    def path(
        self, keypath: KeyPath, value: Any, kind: str, hint: str, base: Path | None = None
    ) -> bool:
        """Report the path at ``keypath`` unless it is a usable ``kind``; true if usable or null."""
        if not isinstance(value, str) or not value:
            return True  # null or absent: nothing is read; another type is the type check's
        path = (base or self.run_folder) / value
        name = f"{dotted(keypath)} {value}" + ("" if Path(value).is_absolute() else f" ({path})")
        if value.startswith("~"):
            full = Path(value).expanduser()
            self.add(
                keypath, f"{name} starts with ~, which torchtune does not expand: write {full}"
            )
            return False
        reason: str | None = None
        if kind == WRITABLE:
            reason = _unwritable(path)
        elif not os.path.exists(path):
            reason = _missing(path)
        elif (kind == FILE and not isfile(path)) or (kind == FOLDER and not isdir(path)):
            reason = f"is not a {kind}"
        elif not os.access(path, os.R_OK | (os.X_OK if isdir(path) else 0)):
            reason = "is not readable by this user"
        if reason is not None:
            self.add(keypath, f"{name} {reason}: expected a {kind}; {hint}")
        return reason is None

    def checkpointer(self, at: KeyPath, node: dict[str, Any], resuming: bool) -> None:
        folder = node.get("checkpoint_dir")
        if not self.path((*at, "checkpoint_dir"), folder, FOLDER, _GET_MODEL):
            folder = None  # one problem for a missing folder, not one per file in it
        if isinstance(folder, str) and str(node.get("_component_")).endswith("HFCheckpointer"):
            # It reads the model's config.json from there, whatever checkpoint_files name.
            config = self.run_folder / folder / "config.json"
            self.needs((*at, "checkpoint_dir"), config, "the HF checkpointer reads", _GET_MODEL)
        output_dir = node.get("output_dir")
        if resuming and isinstance(output_dir, str) and self.resume(at, node, output_dir):
            folder = output_dir  # without an adapter, torchtune resumes the model from there
        if not isinstance(folder, str):
            return
        missing: dict[KeyPath, list[str]] = {}
        for keypath, name in _checkpoint_files(at, node.get("checkpoint_files")):
            if not isfile(self.run_folder / folder / name):
                missing.setdefault(keypath, []).append(name)
        for keypath, names in missing.items():
            more = f" (and {len(names) - 1} more it names)" if len(names) > 1 else ""
            where = self.run_folder / folder
            self.add(keypath, f"{dotted(keypath)} {names[0]}{more} is not in {where}: {_GET_MODEL}")

    def resume(self, at: KeyPath, node: dict[str, Any], output_dir: str) -> bool:
        """Resuming, torchtune reads the recipe state and the adapter from the checkpointer's
        output_dir, not checkpoint_dir. True when it reads the model from there too."""
        out, reads = self.run_folder / output_dir, "resuming, torchtune reads the"
        recipe = node.get("recipe_checkpoint") or "recipe_state/recipe_state.pt"  # its default
        self.needs((*at, "recipe_checkpoint"), out / str(recipe), f"{reads} recipe state", _RESUME)
        adapter = node.get("adapter_checkpoint")
        if adapter:  # taken as named, so the model comes from checkpoint_dir
            self.needs((*at, "adapter_checkpoint"), out / str(adapter), f"{reads} adapter", _RESUME)
            return False
        epochs = {int(m[1]): p for p in _children(out) if (m := _EPOCH.match(p.name))}
        if not epochs:  # torchtune's os.path.join(output_dir, None, ...) fails with a TypeError
            message = (
                f"resuming, torchtune looks for the latest epoch_N folder in {out} and finds none"
            )
            self.add((*at, "adapter_checkpoint"), f"{message}: {_RESUME}")
            return False
        return not isfile(epochs[max(epochs)] / "adapter_model.pt")  # a full finetune's

    def needs(self, keypath: KeyPath, path: Path, what: str, hint: str) -> None:
        if not isfile(path):
            self.add(keypath, f"{what} {path}, which does not exist here: {hint}")

    def dataset(self, at: KeyPath, dataset: dict[str, Any]) -> None:
        source = dataset.get("source")
        if isinstance(source, str) and source.startswith(_LOCAL_SOURCE):
            self.path((*at, "source"), source, PATH, _GET_DATA)
        if source not in FILE_BUILDERS:
            return  # a hub dataset's data_files are files of its repository
        data_dir = dataset.get("data_dir")  # datasets reads relative data_files from there
        base = self.run_folder / data_dir if isinstance(data_dir, str) else self.run_folder
        for keypath, value in leaves(dataset.get("data_files"), (*at, "data_files")):
            if not isinstance(value, str) or "://" in value:
                continue  # a URL is downloaded, not read from this machine
            if not glob.has_magic(value):
                self.path(keypath, value, FILE, _GET_DATA, base)
            elif not glob.glob(str(base / value), recursive=True):  # a pattern datasets expands
                self.add(
                    keypath, f"{dotted(keypath)} {value} matches no file in {base}: {_GET_DATA}"
                )


def _checkpoint_files(at: KeyPath, files: Any) -> list[tuple[KeyPath, str]]:
    """Each checkpoint file with its key path; the ``{filename_format, max_filename}`` form
    expanded as torchtune's FormattedCheckpointFiles does."""
    if isinstance(files, list):
        return [
            ((*at, "checkpoint_files", i), f) for i, f in enumerate(files) if isinstance(f, str)
        ]
    try:
        form, last = files["filename_format"], files["max_filename"]
        names = [form.format(str(n).zfill(len(last)), last) for n in range(1, int(last) + 1)]
    except Exception:  # noqa: BLE001 - not that form: torchtune's error, not this machine's
        return []
    return [((*at, "checkpoint_files", "filename_format"), name) for name in names]


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError:  # missing or unreadable: no epoch folder torchtune could find either
        return []


def _nearest(path: Path) -> Path:
    """The path itself or its nearest ancestor that exists, as far as this user can see."""
    return next(p for p in (path, *path.parents) if os.path.exists(p))


def _missing(path: Path) -> str:
    parent = _nearest(path)
    if isdir(parent) and not os.access(parent, os.X_OK):
        return f"cannot be reached by this user ({parent} is not searchable)"
    return "does not exist here"


def _unwritable(path: Path) -> str | None:
    # torchtune makes missing folders (mkdir parents=True), so the nearest existing ancestor is
    # what must be a folder; making entries in it needs write and search permission.
    existing = _nearest(path)
    if not isdir(existing):
        return "is a regular file" if existing == path else f"is under the regular file {existing}"
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            "is not writable by this user" if existing == path else f"cannot be made in {existing}"
        )
    return None
