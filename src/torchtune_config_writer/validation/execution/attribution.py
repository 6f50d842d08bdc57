"""Which key of a config makes its execution fail.

The experiment's base config is the reference: where the base runs clean, the changes from the
base to the failing config are narrowed down by executing the base with subsets of them (delta
debugging), until the smallest set that still fails the same way is left. That set is the
answer, whatever the recipe, the builder or the loss that raised: no rule of ours names it.

Where there is no base (a config on its own) or the base fails the same way, the exception is
read instead: the config node being built when it raised, an argument its message names, or a
config key that the failing line of the recipe reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from .protocol import DELETE, Edit, Outcome

KeyPath = tuple[str | int, ...]
COMPONENT = "_component_"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def changes(base: Any, config: Any, keypath: KeyPath = ()) -> list[Edit]:
    """The smallest independent edits that turn ``base`` into ``config``, in config order.

    A mapping whose ``_component_`` changed is one edit (the arguments of two components do
    not mix); a list is one edit; a key only one side has is set or deleted whole.
    """
    if isinstance(base, dict) and isinstance(config, dict):
        if base.get(COMPONENT) != config.get(COMPONENT) and keypath:
            return [(keypath, config)]
        found: list[Edit] = []
        for key, value in config.items():
            if key not in base:
                found.append(((*keypath, key), value))
            else:
                found += changes(base[key], value, (*keypath, key))
        found += [((*keypath, key), DELETE) for key in base if key not in config]
        return found
    if _same(base, config):
        return []
    return [(keypath, config)]


def _same(first: Any, second: Any) -> bool:
    """Equal and of the same type (1, 1.0 and true differ for a recipe)."""
    if type(first) is not type(second):
        return False
    if isinstance(first, dict):
        return list(first) == list(second) and all(_same(first[k], second[k]) for k in first)
    if isinstance(first, list):
        return len(first) == len(second) and all(map(_same, first, second))
    return bool(first == second)


Fails = Callable[[list[list[Edit]]], list[bool]]


def smallest_failing(edits: Sequence[Edit], fails: Fails) -> list[Edit]:
    """The smallest subset of ``edits`` whose execution still fails the same way (ddmin).

    Args:
        edits: Every change from the base; all of them together fail.
        fails: Executes several subsets at once (they run in parallel) and says which fail.
    """
    current = list(edits)
    chunks = 2
    while len(current) >= 2:
        size = -(-len(current) // chunks)
        parts = [current[i : i + size] for i in range(0, len(current), size)]
        verdicts = fails(parts)
        found = next((part for part, bad in zip(parts, verdicts, strict=True) if bad), None)
        if found is not None:
            current, chunks = found, 2
            continue
        if len(parts) > 2:
            rests = [[e for e in current if e not in part] for part in parts]
            verdicts = fails(rests)
            rest = next((r for r, bad in zip(rests, verdicts, strict=True) if bad), None)
            if rest is not None:
                current, chunks = rest, max(chunks - 1, 2)
                continue
        if chunks >= len(current):
            break
        chunks = min(len(current), chunks * 2)
    return current


def guess_keypath(outcome: Outcome, config: dict[str, Any]) -> KeyPath:
    """The config key an exception points at, read from the exception itself.

    The node being built when it raised, narrowed to an argument its message names; else a
    config key that the failing lines of the recipe read (``self._log_every_n_steps``); else
    a key the message names; else the whole config (empty).
    """
    text = f"{outcome.error} {outcome.message}"
    building = tuple(outcome.building)
    node = _at(config, building)
    if building and isinstance(node, dict):
        named = [key for key in node if key != COMPONENT and _names(text, str(key))]
        if named:
            return (*building, named[0])
        valued = [key for key, value in node.items() if key != COMPONENT and _shows(text, value)]
        return (*building, valued[0]) if len(valued) == 1 else building
    for frame in reversed(outcome.frames):
        for identifier in _IDENTIFIER.findall(frame.text):
            key = _config_key(identifier.lstrip("_"), config)
            if key is not None:
                return key
    for word in _IDENTIFIER.findall(outcome.message):
        key = _config_key(word, config)
        if key is not None:
            return key
    return building


def _at(config: Any, keypath: KeyPath) -> Any:
    node = config
    for part in keypath:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return None
    return node


def _names(text: str, word: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(word)}(?![A-Za-z0-9_])", text) is not None


def _shows(text: str, value: Any) -> bool:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        return False
    return _names(text, str(value))


def _config_key(word: str, config: dict[str, Any]) -> KeyPath | None:
    """A top-level key named ``word``, else the one leaf anywhere that is."""
    if word in config and not isinstance(config[word], dict):
        return (word,)
    found = [keypath for keypath in _leaf_paths(config) if keypath and keypath[-1] == word]
    return found[0] if len(found) == 1 else None


def _leaf_paths(node: Any, keypath: KeyPath = ()) -> list[KeyPath]:
    if isinstance(node, dict):
        return [p for key, value in node.items() for p in _leaf_paths(value, (*keypath, key))]
    return [keypath]
