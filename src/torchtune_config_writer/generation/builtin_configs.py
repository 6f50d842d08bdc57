"""torchtune's built-in configs, found in the installed package without importing torch.

``import torchtune`` imports torch (seconds). The list of recipes and configs lives in
``torchtune/_recipe_registry.py``, which needs only ``dataclasses`` and ``typing``, so it is run
on its own; the config files are read from where ``tune cp`` copies them.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType

from ..errors import ConfigWriterError, first_line
from ..installing import INSTALL_ADVICE
from ..json_output import json_text
from ..wording import close_names


@dataclass(frozen=True)
class BuiltinConfig:
    """One of torchtune's built-in configs, as ``tune ls`` lists it.

    Attributes:
        name: The config name, e.g. ``llama3_2/1B_lora_single_device``.
        recipe: The recipe that runs it, e.g. ``lora_finetune_single_device``.
        path: The file ``tune cp`` copies.
        recipe_file: The recipe script ``tune run`` runs for it.
    """

    name: str
    recipe: str
    path: Path
    recipe_file: Path


@dataclass(frozen=True)
class Torchtune:
    """The installed torchtune: its version, built-in configs and recipes in registry order."""

    version: str
    configs: tuple[BuiltinConfig, ...]
    recipes: dict[str, Path]  # recipe name → the script `tune run NAME` runs
    single_device: frozenset[str] = frozenset()  # recipes `tune run --nproc_per_node` refuses

    def find(self, name: str) -> BuiltinConfig | None:
        """The config ``tune cp NAME`` would copy: the first registry entry of that name."""
        return next((config for config in self.configs if config.name == name), None)

    def close_matches(self, name: str) -> list[str]:
        """Config names that look like ``name``, best first."""
        names = list(dict.fromkeys(config.name for config in self.configs))
        matches = close_names(name, names, 3)
        if not matches:  # a recipe name or a bare model size: offer configs that contain it
            stem = name.rsplit("/", 1)[-1].lower()
            matches = [candidate for candidate in names if stem and stem in candidate.lower()][:3]
        return matches


@cache
def installed_torchtune() -> Torchtune | None:
    """The torchtune installed beside this package, or ``None`` when there is none.

    Raises:
        ConfigWriterError: torchtune is installed but its recipe registry cannot be read.
    """
    spec = importlib.util.find_spec("torchtune")
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    registry_file = package_dir / "_recipe_registry.py"
    try:
        registry = _run_standalone(registry_file)
        all_recipes = registry.get_all_recipes()
        from importlib.metadata import version as installed_version  # 34 ms: only here

        version = installed_version("torchtune")
    except Exception as exc:  # noqa: BLE001 - any failure means a torchtune we cannot read
        raise ConfigWriterError(
            f"cannot read torchtune's recipe list ({type(exc).__name__}: {first_line(exc)}): "
            "reinstall torchtune",
            registry_file,
        ) from None
    # tune cp copies from <site-packages>/recipes/configs/<file_path>; tune run runs
    # <site-packages>/recipes/<recipe file_path>.
    recipe_root = package_dir.parent / "recipes"
    configs = tuple(
        BuiltinConfig(
            config.name,
            recipe.name,
            recipe_root / "configs" / config.file_path,
            recipe_root / recipe.file_path,
        )
        for recipe in all_recipes
        for config in recipe.configs
    )
    recipe_files = {recipe.name: recipe_root / recipe.file_path for recipe in all_recipes}
    single = frozenset(recipe.name for recipe in all_recipes if not recipe.supports_distributed)
    return Torchtune(version, configs, recipe_files, single)


# torchtune 0.6.1's registry (its last release): the recipes without distributed support, for
# when no torchtune is installed to ask.
SINGLE_DEVICE_RECIPES = frozenset(
    {
        "full_finetune_single_device",
        "lora_finetune_single_device",
        "lora_dpo_single_device",
        "ppo_full_finetune_single_device",
        "generate",
        "dev/generate_v2",
        "eleuther_eval",
        "quantize",
        "knowledge_distillation_single_device",
    }
)


# torchtune 0.6.1's recipes that build a ConcatDataset from a list under `dataset` (their
# _setup_data: isinstance(cfg_dataset, ListConfig)); a test reads this from their sources.
DATASET_LIST_RECIPES = frozenset(
    {
        "dev/early_exit_finetune_distributed",
        "full_dpo_distributed",
        "full_finetune_distributed",
        "full_finetune_single_device",
        "knowledge_distillation_distributed",
        "knowledge_distillation_single_device",
        "lora_dpo_distributed",
        "lora_dpo_single_device",
        "lora_finetune_distributed",
        "lora_finetune_single_device",
        "ppo_full_finetune_single_device",
        "qat_distributed",
        "qat_lora_finetune_distributed",
    }
)


def single_device_recipes() -> frozenset[str]:
    """The recipes ``tune run`` refuses to launch on several processes (torchtune's registry,
    else the list of torchtune 0.6.1's). A recipe file of the user's is taken to support it."""
    torchtune = installed_torchtune()
    return torchtune.single_device if torchtune is not None else SINGLE_DEVICE_RECIPES


def _run_standalone(path: Path) -> ModuleType:
    name = "_torchtune_config_writer_recipe_registry"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def require_torchtune(purpose: str) -> Torchtune:
    """The installed torchtune, or an error saying that ``purpose`` needs it."""
    torchtune = installed_torchtune()
    if torchtune is None:
        raise ConfigWriterError(
            f"{purpose} needs torchtune, which is not installed: {INSTALL_ADVICE}"
        )
    return torchtune


def list_configs(pattern: str | None = None) -> list[BuiltinConfig]:
    """Built-in configs whose config or recipe name matches ``pattern``.

    Args:
        pattern: A glob (``llama3_2/*lora*``) or a plain substring; case-insensitive.
            ``None`` lists everything.
    """
    configs = require_torchtune("listing recipes").configs
    if not pattern:
        return list(configs)
    needle = pattern.lower()
    is_glob = any(char in pattern for char in "*?[")

    def matches(text: str) -> bool:
        text = text.lower()
        return fnmatch.fnmatchcase(text, needle) if is_glob else needle in text

    return [config for config in configs if matches(config.name) or matches(config.recipe)]


def listing_json(configs: list[BuiltinConfig], version: str) -> str:
    """The listing for tools (``recipes --format json``): ``torchtune`` (its version) and
    ``configs``, each with its ``recipe``, ``config`` (the name), ``config_file`` (what ``tune cp``
    copies) and ``recipe_file`` (what ``tune run`` runs), in ``tune ls`` order."""
    return json_text(
        {
            "torchtune": version,
            "configs": [
                {
                    "recipe": config.recipe,
                    "config": config.name,
                    "config_file": str(config.path),
                    "recipe_file": str(config.recipe_file),
                }
                for config in configs
            ],
        }
    )


def format_listing(configs: list[BuiltinConfig]) -> str:
    """The ``tune ls`` table: the recipe name on its first config only."""
    lines = [f"{'RECIPE':<40} {'CONFIG':<40}".rstrip()]
    previous = None
    for config in configs:
        recipe = config.recipe if config.recipe != previous else ""
        lines.append(f"{recipe:<40} {config.name}")
        previous = config.recipe
    return "\n".join(lines) + "\n"
