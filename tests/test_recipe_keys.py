"""Top-level config keys no recipe code reads, found from the recipe's source without torch."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from torchtune_config_writer.generation.builtin_configs import installed_torchtune
from torchtune_config_writer.validation.recipe_keys import (
    Passed,
    arguments_passed_by_recipe,
    keys_read_by_recipe,
    recipe_file_named,
    unread_top_level_keys,
)
from torchtune_config_writer.yaml_read import read_yaml_file

from .conftest import python_without_torch

RECIPE = "llama3_2/1B_lora_single_device"

# Keys torchtune 0.6.1's own configs set that their recipe never reads: real findings, each
# checked against the recipe source and the torchtune helpers it passes the config to.
BUILTIN_UNREAD_KEYS = {
    # lora_dpo_distributed never reads `compile` (only a comment mentions it), so True is ignored.
    ("llama2/7B_lora_dpo", "compile"),
    ("llama3_1/8B_lora_dpo", "compile"),
    # A leftover `fsdp: {cpu_offload: False}` block; lora_finetune_distributed reads the flat
    # `fsdp_cpu_offload` instead, and nothing in torchtune reads a key named `fsdp`.
    ("llama2/7B_qlora", "fsdp"),
    ("llama2/70B_qlora", "fsdp"),
    ("llama3_1/405B_qlora", "fsdp"),
    # eleuther_eval loads the checkpointer's weights and never asks whether to resume.
    ("code_llama2/evaluation", "resume_from_checkpoint"),
    ("llama3_2/evaluation", "resume_from_checkpoint"),
    ("mistral/evaluation", "resume_from_checkpoint"),
    ("phi3/evaluation", "resume_from_checkpoint"),
    ("phi4/evaluation", "resume_from_checkpoint"),
    # The knowledge-distillation recipes read enable_activation_checkpointing but not offloading.
    ("llama3_2/8B_to_1B_KD_lora_distributed", "enable_activation_offloading"),
    ("llama3_2/8B_to_1B_KD_lora_single_device", "enable_activation_offloading"),
    ("qwen2/1.5_to_0.5B_KD_lora_distributed", "enable_activation_offloading"),
    ("qwen2/1.5_to_0.5B_KD_lora_single_device", "enable_activation_offloading"),
}

# Where recipes hand over the whole config; recipe_keys knows what each of these reads.
KNOWN_RECEIVERS = {"config.log_config", "self._metric_logger.log_config", "CheckpointClient"}


def recipe_file_for(config_name: str) -> Path | None:
    """The recipe file ``tune run`` runs for a built-in config (torchtune's registry)."""
    torchtune = installed_torchtune()
    assert torchtune is not None
    config = torchtune.find(config_name)
    return config.recipe_file if config else None


def builtin_config(name: str) -> dict[str, object]:
    torchtune = installed_torchtune()
    assert torchtune is not None
    config = torchtune.find(name)
    assert config is not None
    data: dict[str, object] = read_yaml_file(config.path).data
    return data


@pytest.mark.needs_torchtune
@pytest.mark.slow
def test_builtin_configs_set_only_keys_their_recipe_reads_apart_from_known_leftovers() -> None:
    torchtune = installed_torchtune()
    assert torchtune is not None
    found = set()
    for config in torchtune.configs:
        if not config.path.exists():  # the registry lists llama2/7B_full_early_exit, not shipped
            continue
        recipe_file = recipe_file_for(config.name)
        assert recipe_file is not None and recipe_file.is_file(), config.name
        data = read_yaml_file(config.path).data
        found |= {(config.name, key) for key in unread_top_level_keys(data, recipe_file)}
    assert found == BUILTIN_UNREAD_KEYS


@pytest.mark.needs_torchtune
def test_misspelt_key_is_reported() -> None:
    config = builtin_config(RECIPE) | {"epoch": 3}
    recipe_file = recipe_file_for(RECIPE)
    assert recipe_file is not None
    assert unread_top_level_keys(config, recipe_file) == ["epoch"]


@pytest.mark.needs_torchtune
def test_keys_are_reported_in_config_order() -> None:
    config = {"zz_typo": 1, **builtin_config(RECIPE), "aa_typo": 2}
    recipe_file = recipe_file_for(RECIPE)
    assert recipe_file is not None
    assert unread_top_level_keys(config, recipe_file) == ["zz_typo", "aa_typo"]


@pytest.mark.needs_torchtune
def test_key_an_interpolation_refers_to_counts_as_read() -> None:
    recipe_file = recipe_file_for(RECIPE)
    assert recipe_file is not None
    config = builtin_config(RECIPE) | {
        "run_root": "/tmp/runs",
        "lora": {"rank": 8},
        "home": "unused",
        "output_dir": "${run_root}/out",
        "model": {"lora_rank": "${lora.rank}", "cache": "${oc.env:home}"},
    }
    # ${oc.env:home} reads an environment variable, not the config's `home`.
    assert unread_top_level_keys(config, recipe_file) == ["home"]


def test_every_way_a_recipe_reads_its_config_is_seen(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.py"
    recipe.write_text(
        textwrap.dedent("""
            from torchtune import config, training
            from torchtune.training import CheckpointClient, PROFILER_KEY
            from omegaconf import OmegaConf

            LOCAL_KEY = "from_local_constant"

            class Recipe:
                def __init__(self, cfg):
                    self._cfg = cfg
                    self.epochs = cfg.epochs
                    self.seed = cfg.get("seed", 0)
                    self.client = CheckpointClient(cfg)

                def setup(self):
                    cfg = self._cfg
                    self._profiler = cfg.get(PROFILER_KEY, None)
                    self._local = self._cfg.get(LOCAL_KEY)
                    self._metric_logger.log_config(cfg)
                    self._dataset = cfg["dataset"]
                    if "compile" in cfg and getattr(cfg, "shuffle"):
                        OmegaConf.select(cfg, "model.lora_rank")

            def recipe_main(cfg):
                config.log_config(recipe_name="Recipe", cfg=cfg)
                other = {"ignored": 1}
                other.get("not_a_config_key")
        """),
        encoding="utf-8",
    )
    assert keys_read_by_recipe(recipe) == {
        "epochs",
        "seed",
        "profiler",
        "from_local_constant",
        "dataset",
        "compile",
        "shuffle",
        "model",
        # CheckpointClient(cfg)
        "checkpointer",
        "device",
        "enable_async_checkpointing",
        "optimizer_in_bwd",
        "resume_from_checkpoint",
        # self._metric_logger.log_config(cfg)
        "output_dir",
    }


@pytest.mark.needs_torchtune
def test_builtin_recipes_hand_the_whole_config_only_to_code_the_scanner_follows() -> None:
    # keys_read_by_recipe follows a parameter only when it is named cfg, and knows the keys of
    # KNOWN_RECEIVERS. A new torchtune that passes cfg elsewhere must be looked at again.
    torchtune = installed_torchtune()
    assert torchtune is not None
    recipe_files = {recipe_file_for(config.name) for config in torchtune.configs}
    for recipe_file in filter(None, recipe_files):
        tree = ast.parse(recipe_file.read_text(encoding="utf-8"))
        params = {
            node.name: parameters(node)
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef)
        }
        for node in tree.body:  # calling a class binds cfg to its __init__'s parameter
            if isinstance(node, ast.ClassDef):
                inits = [item for item in node.body if isinstance(item, ast.FunctionDef)]
                params[node.name] = next((parameters(f) for f in inits if f.name == "__init__"), [])
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            callee = ast.unparse(call.func)
            for position, arg in enumerate(call.args):
                if ast.unparse(arg) == "cfg" and callee not in KNOWN_RECEIVERS:
                    bound = params.get(callee.rsplit(".", 1)[-1], [])
                    assert bound[position : position + 1] == ["cfg"], (recipe_file, callee)
            for keyword in call.keywords:
                if ast.unparse(keyword.value) == "cfg" and callee not in KNOWN_RECEIVERS:
                    assert keyword.arg == "cfg", (recipe_file, callee)


def parameters(function: ast.FunctionDef) -> list[str]:
    return [arg.arg for arg in function.args.args if arg.arg not in ("self", "cls")]


@pytest.mark.needs_torchtune
def test_recipe_file_is_the_one_tune_run_runs() -> None:
    recipe_file = recipe_file_for(RECIPE)
    assert recipe_file is not None
    assert recipe_file.parts[-2:] == ("recipes", "lora_finetune_single_device.py")
    assert recipe_file.is_file()
    assert recipe_file_named("lora_finetune_single_device") == recipe_file
    assert recipe_file_named("no_such_recipe") is None


@pytest.mark.needs_torchtune
def test_scanning_recipes_never_imports_torch() -> None:
    script = textwrap.dedent("""
        import sys
        from torchtune_config_writer.validation.recipe_keys import (
            recipe_file_named, unread_top_level_keys
        )
        recipe = recipe_file_named("lora_finetune_single_device")
        assert unread_top_level_keys({"epoch": 3}, recipe) == ["epoch"]
        heavy = ("torch", "torchtune", "torchao")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        assert not loaded, loaded
    """)
    result = python_without_torch(script)
    assert result.returncode == 0, result.stderr


def test_what_a_recipe_passes_each_component_is_read_from_its_calls(tmp_path: Path) -> None:
    recipe = tmp_path / "my_recipe.py"
    recipe.write_text(
        textwrap.dedent(
            """
            from torchtune import config

            class Recipe:
                def setup(self, cfg):
                    self._optimizer = config.instantiate(cfg.optimizer, self._model.parameters())
                    self._scheduler = self._setup_lr_scheduler(
                        cfg_lr_scheduler=cfg.get("lr_scheduler", None), steps=10
                    )
                    self._data = self._setup_data(cfg["dataset"])
                    self._loss = config.instantiate(cfg.loss)
                    if cfg.resume:
                        self._ckpt = config.instantiate(cfg.checkpointer, resume=True, strict=1)
                    else:
                        self._ckpt = config.instantiate(cfg.checkpointer, resume=False)
                    self._any = config.instantiate(cfg.model, *self._extra)

                def _setup_lr_scheduler(self, cfg_lr_scheduler, steps):
                    return config.instantiate(
                        cfg_lr_scheduler, self._optimizer, num_training_steps=steps, last_epoch=-1
                    )

                def _setup_data(self, cfg_dataset):
                    return config.instantiate(cfg_dataset, self._tokenizer)
            """
        )
    )
    assert arguments_passed_by_recipe(recipe) == {
        "optimizer": Passed(1, frozenset()),
        "lr_scheduler": Passed(1, frozenset({"num_training_steps", "last_epoch"})),
        "dataset": Passed(1, frozenset()),
        "loss": Passed(0, frozenset()),
        # Built on two branches: only what both pass counts, and not as the whole call.
        "checkpointer": Passed(0, frozenset({"resume"}), whole=False),
        # `model` is built with *args of unknown length: nothing is known of it.
    }
