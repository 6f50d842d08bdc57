"""Every YAML setting of the tool: read as torchtune reads, write what it reads back exactly.

torchtune loads configs with ``OmegaConf.load``, whose loader differs from PyYAML's safe loader in
two ways that change values: ``3e-4`` is a float (YAML 1.1 wants a dot), and dates stay strings.
The loader here follows those rules (tests compare it with OmegaConf on every recipe config), and
also refuses duplicate keys and alias bombs and keeps the position of every key for messages.
The dumper quotes every string that either loader would read as something else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigWriterError
from .yaml_safety import MAX_DEPTH as _MAX_DEPTH
from .yaml_safety import REPLACE_TAG, check_nodes, deep_flow_offset

try:  # libyaml's parser and emitter; the constructors and representers stay Python.
    from yaml import CSafeDumper as _SafeDumper
    from yaml import CSafeLoader as _SafeLoader

    _LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

    _LIBYAML = False

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """``("model", "lora_rank")`` as ``model.lora_rank``."""
    return ".".join(str(part) for part in path)


def leaves(node: Any, keypath: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every value inside mappings and lists that is neither, with its key path, in file order."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*keypath, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*keypath, index))
    else:
        yield keypath, node


# OmegaConf 2.4's float rule (omegaconf/_yaml.py): exponent without a dot is a float.
_OMEGACONF_FLOAT = re.compile(
    r"""^(?:
     [-+]?[0-9]+(?:_[0-9]+)*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?:[eE][-+]?[0-9]+)
    |\.[0-9]+(?:_[0-9]+)*(?:[eE][-+][0-9]+)?
    |[-+]?[0-9]+(?:_[0-9]+)*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
