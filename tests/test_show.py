"""``show EXP``: the runs of an experiment and what each changes in its base, writing nothing."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from torchtune_config_writer.cli.show import format_runs
from torchtune_config_writer.generation.inputs import read_inputs
from torchtune_config_writer.generation.plan import plan_experiment

from .conftest import (
    EXAMPLES,
    CliResult,
    experiment_text,
    python_without_torch,
    record_base,
    snapshot,
)

# A small base beside the experiment, so that whole outputs can be asserted exactly.
BASE = """\
output_dir: /tmp/out
model:
  lora_rank: 64
  lora_alpha: 128
checkpoint_files: [model.safetensors]
datasets:
- {source: a, packed: false}
- {source: b, packed: false}
optimizer:
  lr: 0.001
batch_size: 4
epochs: 1
"""


def show_custom(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    *args: str,
    variables: str = "",
    controls: str = "",
) -> CliResult:
    """``show`` of an experiment over ``BASE``; fails unless it succeeded and wrote nothing."""
    path = write_experiment(
        experiment_text(variables, controls, base="base_config_file: base.yaml")
    )
    (path.parent / "base.yaml").write_text(BASE, encoding="utf-8")
    before = snapshot(path.parent)
    result = cli("show", path, *args)
    assert (result.code, result.err) == (0, "")
    assert snapshot(path.parent) == before
    return result


def expected(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_the_lora_rank_study_example(cli: Callable[..., CliResult]) -> None:
    before = snapshot(EXAMPLES / "lora_rank_study")
    result = cli("show", EXAMPLES / "lora_rank_study")
    assert result.code == 0 and result.err == ""
    # learning_rate 3e-4 and batch_size 4 are the base's values: not changes.
    assert result.out == expected("""
        lora_rank_study: 4 runs of llama3_2/1B_lora_single_device

        Every run changes:
          model.lora_alpha       128   → 16
          tokenizer.max_seq_len  null  → 2048
          dataset.packed         false → true
          dataset.data_files     (new) → /scratch/data/alpaca.json
          epochs                 1     → 3

        run      output_dir                                     model.lora_rank
        (base)   /tmp/torchtune/llama3_2_1B/lora_single_device  64
        run_000  /scratch/results/lora_study/run_000            8
        run_001  /scratch/results/lora_study/run_001            16
        run_002  /scratch/results/lora_study/run_002            32
        run_003  /scratch/results/lora_study/run_003            64
    """)
    assert snapshot(EXAMPLES / "lora_rank_study") == before


def test_the_experiment_file_itself_is_accepted(cli: Callable[..., CliResult]) -> None:
    by_folder = cli("show", EXAMPLES / "lora_rank_study")
    by_file = cli("show", EXAMPLES / "lora_rank_study" / "experiment.yaml")
    assert by_file.code == 0 and by_file.out == by_folder.out


def test_two_variables_are_columns_in_the_order_written_the_fastest_changing_last(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(
        write_experiment,
        cli,
        variables="""
        learning_rate: [1e-4, 2e-4]
        lora_rank: [64, 16]
        """,
        controls="epochs: 3",
    )
    # optimizer.lr is written first, though the config has model.lora_rank first: the columns
    # follow the experiment, so the last column is the one that changes every run.
    assert result.out == expected("""
        study: 4 runs of base.yaml

        Every run changes:
          epochs  1 → 3

        run      output_dir        optimizer.lr  model.lora_rank
        (base)   /tmp/out          0.001         64
        run_000  /tmp/out/run_000  0.0001        64
        run_001  /tmp/out/run_001  0.0001        16
        run_002  /tmp/out/run_002  0.0002        64
        run_003  /tmp/out/run_003  0.0002        16
    """)


def test_a_control_equal_to_the_base_value_is_not_a_change(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(write_experiment, cli, controls="batch_size: 4\nepochs: 2")
    assert "batch_size" not in result.out
    assert "  epochs  1 → 2\n" in result.out


def test_an_integer_made_a_float_is_a_change(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    # 128 and 128.0 are equal in Python, but the generated config says 128.0 (lora_alpha is
    # one of the integers torchtune reads as a float, so a float may replace it).
    result = show_custom(write_experiment, cli, controls="lora_alpha: 128.0")
    assert "  model.lora_alpha  128 → 128.0\n" in result.out


def test_a_variable_value_equal_to_the_base_still_shows_in_its_row(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(
        write_experiment, cli, variables="lora_rank: [8, 64]", controls="output_dir: /o"
    )
    assert result.out.endswith(
        expected("""
        run      output_dir  model.lora_rank
        (base)   /tmp/out    64
        run_000  /o/run_000  8
        run_001  /o/run_001  64
        """)
    )


def test_a_new_key_shows_as_new(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(
        write_experiment,
        cli,
        variables="+optimizer.foreach: [true, false]",
        controls="+custom_flag: true\n+empty: {}",
    )
    assert "  custom_flag  (new) → true\n  empty        (new) → {}\n" in result.out
    assert "(base)   /tmp/out          (new)\n" in result.out
    assert "run_001  /tmp/out/run_001  false\n" in result.out


def test_a_nested_mapping_control_lists_only_the_keys_it_changes(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(
        write_experiment,
        cli,
        controls="""
        model:
          lora_alpha: 16
          lora_rank: 64
        +extra:
          nested: {depth: 2}
        """,
    )
    assert result.out == expected("""
        study: 1 run of base.yaml

        The run changes:
          model.lora_alpha    128   → 16
          extra.nested.depth  (new) → 2
    """)


def test_a_list_value_compares_whole(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(
        write_experiment,
        cli,
        variables="checkpoint_files: [[a.safetensors], [b.safetensors, c.safetensors]]",
        controls="output_dir: /o",
    )
    assert result.out.endswith(
        expected("""
        run      output_dir  checkpoint_files
        (base)   /tmp/out    [model.safetensors]
        run_000  /o/run_000  [a.safetensors]
        run_001  /o/run_001  [b.safetensors, c.safetensors]
        """)
    )
    assert "checkpoint_files.0" not in result.out


def test_a_mapping_inside_a_list_shows_its_index(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(write_experiment, cli, controls="datasets.1.packed: true")
    assert "The run changes:\n  datasets.1.packed  false → true\n" in result.out


def test_a_list_of_mappings_replaced_whole_shows_whole(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    # The second item loses its `packed`: the list was replaced, not merged into.
    result = show_custom(
        write_experiment, cli, controls="datasets: [{source: y, packed: true}, {source: z}]"
    )
    assert result.out.endswith(
        "  datasets  [{source: a, packed: false}, {source: b, packed: false}]"
        " → [{source: y, packed: true}, {source: z}]\n"
    )


def test_no_variables_is_one_run_without_a_table(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(write_experiment, cli, controls="epochs: 3")
    assert result.out == expected("""
        study: 1 run of base.yaml

        The run changes:
          epochs  1 → 3
    """)


def test_no_variables_and_no_controls_is_the_base(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    result = show_custom(write_experiment, cli)
    assert result.out == "study: 1 run of base.yaml\n\nThe run is the base config, unchanged.\n"


def test_long_values_are_cut_unless_wide(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    long = "/scratch/" + "x" * 80
    result = show_custom(write_experiment, cli, controls=f"output_dir: {long}")
    line = result.out.splitlines()[-1]
    assert line == f"  output_dir  /tmp/out → {long[:59]}…"
    wide = show_custom(write_experiment, cli, "--wide", controls=f"output_dir: {long}")
    assert wide.out.splitlines()[-1] == f"  output_dir  /tmp/out → {long}"


def test_plain_ascii_for_terminals_that_cannot_show_arrows(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(controls="+note: " + "n" * 70))
    text = format_runs(plan_experiment(read_inputs(path)), unicode=False)
    assert text.endswith(f"  note  (new) -> {'n' * 57}...\n")


def test_a_recipe_base_is_not_recorded_by_show(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    # generate would write configs/base.lock.yaml; show resolves the recipe and writes nothing.
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    result = cli("show", path)
    assert result.code == 0
    assert result.out.startswith("study: 2 runs of llama3_2/1B_lora_single_device\n")
    assert "run_001  /tmp/torchtune/llama3_2_1B/lora_single_device/run_001  16\n" in result.out
    assert snapshot(path.parent) == {"experiment.yaml": path.read_bytes()}


def test_show_never_imports_torch(write_experiment: Callable[..., Path]) -> None:
    # Resolving a recipe reads torchtune's files; showing a sweep must stay as quick as generate.
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    record_base(path)
    script = textwrap.dedent(f"""
        import sys
        from torchtune_config_writer.cli import main
        assert main(["show", {str(path)!r}]) == 0
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchtune"))
        assert not loaded, loaded
    """)
    result = python_without_torch(script)
    assert result.returncode == 0, result.stderr


def test_a_bad_experiment_is_one_error_line(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="lora_rnak: [8, 16]"))
    result = cli("show", path)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "lora_rnak" in result.err and "Traceback" not in result.err
    assert snapshot(path.parent) == {"experiment.yaml": path.read_bytes()}


def test_more_runs_than_max_runs_is_an_error(cli: Callable[..., CliResult]) -> None:
    result = cli("show", EXAMPLES / "lora_rank_study", "--max-runs", "3")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1


def test_a_missing_experiment_is_an_error(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("show", tmp_path / "nowhere")
    assert result.code == 2 and result.out == "" and result.err.startswith("error: ")
    assert list(tmp_path.iterdir()) == []


def test_as_json_every_value_is_whole_and_no_workflow_command(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    long = "/scratch/" + "x" * 80
    result = show_custom(
        write_experiment,
        cli,
        "--format",
        "json",
        variables="lora_rank: [8, 16]",
        controls=f"output_dir: {long}\n+note: '##[error]forged'\n+ratio: .nan\nepochs: 1",
    )
    assert "##[" not in result.out
    report = json.loads(result.out)
    assert (report["experiment"], report["base"], report["design"]) == ("study", "base.yaml", [])
    assert report["runs"] == ["run_000", "run_001"]
    assert report["shared"] == [
        {
            "key": "note",
            "path": ["note"],
            "before": None,
            "after": "##[error]forged",
            "absent_before": True,
            "absent_after": False,
        },
        {
            "key": "ratio",
            "path": ["ratio"],
            "before": None,
            "after": ".nan",  # JSON has no NaN: as YAML spells it
            "absent_before": True,
            "absent_after": False,
        },
    ]
    assert report["columns"] == [
        {
            "key": "output_dir",
            "path": ["output_dir"],
            "before": "/tmp/out",
            "absent_before": False,
            "values": {"run_000": f"{long}/run_000", "run_001": f"{long}/run_001"},
        },
        {
            "key": "model.lora_rank",
            "path": ["model", "lora_rank"],
            "before": 64,
            "absent_before": False,
            "values": {"run_000": 8, "run_001": 16},
        },
    ]
