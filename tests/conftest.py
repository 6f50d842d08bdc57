"""Shared fixtures: experiment folders written from text, and the command line driven in-process."""

from __future__ import annotations

import difflib
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
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from torchtune_config_writer.cli import main
from torchtune_config_writer.generation import builtin_configs
from torchtune_config_writer.generation.base import read_lock
from torchtune_config_writer.generation.builtin_configs import (
    SINGLE_DEVICE_RECIPES,
    BuiltinConfig,
    Torchtune,
)
from torchtune_config_writer.workspace.layout import CONFIGS_DIR, LOCK_FILE, RUN_MAPPING

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
    """Run ``main([...])`` and capture its exit code and output (argparse's exit included: a
    mistyped argument or ``--help``)."""

    def run(*argv: str | Path) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(arg) for arg in argv])
        except SystemExit as exit:
            code = int(exit.code or 0)
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


def assert_same_files(actual: dict[str, bytes], expected: dict[str, bytes]) -> None:
    """Two snapshots hold the same files with the same bytes; else a diff of each difference."""
    problems = [f"missing: {name}" for name in sorted(expected.keys() - actual.keys())]
    problems += [f"unexpected: {name}" for name in sorted(actual.keys() - expected.keys())]
    for name in sorted(expected.keys() & actual.keys()):
        if actual[name] != expected[name]:
            diff = difflib.unified_diff(
                expected[name].decode("utf-8", "replace").splitlines(keepends=True),
                actual[name].decode("utf-8", "replace").splitlines(keepends=True),
                f"{name} (expected)",
                f"{name} (actual)",
            )
            problems.append("".join(diff))
    assert not problems, "\n".join(problems)


def mapping_of(experiment: Path) -> list[dict[str, Any]]:
    """The runs of ``run_mapping.yaml`` beside an experiment (its file or its folder)."""
    folder = experiment if experiment.is_dir() else experiment.parent
    runs: list[dict[str, Any]] = yaml.safe_load((folder / "configs" / RUN_MAPPING).read_text())[
        "runs"
    ]
    return runs


def runs_of(experiment: Path) -> list[dict[str, Any]]:
    """Each generated run config as OmegaConf (what `tune run` loads) reads it, in run order."""
    files = sorted((experiment.parent / "configs").glob("run_[0-9]*.yaml"))
    return [OmegaConf.to_container(OmegaConf.load(path), resolve=False) for path in files]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes), to prove nothing changed."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def copy_working_tree(dest: Path) -> None:
    """This working tree's tracked and new (not ignored) files into ``dest``: what a commit of
    it would hold, for tests that install the project as a user would."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():  # a deleted file is still listed until the deletion is staged
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)


# What each marker needs, and why a test skips where it is missing.
_NEEDS: dict[str, Callable[[], str | None]] = {
    # Validation imports torchtune, and torchtune imports torch.
    "needs_torch": lambda: _missing("torch", "torchtune"),
    "needs_torchtune": lambda: _missing("torchtune"),
    "needs_act": lambda: (
        None if (BIN / "act").exists() else "needs act (the GitHub Actions runner), not here"
    ),
    "needs_pre_commit": lambda: _missing("pre_commit"),
    # Installed by the cluster fixture, only when asked to and root may use apt
    # (tests/slurm_cluster.py).
    "needs_slurm": lambda: (
        None
        if shutil.which("sbatch")
        or (
            os.environ.get("TCW_TESTS_INSTALL_SLURM") == "1"
            and os.geteuid() == 0
            and shutil.which("apt-get")
        )
        else "needs Slurm, not installed here (TCW_TESTS_INSTALL_SLURM=1, as root, installs it)"
    ),
}
BIN = Path(sys.executable).parent


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _missing(*modules: str) -> str | None:
    absent = [module for module in modules if not _installed(module)]
    return f"needs {' and '.join(absent)}, not installed here" if absent else None


# A part that takes seconds to start: the slow tier (reading torchtune's files is quick).
_HEAVY = ("needs_torch", "needs_act", "needs_pre_commit", "needs_slurm", "needs_cli")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test with a ``needs_*`` marker skips, with the reason, where that part is missing, and
    is slow: ``pytest -m "not slow"`` leaves it out."""
    reasons = {name: need() for name, need in _NEEDS.items()}
    for item in items:
        if any(name in item.keywords for name in _HEAVY):
            item.add_marker(pytest.mark.slow)
        missing = [reason for name, reason in reasons.items() if reason and name in item.keywords]
        for marker in item.iter_markers("needs_cli"):
            missing += [
                f"needs {name}, not installed here" for name in marker.args if not _cli(name)
            ]
        if missing:
            item.add_marker(pytest.mark.skip(reason=missing[0]))


def _cli(name: str) -> bool:
    return (BIN / name).exists()  # the tests run it from beside their interpreter


def python_without_torch(
    script: str, cwd: Path | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run ``script`` in a new Python in which importing torch fails loudly: a test that says
    a path never imports torch then fails if it does, whether torch is installed or not
    (torchtune and torchao import torch first)."""
    poisoned = Path(__file__).parent / "poisoned"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(poisoned), os.environ.get("PYTHONPATH")])),
    }
    kwargs.setdefault("text", True)
    return subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, **kwargs
    )


def torchtune_version() -> str:
    """The version of the torchtune that answers here (the recorded one where none is installed)."""
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    return torchtune.version


def record_base(experiment: Path, config: str = RECIPE) -> None:
    """Commit-style record of a built-in base beside ``experiment``, from a bundled example's
    lock: what lets the hook generate where torchtune is not installed."""
    for lock in sorted(EXAMPLES.glob(f"*/configs/{LOCK_FILE}")):
        recorded = read_lock(lock)
        if recorded is not None and recorded.builtin_config == config:
            (experiment.parent / CONFIGS_DIR).mkdir(exist_ok=True)
            shutil.copyfile(lock, experiment.parent / CONFIGS_DIR / LOCK_FILE)
            return
    raise AssertionError(f"no bundled example records {config}")


@pytest.fixture(autouse=True)
def recorded_torchtune(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Where torchtune is not installed, its catalog of built-in configs is the one the bundled
    examples record (``base.lock.yaml``: the bytes `tune cp` wrote, its version and recipe), so
    that generating from a built-in config is tested everywhere. With torchtune installed,
    the real one answers."""
    if _installed("torchtune"):
        return
    global _RECORDED
    if _RECORDED is None:
        _RECORDED = _recorded_catalog(tmp_path_factory.mktemp("recorded-torchtune"))
    catalog = _RECORDED
    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: catalog)


_RECORDED: Torchtune | None = None


def _recorded_catalog(folder: Path) -> Torchtune:
    configs: dict[str, BuiltinConfig] = {}
    version = ""
    for lock in sorted(EXAMPLES.glob(f"*/configs/{LOCK_FILE}")):
        base = read_lock(lock)
        assert base is not None and base.builtin_config and base.runs_with, lock
        path = folder / f"{base.builtin_config}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base.raw)
        recipe_file = folder / "recipes" / f"{base.runs_with}.py"  # not there: no torchtune
        configs[base.builtin_config] = BuiltinConfig(
            base.builtin_config, base.runs_with, path, recipe_file
        )
        version = base.torchtune_version or version
    recipe_files = {config.recipe: config.recipe_file for config in configs.values()}
    return Torchtune(version, tuple(configs.values()), recipe_files, SINGLE_DEVICE_RECIPES)
