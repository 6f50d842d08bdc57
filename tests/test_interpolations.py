"""Every string written into a run loads with OmegaConf: a half-open ``${`` is refused at its
experiment line, not copied into every run for ``tune run`` to refuse the whole file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf
from omegaconf.grammar_parser import SIMPLE_INTERPOLATION_PATTERN

from torchtune_config_writer import generate
from torchtune_config_writer.generation.templates import SIMPLE_INTERPOLATION, interpolation_problem

from .conftest import experiment_text, snapshot


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


def test_the_fast_test_is_omegaconfs_own() -> None:
    assert SIMPLE_INTERPOLATION.pattern == SIMPLE_INTERPOLATION_PATTERN.pattern
    assert SIMPLE_INTERPOLATION.flags == SIMPLE_INTERPOLATION_PATTERN.flags


@pytest.mark.parametrize(
    "text", ["${foo", "${", "${}", "a/${output_dir", "${foo.{x}}", "${a} and ${b"]
)
def test_what_omegaconf_refuses_has_a_problem(text: str) -> None:
    problem = interpolation_problem(text)
    assert problem is not None
    with pytest.raises(Exception, match="GrammarParseError|no viable|token recognition"):
        OmegaConf.to_container(OmegaConf.create({"k": text}), resolve=False)


@pytest.mark.parametrize(
    "text",
    ["plain", "$", "{x}", "x}", "${a}}", "\\${foo", "${output_dir}/logs", "${oc.env:HOME,/tmp}",
     "${oc.select:a.b,${c}}", "a $ {b"],
)  # fmt: skip
def test_what_omegaconf_takes_has_none(text: str) -> None:
    assert interpolation_problem(text) is None
    OmegaConf.create({"k": text})  # would raise for a string OmegaConf refuses


def test_a_half_open_control_is_refused_at_its_line(
    write_experiment: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    path = write_experiment(experiment_text(controls="+note: '${foo'"))
    line = line_of(path, "  +note: '${foo'")
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2
    assert result.err == (
        f"error: {path}:{line}:3: '${{foo' is not an interpolation "
        "OmegaConf can read (no viable alternative at input '${foo'): close it as ${key}, or "
        "write \\${ for a literal ${\n"
    )
    assert snapshot(path.parent) == before


def test_a_half_open_variable_value_is_refused_at_its_item(
    write_experiment: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    variables = """\
        dataset:
          - {data_files: a.json}
          - {data_files: '${'}
    """
    path = write_experiment(experiment_text(variables=variables))
    result = cli("generate", path)
    assert result.code == 2
    line = line_of(path, "    - {data_files: '${'}")
    assert result.err.startswith(f"error: {path}:{line}:")
    assert "'${' is not an interpolation OmegaConf can read" in result.err
    assert result.err.count("\n") == 1
    assert not (path.parent / "configs").exists()


def test_a_placeholder_that_opens_an_interpolation_is_refused(
    write_experiment: Callable[..., Path], cli: Callable[..., Any]
) -> None:
    # Each string is fine alone; the run with tag '$' writes '${' into its note.
    path = write_experiment(
        experiment_text(variables="+tag: ['$', plain]", controls="+note: '{tag}{'")
    )
    line = line_of(path, "  +note: '{tag}{'")
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.startswith(f"error: {path}:{line}:3: '${{' ")


def test_an_escaped_interpolation_is_written_and_reads_as_literal_text(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(controls="+note: '\\${foo'\n+log: '${output_dir}/logs'")
    )
    generate(path)
    config = OmegaConf.load(path.parent / "configs" / "run_000.yaml")
    assert config.note == "${foo"
    assert config.log == f"{config.output_dir}/logs"


def test_clean_strings_never_import_omegaconf(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(controls="+log: '${output_dir}/logs'\n+env: '${oc.env:HOME,/tmp}'")
    )
    generate(path)  # resolves and records the base, so the subprocess reads only the lock
    script = textwrap.dedent(f"""
        import sys
        from torchtune_config_writer import generate
        generate({str(path)!r})
        assert "omegaconf" not in sys.modules
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
