"""What the command line prints of a repository's text: escaped, with nothing that acts on a
terminal or a CI log (tests/test_workflow_commands.py parses the Action's whole log)."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer.terminal import EscapingStream, defused, printable

from .conftest import EXAMPLES, CliResult
from .test_workflow_commands import workflow_commands


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain ✓ é", "plain ✓ é"),
        ("a\nb", "a\\nb"),
        ("a\rb", "a\\x0db"),
        ("\x1b]52;c;aGk=\x07", "\\x1b]52;c;aGk=\\x07"),
        ("\x9b2J", "\\x9b2J"),  # the one-byte CSI of C1
        ("abc\u202edcba", "abc\\u202edcba"),  # reads backwards on screen
        ("a\u2028b", "a\\u2028b"),
        ("tab\tkept", "tab\tkept"),
    ],
)
def test_printable_writes_what_acts_as_an_escape(text: str, shown: str) -> None:
    assert printable(text) == shown


@pytest.mark.parametrize(
    "line",
    [
        "::add-mask::x",
        "   ::stop-commands::abc",
        "\u3000::set-output name=a::b",  # any Unicode white space before it
        "text ##[error]forged",
        "##[group]x",
    ],
)
def test_a_line_that_would_be_a_workflow_command_is_defused(line: str) -> None:
    assert workflow_commands(line)  # the parser reads it as a command
    assert workflow_commands(defused(line)) == []


def test_the_stream_escapes_whole_lines_and_keeps_line_breaks() -> None:
    raw = io.StringIO()
    stream = EscapingStream(raw)
    stream.write("drift: a\r::add-mask::x")
    assert raw.getvalue() == ""  # a partial line waits for its end
    stream.write("/configs/\n::error::forged\nlast")
    stream.flush()
    assert raw.getvalue() == "drift: a\\x0d::add-mask::x/configs/\n\\x3a:error::forged\nlast"
    assert workflow_commands(raw.getvalue()) == []


NAMES = ["a\n::add-mask::x", "b\r::stop-commands::abc", "c\x1b[2J\x1b]52;c;aGk=\x07"]


def test_generate_and_check_print_each_name_on_its_own_line_escaped(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for index, name in enumerate(NAMES):
        shutil.copytree(EXAMPLES / "lora_rank_study", tmp_path / name)
        experiment = tmp_path / name / "experiment.yaml"
        text = experiment.read_text().replace("lora_rank_study", f"study_{index}")
        experiment.write_text(text.replace("lora_study", f"study_{index}"))
    result = cli("generate", *(f"{name}/experiment.yaml" for name in NAMES))
    assert result.code == 0, result.err
    for name in NAMES:
        (tmp_path / name / "configs" / "run_001.yaml").unlink()
        run = tmp_path / name / "configs" / "run_000.yaml"
        run.write_text(run.read_text() + "extra: 1\n")
    checked = cli("check", *(f"{name}/experiment.yaml" for name in NAMES))
    assert checked.code == 1
    for output in (result.out + result.err, checked.out + checked.err):
        assert "\x1b" not in output and "\r" not in output
        assert workflow_commands(output) == []
        # No name breaks a line: every line is one of the tool's own.
        for line in output.splitlines():
            assert line.startswith(
                (
                    "✓",
                    "drift:",
                    "missing:",
                    "---",
                    "+++",
                    "@@",
                    " ",
                    "-",
                    "+",
                    "run ",
                    "the same",
                    "\\",
                )
            ), line
    assert "a\\n::add-mask::x/configs/" in checked.out


def test_an_error_line_stays_one_line_whatever_the_name(tmp_path: Path) -> None:
    folder = tmp_path / "x\n::add-mask::secret\x1b[2J"
    folder.mkdir()
    (folder / "experiment.yaml").write_text("experiment: [unclosed\n")
    done = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "generate", str(folder)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: ")
    assert "\x1b" not in done.stderr and workflow_commands(done.stderr) == []
