"""The YAML layer reads as torchtune (OmegaConf) reads and writes what OmegaConf reads back."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from torchtune_config_writer import yaml_read, yaml_write
from torchtune_config_writer.errors import ConfigWriterError
from torchtune_config_writer.generation.builtin_configs import installed_torchtune


def recipe_files() -> list[Path]:
    """Every built-in config file of the installed torchtune."""
    torchtune = installed_torchtune()
    assert torchtune is not None
    return sorted(config.path for config in torchtune.configs if config.path.exists())


def omegaconf_reads(text: str) -> Any:
    return OmegaConf.to_container(OmegaConf.load(io.StringIO(text)), resolve=False)


@pytest.mark.needs_torchtune
@pytest.mark.slow
def test_every_recipe_config_is_read_exactly_as_omegaconf_reads_it() -> None:
    files = recipe_files()
    assert len(files) > 100
    for path in files:
        ours = yaml_read.read_yaml_file(path).data
        assert ours == OmegaConf.to_container(OmegaConf.load(path), resolve=False), path


@pytest.mark.needs_torchtune
@pytest.mark.slow
def test_every_recipe_config_survives_a_dump_and_omegaconf_read() -> None:
    for path in recipe_files():
        data = yaml_read.read_yaml_file(path).data
        assert omegaconf_reads(yaml_write.dump_yaml(data)) == data, path


SCALARS = [
    "3e-4",
    "1e5",
    "-2E+3",
    "1.5",
    ".5",
    "1_000",
    "1_0.5",
    "0x1F",
    "0o17",
    "017",
    "1:30",
    "yes",
    "No",
    "on",
    "OFF",
    "true",
    "True",
    "null",
    "~",
    "Null",
    "2025-11-12",
    "2025-11-12T10:00:00",
    ".inf",
    "-.Inf",
    ".nan",
    "${output_dir}/logs",
    "${oc.env:HOME}",
    "???",
    "",
    "plain text",
]


@pytest.mark.parametrize("scalar", SCALARS)
def test_scalars_are_typed_as_omegaconf_types_them(scalar: str) -> None:
    text = f"k: {scalar}\n"
    ours = yaml_read.parse_yaml(text.encode(), Path("x.yaml")).data["k"]
    theirs = omegaconf_reads(text)["k"]
    if isinstance(theirs, float) and math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert (type(ours), ours) == (type(theirs), theirs)


@pytest.mark.parametrize("scalar", SCALARS)
def test_a_string_that_looks_like_another_type_is_written_so_it_stays_a_string(scalar: str) -> None:
    text = yaml_write.dump_yaml({"k": scalar})
    assert omegaconf_reads(text) == {"k": scalar}


def test_exponent_floats_are_read_as_floats_where_plain_yaml_reads_strings() -> None:
    assert yaml.safe_load("lr: 3e-4") == {"lr": "3e-4"}
    assert yaml_read.parse_yaml(b"lr: 3e-4", Path("x.yaml")).data == {"lr": 0.0003}


def test_duplicate_keys_are_errors_with_the_line_of_the_second() -> None:
    with pytest.raises(ConfigWriterError) as info:
        yaml_read.parse_yaml(b"a:\n  b: 1\n  c: 2\n  b: 3\n", Path("x.yaml"))
    assert (info.value.line, info.value.column) == (4, 3)
    assert "duplicate key 'b' (first at line 2)" in info.value.message


def test_merge_keys_may_be_overridden_without_a_duplicate_error() -> None:
    doc = yaml_read.parse_yaml(b"base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  y: 3\n", Path("x.yaml"))
    assert doc.data["run"] == {"x": 1, "y": 3}


def test_alias_bombs_are_refused() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    with pytest.raises(ConfigWriterError, match="alias bomb"):
        yaml_read.parse_yaml("\n".join(lines).encode(), Path("x.yaml"))


def test_positions_point_at_keys_and_list_items() -> None:
    doc = yaml_read.parse_yaml(b"a:\n  b: 1\n  c: [x, y]\n", Path("x.yaml"))
    assert doc.position(("a", "b")) == (2, 3)
    assert doc.position(("a", "c", 1)) == (3, 10)
    assert doc.position(("a", "missing")) == (1, 1)


def test_inline_values_stay_on_one_line() -> None:
    assert yaml_write.dump_inline({"a": [1, {"b": "x\ny"}]}) == '{a: [1, {b: "x\\ny"}]}'
    assert yaml_write.dump_inline(3e-4) == "0.0003"


@pytest.mark.needs_torchtune
@pytest.mark.slow
def test_python_and_libyaml_emitters_write_the_same_bytes() -> None:
    # Output must not depend on whether PyYAML was built with libyaml.
    class PureDumper(yaml.SafeDumper):
        pass

    PureDumper.yaml_implicit_resolvers = yaml_write._Dumper.yaml_implicit_resolvers
    PureDumper.yaml_representers = yaml_write._Dumper.yaml_representers
    for path in recipe_files():
        data = yaml_read.read_yaml_file(path).data
        pure = yaml.dump(
            data,
            Dumper=PureDumper,
            sort_keys=False,
            allow_unicode=True,
            width=yaml_write._WIDTH,
            default_flow_style=False,
        )
        assert pure == yaml_write.dump_yaml(data), path


keys = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    # "${" alone is a broken interpolation that OmegaConf refuses however it is written.
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).filter(
        lambda text: "${" not in text
    )
    | st.sampled_from(SCALARS)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, min_size=1, max_size=5))
@pytest.mark.slow
def test_omegaconf_reads_back_exactly_what_was_written(config: dict[str, Any]) -> None:
    assert omegaconf_reads(yaml_write.dump_yaml(config)) == config


@pytest.mark.needs_torchtune
def test_rendering_shared_blocks_once_gives_the_same_bytes_as_one_dump() -> None:
    from torchtune_config_writer.generation.merge import merge_at
    from torchtune_config_writer.generation.render import ConfigRenderer

    for path in recipe_files():
        base = yaml_read.read_yaml_file(path).data
        renderer = ConfigRenderer(base)
        first_key = next(iter(base))
        for config in (base, merge_at(base, (first_key,), None), merge_at(base, ("+new",), [1])):
            assert renderer.render(config) == yaml_write.dump_yaml(config), path
    assert ConfigRenderer({}).render({}) == yaml_write.dump_yaml({})


# What the line-by-line writer must get exactly as PyYAML does: strings PyYAML quotes, folds
# onto lines or writes as blocks, keys it writes as complex keys, tags, and -0.0 beside 0.0.
tricky_strings = st.sampled_from(
    [
        *SCALARS,
        "a\nb",
        "a\n\nb\n",
        " leading",
        "trailing ",
        "- item",
        "#comment",
        "a: b",
        "a, b",
        "[x]",
        "{x}",
        "!tag",
        "&anchor",
        "*alias",
        "|",
        ">",
        "'",
        '"',
        "%",
        "@",
        "`",
        "---",
        "...",
        "<<",
        "=",
        "x" * 130,
        "café",
        "\u2028",
        "\t",
        "/scratch/run_000",
        "a b",
        "a  b",
        "a -b",
        "a - b",
        "tune run lora_finetune_single_device --config configs/run_000.yaml",
        "1 2",
        "true false",
        "-0.0",
        "1_000",
        "0x1F",
        "0o17",
        "1:20",
        "y",
        "n",
    ]
)
tree_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.sampled_from([0.0, -0.0, 1e-05, 3e-4, 1e20, float("inf")])
    | st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
    | tricky_strings
)
tree_keys = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=6) | (
    tricky_strings
)
trees = st.recursive(
    tree_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(tree_keys | st.integers(), inner, max_size=4)
        | st.dictionaries(tree_keys, inner, max_size=3).map(yaml_write.FlowMapping)
        | st.dictionaries(tree_keys, inner, max_size=3).map(yaml_read.Replace)
    ),
    max_leaves=16,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(tree_keys, trees, max_size=6))
@pytest.mark.slow
def test_the_line_by_line_writer_writes_what_pyyaml_writes(config: dict[str, Any]) -> None:
    assert yaml_write.dump_yaml(config) == yaml_write._pyyaml_dump(config)


@settings(max_examples=500, deadline=None)
@given(trees)
@pytest.mark.slow
def test_inline_values_are_what_pyyaml_writes_however_often_they_repeat(value: Any) -> None:
    first = yaml_write.dump_inline(value)
    assert first == yaml_write._dump_inline(value) == yaml_write.dump_inline(value)


def test_values_equal_in_python_keep_their_own_yaml() -> None:
    # 1 == 1.0 == True and 0.0 == -0.0: the writer's caches must not give one the other's text.
    for values in ([1, 1.0, True], [0.0, -0.0], [0, False, None]):
        texts = [yaml_write.dump_yaml({"k": v}) for v in values]
        assert texts == [yaml_write._pyyaml_dump({"k": v}) for v in values]
        assert len(set(texts)) == len(values)


@pytest.mark.needs_torchtune
def test_every_recipe_config_is_written_as_pyyaml_writes_it() -> None:
    for path in recipe_files():
        data = yaml_read.read_yaml_file(path).data
        assert yaml_write.dump_yaml(data) == yaml_write._pyyaml_dump(data), path


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(tree_keys, trees, max_size=4), tree_scalars)
@pytest.mark.slow
def test_a_run_mapping_entry_is_the_sequence_item_pyyaml_writes(
    params: dict[str, Any], output_dir: Any
) -> None:
    from torchtune_config_writer.generation.render import render_mapping_entry

    named = {name.removeprefix("+"): yaml_read.plain(value) for name, value in params.items()}
    entry: dict[str, Any] = {"id": "run_000", "params": yaml_write.FlowMapping(named)}
    if isinstance(output_dir, str):
        entry["output_dir"] = output_dir
    entry["command"] = "tune run lora_finetune_single_device --config configs/run_000.yaml"
    written = render_mapping_entry("run_000", params, output_dir, entry["command"])
    assert written == yaml_write._pyyaml_dump([entry])
