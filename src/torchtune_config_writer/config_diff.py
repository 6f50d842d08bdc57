"""What differs between two configs, key path by key path: the one comparison behind ``show``
(a run against its base) and ``diff`` (a run's config at a commit against the working tree).

The rules, and why:

- **Mappings are looked into**, key by key; their key order does not matter (torchtune reads a
  mapping by key). An empty mapping is a value of its own (``{}``), so a new one still shows.
- **A list is one value**: a merge replaces a list whole, and ``[q_proj, v_proj]`` reads as one
  setting. The exception is a list *merged into*: two lists of one length whose items are each
  the same or a mapping that kept every key it had. That is how an experiment changes one
  (``dataset.0.packed: true``), so such lists are compared item by item (``dataset.0.packed``);
  any other change to a list (a new length, an item replaced, a key gone from an item) shows
  the list whole.
- **A mapping on one side only** where the other side has another kind of value (a scalar, a
  list) is one change of the whole value (``model: 5 → {a: 1}``), not a value gone and keys
  added.
- **A key path one side lacks** has :data:`MISSING` there. A mapping on the other side is looked
  into (each of its leaves is new, or gone); anything else is one value.
- **Equal means equal and of one type** (:func:`same`): ``1``, ``1.0`` and ``true`` are three
  different configs (YAML reads an int, a float and a bool, and torchtune passes each on as
  it is), while ``.nan`` equals ``.nan`` (a config that sets it twice did not change).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from .keypaths import KeyPath, dotted


class _Missing:
    """The type of :data:`MISSING`: one instance, never equal to a value of a config."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""No value at a key path: the key is not there (compare with ``is``)."""


@dataclass(frozen=True)
class Difference:
    """One key path whose value differs.

    Attributes:
        keypath: Where in the config (``("dataset", 0, "packed")``).
        old: The value in the first config, :data:`MISSING` where it has none.
        new: The value in the second config, :data:`MISSING` where it has none.
    """

    keypath: KeyPath
    old: Any
    new: Any


def same(a: Any, b: Any) -> bool:
    """Whether two config values are the same value.

    Equal and of one type, all the way down: ``1``, ``1.0`` and ``True`` differ from each other
    (and ``[1]`` from ``[1.0]``); NaN is the same as NaN; a mapping's key order does not count,
    a list's order does. :data:`MISSING` is the same only as itself.
    """
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def flatten(config: Any, keypath: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """The values of a config by key path, in the config's order, as the rules above read them.

    A non-empty mapping is looked into; anything else (a scalar, a list whatever it holds, an
    empty mapping) is one value.

    Args:
        config: A config, or any value in one.
        keypath: Where ``config`` is (prefixed to every key path).
    """
    if isinstance(config, dict) and config:
        for key, value in config.items():
            yield from flatten(value, (*keypath, key))
    else:
        yield keypath, config


def differences(old: Any, new: Any, keypath: KeyPath = ()) -> Iterator[Difference]:
    """Every key path where ``new`` differs from ``old``: in ``new``'s order, then the key paths
    only ``old`` has.

    Args:
        old: A config (or any value, or :data:`MISSING`).
        new: The config to compare with it.
        keypath: Where the two values are (prefixed to every key path).
    """
    if old is new:  # a merge shares everything it does not change: most of a run's keys
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in new.items():
            yield from differences(old.get(key, MISSING), value, (*keypath, key))
        for key, value in old.items():
            if key not in new:
                yield from differences(value, MISSING, (*keypath, key))
    elif old is MISSING:
        yield from (Difference(path, MISSING, value) for path, value in flatten(new, keypath))
    elif new is MISSING:
        yield from (Difference(path, value, MISSING) for path, value in flatten(old, keypath))
    elif _merged_into(old, new):
        for index, (was, now) in enumerate(zip(old, new, strict=True)):
            yield from differences(was, now, (*keypath, index))
    elif not same(old, new):
        yield Difference(keypath, old, new)


def json_value(value: Any) -> Any:
    """A value as JSON reports write it: ``null`` for :data:`MISSING` (their ``absent_*`` fields
    tell it from a ``null`` the config holds)."""
    return None if value is MISSING else value


def change_json(keypath: KeyPath, old: Any, new: Any) -> dict[str, Any]:
    """One change as ``show --format json`` and ``diff --format json`` both write it: ``key``
    (dotted), ``path`` (its keys and list indexes), ``before``, ``after``, ``absent_before`` and
    ``absent_after``."""
    return {
        "key": dotted(keypath),
        "path": list(keypath),
        "before": json_value(old),
        "after": json_value(new),
        "absent_before": old is MISSING,
        "absent_after": new is MISSING,
    }


def _merged_into(old: Any, new: Any) -> bool:
    """Whether ``new`` is the list ``old`` with only its mappings merged into: each item the
    same, or a mapping that kept every key it had."""
    if not (isinstance(old, list) and isinstance(new, list) and len(old) == len(new)):
        return False
    return all(
        same(was, now)
        or (isinstance(was, dict) and isinstance(now, dict) and was.keys() <= now.keys())
        for was, now in zip(old, new, strict=True)
    )
