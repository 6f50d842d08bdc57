"""The execution stage of validation: every config's verdict from running its recipe.

Configs are grouped twice. Configs that differ only where they write, or only in values of the
same class (a positive learning rate like another, a rank above one like another), follow the
same code path: one of them runs with its values (the model at a tiny size of its family) and
the rest share its verdict, unless there are few enough configs to run each. Configs whose
components and real dimensions are the same share one run at the model's real size (shapes,
tied embeddings, checkpoint headers). A run that fails is narrowed down to the key that makes
it fail (:mod:`.attribution`). Every config gets a verdict, and how it was reached.
"""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Severity
from .attribution import changes, guess_keypath, smallest_failing
from .client import Executor, WorkerFailed
from .protocol import DELETE, Edit, Mode, Outcome, Request, Status

CHECK = "execution"
OUTPUT_KEYS = frozenset({"output_dir", "log_dir"})
# Past this many distinct configs, configs whose values are of the same classes share a run.
EXECUTE_EACH = 32
# Real dimensions a tiny values run replaces (shrink.py): the real-size run judges them.
_REAL_DIMENSIONS = frozenset(
    {"num_layers", "num_heads", "num_kv_heads", "embed_dim", "head_dim", "intermediate_dim"}
)
# How a finding begins of a run that needs what only the cluster has (a package, a variable).
NOT_INSTALLED = "needs what is not on this machine"
KeyPath = tuple[str | int, ...]
Problem = tuple[KeyPath, Severity, str]  # key path, severity, message


