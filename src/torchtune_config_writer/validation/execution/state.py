"""What one execution knows about itself while it runs (child side): the request, what was
stood in for, the steps taken. The patched functions of ``building.py`` and ``watch.py`` read and
write it; ``harness.py`` resets it for each execution."""

from __future__ import annotations

from pathlib import Path

from .protocol import Request
from .standins import DataPlan


class _State:
    """What the patched functions need to know about the current execution."""

    def __init__(self) -> None:
        self.request: Request | None = None
        self.standins: list[str] = []
        self.shared = Path(".")  # files made once per worker (stand-in tokenizer files)
        self.building: list[tuple[str | int, ...]] = []
        self.raised_building: tuple[str | int, ...] | None = None
        self.trains = False
        self.steps = 0
        self.forwards = 0  # forward passes of a model that trains nothing (generation)
        self.shrunk = False
        self.largest_token = -1
        self.unset: list[str] = []  # environment variables the config reads, not set here
        self.tokenizer_stood_in = False  # its ids are not the real ones
        self.real_weights: dict[str, bool] = {}  # model nodes whose checkpoint files are here
        self.moved: dict[str, str] = {}  # a folder the run writes to here: where the config said
        self.data = DataPlan()


STATE = _State()
