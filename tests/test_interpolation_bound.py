"""What resolving interpolations may cost is bounded before anything resolves them.

OmegaConf caches nothing: ``a1: ${a0}${a0}``, ``a2: ${a1}${a1}``, ... ``a24`` takes 2^24 steps
to resolve. ``generate`` refuses such a config at the line that wrote the value, and ``validate``
reports it instead of resolving it or running it; a normal config resolves as before.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from torchtune_config_writer import generate
from torchtune_config_writer.generation import builtin_configs
from torchtune_config_writer.interpolation_bound import MAX_CHAIN, resolving_problem
from torchtune_config_writer.interpolation_syntax import read_interpolations
from torchtune_config_writer.validation.findings import Status
from torchtune_config_writer.yaml_read import read_yaml_file

from .conftest import experiment_text, snapshot


def doubling(n: int) -> dict[str, Any]:
    """``a0: x`` and each next key twice the one before."""
    config: dict[str, Any] = {"a0": "x"}
    for i in range(1, n + 1):
        config[f"a{i}"] = f"${{a{i - 1}}}${{a{i - 1}}}"
    return config


def chain(n: int) -> dict[str, Any]:
    """``a0: x`` and each next key the one before."""
    config: dict[str, Any] = {"a0": "x"}
    for i in range(1, n + 1):
        config[f"a{i}"] = f"${{a{i - 1}}}"
    return config


NORMAL = {
    "output_dir": "/tmp/x",
    "checkpointer": {"output_dir": "${output_dir}", "adapter": "${.output_dir}/adapter"},
    "metric_logger": {"log_dir": "${output_dir}/logs"},
    "dataset": [{"source": "json", "data_files": "/data/a.json"}],
    "data_files": "${dataset[0].data_files}",
    "scratch": "${oc.env:SCRATCH_FOR_A_TEST,/tmp}/run",
    "note": "\\${not_a_reference}",
}


def line_of(path: Path, text: str) -> int:
    return path.read_text(encoding="utf-8").splitlines().index(text) + 1


# --- the bound itself --------------------------------------------------------------------------


def test_a_normal_config_is_within_the_bound_and_resolves() -> None:
    assert resolving_problem(NORMAL) is None
    resolved = OmegaConf.to_container(OmegaConf.create(NORMAL), resolve=True)
    assert resolved["checkpointer"] == {"output_dir": "/tmp/x", "adapter": "/tmp/x/adapter"}
    assert resolved["data_files"] == "/data/a.json"


def test_a_doubling_chain_is_refused_at_its_costliest_value() -> None:
    problem = resolving_problem(doubling(24))
    assert problem is not None
    assert problem.keypath == ("a24",)
    assert problem.message.startswith(
        "a24 '${a23}${a23}' takes 33,554,430 interpolations to resolve"
    )
    assert "more than the 10,000 a config may take" in problem.message


def test_a_short_doubling_chain_is_within_the_bound() -> None:
    assert resolving_problem(doubling(6)) is None


def test_a_cycle_is_refused() -> None:
    problem = resolving_problem({"a": "${b}", "b": "x/${a}"})
    assert problem is not None
    assert problem.keypath == ("b",)
    assert problem.message == (
        "b 'x/${a}' cannot be resolved: it refers back to itself (b → a → b); break the cycle "
        "by writing one of these values out"
    )


def test_a_value_referring_to_the_mapping_it_is_in_is_a_cycle() -> None:
    problem = resolving_problem({"model": {"name": "m", "copy": "${model}"}})
    assert problem is not None
    assert problem.keypath == ("model", "copy")
    assert "it is inside model, which it refers to" in problem.message


def test_a_chain_5000_deep_is_refused_where_it_passes_the_limit() -> None:
    problem = resolving_problem(chain(5000))
    assert problem is not None
    assert problem.keypath == (f"a{MAX_CHAIN + 1}",)
    assert f"starts a chain of more than {MAX_CHAIN} references (a33 → a32 → a31 → … → a0)" in (
        problem.message
    )


def test_the_chain_limit_is_one_omegaconf_resolves() -> None:
    config = chain(MAX_CHAIN)
    assert resolving_problem(config) is None
    assert OmegaConf.create(config)[f"a{MAX_CHAIN}"] == "x"


def test_lists_that_double_through_references_are_refused() -> None:
    config: dict[str, Any] = {"a0": ["x"]}
    for i in range(1, 25):
        config[f"a{i}"] = [f"${{a{i - 1}}}", f"${{a{i - 1}}}"]
    problem = resolving_problem(config)
    assert problem is not None
    assert problem.keypath[0] == "a24"


def test_a_list_whose_items_each_copy_a_long_string_is_refused() -> None:
    # One interpolation each, but every item builds a string of its own: 2,000 x 1,000.
    config = {"long": "x" * 1000, "items": [f"{i}:${{long}}" for i in range(2000)]}
    problem = resolving_problem(config)
    assert problem is not None
    assert problem.keypath[0] == "items"
    assert "more than the 1,048,576 a config may build" in problem.message


def test_a_key_path_through_a_reference_is_followed() -> None:
    # ${b.x} goes on through b: ${a}; the cycle below it is found.
    assert resolving_problem({"a": {"x": 1}, "b": "${a}", "c": "${b.x}"}) is None
    problem = resolving_problem({"b": "${c}", "c": "${b}", "d": "${b.x}"})
    assert problem is not None
    assert "(b → c → b)" in problem.message


def test_decoding_text_that_can_make_an_interpolation_is_refused() -> None:
    # '$' and '{c}' make '${c}' only while resolving: no bound sees it coming.
    config = {"a": "$", "b": "{c}", "c": "C", "d": "${oc.decode:'${a}${b}'}"}
    assert OmegaConf.create(config).d == "C"
    problem = resolving_problem(config)
    assert problem is not None
    assert problem.keypath == ("d",)
    assert "decodes text that can hold a '$'" in problem.message
    assert resolving_problem({"n": "${oc.decode:${oc.env:N_FOR_A_TEST,2}}"}) is None


def test_a_key_made_by_an_interpolation_is_refused() -> None:
    problem = resolving_problem({"k": "c", "c": "C", "d": "${${k}}"})
    assert problem is not None
    assert "makes the key it refers to with another interpolation" in problem.message


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("\\${a}", []),  # an escaped interpolation is text
        ("\\\\${a}", ["a"]),  # an escaped backslash before a real one
        ("${oc.env:X,${a}}/${.b}", ["a", ".b"]),
        ("${oc.select:'m.x',${c}}", ["m.x", "c"]),
        ("${ dataset[0].source }", ["dataset[0].source"]),
    ],
)
def test_the_keys_of_a_string_are_read_as_omegaconf_reads_them(text: str, keys: list[str]) -> None:
    assert [key for key, _ in read_interpolations(text).references] == keys


@pytest.mark.needs_torchtune
def test_every_builtin_torchtune_config_is_within_the_bound() -> None:
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    found = torchtune.find("llama3_2/1B_lora_single_device")
    assert found is not None
    folder = found.path.parent.parent
    configs = sorted(folder.rglob("*.yaml"))
    assert len(configs) > 100
    for path in configs:
        assert resolving_problem(read_yaml_file(path).data) is None, path


# --- generate ----------------------------------------------------------------------------------


def write_study(tmp_path: Path, controls: str, variables: str = "") -> Path:
    """An experiment over a small base config of its own (no torchtune needed)."""
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "base.yaml").write_text(
        "output_dir: /tmp/study\ncheckpointer:\n  output_dir: ${output_dir}\n"
    )
    path = folder / "experiment.yaml"
    text = experiment_text(variables, controls, base="base_config_file: base.yaml")
    path.write_text(text)
    return path


def test_generate_refuses_a_doubling_chain_at_its_line(tmp_path: Path) -> None:
    controls = "+a0: x\n" + "".join(f"+a{i}: ${{a{i - 1}}}${{a{i - 1}}}\n" for i in range(1, 25))
    path = write_study(tmp_path, controls)
    before = snapshot(path.parent)
    result = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "generate", "experiment.yaml"],
        cwd=path.parent,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    line = line_of(path, "  +a24: ${a23}${a23}")
    assert result.stderr.startswith(
        f"error: experiment.yaml:{line}:3: a24 '${{a23}}${{a23}}' takes 33,554,430 "
        "interpolations to resolve"
    )
    assert result.stderr.count("\n") == 1
    assert snapshot(path.parent) == before


def test_generate_refuses_a_chain_5000_deep_in_the_base_config(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = write_study(tmp_path, "output_dir: /tmp/deep")
    base = path.parent / "base.yaml"
    base.write_text(base.read_text() + "".join(f"{k}: {v}\n" for k, v in chain(5000).items()))
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.startswith(
        f"error: {base}:{line_of(base, 'a33: ${a32}')}:1: a33 '${{a32}}' starts a chain of more "
        "than 32 references"
    )
    assert not (path.parent / "configs").exists()


def test_generate_refuses_a_cycle(tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = write_study(tmp_path, "+a: ${b}/x\n+b: ${a}/y")
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.startswith(f"error: {path}:{line_of(path, '  +a: ${b}/x')}:3: a ")
    assert "(a → b → a)" in result.err


def test_generate_names_the_run_whose_value_makes_the_cost(
    tmp_path: Path, cli: Callable[..., Any]
) -> None:
    # Six doublings of a short a0 are cheap; of a0 as long as 20,000 characters, they are not.
    controls = "".join(f"+a{i}: ${{a{i - 1}}}${{a{i - 1}}}\n" for i in range(1, 7))
    path = write_study(tmp_path, controls, variables=f"+a0: [x, {'y' * 20_000}]")
    result = cli("generate", path)
    assert result.code == 2
    line = line_of(path, "  +a6: ${a5}${a5}")
    assert result.err.startswith(
        f"error: {path}:{line}:3: run_001: a6 '${{a5}}${{a5}}' resolves to"
    )
    assert "characters" in result.err


def test_generate_writes_a_config_with_normal_interpolations(tmp_path: Path) -> None:
    path = write_study(tmp_path, "output_dir: /tmp/normal\n+logs: ${output_dir}/logs")
    generate(path)
    config = OmegaConf.load(path.parent / "configs" / "run_000.yaml")
    assert OmegaConf.to_container(config, resolve=True) == {
        "output_dir": "/tmp/normal",
        "checkpointer": {"output_dir": "/tmp/normal"},
        "logs": "/tmp/normal/logs",
    }


# --- validate ----------------------------------------------------------------------------------


def hostile_config(tmp_path: Path) -> Path:
    """A config written by hand (no experiment) whose last key takes 2^24 steps to resolve."""
    path = tmp_path / "hostile.yaml"
    lines = [f"{key}: '{value}'" for key, value in doubling(24).items()]
    path.write_text("output_dir: /tmp/hostile\n" + "\n".join(lines) + "\n")
    return path


@pytest.mark.needs_torch
def test_validate_reports_the_cost_instead_of_resolving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchtune_config_writer.validation import validating as validating
    from torchtune_config_writer.validation.execution import client

    class NoWorker:
        versions: dict[str, str] = {}

        def start(self) -> None:
            pass

        def run(self, requests: Any) -> Any:
            raise AssertionError(f"sent to the execution worker: {requests}")

    monkeypatch.setattr(client, "shared_executor", NoWorker)
    config = hostile_config(tmp_path)
    result = validating.validate([config], recipe="lora_finetune_single_device")
    (checked,) = result.configs
    assert checked.status is Status.INVALID
    assert checked.execution == "not executed: fix the errors above first"
    (finding,) = checked.findings
    assert (finding.severity, finding.check, finding.keypath) == ("error", "interpolation", "a24")
    assert finding.line == line_of(config, "a24: '${a23}${a23}'")
    assert finding.message.startswith("a24 '${a23}${a23}' takes 33,554,430 interpolations")
    assert finding.message.endswith("nothing else of this config was checked or run")


@pytest.mark.needs_torch
def test_validate_command_exits_1_on_a_cycle(tmp_path: Path, cli: Callable[..., Any]) -> None:
    config = tmp_path / "cycle.yaml"
    config.write_text("a: ${b}\nb: ${a}\n")
    result = cli("validate", "--no-execute", config)
    assert result.code == 1
    assert "cannot be resolved: it refers back to itself (a → b → a)" in result.out


@pytest.mark.needs_torch
def test_the_execution_harness_runs_no_config_past_the_bound(tmp_path: Path) -> None:
    # What validate sends passed the bound; a base config, or a mix made while narrowing a
    # failure down, is checked again where it runs.
    from torchtune_config_writer.validation.execution import harness
    from torchtune_config_writer.validation.execution.protocol import Request

    request = Request(0, "lora_finetune_single_device", str(hostile_config(tmp_path)), ".")
    outcome = harness.execute(request, tmp_path / "work")
    assert (outcome.status, outcome.error) == ("not-checked", "HarnessLimit")
    assert "HarnessLimit: not run: a24 '${a23}${a23}' takes 33,554,430" in outcome.message
