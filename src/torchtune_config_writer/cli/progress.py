"""Validation's progress on standard error: one line redrawn on a terminal, plain lines in a log.

A CI log gets a line when a stage starts and then at about every tenth of it, so that 2,000
configs take a dozen lines, not 2,000, and a log is never silent for long: the torch import
and the recipe runs are said as they start. The lines depend only on the counts, so a log reads
the same on every run.
"""

from __future__ import annotations

import sys

from ..errors import display_path
from ..terminal import is_terminal, printable, raw_stderr
from ..validation.validating import Step

_TENTHS = 10


class ProgressDisplay:
    """Shows each :class:`~torchtune_config_writer.validation.validating.Step` on standard
    error: redrawn in place on a terminal (``live``), else as plain lines."""

    def __init__(self, *, live: bool) -> None:
        self.live = live
        self._drawn = False  # a live line is on screen, waiting for its end

    def __call__(self, step: Step) -> None:
        if self.live:
            self._draw(step)
        elif _worth_a_line(step):
            counted = f" {step.index + 1}/{step.total}" if step.total else ""
            print(f"validate: {step.stage}{counted}", file=sys.stderr, flush=True)

    def _draw(self, step: Step) -> None:
        line = step.stage + (f" {step.index + 1}/{step.total}" if step.total else "…")
        if step.item is not None:
            line += f" {printable(display_path(step.item))}"
        stream = raw_stderr()  # its own carriage return and erase-line, past the escaping
        last = step.total > 0 and step.index + 1 == step.total and step.item is not None
        stream.write(f"\r\033[K{line}" + ("\n" if last else ""))
        stream.flush()
        self._drawn = not last

    def close(self) -> None:
        """End a line left on screen, so that what follows starts on a line of its own."""
        if self._drawn:
            raw_stderr().write("\r\033[K")
            raw_stderr().flush()
            self._drawn = False


def _worth_a_line(step: Step) -> bool:
    """A stage's first step, its last, and the first of each tenth."""
    if step.total == 0 or step.index in (0, step.total - 1):
        return True
    return step.index * _TENTHS // step.total != (step.index - 1) * _TENTHS // step.total


def progress_display(quiet: bool) -> ProgressDisplay | None:
    """The display for standard error, or ``None`` when ``-q`` asks for none."""
    return None if quiet else ProgressDisplay(live=is_terminal(sys.stderr))