# OmegaConf 2.3's looser rule: the dumper quotes anything that it too would read as a float.
_OMEGACONF_23_FLOAT = re.compile(
    r"""^(?:
     [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_FLOAT_TAG = "tag:yaml.org,2002:float"
_FLOAT_FIRST = list("-+0123456789.")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

# Wide enough that no value is ever folded onto a second line.
_WIDTH = 2**31 - 1  # libyaml keeps the width in a C int


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


_Loader.add_implicit_resolver(_FLOAT_TAG, _OMEGACONF_FLOAT, _FLOAT_FIRST)
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


class FlowMapping(dict[Any, Any]):
    """A mapping written on one line, ``{a: 1, b: 2}`` (run parameters in ``run_mapping.yaml``)."""


class _Dumper(_SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # A base that repeats a block with YAML aliases is written out in full, not as &id001.
        return True


# The timestamp resolver stays: a date-like string is quoted, which every reader agrees on.
_Dumper.add_implicit_resolver(_FLOAT_TAG, _OMEGACONF_FLOAT, _FLOAT_FIRST)
_Dumper.add_implicit_resolver(_FLOAT_TAG, _OMEGACONF_23_FLOAT, _FLOAT_FIRST)


def _represent_dict(dumper: _Dumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping(_MAP_TAG, data, flow_style=False)


def _represent_flow_dict(dumper: _Dumper, data: dict[Any, Any]) -> yaml.Node:
    return dumper.represent_mapping(_MAP_TAG, data, flow_style=True)


def _represent_list(dumper: _Dumper, data: list[Any]) -> yaml.Node:
    # [q_proj, v_proj] on one line, as torchtune's configs write them; lists of mappings as blocks.
    flat = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence(_SEQ_TAG, data, flow_style=flat)


def _represent_replace(dumper: _Dumper, data: Replace) -> yaml.Node:
    return dumper.represent_mapping(REPLACE_TAG, data, flow_style=True)


_Dumper.add_representer(dict, _represent_dict)
_Dumper.add_representer(FlowMapping, _represent_flow_dict)
_Dumper.add_representer(Replace, _represent_replace)
_Dumper.add_representer(list, _represent_list)


_LINE_BREAKS = "\n\r\x85\u2028\u2029"


class _InlineDumper(_Dumper):
    pass


def _represent_inline_str(dumper: _InlineDumper, data: str) -> yaml.Node:
    # Double quotes escape every line break YAML knows, so the value stays on one line.
    style = '"' if any(char in data for char in _LINE_BREAKS) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_InlineDumper.add_representer(dict, _represent_flow_dict)
_InlineDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence(_SEQ_TAG, data, flow_style=True)
)
_InlineDumper.add_representer(str, _represent_inline_str)
_InlineDumper.add_representer(Replace, _represent_replace)


def dump_yaml(data: Any) -> str:
    """Render ``data`` as block YAML that OmegaConf reads back to exactly ``data``.

    Keys keep their order; lists of scalars are written on one line. The bytes are PyYAML's
    (a test holds them equal): a mapping is written line by line from the YAML of each key and
    value, which a sweep repeats thousands of times and PyYAML renders once each.
    """
    if type(data) is not dict or not data:
        return _pyyaml_dump(data)
    out: list[str] = []
    for key, value in data.items():
        # A block mapping is the concatenation of its entries: one that is not a plain tree of
        # one-line values (a list of mappings, a multi-line string) is PyYAML's, whole.
        written = len(out)
        if not _write_entry(key, value, "", out):
            del out[written:]
            out.append(_pyyaml_dump({key: value}))
    return "".join(out)


def _pyyaml_dump(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=_WIDTH,
        default_flow_style=False,
    )
    return text


def _write_entry(key: Any, value: Any, indent: str, out: list[str]) -> bool:
    """Append ``key: value`` at ``indent`` as PyYAML writes it; False where it is not a mapping
    of mappings and one-line values (the caller lets PyYAML write the whole entry)."""
    key_text = _key_text(key)
    if key_text is None:
        return False
    if type(value) is dict and value:
        out.append(f"{indent}{key_text}:\n")
        inner = indent + "  "
        return all(_write_entry(k, v, inner, out) for k, v in value.items())
    text = _value_text(value)
    if text is None:
        return False
    out.append(f"{indent}{key_text}: {text}\n")
    return True


_SCALAR = (str, int, bool, type(None))
# Strings PyYAML writes as they are, in block and flow context: no indicator or quote anywhere,
# spaces only inside (the resolvers are asked too: `true`, `1e-3` and `null` are quoted).
_PLAIN = re.compile(r"[A-Za-z0-9_/](?:[A-Za-z0-9_./ -]*[A-Za-z0-9_./-])?")
# What PyYAML writes for a key and a value, in a block and in a flow mapping, by cache key;
# None where it takes more than one line. A string key is its own cache key.
_KEY_TEXT: dict[Any, str | None] = {}
_VALUE_TEXT: dict[Any, str | None] = {}
_FLOW_KEY_TEXT: dict[Any, str | None] = {}
_FLOW_VALUE_TEXT: dict[Any, str | None] = {}
_INLINE_TEXT: dict[Any, str | None] = {}
_TEXTS_LIMIT = 65536


def _key_of(value: Any) -> Any:
    """A cache key that tells apart what ``==`` does not: ``1``, ``1.0``, ``True``, ``-0.0``.

    Raises:
        TypeError: a value not cached (a mapping, a tag).
    """
    kind = type(value)
    if kind is float:
        return (float, repr(value))
    if kind in _SCALAR:
        return (kind, value)
    if kind is list:
        return (list, *map(_key_of, value))
    if kind is FlowMapping:
        return (FlowMapping, *((_key_of(k), _key_of(v)) for k, v in value.items()))
    if kind is dict and not value:
        return (dict,)
    raise TypeError(kind)


def _cached(cache: dict[Any, str | None], key: Any, render: Callable[[], str | None]) -> str | None:
    """``render()``, once per key while the cache holds it."""
    if key not in cache:
        if len(cache) >= _TEXTS_LIMIT:
            cache.clear()
        cache[key] = render()
    return cache[key]


def _one_line(data: dict[Any, Any], start: str, end: str) -> str | None:
    """PyYAML's line for the one-entry mapping ``data``, between ``start`` and ``end``; None
    where it is not one line of that form."""
    text = _pyyaml_dump(data)
    # YAML breaks lines at more than \n, and indents after each break to the column it is at.
    if text.count("\n") != 1 or any(mark in text for mark in _LINE_BREAKS[1:]):
        return None
    line = text.removesuffix("\n")
    if not line.startswith(start) or not line.endswith(end):
        return None
    return line[len(start) : len(line) - len(end)]


def _key_text(key: Any) -> str | None:
    try:
        cache_key = key if type(key) is str else _key_of(key)
    except TypeError:
        return None
    return _cached(_KEY_TEXT, cache_key, lambda: _one_line({key: None}, "", ": null"))


def _flow_key_text(key: Any) -> str | None:
    try:
        cache_key = _key_of(key)
    except TypeError:
        return None
    return _cached(
        _FLOW_KEY_TEXT,
        cache_key,
        lambda: _one_line({"k": FlowMapping({key: None})}, "k: {", ": null}"),
    )


def _value_text(value: Any, flow: bool = False) -> str | None:
    """What follows ``key: `` for a one-line value (in a flow mapping when ``flow``), or None."""
    kind = type(value)
    if kind is str and _PLAIN.fullmatch(value) and not _resolves(value):
        return str(value)  # most strings of a sweep are new (an output folder per run)
    if kind is int:
        return str(value)  # PyYAML's representer: `str(data)`, always plain
    try:
        key = _key_of(value)
    except TypeError:
        return None
    if kind is FlowMapping and value:
        return _flow_mapping_text(value)
    if flow:
        return _cached(
            _FLOW_VALUE_TEXT,
            key,
            lambda: _one_line({"k": FlowMapping({"k": value})}, "k: {k: ", "}"),
        )
    return _cached(_VALUE_TEXT, key, lambda: _one_line({"k": value}, "k: ", ""))


def _flow_mapping_text(mapping: FlowMapping) -> str | None:
    """``{a: 1, b: [x, y]}``: each key and value as PyYAML writes them inside a flow mapping."""
    parts = []
    for key, value in mapping.items():
        key_text = _flow_key_text(key)
        value_text = _value_text(value, flow=True)
        if key_text is None or key_text.startswith("?") or value_text is None:
            return None  # a complex key (`? key : value`), a value of more than one line
        parts.append(f"{key_text}: {value_text}")
    return "{" + ", ".join(parts) + "}"


def _resolves(text: str) -> bool:
    """Whether a reader would take the plain string ``text`` for another type."""
    resolvers = _Dumper.yaml_implicit_resolvers
    candidates = (*resolvers.get(text[0], ()), *resolvers.get(None, ()))
    return any(pattern.match(text) for _, pattern in candidates)


def dump_inline(value: Any) -> str:
    """One value on one line, as YAML flow syntax (for comments and messages)."""
    try:
        key = _key_of(value)
    except TypeError:
        return _dump_inline(value)
    text = _cached(_INLINE_TEXT, key, lambda: _dump_inline(value))
    assert text is not None  # _dump_inline always gives text
    return text


def _dump_inline(value: Any) -> str:
    text: str = yaml.dump(
        value, Dumper=_InlineDumper, sort_keys=False, allow_unicode=True, width=_WIDTH
    )
    # A lone scalar ends with a document-end marker; neither it nor the newline belongs inline.
    return text.removesuffix("\n").removesuffix("\n...")


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
