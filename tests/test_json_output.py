"""json_text: every JSON the command line writes is strict JSON and inert in a CI log."""

from __future__ import annotations

import io
import json

from torchtune_config_writer.json_output import json_text
from torchtune_config_writer.terminal import EscapingStream

from .test_workflow_commands import workflow_commands

HOSTILE = [
    "##[error]forged",
    "::add-mask::x",
    "a\n::set-output name=x::y",
    "b\r##[warning]w",
    "\x1b]52;c;aGk=\x07",
    "c\x85d\u2028e\u202ef\x7f",
    "naïve → ✓",
]


def test_hostile_text_is_the_same_text_and_no_workflow_command() -> None:
    document = {"values": HOSTILE, "keyed": {text: text for text in HOSTILE}}
    text = json_text(document)
    assert json.loads(text) == document
    assert text.isascii()
    assert workflow_commands(text) == []


def test_the_escaping_stream_leaves_it_unchanged() -> None:
    # Printed through the command line's stdout, the JSON must stay JSON: the stream would
    # write `\x85` (no JSON escape) for a raw C1 character, `##\x5b` for `##[`.
    text = json_text({"values": HOSTILE})
    raw = io.StringIO()
    stream = EscapingStream(raw)
    stream.write(text)
    stream.flush()
    assert raw.getvalue() == text


def test_nan_and_infinity_are_written_as_yaml_spells_them() -> None:
    text = json_text({"lr": float("nan"), "range": [float("inf"), float("-inf")], "n": 1.0})
    assert json.loads(text) == {"lr": ".nan", "range": [".inf", "-.inf"], "n": 1.0}
    assert "NaN" not in text and "Infinity" not in text


def test_sorted_when_asked_and_in_order_otherwise() -> None:
    assert json_text({"b": 1, "a": 2}) == '{\n  "b": 1,\n  "a": 2\n}\n'
    assert json_text({"b": 1, "a": 2}, sort_keys=True) == '{\n  "a": 2,\n  "b": 1\n}\n'
