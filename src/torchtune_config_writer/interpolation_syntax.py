"""The interpolations of one string, read as OmegaConf's grammar reads them, without it.

What :mod:`.interpolation_bound` needs to bound their cost: the keys referred to (by ``${key}``
or a resolver that takes a key, such as ``oc.select``), how deeply nested, the resolvers that
read the environment or parse text again, and how much of the string's own text reaches the
result. Escapes count as OmegaConf counts them: ``\\${`` is literal text, ``\\\\${`` a backslash
before an interpolation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_KEY_RESOLVERS = frozenset({"oc.select", "oc.deprecated", "oc.dict.keys", "oc.dict.values"})
_DECODERS = frozenset({"oc.decode", "oc.create"})
# Where a key or a resolver's name ends (a key path keeps its brackets: ${dataset[0].source}).
_HEAD_END = frozenset("}:{$,()'\"\\ \t\n")
_SPECIAL = re.compile(r"[\\${}'\"]")  # what the scan of a string stops at
_CACHED_UP_TO = 1024  # a sweep repeats its strings; a long one is not kept alive for that
# A value that is one reference and nothing else is the node referred to: a key path may go on
# through it (``${b.x}`` with ``b: ${a}`` is ``a.x``).
WHOLE_REFERENCE = re.compile(r"\$\{\s*([^\s${}:,()'\"\\]+)\s*\}")


@dataclass(frozen=True)
class Interpolations:
    """What one string's interpolations need, read from its text.

    Attributes:
        references: Each key referred to, as written (``a.b``, ``..x``, ``dataset[0]``), by
            ``${key}`` or a resolver that takes a key (``oc.select``), with how deep in the
            string it is (1: not inside another interpolation).
        literal: Characters of the string's own that may reach the result (a reference's
            ``${...}`` does not).
        interpolations: Every ``${`` evaluated, however nested.
        environment: ``${oc.env:...}`` calls.
        decodes: ``${oc.decode:...}`` and ``${oc.create:...}`` calls, which parse text again.
        levels: The deepest nesting.
        dollar: A ``$`` of the string's own may reach the result (``\\${`` gives ``${``).
        built_key: A key made by an interpolation: ``${a.${b}}``.
        whole: The string is one interpolation, nothing around it: its value is the value
            named, not text.
    """

    references: tuple[tuple[str, int], ...]
    literal: int
    interpolations: int
    environment: int
    decodes: int
    levels: int
    dollar: bool
    built_key: bool
    whole: bool


def read_interpolations(text: str) -> Interpolations:
    """The interpolations of ``text``, as OmegaConf's grammar reads them: every one it
    evaluates is found (a malformed one, OmegaConf refuses to load at all)."""
    if len(text) > _CACHED_UP_TO:
        return _read(text)
    return _read_cached(text)


@lru_cache(maxsize=4096)
def _read_cached(text: str) -> Interpolations:
    return _read(text)


def _read(text: str) -> Interpolations:
    references: list[tuple[str, int]] = []
    interpolations = environment = decodes = levels = markup = 0
    dollar = built_key = False
    braces: list[bool] = []  # open braces: True for an interpolation's
    level = 0
    first_close = -1  # where the first interpolation at the top closes
    quote = ""
    index, size = 0, len(text)
    while (found := _SPECIAL.search(text, index)) is not None:
        index = found.start()
        char = text[index]
        if char == "\\":
            end = index
            while end < size and text[end] == "\\":
                end += 1
            if text.startswith("${", end) and (end - index) % 2 == 1:  # \${ is literal text
                dollar = True
                index = end + 2
            elif end < size and quote and text[end] == quote and (end - index) % 2 == 1:
                index = end + 1  # an escaped quote inside a quoted argument
            else:
                index = end
            continue
        if char == "$" and text.startswith("${", index):
            interpolations += 1
            level += 1
            levels = max(levels, level)
            braces.append(True)
            head, after = _head(text, index + 2)
            name = head.strip()
            if after < size and text[after] == "}":
                references.append((name, level))
                markup += after + 1 - index
            elif after < size and text[after] == ":":
                if name == "oc.env":
                    environment += 1
                elif name in _DECODERS:
                    decodes += 1
                elif name in _KEY_RESOLVERS:
                    key, end = _key_argument(text, after + 1)
                    built_key = built_key or text.startswith("${", end)
                    references.append((key, level))
            elif text.startswith("${", after):
                built_key = True
            index += 2
            continue
        if char == "$":
            dollar = True
        elif braces and char in "'\"":
            quote = "" if quote == char else quote or char
        elif not quote and char == "{":
            braces.append(False)
        elif not quote and char == "}" and braces:
            level -= braces.pop()
            if level == 0 and first_close < 0 and not braces:
                first_close = index
        index += 1
    return Interpolations(
        tuple(references),
        size - markup,
        interpolations,
        environment,
        decodes,
        levels,
        dollar,
        built_key,
        text.startswith("${") and first_close == size - 1,
    )


def _key_argument(text: str, start: int) -> tuple[str, int]:
    """The key a resolver such as ``oc.select`` takes first, quoted or not, and its end."""
    key, end = _head(text, start)
    if key or end >= len(text) or text[end] not in "'\"":
        return key, end
    close = text.find(text[end], end + 1)
    return (text[end + 1 : close], close + 1) if close > 0 else ("", end)


def _head(text: str, start: int) -> tuple[str, int]:
    """The key or resolver name from ``start`` (blanks around it skipped), and where it ends."""
    index, size = start, len(text)
    while index < size and text[index] in " \t":
        index += 1
    begin = index
    while index < size and text[index] not in _HEAD_END:
        index += 1
    end = index
    while index < size and text[index] in " \t":
        index += 1
    return text[begin:end], index
