"""Writing YAML that torchtune reads back to exactly the values written.

The dumper quotes every string that either OmegaConf's loader (:mod:`.yaml_read`, OmegaConf 2.4)
or OmegaConf 2.3's would read as something else, writes lists of scalars on one line as
torchtune's configs do, and never folds a value onto a second line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import yaml

from .yaml_read import FLOAT_FIRST, FLOAT_TAG, OMEGACONF_FLOAT, Replace
from .yaml_safety import REPLACE_TAG

try:  # libyaml's emitter; the representers stay Python.
    from yaml import CSafeDumper as _SafeDumper
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeDumper as _SafeDumper  # type: ignore[assignment]

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
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"

# Wide enough that no value is ever folded onto a second line.
_WIDTH = 2**31 - 1  # libyaml keeps the width in a C int


class FlowMapping(dict[Any, Any]):
    """A mapping written on one line, ``{a: 1, b: 2}`` (run parameters in ``run_mapping.yaml``)."""


class _Dumper(_SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # A base that repeats a block with YAML aliases is written out in full, not as &id001.
        return True


# The timestamp resolver stays: a date-like string is quoted, which every reader agrees on.
_Dumper.add_implicit_resolver(FLOAT_TAG, OMEGACONF_FLOAT, FLOAT_FIRST)
_Dumper.add_implicit_resolver(FLOAT_TAG, _OMEGACONF_23_FLOAT, FLOAT_FIRST)


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


# Kept: check of 2,000 runs 0.98 s, not 1.57 s with one PyYAML dump per file (performance.md).
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
