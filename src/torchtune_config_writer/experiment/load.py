"""The ``experiment.yaml`` format: reading it and checking every rule before any work is done."""

from __future__ import annotations

import itertools
import os
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

from ..errors import ConfigWriterError, ErrorList
from ..keypaths import KeyPath, dotted
from ..yaml_read import Document, Replace, a_type_name, read_yaml_file
from ..yaml_safety import MAX_EXPERIMENT_BYTES, REPLACE_TAG
from .design import Design, read_design
from .evaluation import Evaluation, read_evaluation
from .launch import RECIPE, Launch, read_launch
from .parameters import (
    Parameter,
    check_variables_are_not_controls,
    linked_axes,
    read_parameters,
    run_count,
)
from .sections import reject_unknown_keys, required_string, section

EXPERIMENT_FILE_NAMES = ("experiment.yaml", "experiment.yml")
DEFAULT_MAX_RUNS = 1000
# The most combinations exclude is applied to: larger grids are refused before they are walked.
_MAX_GRID = 1_000_000

_SECTIONS = (
    "experiment",
    "framework_config",
    "variables",
    "controls",
    "exclude",
    "conditions",
    "search",
    "output",
    "launch",
    "evaluation",
)
_EXPERIMENT_KEYS = (
    "name",
    "framework",
    "question",
    "hypothesis",
    "researcher",
    "date",
    "tags",
    "max_runs",
)
_BASE_KEYS = ("base_config", "base_config_file")
_FRAMEWORK_CONFIG_KEYS = (*_BASE_KEYS, "recipe")
_OUTPUT_KEYS = ("experiment_name", "base_dir")
_FRAMEWORKS_PLANNED = ("inspect", "dspy")
# A name becomes part of a folder name: no separators, no leading dot, nothing a shell mangles.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Experiment:
    """A checked experiment file.

    Attributes:
        path: The experiment file.
        name: ``experiment.name``.
        base_config: A torchtune recipe config name, or ``None``.
        base_config_file: The custom base config as written, or ``None``.
        variables: What the study varies, in the order written.
        controls: What it holds fixed, in the order written.
        output_name: The name used for a timestamped output folder.
        output_base_dir: ``output.base_dir`` as written, or ``None``.
        document: The parsed file, for pointing messages at lines.
        recipe: ``framework_config.recipe``: the torchtune recipe that runs the configs (a
            name, or a ``.py`` file relative to the experiment's folder), or ``None``.
        launch: The ``launch`` section.
        design: Which combinations run (``exclude``, ``conditions``, ``search``).
        evaluation: The ``evaluation`` section, or ``None``.
    """

    path: Path
    name: str
    base_config: str | None
    base_config_file: str | None
    variables: tuple[Parameter, ...]
    controls: tuple[Parameter, ...]
    output_name: str
    output_base_dir: str | None
    document: Document
    recipe: str | None = None
    launch: Launch = Launch()
    design: Design = Design(())
    evaluation: Evaluation | None = None

    @property
    def folder(self) -> Path:
        """The folder holding the experiment file (and its generated ``configs/``)."""
        return self.path.parent

    @property
    def axes(self) -> tuple[tuple[Parameter, ...], ...]:
        """The variables as the sweep crosses them: a linked group is one axis."""
        return tuple(linked_axes(self.variables, lambda variable: variable))

    @property
    def run_count(self) -> int:
        """How many runs: the full grid, or the combinations the design leaves."""
        if self.design.combinations is not None:
            return len(self.design.combinations)
        return run_count(self.variables)

    def base_config_path(self) -> Path | None:
        """``base_config_file`` as a path (see :meth:`resolve_path`)."""
        if self.base_config_file is None:
            return None
        return self.resolve_path(self.base_config_file, ("framework_config", "base_config_file"))

    def resolve_path(self, written: str, keypath: KeyPath) -> Path:
        """A path from the experiment file: ``~`` expanded, relative to the experiment's folder.

        Raises:
            ConfigWriterError: ``~user`` names no user.
        """
        try:
            path = Path(written).expanduser()
        except RuntimeError:
            raise self.error(f"cannot expand '{written}': no such user", keypath) from None
        return Path(os.path.normpath(self.folder / path))  # exp/../outputs reads as outputs

    def error(self, message: str, keypath: KeyPath = ()) -> ConfigWriterError:
        """An error pointing at ``keypath`` in the experiment file."""
        return self.document.error(message, keypath)


