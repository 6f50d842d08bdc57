"""How the tool words what it says: counts of things, and the suggestion for a misspelt name."""

from __future__ import annotations

from collections.abc import Iterable

SUGGESTION_CUTOFF = 0.6  # difflib's own default: close enough to be the name meant


def plural(count: int, word: str, *, grouped: bool = False) -> str:
    """``1 config``, ``4 configs``; ``grouped`` writes ``2,000``."""
    number = f"{count:,}" if grouped else str(count)
    return f"{number} {word}{'s' if count != 1 else ''}"


def closest(name: str, known: Iterable[str], cutoff: float = SUGGESTION_CUTOFF) -> str | None:
    """The known name ``name`` is most likely a misspelling of, for a did-you-mean; ``None``
    when none is close enough."""
    close = close_names(name, known, 1, cutoff)
    return close[0] if close else None


def close_names(
    name: str, known: Iterable[str], most: int, cutoff: float = SUGGESTION_CUTOFF
) -> list[str]:
    """Up to ``most`` known names that ``name`` looks like, best first (every did-you-mean)."""
    import difflib  # only a mistake needs a suggestion (2 ms)

    return difflib.get_close_matches(name, list(known), n=most, cutoff=cutoff)
