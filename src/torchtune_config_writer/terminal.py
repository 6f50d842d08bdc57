"""What reaches a terminal or a CI log: a repository's text, with nothing in it that acts.

A pull request names its files and writes its values. Printed raw, a control character would act
on the terminal (an escape sequence writes to the clipboard or clears the screen), a carriage
return would start a new line in a GitHub Actions log, and a line that reads ``::add-mask::``
or holds ``##[`` would be a workflow command there. Every stream the command line writes to goes
through :class:`EscapingStream` (installed by :func:`escaped_output`); what the tool means as a
workflow command (``validate --annotations``) is written with :func:`announce`, past it.

Colour is added last, to a line already escaped: by what the line starts with (``error:``, a
diff's ``+``), so nothing a repository writes can add or end a colour of its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from typing import Any, Literal, TextIO

ColourChoice = Literal["auto", "always", "never"]

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


# SGR parameters: bold red errors, yellow warnings, a diff's green additions and red removals,
# as git, ruff and pre-commit show them.
_RED, _GREEN, _YELLOW, _CYAN, _BOLD = "31", "32", "33", "36", "1"
# A line's start → the colour of that start (a message's label) or of the whole line (a diff's).
_LABELS = [
    (re.compile(r"(?:error|invalid)\b:?"), f"{_BOLD};{_RED}"),
    (re.compile(r"(?:warning|drift|missing|stale|unverified)\b:?"), f"{_BOLD};{_YELLOW}"),
    (re.compile(r"(?:note|hint)\b:?"), _CYAN),
    (re.compile(r"(?:fixed:|✓|\*(?= ))"), f"{_BOLD};{_GREEN}"),
    (re.compile(r"!(?= )"), f"{_BOLD};{_YELLOW}"),
]
_DIFF_LINES = [
    (re.compile(r"(?:\+\+\+|---) .*"), _BOLD),
    (re.compile(r"@@ .*"), _CYAN),
    (re.compile(r"\+.*"), _GREEN),
    (re.compile(r"-.*"), _RED),
]


def coloured(line: str) -> str:
    """One line (escaped already, no line feed) with ANSI colour on its label or diff sign.

    A finding's indented label (``  error model.x``) is coloured as a message's is.
    """
    for pattern, sgr in _DIFF_LINES:
        if pattern.fullmatch(line):
            return f"\033[{sgr}m{line}\033[0m"
    indent = len(line) - len(line.lstrip(" "))
    for pattern, sgr in _LABELS:
        match = pattern.match(line, indent)
        if match:
            return f"{line[:indent]}\033[{sgr}m{match.group()}\033[0m{line[match.end() :]}"
    return line


def wants_colour(stream: TextIO, choice: ColourChoice = "auto") -> bool:
    """Whether to colour ``stream``: ``always``/``never`` as told; ``auto`` colours a terminal
    unless ``NO_COLOR`` is set (no-color.org), ``FORCE_COLOR`` colours any stream, and a
    ``TERM=dumb`` terminal is not coloured."""
    if choice != "auto":
        return choice == "always"
    if os.environ.get("NO_COLOR"):
        return False
    if os.environ.get("FORCE_COLOR"):
        return True
    return is_terminal(stream) and os.environ.get("TERM") != "dumb"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal a person watches, not a CI log (a runner such as act may
    give a job a pseudo-terminal; ``CI`` says it is a log)."""
    try:
        return stream.isatty() and not os.environ.get("CI")
    except (AttributeError, ValueError):  # a stream without isatty, or closed
        return False


class EscapingStream:
    """A text stream that writes whole lines, escaped, to ``raw``: control characters as
    escapes (a line feed is the line's end) and workflow commands defused, then coloured when
    :attr:`colour` is on. A partial line waits for its end, or for :meth:`flush`."""

    def __init__(self, raw: TextIO, *, colour: bool = False) -> None:
        self.raw = raw
        self.colour = colour
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            whole, self._pending = self._pending.rsplit("\n", 1)
            lines = defused(printable(whole, keep_lines=True))
            if self.colour:
                lines = "\n".join(coloured(line) for line in lines.split("\n"))
            self.raw.write(lines + "\n")
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


def set_colour(choice: ColourChoice) -> None:
    """Colour standard output and error (each by :func:`wants_colour`) from now on, where they
    are the escaping streams of :func:`escaped_output`."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, EscapingStream):
            stream.colour = wants_colour(stream.raw, choice)


@contextlib.contextmanager
def escaped_output() -> Iterator[None]:
    """Standard output and error escaped for the duration (the command line's ``main``); not
    coloured until :func:`set_colour` says so."""
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
