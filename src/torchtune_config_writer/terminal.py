"""What reaches a terminal or a CI log: a repository's text, with nothing in it that acts.

A pull request names its files and writes its values. Printed raw, a control character would act
on the terminal (an escape sequence writes to the clipboard or clears the screen), a carriage
return would start a new line in a GitHub Actions log, and a line that reads ``::add-mask::``
or holds ``##[`` would be a workflow command there. Every stream the command line writes to goes
through :class:`EscapingStream` (installed by :func:`escaped_output`); what the tool means as a
workflow command (``validate --annotations``) is written with :func:`announce`, past it.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from typing import Any, TextIO

# Characters that act rather than show: C0 and C1 controls, DEL, and the Unicode line and
# paragraph separators and direction overrides (a name that reads backwards on screen).
_ACTING = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ufeff]"
)
_NEWLINE = re.compile("[\n]")
_V1_COMMAND = "##["  # a workflow command anywhere in a line (the runner's older syntax)
# A line whose first non-blank characters are `::` is a workflow command; .NET's TrimStart
# drops every Unicode white space, not only the ASCII ones.
_V2_COMMAND = re.compile(r"^(\s*)::", re.MULTILINE)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str, *, keep_lines: bool = False) -> str:
    """``text`` with every character that acts written as an escape (``\\x1b``, ``\\n``).

    ``keep_lines`` keeps line feeds as they are: for text that is lines by design (a diff). A
    tab is kept. Workflow commands are defused by :class:`EscapingStream`, which sees whole
    lines.
    """
    text = _ACTING.sub(_escape, text)
    return text if keep_lines else _NEWLINE.sub("\\\\n", text)


def defused(text: str) -> str:
    """Whole lines of ``text`` with nothing a GitHub Actions runner reads as a command: a
    leading ``::`` becomes ``\\x3a:``, ``##[`` becomes ``##\\x5b``."""
    text = text.replace(_V1_COMMAND, "##\\x5b")
    return _V2_COMMAND.sub(lambda m: m.group(1) + "\\x3a:", text) if "::" in text else text


class EscapingStream:
    """A text stream that writes whole lines, escaped, to ``raw``: control characters as
    escapes (a line feed is the line's end) and workflow commands defused. A partial line waits
    for its end, or for :meth:`flush`."""

    def __init__(self, raw: TextIO) -> None:
        self.raw = raw
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            whole, self._pending = self._pending.rsplit("\n", 1)
            self.raw.write(defused(printable(whole, keep_lines=True)) + "\n")
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._pending:
            self.raw.write(defused(printable(self._pending, keep_lines=True)))
            self._pending = ""
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding: the raw stream's
        return getattr(self.raw, name)


def check_mark() -> str:
    """The ✓ of the original format, unless standard output's encoding cannot show it."""
    try:
        "✓".encode(sys.stdout.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "*"
    return "✓"


def announce(text: str) -> None:
    """Write ``text`` to standard output as it is: workflow commands the tool means to send
    (their own values escaped by the caller, as GitHub documents)."""
    stream = sys.stdout
    if isinstance(stream, EscapingStream):
        stream.flush()
        stream = stream.raw
    stream.write(text)


def raw_stderr() -> TextIO:
    """Standard error past the escaping, for the progress line's own control characters."""
    stream = sys.stderr
    if isinstance(stream, EscapingStream):
        stream.flush()
        return stream.raw
    return stream


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """Standard output and error escaped for the duration (the command line's ``main``)."""
    saved = sys.stdout, sys.stderr
    out, err = EscapingStream(saved[0]), EscapingStream(saved[1])
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            err.flush()
        try:
            out.flush()
        finally:
            sys.stdout, sys.stderr = saved
