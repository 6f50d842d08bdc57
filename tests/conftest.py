"""Shared fixtures: experiment folders written from text, and the command line driven in-process."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from torchtune_config_writer.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
RECIPE = "llama3_2/1B_lora_single_device"


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``main([...])`` and capture its exit code and output."""

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        code = main([str(arg) for arg in argv])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def write_experiment(tmp_path: Path) -> Callable[..., Path]:
    """Write ``experiment.yaml`` (dedented text) into a folder of ``tmp_path``; return its path."""

    def write(text: str, folder: str = "exp", name: str = "experiment.yaml") -> Path:
        target = tmp_path / folder
        target.mkdir(parents=True, exist_ok=True)
        path = target / name
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
        return path

    return write


def experiment_text(
    variables: str = "", controls: str = "", base: str = f"base_config: {RECIPE}"
) -> str:
    """A minimal valid experiment around the given (already indented) sections."""
    text = f"""\
experiment:
  name: study
  framework: torchtune
framework_config:
  {base}
"""
    if variables:
        text += "variables:\n" + textwrap.indent(textwrap.dedent(variables).strip(), "  ") + "\n"
    if controls:
        text += "controls:\n" + textwrap.indent(textwrap.dedent(controls).strip(), "  ") + "\n"
    return text


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes), to prove nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
