"""The one error type of the tool: bad input that the user can fix."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from enum import IntEnum
from pathlib import Path
from typing import TypeVar

from .terminal import printable

T = TypeVar("T")
U = TypeVar("U")

_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class ExitCode(IntEnum):
    """What the command line exits with; every command and the hook share these."""

    OK = 0
    FAILED = 1  # drift, or invalid configs
    BAD_INPUT = 2  # a ConfigWriterError: nothing was changed
    INTERRUPTED = 130  # 128 + SIGINT
    BROKEN_PIPE = 141  # 128 + SIGPIPE: `check | head`


class ConfigWriterError(Exception):
    """Bad input: a file, an optional position in it, and what to do about it.

    The command line turns every instance into one ``error:`` line and exit code 2 (one line
    for each of :attr:`errors`, when independent mistakes were found together).
    Any other exception is a bug and is allowed to show its traceback.

    Args:
        message: What is wrong and how to fix it.
        path: The file the problem is in, if any.
        line: 1-based line in ``path``, where known.
        column: 1-based column in ``path``, where known.
    """

    def __init__(
        self,
        message: str,
        path: Path | str | None = None,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        self.column = column
        self.errors: list[ConfigWriterError] = [self]

    def location(self) -> str:
        """``file:line:column`` with the parts that are known, file relative to the cwd."""
        if self.path is None:
            return ""
        parts = [display_path(self.path)]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def __str__(self) -> str:
        if self.errors != [self]:
            return "\n".join(map(str, self.errors))
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        # One line, whatever the user's text holds (C1 and direction overrides: printable).
        return printable(text.translate(_ESCAPES))


def first_line(exc: BaseException) -> str:
    """An exception's message as one line of an error: its first line that says something (a
    library's message may start with a line break and go on for several), else its type's name.
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()
    return type(exc).__name__


def all_of(errors: Iterable[ConfigWriterError]) -> ConfigWriterError:
    """One error standing for several found together, in file and line order, each once."""
    found: dict[str, ConfigWriterError] = {}
    for error in errors:
        for one in error.errors:
            found.setdefault(str(one), one)
    ordered = sorted(found.values(), key=lambda e: (str(e.path or ""), e.line or 0, e.column or 0))
    if len(ordered) == 1:
        return ordered[0]
    first = ordered[0]
    combined = ConfigWriterError(first.message, first.path, first.line, first.column)
    combined.errors = ordered
    return combined


class ErrorList:
    """Independent checks run one after another with every failure kept, so that a user sees
    all the mistakes of a file at once, as torchtune's ``ConfigError`` lists them."""

    def __init__(self) -> None:
        self.found: list[ConfigWriterError] = []

    def add(self, error: ConfigWriterError) -> None:
        """Keep ``error``."""
        self.found.append(error)

    def attempt(self, check: Callable[[], T], instead: U) -> T | U:
        """What ``check`` returns; ``instead`` when it raised, its error kept."""
        try:
            return check()
        except ConfigWriterError as error:
            self.found.append(error)
            return instead

    def raise_found(self) -> None:
        """Raise what was kept, if anything.

        Raises:
            ConfigWriterError: every error kept, as one.
        """
        if self.found:
            raise all_of(self.found)


def relative_path(path: Path) -> str:
    """A path as the user would type it: relative to the cwd when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def display_path(path: Path) -> str:
    """:func:`relative_path` for a message: a line break or control character in a name is
    written as an escape (a name is a repository's text, and must not start a line of its own)."""
    return printable(relative_path(path))


def require_path(path: Path, missing: str) -> None:
    """Raise ``missing`` for a path that is not there, and say why one cannot be looked at
    (a name too long for the file system, a folder this user may not search).

    Raises:
        ConfigWriterError: the path does not exist or cannot be read.
    """
    try:
        found = path.exists()
    except OSError as exc:
        raise ConfigWriterError(f"cannot read: {exc.strerror or exc}", path) from None
    if not found:
        raise ConfigWriterError(missing, path)


# What to do about the file-system errors a user meets, by errno.
_OS_ADVICE = {
    errno.EACCES: "give this user access to it (ls -ld shows its owner and mode)",
    errno.EPERM: "give this user access to it (ls -ld shows its owner and mode)",
    errno.ENAMETOOLONG: "shorten the name in it that the file system finds too long",
    errno.ELOOP: "it is a symlink that leads to itself: fix or remove the link",
    errno.EROFS: "the file system is read-only: work on a writable copy",
    errno.ENOSPC: "the disk is full: free some space and run again",
    errno.EDQUOT: "the disk quota is used up: free some space and run again",
}


def file_system_error(exc: OSError) -> ConfigWriterError:
    """What the file system refused, as bad input: the path, the reason, what to do.

    The last resort of the command line for a folder or file the tool may not read or write
    where no caller said more; whatever was being written has already been rolled back.
    """
    reason = (exc.strerror or str(exc)).rstrip(".")
    advice = _OS_ADVICE.get(exc.errno or 0)
    message = f"{reason[:1].lower()}{reason[1:]}: {advice}" if advice else reason
    path = exc.filename if isinstance(exc.filename, str) else None
    if path is not None and exc.errno == errno.EACCES:
        path = str(_blocking_folder(Path(path)))
    return ConfigWriterError(message, path)


def _blocking_folder(path: Path) -> Path:
    """The folder that keeps this user from ``path`` (the first that may not be searched), else
    ``path`` itself: a file below a locked folder is not what needs its mode changed."""
    absolute = Path(os.path.abspath(path))
    for folder in reversed(absolute.parents[:-1]):  # from the top down, below /
        if not os.access(folder, os.X_OK):
            return folder
    return absolute
