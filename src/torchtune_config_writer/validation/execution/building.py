"""Building the config's nodes as the recipe asks for them, with stand-ins where the real part is
not on this machine: ``config.instantiate`` is patched once per worker.

A checkpointer whose files are here is the real one (reading headers only); one whose files are
not loads weights shaped from the model it is paired with. A tokenizer whose files are missing
gets a stand-in file of the kind its class reads. A model in a values run is built at a tiny size.
A metric logger logs nothing, once its class imported, its arguments bound and what it imports
found installed. Everything else is torchtune's own ``instantiate``.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from . import standins
from .protocol import Mode
from .shrink import REAL_LAYERS, build_tiny, fewer_layers, tiny_kwargs
from .state import STATE

KeyPath = tuple[str | int, ...]


def patch_instantiate() -> None:
    from torchtune import config
    from torchtune.training.checkpointing._checkpointer import _CheckpointerInterface
    from torchtune.training.metric_logging import MetricLoggerInterface

    real = config.instantiate

    def instantiate(node: Any, *args: Any, **kwargs: Any) -> Any:
        if not (OmegaConf.is_dict(node) and "_component_" in node):
            return real(node, *args, **kwargs)
        keypath = _keypath(node)
        STATE.building.append(keypath)
        try:
            return _build(
                real, node, keypath, args, kwargs, _CheckpointerInterface, MetricLoggerInterface
            )
        except BaseException as exc:
            if STATE.raised_building is None:
                STATE.raised_building = keypath
            raise exc
        finally:
            STATE.building.pop()

    config.instantiate = instantiate


def _keypath(node: Any) -> KeyPath:
    """The node's key path from the config's root, list indexes as ints (OmegaConf's full key
    spells ``dataset[0]``, which a dotted split cannot tell from a key)."""
    parts: list[str | int] = []
    while node is not None and node._get_parent() is not None:
        key = node._key()
        parts.append(int(key) if isinstance(key, int) else str(key))
        node = node._get_parent()
    return tuple(reversed(parts))


def _inherits(component: Any, base: type) -> bool:
    # These bases are typing Protocols: issubclass() refuses them.
    return inspect.isclass(component) and base in component.__mro__


def _build(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    checkpointer: type,
    logger: type,
) -> Any:
    from torchtune.config._utils import _get_component_from_path

    path = node.get("_component_")
    component = _get_component_from_path(path)  # a wrong path raises as under tune run
    name = str(keypath[-1]) if keypath else ""
    if _inherits(component, checkpointer):
        return _checkpointer(real, node, keypath, component, args, kwargs)
    if _inherits(component, logger):
        resolved = _arguments(node, kwargs)
        inspect.signature(component).bind(*args, **resolved)
        _require_imports(component)
        return standins.NullLogger()
    if "tokenizer" in name or "tokenizer" in str(path).rsplit(".", 1)[-1]:
        return _tokenizer(real, node, keypath, args, kwargs)
    request = STATE.request
    if request is not None and name.endswith("model"):
        if request.mode is Mode.VALUES:
            tiny = functools.partial(tiny_kwargs, processes=request.processes)
            model, shrunk = build_tiny(component, _arguments(node, kwargs), tiny)
            STATE.shrunk = STATE.shrunk or shrunk
            return model
        if not STATE.real_weights.get(name, False):
            # Weights shaped from the model (no files to match): two real-size layers show its
            # shapes. A builder that refuses two layers is built whole.
            try:
                model, fewer = build_tiny(component, _arguments(node, kwargs), fewer_layers)
            except Exception:  # noqa: BLE001 - built as configured next, where it raises
                return real(node, *args, **kwargs)
            if fewer:
                STATE.standins.append(f"{_dotted(keypath)}: {REAL_LAYERS} of its layers")
            return model
    made_up = STATE.data.made_up
    built = real(node, *args, **kwargs)
    if STATE.data.made_up > made_up:
        STATE.standins.append(f"{_dotted(keypath)}: made-up rows in the format it reads")
    return built


def _arguments(node: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    resolved = OmegaConf.to_container(node, resolve=True)
    assert isinstance(resolved, dict)
    resolved.pop("_component_", None)
    return {**{str(k): v for k, v in resolved.items()}, **kwargs}


def _dotted(keypath: tuple[str | int, ...]) -> str:
    return ".".join(map(str, keypath))


def _checkpointer(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    component: Any,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    from torchtune import config

    resolved = _arguments(node, kwargs)
    _check_output_outside(component, resolved)
    root = node._get_root()
    name = str(keypath[-1]) if keypath else "checkpointer"
    model_key = _model_of(name, root)
    model_node = root.get(model_key)

    def build_model() -> Any:
        from torchtune import training

        with training.set_default_dtype(torch.bfloat16):
            return config.instantiate(model_node)

    folder = resolved.get("checkpoint_dir")
    here = isinstance(folder, str) and Path(folder).is_dir()
    request = STATE.request
    real_files = request is not None and request.real_files
    if here or real_files:
        tiny_run = request is not None and request.mode is Mode.VALUES
        if not (tiny_run and _shrinks(build_model)):
            STATE.real_weights[model_key] = True  # its model is built whole to take them
            return standins.stop_at_save(real(node, *args, **kwargs), name)
    inspect.signature(component).bind(*args, **resolved)
    if resolved.get("resume_from_checkpoint") is True:
        # The recipe state of an earlier run (optimizer, epoch, seed) cannot be made up.
        raise standins.HarnessLimit(
            "resuming reads the state an earlier run saved in checkpoint_dir, which is not here "
            "(validate --preflight where it is)"
        )
    model_type = resolved.get("model_type")
    if model_type is not None:
        from torchtune.training.checkpointing._utils import ModelType

        ModelType[model_type]  # an unknown model type fails as the real checkpointer does
    if not here:
        STATE.standins.append(f"{_dotted(keypath)}: weights shaped from {model_key}")
    output_dir = resolved.get("output_dir")
    if isinstance(output_dir, str):  # the real checkpointer makes it; recipes save into it
        Path(output_dir).mkdir(parents=True, exist_ok=True)
    return standins.StandInCheckpointer(build_model, name)


def _check_output_outside(component: Any, resolved: dict[str, Any]) -> None:
    """torchtune's own check that a checkpointer's output folder is not its checkpoint folder,
    on the folders the config names (the run here writes elsewhere), for a checkpointer whose
    ``__init__`` makes it."""
    from torchtune.training.checkpointing._utils import check_outdir_not_in_ckptdir

    checkpoint_dir, output_dir = resolved.get("checkpoint_dir"), resolved.get("output_dir")
    if not (isinstance(checkpoint_dir, str) and isinstance(output_dir, str)):
        return
    try:
        makes_it = "check_outdir_not_in_ckptdir" in inspect.getsource(component.__init__)
    except (OSError, TypeError):
        makes_it = False
    if makes_it:
        check_outdir_not_in_ckptdir(Path(checkpoint_dir), Path(_as_configured(output_dir)))


def _as_configured(path: str) -> str:
    """A folder the run writes to here, as the config named it."""
    for moved, original in sorted(STATE.moved.items(), key=lambda item: -len(item[0])):
        if path == moved or path.startswith(moved + "/"):
            return original + path[len(moved) :]
    return path


def _model_of(checkpointer: str, root: Any) -> str:
    """The model node a checkpointer loads: ``teacher_checkpointer`` → ``teacher_model``,
    PPO's ``value_checkpointer`` → ``reward_and_value_model``; ``model`` for ``checkpointer``."""
    models = [
        str(key)
        for key in root
        if str(key).endswith("model") and OmegaConf.is_dict(root._get_node(key))
    ]
    words = set(checkpointer.removesuffix("checkpointer").split("_")) - {""}

    def score(key: str) -> tuple[int, bool]:
        return len(words & set(key.split("_"))), key == "model"

    return max(models, key=score) if models else "model"