def read_experiment_document(path: Path) -> Document:
    """The experiment file that ``path`` names, parsed, before any rule of the format is checked
    (``schema --check`` reads it as ``load_experiment`` does).

    Raises:
        ConfigWriterError: no experiment file there, too large, not YAML.
    """
    path = find_experiment_file(path)
    _check_size(path)
    return read_yaml_file(path)


def find_experiment_file(path: Path) -> Path:
    """The experiment file that ``path`` names: the file itself, or the one in a folder.

    Raises:
        ConfigWriterError: no experiment file there, two of them, or a file of another name.
    """
    try:
        return _find_experiment_file(path)
    except OSError as exc:  # a name too long for the file system, a folder we may not read
        raise ConfigWriterError(f"cannot read: {exc.strerror or exc}", path) from None


def _find_experiment_file(path: Path) -> Path:
    if path.is_dir():
        found = [path / name for name in EXPERIMENT_FILE_NAMES if (path / name).is_file()]
        if len(found) > 1:
            raise ConfigWriterError(
                "has both experiment.yaml and experiment.yml: keep exactly one experiment file "
                "here",
                path,
            )
        if not found:
            raise ConfigWriterError(_no_experiment_here(path), path)
        return found[0]
    if not path.exists():
        raise ConfigWriterError("file not found: give an experiment.yaml or its folder", path)
    if path.name in EXPERIMENT_FILE_NAMES and all(
        (path.parent / name).is_file() for name in EXPERIMENT_FILE_NAMES
    ):
        raise ConfigWriterError(
            "has both experiment.yaml and experiment.yml: keep exactly one experiment file here",
            path.parent,
        )
    if path.name not in EXPERIMENT_FILE_NAMES:
        raise ConfigWriterError(
            "experiment files are named experiment.yaml: rename it, in a folder of its own "
            "(its configs/ are generated beside it)",
            path,
        )
    return path


def _no_experiment_here(folder: Path) -> str:
    """What a folder without an experiment file holds instead, and what to do."""
    below = sorted(
        str(found.relative_to(folder))
        for name in EXPERIMENT_FILE_NAMES
        for found in itertools.islice(folder.glob(f"*/{name}"), 50)
    )
    if below:
        shown = ", ".join(below[:3]) + (f" and {len(below) - 3} more" if len(below) > 3 else "")
        return (
            f"has no experiment.yaml itself, but holds {len(below)} experiment folders ({shown}): "
            "name the ones to generate (each experiment is one folder with its experiment.yaml)"
        )
    lookalikes = sorted(
        file.name
        for file in itertools.islice(folder.glob("*.y*ml"), 50)
        if file.name not in EXPERIMENT_FILE_NAMES and _looks_like_experiment(file)
    )
    if lookalikes:
        return (
            f"has no experiment.yaml, but {', '.join(lookalikes[:3])} look like experiment files: "
            "an experiment is named experiment.yaml, one to a folder (its configs/ are "
            "generated beside it); move each into a folder of its own"
        )
    return "has no experiment.yaml: give an experiment.yaml or the folder that holds one"


def _looks_like_experiment(file: Path) -> bool:
    from ..reading import NotReadable, read_bounded

    try:
        head = read_bounded(file, start=4096)
    except (OSError, NotReadable):
        return False
    return head.startswith(b"experiment:") or b"\nexperiment:" in head


