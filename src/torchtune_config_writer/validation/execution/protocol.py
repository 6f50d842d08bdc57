"""What the validating process asks the execution worker, and what it answers (JSON lines).

No torch here: the validating process builds requests and reads outcomes without importing it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any

# An edit's value that deletes the key instead (torchtune's ``~key``).
DELETE = {"__delete__": True}

Edit = tuple[tuple[str | int, ...], Any]


class Mode(str, Enum):
    """How a config runs.

    ``VALUES``: the config as written, the model at a tiny size of its own family (every value
    reaches the recipe's own code; the model's real dimensions do not). ``SHAPE``: the model at
    its real size, one micro-batch per step (real shapes, checkpoint headers, tied embeddings).
    """

    VALUES = "values"
    SHAPE = "shape"


class Status(str, Enum):
    """What an execution found."""

    PASSED = "passed"  # set up and stepped (or ran to its end) without an exception
    FAILED = "failed"  # the recipe's own code raised: `tune run` would fail
    UNVERIFIED = "unverified"  # an optional package is not installed here
    NOT_CHECKED = "not-checked"  # the harness could not stand in for something: no verdict


@dataclass(frozen=True)
class Request:
    """One execution.

    Attributes:
        id: Unique in one worker's life.
        recipe: A torchtune recipe name, or the path of a recipe ``.py``.
        config: The config file, as ``tune run --config`` gets it.
        cwd: Where ``tune run`` runs (the experiment's folder): relative paths, local modules.
        mode: ``values`` or ``shape``.
        edits: Values set (or deleted, with ``DELETE``) after loading, by key path.
        real_files: The machine that trains: files the config names are never stood in for.
        timeout: Seconds before the execution is stopped.
        processes: How many processes ``tune run`` starts (``--nproc_per_node`` times
            ``--nnodes``); above one, the run is rank 0 of them (a distributed recipe).
    """

    id: int
    recipe: str
    config: str
    cwd: str
    mode: Mode = Mode.VALUES
    edits: tuple[Edit, ...] = ()
    real_files: bool = False
    timeout: float = 300.0
    processes: int = 1

    def to_json(self) -> str:
        data = asdict(self)
        data["mode"] = self.mode.value
        data["edits"] = [[list(keypath), value] for keypath, value in self.edits]
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Request:
        data = json.loads(text)
        data["mode"] = Mode(data["mode"])
        data["edits"] = tuple((tuple(keypath), value) for keypath, value in data["edits"])
        return cls(**data)


@dataclass(frozen=True)
class Frame:
    """A frame of the exception's traceback in torchtune, a recipe or the user's own code."""

    file: str
    line: int
    function: str
    text: str


@dataclass(frozen=True)
class Outcome:
    """What one execution did.

    Attributes:
        id: The request's id.
        status: passed, failed, unverified or not-checked.
        error: The exception's type, where one ended the run.
        message: Its message (bounded).
        site: The innermost frame of torchtune, a recipe or the user's code: where the config
            was found wrong (``recipes/lora_finetune_single_device.py:setup``).
        frames: The traceback's frames in that code, innermost last.
        raised: Where the exception was raised (any code: ``torch/optim/adam.py:59``).
        building: The key path of the config node being built when it raised, where one was.
        trains: Whether the recipe made an optimizer (a training recipe).
        steps: Optimizer steps taken.
        shrunk: Whether the model ran at a tiny size (values mode on a real-size model).
        standins: What was stood in for because it is not on this machine, by key path
            (``tokenizer.path: a tiktoken file``): what this run could not judge.
        seconds: The execution's own time.
    """

    id: int
    status: Status
    error: str = ""
    message: str = ""
    site: str = ""
    frames: tuple[Frame, ...] = ()
    raised: str = ""
    building: tuple[str | int, ...] = ()
    trains: bool = False
    steps: int = 0
    shrunk: bool = False
    standins: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def signature(self) -> tuple[str, str, str]:
        """What makes two failures the same failure: status, exception type and site."""
        return (self.status.value, self.error, self.site)

    def to_json(self) -> str:
        data = asdict(self)
        data["status"] = self.status.value
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Outcome:
        data = json.loads(text)
        data["status"] = Status(data["status"])
        data["frames"] = tuple(Frame(**frame) for frame in data["frames"])
        data["building"] = tuple(data["building"])
        data["standins"] = tuple(data["standins"])
        return cls(**data)
