"""Key paths into a config or an experiment: ``("model", "lora_rank")``, and every leaf's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

KeyPath = tuple[str | int, ...]


def dotted(path: KeyPath) -> str:
    """``("model", "lora_rank")`` as ``model.lora_rank``."""
    return ".".join(str(part) for part in path)


def leaves(node: Any, keypath: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    """Every value inside mappings and lists that is neither, with its key path, in file order."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, (*keypath, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from leaves(value, (*keypath, index))
    else:
        yield keypath, node