def load_experiment(path: Path, max_runs: int | None = None) -> Experiment:
    """Read and check an experiment file, including the run limit.

    Args:
        path: An ``experiment.yaml`` or the folder that holds one.
        max_runs: More runs than this is an error, raised before any other work; ``None``: the
            experiment's own ``experiment.max_runs``, else :data:`DEFAULT_MAX_RUNS`.

    Raises:
        ConfigWriterError: any rule of the format is broken; the message points at the line.
    """
    doc = read_experiment_document(path)
    path = doc.path
    data = doc.data
    if not isinstance(data, dict):
        kind = "an empty file" if data is None else a_type_name(data)
        raise doc.error(
            f"expected the experiment sections (experiment:, variables:, ...), found {kind}"
        )
    for keypath in misplaced_replace(data):  # taken as written there, silently: refused
        if keypath[:1] not in (("launch",), ("evaluation",)):  # said as all forms are, below
            raise misplaced_replace_error(doc, keypath)
    # Each part is checked on its own, so that independent mistakes are reported together.
    found = ErrorList()
    unknown = found.attempt(partial(reject_unknown_keys, doc, data, _SECTIONS, (), "section"), 1)
    if unknown is not None and not {"experiment", "framework_config"} <= data.keys():
        found.raise_found()  # a misspelt section, not also the section that is then missing
    name, own_limit = found.attempt(partial(_read_meta, doc, data), ("", None))
    base_key, base_value, recipe = found.attempt(
        partial(_read_framework_config, doc, data), ("", "", None)
    )
    output_name, base_dir = found.attempt(partial(_read_output, doc, data, name), (name, None))
    variables = found.attempt(partial(_read_section, doc, data, "variables"), ())
    controls = found.attempt(partial(_read_section, doc, data, "controls"), ())
    for taken_as_written in ("launch", "evaluation"):
        value = data.get(taken_as_written)
        found.attempt(partial(_no_config_forms, doc, value, (taken_as_written,)), None)
    launch = found.attempt(partial(_read_launch, doc, data), Launch())
    evaluation = found.attempt(partial(read_evaluation, doc, data.get("evaluation")), None)
    found.attempt(partial(check_variables_are_not_controls, doc, variables, controls), None)
    found.raise_found()
    limit = max_runs if max_runs is not None else own_limit or DEFAULT_MAX_RUNS
    # Before any work: a grid that excluding could not bring under the limit, a sample larger.
    search = data.get("search")
    wanted = search.get("random") if isinstance(search, dict) else None
    if isinstance(wanted, int) and wanted > limit:
        raise doc.error(
            f"search.random asks for {wanted:,} runs, more than the limit of {limit:,}: ask for "
            "fewer, or raise the limit with experiment.max_runs",
            ("search", "random"),
        )
    if search is None and run_count(variables) > max(limit, _MAX_GRID if "exclude" in data else 0):
        _too_many(doc, run_count(variables), variables, limit)
    design = read_design(doc, data, variables)

    experiment = Experiment(
        path=path,
        name=name,
        base_config=base_value if base_key == "base_config" else None,
        base_config_file=base_value if base_key == "base_config_file" else None,
        variables=design.variables,
        controls=controls,
        output_name=output_name,
        output_base_dir=base_dir,
        document=doc,
        recipe=recipe,
        launch=launch,
        design=design,
        evaluation=evaluation,
    )
    if experiment.run_count > limit:
        _too_many(doc, experiment.run_count, experiment.variables, limit)
    return experiment


def _too_many(doc: Document, count: int, variables: tuple[Parameter, ...], limit: int) -> NoReturn:
    sizes = " × ".join(str(len(axis[0].values)) for axis in linked_axes(variables, lambda v: v))
    raise doc.error(
        f"the variables give {count:,} runs ({sizes}), more than the limit of "
        f"{limit:,}: sweep fewer values, or raise the limit with experiment.max_runs in this "
        "file (which check, the hook and the Action read too) or --max-runs",
        ("variables",),
    )


def _read_meta(doc: Document, data: dict[str, Any]) -> tuple[str, int | None]:
    """The ``experiment:`` section's name and run limit, every key checked."""
    meta = section(doc, data, "experiment", required=True)
    found = ErrorList()
    found.attempt(
        partial(reject_unknown_keys, doc, meta, _EXPERIMENT_KEYS, ("experiment",), "key"), None
    )
    name = found.attempt(partial(_read_name, doc, meta), "")
    found.attempt(partial(_check_framework, doc, meta), None)
    for key in ("question", "hypothesis", "researcher", "date"):
        if key in meta and not isinstance(meta[key], (str, type(None))):
            found.add(
                doc.error(f"experiment.{key} must be text; put it in quotes", ("experiment", key))
            )
    tags = meta.get("tags")
    if tags is not None and not (
        isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
    ):
        found.add(
            doc.error(
                'experiment.tags must be a list of text, e.g. ["lora", "llama3"]',
                ("experiment", "tags"),
            )
        )
    own = meta.get("max_runs")
    if own is not None and (isinstance(own, bool) or not isinstance(own, int) or own < 1):
        found.add(
            doc.error(
                "experiment.max_runs must be a whole number of at least 1",
                ("experiment", "max_runs"),
            )
        )
    found.raise_found()
    return name, own


