"""Stage 2 of validation: what ``tune validate`` misses.

``tune validate`` checks only top-level components, by binding their keyword arguments; it
crashes on a component that does not import or a ``${...}`` that does not resolve, and passes
values of the wrong type. These checks walk every component, nested in mappings or lists, resolve
every interpolation, compare values with the annotations of the parameters they go to, and look
for top-level keys the recipe never reads.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from ..generation.placement import lookup
from ..keypaths import KeyPath, dotted, leaves
from ..wording import closest
from ..yaml_write import dump_inline
from .findings import Severity
from .recipe_keys import Passed, arguments_passed_by_recipe, unread_top_level_keys
from .torchtune_runtime import Runtime, locate_component
from .type_check import expected_type, parameter_annotations

COMPONENT = "_component_"
# How close an argument **kwargs swallows must be to a parameter to be its misspelling:
# ``spilt``/``split`` and ``pakced``/``packed`` are 0.8, ``field``/``filter_fn`` 0.43.
_MISSPELT = 0.75
# The builders of local files, whose options (json's ``field``, csv's ``sep``) load_dataset takes.
FILE_BUILDERS = ("json", "csv", "text", "parquet", "arrow")


@dataclass(frozen=True)
class Problem:
    """A finding before it is placed in files: where in the config, how bad, what."""

    keypath: KeyPath
    severity: Severity
    check: str
    message: str


def deep_check(
    runtime: Runtime,
    data: dict[str, Any],
    recipe_file: Path | None = None,
    cfg: Any = None,
    folder: Path | None = None,
) -> list[Problem]:
    """Every stage-2 problem of one config.

    Args:
        runtime: The imported torchtune.
        data: The config as plain values (interpolations unresolved).
        recipe_file: The recipe that runs the config, when known, for unread top-level keys.
        cfg: ``data`` as a ``DictConfig`` already (torchtune's check made one), if any.
        folder: Where ``tune run`` runs it: the user's own modules there import.
    """
    from omegaconf import OmegaConf

    interpolations = [(at, value) for at, value in leaves(data) if _interpolates(value)]
    problems = list(_syntax_problems(interpolations))
    broken = {problem.keypath for problem in problems}
    # OmegaConf refuses a whole config over one malformed ${: check the rest without them.
    if cfg is None or broken:
        cfg = OmegaConf.create(_without(data, broken))
    resolved: dict[KeyPath, Any] = {}
    for keypath, value in interpolations:
        if keypath in broken:
            continue
        try:
            resolved[keypath] = OmegaConf.select(
                cfg, dotted(keypath), throw_on_resolution_failure=True
            )
        except Exception as exc:  # noqa: BLE001 - every resolution failure is a finding
            problems.append(_interpolation_problem(keypath, value, exc))
    passed = arguments_passed_by_recipe(recipe_file) if recipe_file is not None else {}
    for keypath, node in _components(data):
        by_recipe = passed.get(str(keypath[0])) if len(keypath) == 1 else None
        problems.extend(_component_problems(runtime, keypath, node, resolved, by_recipe, folder))
    if recipe_file is not None:
        for key in unread_top_level_keys(data, recipe_file):
            problems.append(
                Problem(
                    (key,),
                    Severity.WARNING,
                    "unread-key",
                    f"'{key}' is not read by the recipe {recipe_file.stem}: a misspelt key is "
                    "ignored by training; remove it or fix its name",
                )
            )
    return sorted(problems, key=lambda problem: _order(data, problem.keypath))


def _interpolates(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _syntax_problems(interpolations: list[tuple[KeyPath, str]]) -> Iterator[Problem]:
    for keypath, value in interpolations:
        message = _grammar_error(value)
        if message is not None:
            yield Problem(
                keypath,
                Severity.ERROR,
                "interpolation",
                f"{dump_inline(value)} is not a valid interpolation ({message})",
            )


@lru_cache(maxsize=4096)
def _grammar_error(value: str) -> str | None:
    """What OmegaConf's grammar says of an interpolation, once per text (a sweep repeats it)."""
    from omegaconf import OmegaConf

    try:
        OmegaConf.create({"value": value})
    except Exception as exc:  # noqa: BLE001 - OmegaConf's grammar says no
        return str(exc).splitlines()[0]
    return None


def _interpolation_problem(keypath: KeyPath, value: str, exc: Exception) -> Problem:
    message = str(exc).splitlines()[0]
    if "Environment variable" in message and "not found" in message:
        # Set on the cluster, perhaps, but not here: cannot be checked, not known to be wrong.
        return Problem(
            keypath,
            Severity.UNVERIFIED,
            "interpolation",
            f"{dump_inline(value)} needs an environment variable not set here: {message}",
        )
    return Problem(
        keypath,
        Severity.ERROR,
        "interpolation",
        f"{dump_inline(value)} does not resolve: {message}",
    )


def _component_problems(
    runtime: Runtime,
    keypath: KeyPath,
    node: dict[str, Any],
    resolved: dict[KeyPath, Any],
    by_recipe: Passed | None = None,
    folder: Path | None = None,
) -> Iterator[Problem]:
    target = resolved.get((*keypath, COMPONENT), node[COMPONENT])
    where = (*keypath, COMPONENT)
    if not isinstance(target, str) or not target:
        yield Problem(where, Severity.ERROR, "import", "_component_ must be a dotted import path")
        return
    component, severity, message = locate_component(runtime, target, folder)
    if severity is not None:
        yield Problem(where, severity, "import", message)
        return
    kwargs = {
        key: resolved.get((*keypath, key), value) for key, value in node.items() if key != COMPONENT
    }
    signature = _signature(component)
    if signature is None:
        return  # a builtin without a signature: nothing to compare with
    try:
        # As torchtune's validate: required arguments may come from the recipe (a model's
        # parameters to an optimizer), so only unknown or doubled ones are mistakes.
        signature.bind_partial(**kwargs)
    except TypeError as exc:
        yield Problem(keypath, Severity.ERROR, "signature", f"{target}: {exc}")
        return
    recipe_refusal = _refuses_what_the_recipe_passes(signature, kwargs, by_recipe)
    if recipe_refusal is not None:
        yield Problem(keypath, Severity.ERROR, "signature", f"{target}: {recipe_refusal}")
        return
    yield from _swallowed_misspellings(target, keypath, signature, kwargs)
    annotations = _annotations(component)
    for key, value in kwargs.items():
        if isinstance(value, dict) and COMPONENT in value:
            continue  # an object built from its own component
        if isinstance(value, str) and "${" in value and (*keypath, key) not in resolved:
            continue  # it did not resolve: reported as such, its type is unknown
        wanted = expected_type(value, annotations.get(key, inspect.Parameter.empty))
        if wanted is not None:
            yield Problem(
                (*keypath, key),
                Severity.ERROR,
                "type",
                f"{target} takes {wanted} for {key}, not {dump_inline(value)}",
            )


# A component's signature and annotations, by the component (kept alive with them, so that an id
# is never reused): every config of a sweep binds the same dozen components.
_SIGNATURES: dict[int, tuple[Any, inspect.Signature | None, dict[str, Any]]] = {}


def _described(component: Any) -> tuple[Any, inspect.Signature | None, dict[str, Any]]:
    known = _SIGNATURES.get(id(component))
    if known is None or known[0] is not component:
        try:
            signature: inspect.Signature | None = inspect.signature(component)
        except (TypeError, ValueError):
            signature = None
        annotations = parameter_annotations(component) if signature is not None else {}
        known = _SIGNATURES[id(component)] = (component, signature, annotations)
    return known


def _signature(component: Any) -> inspect.Signature | None:
    return _described(component)[1]


def _annotations(component: Any) -> dict[str, Any]:
    return _described(component)[2]


def _refuses_what_the_recipe_passes(
    signature: inspect.Signature, kwargs: dict[str, Any], passed: Passed | None
) -> str | None:
    """Why the component fails when the recipe builds it, with the arguments the recipe adds
    (a scheduler swapped for torch's ``ConstantLR``, which takes no ``num_training_steps``)."""
    if passed is None:
        return None
    given = {**kwargs, **dict.fromkeys(passed.keywords)}  # the recipe's override the config's
    bind = signature.bind if passed.whole else signature.bind_partial
    try:
        bind(*[None] * passed.positional, **given)
    except TypeError as exc:
        added = [f"{passed.positional} positional"] if passed.positional else []
        added += [f"{name}=" for name in sorted(passed.keywords)]
        besides = f"with {', '.join(added)} besides" if added else "from"
        if str(exc).startswith("missing"):
            return (
                f"{exc}: the recipe builds it {besides} the config's arguments, so `tune run` "
                "fails; give it in the config"
            )
        return (
            f"{exc}: the recipe builds it {besides} the config's arguments, so `tune run` fails; "
            "use a component that takes them (or wrap this one in a function of your own that "
            "does)"
        )
    return None


def _swallowed_misspellings(
    target: str, keypath: KeyPath, signature: inspect.Signature, kwargs: dict[str, Any]
) -> Iterator[Problem]:
    """Arguments that ``**kwargs`` takes but that are misspellings of a named parameter.

    torchtune's datasets pass what they do not name on to ``load_dataset``, which fails on
    ``spilt: train`` at run time; the arguments it does take (``data_files``, ``name``) are
    left alone.
    """
    parameters = signature.parameters
    extra = next((p.name for p in parameters.values() if p.kind is p.VAR_KEYWORD), None)
    if extra is None:
        return
    named = [
        name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    ]
    for key in kwargs:
        if key in parameters:
            continue
        close = closest(key, named, cutoff=_MISSPELT)
        if close is not None and key not in _passed_through():
            yield Problem(
                (*keypath, key),
                Severity.ERROR,
                "signature",
                f"{target} has no argument {key}: did you mean {close}? It would go on "
                f"through **{extra}, where `tune run` fails on it",
            )


@cache
def _passed_through() -> frozenset[str]:
    """What ``datasets.load_dataset`` and its file builders take, where datasets is installed."""
    try:
        import dataclasses

        import datasets
        from datasets.packaged_modules import _PACKAGED_DATASETS_MODULES
    except Exception:  # noqa: BLE001 - without datasets nothing is known to pass through
        return frozenset()
    names = set(inspect.signature(datasets.load_dataset).parameters)
    for builder in FILE_BUILDERS:
        module, _ = _PACKAGED_DATASETS_MODULES[builder]
        for value in vars(importlib.import_module(module)).values():
            if isinstance(value, type) and issubclass(value, datasets.BuilderConfig):
                names.update(field.name for field in dataclasses.fields(value))
    return frozenset(names)


def _components(node: Any, keypath: KeyPath = ()) -> Iterator[tuple[KeyPath, dict[str, Any]]]:
    """Every mapping with a ``_component_``, at any depth, in lists too."""
    if isinstance(node, dict):
        if COMPONENT in node:
            yield keypath, node
        for key, value in node.items():
            yield from _components(value, (*keypath, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _components(value, (*keypath, index))


def _without(node: Any, broken: set[KeyPath], keypath: KeyPath = ()) -> Any:
    """``node`` with the values at ``broken`` key paths replaced by null."""
    if keypath in broken:
        return None
    if isinstance(node, dict):
        return {key: _without(value, broken, (*keypath, key)) for key, value in node.items()}
    if isinstance(node, list):
        return [_without(value, broken, (*keypath, index)) for index, value in enumerate(node)]
    return node


def _order(data: dict[str, Any], keypath: KeyPath) -> tuple[int, ...]:
    """The position of a key path in the config's own order (findings read top to bottom); a
    part that is not there sorts after its siblings."""
    order = []
    for depth, part in enumerate(keypath):
        parent = lookup(data, keypath[:depth])
        if isinstance(parent, dict) and part in parent:
            order.append(list(parent).index(part))
        elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
            order.append(part)
        else:
            order.append(len(parent) if isinstance(parent, (dict, list)) else 0)
    return tuple(order)
