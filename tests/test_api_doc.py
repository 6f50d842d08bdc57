"""docs/api.md lists every public name of the package with its real signature, and its example
runs."""

from __future__ import annotations

import dataclasses
import inspect
import re
import shutil
import subprocess
import sys
from pathlib import Path

import torchtune_config_writer as api

REPO = Path(__file__).resolve().parent.parent
PAGE = (REPO / "docs" / "api.md").read_text(encoding="utf-8")


def signature_line(name: str) -> str:
    """``name(param: annotation = default, *, …) -> return``, as the page writes it."""
    signature = inspect.signature(getattr(api, name))
    parts, starred = [], False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.KEYWORD_ONLY and not starred:
            parts.append("*")
            starred = True
        text = f"{parameter.name}: {parameter.annotation}"
        if parameter.default is not parameter.empty:
            text += f" = {parameter.default!r}"
        parts.append(text)
    return f"{name}({', '.join(parts)}) -> {signature.return_annotation}"


def test_every_public_function_is_on_the_page_with_its_signature() -> None:
    functions = [n for n in api.__all__ if inspect.isfunction(getattr(api, n))]
    assert {"generate", "check", "read_inputs", "render", "validate"} <= set(functions)
    missing = [signature_line(n) for n in functions if signature_line(n) not in PAGE]
    assert not missing, "\n".join(missing)


def test_every_public_result_lists_its_fields() -> None:
    from torchtune_config_writer.output.checking import CheckResult
    from torchtune_config_writer.validation.findings import ValidationResult

    for cls in (api.Generated, api.Inputs, CheckResult, ValidationResult):
        fields = [field.name for field in dataclasses.fields(cls)]
        listed = re.search(rf"`{cls.__name__}` fields: (.*?)[;.]", PAGE, re.S)
        assert listed is not None, cls.__name__
        assert re.findall(r"`(\w+)`", listed[1]) == fields, cls.__name__


def test_the_pages_example_runs(tmp_path: Path) -> None:
    code = PAGE.split("```python\n", 1)[1].split("```", 1)[0]
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    done = subprocess.run(
        [sys.executable, "-c", code + "\nprint(sorted(files)[:2])"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    count, runs = done.stdout.splitlines()[0].split(" ", 1)
    assert count == "4" and runs.count("run_0") == 4
    assert done.stdout.splitlines()[1] == "['base.lock.yaml', 'run_000.yaml']"
