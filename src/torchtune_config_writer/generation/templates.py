"""Values that depend on the run: ``{run_id}`` and ``{name}`` of a variable inside strings.

``output_dir: /scratch/{run_id}`` and ``data_files: /data/train_{sample_size}.json`` are filled in
for each run. OmegaConf's ``${...}`` interpolations are copied as written, and ``{{name}}`` writes
a literal ``{name}``. Only strings of the experiment file are filled, never the base config's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from ..keypaths import KeyPath, leaves
from ..yaml_read import Replace
from ..yaml_write import dump_inline

RUN_ID = "run_id"

_NAME = r"[A-Za-z_][A-Za-z0-9_.]*"
# An interpolation's start, an escaped placeholder, or a placeholder.
_TOKEN = re.compile(rf"\$\{{|\{{\{{({_NAME})\}}\}}|\{{({_NAME})\}}")


class Placeholder(str):
    """The name inside ``{...}``, told apart from literal text in a parsed string."""


@lru_cache(maxsize=4096)
def parse(text: str) -> tuple[str, ...]:
    """``text`` as literal parts and :class:`Placeholder` names, in order.

    A string without placeholders or escapes parses to ``(text,)``.
    """
    parts: list[str] = []
    literal: list[str] = []
    start = 0
    while (match := _TOKEN.search(text, start)) is not None:
        literal.append(text[start : match.start()])
        if match.group(0) == "${":
            start = _interpolation_end(text, match.start())
            literal.append(text[match.start() : start])
        elif match.group(1) is not None:
            literal.append(f"{{{match.group(1)}}}")
            start = match.end()
        else:
            parts.extend(("".join(literal), Placeholder(match.group(2))))
            literal = []
            start = match.end()
    literal.append(text[start:])
    parts.append("".join(literal))
    return tuple(part for part in parts if part or isinstance(part, Placeholder)) or ("",)


def _interpolation_end(text: str, start: int) -> int:
    # ${a.b}, ${oc.env:X,${y}}: braces nest; an unclosed one runs to the end (OmegaConf's error).
    depth = 0
    for index in range(start + 1, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return len(text)


# ``{lora_rank:03d}``, ``{name!r}``: Python's format specs, which a placeholder does not take.
_FORMATTED = re.compile(rf"\{{({_NAME})[:!][^{{}}]*\}}")


def formatted_placeholders(text: str) -> list[str]:
    """The ``{name:spec}`` of ``text`` outside ``${...}`` interpolations and ``{{...}}``."""
    found = []
    for part in parse(text):
        if isinstance(part, Placeholder):
            continue
        while "${" in part:  # an interpolation's own braces are OmegaConf's
            start = part.index("${")
            part = part[:start] + part[_interpolation_end(part, start) :]
        for match in _FORMATTED.finditer(part):
            before = part[: match.start()]
            if not before.endswith(("$", "{")):
                found.append(match[0])
    return found


def needs_filling(value: Any) -> bool:
    """Whether ``value`` holds a placeholder or an escaped one anywhere inside."""
    return any(parse(text) != (text,) for _, text in strings(value))


def placeholders(value: Any) -> Iterator[tuple[KeyPath, str]]:
    """Every placeholder name inside ``value``, with the key path of its string."""
    for path, text in strings(value):
        for part in parse(text):
            if isinstance(part, Placeholder):
                yield path, str(part)


def fill(value: Any, texts: Mapping[str, str]) -> Any:
    """``value`` with every placeholder replaced by its text; parts without any are shared.

    Args:
        value: A value of the experiment file.
        texts: The text of each placeholder name in this run (see :func:`text_of`).
    """
    if isinstance(value, str):
        parts = parse(value)
        if parts == (value,):
            return value
        return "".join(texts[part] if isinstance(part, Placeholder) else part for part in parts)
    if isinstance(value, dict):
        filled = {key: fill(item, texts) for key, item in value.items()}
        return Replace(filled) if isinstance(value, Replace) else filled  # !replace stays
    if isinstance(value, list):
        return [fill(item, texts) for item in value]
    return value


def text_of(value: Any) -> str | None:
    """How a variable's value reads inside a string: ``8``, ``0.0003``, ``true``, text as is.

    ``None`` for a list or mapping, which has no one-word text.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, (list, dict)):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)  # the shortest form that reads back the same: 2e-05, not 2.0e-05
    return dump_inline(value)


# OmegaConf's own fast test for plain interpolations (omegaconf/grammar_parser.py,
# SIMPLE_INTERPOLATION_PATTERN, built the same way; a test holds them equal), copied so that a
# clean string never imports its grammar.
_KEY = r"[$\w]+"
_KEY_MAYBE_BRACKETS = f"{_KEY}|\\[{_KEY}\\]"
_NODE_PATH = f"(\\.)*({_KEY_MAYBE_BRACKETS})(\\.{_KEY_MAYBE_BRACKETS})*"
_NODE_INTER = f"\\${{\\s*{_NODE_PATH}\\s*}}"
_ID = "[a-zA-Z_][\\w\\-]*"
_ARG = r"[a-zA-Z_0-9/\-\+.$%*@?|]+"
_ARGS = f"{_ARG}(\\s*,\\s*{_ARG})*"
_RESOLVER_INTER = f"\\${{\\s*({_ID}(\\.{_ID})*)?\\s*:\\s*{_ARGS}?\\s*}}"
_OUTER = "([^$]|\\$(?!{))+"
SIMPLE_INTERPOLATION = re.compile(
    f"({_OUTER})?(({_NODE_INTER}|{_RESOLVER_INTER})({_OUTER})?)+$", flags=re.ASCII
)


def interpolation_problem(text: str) -> str | None:
    """Why OmegaConf refuses ``text`` as a value, or ``None`` if it takes it."""
    if "${" not in text or SIMPLE_INTERPOLATION.match(text):
        return None
    from omegaconf.errors import GrammarParseError  # 69 ms: only for the rare hard case
    from omegaconf.grammar_parser import parse as parse_grammar

    try:
        parse_grammar(text)
    except GrammarParseError as exc:
        return str(exc).splitlines()[0]
    return None


def strings(value: Any) -> Iterator[tuple[KeyPath, str]]:
    """Every string inside ``value``, with its key path."""
    return ((path, leaf) for path, leaf in leaves(value) if isinstance(leaf, str))
