"""Installing torch and torchtune: every message and doc that says to install them names the CPU
build (a bare `pip install torchtune` pulls PyTorch's CUDA build, gigabytes, onto a laptop), and
what the user meets when they are missing or do not fit is one clean line.

"Not installed" is made real for the command line in a new Python whose ``sitecustomize`` puts
``None`` in ``sys.modules`` for the missing packages: ``find_spec`` then finds nothing and an
import fails, as where the package is absent, in the tool's process and its execution worker.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchtune_config_writer import installing
from torchtune_config_writer.installing import (
    CPU_INDEX_URL,
    INSTALL_ADVICE,
    INSTALL_TORCH_CPU,
    INSTALL_TORCHAO,
    INSTALL_TORCHTUNE,
)

from .conftest import EXAMPLES, RECIPE, experiment_text, snapshot

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "src" / "torchtune_config_writer"
SECTION = "installing.md#installing-torchtune-cpu-or-gpu"

# `pip install ARGS` up to the end of its line or code span, and "install(s) ... PyTorch/torch/
# torchtune" in a sentence: advice to install torch or torchtune (the tool's own name aside).
PIP_INSTALL = re.compile(r"pip install\b[^\n`]*")
# torch or torchtune as a package, not in the tool's name or a file's (requirements-no-torch).
PACKAGE = r"(?<![\w-])(?:pytorch|torch|torchtune)(?![\w-])"
TORCH_WORD = re.compile(PACKAGE)
PROSE_INSTALL = re.compile(rf"\binstall(?:s|ing)?\b[^.;:]{{0,60}}?{PACKAGE}", re.IGNORECASE)
TORCH_FROM_AN_INDEX = re.compile(r"pip install [^\n]*\btorch\b[^\n]* --index-url ")


# The top of docs/installing.md, how to install the tool itself, is being rewritten on another
# branch of issue 32; its one sentence of advice is judged once that lands. Remove this then.
def advice_in(text: str) -> list[str]:
    """The pieces of ``text`` that tell a user to install torch or torchtune."""
    found = [m[0] for m in PIP_INSTALL.finditer(text) if TORCH_WORD.search(m[0])]
    # With the words that follow, which may say which build ("installs PyTorch 2.13.0 CPU").
    found += [text[m.start() : m.end() + 40] for m in PROSE_INSTALL.finditer(text)]
    return found


def names_the_cpu_build(unit: str, advice: str) -> bool:
    """A unit (a message, a doc's section or paragraph) that gives ``advice`` says how to get
    the CPU build: it holds the command (PyTorch's CPU index, the one shared advice), links to
    the docs' section, installs torch from an index it names (the Action's, whose default is
    the CPU index), or the advice itself says CPU (a description of a CPU install)."""
    return (
        CPU_INDEX_URL in unit
        or SECTION in unit
        or TORCH_FROM_AN_INDEX.search(unit) is not None
        or bool(re.search(r"\bCPU\b", advice))
    )


def without_cpu_build(units: Iterator[tuple[str, str]]) -> list[str]:
    """``where: advice`` for each piece of advice whose unit does not name the CPU build."""
    return [
        f"{where}: {advice!r}"
        for where, unit in units
        for advice in advice_in(unit)
        if not names_the_cpu_build(unit, advice)
    ]


def source_messages() -> Iterator[tuple[str, str]]:
    """Every string of the package (a message, a docstring), adjacent literals joined, with the
    installing module's constants filled in where an f-string uses them (that module, the one
    advice, aside)."""
    for file in sorted(SOURCE.rglob("*.py")):
        if file == SOURCE / "installing.py":
            continue
        tree = ast.parse(file.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                yield f"{file.relative_to(REPO)}:{node.lineno}", node.value
            elif isinstance(node, ast.JoinedStr):
                yield f"{file.relative_to(REPO)}:{node.lineno}", "".join(map(_part, node.values))


def _part(node: ast.expr) -> str:
    if isinstance(node, ast.Constant):
        return str(node.value)
    if isinstance(node, ast.FormattedValue):
        expression = node.value
        if isinstance(expression, ast.Name) and hasattr(installing, expression.id):
            return str(getattr(installing, expression.id))
        if isinstance(expression, ast.Call) and isinstance(expression.func, ast.Name):
            function = getattr(installing, expression.func.id, None)
            if callable(function):
                return str(function())
    return "{…}"


def doc_files() -> list[Path]:
    """What a user reads: the README, docs, the examples' texts, the Action, the packaging and
    the CI's install script (the changelog is history, the tests are not advice)."""
    patterns = [
        "README.md",
        "action.yml",
        "pyproject.toml",
        ".pre-commit-hooks.yaml",
        "requirements*.txt",
        ".ci/run",
        "docs/**/*.md",
        "benchmarks/*.md",
        "examples/**/*.md",
        "examples/**/*.yml",
    ]
    return sorted({path for pattern in patterns for path in REPO.glob(pattern)})


