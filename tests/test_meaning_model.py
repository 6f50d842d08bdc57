"""A property test: every run's config is what an independent model of the experiment says.

Random experiments over a small base use every form a value can take (a plain value, a mapping
that merges, ``!replace``, ``~key``, ``+key``, placeholders) in every place (controls, variables,
linked groups, conditions), with exclusions. The model below builds each run's config from the
experiment's own words, without the tool's placement, merge or sweep code, and the generated
files, read as torchtune reads them, must equal it key by key.
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from torchtune_config_writer import generate

from .conftest import runs_of

BASE: dict[str, Any] = {
    "output_dir": "/out/base",
    "seed": 0,
    "optimizer": {"_component_": "torch.optim.AdamW", "lr": 0.001, "weight_decay": 0.01},
    "scheduler": {"_component_": "s.cosine", "num_warmup_steps": 10, "num_cycles": 0.5},
    "model": {"_component_": "m.lora", "lora_rank": 8, "lora_alpha": 16.0},
    "flags": {"packed": False, "shuffle": True},
}
SWAPS = [
    {"_component_": "torch.optim.SGD", "lr": 0.1},
    {"_component_": "torch.optim.Adam", "lr": 0.01, "betas": [0.9, 0.99]},
]


class Replace(dict[str, Any]):
    """A mapping the experiment tags !replace (the model's own marker)."""


DELETE = object()


def yaml_of(value: Any) -> str:
    """A value as flow YAML (JSON is YAML); a Replace with its tag."""
    if isinstance(value, Replace):
        return "!replace " + json.dumps(dict(value))
    return json.dumps(value)


# --- the model: what the experiment says, from its words ----------------------------------------


def merged(old: Any, new: Any) -> Any:
    """``new`` over ``old``: mappings merge; a Replace, a scalar or a list replaces."""
    if isinstance(new, Replace) or not (isinstance(old, dict) and isinstance(new, dict)):
        return _clean(new)
    out = dict(old)
    for key, value in new.items():
        if key.startswith("~"):
            out.pop(key[1:], None)
        elif key.startswith("+"):
            out[key[1:]] = _clean(value)
        else:
            out[key] = merged(out[key], value) if key in out else _clean(value)
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k.lstrip("+"): _clean(v) for k, v in value.items()}
    return value


def set_at(config: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(config)
    *parents, last = dotted.lstrip("+~").split(".")
    node = config
    for part in parents:
        node = node.setdefault(part, {})
    if value is DELETE:
        del node[last]
    else:
        node[last] = merged(node.get(last), value)
    return config


def fill(value: Any, texts: dict[str, str]) -> Any:
    if isinstance(value, str):
        for name, text in texts.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, Replace):
        return Replace({k: fill(v, texts) for k, v in value.items()})
    if isinstance(value, dict):
        return {k: fill(v, texts) for k, v in value.items()}
    return value


def expected_runs(study: dict[str, Any]) -> list[dict[str, Any]]:
    axes = study["axes"]  # each axis: list of (name, [values]) moving together
    runs = []
    positions = itertools.product(*(range(len(axis[0][1])) for axis in axes))
    kept = [at for at in positions if tuple(at) not in study["excluded"]]
    for number, at in enumerate(kept):
        run_id = f"run_{number:03d}"
        chosen = {
            name: values[i] for axis, i in zip(axes, at, strict=True) for name, values in axis
        }
        texts = {"run_id": run_id, **{k.lstrip("+"): str(v) for k, v in chosen.items()}}
        config = copy.deepcopy(BASE)
        for key, value in study["controls"]:
            config = set_at(config, key, DELETE if key.startswith("~") else fill(value, texts))
        for name, value in chosen.items():
            config = set_at(config, name, fill(value, texts))
        for (variable, index), (key, value) in study["conditions"]:
            if chosen[variable] == dict(sum((axis for axis in axes), []))[variable][index]:
                config = set_at(config, key, fill(value, texts))
        runs.append(config)
    return runs


# --- random studies -------------------------------------------------------------------------------

