"""Values an experiment gives that YAML or torchtune read other than a reader might expect.

They are kept (torchtune reads them the same way), but ``generate`` says so at their line, as a
careful colleague would: a warning, never a refusal.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ..experiment.load import Experiment
from ..keypaths import KeyPath
from ..yaml_read import Document
from .merge import BOOLEAN_WORDS, spells_boolean
from .placement import Placement, lookup

# The words YAML 1.1 reads as booleans unquoted (merge.BOOLEAN_WORDS) that are also words:
# ``no`` in a list of strings is read as false.
_WORDS_READ_AS_BOOLEANS = BOOLEAN_WORDS - {"true", "false"}
# A number with a leading zero: YAML 1.1 reads 010 as the octal 8.
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]+")
_TOKEN = re.compile(r"[^,\]\}\s#]+")


def surprising_readings(
    experiment: Experiment, placements: tuple[Placement, ...], base: dict[str, Any]
) -> list[str]:
    """A warning line (``FILE:LINE:COLUMN: message``) for each surprising value, in order."""
    found = []
    for placement in placements:
        old = lookup(base, placement.path)
        for at, value in placement.written():
            for inner, new, base_value in _leaves(old, value, ()):
                where = (*at, *inner)
                key = ".".join(map(str, (*placement.path, *inner)))
                said = _surprise(experiment.document, where, key, new, base_value)
                if said is not None:
                    found.append(f"{experiment.error('', where).location()}: {said}")
    return found


def _leaves(old: Any, new: Any, inner: KeyPath) -> Iterator[tuple[KeyPath, Any, Any]]:
    if isinstance(new, dict):
        for key, value in new.items():
            below = old.get(key) if isinstance(old, dict) else None
            yield from _leaves(below, value, (*inner, key))
    elif isinstance(new, list):
        for index, value in enumerate(new):
            yield from _leaves(None, value, (*inner, index))
    else:
        yield inner, new, old


def _surprise(document: Document, where: KeyPath, key: str, new: Any, old: Any) -> str | None:
    if isinstance(old, bool) and spells_boolean(new):
        return (
            f"{key} is the string {new!r} where the base has a boolean: it is written as given, "
            f"and torchtune takes any non-empty string as true (even 'no'); write {new} without "
            "quotes, or true/false, for the boolean"
        )
    token = _written(document, where)
    if token is None:
        return None
    if (
        isinstance(new, bool)
        and not isinstance(old, bool)
        and token.lower() in (_WORDS_READ_AS_BOOLEANS)
    ):
        return (
            f"{key}: {token} is read as the boolean {str(new).lower()} (YAML 1.1, as torchtune "
            f"reads it too); quote it ('{token}') if you mean the word"
        )
    if isinstance(new, int) and not isinstance(new, bool) and _LEADING_ZERO.fullmatch(token):
        decimal = int(token.replace("_", ""), 10)
        if decimal != new:
            return (
                f"{key}: {token} is read as the octal number {new} (YAML 1.1, as torchtune "
                f"reads it too); write {decimal} for ten-based, or quote it ('{token}') for text"
            )
    return None


def _written(document: Document, keypath: KeyPath) -> str | None:
    """The scalar as written at ``keypath`` (unquoted text only), or ``None``."""
    position = document.positions.get(tuple(str(part) for part in keypath))
    if position is None:
        return None
    line, column = position
    lines = document.raw.splitlines()
    if line > len(lines):
        return None
    text = lines[line - 1].decode("utf-8", errors="replace")[column - 1 :]
    if keypath and isinstance(keypath[-1], str):  # a mapping entry points at its key
        key, colon, text = text.partition(":")
        if not colon:
            return None
    text = text.lstrip()
    if text[:1] in ("'", '"', "!", "&", "*", "[", "{", "|", ">"):
        return None  # quoted, tagged or not a plain scalar: read as written
    match = _TOKEN.match(text)
    return match[0] if match else None
