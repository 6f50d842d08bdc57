"""What resolving a config's ``${...}`` interpolations may cost, known before resolving any.

OmegaConf caches nothing: each use of a reference resolves it again. ``a1: ${a0}${a0}``,
``a2: ${a1}${a1}``, ... makes ``a24`` a string of 16 million characters built in 2^24 steps (half
a millisecond each), and a chain of references deeper than about 40 ends in a RecursionError.
:func:`resolving_problem` bounds the cost from the strings alone: for each value holding
interpolations, an upper bound of the interpolations evaluated and the characters built to
resolve it, and the length of the chain of references below it, memoized over the references
(linear in the config's size). ``generate`` refuses a config past a limit and ``validate``
reports it instead of resolving it; a config without ``${`` costs one walk over its strings.

References that cannot be followed before resolving are bounded too: ``${oc.env:X}`` counts as a
short text, ``${oc.decode:...}`` and ``${oc.create:...}`` as four times what they decode (a list
reads longer than its items). Two forms could build references while resolving, which no bound
sees, and are refused: a key made by an interpolation (``${a.${b}}``), and decoding text that can
hold a ``$``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

from .interpolation_syntax import WHOLE_REFERENCE, read_interpolations
from .keypaths import KeyPath, dotted

# The interpolations evaluated, and the characters they build, to resolve every value of a
# config once. OmegaConf takes 0.3 to 0.7 ms for each interpolation, so a config within these
# resolves in seconds (validating resolves it a few times over); torchtune's own configs take at
# most 6 and 312 characters, and a doubling chain passes them by its 12th value.
MAX_INTERPOLATIONS = 10_000
MAX_CHARACTERS = 1024 * 1024
# References of references: OmegaConf itself fails past 37 to 61 (Python's recursion limit,
# depending on the form); torchtune's configs chain two or three.
MAX_CHAIN = 32
# What an environment variable is counted as: a path (the environment is not the config's).
_ENVIRONMENT_CHARACTERS = 256
# A list's or mapping's text is longer than its items (quotes, commas): decoding counts this much.
_DECODED_GROWTH = 4
_PART = re.compile(r"[^.\[\]]+")
_CAP = 10**15  # counts saturate here: a chain doubling 5,000 times needs no exact figure


@dataclass(frozen=True)
class Unbounded:
    """Why a config's interpolations cannot be resolved at a bounded cost.

    Attributes:
        keypath: The value to fix.
        message: What is wrong, with what to do.
    """

    keypath: KeyPath
    message: str


def resolving_problem(config: Any) -> Unbounded | None:
    """Why resolving ``config``'s interpolations would cost past the limits, or ``None``.

    Args:
        config: A config as loaded from YAML (mappings, lists, scalars), interpolations as
            written.

    Returns:
        The first cycle, chain deeper than :data:`MAX_CHAIN`, or reference built while
        resolving; else, where resolving every value once evaluates more than
        :data:`MAX_INTERPOLATIONS` interpolations or builds more than :data:`MAX_CHARACTERS`
        characters, the value that costs the most.
    """
    return ResolvingBound().problem(config)


class ResolvingBound:
    """:func:`resolving_problem` for many configs that share parts, such as a sweep's runs.

    Args:
        shared: The config the others are made from (a sweep's base with its controls): its
            mappings and lists, when a config holds the same objects, are not searched for
            interpolations again. Nothing of the configs checked is kept.
    """

    def __init__(self, shared: Any = None) -> None:
        # id of a mapping or list of ``shared`` -> (it, its strings holding ${, key paths from it)
        self._known: dict[int, tuple[Any, tuple[tuple[KeyPath, str], ...]]] = {}
        self.keys_read: frozenset[Any] = frozenset()
        """The top-level keys whose values the last check read: what the others cannot change."""
        if isinstance(shared, (dict, list)):
            self._interpolated(shared, remember=True)

    def problem(self, config: Any) -> Unbounded | None:
        """Why resolving ``config``'s interpolations would cost past the limits, or ``None``."""
        sources = self._interpolated(config, remember=False) if _holds(config) else ()
        graph = _Graph(config)
        found = graph.problem(sources) if sources else None
        self.keys_read = frozenset(graph.read)
        return found

    def _interpolated(self, node: Any, remember: bool) -> tuple[tuple[KeyPath, str], ...]:
        """Every string holding ``${`` inside the mapping or list ``node``, with its key path."""
        known = self._known.get(id(node))
        if known is not None and known[0] is node:
            return known[1]
        found: list[tuple[KeyPath, str]] = []
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            if isinstance(value, str):
                if "${" in value:
                    found.append(((key,), value))
            elif isinstance(value, (dict, list)):
                found.extend(
                    ((key, *inner), text) for inner, text in self._interpolated(value, remember)
                )
        if remember:
            self._known[id(node)] = (node, tuple(found))
        return tuple(found)


class _Cost(NamedTuple):
    """An upper bound of what resolving one value takes."""

    interpolations: int  # evaluated, each reference resolved again at each use
    characters: int  # of the resolved value, as text
    chain: int  # the longest chain of references (nested interpolations count too)
    dollar: bool  # a '$' may be in the resolved text


class _Refused(Exception):
    def __init__(self, keypath: KeyPath, message: str) -> None:
        super().__init__(message)
        self.unbounded = Unbounded(keypath, message)


class _Need(NamedTuple):
    """A value another one needs resolved, and how.

    ``how`` is "child" (an item of a mapping or list), "whole" (the value a reference names),
    "text" (a mapping or list put into a string: Python's text of it, nothing in it resolved)
    or "part" (the value holding the one named, made by a resolver: no more than all of it).
    """

    keypath: KeyPath
    how: str
    level: int = 0  # how deep in its string the reference is nested
    via: tuple[KeyPath, ...] = ()  # whole references gone on through (``${b.x}``, ``b: ${a}``)


@dataclass
class _Frame:
    """A value whose cost is being worked out: what it needs, and how many of those are done."""

    keypath: KeyPath
    needs: list[_Need]
    interpolates: bool
    done: int = 0


class _Graph:
    """The costs of one config's values, each worked out once (depth first, without recursion:
    a chain thousands of references deep is walked as cheaply as a short one)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.costs: dict[KeyPath, _Cost] = {}
        self.texts: dict[KeyPath, _Cost] = {}  # mappings and lists put into strings
        self.read: set[Any] = set()  # top-level keys
        self._chained = 0  # strings among the frames being worked out

    def problem(self, sources: tuple[tuple[KeyPath, str], ...]) -> Unbounded | None:
        self.read.update(keypath[0] for keypath, _ in sources)
        try:
            costs = [(keypath, text, self.cost(keypath)) for keypath, text in sources]
        except _Refused as refused:
            return refused.unbounded
        interpolations = sum(cost.interpolations for _, _, cost in costs)
        characters = sum(cost.characters for _, _, cost in costs)
        if interpolations > MAX_INTERPOLATIONS:
            keypath, text, worst = max(costs, key=lambda item: item[2].interpolations)
        elif characters > MAX_CHARACTERS:
            keypath, text, worst = max(costs, key=lambda item: item[2].characters)
        else:
            return None
        return Unbounded(keypath, _cost_message(keypath, text, worst, interpolations, characters))

    def cost(self, start: KeyPath) -> _Cost:
        """What resolving the value at ``start`` takes, with that of everything it needs."""
        if start in self.costs:
            return self.costs[start]
        quick = self._quick(start)
        if quick is not None:
            self.costs[start] = quick
            return quick
        frames: list[_Frame] = []
        active: dict[KeyPath, int] = {}  # key path -> its frame's index
        self._enter(start, frames, active)
        while frames:
            frame = frames[-1]
            if frame.done < len(frame.needs):
                need = frame.needs[frame.done]
                frame.done += 1
                if need.how == "text" or need.keypath in self.costs:
                    continue
                if need.keypath in active:
                    cycle = [
                        step
                        for f in frames[active[need.keypath] :]
                        for step in (f.keypath, *f.needs[f.done - 1].via)
                    ]
                    raise _Refused(cycle[0], self._cycle_message([*cycle, need.keypath]))
                self._enter(need.keypath, frames, active)
                continue
            frames.pop()
            del active[frame.keypath]
            self._chained -= frame.interpolates
            self.costs[frame.keypath] = self._combined(frame)
        return self.costs[start]

    def _enter(self, keypath: KeyPath, frames: list[_Frame], active: dict[KeyPath, int]) -> None:
        """Start working out the cost at ``keypath`` (a plain value's is known at once)."""
        value = self._at(keypath)
        if isinstance(value, (dict, list)):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            frame = _Frame(keypath, [_Need((*keypath, key), "child") for key, _ in items], False)
        elif _interpolates(value):
            if self._chained >= MAX_CHAIN:  # known to be too deep before its end is reached
                chain = [f.keypath for f in frames if f.interpolates] + [keypath]
                raise _Refused(chain[0], self._chain_message(chain, complete=False))
            frame = _Frame(keypath, self._needs(keypath, value), True)
            self._chained += 1
        else:
            self.costs[keypath] = _scalar_cost(value)
            return
        active[keypath] = len(frames)
        frames.append(frame)

    def _needs(self, keypath: KeyPath, text: str) -> list[_Need]:
        parsed = read_interpolations(text)
        if parsed.built_key:
            raise _Refused(
                keypath,
                f"{_named(keypath, text)} makes the key it refers to with another interpolation "
                "(${a.${b}}): what resolving it costs cannot be known before resolving it; write "
                "the key itself",
            )
        needs = []
        for key, level in parsed.references:
            # A value that is one interpolation is the value it names; one inside a string is
            # its text. A resolver's argument is taken as the value (it may hand it on as is).
            found = self._walk(keypath, key, as_text=level == 1 and not parsed.whole)
            if found is not None:
                needs.append(found._replace(level=level))
        return needs

    def _combined(self, frame: _Frame) -> _Cost:
        """The cost of ``frame``'s value, from those of what it needs."""
        value = self._at(frame.keypath)
        costs = [
            (
                self._text_cost(need.keypath) if need.how == "text" else self.costs[need.keypath],
                need,
            )
            for need in frame.needs
        ]
        interpolations = sum(len(need.via) + cost.interpolations for cost, need in costs)
        characters = sum(cost.characters for cost, _ in costs)
        dollar = any(cost.dollar for cost, _ in costs)
        if not isinstance(value, str):  # a mapping or list resolved: its items'
            return _Cost(
                _capped(interpolations),
                _capped(_text_overhead(value) + characters),
                max((cost.chain for cost, _ in costs), default=0),
                dollar,
            )
        parsed = read_interpolations(value)
        dollar = dollar or parsed.dollar
        if parsed.decodes and dollar:
            raise _Refused(
                frame.keypath,
                f"{_named(frame.keypath, value)} decodes text that can hold a '$' (oc.decode, "
                "oc.create): an interpolation made while resolving, whose cost cannot be known "
                "before; decode text without '$'",
            )
        characters += parsed.literal + parsed.environment * _ENVIRONMENT_CHARACTERS
        chain = max(
            [parsed.levels, *(need.level + len(need.via) + cost.chain for cost, need in costs)]
        )
        if chain > MAX_CHAIN:
            raise _Refused(frame.keypath, self._chain_message(self._longest(frame), True))
        return _Cost(
            _capped(parsed.interpolations + interpolations),
            _capped(characters * _DECODED_GROWTH**parsed.decodes),
            chain,
            dollar,
        )

    def _quick(self, keypath: KeyPath) -> _Cost | None:
        """The cost of a value whose references all name plain values (``${output_dir}/logs``,
        the common case), without the general walk; ``None`` for any other."""
        value = self._at(keypath)
        if not isinstance(value, str):
            return None
        parsed = read_interpolations(value)
        if parsed.built_key or parsed.decodes or parsed.levels > MAX_CHAIN:
            return None
        characters = parsed.literal + parsed.environment * _ENVIRONMENT_CHARACTERS
        dollar = parsed.dollar
        for key, level in parsed.references:
            found = self._walk(keypath, key, as_text=level == 1 and not parsed.whole)
            if found is None:
                continue  # not there: OmegaConf's error
            target = self._at(found.keypath)
            if found.via or isinstance(target, (dict, list)) or _interpolates(target):
                return None
            cost = _scalar_cost(target)
            characters += cost.characters
            dollar = dollar or cost.dollar
        return _Cost(parsed.interpolations, characters, parsed.levels, dollar)

    def _text_cost(self, keypath: KeyPath) -> _Cost:
        """A mapping or list put into a string: Python's text of it, its items as written."""
        if keypath not in self.texts:
            characters, dollar = 0, False
            todo = [self._at(keypath)]
            while todo:  # every item inside, at any depth (no recursion)
                node = todo.pop()
                if isinstance(node, (dict, list)):
                    characters += _text_overhead(node)
                    todo.extend(node.values() if isinstance(node, dict) else node)
                else:
                    cost = _scalar_cost(node)
                    characters += cost.characters
                    dollar = dollar or cost.dollar
            self.texts[keypath] = _Cost(0, _capped(characters), 0, dollar)
        return self.texts[keypath]

    def _longest(self, frame: _Frame) -> list[KeyPath]:
        """The longest chain of references from ``frame``'s value, by the costs worked out."""
        chain = [frame.keypath]
        needs = frame.needs
        while needs and len(chain) <= MAX_CHAIN + 1:
            deepest = max(needs, key=lambda need: need.level + len(need.via) + self._chain_at(need))
            chain.extend((*deepest.via, deepest.keypath))
            value = self._at(deepest.keypath)
            if not _interpolates(value):
                break
            needs = self._needs(deepest.keypath, value)
        return chain

    def _chain_at(self, need: _Need) -> int:
        known = self.costs.get(need.keypath) if need.how != "text" else None
        return known.chain if known is not None else 0  # a plain value, not kept

    def _walk(self, keypath: KeyPath, key: str, as_text: bool) -> _Need | None:
        """What the reference ``key`` of the value at ``keypath`` needs (``as_text``: inside
        a string), or ``None`` for a key that is not there (OmegaConf's error to raise)."""
        if not key:
            return None
        at, parts = _start(keypath, key)
        via: list[KeyPath] = []
        while at is not None:
            self.read.add(at[0] if at else parts[0] if parts else None)
            value = self._at(at)
            # A whole reference is gone on through: to the key path's rest, or, inside a
            # string, to what gives the text (a mapping's is not resolved).
            if _interpolates(value) and (parts or as_text):
                whole = WHOLE_REFERENCE.fullmatch(value)
                if whole is None or len(via) > MAX_CHAIN:  # made by a resolver, or a loop
                    return _Need(at, "part" if parts else "whole", via=tuple(via))
                via.append(at)
                at, inner = _start(at, whole[1])
                parts = inner + parts
                continue
            if not parts:
                as_is = as_text and isinstance(value, (dict, list))
                return _Need(at, "text" if as_is else "whole", via=tuple(via))
            child = _child(value, parts[0])
            at = None if child is None else (*at, child)
            parts = parts[1:]
        return None

    def _at(self, keypath: KeyPath) -> Any:
        node = self.config
        for part in keypath:
            node = node[part]
        return node

    def _cycle_message(self, cycle: list[KeyPath]) -> str:
        start = cycle[0]
        holders = [key for key in cycle[1:-1] if key == start[: len(key)]]
        why = (
            f"it is inside {dotted(holders[0])}, which it refers to"
            if holders
            else "it refers back to itself"
        )
        return (
            f"{_named(start, self._at(start))} cannot be resolved: {why} "
            f"({_listed(cycle, complete=True)}); break the cycle by writing one of these values "
            "out"
        )

    def _chain_message(self, chain: list[KeyPath], complete: bool) -> str:
        return (
            f"{_named(chain[0], self._at(chain[0]))} starts a chain of more than {MAX_CHAIN} "
            f"references ({_listed(chain, complete)}): OmegaConf fails on chains past about 40 "
            "(Python's recursion limit); refer to the value at its end directly"
        )


def _start(keypath: KeyPath, key: str) -> tuple[KeyPath | None, list[str]]:
    """Where the reference ``key`` of the value at ``keypath`` starts (the root, or for
    ``${.x}`` the mapping holding the value, ``${..x}`` the one above), and its parts."""
    dots = len(key) - len(key.lstrip("."))
    parts = _PART.findall(key[dots:])
    if dots > len(keypath):
        return None, parts
    return (keypath[: len(keypath) - dots] if dots else ()), parts


def _child(node: Any, part: str) -> str | int | None:
    """The key of ``node`` that a key path's ``part`` names, or ``None``."""
    if isinstance(node, dict):
        if part in node:
            return part
        try:
            number = int(part)
        except ValueError:
            return None
        return number if number in node else None
    if isinstance(node, list):
        try:
            number = int(part)
        except ValueError:
            return None
        if -len(node) <= number < len(node):
            return number % len(node)
    return None


def _holds(node: Any) -> bool:
    return isinstance(node, (dict, list))


def _text_overhead(node: dict[Any, Any] | list[Any]) -> int:
    """Python's text of a mapping or list beyond its items': brackets, and quotes, ': ' and
    ', ' around each item."""
    if isinstance(node, dict):
        return 2 + sum(_scalar_cost(key).characters + 8 for key in node)
    return 2 + 4 * len(node)


def _interpolates(value: Any) -> bool:
    return isinstance(value, str) and "${" in value


def _scalar_cost(value: Any) -> _Cost:
    if isinstance(value, str):
        return _Cost(0, len(value), 0, "$" in value)
    if isinstance(value, bool) or value is None:
        return _Cost(0, 5, 0, False)
    if isinstance(value, int):  # str() of a huge int raises: its digits, bounded from above
        return _Cost(0, value.bit_length() // 3 + 2, 0, False)
    return _Cost(0, 32, 0, False)  # a float, or any other plain value


def _capped(count: int) -> int:
    return min(count, _CAP)


def _count(number: int) -> str:
    return f"{number:,}" if number < _CAP else f"more than {_CAP:,}"


def _named(keypath: KeyPath, text: str) -> str:
    shown = text if len(text) <= 60 else text[:57] + "..."
    return f"{dotted(keypath)} {shown!r}"


def _listed(chain: list[KeyPath], complete: bool) -> str:
    names = [dotted(keypath) for keypath in chain]
    if len(names) > 5:
        names = [*names[:3], "…", names[-1]] if complete else [*names[:3], "…"]
    elif not complete:
        names.append("…")
    return " → ".join(names)


def _cost_message(
    keypath: KeyPath, text: str, worst: _Cost, interpolations: int, characters: int
) -> str:
    named = _named(keypath, text)
    if interpolations > MAX_INTERPOLATIONS:
        return (
            f"{named} takes {_count(worst.interpolations)} interpolations to resolve, the whole "
            f"config {_count(interpolations)} (OmegaConf resolves a reference again at each use: "
            "a value that uses the one before twice doubles the work at each step): more than "
            f"the {MAX_INTERPOLATIONS:,} a config may take; refer to the value you need directly, "
            "not through values that repeat it"
        )
    return (
        f"{named} resolves to {_count(worst.characters)} characters, the whole config's "
        f"interpolations to {_count(characters)}: more than the {MAX_CHARACTERS:,} a config may "
        "build; refer to long values fewer times, or write out what is needed"
    )
