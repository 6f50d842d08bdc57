"""Which combinations a study runs: the grid, less what ``exclude`` removes, or a seeded sample.

```yaml
exclude:                      # never batch_size 8 with lora_rank 64
  - {batch_size: 8, lora_rank: 64}
conditions:                   # when batch_size is 2, set gradient_accumulation_steps to 8
  - when: {batch_size: 2}
    set: {gradient_accumulation_steps: 8}
search: {random: 20, seed: 7} # 20 runs drawn from the grid and the ranges
```

A random draw depends only on the seed, the draw's number and the variable's name, through
SHA-256 (never Python's ``random``, whose algorithms may change between versions), and a
log-uniform value is computed with :mod:`decimal`, whose ``ln`` and ``exp`` are correctly
rounded: the same file draws the same runs on every machine and Python. Draw ``n`` never depends
on how many are drawn, so raising ``random`` keeps the runs drawn already.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

from ..errors import ErrorList
from ..keypaths import KeyPath
from ..wording import closest
from ..yaml_read import Document, a_type_name, plain
from ..yaml_write import dump_inline
from .parameters import Parameter, Range, linked_axes
from .sections import reject_unknown_keys

SIGNIFICANT_DIGITS = 4  # a drawn float is written with these (1.234e-04), as a reviewer reads it
_MAX_TRIES = 100  # draws per run wanted before a sample too large for its grid is an error
_DIGITS = 34  # decimal's precision for a drawn value, far past the 4 digits written


@dataclass(frozen=True)
class Rule:
    """A partial assignment of variables: ``{batch_size: 8, lora_rank: 64}``.

    Attributes:
        values: Each named variable's index into its values.
        keypath: Where the rule is written.
    """

    values: tuple[tuple[int, int], ...]
    keypath: KeyPath

    def matches(self, at: list[int]) -> bool:
        """Whether the combination (each variable's value index) is one the rule names."""
        return all(at[variable] == value for variable, value in self.values)


@dataclass(frozen=True)
class Condition:
    """``when`` these values, ``set`` those keys.

    Attributes:
        when: The rule that says which combinations.
        sets: The keys set, as controls are written.
    """

    when: Rule
    sets: tuple[Parameter, ...]


@dataclass(frozen=True)
class Search:
    """``search: {random: N, seed: S}``."""

    runs: int
    seed: int


@dataclass(frozen=True)
class Design:
    """What ``exclude``, ``conditions`` and ``search`` say.

    Attributes:
        variables: The variables, a range's drawn values in place of the range.
        combinations: Each run's value index for each variable, in run order (``None``: the
            full grid, last variable fastest).
        conditions: The conditional values.
        excluded: How many combinations of the grid ``exclude`` removed.
    """

    variables: tuple[Parameter, ...]
    combinations: tuple[tuple[int, ...], ...] | None = None
    conditions: tuple[Condition, ...] = ()
    excluded: int = 0


def grid(variables: tuple[Parameter, ...]) -> Iterator[list[int]]:
    """Every combination of the full grid, the last variable fastest; a linked group moves as
    one."""
    axes = list(linked_axes(variables, lambda variable: variable))
    for position in itertools.product(*(range(len(axis[0].values)) for axis in axes)):
        yield [at for axis, at in zip(axes, position, strict=True) for _ in axis]


def read_design(doc: Document, data: dict[str, Any], variables: tuple[Parameter, ...]) -> Design:
    """Check ``exclude``, ``conditions`` and ``search`` against the variables, and work out the
    combinations.

    Raises:
        ConfigWriterError: a rule naming no variable or no value of it, a rule that matches no
            combination, a malformed section, or a range without ``search``.
    """
    ranges = {v.name: v.drawn_from for v in variables if v.drawn_from is not None}
    found = ErrorList()
    search = found.attempt(partial(_read_search, doc, data.get("search")), None)
    if ranges and search is None and "search" not in data:
        first = next(iter(ranges))
        found.add(
            doc.error(
                f"{first} is a range, which is drawn from: add search: {{random: N, seed: S}} "
                "(N runs), or give a list of values to sweep",
                ("variables", first),
            )
        )
    found.raise_found()
    exclude = found.attempt(partial(_rules, doc, data.get("exclude"), ("exclude",), variables), [])
    conditions = found.attempt(partial(_conditions, doc, data.get("conditions"), variables), [])
    found.raise_found()  # what the rules match is worked out once they are all well formed
    used = [False] * len(exclude)
    excluded = 0
    available: int | None = None  # the grid's combinations that exclude leaves, where finite
    if search is not None:
        drawn_used = [False] * len(exclude)
        variables, combinations, excluded = _sample(variables, ranges, search, exclude, drawn_used)
        if ranges:  # ranges are drawn from, never listed: what the draws met is what is known
            used = drawn_used
        else:  # a grid of listed values: what the rules match is known exactly
            grid_of = tuple(variables)
            available = sum(1 for at in grid(grid_of) if not _excluded(exclude, at, used))
    if not exclude and not conditions and search is None:
        return Design(variables)
    if search is None:
        combinations = []
        for at in grid(variables):
            hit = [index for index, rule in enumerate(exclude) if rule.matches(at)]
            for index in hit:
                used[index] = True
            if hit:
                excluded += 1
            else:
                combinations.append(tuple(at))
    for rule, was_used in zip(exclude, used, strict=True):
        if not was_used:
            found.add(doc.error(_matches_nothing("exclude"), rule.keypath))
    for condition in conditions:
        if not any(condition.when.matches(list(at)) for at in combinations):
            found.add(doc.error(_matches_nothing("conditions"), condition.when.keypath))
    if not combinations and exclude:
        found.add(
            doc.error(
                "exclude removes every combination: no run is left; exclude fewer, or sweep "
                "more values",
                ("exclude",),
            )
        )
    elif search is not None and len(combinations) < search.runs:
        left = " left by exclude" if exclude else ""
        if available is not None:
            said = f"the grid has only {available} different combinations{left}"
        else:
            said = f"only {len(combinations)} different combinations{left} were drawn"
        found.add(
            doc.error(
                f"search.random asks for {search.runs} runs, but {said}: ask for fewer, or "
                "sweep more values",
                ("search", "random"),
            )
        )
    found.attempt(lambda: _no_condition_clash(doc, conditions, combinations), None)
    found.raise_found()
    return Design(variables, tuple(combinations), tuple(conditions), excluded)


def _excluded(exclude: list[Rule], at: list[int], used: list[bool]) -> bool:
    """Whether a rule excludes the combination ``at``; each rule that does is marked used."""
    hit = False
    for index, rule in enumerate(exclude):
        if rule.matches(at):
            used[index] = hit = True
    return hit


def _matches_nothing(section: str) -> str:
    return (
        f"this {section} rule matches no combination of the runs: a rule must name values the "
        "variables have together (a linked group's values only at the same position)"
    )


def _read_search(doc: Document, value: Any) -> Search | None:
    if value is None:
        return None
    keypath = ("search",)
    if not isinstance(value, dict):
        raise doc.error(
            f"search must be a mapping, e.g. {{random: 20, seed: 7}}, found {a_type_name(value)}",
            keypath,
        )
    reject_unknown_keys(doc, value, ("random", "seed"), keypath, "key")
    for key in ("random", "seed"):
        number = value.get(key)
        if isinstance(number, bool) or not isinstance(number, int) or number < (key == "random"):
            raise doc.error(
                f"search.{key} must be a whole number{' of at least 1' if key == 'random' else ''}"
                f" (search: {{random: 20, seed: 7}}: 20 runs, drawn with seed 7)",
                (*keypath, key) if key in value else keypath,
            )
    return Search(value["random"], value["seed"])


def _rules(
    doc: Document, value: Any, keypath: KeyPath, variables: tuple[Parameter, ...]
) -> list[Rule]:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        raise doc.error(
            "exclude is a list of the combinations to leave out, e.g. - {batch_size: 8, "
            "lora_rank: 64}",
            keypath,
        )
    found = ErrorList()
    rules = [
        found.attempt(partial(_rule, doc, item, (*keypath, i), variables), None)
        for i, item in enumerate(value)
    ]
    found.raise_found()
    return [rule for rule in rules if rule is not None]


def _rule(doc: Document, value: Any, keypath: KeyPath, variables: tuple[Parameter, ...]) -> Rule:
    if not isinstance(value, dict) or not value:
        raise doc.error(
            "a rule is a mapping of variables to one of their values, e.g. {batch_size: 8}",
            keypath,
        )
    # A variable that adds a key (+note) is named with or without its +; a value as written,
    # a !replace mapping by its keys.
    names = [variable.name.lstrip("+") for variable in variables]
    picked = []
    for name, wanted in value.items():
        name = name.lstrip("+") if isinstance(name, str) else name
        if name not in names:
            close = closest(str(name), names)
            hint = f"did you mean '{close}'? " if close else ""
            raise doc.error(
                f"'{name}' is not a variable: {hint}a rule names variables "
                f"({', '.join(names) or 'there are none'})",
                (*keypath, name),
            )
        index = names.index(name)
        shown = [dump_inline(plain(item)) for item in variables[index].values]
        if dump_inline(plain(wanted)) not in shown:
            raise doc.error(
                f"{name} has no value {dump_inline(wanted)}: it has {', '.join(shown)}",
                (*keypath, name),
            )
        picked.append((index, shown.index(dump_inline(plain(wanted)))))
    return Rule(tuple(picked), keypath)


def _conditions(doc: Document, value: Any, variables: tuple[Parameter, ...]) -> list[Condition]:
    if value is None:
        return []
    keypath: KeyPath = ("conditions",)
    example = "- when: {batch_size: 2}\n    set: {gradient_accumulation_steps: 8}"
    if not isinstance(value, list) or not value:
        raise doc.error(f"conditions is a list of when/set pairs, e.g. {example}", keypath)
    names = {variable.name for variable in variables}
    conditions = []
    found = ErrorList()
    for index, item in enumerate(value):
        at = (*keypath, index)
        if not isinstance(item, dict) or set(item) != {"when", "set"}:
            found.add(doc.error(f"a condition has when: and set:, e.g. {example}", at))
            continue
        when = found.attempt(partial(_rule, doc, item["when"], (*at, "when"), variables), None)
        sets = item["set"]
        if not isinstance(sets, dict) or not sets:
            found.add(doc.error("set is a mapping of keys to their values", (*at, "set")))
            continue
        for name in sets:
            if name in names:
                found.add(
                    doc.error(
                        f"'{name}' is a variable: a condition sets other keys (say when it "
                        "applies with exclude instead)",
                        (*at, "set", name),
                    )
                )
        if when is not None:
            parameters = tuple(
                Parameter(str(name), (inner,), (*at, "set", name)) for name, inner in sets.items()
            )
            conditions.append(Condition(when, parameters))
    found.raise_found()
    return conditions


def _no_condition_clash(
    doc: Document, conditions: list[Condition], combinations: list[tuple[int, ...]]
) -> None:
    """Two conditions that set one key in one run would depend on their order: refused."""
    for first_index, first in enumerate(conditions):
        for second in conditions[first_index + 1 :]:
            shared = {p.name for p in first.sets} & {p.name for p in second.sets}
            if not shared:
                continue
            if any(
                first.when.matches(list(at)) and second.when.matches(list(at))
                for at in combinations
            ):
                name = sorted(shared)[0]
                raise doc.error(
                    f"two conditions set {name} in the same runs: make their when: apart, or "
                    "merge them",
                    second.when.keypath,
                )


# --- seeded draws ---------------------------------------------------------------------------


def _unit(seed: int, draw: int, name: str) -> float:
    """A number in [0, 1) fixed by the seed, the draw's number and the variable's name."""
    import hashlib  # only a search draws: the hook's path does not pay for it (5 ms)

    digest = hashlib.sha256(f"{seed}/{draw}/{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / 2**53


def draw_value(kind: str, low: float, high: float, unit: float) -> float | int:
    """The value at ``unit`` of a range, floats with :data:`SIGNIFICANT_DIGITS` digits."""
    if kind == "integer":
        return int(low) + min(int(unit * (int(high) - int(low) + 1)), int(high) - int(low))
    from decimal import Context, Decimal  # only a search draws (3 ms)

    context = Context(prec=_DIGITS)  # its own context: no thread's settings change a draw
    if kind == "uniform":
        span = context.subtract(Decimal(high), Decimal(low))
        value = context.add(Decimal(low), context.multiply(Decimal(unit), span))
    else:  # log_uniform: exp(ln low + unit (ln high - ln low)), correctly rounded by decimal
        ln_low, ln_high = context.ln(Decimal(low)), context.ln(Decimal(high))
        span = context.subtract(ln_high, ln_low)
        value = context.exp(context.add(ln_low, context.multiply(Decimal(unit), span)))
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _sample(
    variables: tuple[Parameter, ...],
    ranges: dict[str, Range],
    search: Search,
    exclude: list[Rule],
    used: list[bool],
) -> tuple[tuple[Parameter, ...], list[tuple[int, ...]], int]:
    """``search.runs`` different combinations, in draw order, none that ``exclude`` removes.

    Draw ``n`` picks each swept axis's value by its own unit number and draws each range's
    value: nothing in it depends on how many runs are wanted, so more runs keep the first ones.

    Returns:
        The variables with each range's drawn values (in order, each once), the combinations
        (value indexes), and how many draws ``exclude`` removed.
    """
    axes = list(linked_axes(variables, lambda variable: variable))
    drawn: dict[str, list[Any]] = {name: [] for name in ranges}
    seen: set[tuple[Any, ...]] = set()
    combinations: list[tuple[int, ...]] = []
    excluded = 0
    for draw in range(search.runs * _MAX_TRIES):
        if len(combinations) == search.runs:
            break
        at: list[int] = []
        values: list[Any] = []
        for axis in axes:
            name = axis[0].name
            if name in ranges:
                spec = ranges[name]
                value = draw_value(spec.kind, spec.low, spec.high, _unit(search.seed, draw, name))
                known = drawn[name]
                at.append(known.index(value) if value in known else len(known))
                values.append(value)
                continue
            count = len(axis[0].values)
            index = min(int(_unit(search.seed, draw, name) * count), count - 1)
            at.extend(index for _ in axis)
            values.extend(index for _ in axis)
        hit = [number for number, rule in enumerate(exclude) if rule.matches(at)]
        for number in hit:
            used[number] = True
        if hit:
            excluded += 1
            continue
        if tuple(values) in seen:
            continue
        seen.add(tuple(values))
        for axis, value in zip(axes, values, strict=False):
            name = axis[0].name
            if name in ranges and value not in drawn[name]:
                drawn[name].append(value)
        combinations.append(tuple(at))
    materialized = tuple(
        Parameter(v.name, tuple(drawn[v.name]), v.keypath, v.group) if v.name in ranges else v
        for v in variables
    )
    return materialized, combinations, excluded
