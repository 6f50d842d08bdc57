"""Reading YAML as torchtune reads it, keeping the position of every key for messages.

torchtune loads configs with ``OmegaConf.load``, whose loader differs from PyYAML's safe loader in
two ways that change values: ``3e-4`` is a float (YAML 1.1 wants a dot), and dates stay strings.
The loader here follows those rules (tests compare it with OmegaConf on every recipe config), and
also refuses duplicate keys and alias bombs. What it reads is what :mod:`.yaml_write` writes for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigWriterError
from .keypaths import KeyPath
from .yaml_safety import MAX_DEPTH as _MAX_DEPTH
from .yaml_safety import REPLACE_TAG, check_nodes, deep_flow_offset

try:  # libyaml's parser; the constructors stay Python.
    from yaml import CSafeLoader as _SafeLoader

    _LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

    _LIBYAML = False

# OmegaConf 2.4's float rule (omegaconf/_yaml.py): exponent without a dot is a float.
OMEGACONF_FLOAT = re.compile(
    r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
FLOAT_TAG = "tag:yaml.org,2002:float"
FLOAT_FIRST = list("-+0123456789.")
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Loader(_SafeLoader):
    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # Checked before merge keys are expanded: an explicit key may override a merged one.
        seen: dict[tuple[str, str], yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                continue
            ident = (key_node.tag, key_node.value)
            if ident in seen:
                first = seen[ident].start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key '{key_node.value}' (first at line {first}): keep one",
                    key_node.start_mark,
                )
            seen[ident] = key_node
        super().flatten_mapping(node)


_Loader.add_implicit_resolver(FLOAT_TAG, OMEGACONF_FLOAT, FLOAT_FIRST)
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


class Replace(dict[Any, Any]):
    """A mapping written ``!replace {...}``: it replaces the base's mapping whole instead of
    merging into it (the component swap: a ConstantLR keeps none of a cosine schedule's keys)."""


def _construct_replace(loader: _Loader, node: yaml.MappingNode) -> Iterator[Replace]:
    replaced = Replace()
    yield replaced  # PyYAML's two-step construction of mappings (aliases may point here)
    replaced.update(loader.construct_mapping(node))


_Loader.add_constructor(REPLACE_TAG, _construct_replace)


def plain(value: Any) -> Any:
    """``value`` with every :class:`Replace` mapping as a plain one (what a config holds)."""
    if isinstance(value, dict):
        return {key: plain(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


@dataclass(frozen=True)
class Document:
    """A parsed YAML file: its data and the position of every key, for messages.

    Attributes:
        path: The file the document was read from.
        data: The plain Python value (dicts, lists, scalars).
        positions: 1-based (line, column) of each key path; a mapping entry points at its key.
        raw: The bytes the document was parsed from.
    """

    path: Path
    data: Any
    positions: dict[tuple[str, ...], tuple[int, int]]
    raw: bytes = b""

    def position(self, keypath: KeyPath) -> tuple[int, int] | None:
        """The position of ``keypath``, or of its nearest enclosing key that has one."""
        key = tuple(str(part) for part in keypath)
        while key:
            if key in self.positions:
                return self.positions[key]
            key = key[:-1]
        return self.positions.get(())

    def error(self, message: str, keypath: KeyPath = ()) -> ConfigWriterError:
        """A :class:`ConfigWriterError` pointing at ``keypath`` in this file."""
        pos = self.position(keypath)
        line, column = pos if pos else (None, None)
        return ConfigWriterError(message, self.path, line, column)


def load_plain(text: bytes) -> Any:
    """Parse YAML as :func:`parse_yaml` does, without keeping positions or guarding against
    alias bombs: only for text the tool wrote itself, read again.

    Raises:
        yaml.YAMLError: not YAML.
    """
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader, with OmegaConf's floats


def read_yaml_file(path: Path) -> Document:
    """Read and parse a YAML file; every failure is a :class:`ConfigWriterError`."""
    from .reading import read_bounded

    try:
        raw = read_bounded(path)
    except FileNotFoundError:
        raise ConfigWriterError("file not found", path) from None
    except IsADirectoryError:
        raise ConfigWriterError("is a folder, expected a YAML file", path) from None
    except OSError as exc:
        raise ConfigWriterError(f"cannot read: {exc.strerror}", path) from None
    return parse_yaml(raw, path)


# Parsed documents by their bytes: twenty experiments on one recipe record the same base, which
# is then parsed once. The values are shared, so nothing may modify them (merges copy).
_PARSED: dict[bytes, tuple[Any, dict[tuple[str, ...], tuple[int, int]]]] = {}
_PARSED_LIMIT = 64


def parse_yaml(raw: bytes, path: Path) -> Document:
    """Parse YAML bytes (UTF-8) as OmegaConf would, keeping key positions.

    Raises:
        ConfigWriterError: not UTF-8, not YAML, a duplicate key, an unsafe tag, an alias bomb.
    """
    cached = _PARSED.get(raw)
    if cached is not None:
        return Document(path, cached[0], cached[1], raw)
    document = _parse_yaml(raw, path)
    if len(_PARSED) >= _PARSED_LIMIT:
        _PARSED.clear()
    _PARSED[raw] = (document.data, document.positions)
    return document


def _parse_yaml(raw: bytes, path: Path) -> Document:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"not UTF-8 (byte 0x{raw[exc.start]:02x}): save the file as UTF-8"
        raise ConfigWriterError(message, path, *_line_column(raw, exc.start)) from None
    deep = deep_flow_offset(text)
    if deep is not None:
        message = f"nested more than {_MAX_DEPTH} levels deep: flatten it"
        raise ConfigWriterError(
            message, path, *_line_column(raw, len(text[:deep].encode()))
        ) from None
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return Document(path, None, {(): (1, 1)}, raw)
        check_nodes(node)
        data = loader.construct_document(node)
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of UTF-8, PyYAML's own reader characters.
        offset = exc.position if _LIBYAML else len(text[: exc.position].encode())
        message = f"the character #x{exc.character:04x} is not allowed in YAML ({exc.reason})"
        raise ConfigWriterError(f"{message}: remove it", path, *_line_column(raw, offset)) from None
    except yaml.MarkedYAMLError as exc:
        raise _tab_error(text, exc, path) or _marked_error(exc, path) from None
    finally:
        loader.dispose()
    return Document(path, data, dict(_key_positions(node)), raw)


def _line_column(raw: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of a byte offset."""
    start = raw.rfind(b"\n", 0, offset) + 1
    return raw.count(b"\n", 0, offset) + 1, len(raw[start:offset].decode("utf-8", "replace")) + 1


def _tab_error(text: str, exc: yaml.MarkedYAMLError, path: Path) -> ConfigWriterError | None:
    """A tab in the indentation of the line YAML stopped at (or the one before), said as such:
    PyYAML's "found character that cannot start any token" does not name it."""
    mark = exc.problem_mark or exc.context_mark
    if mark is None:
        return None
    lines = text.splitlines()
    for number in (mark.line, mark.line - 1):
        if 0 <= number < len(lines):
            indent = lines[number][: len(lines[number]) - len(lines[number].lstrip(" \t"))]
            if "\t" in indent:
                return ConfigWriterError(
                    "a tab in the indentation: YAML indents with spaces only; replace the tab "
                    "with spaces",
                    path,
                    number + 1,
                    indent.index("\t") + 1,
                )
    return None


def _marked_error(exc: yaml.MarkedYAMLError, path: Path) -> ConfigWriterError:
    mark = exc.problem_mark or exc.context_mark
    problem = exc.problem or exc.context or "not valid YAML"
    if "found another document" in problem:
        problem = "a second YAML document starts here, but the file must be a single document"
    elif exc.context and exc.context_mark and ("flow" in exc.context or "quoted" in exc.context):
        # An unclosed bracket or quote is noticed lines later: point where it opens.
        noticed = f", noticed at line {mark.line + 1}" if mark else ""
        what = exc.context.split(" a ", 1)[-1]  # "while parsing a flow mapping"
        problem = f"the {what} that starts here is not closed ({problem}{noticed})"
        mark = exc.context_mark
    if isinstance(exc, (yaml.scanner.ScannerError, yaml.parser.ParserError)):
        problem = f"not valid YAML: {problem}"
    line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
    return ConfigWriterError(problem, path, line, column)


def _key_positions(root: yaml.Node) -> Iterator[tuple[tuple[str, ...], tuple[int, int]]]:
    stack: list[tuple[tuple[str, ...], yaml.Node, yaml.Node]] = [((), root, root)]
    while stack:
        path, mark_node, node = stack.pop()
        yield path, (mark_node.start_mark.line + 1, mark_node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                    stack.append(((*path, key_node.value), key_node, value_node))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append(((*path, str(index)), item, item))


def type_name(value: Any) -> str:
    """The YAML word for a value's type, for messages."""
    if value is None:
        return "null"
    for kind, word in ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string")):
        if isinstance(value, kind):
            return word
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "mapping"
    return type(value).__name__


def a_type_name(value: Any) -> str:
    """``an integer``, ``a list``, ``null``: the type of a value for a sentence."""
    word = type_name(value)
    if word == "null":
        return word
    return f"an {word}" if word[0] in "aeiou" else f"a {word}"