def _read_name(doc: Document, meta: dict[str, Any]) -> str:
    name = required_string(doc, meta, ("experiment", "name"))
    _check_safe_name(doc, name, ("experiment", "name"))
    return name


def _check_framework(doc: Document, meta: dict[str, Any]) -> None:
    framework = required_string(doc, meta, ("experiment", "framework"))
    if framework.lower() == "torchtune" and framework != "torchtune":
        raise doc.error(
            "write the framework in lower case: framework: torchtune", ("experiment", "framework")
        )
    if framework != "torchtune":
        planned = " is planned but" if framework in _FRAMEWORKS_PLANNED else ""
        raise doc.error(
            f"framework '{framework}'{planned} is not supported: multi-framework support is not "
            "in this version; set framework: torchtune",
            ("experiment", "framework"),
        )


def _read_framework_config(doc: Document, data: dict[str, Any]) -> tuple[str, str, str | None]:
    """Which base key is given, its value, and the recipe."""
    framework_config = section(doc, data, "framework_config", required=True)
    found = ErrorList()
    found.attempt(
        partial(
            reject_unknown_keys,
            doc,
            framework_config,
            _FRAMEWORK_CONFIG_KEYS,
            ("framework_config",),
            "key",
        ),
        None,
    )
    base = found.attempt(partial(_read_base, doc, framework_config), ("", ""))
    recipe = found.attempt(partial(_recipe, doc, framework_config), None)
    found.raise_found()
    return *base, recipe


def _read_base(doc: Document, framework_config: dict[str, Any]) -> tuple[str, str]:
    given = [key for key in _BASE_KEYS if framework_config.get(key) is not None]
    if len(given) != 1:
        problem = "has both" if given else "needs one of"
        raise doc.error(
            f"framework_config {problem} base_config (a torchtune recipe config, see "
            "`torchtune-config-writer recipes`) and base_config_file (a path): give exactly one",
            ("framework_config", *given[1:]),
        )
    return given[0], required_string(doc, framework_config, ("framework_config", given[0]))


def _read_output(doc: Document, data: dict[str, Any], name: str) -> tuple[str, str | None]:
    """``output.experiment_name`` (else ``name``) and ``output.base_dir``."""
    output = section(doc, data, "output", required=False)
    reject_unknown_keys(doc, output, _OUTPUT_KEYS, ("output",), "key")
    output_name = name
    if output.get("experiment_name") is not None:
        output_name = required_string(doc, output, ("output", "experiment_name"))
        _check_safe_name(doc, output_name, ("output", "experiment_name"))
    base_dir = None
    if output.get("base_dir") is not None:
        base_dir = required_string(doc, output, ("output", "base_dir"))
    return output_name, base_dir


# {name} outside ${...} and {{...}}: a placeholder, which only config values take.
_PLACEHOLDER = re.compile(r"(?<![{$])\{[A-Za-z_][A-Za-z0-9_.]*\}(?!\})")


