"""Where in the base config each parameter of the experiment file goes, and what the placed
parameters must agree on: no key set twice, placeholders that name variables, strings that load."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any

from ..config_diff import MISSING
from ..errors import ConfigWriterError, ErrorList
from ..experiment.load import Experiment
from ..experiment.parameters import Parameter
from ..keypaths import KeyPath, dotted
from ..wording import closest
from ..yaml_write import dump_inline
from . import builtin_configs
from .merge import MergeConflict, merge_at
from .templates import (
    RUN_ID,
    Placeholder,
    formatted_placeholders,
    interpolation_problem,
    needs_filling,
    parse,
    placeholders,
    strings,
    text_of,
)

# Names the original format documents that are not keys of torchtune's configs.
ALIASES: dict[str, tuple[str, ...]] = {"learning_rate": ("optimizer", "lr")}


class Section(str, Enum):
    """Where in the experiment an entry is written (its text is the section's key)."""

    CONTROLS = "controls"
    VARIABLES = "variables"
    CONDITIONS = "conditions"  # a condition's `set:` (experiment.design)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Placement:
    """A parameter and the key path in the config that it sets.

    Attributes:
        parameter: The entry of the experiment file.
        path: The resolved key path, e.g. ``("model", "lora_rank")``.
        section: The section the entry is written in.
    """

    parameter: Parameter
    path: KeyPath
    section: Section

    def written(self) -> Iterator[tuple[KeyPath, Any]]:
        """Each value with where the experiment file writes it: a control's entry, or the item
        of a variable's list."""
        keypath = self.parameter.keypath
        if self.section is not Section.VARIABLES:
            yield keypath, self.parameter.values[0]
            return
        for index, value in enumerate(self.parameter.values):
            yield (*keypath, index), value


def place_parameters(
    experiment: Experiment, base: dict[str, Any], found: ErrorList
) -> tuple[Placement, ...]:
    """Resolve every control and variable against ``base``, controls first.

    Each is resolved on its own: one that fails adds its error to ``found`` and is left out,
    so that the others are still checked.

    Errors: a name that points nowhere, at several places, at a key that ``+`` says is new but
    exists, or at a key another parameter sets too.
    """
    # A linked group named like a key of the base: in controls, `profiler: {enabled: …}`
    # merges into profiler; here it would not. One error for each group, at its first member.
    clashing: dict[str, str] = {}
    for p in experiment.variables:
        if p.group is not None and p.group in base and p.group not in clashing:
            clashing[p.group] = p.name
            found.add(
                experiment.error(
                    f"variables.{p.group} links the variables in it, but {p.group} is also a key "
                    "of the base config: name the group otherwise, and write the keys inside it "
                    f"as {p.group}.{p.name}",
                    ("variables", p.group),
                )
            )
    placements = []
    # Names resolve against the base as the controls before them shape it: a key under a
    # control's !replace is the replacement's, a key a control added with + is there.
    shaped = base
    for section, parameters in (
        (Section.CONTROLS, experiment.controls),
        (Section.VARIABLES, experiment.variables),
    ):
        for parameter in parameters:
            if section is Section.VARIABLES and parameter.group in clashing:
                continue
            path = found.attempt(partial(resolve_parameter, experiment, parameter, shaped), None)
            if path is None:
                continue
            placements.append(Placement(parameter, path, section))
            if section is Section.CONTROLS:
                shaped = _shaped(shaped, parameter, path)
    found.attempt(partial(_check_no_key_set_twice, experiment, tuple(placements)), None)
    return tuple(placements)


def _shaped(config: dict[str, Any], parameter: Parameter, path: KeyPath) -> dict[str, Any]:
    """``config`` with a control merged in, for resolving the names after it (a conflict is
    the merge's to report, with its location)."""
    if parameter.name.startswith("~"):
        return config  # a key deleted is still named by what else sets it (set twice)
    try:
        merged: dict[str, Any] = merge_at(config, path, parameter.values[0])
    except MergeConflict:
        return config
    return merged


def resolve_parameter(
    experiment: Experiment, parameter: Parameter, base: dict[str, Any]
) -> KeyPath:
    """The key path that ``parameter.name`` means in ``base``.

    A dotted name is that path; ``+name`` adds a new key; a bare name is the top-level key, else
    an alias (``learning_rate`` → ``optimizer.lr``), else the one place where that key occurs.
    """
    name = parameter.name
    if name.startswith("+"):
        return _new_key_path(experiment, parameter, base)
    if name.startswith("~"):  # deletes the key that the name without ~ would set
        kept = Parameter(name[1:], parameter.values, parameter.keypath)
        try:
            return resolve_parameter(experiment, kept, base)
        except NotInBase:
            raise experiment.error(
                f"'{name}' deletes nothing: the base config has no {name[1:]}",
                parameter.keypath,
            ) from None
    path = _split(name, base)
    if len(path) > 1:
        if lookup(base, path) is MISSING:
            raise _not_in_base(name, base, experiment, parameter.keypath)
        return path
    if name in base:
        return (name,)
    alias = ALIASES.get(name)
    if alias is not None and lookup(base, alias) is not MISSING:
        return alias
    places = [place for place in _key_paths(base) if place[-1] == name]
    if len(places) == 1:
        return places[0]
    if places:
        listing = ", ".join(dotted(place) for place in places)
        raise experiment.error(
            f"'{name}' occurs in several places of the base config ({listing}): "
            "write the dotted path of the one you mean",
            parameter.keypath,
        )
    raise _not_in_base(name, base, experiment, parameter.keypath)


def _new_key_path(experiment: Experiment, parameter: Parameter, base: dict[str, Any]) -> KeyPath:
    name = parameter.name[1:]
    path = _split(name, base)
    if lookup(base, path) is not MISSING:
        raise experiment.error(
            f"'+{name}' adds a new key, but the base config already has {dotted(path)}: "
            f"write {name} without the +",
            parameter.keypath,
        )
    for depth in range(1, len(path)):
        parent = lookup(base, path[:depth])
        if parent is MISSING:
            break
        index = path[depth]
        if isinstance(parent, list) and isinstance(index, int):
            if index < len(parent):
                continue  # dataset.0.packed: into an item of a list
            raise experiment.error(
                f"'+{name}': {dotted(path[:depth])} has {len(parent)} items, so there is no "
                f"item {index}; + adds keys to mappings, not items to lists",
                parameter.keypath,
            )
        if not isinstance(parent, dict):
            raise experiment.error(
                f"'+{name}' cannot add a key under {dotted(path[:depth])}, which is not a mapping",
                parameter.keypath,
            )
    return path


def _split(name: str, base: dict[str, Any]) -> KeyPath:
    # A part that is a number indexes a list (dataset.0.source), as torchtune's overrides do.
    path: list[str | int] = []
    node: Any = base
    for part in name.split("."):
        if isinstance(node, list) and part.isdigit():
            path.append(int(part))
            node = node[int(part)] if int(part) < len(node) else None
        else:
            path.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(path)


def lookup(config: Any, path: KeyPath) -> Any:
    """The value at ``path`` in ``config``, or :data:`MISSING` if there is none."""
    node = config
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return MISSING
    return node


def _key_paths(config: Any, prefix: KeyPath = ()) -> Iterator[KeyPath]:
    """Every key path in ``config``, depth first in file order."""
    items: Any = (
        config.items()
        if isinstance(config, dict)
        else (enumerate(config) if isinstance(config, list) else ())
    )
    for key, value in items:
        path = (*prefix, key)
        if isinstance(key, str):
            yield path
        yield from _key_paths(value, path)


class NotInBase(ConfigWriterError):
    """A name that is no key of the base config (a ``~name`` then deletes nothing)."""


def _not_in_base(
    name: str, base: dict[str, Any], experiment: Experiment, keypath: KeyPath
) -> NotInBase:
    found = experiment.error(_not_found_message(name, base, experiment), keypath)
    return NotInBase(found.message, found.path, found.line, found.column)


def _not_found_message(name: str, base: dict[str, Any], experiment: Experiment) -> str:
    lora = _lora_config_instead(name, experiment)
    if lora is not None:
        return lora
    hint = _within_known_parent(name, base)
    if hint is not None:
        return (
            f"'{name}' is not in the base config: {hint}To add it as a new key on purpose, "
            f"write '+{name}'"
        )
    candidates = {dotted(path): path for path in _key_paths(base)}
    candidates.update({alias: path for alias, path in ALIASES.items()})
    close = closest(name, candidates)
    if close is None:  # a misspelt last part of a known key: lora_rnk → model.lora_rank
        leaves = {str(path[-1]): dotted(path) for path in candidates.values()}
        leaf = closest(name.rsplit(".", 1)[-1], leaves)
        close = leaves[leaf] if leaf is not None else None
    hint = f"did you mean '{close}'? " if close is not None else ""
    return (
        f"'{name}' is not in the base config: {hint}"
        f"To add it as a new key on purpose, write '+{name}'"
    )


# The model arguments only LoRA models take: set on a full-finetune config, the fix is another
# config, not a new key that the model would refuse.
LORA_ARGUMENTS = frozenset(
    {
        "lora_rank",
        "lora_alpha",
        "lora_dropout",
        "lora_attn_modules",
        "apply_lora_to_mlp",
        "apply_lora_to_output",
        "use_dora",
        "quantize_base",
    }
)


def _lora_config_instead(name: str, experiment: Experiment) -> str | None:
    """For a LoRA argument on a built-in config without LoRA: the LoRA config of its model."""
    config = experiment.base_config
    if name.rsplit(".", 1)[-1] not in LORA_ARGUMENTS or config is None or "lora" in config:
        return None
    torchtune = builtin_configs.installed_torchtune()
    known = {c.name for c in torchtune.configs} if torchtune is not None else set()
    model, _, variant = config.rpartition("/")
    twins = [
        f"{model}/{variant.replace(kind, 'lora', 1)}"
        for kind in ("full", "qlora")
        if kind in variant
    ]
    found = [twin for twin in twins if twin in known]
    same_model = sorted(c for c in known if c.startswith(f"{model}/") and "lora" in c)
    suggestions = found or same_model[:3]
    instead = (
        f"use a LoRA config of the same model ({' or '.join(suggestions)}) as base_config"
        if suggestions
        else "use a LoRA recipe config as base_config (see `torchtune-config-writer recipes lora`)"
    )
    return (
        f"'{name}' is an argument of LoRA models, and {config} fine-tunes the full model: "
        f"{instead}; a new key would be refused by the model"
    )


def _within_known_parent(name: str, base: dict[str, Any]) -> str | None:
    """The hint for a dotted name whose parent is a mapping of the base: a key of that parent
    (``optimizer.learning_rate`` → ``optimizer.lr``), never the parent itself (``loss.beta`` is
    not ``loss``); ``None`` when no part before the last is in the base."""
    parts = name.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        parent_path = _split(".".join(parts[:depth]), base)
        parent = lookup(base, parent_path)
        if not isinstance(parent, dict):
            continue
        prefix = dotted(parent_path)
        rest = ".".join(parts[depth:])
        alias = ALIASES.get(rest)
        if alias is not None and alias[:-1] == parent_path and alias[-1] in parent:
            return f"did you mean '{dotted(alias)}'? "
        keys = [str(key) for key in parent]
        close = closest(parts[depth], keys)
        if close is not None:
            return f"did you mean '{prefix}.{close}'? "
        shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
        return f"{prefix} has {shown or 'no keys'}. "
    return None


def _leaf_paths(value: Any, path: KeyPath) -> Iterator[KeyPath]:
    """The key paths a value sets when merged at ``path`` (mappings merge, so their leaves)."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from _leaf_paths(inner, (*path, key))
    else:
        yield path


# A key path set so far: the order it was first set in, the path, and who set it.
_Owner = tuple[int, KeyPath, Placement]


def _check_no_key_set_twice(experiment: Experiment, placements: tuple[Placement, ...]) -> None:
    # Linear in the number of key paths: each leaf looks up its own prefixes, and the setters
    # below it are kept per prefix as the first two that differ (enough to find the first one
    # that is not the leaf's own setter). The first clash in setting order is reported.
    owners: dict[KeyPath, _Owner] = {}
    below: dict[KeyPath, list[_Owner]] = {}
    for placement in placements:
        for value in placement.parameter.values:
            for leaf in _leaf_paths(value, placement.path):
                clash = _first_other_setter(leaf, placement, owners, below)
                if clash is not None:
                    _, other_path, other = clash
                    both = (
                        "a variable and a control"
                        if other.section != placement.section
                        else (f"two {placement.section}")
                    )
                    raise experiment.error(
                        f"'{other.parameter.name}' and '{placement.parameter.name}' both set "
                        f"{dotted(min(leaf, other_path, key=len))}: a key may not be set by "
                        f"{both}; keep one",
                        placement.parameter.keypath,
                    )
                if leaf not in owners:
                    owner = (len(owners), leaf, placement)
                    owners[leaf] = owner
                    for depth in range(1, len(leaf)):
                        first = below.setdefault(leaf[:depth], [])
                        if not first or (len(first) == 1 and first[0][2] is not placement):
                            first.append(owner)


def _first_other_setter(
    leaf: KeyPath,
    placement: Placement,
    owners: dict[KeyPath, _Owner],
    below: dict[KeyPath, list[_Owner]],
) -> _Owner | None:
    """The earliest key path set by another entry that ``leaf`` lies in or contains."""
    found = [owners[leaf[:depth]] for depth in range(1, len(leaf) + 1) if leaf[:depth] in owners]
    found += below.get(leaf, [])[:2]
    others = [owner for owner in found if owner[2] is not placement]
    return min(others, key=lambda owner: owner[0]) if others else None


def check_placeholders(
    experiment: Experiment, placements: tuple[Placement, ...], found: ErrorList
) -> None:
    """Every placeholder names ``run_id`` or a variable whose values read as one word.

    Errors (each one added to ``found``): a placeholder naming nothing (with a did-you-mean), a
    control, a variable whose values are lists or mappings, or one whose values hold
    placeholders.
    """
    variables = {
        p.parameter.name.lstrip("+"): p for p in placements if p.section is Section.VARIABLES
    }
    if RUN_ID in variables:
        found.add(
            experiment.error(
                "a variable may not be named run_id: {run_id} is each run's id (run_000, ...)",
                variables[RUN_ID].parameter.keypath,
            )
        )
    # A variable that could not be placed has its own error already.
    unplaced = {p.name.lstrip("+") for p in experiment.variables} - variables.keys()
    known = [RUN_ID, *variables]
    for placement in placements:
        for at, value in placement.written():
            for inner, text in strings(value):
                for written in formatted_placeholders(text):
                    found.add(
                        experiment.error(
                            f"{written}: a placeholder is a name alone, {{name}}, filled with the "
                            "value as written (8, 0.0003, text): format specs are not supported; "
                            f"write {{{written[1:].split(':')[0].split('!')[0]}}}",
                            (*at, *inner),
                        )
                    )
            for inner, name in placeholders(value):
                if name == RUN_ID or name in unplaced:
                    continue
                problem = _placeholder_problem(name, placement, variables, known, placements)
                if problem is None and _in_output_folder((*placement.path, *inner)):
                    problem = _folder_value_problem(name, variables)
                if problem is not None:
                    found.add(experiment.error(problem, (*at, *inner)))


def _in_output_folder(keypath: KeyPath) -> bool:
    return bool(keypath) and str(keypath[-1]) in ("output_dir", "log_dir")


def _folder_value_problem(name: str, variables: dict[str, Placement]) -> str | None:
    """A value that would not be one folder name inside an output folder."""
    named = variables.get(name)
    if named is None:
        return None
    for value in named.parameter.values:
        text = text_of(value)
        if text is not None and ("/" in text or text in (".", "..", "")):
            return (
                f"{{{name}}} goes into an output folder, but {name} has the value "
                f"{dump_inline(value)}, which is no folder name ('/' makes nested folders, "
                "'.' and '..' none): put {run_id} there, or a variable of plain names"
            )
    return None


def _placeholder_problem(
    name: str,
    placement: Placement,
    variables: dict[str, Placement],
    known: list[str],
    placements: tuple[Placement, ...],
) -> str | None:
    named = variables.get(name)
    if named is None:
        return _names_nothing(name, known, placements)
    if named is placement:
        return (
            f"{{{name}}} is inside a value of {name} itself: a variable's value cannot contain "
            "itself"
        )
    for other in named.parameter.values:
        if text_of(other) is None:
            return (
                f"{{{name}}}: {name} has the value {dump_inline(other)}, which cannot go into a "
                "string; only text, numbers and true/false can"
            )
        if needs_filling(other):
            return (
                f"{{{name}}}: the values of {name} hold placeholders themselves; write the "
                "placeholders they use here directly"
            )
    return None


def _names_nothing(name: str, known: list[str], placements: tuple[Placement, ...]) -> str:
    controls = {p.parameter.name.lstrip("+") for p in placements if p.section is Section.CONTROLS}
    if name in controls:
        problem = f"{name} is a control, the same in every run: write its value instead"
    else:
        close = closest(name, known)
        hint = f"did you mean {{{close}}}? " if close is not None else ""
        problem = f"{hint}placeholders name run_id or a variable ({', '.join(known[1:]) or 'none'})"
    return f"{{{name}}} names no variable: {problem}; write {{{{{name}}}}} for a literal {{{name}}}"


def check_interpolations(
    experiment: Experiment, placements: tuple[Placement, ...], found: ErrorList
) -> None:
    """Every string the runs get loads with OmegaConf, which refuses a whole file for one
    half-open ``${``: each one refused here, at its line (added to ``found``), instead of in
    ``tune run``.

    Run after :func:`check_placeholders` (a placeholder naming no variable is left as written).
    """
    texts = {
        p.parameter.name.lstrip("+"): list(
            dict.fromkeys(text_of(v) or "" for v in p.parameter.values)
        )
        for p in placements
        if p.section is Section.VARIABLES
    }
    for placement in placements:
        for at, value in placement.written():
            for inner, text in strings(value):
                for written in _as_written(text, texts):
                    problem = interpolation_problem(written)
                    if problem is not None:
                        found.add(
                            experiment.error(
                                f"{written!r} is not an interpolation OmegaConf can read "
                                f"({problem}): close it as ${{key}}, or write \\${{ for a "
                                "literal ${",
                                (*at, *inner),
                            )
                        )
                        break  # one message for one string


_BRACES = re.compile(r"[${}]")


def _as_written(text: str, texts: Mapping[str, list[str]]) -> Iterator[str]:
    """The strings ``text`` becomes in the runs, as far as OmegaConf can tell them apart.

    A placeholder's text matters only if it holds ``$``, ``{`` or ``}`` (which could open or
    close an interpolation with what surrounds it); any other text stands in for all.
    """
    parts = parse(text)
    if parts == (text,):
        yield text
        return
    choices = [
        [part]
        if not isinstance(part, Placeholder)
        else [t for t in texts[part] if _BRACES.search(t)] or ["x"]
        if part in texts
        else ["x"]  # run_id
        for part in parts
    ]
    for combination in itertools.product(*choices):
        yield "".join(combination)