def doc_units() -> Iterator[tuple[str, str]]:
    """Each section of a Markdown page (what a reader sees together: its advice and the CPU
    command or link), each paragraph of another file (a YAML description, a comment)."""
    for path in doc_files():
        name = str(path.relative_to(REPO))
        units = _sections if path.suffix == ".md" else _paragraphs
        for line, unit in units(path.read_text(encoding="utf-8")):
            yield f"{name}:{line}", unit


def _sections(text: str) -> Iterator[tuple[int, str]]:
    start, lines, fenced = 1, [], False
    for number, line in enumerate(text.splitlines(), 1):
        fenced ^= line.startswith("```")
        if not fenced and line.startswith("#") and lines:
            yield start, "\n".join(lines)
            start, lines = number, []
        lines.append(line)
    yield start, "\n".join(lines)


def _paragraphs(text: str) -> Iterator[tuple[int, str]]:
    line = 1
    for paragraph in re.split(r"\n\s*\n", text):
        yield line, paragraph
        line += paragraph.count("\n") + 2


def test_every_message_that_says_to_install_torch_names_the_cpu_build() -> None:
    messages = list(source_messages())
    assert any(INSTALL_ADVICE in text for _, text in messages)  # the scan sees the messages
    assert without_cpu_build(iter(messages)) == []


def test_every_doc_that_says_to_install_torch_names_the_cpu_build() -> None:
    assert REPO / "docs" / "installing.md" in doc_files()
    assert without_cpu_build(doc_units()) == []


@pytest.mark.parametrize(
    "bare",
    [
        "pip install torchtune",
        "error: validation needs torch: pip install torch",
        'pip install "torch==2.13.0" torchvision',
        "run `pip install torchtune==0.6.1` first",
        'pip install "torchtune-config-writer[torchtune]"',
        "Install PyTorch for your machine, then torchtune.",
        "installing torchtune first",
    ],
)
def test_bare_advice_to_install_torch_is_caught(bare: str) -> None:
    assert advice_in(bare) and without_cpu_build(iter([("new", bare)]))


@pytest.mark.parametrize(
    "fine",
    [
        INSTALL_ADVICE,
        f"`{INSTALL_TORCH_CPU}`, then `{INSTALL_TORCHTUNE}`",
        f"install torch first ([CPU or GPU](docs/{SECTION}))",
        "Install Python, PyTorch (its CPU build), torchtune and this tool",
        "pip install torchtune-config-writer needs only PyYAML",  # the tool, not torchtune
        "where torchtune is installed",  # not advice
    ],
)
def test_advice_that_names_the_cpu_build_passes(fine: str) -> None:
    assert without_cpu_build(iter([("ok", fine)])) == []


def test_the_advice_is_one_line_with_the_cpu_and_gpu_builds() -> None:
    assert "\n" not in INSTALL_ADVICE
    assert f"`{INSTALL_TORCH_CPU}`" in INSTALL_ADVICE and f"`{INSTALL_TORCHTUNE}`" in INSTALL_ADVICE
    assert "GPU" in INSTALL_ADVICE and "CUDA" in INSTALL_ADVICE


def test_the_versions_advised_are_the_ones_the_action_tests_and_extra_install() -> None:
    action = (REPO / "action.yml").read_text(encoding="utf-8")

    def default(name: str) -> str:
        found = re.search(rf"\n  {name}:\n(?:    .*\n)*?    default: \"?([^\"\n]+)\"?\n", action)
        assert found is not None, name
        return found[1]

    assert default("torch-version") == installing.TORCH_VERSION
    assert default("torch-index-url") == CPU_INDEX_URL
    assert default("torchtune-version") == installing.TORCHTUNE_VERSION
    assert default("torchao-version") == installing.TORCHAO_VERSION
    pins = (REPO / "requirements-test.txt").read_text(encoding="utf-8").splitlines()
    assert f"torch=={installing.TORCH_VERSION}+cpu" in pins  # only a CPU wheel matches
    assert f"torchtune=={installing.TORCHTUNE_VERSION}" in pins
    assert f"torchao=={installing.TORCHAO_VERSION}" in pins
    # The extra lets pip take no torchao that torchtune 0.6.1 cannot import.
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    assert 'torchtune = ["torchtune>=0.6", "torchao>=0.14,<0.15"]' in pyproject
    assert installing.TORCHAO_VERSION.startswith("0.14.")
    assert INSTALL_TORCHAO in installing.torchao_advice()


# The command line where a package is missing


def python_without(tmp_path: Path, *missing: str) -> tuple[list[str], dict[str, str]]:
    """The command line, and its environment, in which ``missing`` are not installed."""
    folder = tmp_path / "without"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        f"import sys\nsys.modules.update(dict.fromkeys({list(missing)!r}))\n"
    )
    path = os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    return [sys.executable, "-m", "torchtune_config_writer"], {**os.environ, "PYTHONPATH": path}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a failed command, past validate's progress lines (a log's)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines(keepends=True)
    said = "".join(line for line in lines if not line.startswith("validate: "))
    assert said.startswith("error: ") and said.count("\n") == 1, result.stderr
    assert "\\n" not in said and "Traceback" not in result.stderr
    return said


