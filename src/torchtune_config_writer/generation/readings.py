"""Values an experiment gives that YAML or torchtune read other than a reader might expect.

They are kept (torchtune reads them the same way), but ``generate`` says so at their line, as a
careful colleague would: a warning, never a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ..experiment.load import Experiment
from ..yaml_io import KeyPath
from .placement import Placement, lookup

# The spellings YAML 1.1 (PyYAML, OmegaConf) reads as booleans when they are not quoted.
BOOLEAN_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off"})


def spells_boolean(value: Any) -> bool:
    """Whether ``value`` is a string that YAML would read as a boolean unquoted."""
    return isinstance(value, str) and value.lower() in BOOLEAN_WORDS


def surprising_readings(
    experiment: Experiment, placements: tuple[Placement, ...], base: dict[str, Any]
) -> list[str]:
    """A warning line (``FILE:LINE:COLUMN: message``) for each surprising value, in order."""
    found = []
    for placement in placements:
        old = lookup(base, placement.path)
        for at, value in placement.written():
            for inner, text in _quoted_booleans(old, value, ()):
                where = experiment.error("", (*at, *inner)).location()
                key = ".".join(map(str, (*placement.path, *inner)))
                found.append(
                    f"{where}: {key} is the string {text!r} where the base has a boolean: it is "
                    f"written as given, and torchtune takes any non-empty string as true (even "
                    f"'no'); write {text} without quotes, or true/false, for the boolean"
                )
    return found


def _quoted_booleans(old: Any, new: Any, inner: KeyPath) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in new.items():
            if key in old:
                yield from _quoted_booleans(old[key], value, (*inner, key))
    elif isinstance(old, bool) and spells_boolean(new):
        yield inner, new
