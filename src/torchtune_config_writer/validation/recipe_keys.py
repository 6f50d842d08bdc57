"""The top-level config keys a torchtune recipe reads, found by reading its source.

torchtune silently ignores a top-level key that no recipe code asks for, so ``epoch: 3`` (for
``epochs``) trains with the default. The recipe is parsed with ``ast``, never imported: importing
it would import torch.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, TypeGuard

from ..errors import ConfigWriterError
from ..generation.builtin_configs import require_torchtune
from ..keypaths import leaves
from ..reading import read_bounded

# Every torchtune recipe calls the top-level config ``cfg`` (``recipe_main(cfg)``, ``__init__(self,
# cfg)``, ``setup(self, cfg)``); names assigned from it (``self._cfg = cfg``) are followed too.
_CONFIG_NAME = "cfg"
_KEY_METHODS = {"get", "pop", "setdefault"}  # cfg.get("key", default)
_KEY_FUNCTIONS = {"getattr", "hasattr", "select"}  # getattr(cfg, "key"), OmegaConf.select(cfg, …)
# torchtune constants recipes use as keys: ``cfg.get(PROFILER_KEY)`` (training/_profiler.py).
_TORCHTUNE_CONSTANTS = {"PROFILER_KEY": "profiler"}

# torchtune code that recipes hand the whole config to, and the keys it reads by name (0.6.1),
# matched on the end of the dotted callee. ``config.log_config`` is left out on purpose: it prints
# the resolved config and reads no key by name.
_HELPER_KEYS = {
    # training/checkpointing/_checkpoint_client.py: CheckpointClient(cfg) and its methods.
    "CheckpointClient": frozenset(
        {
            "checkpointer",
            "device",
            "enable_async_checkpointing",
            "optimizer_in_bwd",
            "resume_from_checkpoint",
        }
    ),
    # training/metric_logging.py: the W&B, Comet and MLflow loggers' log_config calls
    # save_config, which writes to ``{cfg.output_dir}/torchtune_config.yaml``.
    "_metric_logger.log_config": frozenset({"output_dir"}),
}

# Absolute interpolations: ``${output_dir}``, ``${model.lora_rank}``, ``${a[0]}``. Resolver calls
# (``${oc.env:HOME}``) have a colon and relative ones (``${.x}``) a leading dot; neither matches.
_INTERPOLATION = re.compile(r"\$\{\s*([A-Za-z_][\w-]*)[^:{}$]*\}")


@cache
def keys_read_by_recipe(recipe_file: Path) -> frozenset[str]:
    """The top-level config keys a recipe reads by name, anywhere in its source.

    Counts ``cfg.key``, ``cfg["key"]``, ``cfg.get("key")``, ``"key" in cfg``, ``getattr(cfg,
    "key")`` and ``OmegaConf.select(cfg, "key.sub")`` on ``cfg`` and on names assigned from it,
    plus the keys that torchtune helpers given the whole config read (``CheckpointClient(cfg)``).

    Args:
        recipe_file: A recipe's ``.py`` file.

    Returns:
        The key names. Too many is safe (a key is reported only when it is missing here).

    Raises:
        ConfigWriterError: the recipe cannot be read or is not valid Python (`tune run` fails).
    """
    tree = _parse(recipe_file)
    constants = dict(_TORCHTUNE_CONSTANTS)
    for statement in tree.body:  # module-level ``NAME = "key"``, used as ``cfg.get(NAME)``
        if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant):
            for target in statement.targets:
                if isinstance(target, ast.Name) and isinstance(statement.value.value, str):
                    constants[target.id] = statement.value.value
    aliases = _config_aliases(tree)

    def key(node: ast.expr) -> str | None:
        if isinstance(node, ast.Constant):
            value = node.value if isinstance(node.value, str) else None
        else:  # a constant's name, bare or qualified: PROFILER_KEY, training.PROFILER_KEY
            value = constants.get((_dotted(node) or "").rsplit(".", 1)[-1])
        return value.split(".", 1)[0] if value else None

    keys: set[str | None] = set()
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _dotted(node.value) in aliases:
            if id(node) not in called:  # ``cfg.get(...)`` calls a method, it reads no key "get"
                keys.add(node.attr)
        elif isinstance(node, ast.Subscript) and _dotted(node.value) in aliases:
            keys.add(key(node.slice))
        elif isinstance(node, ast.Compare) and any(_dotted(c) in aliases for c in node.comparators):
            keys.add(key(node.left))
        elif isinstance(node, ast.Call):
            owner, _, name = (_dotted(node.func) or "").rpartition(".")
            args = [*node.args, *(keyword.value for keyword in node.keywords)]
            if owner in aliases and name in _KEY_METHODS and node.args:
                keys.add(key(node.args[0]))
            elif name in _KEY_FUNCTIONS and len(node.args) > 1 and _dotted(node.args[0]) in aliases:
                keys.add(key(node.args[1]))
            elif any(_dotted(arg) in aliases for arg in args):
                callee = f".{owner}.{name}"
                for helper, helper_keys in _HELPER_KEYS.items():
                    keys.update(helper_keys if callee.endswith(f".{helper}") else ())
    return frozenset(key for key in keys if key)


def _parse(recipe_file: Path) -> ast.Module:
    try:
        text = read_bounded(recipe_file).decode("utf-8")
        return ast.parse(text, filename=str(recipe_file))
    except SyntaxError as exc:
        raise ConfigWriterError(
            f"the recipe is not valid Python ({exc.msg}): `tune run` cannot run it; fix it",
            recipe_file,
            exc.lineno,
            exc.offset,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigWriterError(f"cannot read the recipe: {exc}", recipe_file) from None


@dataclass(frozen=True)
class Passed:
    """What a recipe gives a component besides its config: ``config.instantiate(cfg.K, *args,
    **kwargs)``, which merges ``kwargs`` into the config's arguments.

    Attributes:
        positional: How many positional arguments come first (the optimizer's parameters).
        keywords: The keyword arguments (the scheduler's ``num_training_steps``).
        whole: Every call that builds it passes just these, so the config must give the
            component's other required arguments.
    """

    positional: int
    keywords: frozenset[str]
    whole: bool = True


@cache
def arguments_passed_by_recipe(recipe_file: Path) -> dict[str, Passed]:
    """For each top-level key, what the recipe passes the component it builds from it.

    Follows ``config.instantiate(cfg.K, …)`` and a config handed to a method first
    (``self._setup_lr_scheduler(cfg_lr_scheduler=cfg.get("lr_scheduler"))``, then
    ``config.instantiate(cfg_lr_scheduler, self._optimizer, num_training_steps=…)``). Where the
    recipe builds one key in several calls, only what every call passes counts, so a call on one
    branch cannot be blamed for another.

    Raises:
        ConfigWriterError: the recipe cannot be read or is not valid Python.
    """
    tree = _parse(recipe_file)
    aliases = _config_aliases(tree)

    def config_key(node: ast.expr) -> str | None:
        """``K`` for ``cfg.K``, ``cfg["K"]`` and ``cfg.get("K", …)``."""
        if isinstance(node, ast.Attribute) and _dotted(node.value) in aliases:
            return node.attr
        if isinstance(node, ast.Subscript) and _dotted(node.value) in aliases:
            index = node.slice
            return (
                index.value
                if isinstance(index, ast.Constant) and isinstance(index.value, str)
                else None
            )
        if isinstance(node, ast.Call) and node.args:
            owner, _, name = (_dotted(node.func) or "").rpartition(".")
            first = node.args[0]
            if owner in aliases and name == "get" and isinstance(first, ast.Constant):
                return first.value if isinstance(first.value, str) else None
        return None

    functions = {
        node.name: node
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    # Which config keys each method's parameter is given, at the calls of that method.
    given: dict[tuple[str, str], set[str | None]] = {}
    for call in calls:
        owner, _, name = (_dotted(call.func) or "").rpartition(".")
        function = functions.get(name)
        if function is None:
            continue
        parameters = [argument.arg for argument in function.args.args]
        if owner == "self" and parameters[:1] == ["self"]:
            parameters = parameters[1:]
        for parameter, argument in zip(parameters, call.args, strict=False):
            given.setdefault((name, parameter), set()).add(config_key(argument))
        for keyword in call.keywords:
            if keyword.arg is not None:
                given.setdefault((name, keyword.arg), set()).add(config_key(keyword.value))
    found: dict[str, list[Passed]] = {}
    for function in functions.values():
        for node in ast.walk(function):
            if not _instantiates(node):
                continue
            first = node.args[0]
            keys = {config_key(first)}
            if isinstance(first, ast.Name):
                keys = given.get((function.name, first.id), keys)
            if len(keys) != 1 or None in keys:
                continue  # not a key of the config, or not one known key
            passed = Passed(len(node.args) - 1, frozenset(k.arg for k in node.keywords if k.arg))
            found.setdefault(next(iter(keys)) or "", []).append(passed)
    return {
        key: Passed(
            min(p.positional for p in each),
            frozenset.intersection(*(p.keywords for p in each)),
            len(set(each)) == 1,
        )
        for key, each in found.items()
    }


def _instantiates(node: ast.AST) -> TypeGuard[ast.Call]:
    """``config.instantiate(X, …)`` with no ``*args`` or ``**kwargs`` whose size is unknown."""
    return (
        isinstance(node, ast.Call)
        and (_dotted(node.func) or "").rpartition(".")[2] == "instantiate"
        and bool(node.args)
        and not any(isinstance(arg, ast.Starred) for arg in node.args)
        and all(keyword.arg is not None for keyword in node.keywords)
    )


def _config_aliases(tree: ast.Module) -> set[str]:
    """``cfg`` and every name or ``self.attribute`` assigned from it, directly or in a chain."""
    assignments = [
        (target, node.value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
    ]
    aliases = {_CONFIG_NAME}
    while new := {
        name
        for target, value in assignments
        if _dotted(value) in aliases and (name := _dotted(target)) and name not in aliases
    }:
        aliases |= new
    return aliases


def _dotted(node: ast.expr) -> str | None:
    """``self._cfg`` for a name or a chain of attributes on one; ``None`` for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)):
        return f"{base}.{node.attr}"
    return None


def recipe_file_named(recipe: str) -> Path | None:
    """The script ``tune run RECIPE`` runs; ``None`` when torchtune has no recipe of that name.

    Raises:
        ConfigWriterError: torchtune is not installed, or its recipe registry cannot be read.
    """
    return require_torchtune("checking the keys a recipe reads").recipes.get(recipe)


def unread_top_level_keys(config: Mapping[str, Any], recipe_file: Path) -> list[str]:
    """The config's top-level keys that the recipe never reads, in config order.

    A key that an interpolation anywhere in the config refers to (``${output_dir}/logs``) is used.

    Args:
        config: The config as loaded from YAML, interpolations unresolved.
        recipe_file: The recipe that runs it, e.g. from :func:`recipe_file_named`.
    """
    read = keys_read_by_recipe(recipe_file)
    strings = (text for _, text in leaves(config) if isinstance(text, str))
    referenced = {match for text in strings for match in _INTERPOLATION.findall(text)}
    return [key for key in config if key not in read and key not in referenced]
