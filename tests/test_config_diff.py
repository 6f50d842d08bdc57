"""config_diff: the one comparison of two configs, which `show` and `diff` both report."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer.config_diff import MISSING, Difference, differences, flatten, same

from .conftest import CliResult, experiment_text

NAN = float("nan")


def changes(old: Any, new: Any) -> list[tuple[tuple[str | int, ...], Any, Any]]:
    return [(d.keypath, d.old, d.new) for d in differences(old, new)]


def test_one_two_and_true_are_three_values_and_nan_is_itself() -> None:
    assert not same(1, 1.0) and not same(1, True) and not same(1.0, True)
    assert same(NAN, NAN) and not same(NAN, 1.0)
    assert not same([1, 2], [1.0, 2]) and not same({"a": 1}, {"a": True})
    assert same([NAN], [NAN]) and same({"a": {"b": NAN}}, {"a": {"b": NAN}})
    assert not same(None, MISSING) and same(MISSING, MISSING)


def test_a_mappings_key_order_does_not_count_a_lists_order_does() -> None:
    assert same({"a": 1, "b": 2}, {"b": 2, "a": 1})
    assert not same([1, 2], [2, 1])
    assert changes({"m": {"a": 1, "b": 2}}, {"m": {"b": 2, "a": 1}}) == []


def test_nan_set_again_is_no_change() -> None:
    # diff used to report it: NaN != NaN.
    assert changes({"lr": NAN, "l": [NAN]}, {"lr": NAN, "l": [NAN]}) == []


def test_an_int_made_a_float_is_a_change_inside_a_list_too() -> None:
    # diff used to miss it inside a list: [1, 2] == [1.0, 2] in Python.
    assert changes({"lr": 1}, {"lr": 1.0}) == [(("lr",), 1, 1.0)]
    assert changes({"l": [1, 2]}, {"l": [1.0, 2]}) == [(("l",), [1, 2], [1.0, 2])]
    assert changes({"l": [True]}, {"l": [1]}) == [(("l",), [True], [1])]


def test_a_list_is_one_value() -> None:
    assert changes({"m": ["q", "v"]}, {"m": ["q", "k", "v"]}) == [
        (("m",), ["q", "v"], ["q", "k", "v"])
    ]
    # A list of lists or of mappings is one value too unless merged into (next test).
    assert changes({"l": [[1], [2]]}, {"l": [[1], [3]]}) == [(("l",), [[1], [2]], [[1], [3]])]
    assert list(flatten({"l": [{"a": 1}], "m": []})) == [(("l",), [{"a": 1}]), (("m",), [])]


def test_a_list_merged_into_is_compared_item_by_item() -> None:
    old = {"dataset": [{"source": "a", "packed": False}, {"source": "b"}]}
    new = {"dataset": [{"source": "a", "packed": True}, {"source": "b", "split": "train"}]}
    assert changes(old, new) == [
        (("dataset", 0, "packed"), False, True),
        (("dataset", 1, "split"), MISSING, "train"),
    ]


def test_a_list_of_mappings_replaced_is_one_value() -> None:
    # An item lost a key, or the length changed: the list was replaced, not merged into.
    old = {"dataset": [{"source": "a", "packed": False}, {"source": "b"}]}
    lost = {"dataset": [{"source": "a"}, {"source": "b"}]}
    shorter = {"dataset": [{"source": "c"}]}
    assert changes(old, lost) == [(("dataset",), old["dataset"], lost["dataset"])]
    assert changes(old, shorter) == [(("dataset",), old["dataset"], shorter["dataset"])]


def test_a_mapping_against_a_scalar_or_a_list_is_one_change_of_the_whole_value() -> None:
    # diff used to say `model` was gone and `model.a` new.
    assert changes({"model": 5}, {"model": {"a": 1}}) == [(("model",), 5, {"a": 1})]
    assert changes({"model": {"a": 1}}, {"model": 5}) == [(("model",), {"a": 1}, 5)]
    # diff used to fail here, sorting ("d", 0, "x") against ("d", "y").
    assert changes({"d": [{"x": 1}]}, {"d": {"y": 2}}) == [(("d",), [{"x": 1}], {"y": 2})]


def test_a_key_only_one_side_has_is_missing_on_the_other() -> None:
    assert changes({}, {"seed": 7}) == [(("seed",), MISSING, 7)]
    assert changes({"seed": 7}, {}) == [(("seed",), 7, MISSING)]
    assert changes({"seed": None}, {}) == [(("seed",), None, MISSING)]  # null is a value


def test_a_mapping_only_one_side_has_is_its_leaves_and_an_empty_one_is_a_value() -> None:
    new = {"extra": {"nested": {"depth": 2}, "tag": "x"}, "empty": {}}
    assert changes({}, new) == [
        (("extra", "nested", "depth"), MISSING, 2),
        (("extra", "tag"), MISSING, "x"),
        (("empty",), MISSING, {}),
    ]
    assert changes(new, {}) == [
        (("extra", "nested", "depth"), 2, MISSING),
        (("extra", "tag"), "x", MISSING),
        (("empty",), {}, MISSING),
    ]


def test_differences_come_in_the_new_configs_order_then_the_keys_it_lost() -> None:
    old = {"a": 1, "gone": 0, "b": 1}
    new = {"b": 2, "a": 2, "added": 1}
    assert [d.keypath for d in differences(old, new)] == [("b",), ("a",), ("added",), ("gone",)]


def test_a_shared_subtree_is_not_walked() -> None:
    shared = {"deep": {"x": NAN}}
    assert changes({"s": shared, "n": 1}, {"s": shared, "n": 2}) == [(("n",), 1, 2)]


def test_a_difference_is_a_plain_value() -> None:
    difference = Difference(("a",), 1, MISSING)
    assert difference == Difference(("a",), 1, MISSING)
    assert repr(MISSING) == "MISSING"


# `show` (a run against its base) and `diff` (a run at a commit against the working tree) on one
# pair of configs: the commit's run is the base config itself, the working tree's has controls.
AGREEMENT_BASE = """\
output_dir: /tmp/out
model: {lora_rank: 64, lora_alpha: 128}
checkpoint_files: [model.safetensors]
betas: [1, 2]
loss_scale: .nan
datasets:
- {source: a, packed: false}
- {source: b, packed: false}
epochs: 1
"""
AGREEMENT_CONTROLS = """
model.lora_alpha: 128.0
betas: [1.0, 2]
loss_scale: .nan
datasets.1.packed: true
checkpoint_files: [model.safetensors, extra.safetensors]
+extra: {nested: {depth: 2}, tag: x}
+empty: {}
epochs: 3
"""


def test_show_and_diff_agree_on_one_pair_of_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> None:
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "base.yaml").write_text(AGREEMENT_BASE)
    experiment = folder / "experiment.yaml"
    experiment.write_text(experiment_text(base="base_config_file: base.yaml"))
    monkeypatch.chdir(tmp_path)
    assert cli("generate", experiment).code == 0
    assert cli("show", experiment).out.endswith("The run is the base config, unchanged.\n")
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "base"]):
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], check=True, cwd=tmp_path
        )
    experiment.write_text(
        experiment_text(controls=AGREEMENT_CONTROLS, base="base_config_file: base.yaml")
    )
    assert cli("generate", experiment).code == 0
    shown = json.loads(cli("show", "--format", "json", experiment).out)
    diffed = json.loads(cli("diff", "--base", "main", "--format", "json").out)
    [study] = diffed["folders"]
    fields = ("key", "path", "before", "after", "absent_before", "absent_after")
    by_show = [{name: change[name] for name in fields} for change in shown["shared"]]
    by_diff = [{name: change[name] for name in fields} for change in study["changes"]]
    assert sorted(by_show, key=str) == sorted(by_diff, key=str)
    assert [change["key"] for change in shown["shared"]] == [
        "model.lora_alpha",
        "checkpoint_files",
        "betas",
        "datasets.1.packed",
        "epochs",
        "extra.nested.depth",
        "extra.tag",
        "empty",
    ]
    assert shown["columns"] == []
    assert {tuple(change["runs"]) for change in study["changes"]} == {("run_000",)}
