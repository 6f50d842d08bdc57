"""Markdown for a job summary or a pull-request comment, where a pull request's text is text.

A pull request chooses its folder names, keys and values: in Markdown they could close a fence,
open HTML (``<img>``, ``<h1>``), break a table or mention people (``@user``, ``@org/team``; the
bot's comment would ping them). Everything that came from a repository goes through
:func:`code` (a code span: no Markdown, no HTML, no mention inside it) or :func:`fenced` (a code
block whose fence no line of it can close).
"""

from __future__ import annotations

import re

from .terminal import printable


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(re.escape(char) + "+", text)
    return max((len(run) for run in runs), default=0)


def code(text: str, *, in_table: bool = True) -> str:
    """``text`` as one inline code span, on one line.

    The span's backticks outnumber any run inside it, so none closes it; a space pads a text
    that starts or ends with a backtick. In a table a ``|`` is escaped (GitHub splits cells
    before it reads code spans). Control characters and line breaks are written as escapes.
    """
    text = printable(text)
    if in_table:
        text = text.replace("|", "\\|")
    if not text:
        return ""
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str = "") -> str:
    """``text`` as a fenced code block whose fence is longer than any backtick run in it."""
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    body = printable(text, keep_lines=True)
    return f"{fence}{info}\n{body}{'' if body.endswith(chr(10)) or not body else chr(10)}{fence}\n"
