"""Shared fixtures: experiment folders written from text, and the command line driven in-process."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
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


# Root may read and write anything, so permission tests run it without the capabilities that
# let it (Linux's DAC override, DAC read-search and file-owner): the file modes then apply to
# it as to any user, whatever the interpreter's location. Another user keeps its own rights.
_WITHOUT_ROOTS_RIGHTS = ["--bounding-set=-dac_override,-dac_read_search,-fowner", "--"]


@pytest.fixture
def without_root_rights() -> list[str]:
    """The prefix of a command that file modes must apply to: none for a user other than root;
    setpriv without root's bypass rights for root (skips where setpriv is missing)."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("root ignores file modes, and setpriv is not here to drop that right")
    return ["setpriv", *_WITHOUT_ROOTS_RIGHTS]


@pytest.fixture
def unprivileged(without_root_rights: list[str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the command line in a new process that file modes apply to."""

    def run(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
        command = [*without_root_rights, sys.executable, "-m", "torchtune_config_writer"]
        return subprocess.run([*command, *map(str, args)], cwd=cwd, capture_output=True, text=True)

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


def copy_experiment(source: Path, dest: Path) -> Path:
    """A copy of an experiment folder with a name and an ``output_dir`` of its own (two
    experiments of one repository may share neither); the copy's experiment file."""
    shutil.copytree(source, dest)
    path = dest / "experiment.yaml"
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^  name: .*$", f"  name: {dest.name}", text, count=1)
    text = text.replace("\ncontrols:\n", f"\ncontrols:\n  output_dir: /scratch/{dest.name}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes), to prove nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``torchtune`` skip, with the reason, where torch or torchtune is missing."""
    missing = [name for name in ("torch", "torchtune") if importlib.util.find_spec(name) is None]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {' and '.join(missing)}, not installed here")
    for item in items:
        if "torchtune" in item.keywords:
            item.add_marker(skip)
