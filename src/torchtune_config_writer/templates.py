"""Values that depend on the run: ``{run_id}`` and ``{name}`` of a variable inside strings.

``output_dir: /scratch/{run_id}`` and ``data_files: /data/train_{sample_size}.json`` are filled in
for each run. OmegaConf's ``${...}`` interpolations are copied as written, and ``{{name}}`` writes
a literal ``{name}``. Only strings of the experiment file are filled, never the base config's.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from .yaml_io import KeyPath, dump_inline, leaves

if TYPE_CHECKING:
    from .experiment import Experiment
    from .parameters import Placement

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


def needs_filling(value: Any) -> bool:
    """Whether ``value`` holds a placeholder or an escaped one anywhere inside."""
    return any(parse(text) != (text,) for _, text in _strings(value))


def placeholders(value: Any) -> Iterator[tuple[KeyPath, str]]:
    """Every placeholder name inside ``value``, with the key path of its string."""
    for path, text in _strings(value):
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
        return {key: fill(item, texts) for key, item in value.items()}
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
    return dump_inline(value)


def check_placeholders(experiment: Experiment, placements: tuple[Placement, ...]) -> None:
    """Every placeholder names ``run_id`` or a variable whose values read as one word.

    Raises:
        ConfigWriterError: a placeholder naming nothing (with a did-you-mean), a control, a
            variable whose values are lists or mappings, or one whose values hold placeholders.
    """
    variables = {p.parameter.name.lstrip("+"): p for p in placements if p.section == "variables"}
    if RUN_ID in variables:
        raise experiment.error(
            "a variable may not be named run_id: {run_id} is each run's id (run_000, ...)",
            variables[RUN_ID].parameter.keypath,
        )
    known = [RUN_ID, *variables]
    for placement in placements:
        parameter = placement.parameter
        for index, value in enumerate(parameter.values):
            at = (
                (*parameter.keypath, index)
                if placement.section == "variables"
                else parameter.keypath
            )
            for inner, name in placeholders(value):
                keypath = (*at, *inner)
                if name == RUN_ID:
                    continue
                named = variables.get(name)
                if named is None:
                    raise experiment.error(_names_nothing(name, known, placements), keypath)
                if named is placement:
                    raise experiment.error(
                        f"{{{name}}} is inside a value of {name} itself: a variable's value "
                        "cannot contain itself",
                        keypath,
                    )
                for other in named.parameter.values:
                    if text_of(other) is None:
                        raise experiment.error(
                            f"{{{name}}}: {name} has the value {dump_inline(other)}, which cannot "
                            "go into a string; only text, numbers and true/false can",
                            keypath,
                        )
                    if needs_filling(other):
                        raise experiment.error(
                            f"{{{name}}}: the values of {name} hold placeholders themselves; "
                            "write the placeholders they use here directly",
                            keypath,
                        )


def _names_nothing(name: str, known: list[str], placements: tuple[Placement, ...]) -> str:
    controls = {p.parameter.name.lstrip("+") for p in placements if p.section == "controls"}
    if name in controls:
        problem = f"{name} is a control, the same in every run: write its value instead"
    else:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean {{{close[0]}}}? " if close else ""
        problem = f"{hint}placeholders name run_id or a variable ({', '.join(known[1:]) or 'none'})"
    return f"{{{name}}} names no variable: {problem}; write {{{{{name}}}}} for a literal {{{name}}}"


def check_interpolations(experiment: Experiment, placements: tuple[Placement, ...]) -> None:
    """Every string the runs get loads with OmegaConf, which refuses a whole file for one
    half-open ``${``: refused here, at its line, instead of in ``tune run``.

    Run after :func:`check_placeholders` (every placeholder names a variable).
    """
    texts = {
        p.parameter.name.lstrip("+"): list(
            dict.fromkeys(text_of(v) or "" for v in p.parameter.values)
        )
        for p in placements
        if p.section == "variables"
    }
    for placement in placements:
        parameter = placement.parameter
        for index, value in enumerate(parameter.values):
            at = (
                (*parameter.keypath, index)
                if placement.section == "variables"
                else parameter.keypath
            )
            for inner, text in _strings(value):
                for written in _as_written(text, texts):
                    problem = interpolation_problem(written)
                    if problem is not None:
                        raise experiment.error(
                            f"{written!r} is not an interpolation OmegaConf can read "
                            f"({problem}): close it as ${{key}}, or write \\${{ for a literal ${{",
                            (*at, *inner),
                        )


def _as_written(text: str, texts: Mapping[str, list[str]]) -> Iterator[str]:
    """The strings ``text`` becomes in the runs, as far as OmegaConf can tell them apart.

    A placeholder's text matters only if it holds ``$``, ``{`` or ``}`` (which could open or
    close an interpolation with what surrounds it); any other text stands in for all.
    """
    parts = parse(text)
    if parts == (text,):
        yield text
        return
    choices = [
        [part]
        if not isinstance(part, Placeholder)
        else [t for t in texts[part] if _BRACES.search(t)] or ["x"]
        if part in texts
        else ["x"]  # run_id
        for part in parts
    ]
    for combination in itertools.product(*choices):
        yield "".join(combination)


_BRACES = re.compile(r"[${}]")
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
    from omegaconf.errors import GrammarParseError  # its parser only for the rare hard case
    from omegaconf.grammar_parser import parse as parse_grammar

    try:
        parse_grammar(text)
    except GrammarParseError as exc:
        return str(exc).splitlines()[0]
    return None


def _strings(value: Any) -> Iterator[tuple[KeyPath, str]]:
    return ((path, leaf) for path, leaf in leaves(value) if isinstance(leaf, str))