def _shrinks(build_model: Callable[[], Any]) -> bool:
    """Whether the values run builds this model at a tiny size (then real weights cannot load)."""
    before = STATE.shrunk
    STATE.shrunk = False
    try:
        build_model()
        return STATE.shrunk
    except Exception:  # noqa: BLE001 - the recipe builds it next and raises there
        return False
    finally:
        STATE.shrunk = STATE.shrunk or before


def _require_imports(component: Any) -> None:
    """What a logger imports when it is made must be installed (wandb, comet_ml, mlflow...)."""
    try:
        source = inspect.getsource(component.__init__)
    except (OSError, TypeError):
        return
    for name in re.findall(r"^\s*(?:import|from)\s+(\w+)", source, re.MULTILINE):
        if importlib.util.find_spec(name) is None:
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)


def _tokenizer(
    real: Callable[..., Any],
    node: Any,
    keypath: tuple[str | int, ...],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    resolved = _arguments(node, kwargs)
    request = STATE.request
    missing = [
        argument
        for argument in standins.TOKENIZER_FILES
        if isinstance(resolved.get(argument), str) and not Path(resolved[argument]).exists()
    ]
    if not missing or (request is not None and request.real_files):
        return real(node, *args, **kwargs)
    folder = STATE.shared / "tokenizer"
    folder.mkdir(parents=True, exist_ok=True)

    def build(**over: Any) -> Any:
        return real(node, *args, **{**kwargs, **over})

    tokenizer, kind = standins.standin_tokenizer(build, missing, folder)
    STATE.tokenizer_stood_in = True
    standins.safe_decode(tokenizer)
    STATE.standins += [f"{_dotted(keypath)}.{argument}: a {kind} file" for argument in missing]
    return tokenizer