CONTROLS = [
    ("optimizer", Replace(SWAPS[0])),
    ("scheduler", {"~num_cycles": None}),
    ("~seed", None),
    ("+extra", {"+depth": 1, "name": "x"}),
    ("flags", {"packed": True, "+new_flag": True}),
    ("model.lora_alpha", 32.0),
]
VARIABLES = [
    ("model.lora_rank", [4, 16]),
    ("optimizer", [Replace(SWAPS[1]), {"lr": 0.5}]),
    ("scheduler", [{"~num_warmup_steps": None}, {"num_warmup_steps": 3}]),
    ("+tag", ["a", "b", "c"]),
    ("flags", [{"shuffle": False}, {"+other": 2}]),
]


@st.composite
def studies(draw: st.DrawFn) -> dict[str, Any]:
    variables = draw(
        st.lists(st.sampled_from(VARIABLES), min_size=1, max_size=3, unique_by=lambda v: v[0])
    )
    linked = len(variables) >= 2 and draw(st.booleans())
    axes: list[list[tuple[str, list[Any]]]] = []
    for name, values in variables:
        if linked and axes and len(axes[0][0][1]) == len(values) and len(axes[0]) == 1:
            axes[0].append((name, values))
        else:
            axes.append([(name, values)])
    taken = {name.lstrip("+").split(".")[0] for name, _ in variables}
    picked = draw(st.lists(st.sampled_from(CONTROLS), max_size=4, unique_by=lambda c: c[0]))
    controls = [c for c in picked if c[0].lstrip("~+").split(".")[0] not in taken]
    controls.append(("output_dir", "/out/" + draw(st.sampled_from(["{run_id}", "r{run_id}"]))))
    grid = list(itertools.product(*(range(len(axis[0][1])) for axis in axes)))
    excluded = set(
        draw(st.lists(st.sampled_from(grid), max_size=max(len(grid) - 1, 0), unique=True))
    )
    first = axes[0][0]
    conditions = []
    if draw(st.booleans()) and "seed" not in taken and ("~seed", None) not in controls:
        index = draw(st.integers(0, len(first[1]) - 1))
        kept = [at for at in grid if at not in excluded and at[0] == index]
        if kept:
            conditions.append(((first[0], index), ("seed", 7)))
    return {"axes": axes, "controls": controls, "excluded": excluded, "conditions": conditions}


def experiment_text(study: dict[str, Any]) -> str:
    lines = [
        "experiment:\n  name: model\n  framework: torchtune\n  max_runs: 100",
        "framework_config:\n  base_config_file: base.yaml\n  recipe: lora_finetune_single_device",
        "variables:",
    ]
    for index, axis in enumerate(study["axes"]):
        indent = "  "
        if len(axis) > 1:
            lines.append(f"  group{index}:")
            indent = "    "
        for name, values in axis:
            lines.append(f"{indent}{name}: [{', '.join(yaml_of(v) for v in values)}]")
    lines.append("controls:")
    lines += [f"  {key}:" if key.startswith("~") else f"  {key}: {yaml_of(value)}"
              for key, value in study["controls"]]  # fmt: skip
    names = [name for axis in study["axes"] for name, _ in axis]
    values = dict(sum(study["axes"], []))
    if study["excluded"]:
        lines.append("exclude:")
        for at in sorted(study["excluded"]):
            rule = {}
            for axis, i in zip(study["axes"], at, strict=True):
                name, axis_values = axis[0]
                rule[name.lstrip("+")] = axis_values[i]
            lines.append(f"  - {json.dumps(_plain(rule))}")
    if study["conditions"]:
        lines.append("conditions:")
        for (variable, index), (key, value) in study["conditions"]:
            when = {variable.lstrip("+"): _plain(values[variable][index])}
            lines.append(f"  - when: {json.dumps(when)}\n    set: {{{key}: {json.dumps(value)}}}")
    assert names
    return "\n".join(lines) + "\n"


def _plain(value: Any) -> Any:
    return dict(value) if isinstance(value, Replace) else value


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(study=studies())
@pytest.mark.slow
def test_every_run_is_what_the_experiment_says(tmp_path: Path, study: dict[str, Any]) -> None:
    folder = tmp_path / "model"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    (folder / "base.yaml").write_text(json.dumps(BASE))
    (folder / "experiment.yaml").write_text(experiment_text(study))
    generate(folder)
    assert runs_of(folder / "experiment.yaml") == expected_runs(study)