def _no_config_forms(doc: Document, value: Any, keypath: KeyPath) -> None:
    """``!replace``, ``~key``, ``+key`` and ``{placeholders}`` work on config values (controls,
    variables, conditions); in launch and evaluation they would be taken as written."""
    where = (
        "works on config values (controls, variables, conditions), not in "
        f"{keypath[0]}, where it would be taken as written"
    )
    if isinstance(value, Replace):
        raise doc.error(f"!replace {where}: drop the tag", keypath)
    if isinstance(value, dict):
        for key, inner in value.items():
            if isinstance(key, str) and key[:1] in ("~", "+") and len(key) > 1:
                raise doc.error(f"{key[0]}key {where}: write {key[1:]}", (*keypath, key))
            _no_config_forms(doc, inner, (*keypath, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _no_config_forms(doc, inner, (*keypath, index))
    elif isinstance(value, str) and (found := _PLACEHOLDER.search(value)):
        raise doc.error(f"{found[0]}: a placeholder {where}; write the value itself", keypath)


def _read_launch(doc: Document, data: dict[str, Any]) -> Launch:
    return read_launch(doc, section(doc, data, "launch", required=False))


def _read_section(doc: Document, data: dict[str, Any], name: str) -> tuple[Parameter, ...]:
    return read_parameters(doc, section(doc, data, name, required=False), name)


def _check_size(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigWriterError(f"cannot read: {exc.strerror or exc}", path) from None
    if size > MAX_EXPERIMENT_BYTES:
        raise ConfigWriterError(
            f"is {size / 2**20:.1f} MiB, more than the {MAX_EXPERIMENT_BYTES // 2**20} MiB an "
            "experiment file may be: split the study into several experiment folders",
            path,
        )


def _recipe(doc: Document, framework_config: dict[str, Any]) -> str | None:
    if framework_config.get("recipe") is None:
        return None
    recipe = required_string(doc, framework_config, ("framework_config", "recipe"))
    if not RECIPE.fullmatch(recipe):
        raise doc.error(
            f"framework_config.recipe '{recipe}' is neither a torchtune recipe name (such as "
            "lora_finetune_single_device, see `torchtune-config-writer recipes`) nor a .py "
            "file relative to the experiment's folder (letters, digits, '_', '-', '.', '/')",
            ("framework_config", "recipe"),
        )
    if ".." in recipe.split("/"):
        # Commands run from the experiment's folder, which a timestamped folder copies.
        raise doc.error(
            f"framework_config.recipe {recipe} leads out of the experiment's folder: keep the "
            "recipe file in it (e.g. recipes/my_recipe.py), so that its commands work wherever "
            "the folder is copied",
            ("framework_config", "recipe"),
        )
    return recipe


def _check_safe_name(doc: Document, name: str, keypath: KeyPath) -> None:
    foreign = next((char for char in name if not char.isascii()), None)
    if foreign is not None:
        raise doc.error(
            f"{dotted(keypath)} '{name}' becomes a folder name and has '{foreign}', which is not "
            "ASCII: use ASCII letters, digits, '.', '_' and '-' only (e.g. "
            f"'{_ascii_spelling(name)}')",
            keypath,
        )
    if not _SAFE_NAME.fullmatch(name):
        raise doc.error(
            f"{dotted(keypath)} '{name}' becomes a folder name: use letters, digits, "
            "'.', '_' and '-' only, starting with a letter or digit",
            keypath,
        )


def _ascii_spelling(name: str) -> str:
    """``étude`` as ``etude``: the accents dropped, anything else not ASCII as ``_``."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]", "_", plain) or "study"


def misplaced_replace_error(doc: Document, keypath: KeyPath) -> ConfigWriterError:
    """The error of a ``!replace`` at ``keypath``, where :func:`misplaced_replace` found it."""
    return doc.error(
        f"{REPLACE_TAG} works on config values (under controls, variables, conditions and "
        f"exclude), not on {dotted(keypath) or 'the file'}: drop the tag",
        keypath,
    )


def misplaced_replace(data: Any) -> Iterator[KeyPath]:
    """Where a ``!replace`` mapping stands outside a config value: on a section, a linked group,
    a rule, or anywhere in ``launch`` and ``evaluation`` (docs/experiment-format.md's table).

    A config value is a control's value, a variable's value (in a linked group too), and a
    condition's ``set`` or a rule's value (which matches a variable's value), at any depth.
    """

    def walk(value: Any, keypath: KeyPath) -> Iterator[KeyPath]:
        if _is_config_value(data, keypath):
            return
        if isinstance(value, Replace):
            yield keypath
        if isinstance(value, dict):
            for key, inner in value.items():
                yield from walk(inner, (*keypath, key))
        elif isinstance(value, list):
            for index, inner in enumerate(value):
                yield from walk(inner, (*keypath, index))

    return walk(data, ())


def _is_config_value(data: Any, keypath: KeyPath) -> bool:
    match keypath:
        case ("controls", _, *_) | ("exclude", int(), _, *_):
            return True
        case ("conditions", int(), "set" | "when", _, *_):
            return True
        case ("variables", str(name), *inside) if inside:
            entry = data["variables"][name]
            # A variable's values, or a linked group member's values (a range has none).
            return isinstance(entry, list) or (
                isinstance(entry, dict)
                and len(inside) >= 2
                and isinstance(entry.get(inside[0]), list)
            )
    return False
