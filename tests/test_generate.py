"""From experiment to configs: names, merging, the sweep, output_dir and the generated folder."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import ConfigWriterError, generate
from torchtune_config_writer.errors import display_path
from torchtune_config_writer.generation import builtin_configs
from torchtune_config_writer.generation.base import read_lock, render_lock

from .conftest import (
    RECIPE,
    CliResult,
    experiment_text,
    record_base,
    runs_of,
    snapshot,
    torchtune_version,
)


def write_base(tmp_path: Path, text: str) -> None:
    """A custom ``base.yaml`` beside the experiment that ``write_experiment`` writes."""
    (tmp_path / "exp").mkdir(exist_ok=True)
    (tmp_path / "exp" / "base.yaml").write_text(text)


def only_run(write_experiment: Callable[..., Path], **sections: str) -> dict[str, Any]:
    path = write_experiment(experiment_text(**sections))
    generate(path)
    (run,) = runs_of(path)
    return run


# Parameter names


def test_dotted_bare_alias_and_unique_place_names_all_resolve(
    write_experiment: Callable[..., Path],
) -> None:
    run = only_run(
        write_experiment,
        controls="""
        optimizer.weight_decay: 0.1
        batch_size: 8
        learning_rate: 1e-5
        lora_rank: 4
    """,
    )
    assert run["optimizer"]["weight_decay"] == 0.1
    assert run["batch_size"] == 8
    assert run["optimizer"]["lr"] == 1e-5
    assert run["model"]["lora_rank"] == 4


def test_plus_adds_new_keys_after_the_base_keys(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(
            controls="""
        +custom_flag: true
        +optimizer.foreach: false
    """
        )
    )
    generate(path)
    run = runs_of(path)[0]
    assert list(run)[-1] == "custom_flag" and run["custom_flag"] is True
    assert list(run["optimizer"]) == ["_component_", "fused", "weight_decay", "lr", "foreach"]


def test_a_numeric_part_indexes_a_list(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    write_base(tmp_path, "datasets:\n- {source: a, packed: false}\n- {source: b, packed: false}\n")
    run = only_run(
        write_experiment, base="base_config_file: base.yaml", controls="datasets.1.packed: true"
    )
    assert run["datasets"] == [{"source": "a", "packed": False}, {"source": "b", "packed": True}]


# Merging


def test_nested_controls_merge_and_keep_the_keys_they_do_not_name(
    write_experiment: Callable[..., Path],
) -> None:
    run = only_run(
        write_experiment,
        controls="""
        metric_logger:
          project: demo
        profiler:
          enabled: true
    """,
    )
    assert run["metric_logger"] == {
        "_component_": "torchtune.training.metric_logging.DiskLogger",
        "log_dir": "${output_dir}/logs",
        "project": "demo",
    }
    assert run["profiler"]["enabled"] is True and run["profiler"]["wait_steps"] == 5


def test_lists_replace_whole(write_experiment: Callable[..., Path]) -> None:
    run = only_run(write_experiment, controls="model.lora_attn_modules: [q_proj]")
    assert run["model"]["lora_attn_modules"] == ["q_proj"]


@pytest.mark.parametrize(
    ("control", "key", "value"),
    [
        ("lora_alpha: 12.5", ("model", "lora_alpha"), 12.5),  # an int torchtune reads as float
        ("optimizer.lr: 1", ("optimizer", "lr"), 1),  # int over float stays an int
        ("seed: 42", "seed", 42),  # anything over null
        ("max_steps_per_epoch: 100", "max_steps_per_epoch", 100),
        ("compile: null", "compile", None),  # null switches a feature off
        ("epochs: ${batch_size}", "epochs", "${batch_size}"),  # interpolation over int
        ("output_dir: /data/${oc.env:USER}", "output_dir", "/data/${oc.env:USER}"),
    ],
)
def test_compatible_types_are_accepted_and_written_exactly(
    write_experiment: Callable[..., Path], control: str, key: Any, value: Any
) -> None:
    run = only_run(write_experiment, controls=control)
    got = run[key[0]][key[1]] if isinstance(key, tuple) else run[key]
    assert (type(got), got) == (type(value), value)


# The sweep


def test_full_factorial_in_written_order_last_variable_fastest(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
        seed: [1, 2]
        lora_rank: [4, 8, 16]
        shuffle: [true, false]
    """
        )
    )
    generate(path)
    combos = [(run["seed"], run["model"]["lora_rank"], run["shuffle"]) for run in runs_of(path)]
    assert combos == [(s, r, sh) for s in (1, 2) for r in (4, 8, 16) for sh in (True, False)]