@dataclass(frozen=True)
class Subject:
    """A config to execute.

    Attributes:
        config: The config file.
        recipe: What ``tune run`` runs it with (a name, or a ``.py`` relative to ``cwd``).
        cwd: Where ``tune run`` runs (the experiment's folder).
        base: The experiment's base config file, the reference for narrowing a failure down.
        processes: How many processes ``tune run`` starts for it (``launch``).
        real_files: The files it names exist here (``validate --preflight``): none is stood
            in for. False for a config that reads what a training run has yet to write.
        data: The config's values as read (kept only until the stage has planned).
    """

    config: Path
    recipe: str
    cwd: Path
    base: Path | None
    processes: int = 1
    real_files: bool = False
    data: dict[str, Any] = field(repr=False, compare=False, hash=False, default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """What execution says of one config.

    Attributes:
        problems: (key path, severity, message) of each finding.
        how: How the verdict was reached, for the report.
    """

    problems: tuple[Problem, ...] = ()
    how: str = ""


@dataclass
class _Keys:
    structure: str
    values: str
    classes: str


def run_stage(
    subjects: Sequence[Subject],
    executor: Executor,
    *,
    execute_each: int = EXECUTE_EACH,
    progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    """Execute the configs (grouped), narrow failures down; a verdict per subject, in order.

    ``progress`` is called before each batch of runs with (runs done, runs known so far): a
    failure's narrowing adds runs as it goes.
    """
    if not subjects:
        return []
    try:
        return _Stage(subjects, executor, execute_each, progress).run()
    except WorkerFailed as exc:
        message = f"not checked by running the recipe: the execution worker failed ({exc})"
        problem: Problem = ((), Severity.UNVERIFIED, message)
        return [Verdict((problem,), "not executed") for _ in subjects]


class _Stage:
    def __init__(
        self,
        subjects: Sequence[Subject],
        executor: Executor,
        each: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.subjects = list(subjects)
        self.executor: Executor | _Counted = executor
        if progress is not None:
            self.executor = _Counted(executor, progress)
        self.keys = [_keys(s) for s in subjects]
        distinct = {key.values for key in self.keys}
        self.by_class = len(distinct) > each

    def _wanted(
        self, subject: Subject, mode: Mode, edits: tuple[Edit, ...] = (), base: bool = False
    ) -> Request:
        config = subject.base if base and subject.base is not None else subject.config
        return Request(
            0,
            subject.recipe,
            str(config),
            str(subject.cwd),
            mode,
            edits,
            subject.real_files,
            processes=subject.processes,
        )

    def run(self) -> list[Verdict]:
        # One values run per distinct config (or per class of values, for large sweeps).
        group_of = [key.classes if self.by_class else key.values for key in self.keys]
        leaders: dict[str, int] = {}
        for index, group in enumerate(group_of):
            leaders.setdefault(group, index)
        ran = self._execute(sorted(set(leaders.values())), Mode.VALUES)
        # A class whose run failed: each of its configs runs (inference never condemns).
        if self.by_class:
            failed = {g for g, i in leaders.items() if ran[i].status is not Status.PASSED}
            more = [i for i, g in enumerate(group_of) if g in failed and i not in ran]
            ran.update(self._execute(more, Mode.VALUES))

        def values_of(index: int) -> Outcome:
            return ran[index] if index in ran else ran[leaders[group_of[index]]]

        # One real-size run per structure whose values run had to shrink the model, by one of
        # the configs whose values run did.
        shrunk: dict[str, int] = {}
        for index, key in enumerate(self.keys):
            if values_of(index).shrunk:
                shrunk.setdefault(key.structure, index)
        shaped = self._execute(sorted(shrunk.values()), Mode.SHAPE)
        sizes = collections.Counter(key.structure for key in self.keys)
        verdicts = []
        for index, subject in enumerate(self.subjects):
            own = ran.get(index)
            leader = leaders[group_of[index]]
            values = values_of(index)
            structure = self.keys[index].structure
            shape = shaped.get(shrunk[structure]) if structure in shrunk else None
            how = [self._values_how(own, leader)]
            if shape is not None:
                count = sizes[structure]
                shared = f" for {count} configs" if count > 1 else ""
                how.append(f"shape: real size executed once{shared}")
            elif values.status is Status.PASSED or values.status is Status.FAILED:
                how.append("shape: real size (the values run)")
            absent = [*values.standins, *(shape.standins if shape is not None else ())]
            if absent:
                how.append(
                    "not on this machine, stood in for (validate --preflight where they are): "
                    + "; ".join(dict.fromkeys(absent))
                )
            problems = self._problems(subject, values, Mode.VALUES)
            if shape is not None and not any(p[1] is Severity.ERROR for p in problems):
                problems += [
                    p
                    for p in self._problems(self.subjects[shrunk[structure]], shape, Mode.SHAPE)
                    if p not in problems
                ]
            verdicts.append(Verdict(tuple(problems), "; ".join(how)))
        return verdicts

    def _values_how(self, own: Outcome | None, leader: int) -> str:
        if own is not None:
            return "values: executed"
        return f"values: as {self.subjects[leader].config.stem} (same classes of values)"

    def _execute(self, indexes: Sequence[int], mode: Mode) -> dict[int, Outcome]:
        outcomes = self.executor.run([self._wanted(self.subjects[i], mode) for i in indexes])
        return dict(zip(indexes, outcomes, strict=True))

    # --- findings ---------------------------------------------------------------------------

    def _problems(self, subject: Subject, outcome: Outcome, mode: Mode) -> list[Problem]:
        if outcome.status is Status.PASSED:
            if outcome.trains and outcome.steps == 0:
                keys, how = self._narrow(subject, outcome, mode, _takes_no_step)
                return [(keys[0], Severity.WARNING, _no_step_message(keys, how))]
            return []
        if outcome.status is Status.UNVERIFIED:
            message = f"{NOT_INSTALLED}, so running the recipe could not check it: {_said(outcome)}"
            return [((), Severity.UNVERIFIED, message)]
        if outcome.status is Status.NOT_CHECKED:
            message = f"not checked by running the recipe: {_said(outcome)}"
            return [(tuple(outcome.building), Severity.UNVERIFIED, message)]
        keys, how = self._narrow(subject, outcome, mode, _fails_like(outcome))
        return [
            (keypath, Severity.ERROR, _failure_message(outcome, keypath, keys, how, mode))
            for keypath in keys
        ]

    def _narrow(
        self,
        subject: Subject,
        outcome: Outcome,
        mode: Mode,
        same: Callable[[Outcome], bool],
    ) -> tuple[list[KeyPath], str]:
        """The keys that make the run go wrong (together), and how they were found."""
        data = subject.data or _read(subject.config)
        if subject.base is not None:
            base_data = _read(subject.base)
            if base_data is not None and data is not None:
                edits = changes(base_data, data)
                base_outcome = self.executor.run([self._wanted(subject, mode, (), base=True)])[0]
                if edits and not same(base_outcome) and base_outcome.status is Status.PASSED:

                    def fails(subsets: list[list[Edit]]) -> list[bool]:
                        wanted = [self._wanted(subject, mode, tuple(s), base=True) for s in subsets]
                        return [same(o) for o in self.executor.run(wanted)]

                    if fails([edits])[0]:
                        culprit = smallest_failing(edits, fails)
                        return [keypath for keypath, _ in culprit], "narrowed"
        if data is None:
            return [()], ""
        return [guess_keypath(outcome, data)], ""


class _Counted:
    """An executor that reports each batch of runs before it runs them."""

    def __init__(self, executor: Executor, progress: Callable[[int, int], None]) -> None:
        self.executor = executor
        self.progress = progress
        self.done = 0

    def run(self, requests: Sequence[Request]) -> list[Outcome]:
        if not requests:
            return []
        self.progress(self.done, self.done + len(requests))
        outcomes = self.executor.run(requests)
        self.done += len(requests)
        return outcomes


def _takes_no_step(outcome: Outcome) -> bool:
    return outcome.status is Status.PASSED and outcome.trains and outcome.steps == 0


def _fails_like(failing: Outcome) -> Callable[[Outcome], bool]:
    def same(outcome: Outcome) -> bool:
        return outcome.signature == failing.signature

    return same


def _said(outcome: Outcome) -> str:
    first = outcome.message.strip().splitlines()[0] if outcome.message.strip() else ""
    return f"{outcome.error}: {first}" if outcome.error else first


def _failure_message(
    outcome: Outcome, keypath: KeyPath, keys: list[KeyPath], how: str, mode: Mode
) -> str:
    where = [outcome.raised] if outcome.raised else []
    if outcome.frames:
        frame = outcome.frames[-1]
        where.append(f"{frame.file}:{frame.line} in {frame.function}")
    if outcome.building:
        where.append(f"building {_dotted(tuple(outcome.building))}")
    size = " at the model's real size" if mode is Mode.SHAPE else ""
    place = f" ({'; '.join(dict.fromkeys(where))})" if where else ""
    key = _dotted(keypath)
    others = [_dotted(k) for k in keys if k != keypath]
    if not key:
        fix = (
            "no key of the config is named by it, nor narrowed down from the base; it may be "
            "the recipe or the installed packages (see the versions above)"
        )
    elif how and others:
        fix = (
            f"change {key} or {', '.join(others)}: the base config fails this way only with "
            "these changed together"
        )
    elif how:
        fix = f"change {key}: the base config with only this change fails the same way"
    else:
        fix = f"change {key}"
    return f"`tune run` fails{size}: {_said(outcome)}{place}; {fix}"


def _no_step_message(keys: list[KeyPath], how: str) -> str:
    named = ", ".join(_dotted(k) for k in keys if k)
    because = f": {named} makes it so" if named and how else ""
    return (
        "`tune run` ends without taking an optimizer step, so it trains nothing (and exits "
        f"0){because}"
    )


def _dotted(keypath: KeyPath) -> str:
    return ".".join(map(str, keypath))


# --- grouping ---------------------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any] | None:
    from ...yaml_read import read_yaml_file

    try:
        data = read_yaml_file(path).data
    except Exception:  # noqa: BLE001 - an unreadable file: no reference for narrowing
        return None
    return data if isinstance(data, dict) else None


def _keys(subject: Subject) -> _Keys:
    data = subject.data or _read(subject.config) or {}
    head = [subject.recipe, str(subject.cwd), str(subject.base)]
    return _Keys(
        _digest(head, _masked(data, _structure_leaf)),
        _digest(head, _masked(data, _value_leaf)),
        _digest(head, _masked(data, _class_leaf)),
    )


def _digest(head: list[str], data: Any) -> str:
    blob = json.dumps([head, data], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


Leaf = Callable[[KeyPath, Any], Any]


def _masked(node: Any, leaf: Leaf, keypath: KeyPath = ()) -> Any:
    if isinstance(node, dict):
        return [[key, _masked(value, leaf, (*keypath, key))] for key, value in node.items()]
    if isinstance(node, list):
        return [_masked(value, leaf, (*keypath, index)) for index, value in enumerate(node)]
    if keypath and str(keypath[-1]) in OUTPUT_KEYS and isinstance(node, str):
        return "<output>"  # where a run writes never changes what it executes
    return leaf(keypath, node)


def _value_leaf(keypath: KeyPath, value: Any) -> Any:
    return [type(value).__name__, value]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _class_leaf(keypath: KeyPath, value: Any) -> Any:
    """Numbers by the class a comparison in a recipe tells apart: below zero, zero, between
    zero and one, one, a whole number above one, a fraction above one."""
    if not _is_number(value):
        return _value_leaf(keypath, value)
    if value != value or value in (float("inf"), float("-inf")):
        kind = repr(value)
    elif value < 0:
        kind = "negative"
    elif value == 0:
        kind = "zero"
    elif value < 1:
        kind = "fraction"
    elif value == 1:
        kind = "one"
    else:
        kind = "whole" if float(value).is_integer() else "above one"
    return [type(value).__name__, kind]


def _structure_leaf(keypath: KeyPath, value: Any) -> Any:
    """What decides the code path and the real shapes: every component, flag and string, and
    the numbers of a model node but its LoRA settings (which the values run executes)."""
    if not _is_number(value):
        return _value_leaf(keypath, value)
    in_model = any(str(part).endswith("model") for part in keypath[:-1])
    name = str(keypath[-1]) if keypath else ""
    if in_model and (name in _REAL_DIMENSIONS or not name.startswith("lora_")):
        return _value_leaf(keypath, value)
    return "<number>"


def describe_edit(edit: Edit) -> str:
    keypath, value = edit
    return ".".join(map(str, keypath)) + (" deleted" if value == DELETE else "")
