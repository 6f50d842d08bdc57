"""Merging a value into a config at a key path, with the type rules of the product.

Nothing is modified in place: a merge copies the mappings along the path and shares the rest,
so one base serves every run of a sweep.
"""

from __future__ import annotations

from typing import Any

from ..keypaths import KeyPath, dotted
from ..wording import closest
from ..yaml_read import Replace, a_type_name
from ..yaml_write import dump_inline

# Keys that torchtune 0.6.1's own configs write as integers (``lora_alpha: 16``, PPO's
# ``gamma: 1``) but that torchtune reads as floats: a float may replace them. A test compares
# every built-in config with the annotations of the parameters its values go to.
FLOAT_KEYS = frozenset({"lora_alpha", "label_smoothing", "gamma", "reward_penalty"})
# Where torchtune's recipes take a list of mappings for a mapping: `dataset`, each item a dataset
# they concatenate (the plan checks that the recipe is one of those, generation/builtin_configs.py).
LIST_OF_MAPPINGS_KEYS = frozenset({("dataset",)})


# The spellings YAML 1.1 (PyYAML, OmegaConf) reads as booleans when they are not quoted.
BOOLEAN_WORDS = frozenset({"y", "yes", "n", "no", "true", "false", "on", "off"})


def spells_boolean(value: Any) -> bool:
    """Whether ``value`` is a string that YAML would read as a boolean unquoted."""
    return isinstance(value, str) and value.lower() in BOOLEAN_WORDS


# Merged at a key path, deletes the key there (a control ``~key:``).
DELETE: Any = object()


class MergeConflict(Exception):
    """A value whose type does not fit the value it replaces (the caller adds the location).

    Attributes:
        path: The config key path where the conflict is.
    """

    def __init__(self, message: str, path: KeyPath) -> None:
        super().__init__(message)
        self.path = path


def merge_at(config: Any, path: KeyPath, value: Any) -> Any:
    """``config`` with ``value`` merged at ``path``; missing mappings on the path are created.

    Raises:
        MergeConflict: the types of the old and new value are not compatible.
    """
    if not path:
        return merge_value(config, value, ())
    return _merge_at(config, path, 0, value)


def _merge_at(node: Any, path: KeyPath, depth: int, value: Any) -> Any:
    if depth == len(path):
        return merge_value(node, value, path)
    key = path[depth]
    if value is DELETE and depth == len(path) - 1:
        if isinstance(node, dict) and key in node:
            return {name: inner for name, inner in node.items() if name != key}
        if isinstance(node, list) and isinstance(key, int) and key < len(node):
            return [item for index, item in enumerate(node) if index != key]
        raise MergeConflict(
            f"~{dotted(path)} deletes nothing: the base has no {dotted(path)}", path
        )
    if isinstance(node, list) and isinstance(key, int):
        items = list(node)
        items[key] = _merge_at(node[key], path, depth + 1, value)
        return items
    if node is None:  # a '+' path through keys that do not exist yet
        node = {}
    if not isinstance(node, dict):
        raise MergeConflict(
            f"{dotted(path[:depth])} is {a_type_name(node)} in the base, not a mapping with keys",
            path[:depth],
        )
    copy = dict(node)
    copy[key] = _merge_at(node.get(key), path, depth + 1, value)
    return copy


def merge_value(old: Any, new: Any, path: KeyPath) -> Any:
    """``new`` over ``old``: mappings merge recursively, everything else replaces.

    Compatible: the same type, an integer over a float, anything over null, null over anything
    (how a torchtune feature is switched off), and an OmegaConf ``${...}`` on either side. A
    float never replaces an integer, not even a whole one (``batch_size: 4.0``).
    """
    if (
        isinstance(old, dict)
        and isinstance(new, list)
        and path in LIST_OF_MAPPINGS_KEYS
        and new
        and all(isinstance(item, dict) for item in new)
    ):
        return added(new, path)  # several datasets where the base has one: a ConcatDataset
    if isinstance(new, Replace):
        if old is not None and not isinstance(old, dict) and not _is_interpolation(old):
            raise MergeConflict(
                f"{dotted(path)} is {a_type_name(old)} in the base ({_short(old)}): !replace "
                "replaces a mapping",
                path,
            )
        return added(new, path)
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, inner in new.items():
            if isinstance(key, str) and key.startswith("~"):  # ~key: deletes the base's key
                _check_deletion(old, key, inner, path)
                merged.pop(key[1:])
                continue
            name = _new_key(key, old, path)
            at = (*path, name)
            if name not in old and name == key:
                _not_a_misspelling(name, old, path)
            merged[name] = merge_value(old[name], inner, at) if name in old else added(inner, at)
        return merged
    if isinstance(new, dict) and old is None:
        return added(new, path)
    if not _compatible(old, new):
        raise MergeConflict(
            f"{dotted(path)} is {a_type_name(old)} in the base ({_short(old)}), but the experiment "
            f"gives {a_type_name(new)} ({_short(new)}): give {a_type_name(old)}",
            path,
        )
    if _is_int(old) and isinstance(new, float) and not (path and path[-1] in FLOAT_KEYS):
        # torchtune hands these to range() and DataLoader, which refuse floats even when whole;
        # the experiment is fixed rather than the value silently rewritten.
        fix = f"write {int(new)}" if new.is_integer() else "give a whole number"
        if not new.is_integer():
            fix += f" (or, in your own base config, write {old}.0 if torchtune takes a float)"
        raise MergeConflict(
            f"{dotted(path)} is an integer in the base ({_short(old)}), but the experiment "
            f"gives the float {_short(new)}: torchtune needs an integer here; {fix}",
            path,
        )
    return new


