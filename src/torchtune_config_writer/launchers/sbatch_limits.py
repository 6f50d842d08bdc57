"""sbatch's time limit (``--time``) and memory (``--mem``) as numbers: read in every format Slurm
reads, scaled by a factor, and written back in one Slurm reads.

A factor is a :class:`~fractions.Fraction` (``1.1`` read from its text), so that 1 h times 1.1 is
exactly 66 minutes, not a second more after float rounding.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

# What Slurm reads as no limit at all: scaling it means nothing.
_UNLIMITED_TIMES = ("UNLIMITED", "INFINITE", "-1")
# Memory units, in megabytes (Slurm's own unit, and the one a bare number means).
_MEMORY_UNITS = {
    "K": Fraction(1, 1024),
    "M": Fraction(1),
    "G": Fraction(1024),
    "T": Fraction(1024**2),
}
_MEMORY = re.compile(r"(\d+)([KMGTkmgt]?)")


class LimitError(ValueError):
    """A time or memory value that cannot be scaled: the message says why, in a few words."""


def parse_time(text: str) -> int:
    """A time limit in seconds, from any of Slurm's formats: ``MM``, ``MM:SS``, ``HH:MM:SS``,
    ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``.

    Raises:
        LimitError: not one of these, or no limit (``0``, ``UNLIMITED``, ``INFINITE``).
    """
    text = text.strip()
    if text.upper() in _UNLIMITED_TIMES:
        raise LimitError(f"time limit {text} is no limit")
    days, dash, clock = text.rpartition("-")
    fields = clock.split(":")
    numbers = [days, *fields] if dash else fields
    if not 1 <= len(fields) <= 3 or not all(n.isascii() and n.isdigit() for n in numbers):
        raise LimitError(
            f"'{text}' is not a Slurm time limit (MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)"
        )
    values = [int(field) for field in fields]
    if dash:  # after the days: hours, then minutes, then seconds
        hours, minutes, seconds = (values + [0, 0])[:3]
        total = int(days) * 86400 + hours * 3600 + minutes * 60 + seconds
    else:  # alone: minutes; MM:SS; HH:MM:SS
        seconds_first = {1: (60,), 2: (60, 1), 3: (3600, 60, 1)}[len(values)]
        total = sum(value * unit for value, unit in zip(values, seconds_first, strict=True))
    if total == 0:
        raise LimitError(f"time limit {text} is no limit")
    return total


def format_time(seconds: int) -> str:
    """``HH:MM:SS``, or ``D-HH:MM:SS`` from a day on."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}-{clock}" if days else clock


def scaled_time(text: str, factor: Fraction) -> str:
    """The time limit ``text`` times ``factor``, rounded up to the second.

    Raises:
        LimitError: ``text`` is no time limit Slurm reads, or none at all.
    """
    return format_time(math.ceil(parse_time(text) * factor))


def parse_memory(text: str) -> Fraction:
    """A memory size in megabytes: a whole number with an optional unit, K, M (the default), G
    or T, as ``--mem`` takes it.

    Raises:
        LimitError: not such a size, or ``0`` (all of a node's memory).
    """
    match = _MEMORY.fullmatch(text.strip())
    if match is None or not match[1].isascii():
        raise LimitError(f"'{text}' is not a Slurm memory size (a whole number, then K, M, G or T)")
    if int(match[1]) == 0:
        raise LimitError(f"memory {text} is all of each node's memory")
    return int(match[1]) * _MEMORY_UNITS[(match[2] or "M").upper()]


def format_memory(megabytes: int) -> str:
    """In the largest unit that holds it whole: ``24G``, ``18023M``."""
    for unit in ("T", "G"):
        size = _MEMORY_UNITS[unit]
        if megabytes % size == 0:
            return f"{megabytes // size}{unit}"
    return f"{megabytes}M"


def scaled_memory(text: str, factor: Fraction) -> str:
    """The memory size ``text`` times ``factor``, rounded up to the megabyte (Slurm's unit).

    Raises:
        LimitError: ``text`` is no memory size Slurm reads, or all of a node's.
    """
    return format_memory(math.ceil(parse_memory(text) * factor))