def test_variable_values_may_be_lists_and_mappings(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(
        experiment_text(
            variables="""
        model.lora_attn_modules: [[q_proj, v_proj], [q_proj, k_proj, v_proj]]
        dataset:
          - {packed: true}
          - {_component_: torchtune.datasets.slimorca_dataset}
    """
        )
    )
    generate(path)
    runs = runs_of(path)
    assert [run["model"]["lora_attn_modules"] for run in runs[::2]] == [
        ["q_proj", "v_proj"],
        ["q_proj", "k_proj", "v_proj"],
    ]
    assert runs[0]["dataset"] == {
        "_component_": "torchtune.datasets.alpaca_cleaned_dataset",
        "packed": True,
    }
    assert runs[1]["dataset"] == {
        "_component_": "torchtune.datasets.slimorca_dataset",
        "packed": False,
    }


def test_no_variables_gives_one_run_with_the_base_output_dir(
    write_experiment: Callable[..., Path],
) -> None:
    run = only_run(write_experiment, controls="epochs: 2")
    assert run["output_dir"] == "/tmp/torchtune/llama3_2_1B/lora_single_device"


@pytest.mark.slow
def test_1000_runs_are_allowed_and_get_wider_ids(write_experiment: Callable[..., Path]) -> None:
    values = ", ".join(str(i) for i in range(1000))
    path = write_experiment(experiment_text(variables=f"seed: [{values}]"))
    generated = generate(path)
    names = [file.name for file in generated.run_files]
    assert len(names) == 1000 and names[0] == "run_0000.yaml" and names[-1] == "run_0999.yaml"


def test_output_dir_variable_keeps_each_runs_own_dir(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(experiment_text(variables="output_dir: [/out/a, /out/b]"))
    generate(path)
    assert [run["output_dir"] for run in runs_of(path)] == ["/out/a", "/out/b"]


def test_runs_sharing_an_output_dir_variable_value_are_split(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="output_dir: [/out/a, /out/b]\nseed: [1, 2]"))
    generate(path)
    assert [run["output_dir"] for run in runs_of(path)] == [
        "/out/a/run_000",
        "/out/a/run_001",
        "/out/b/run_002",
        "/out/b/run_003",
    ]


# The generated folder


def test_header_says_where_the_file_comes_from_and_what_the_run_is(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]\nlearning_rate: [3e-4]"))
    generate(path)
    lines = (path.parent / "configs/run_001.yaml").read_text().splitlines()
    assert lines[:3] == [
        "# Generated by torchtune-config-writer from ../experiment.yaml: do not edit by hand.",
        "# Change the experiment file and run `torchtune-config-writer generate` again.",
        "# run_001 of study: lora_rank=16, learning_rate=0.0003",
    ]
    assert lines[3].startswith("output_dir: ")


def test_a_smaller_sweep_removes_stale_runs_and_keeps_foreign_files(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2, 3]"))
    generate(path)
    notes = path.parent / "configs" / "NOTES.md"
    notes.write_text("our notes\n")
    inode = notes.stat().st_ino
    path.write_text(experiment_text(variables="seed: [1, 2]"))
    result = cli("generate", path)
    assert result.code == 0 and "(removed 1 stale)" in result.out
    assert sorted(p.name for p in (path.parent / "configs").iterdir()) == [
        "NOTES.md",
        "base.lock.yaml",
        "run_000.yaml",
        "run_001.yaml",
        "run_mapping.yaml",
    ]
    assert notes.read_text() == "our notes\n" and notes.stat().st_ino == inode


def test_regenerating_unchanged_writes_nothing(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    configs = path.parent / "configs"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in configs.iterdir()}
    result = cli("generate", path)
    assert "(unchanged)" in result.out
    assert {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in configs.iterdir()} == before


def test_generate_prints_the_seeds_three_lines(
    write_experiment: Callable[..., Path],
    cli: Callable[..., CliResult],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16, 32, 64]"))
    monkeypatch.chdir(path.parent)
    result = cli("generate", "experiment.yaml")
    assert (result.code, result.err) == (0, "")
    assert result.out.splitlines() == [
        f"✓ Loaded base config: {RECIPE} (torchtune {torchtune_version()})",
        "✓ Generated 4 configs in configs/",
        "✓ Created run_mapping.yaml",
    ]


# A run file of an older generation: it carries the header, so the tool may replace it.
OLD_RUN = "# Generated by torchtune-config-writer from ../experiment.yaml: an older run.\n"


def test_an_interrupted_write_is_finished_by_the_next_run(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    configs = path.parent / "configs"
    good = snapshot(configs)
    # Killed after the new folder was staged complete (step 2), before the exchange (step 4).
    ready = configs.with_name(".configs.tcw-ready")
    shutil.copytree(configs, ready)
    (ready / ".tcw-new").touch()
    (configs / "run_000.yaml").write_text(OLD_RUN)
    (configs / "run_005.yaml").write_text(OLD_RUN)
    generate(path)
    assert snapshot(configs) == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["configs", "experiment.yaml"]


def test_a_write_killed_right_after_the_exchange_is_cleaned_up(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    configs = path.parent / "configs"
    good = snapshot(configs)
    # Killed after step 4: configs/ is new (marker still in it), the old one is staged out.
    (configs / ".tcw-new").touch()
    old = configs.with_name(".configs.tcw-ready")
    old.mkdir()
    (old / "run_005.yaml").write_text(OLD_RUN)
    generate(path)
    assert snapshot(configs) == good
    assert sorted(p.name for p in path.parent.iterdir()) == ["configs", "experiment.yaml"]


def test_a_half_written_new_folder_is_discarded(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    good = snapshot(path.parent / "configs")
    half = path.parent / ".configs.tcw-new"
    half.mkdir()
    (half / "run_000.yaml").write_text("half\n")
    generate(path)
    assert snapshot(path.parent / "configs") == good and not half.exists()


def test_timestamped_output_folder_holds_the_experiment_configs_and_mapping(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    text = (
        experiment_text(variables="seed: [1, 2]")
        + "output:\n  base_dir: ../outputs\n  experiment_name: seeds\n"
    )
    path = write_experiment(text)
    first, second = generate(path), generate(path)
    root = first.folder.parent
    assert root.parent == tmp_path / "outputs" and root.name.startswith("seeds_")
    assert second.folder.parent != root  # a second folder, never a mix
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == [
        "configs",
        "configs/base.lock.yaml",
        "configs/run_000.yaml",
        "configs/run_001.yaml",
        "experiment.yaml",
        "run_mapping.yaml",
    ]
    assert (root / "experiment.yaml").read_bytes() == path.read_bytes()
    assert "from experiment.yaml:" in (root / "run_mapping.yaml").read_text()
    assert not (path.parent / "configs").exists()


# The recorded base


def test_recorded_base_is_reused_without_torchtune(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    before = snapshot(path.parent / "configs")
    # torchtune cannot be uninstalled inside the test run; make it unfindable instead.
    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    generated = generate(path)
    assert generated.plan.base.recorded and snapshot(path.parent / "configs") == before
    path.write_text(
        experiment_text(
            variables="seed: [1, 2]", base="base_config: llama3_2/3B_lora_single_device"
        )
    )
    with pytest.raises(ConfigWriterError, match="needs torchtune, which is not installed"):
        generate(path)
    assert snapshot(path.parent / "configs") == before


def record_another_base(lock: Path, old: bytes, new: bytes) -> None:
    """Make ``lock`` record what another torchtune would have (a hand edit would not match the
    lock's digest, and is refused)."""
    recorded = read_lock(lock)
    assert recorded is not None and old in recorded.raw
    lock.write_bytes(render_lock(dataclasses.replace(recorded, raw=recorded.raw.replace(old, new))))


def test_refresh_base_rereads_the_installed_torchtune(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    lock = path.parent / "configs" / "base.lock.yaml"
    record_another_base(lock, b"lora_rank: 64", b"lora_rank: 63")
    assert runs_of(path)[0]["model"]["lora_rank"] == 64
    generate(path)
    assert runs_of(path)[0]["model"]["lora_rank"] == 63  # the lock wins over torchtune
    generate(path, refresh_base=True)
    assert runs_of(path)[0]["model"]["lora_rank"] == 64
    assert b"lora_rank: 64" in lock.read_bytes()


# Determinism


def test_two_checkouts_give_identical_bytes(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    text = experiment_text(variables="lora_rank: [8, 16]", controls="dataset: {packed: true}")
    one = write_experiment(text, folder="a/deep/checkout/exp")
    two = write_experiment(text, folder="b/exp")
    generate(one)
    previous = os.getcwd()
    try:
        os.chdir(tmp_path / "a")
        generate(two)
    finally:
        os.chdir(previous)
    assert snapshot(one.parent) == snapshot(two.parent)


# What the review found


def test_plus_adds_a_key_inside_a_list_item(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    write_base(tmp_path, "datasets:\n- {source: a}\n- {source: b}\n")
    run = only_run(
        write_experiment, base="base_config_file: base.yaml", controls="+datasets.1.packed: true"
    )
    assert run["datasets"] == [{"source": "a"}, {"source": "b", "packed": True}]


def test_line_separators_in_values_keep_the_header_a_comment(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        experiment_text(variables='+note: ["a\\u2028x: 1", "b\\x85c", "d\\ne"]')
    )
    generate(path)
    assert [run["note"] for run in runs_of(path)] == ["a\u2028x: 1", "b\x85c", "d\ne"]
    header = (path.parent / "configs" / "run_000.yaml").read_text().split("\noutput_dir:")[0]
    assert header.endswith('# run_000 of study: +note="a\\Lx: 1"')


def test_a_base_that_repeats_blocks_with_aliases_is_written_out_in_full(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    write_base(tmp_path, "common: &c {lr: 0.1}\nfirst: *c\nsecond: *c\n")
    path = write_experiment(experiment_text(base="base_config_file: base.yaml"))
    generate(path)
    text = (path.parent / "configs" / "run_000.yaml").read_text()
    assert "&" not in text and "*" not in text
    assert runs_of(path)[0] == {"common": {"lr": 0.1}, "first": {"lr": 0.1}, "second": {"lr": 0.1}}


def test_an_interrupted_write_keeps_the_recorded_base(
    write_experiment: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_experiment(experiment_text(variables="seed: [1, 2]"))
    generate(path)
    configs = path.parent / "configs"
    lock = configs / "base.lock.yaml"
    record_another_base(lock, b"batch_size: 4", b"batch_size: 3")
    generate(path)
    recorded = snapshot(configs)
    # Killed before the exchange: the staged folder holds the newest recorded base.
    ready = configs.with_name(".configs.tcw-ready")
    configs.rename(ready)
    (ready / ".tcw-new").touch()
    monkeypatch.setattr(builtin_configs, "installed_torchtune", lambda: None)
    generated = generate(path)
    assert generated.plan.base.recorded and snapshot(configs) == recorded
    assert runs_of(path)[0]["batch_size"] == 3


def test_a_terminal_that_cannot_show_the_path_gets_it_escaped(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(experiment_text(), folder="études")
    record_base(path)  # a new process: the base as a commit records it, torchtune or not
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    result = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "generate", "études"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="ascii",
        errors="replace",
    )
    assert result.returncode == 0, result.stderr
    assert "* Generated 1 config in \\xe9tudes/configs/" in result.stdout
    assert (path.parent / "configs" / "run_000.yaml").exists()


@pytest.mark.parametrize("spelling", ["yes", "no", "on", "False"])
def test_a_quoted_boolean_word_over_a_boolean_is_kept_and_warned_about(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult], spelling: str
) -> None:
    # `tune run` takes shuffle: "yes" (any non-empty string is true), so it is not refused; but
    # "no" would shuffle too, which the warning says, at the line.
    path = write_experiment(experiment_text(controls=f'  shuffle: "{spelling}"\n'))
    result = cli("generate", path)
    assert result.code == 0
    (run,) = runs_of(path)
    assert run["shuffle"] == spelling
    (warning,) = [line for line in result.err.splitlines() if line.startswith("warning:")]
    assert warning.startswith(f"warning: {display_path(path)}:7:3: ")
    assert f"shuffle is the string '{spelling}' where the base has a boolean" in warning


def test_a_string_that_is_no_boolean_word_over_a_boolean_is_still_refused(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(experiment_text(controls='  shuffle: "sometimes"\n'))
    with pytest.raises(ConfigWriterError, match="shuffle is a boolean in the base"):
        generate(path)
