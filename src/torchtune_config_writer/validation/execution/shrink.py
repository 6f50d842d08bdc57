"""The same model family at a tiny size, for running a config's values cheaply.

One layer, heads of 16 dimensions (the grouped-query ratio kept), a feed-forward twice as wide
as the model; the vocabulary, sequence length, RoPE settings, tying and every LoRA argument are
the config's own. A named builder (``lora_llama3_2_1b``) runs its own checks with the config's
arguments, and its inner component builder is then called with the tiny dimensions.
"""

from __future__ import annotations

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable
from typing import Any

TINY_HEAD_DIM = 16
# NF4 quantizes blocks of 64 values and scales in blocks of 256: every quantized weight must
# hold a multiple of 16,384 values, which heads of 256 give whatever the head counts.
QUANTIZED_HEAD_DIM = 256
_SMALL = 256  # a model this narrow is already tiny: it runs as written
REAL_LAYERS = 2


class _Captured(Exception):
    def __init__(self, kwargs: dict[str, Any]) -> None:
        super().__init__()
        self.kwargs = kwargs


def tiny_kwargs(kwargs: dict[str, Any], processes: int = 1) -> dict[str, Any] | None:
    """The builder's arguments at a tiny size; ``None`` when they are tiny already.

    Args:
        kwargs: The component builder's arguments.
        processes: The run's processes: tensor parallelism splits the key/value heads between
            them, so the tiny model keeps as many (where the real one has that many).
    """
    if kwargs.get("embed_dim", 0) <= _SMALL:
        return None
    small = dict(kwargs)
    if "num_layers" in small:
        small["num_layers"] = 1
    heads = small.get("num_heads")
    if heads:
        kv_heads = small.get("num_kv_heads") or heads
        kept = max(1, min(kv_heads, processes))
        small["num_heads"] = max(1, heads // kv_heads) * kept
        if small.get("num_kv_heads"):
            small["num_kv_heads"] = kept
        head_dim = QUANTIZED_HEAD_DIM if small.get("quantize_base") else TINY_HEAD_DIM
        if small.get("head_dim"):
            small["head_dim"] = head_dim
        small["embed_dim"] = small["num_heads"] * head_dim
    if small.get("intermediate_dim"):
        small["intermediate_dim"] = 2 * small["embed_dim"]
    return small


def _inner_builder(builder: Any) -> tuple[str, Any] | tuple[None, None]:
    """A named builder is ``return <component_builder>(...)``: that builder's name and itself."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(builder)))
    except (OSError, TypeError, SyntaxError):
        return None, None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Return)
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name)
        ):
            name = node.value.func.id
            inner = builder.__globals__.get(name)
            return (name, inner) if inner is not None else (None, None)
    return None, None


def fewer_layers(kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The model's arguments with two layers, every dimension real; ``None`` when it has two or
    fewer. Every layer has the same shapes, so two show what eighty would, at a fortieth of the
    cost (a 405B model's 126 layers take minutes without data, and QLoRA's NF4 more)."""
    layers = kwargs.get("num_layers")
    if not isinstance(layers, int) or isinstance(layers, bool) or layers <= REAL_LAYERS:
        return None
    return {**kwargs, "num_layers": REAL_LAYERS}


def build_tiny(
    component: Any,
    kwargs: dict[str, Any],
    smaller: Callable[[dict[str, Any]], dict[str, Any] | None] = tiny_kwargs,
) -> tuple[Any, bool]:
    """Build ``component(**kwargs)`` smaller where it can be.

    Args:
        component: A model builder: a component builder (``llama3_2``), or a named one
            (``lora_llama3_2_1b``) whose inner component builder is found in its source.
        kwargs: The config's arguments.
        smaller: The component builder's arguments made smaller, or ``None`` to keep them.

    Returns:
        (model, shrunk): ``shrunk`` is False when the model was built as configured (already
        tiny, or a builder whose dimensions cannot be found).
    """
    if isinstance(component, functools.partial):  # qlora_* = partial(lora_*, quantize_base=True)
        kwargs, component = {**component.keywords, **kwargs}, component.func
    try:
        parameters = inspect.signature(component).parameters
    except (TypeError, ValueError):
        return component(**kwargs), False
    if "num_layers" in parameters and "embed_dim" in parameters:  # a component builder
        small = smaller(kwargs)
        return component(**(small if small is not None else kwargs)), small is not None
    name, inner = _inner_builder(component)
    if name is None or not callable(component) or not hasattr(component, "__globals__"):
        return component(**kwargs), False
    scope = component.__globals__

    def record(*args: Any, **captured: Any) -> Any:
        raise _Captured(captured)

    scope[name] = record
    try:
        component(**kwargs)  # the named builder's own checks run on the config's arguments
    except _Captured as captured:
        arguments = captured.kwargs
    else:
        return component(**kwargs), False
    finally:
        scope[name] = inner
    small = smaller(arguments)
    assert inner is not None
    return inner(**(small if small is not None else arguments)), small is not None
