"""Does a config value fit a component parameter's type annotation?

Conservative on purpose: only annotations made of plain types (numbers, text, booleans, lists,
mappings, literals, unions and optionals of them) are judged. Anything else (a tensor, a module,
a callable, a forward reference) is taken to fit, so a finding is always a real contradiction,
like the string learning rate that ``tune validate`` passes.
"""

from __future__ import annotations

import collections.abc
import inspect
import os
import sys
import types
import typing
from pathlib import PurePath
from typing import Any

_UNKNOWN = object()  # an annotation this module does not judge


def expected_type(value: Any, annotation: Any) -> str | None:
    """What the annotation wants, in words, if ``value`` contradicts it; else ``None``.

    ``None`` values are never judged: torchtune annotates many parameters that take null as
    plain types.
    """
    if value is None:
        return None
    verdict = _fits(value, annotation)
    return None if verdict is _UNKNOWN or verdict else _describe(annotation)


def _fits(value: Any, annotation: Any) -> Any:
    """True, False, or _UNKNOWN."""
    if annotation in (inspect.Parameter.empty, Any, object) or isinstance(annotation, str):
        return _UNKNOWN
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        verdicts = [_fits(value, member) for member in typing.get_args(annotation)]
        if any(verdict is True for verdict in verdicts):
            return True
        return _UNKNOWN if any(verdict is _UNKNOWN for verdict in verdicts) else False
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    kind = origin or annotation
    if kind is type(None):
        return False  # the value is not None here
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if (
        kind is str
        or kind is os.PathLike
        or (isinstance(kind, type) and issubclass(kind, PurePath))
    ):
        return isinstance(value, str)
    if kind in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        return isinstance(value, list)
    if kind in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if _never_from_yaml(kind):
        return False
    return _UNKNOWN


def _never_from_yaml(kind: Any) -> bool:
    # A tensor or a module never comes out of YAML (``lr: float | Tensor`` wants the float);
    # torch is already imported whenever a component annotated with them was loaded.
    torch = sys.modules.get("torch")
    return (
        torch is not None
        and isinstance(kind, type)
        and issubclass(kind, (torch.Tensor, torch.nn.Module))
    )


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        plain = [m for m in members if not _never_from_yaml(m)] or members
        return " or ".join(dict.fromkeys(_describe(member) for member in plain))
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(arg) for arg in typing.get_args(annotation))
    kind = origin or annotation
    words = {bool: "true or false", int: "an integer", float: "a number", str: "text"}
    if kind in words:
        return words[kind]
    if _never_from_yaml(kind):
        return f"a {kind.__name__}"
    if kind in (list, tuple, collections.abc.Sequence, collections.abc.Iterable):
        return "a list"
    if kind in (dict, collections.abc.Mapping):
        return "a mapping"
    return "text (a path)"


def parameter_annotations(component: Any) -> dict[str, Any]:
    """The annotations of a function's or class's parameters, resolved where possible."""
    target = component.__init__ if inspect.isclass(component) else component
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - a functools.partial, an unresolvable forward reference
        pass
    try:  # as written: evaluated objects are judged, strings are not
        parameters = inspect.signature(component).parameters
    except (TypeError, ValueError):
        return {}
    return {name: parameter.annotation for name, parameter in parameters.items()}
