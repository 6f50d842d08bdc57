"""Reports: one validation result as text, GitHub Markdown, JSON and GitHub annotations."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from torchtune_config_writer.validation.findings import (
    ConfigResult,
    Finding,
    Severity,
    ValidationResult,
)
from torchtune_config_writer.validation.reports import (
    render_annotations,
    render_json,
    render_markdown,
    render_text,
)

EXPERIMENT = Path("sweep/experiment.yaml")
VERSIONS = {"torchtune": "0.6.1", "torch": "2.6.0"}


def run(number: int) -> Path:
    return Path(f"sweep/configs/run_{number:03d}.yaml")


def error(config: Path, experiment_line: int | None = 7) -> Finding:
    return Finding(
        config=config,
        keypath="optimizer.lr",
        line=12,
        severity=Severity.ERROR,
        check="type",
        message="expected a float, got the string '3e-4'",
        experiment=EXPERIMENT if experiment_line else None,
        experiment_line=experiment_line,
    )


def warning(config: Path) -> Finding:
    return Finding(
        config,
        "unused_key",
        30,
        Severity.WARNING,
        "unread-key",
        "the recipe never reads unused_key",
    )


def four_configs() -> ValidationResult:
    """A valid config, one with an error set in the experiment, one unverified, one warning."""
    unverified = Finding(
        run(3),
        "quantizer._component_",
        20,
        Severity.UNVERIFIED,
        "import",
        "bitsandbytes is not installed",
    )
    return ValidationResult(
        configs=[
            ConfigResult(run(1), "passed", experiment=EXPERIMENT),
            ConfigResult(run(2), "crashed", (error(run(2)),), EXPERIMENT),
            ConfigResult(run(3), "passed", (unverified,), EXPERIMENT),
            ConfigResult(run(4), "passed", (warning(run(4)),), EXPERIMENT),
        ],
        versions=dict(VERSIONS),
    )


def many_errors(configs: int, per_config: int, message: str = "bad value") -> ValidationResult:
    """``configs`` configs with ``per_config`` errors each, none set in the experiment."""
    return ValidationResult(
        configs=[
            ConfigResult(
                run(n),
                "failed",
                tuple(
                    Finding(run(n), f"key{k}", k, Severity.ERROR, "type", message)
                    for k in range(1, 1 + per_config)
                ),
            )
            for n in range(1, configs + 1)
        ],
        versions=dict(VERSIONS),
    )


def test_text_report_gives_each_finding_with_where_it_was_set_then_every_config() -> None:
    assert render_text(four_configs()) == (
        "torchtune-config-writer validation report\n"
        "versions: torchtune 0.6.1, torch 2.6.0\n"
        "4 configs: 1 valid, 1 with warnings, 1 unverified, 1 invalid\n"
        "\n"
        "error optimizer.lr [type]: expected a float, got the string '3e-4'\n"
        "    set at sweep/experiment.yaml:7\n"
        "    in sweep/configs/run_002.yaml:12\n"
        "\n"
        "warning unused_key [unread-key]: the recipe never reads unused_key\n"
        "    in sweep/configs/run_004.yaml:30\n"
        "\n"
        "unverified quantizer._component_ [import]: bitsandbytes is not installed\n"
        "    in sweep/configs/run_003.yaml:20\n"
        "\n"
        "configs:\n"
        "  sweep/configs/run_001.yaml: valid (tune validate: passed)\n"
        "  sweep/configs/run_002.yaml: invalid (tune validate: crashed)\n"
        "  sweep/configs/run_003.yaml: unverified (tune validate: passed)\n"
        "  sweep/configs/run_004.yaml: warning (tune validate: passed)\n"
    )


def test_the_console_report_gives_a_finding_of_many_configs_once_and_counts_the_rest() -> None:
    # 40 configs share one mistake of a control; 2 configs have one of their own.
    shared = "expected a float, got the string '3e-4'"
    result = many_errors(40, 1, shared)
    for n in (41, 42):
        own = Finding(run(n), "model.lora_rank", 9, Severity.WARNING, "type", f"rank {n}?")
        result.configs.append(ConfigResult(run(n), "passed", (own,)))
    result.configs.append(ConfigResult(run(43), "passed"))
    text = render_text(result, verbose=False)
    assert text.count(shared) == 1
    assert f"error key1 [type]: {shared}\n    in 40 configs: sweep/configs/run_001.yaml:1, " in text
    assert "sweep/configs/run_005.yaml:1 and 35 more (-v lists them)\n" in text
    assert "run_006" not in text  # the first five are named, the rest counted
    assert text.count("rank 4") == 2  # two findings of their own, each with its config
    assert "\n1 config without findings (-v lists every config)\n" in text
    assert "\nconfigs:\n" not in text
    verbose = render_text(result, verbose=True)
    assert verbose.count(shared) == 1 and "run_040.yaml:1\n" in verbose
    assert "\n  sweep/configs/run_043.yaml: valid (tune validate: passed)\n" in verbose
    quiet = render_text(result, verbose=False, findings_only=True)
    assert quiet.startswith(f"error key1 [type]: {shared}\n") and "validation report" not in quiet
    assert "without findings" not in quiet
    assert render_text(many_errors(0, 0), findings_only=True) == ""


def test_text_report_shows_paths_inside_the_cwd_relative_and_indents_long_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "exp" / "configs" / "run_001.yaml"
    crash = Finding(
        config, "", None, Severity.ERROR, "tune-validate", "Traceback:\n  File x\nKeyError"
    )
    result = ValidationResult([ConfigResult(config, "crashed", (crash,))], {"torchtune": "0.6.1"})
    assert render_text(result).splitlines()[2:] == [
        "1 config: 0 valid, 0 with warnings, 0 unverified, 1 invalid",
        "",
        "error [tune-validate]: Traceback:",
        "      File x",
        "    KeyError",
        "    in exp/configs/run_001.yaml",
        "",
        "configs:",
        "  exp/configs/run_001.yaml: invalid (tune validate: crashed)",
    ]
    assert render_text(result).splitlines()[1] == "versions: torchtune 0.6.1, torch unknown"


def test_markdown_report_has_summary_and_tables_with_cells_escaped() -> None:
    result = four_configs()
    pipe = Finding(run(4), "a|b", 3, Severity.WARNING, "type", "got 'x | y'\nexpected *int*")
    result.configs[3] = ConfigResult(run(4), "passed", (pipe,), EXPERIMENT)
    markdown = render_markdown(result)
    assert markdown.startswith("## torchtune-config-writer validation report\n")
    assert "| ✅ valid | 1 |\n| ⚠️ with warnings | 1 |\n" in markdown
    assert "| **total** | **4** |\n" in markdown
    assert (
        "| `sweep/configs/run_004.yaml` | `a\\|b` | 3 | ⚠️ warning | type "
        "| got 'x \\| y'<br>expected \\*int\\* |  |\n"
    ) in markdown
    assert "| `sweep/configs/run_002.yaml` | ❌ invalid | crashed |\n" in markdown
    assert "Report cut" not in markdown


def test_markdown_report_is_cut_by_whole_rows_to_stay_under_max_bytes() -> None:
    # Multi-byte messages: the limit is in UTF-8 bytes, not characters.
    result = many_errors(60, 1, message="valeur érronée ✗")
    full = render_markdown(result)
    markdown = render_markdown(result, max_bytes=3000)
    assert len(full.encode()) > 3000 >= len(markdown.encode())
    note = re.fullmatch(
        r"_Report cut: (\d+) more findings and 60 more configs are in the text report "
        r"\(`validation_report.txt`\)\._",
        markdown.splitlines()[-1],
    )
    assert note, markdown.splitlines()[-1]
    kept_rows = [line for line in markdown.splitlines() if "valeur" in line]
    assert kept_rows and len(kept_rows) + int(note[1]) == 60
    assert all(line in full.splitlines() for line in kept_rows)  # whole rows only
    assert "| ❌ invalid | 60 |\n| **total** | **60** |\n" in markdown  # the summary is kept


def test_markdown_cut_puts_errors_before_warnings() -> None:
    result = many_errors(30, 1)
    result.configs[:0] = [ConfigResult(run(99), "passed", (warning(run(99)),))]
    markdown = render_markdown(result, max_bytes=2000)
    assert "Report cut: " in markdown
    assert "unread-key" not in markdown
    assert "| ❌ error | type | bad value |" in markdown


def test_markdown_max_bytes_too_small_for_the_summary_is_refused() -> None:
    with pytest.raises(ValueError, match="no room"):
        render_markdown(many_errors(5, 1), max_bytes=100)


def test_json_report_parses_and_round_trips_the_counts() -> None:
    text = render_json(four_configs())
    document = json.loads(text)
    assert text == json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert document["counts"] == {
        "valid": 1,
        "warning": 1,
        "unverified": 1,
        "invalid": 1,
        "total": 4,
    }
    assert document["versions"] == VERSIONS
    invalid = document["configs"][1]
    assert invalid == {
        "path": "sweep/configs/run_002.yaml",
        "status": "invalid",
        "tune_validate": "crashed",
        "execution": "",
        "experiment": "sweep/experiment.yaml",
        "findings": [
            {
                "config": "sweep/configs/run_002.yaml",
                "keypath": "optimizer.lr",
                "line": 12,
                "severity": "error",
                "check": "type",
                "message": "expected a float, got the string '3e-4'",
                "experiment": "sweep/experiment.yaml",
                "experiment_line": 7,
            }
        ],
    }


def test_annotations_point_at_the_experiment_line_and_the_config_line() -> None:
    assert render_annotations(four_configs()).splitlines() == [
        "::error file=sweep/experiment.yaml,line=7,title=optimizer.lr [type]%2C set here"
        "::expected a float, got the string '3e-4'%0AIn sweep/configs/run_002.yaml.",
        "::error file=sweep/configs/run_002.yaml,line=12,title=optimizer.lr [type]"
        "::expected a float, got the string '3e-4'%0ASet at sweep/experiment.yaml:7.",
        "::warning file=sweep/configs/run_004.yaml,line=30,title=unused_key [unread-key]"
        "::the recipe never reads unused_key",
        "::warning file=sweep/configs/run_003.yaml,line=20,"
        "title=unverified%3A quantizer._component_ [import]::bitsandbytes is not installed",
    ]


def test_annotations_escape_properties_and_messages() -> None:
    config = Path("odd,dir/a:b.yaml")
    finding = Finding(config, "model:x", None, Severity.ERROR, "type", "got 100%, not\r\na number")
    result = ValidationResult([ConfigResult(config, "failed", (finding,))])
    assert render_annotations(result) == (
        "::error file=odd%2Cdir/a%3Ab.yaml,title=model%3Ax [type]::got 100%25, not%0D%0Aa number\n"
    )


def test_a_mistake_repeated_across_a_sweep_is_annotated_once_in_the_experiment() -> None:
    result = ValidationResult(
        [ConfigResult(run(n), "failed", (error(run(n)),), EXPERIMENT) for n in (1, 2, 3)]
    )
    lines = render_annotations(result).splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "::error file=sweep/experiment.yaml",
        "::error file=sweep/configs/run_001.yaml",
        "::error file=sweep/configs/run_002.yaml",
        "::error file=sweep/configs/run_003.yaml",
    ]
    assert lines[0].endswith("%0AIn sweep/configs/run_001.yaml and 2 more configs.")


def test_annotations_are_capped_per_kind_spread_across_configs_with_a_notice() -> None:
    result = many_errors(15, 2)
    result.configs += [ConfigResult(run(n), "passed", (warning(run(n)),)) for n in range(20, 32)]
    lines = render_annotations(result, max_per_kind=10).splitlines()
    errors = [line for line in lines if line.startswith("::error ")]
    warnings = [line for line in lines if line.startswith("::warning ")]
    assert len(errors) == len(warnings) == 10
    # The first finding of ten configs, not both findings of five.
    assert [line.split(",")[0] for line in errors] == [
        f"::error file=sweep/configs/run_{n:03d}.yaml" for n in range(1, 11)
    ]
    assert lines.index(errors[-1]) < lines.index(warnings[0])
    assert lines[-1] == (
        "::notice::20 more errors and 2 more warnings are in the report (validation_report.txt)."
    )


def test_annotations_omit_the_notice_when_nothing_is_left_out() -> None:
    assert "::notice" not in render_annotations(many_errors(10, 1))
    assert render_annotations(ValidationResult([ConfigResult(run(1), "passed")])) == ""
