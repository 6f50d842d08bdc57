"""Reading the sections of the experiment file: mappings, required text, and unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import all_of
from ..keypaths import KeyPath, dotted
from ..wording import closest
from ..yaml_read import Document, a_type_name, type_name
from ..yaml_write import dump_inline


def section(doc: Document, data: dict[str, Any], key: str, required: bool) -> dict[str, Any]:
    """The mapping under ``key`` (empty when absent and not required)."""
    value = data.get(key)
    if value is None:
        if required:
            raise doc.error(f"missing the '{key}:' section", (key,) if key in data else ())
        return {}
    if not isinstance(value, dict):
        raise doc.error(f"'{key}:' must be a mapping of keys, found {a_type_name(value)}", (key,))
    return value


def required_string(doc: Document, mapping: dict[str, Any], keypath: tuple[str, str]) -> str:
    """The non-empty text at ``keypath``."""
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


def reject_unknown_keys(
    doc: Document, mapping: Mapping[Any, Any], allowed: tuple[str, ...], keypath: KeyPath, kind: str
) -> None:
    found = []
    for key in mapping:
        if key not in allowed:
            where = f" in {dotted(keypath)}" if keypath else ""
            close = closest(str(key), allowed)
            hint = (
                f"did you mean '{close}'?"
                if close is not None
                else f"expected one of {', '.join(allowed)}"
            )
            found.append(doc.error(f"unknown {kind} '{key}'{where}: {hint}", (*keypath, key)))
    if found:
        raise all_of(found)
