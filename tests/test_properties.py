"""Properties over many generated experiments (hypothesis), on the real recipe config."""

from __future__ import annotations

import contextlib
import copy
import io
import itertools
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from torchtune_config_writer import generate
from torchtune_config_writer.cli import main
from torchtune_config_writer.generation import builtin_configs, templates
from torchtune_config_writer.generation.output_dirs import location_problem
from torchtune_config_writer.output.checking import check
from torchtune_config_writer.yaml_write import dump_inline, dump_yaml

from .conftest import RECIPE, snapshot

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).filter(
    # A broken interpolation is validation's business; placeholders are tested on their own.
    lambda value: "${" not in value and templates.parse(value) == (value,)
)
numbers = st.floats(allow_nan=False, width=64) | st.integers(-(2**40), 2**40)
anything = st.recursive(
    st.none() | st.booleans() | numbers | text,
    lambda inner: (
        # A key starting with ~ deletes a key of the base (tested on its own).
        st.lists(inner, max_size=3)
        | st.dictionaries(text.filter(lambda key: key and key[0] != "~"), inner, max_size=3)
    ),
    max_leaves=8,
)
# Parameters of llama3_2/1B_lora_single_device, each with values of a type that fits it.
PARAMETERS: dict[str, st.SearchStrategy[Any]] = {
    "batch_size": st.integers(1, 64),
    "epochs": st.integers(1, 10),
    "learning_rate": numbers,
    "lora_rank": st.integers(1, 512),
    "optimizer.weight_decay": numbers,
    "shuffle": st.booleans(),
    "dataset.packed": st.booleans(),
    "seed": st.none() | st.integers(0, 2**31),
    # A folder the tool refuses on purpose (~, $NAME, a name past NAME_MAX) is tested on its own.
    "output_dir": text.filter(lambda value: bool(value) and location_problem(value) is None),
    "metric_logger": st.fixed_dictionaries({"project": text}),
    "+note": anything,
}


# Where each parameter goes in the config, written out here rather than asked of the tool.
KEYS = {
    "batch_size": "batch_size",
    "epochs": "epochs",
    "learning_rate": "optimizer.lr",
    "lora_rank": "model.lora_rank",
    "optimizer.weight_decay": "optimizer.weight_decay",
    "shuffle": "shuffle",
    "dataset.packed": "dataset.packed",
    "seed": "seed",
    "output_dir": "output_dir",
    "metric_logger": "metric_logger",
    "+note": "note",
}


def expected_runs(document: dict[str, Any]) -> list[Any]:
    """Each run's config as OmegaConf makes it from the recipe config: its own ``update`` (the
    merge torchtune's command line overrides use) of the controls, then of one combination
    of the variables, the last varying fastest; runs that would share the ``output_dir`` (the
    folder every output key of this recipe config follows) get their run id appended."""
    torchtune = builtin_configs.installed_torchtune()
    assert torchtune is not None
    found = torchtune.find(RECIPE)
    assert found is not None
    base = OmegaConf.load(found.path)
    for name, value in document.get("controls", {}).items():
        OmegaConf.update(base, KEYS[name], value, merge=True)
    variables = document.get("variables", {})
    configs = []
    for values in itertools.product(*variables.values()):
        config = copy.deepcopy(base)
        for name, value in zip(variables, values, strict=True):
            OmegaConf.update(config, KEYS[name], value, merge=True)
        configs.append(config)
    folders = [str(config.output_dir).rstrip("/") for config in configs]
    if len(set(folders)) < len(folders):  # runs would share it: each gets its own
        for index, config in enumerate(configs):
            config.output_dir = f"{folders[index]}/run_{index:03d}"
    return [OmegaConf.to_container(config, resolve=False) for config in configs]


@st.composite
def experiments(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(PARAMETERS)), unique=True, max_size=6))
    variables, controls = {}, {}
    runs = 1
    for name in names:
        if runs < 8 and draw(st.booleans()):
            values = draw(
                st.lists(
                    PARAMETERS[name],
                    min_size=1,
                    max_size=3,
                    unique_by=lambda value: dump_inline(value),
                )
            )
            runs *= len(values)
            variables[name] = values
        else:
            controls[name] = draw(PARAMETERS[name])
    document: dict[str, Any] = {
        "experiment": {"name": "prop", "framework": "torchtune"},
        "framework_config": {"base_config": RECIPE},
    }
    if variables:
        document["variables"] = variables
    if controls:
        document["controls"] = controls
    return document


def same(a: Any, b: Any) -> bool:
    """Equal, with the types of numbers compared too (1 and 1.0 are different in a config)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isinf(a):
        return a == b
    return type(a) is type(b) and a == b


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(experiments())
@pytest.mark.slow
def test_every_run_reads_back_as_omegaconf_merges_it_and_generating_is_stable(
    document: dict[str, Any],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "exp"
        folder.mkdir()
        (folder / "experiment.yaml").write_text(dump_yaml(document), encoding="utf-8")
        expected = expected_runs(document)
        files = generate(folder).run_files
        assert len(files) == len(expected)
        for path, config in zip(files, expected, strict=True):
            read = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
            assert same(read, config), path.name
        first = snapshot(folder)
        generate(folder)
        assert snapshot(folder) == first
        assert check([folder]).exit_code == 0


VALID = dump_yaml(
    {
        "experiment": {"name": "fuzz", "framework": "torchtune"},
        "framework_config": {"base_config": RECIPE},
        "variables": {"lora_rank": [8, 16]},
        "controls": {"learning_rate": 0.0003, "dataset": {"packed": True}},
    }
)
NOISE = st.sampled_from(list(":-[]{}\n #&*!|>'\"%@`,?.+~=\\\t") + ["lora_rank", "0", "null", "${"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = VALID
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(text)))
        cut = draw(st.integers(0, 6))
        text = text[:at] + draw(NOISE) + text[at + cut :]
    return text


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated() | st.text(max_size=200))
@pytest.mark.slow
def test_any_input_generates_or_gives_error_lines_only(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "exp"
        folder.mkdir()
        (folder / "experiment.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["generate", str(folder)])
        assert code in (0, 2)
        if code == 2:
            lines = err.getvalue().splitlines()
            assert lines and all(line.startswith("error: ") for line in lines), err.getvalue()
            assert len(set(lines)) == len(lines), err.getvalue()  # no mistake said twice
            assert not (folder / "configs").exists()
