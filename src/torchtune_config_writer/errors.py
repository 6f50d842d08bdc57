"""The one error type of the tool: bad input that the user can fix."""

from __future__ import annotations

import os
from pathlib import Path

_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]} | {
    ord("\n"): "\\n",
    ord("\r"): "\\r",
    ord("\t"): "\\t",
    0x85: "\\x85",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


class ConfigWriterError(Exception):
    """Bad input: a file, an optional position in it, and what to do about it.

    The command line turns every instance into one ``error:`` line and exit code 2.
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
        where = self.location()
        text = f"{where}: {self.message}" if where else self.message
        return text.translate(_ESCAPES)  # one line, whatever the user's text holds


def display_path(path: Path) -> str:
    """A path as the user would type it: relative to the cwd when inside it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


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
