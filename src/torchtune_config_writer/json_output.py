"""JSON for tools (every ``--format json`` and ``--json``): strict, ASCII, and inert in a CI log.

Every JSON document the command line writes is :func:`json_text`, wherever it goes. Printed to a
GitHub Actions log it holds no workflow command, and the escaping stream
(:mod:`~torchtune_config_writer.terminal`) passes it unchanged, so it stays JSON: every
character that acts is a ``\\u`` escape (``ensure_ascii``), ``##[`` (a workflow command anywhere
in a line) is written ``\\u0023#[``, and no line of indented JSON starts with ``::``.
"""

from __future__ import annotations

import json
import math
from typing import Any

# YAML's spellings: what a config that holds one says (JSON has no NaN or infinity).
_NON_FINITE = {"nan": ".nan", "inf": ".inf", "-inf": "-.inf"}


def json_text(document: Any, *, sort_keys: bool = False) -> str:
    """``document`` as indented JSON, ending in a newline.

    A float JSON cannot hold (NaN, infinity) is written as YAML spells it, the string ``.nan``,
    ``.inf`` or ``-.inf``; a value of no JSON type as its ``str``.

    Args:
        document: Mappings, lists and scalars.
        sort_keys: Sort every mapping's keys (a report whose key order is its own).
    """
    text = json.dumps(
        _finite(document),
        indent=2,
        ensure_ascii=True,
        allow_nan=False,
        sort_keys=sort_keys,
        default=str,
    )
    # Inside a JSON string `\u0023` is `#`: the same text, and no command.
    return text.replace("##[", "\\u0023#[") + "\n"


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return _NON_FINITE[str(value)]
    if isinstance(value, dict):
        return {_finite(key): _finite(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value