# How close a new key inside a mapping must be to one of its keys to be taken for a typo of it:
# lora_apha/lora_alpha and spilt/split are; seed/shuffle and field/filter_fn are not.
_TYPO = 0.8


def _not_a_misspelling(name: Any, old: dict[str, Any], path: KeyPath) -> None:
    """A key the base mapping lacks is added, unless it is a misspelling of one it has (which
    would be added beside it, silently)."""
    if not isinstance(name, str):
        return
    close = closest(name, [key for key in old if isinstance(key, str)], cutoff=_TYPO)
    if close is not None:
        raise MergeConflict(
            f"{dotted((*path, name))} is not in the base config: did you mean "
            f"{dotted((*path, close))}? To add it as a new key on purpose, write +{name}",
            (*path, name),
        )


def _new_key(key: Any, old: dict[str, Any], path: KeyPath) -> Any:
    """A mapping's key as torchtune gets it: ``+key`` (added on purpose) is ``key``, which the
    base must not have, as for a top-level ``+key``."""
    if not (isinstance(key, str) and key.startswith("+")):
        return key
    name = key[1:]
    if not name:
        raise MergeConflict(
            f"{dotted((*path, key))}: a key + adds nothing: write + before the key to add "
            "(+amsgrad: true), or quote it ('+') for a key named +",
            (*path, key),
        )
    if name in old:
        raise MergeConflict(
            f"{dotted((*path, key))} adds {name}, but {dotted(path) or 'the config'} has {name} "
            f"in the base already: drop the + to set it",
            (*path, key),
        )
    return name


def added(value: Any, path: KeyPath) -> Any:
    """A value where the base has nothing: a plain copy, each ``+key`` written ``key``; a
    ``~key`` inside it deletes nothing, which is an error."""
    if isinstance(value, dict):
        copy = {}
        for key, inner in value.items():
            if isinstance(key, str) and key.startswith("~"):
                _check_deletion({}, key, inner, path)
            name = _new_key(key, {}, path)
            copy[name] = added(inner, (*path, name))
        return copy
    if isinstance(value, list):
        return [added(item, (*path, index)) for index, item in enumerate(value)]
    return value


def _check_deletion(old: dict[str, Any], key: str, value: Any, path: KeyPath) -> None:
    where = (*path, key)
    if key == "~":
        raise MergeConflict(
            f"{dotted(where)}: a key ~ deletes nothing: write ~ before the key to delete "
            "(~num_warmup_steps:), or quote it ('~') for a key named ~",
            where,
        )
    if value is not None:
        raise MergeConflict(
            f"{dotted(where)} deletes {key[1:]}: give it no value ({key}:), or drop the ~ to "
            "set it",
            where,
        )
    if key[1:] not in old:
        raise MergeConflict(
            f"{dotted(where)} deletes nothing: {dotted(path) or 'the config'} has no {key[1:]} in "
            "the base",
            where,
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _compatible(old: Any, new: Any) -> bool:
    if old is None or new is None or _is_interpolation(old) or _is_interpolation(new):
        return True
    if isinstance(old, bool) and spells_boolean(new):
        return True  # `tune run` takes it (truthy): kept, and generate warns (readings.py)
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return True
    return type(old) is type(new)


def _is_interpolation(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _short(value: Any) -> str:
    text = dump_inline(value)
    return text if len(text) <= 40 else text[:37] + "..."
