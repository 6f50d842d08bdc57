"""The ``experiment.yaml`` format: reading it and checking every rule before any work is done."""

from __future__ import annotations

import difflib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigWriterError
from .variables import Parameter, check_variables_are_not_controls, linked_axes, read_parameters
from .yaml_io import Document, KeyPath, a_type_name, dump_inline, read_yaml_file, type_name

EXPERIMENT_FILE_NAMES = ("experiment.yaml", "experiment.yml")
DEFAULT_MAX_RUNS = 1000

_SECTIONS = ("experiment", "framework_config", "variables", "controls", "output")
_EXPERIMENT_KEYS = ("name", "framework", "question", "hypothesis", "researcher", "date", "tags")
_FRAMEWORK_CONFIG_KEYS = ("base_config", "base_config_file")
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
        """How many runs the full factorial sweep gives."""
        return math.prod(len(axis[0].values) for axis in self.axes)

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
        if len(found) != 1:
            problem = (
                "has both experiment.yaml and experiment.yml" if found else "has no experiment.yaml"
            )
            raise ConfigWriterError(f"{problem}: keep exactly one experiment file here", path)
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


def load_experiment(path: Path, max_runs: int = DEFAULT_MAX_RUNS) -> Experiment:
    """Read and check an experiment file, including the run limit.

    Args:
        path: An ``experiment.yaml`` or the folder that holds one.
        max_runs: More runs than this is an error, raised before any other work.

    Raises:
        ConfigWriterError: any rule of the format is broken; the message points at the line.
    """
    path = find_experiment_file(path)
    doc = read_yaml_file(path)
    data = doc.data
    if not isinstance(data, dict):
        found = "an empty file" if data is None else a_type_name(data)
        raise doc.error(
            f"expected the experiment sections (experiment:, variables:, ...), found {found}"
        )
    _reject_unknown_keys(doc, data, _SECTIONS, (), "section")

    meta = _section(doc, data, "experiment", required=True)
    _reject_unknown_keys(doc, meta, _EXPERIMENT_KEYS, ("experiment",), "key")
    name = _required_string(doc, meta, ("experiment", "name"))
    _check_safe_name(doc, name, ("experiment", "name"))
    framework = _required_string(doc, meta, ("experiment", "framework"))
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
    for key in ("question", "hypothesis", "researcher", "date"):
        if key in meta and not isinstance(meta[key], (str, type(None))):
            raise doc.error(f"experiment.{key} must be text; put it in quotes", ("experiment", key))
    tags = meta.get("tags")
    if tags is not None and not (
        isinstance(tags, list) and all(isinstance(tag, str) for tag in tags)
    ):
        raise doc.error(
            'experiment.tags must be a list of text, e.g. ["lora", "llama3"]',
            ("experiment", "tags"),
        )

    framework_config = _section(doc, data, "framework_config", required=True)
    _reject_unknown_keys(
        doc, framework_config, _FRAMEWORK_CONFIG_KEYS, ("framework_config",), "key"
    )
    given = [key for key in _FRAMEWORK_CONFIG_KEYS if framework_config.get(key) is not None]
    if len(given) != 1:
        problem = "has both" if given else "needs one of"
        raise doc.error(
            f"framework_config {problem} base_config (a torchtune recipe config, see "
            "`torchtune-config-writer recipes`) and base_config_file (a path): give exactly one",
            ("framework_config", *given[1:]),
        )
    base_key = given[0]
    base_value = _required_string(doc, framework_config, ("framework_config", base_key))

    output = _section(doc, data, "output", required=False)
    _reject_unknown_keys(doc, output, _OUTPUT_KEYS, ("output",), "key")
    output_name = name
    if output.get("experiment_name") is not None:
        output_name = _required_string(doc, output, ("output", "experiment_name"))
        _check_safe_name(doc, output_name, ("output", "experiment_name"))
    base_dir = None
    if output.get("base_dir") is not None:
        base_dir = _required_string(doc, output, ("output", "base_dir"))

    variables = read_parameters(doc, _section(doc, data, "variables", required=False), "variables")
    controls = read_parameters(doc, _section(doc, data, "controls", required=False), "controls")
    check_variables_are_not_controls(doc, variables, controls)

    experiment = Experiment(
        path=path,
        name=name,
        base_config=base_value if base_key == "base_config" else None,
        base_config_file=base_value if base_key == "base_config_file" else None,
        variables=variables,
        controls=controls,
        output_name=output_name,
        output_base_dir=base_dir,
        document=doc,
    )
    if experiment.run_count > max_runs:
        sizes = " × ".join(str(len(axis[0].values)) for axis in experiment.axes)
        raise doc.error(
            f"the variables give {experiment.run_count:,} runs ({sizes}), more than the limit of "
            f"{max_runs:,}: sweep fewer values, or raise the limit with --max-runs",
            ("variables",),
        )
    return experiment


def _section(doc: Document, data: dict[str, Any], key: str, required: bool) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        if required:
            raise doc.error(f"missing the '{key}:' section", (key,) if key in data else ())
        return {}
    if not isinstance(value, dict):
        raise doc.error(f"'{key}:' must be a mapping of keys, found {a_type_name(value)}", (key,))
    return value


def _required_string(doc: Document, mapping: dict[str, Any], keypath: tuple[str, str]) -> str:
    key = keypath[-1]
    value = mapping.get(key)
    dotted = ".".join(keypath)
    if value is None:
        raise doc.error(f"{dotted} is required", keypath if key in mapping else keypath[:-1])
    if not isinstance(value, str):
        raise doc.error(
            f"{dotted} must be text, found the {type_name(value)} {dump_inline(value)}", keypath
        )
    if not value.strip():
        raise doc.error(f"{dotted} is empty", keypath)
    return value


def _check_safe_name(doc: Document, name: str, keypath: KeyPath) -> None:
    if not _SAFE_NAME.fullmatch(name):
        raise doc.error(
            f"{'.'.join(map(str, keypath))} '{name}' becomes a folder name: use letters, digits, "
            "'.', '_' and '-' only, starting with a letter or digit",
            keypath,
        )


def _reject_unknown_keys(
    doc: Document, mapping: Mapping[Any, Any], allowed: tuple[str, ...], keypath: KeyPath, kind: str
) -> None:
    for key in mapping:
        if key not in allowed:
            where = f" in {'.'.join(map(str, keypath))}" if keypath else ""
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?" if close else f"expected one of {', '.join(allowed)}"
            )
            raise doc.error(f"unknown {kind} '{key}'{where}: {hint}", (*keypath, key))