def test_generate_on_a_recipe_name_without_torchtune_says_how_to_get_the_cpu_build(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "experiment.yaml").write_text(experiment_text(variables="lora_rank: [8, 16]"))
    before = snapshot(folder)
    command, env = python_without(tmp_path, "torchtune")
    result = subprocess.run(
        [*command, "generate", "study"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    error = one_error_line(result)
    assert error.startswith(f"error: study/experiment.yaml:5:3: base_config '{RECIPE}' ")
    assert "needs torchtune, which is not installed here" in error
    assert error.endswith(f"or {INSTALL_ADVICE}\n")
    assert snapshot(folder) == before


def test_recipes_without_torchtune_says_how_to_get_the_cpu_build(tmp_path: Path) -> None:
    command, env = python_without(tmp_path, "torchtune")
    result = subprocess.run([*command, "recipes"], env=env, capture_output=True, text=True)
    assert one_error_line(result) == (
        f"error: listing recipes needs torchtune, which is not installed: {INSTALL_ADVICE}\n"
    )


def test_validate_without_torch_says_how_to_get_the_cpu_build(tmp_path: Path) -> None:
    study = tmp_path / "study"
    shutil.copytree(EXAMPLES / "lora_rank_study", study)
    command, env = python_without(tmp_path, "torch")
    result = subprocess.run(
        [*command, "validate", "study"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert one_error_line(result) == (
        f"error: validation needs torch, which is not installed here: {INSTALL_ADVICE}\n"
    )


# torchtune 0.6.1's own message when torchao is missing: several lines, the first one blank.
TORCHTUNE_WITHOUT_TORCHAO = '''\
raise ImportError(
    """
    torchao not installed.
    Please follow the instructions at https://pytorch.org/torchtune/main/install.html#pre-requisites
    to install torchao.
    """
)
'''


def test_a_multi_line_import_failure_is_one_clean_line(tmp_path: Path) -> None:
    # Stand-ins: a torch that imports, and a torchtune that fails as 0.6.1 does without torchao
    # (the real one: test_validate_without_torchao_says_which_torchao, slow).
    standins = tmp_path / "standins"
    for package, text in [("torch", ""), ("torchtune", TORCHTUNE_WITHOUT_TORCHAO)]:
        (standins / package).mkdir(parents=True)
        (standins / package / "__init__.py").write_text(text)
    study = tmp_path / "study"
    shutil.copytree(EXAMPLES / "lora_rank_study", study)
    before = snapshot(study)
    path = os.pathsep.join(filter(None, [str(standins), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "generate", "--validate", "study"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )
    assert one_error_line(result) == (
        "error: importing torchtune failed (ImportError: torchao not installed.): "
        f"{installing.torchao_advice()}\n"
    )
    assert snapshot(study) == before


@pytest.mark.needs_torchtune
@pytest.mark.needs_torch
def test_validate_without_torchao_says_which_torchao(tmp_path: Path) -> None:
    study = tmp_path / "study"
    shutil.copytree(EXAMPLES / "lora_rank_study", study)
    command, env = python_without(tmp_path, "torchao")
    result = subprocess.run(
        [*command, "validate", "study"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert one_error_line(result) == (
        "error: importing torchtune failed (ImportError: torchao not installed.): "
        f"{installing.torchao_advice()}\n"
    )


@pytest.mark.needs_torchtune
@pytest.mark.needs_torch
def test_validate_does_not_pass_on_torchaos_notice_about_its_cpp_extensions(
    tmp_path: Path,
) -> None:
    # torchao 0.14.1 logs it on import for any torch but 2.9: the notice is real here.
    notice = "Skipping import of cpp extensions"
    imported = subprocess.run(
        [sys.executable, "-c", "import torchao"], capture_output=True, text=True, check=True
    )
    if notice not in imported.stderr:
        pytest.skip(f"this torch and torchao log no {notice!r}: nothing to keep quiet")
    study = tmp_path / "study"
    shutil.copytree(EXAMPLES / "lora_rank_study", study)
    result = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "validate", "study"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Only validate's own progress lines (a log, not a terminal) are on standard error.
    said = [line for line in result.stderr.splitlines() if not line.startswith("validate: ")]
    assert said == [] and "validate: checking 4/4" in result.stderr
    assert "4 configs: 4 valid" in result.stdout


def test_the_docs_section_gives_the_commands() -> None:
    page = (REPO / "docs" / "installing.md").read_text(encoding="utf-8")
    section = page.split("\n## Installing torchtune (CPU or GPU)\n", 1)[1]
    commands = textwrap.dedent(section.split("```bash\n", 1)[1].split("```", 1)[0])
    assert commands.splitlines() == [INSTALL_TORCH_CPU, INSTALL_TORCHTUNE]
    assert "GPU" in section and "CUDA" in section
