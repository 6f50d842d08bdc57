"""The ``evaluation`` section: one config for torchtune's ``eleuther_eval`` recipe per run.

```yaml
evaluation:
  tasks: [truthfulqa_mc2, hellaswag]   # lm_eval's task names
  limit: 100                           # examples per task; none for all
  batch_size: 8
  max_seq_length: 2048
  include_path: eval_tasks/            # lm_eval tasks of your own, beside the experiment
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ErrorList
from ..yaml_read import Document, a_type_name
from .sections import reject_unknown_keys

_KEYS = ("tasks", "limit", "batch_size", "max_seq_length", "include_path")


@dataclass(frozen=True)
class Evaluation:
    """What every run's evaluation config asks ``eleuther_eval`` for."""

    tasks: tuple[str, ...]
    limit: int | float | None = None
    batch_size: int | None = None
    max_seq_length: int | None = None
    include_path: str | None = None


def read_evaluation(doc: Document, value: Any) -> Evaluation | None:
    """The checked section, or ``None`` when the experiment has none.

    Raises:
        ConfigWriterError: unknown keys, or a value of the wrong kind, at its line.
    """
    if value is None:
        return None
    keypath = ("evaluation",)
    if not isinstance(value, dict):
        raise doc.error(
            f"evaluation must be a mapping (tasks:, limit:, ...), found {a_type_name(value)}",
            keypath,
        )
    found = ErrorList()
    found.attempt(lambda: reject_unknown_keys(doc, value, _KEYS, keypath, "key"), None)
    tasks = value.get("tasks")
    if not (isinstance(tasks, list) and tasks and all(isinstance(t, str) and t for t in tasks)):
        found.add(
            doc.error(
                "evaluation.tasks is a list of lm_eval task names, e.g. [truthfulqa_mc2]",
                (*keypath, "tasks") if "tasks" in value else keypath,
            )
        )
    limit = value.get("limit")
    if limit is not None and (
        isinstance(limit, bool)
        or not isinstance(limit, (int, float))
        or not math.isfinite(limit)  # .nan and .inf are no number of examples
        or limit <= 0
    ):
        found.add(
            doc.error(
                "evaluation.limit is how many examples of each task (a whole number), or a "
                "fraction of them (0.1)",
                (*keypath, "limit"),
            )
        )
    for key in ("batch_size", "max_seq_length"):
        number = value.get(key)
        if number is not None and (
            isinstance(number, bool) or not isinstance(number, int) or number < 1
        ):
            found.add(
                doc.error(f"evaluation.{key} must be a whole number of at least 1", (*keypath, key))
            )
    include = value.get("include_path")
    if include is not None and not (isinstance(include, str) and include):
        found.add(
            doc.error(
                "evaluation.include_path is a folder of lm_eval tasks", (*keypath, "include_path")
            )
        )
    found.raise_found()
    return Evaluation(
        tuple(tasks or ()),
        limit,
        value.get("batch_size"),
        value.get("max_seq_length"),
        include,
    )
