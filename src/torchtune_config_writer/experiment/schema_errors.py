"""A jsonschema error in the tool's words: the key path it is at, what is wrong, what to do.

The schema's own words come first: ``errorMessage`` and ``patternErrorMessage`` (which
yaml-language-server shows too) say what to do; the rest is said from the keyword that failed.
Of an ``anyOf``, the alternative the value was meant for is explained, not all of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ..keypaths import KeyPath, dotted
from ..wording import closest, plural
from ..yaml_read import a_type_name, type_name
from ..yaml_write import dump_inline

if TYPE_CHECKING:
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import ValidationError

Explained = list[tuple[KeyPath, str]]

# A JSON type in the words of a message ("expected a list or null").
_TYPE_WORDS = {
    "array": "a list",
    "object": "a mapping",
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "null",
}


class SchemaErrors:
    """Explains the errors of one validator on one document's data.

    Args:
        validator: The validator that found the errors (its schema, its types).
        data: The document's data, to find the keys an error names only by their mapping.
    """

    def __init__(self, validator: Draft7Validator, data: Any) -> None:
        self.validator = validator
        self.root: dict[str, Any] = dict(validator.schema)  # type: ignore[arg-type]
        self.data = data

    def explain(self, error: ValidationError) -> Explained:
        """Each mistake ``error`` stands for: the key path to point at, and the message."""
        keypath: KeyPath = tuple(error.absolute_path)
        where = dotted(keypath) or "the file"
        value: Any = error.instance
        wanted: Any = error.validator_value
        schema = error.schema if isinstance(error.schema, dict) else {}
        advice = schema.get("errorMessage")
        kind = error.validator
        if kind is None:  # a `false` schema: a key named only to be refused
            return self._refused_keys(error, keypath)
        if list(error.schema_path)[-2:-1] == ["propertyNames"]:
            message = f"{where} has the key '{value}', which is not allowed"
            return [((*keypath, value), _with(message, schema.get("patternErrorMessage")))]
        if kind == "additionalProperties":
            return _unknown_keys(schema, value, keypath)
        if kind == "anyOf":
            return self._any_of(error, keypath)
        if kind == "required":
            missing = [key for key in wanted if key not in value]
            what = "key" if keypath else "section"
            return [
                (keypath, _with(f"{where} has no {what} {key}", advice or "add it"))
                for key in missing
            ]
        if kind == "pattern":
            message = f"{where} is {_shown(value)}, which is not allowed"
            return [(keypath, _with(message, schema.get("patternErrorMessage")))]
        if kind in ("type", "const", "enum"):
            if kind == "type":
                expected = _words(_type_words(wanted))
            else:
                expected = _words(
                    [dump_inline(item) for item in ([wanted] if kind == "const" else wanted)]
                )
            return [(keypath, _with(f"{where} is {_shown(value)}, expected {expected}", advice))]
        return [(keypath, _bound(error, where))]

    def _refused_keys(self, error: ValidationError, keypath: KeyPath) -> Explained:
        # jsonschema (4.26) reports a `false` property schema at the mapping that holds it,
        # without the key: the mapping's schema (one level up the schema path) names the keys.
        parts = list(error.schema_path)
        if parts[-1] != "properties":  # a jsonschema that names it: [..., "properties", key]
            key = parts.pop()
            keypath = keypath[:-1] if keypath[-1:] == (key,) else keypath
        owner = self._schema_at(parts[:-1])
        mapping = self._value_at(keypath)
        properties = owner.get("properties", {})
        refused = [key for key, sub in properties.items() if sub is False and key in mapping]
        where, advice = dotted(keypath), owner.get("errorMessage")
        return [
            ((*keypath, key), _with(f"{where} may not have the key '{key}'", advice))
            for key in refused
        ]

    def _any_of(self, error: ValidationError, keypath: KeyPath) -> Explained:
        """The alternative the value was meant for, and why it fails that one; when none is
        meant (the value's type fits none), what each alternative takes."""
        where = dotted(keypath)
        value: Any = error.instance
        alternatives: Any = error.validator_value
        choices = [self._resolve(choice) for choice in alternatives]
        by_choice: dict[int, list[ValidationError]] = {i: [] for i in range(len(choices))}
        for inner in error.context or ():
            by_choice[int(inner.relative_schema_path[0])].append(inner)
        if all(set(choice) <= {"required", "properties"} for choice in choices):
            names = [key for choice in choices for key in choice["required"]]
            return [(keypath, f"{where} needs one of {_words(names, 'and')}: give exactly one")]
        meant = [i for i, choice in enumerate(choices) if self._fits(choice, value)]
        if meant:
            # The alternative the value gets furthest into, then the one it breaks least.
            def distance(i: int) -> tuple[int, int, int]:
                deepest = max((len(inner.absolute_path) for inner in by_choice[i]), default=0)
                return -deepest, len(by_choice[i]), i

            best = min(meant, key=distance)
            return [found for inner in by_choice[best] for found in self.explain(inner)]
        expected = _words([_called(choice) for choice in choices])
        schema = error.schema if isinstance(error.schema, dict) else {}
        advices = [choice.get("errorMessage") for choice in [schema, *choices]]
        advice = next((text for text in advices if text), None)
        return [(keypath, _with(f"{where} is {_shown(value)}, expected {expected}", advice))]

    def _fits(self, choice: dict[str, Any], value: Any) -> bool:
        """Whether ``value`` is of the kind ``choice`` takes, so that its errors say more than
        that: its type, and for a closed mapping one of its keys."""
        types = _types(choice.get("type", []))
        if types and not any(self.validator.is_type(value, name) for name in types):
            return False
        if "const" in choice:  # failed, so the value is another (`false` is no `true` meant)
            return False
        known = choice.get("properties", {})
        closed = choice.get("additionalProperties") is False
        return not (closed and known and isinstance(value, dict) and not known.keys() & value)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """A subschema with its local ``$ref`` followed (the schema's only kind)."""
        while "$ref" in schema:
            schema = self._schema_at(schema["$ref"].removeprefix("#/").split("/"))
        return schema

    def _schema_at(self, parts: Iterable[str | int]) -> dict[str, Any]:
        node: Any = self.root
        for part in parts:
            if part == "$ref":  # followed already, by _resolve
                continue
            node = self._resolve(node)[str(part)] if isinstance(node, dict) else node[int(part)]
        return self._resolve(node) if isinstance(node, dict) else {}

    def _value_at(self, keypath: KeyPath) -> Any:
        node = self.data
        for part in keypath:
            node = node[part]
        return node


def _unknown_keys(schema: dict[str, Any], mapping: dict[str, Any], keypath: KeyPath) -> Explained:
    known = list(schema.get("properties", {}))
    patterns = list(schema.get("patternProperties", {}))
    kind, where = ("key", f" in {dotted(keypath)}") if keypath else ("section", "")
    found = []
    for key in mapping:
        if key in known or any(re.search(pattern, key) for pattern in patterns):
            continue
        close = closest(key, known)
        hint = f"did you mean '{close}'?" if close else f"expected one of {', '.join(known)}"
        found.append(((*keypath, key), f"unknown {kind} '{key}'{where}: {hint}"))
    return found


def _bound(error: ValidationError, where: str) -> str:
    """A value of the right type that breaks a limit: a size, a minimum, a repeat."""
    kind = error.validator
    limit: Any = error.validator_value
    value: Any = error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    title = _a(schema["title"]) if "title" in schema else "it"
    if kind == "minItems" and not value:
        return f"{where} is an empty list: give at least {plural(limit, 'value')}"
    if kind in ("minItems", "maxItems"):
        most = "at least" if kind == "minItems" else "at most"
        return f"{where} has {plural(len(value), 'item')}: give {most} {limit}"
    if kind in ("minProperties", "maxProperties"):
        most = "at least" if kind == "minProperties" else "at most"
        keys = ", ".join(map(str, value)) or "none"
        return f"{where} has {plural(len(value), 'key')} ({keys}): {title} has {most} {limit}"
    if kind == "uniqueItems":
        seen = [json.dumps(item, sort_keys=True, default=str) for item in value]
        again = next((value[i] for i, item in enumerate(seen) if item in seen[:i]), None)
        which = f" {dump_inline(again)}" if again is not None else ""
        return f"{where} repeats the value{which}: give each value once"
    if kind in ("minimum", "exclusiveMinimum"):
        above = "at least" if kind == "minimum" else "more than"
        return f"{where} is {_shown(value)}: give {above} {limit}"
    if kind == "minLength":
        return f"{where} is empty: give text"
    return f"{where}: {error.message}"  # a keyword the schema does not use yet


def _types(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _type_words(types: str | list[str]) -> list[str]:
    return [_TYPE_WORDS.get(name, name) for name in _types(types)]


def _called(choice: dict[str, Any]) -> str:
    """What an alternative takes, in a few words: its title, type or constant."""
    if "title" in choice:
        return _a(str(choice["title"]))
    if "const" in choice:
        return dump_inline(choice["const"])
    return _words(_type_words(choice.get("type", []))) or "something else"


def _words(items: Sequence[str], last: str = "or") -> str:
    """``a, b or c``."""
    return ", ".join(items[:-1]) + f" {last} {items[-1]}" if len(items) > 1 else "".join(items)


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def _shown(value: Any) -> str:
    """A value for a message: text quoted, another scalar with its type, a list or mapping by
    its kind."""
    if isinstance(value, (dict, list)) or value is None:
        return a_type_name(value)
    if isinstance(value, str):
        return f"'{value}'" if len(value) <= 60 else f"'{value[:57]}...'"
    return f"the {type_name(value)} {dump_inline(value)}"


def _with(message: str, advice: str | None) -> str:
    """``message: advice``, the advice (a sentence of the schema's) continued in lower case."""
    if not advice:
        return message
    advice = advice.rstrip(".")
    if not advice[1:2].isupper():  # a sentence's capital, not a name's (SLURM)
        advice = advice[0].lower() + advice[1:]
    return f"{message}: {advice}"
