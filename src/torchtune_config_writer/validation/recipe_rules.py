"""Stage 3 of validation: the rules recipes enforce only once they run.

A recipe checks some settings in its setup, after the model is built, or fails deep inside
PyTorch (``range(1.5)``, a DataLoader given ``batch_size=4.0``): ``tune validate`` passes such a
config and the cluster job dies. Each rule here is found in torchtune's own source: it applies to
a recipe whose source holds the rule's marker (the raise, or the call that fails), so a custom
recipe copied from torchtune's keeps its rules, and one that dropped a check loses it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ..generation.placement import MISSING
from ..yaml_io import KeyPath, dump_inline

CHECK = "recipe-rule"
# What a rule reads: a config value by key path, interpolations filled in, or MISSING.
Values = Callable[[KeyPath], Any]


@dataclass(frozen=True)
class Rule:
    """One thing a recipe refuses.

    Attributes:
        name: The rule in a few words, as findings name it.
        marker: Text in a recipe's source that enforces it.
        broken: Where the config breaks the rule and what to do, if it does.
    """

    name: str
    marker: str
    broken: Callable[[Values], tuple[KeyPath, str] | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _integer(key: str, why: str) -> Callable[[Values], tuple[KeyPath, str] | None]:
    def broken(get: Values) -> tuple[KeyPath, str] | None:
        value = get((key,))
        if value is MISSING or (_is_int(value) and value >= 1):
            return None
        fix = f"write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
        fix = fix or "give a whole number of at least 1"
        return (key,), f"{key} is {dump_inline(value)}, but {why}: {fix}"

    return broken


def _in_backward_with(
    key: str, used: Callable[[Any], bool], fix: str
) -> Callable[[Values], tuple[KeyPath, str] | None]:
    def broken(get: Values) -> tuple[KeyPath, str] | None:
        value = get((key,))
        if get(("optimizer_in_bwd",)) is not True or value is MISSING or not used(value):
            return None
        return ("optimizer_in_bwd",), f"optimizer_in_bwd is true and {key} is {value}: {fix}"

    return broken


def _offloading_off_cuda(get: Values) -> tuple[KeyPath, str] | None:
    device = get(("device",))
    # No device: torchtune picks CUDA where there is one, as there is on a GPU node.
    if get(("enable_activation_offloading",)) is not True or not isinstance(device, str):
        return None
    if device.startswith("cuda"):
        return None
    return ("enable_activation_offloading",), (
        f"enable_activation_offloading is true on device {device}: offloading needs CUDA; "
        "set enable_activation_offloading: false"
    )


def _offloading_without_checkpointing(get: Values) -> tuple[KeyPath, str] | None:
    if get(("enable_activation_offloading",)) is not True:
        return None
    if get(("enable_activation_checkpointing",)) is True:
        return None
    return ("enable_activation_offloading",), (
        "enable_activation_offloading is true without enable_activation_checkpointing: set "
        "enable_activation_checkpointing: true, or enable_activation_offloading: false"
    )


def _fp16(get: Values) -> tuple[KeyPath, str] | None:
    if get(("dtype",)) != "fp16":
        return None
    return ("dtype",), "dtype is fp16, which this recipe does not train in: use bf16 or fp32"


def _left_pad_collator(get: Values) -> tuple[KeyPath, str] | None:
    collate = get(("collate_fn",))
    if not (isinstance(collate, str) and "left_pad_sequence" in collate):
        return None
    return ("collate_fn",), (
        f"collate_fn is {collate}, a collator for inference only: remove collate_fn for the "
        "recipe's default, torchtune.data.padded_collate_sft"
    )


def _no_scheduler(get: Values) -> tuple[KeyPath, str] | None:
    if get(("lr_scheduler",)) not in (MISSING, None):
        return None
    return ("lr_scheduler",), (
        "there is no lr_scheduler, and this recipe steps one after every optimizer step: give "
        "one (torchtune.training.lr_schedulers.get_cosine_schedule_with_warmup, or "
        "torch.optim.lr_scheduler.ConstantLR for a constant rate)"
    )


RULES = (
    Rule(
        "batch_size is a positive integer",
        "batch_size=cfg.batch_size",
        _integer("batch_size", "the recipe hands it to its DataLoader, which takes an integer"),
    ),
    Rule(
        "epochs is a positive integer",
        "range(self.epochs_run, self.total_epochs)",
        _integer("epochs", "the recipe loops over range(epochs), which takes an integer"),
    ),
    Rule(
        "no gradient accumulation with optimizer_in_bwd",
        "Gradient accumulation is not supported with optimizer in bwd",
        _in_backward_with(
            "gradient_accumulation_steps",
            lambda steps: isinstance(steps, (int, float)) and steps > 1,
            "the optimizer steps in the backward pass, so gradients cannot accumulate; set "
            "gradient_accumulation_steps: 1, or optimizer_in_bwd: false",
        ),
    ),
    Rule(
        "no gradient clipping with optimizer_in_bwd",
        "Gradient clipping is not supported with optimizer in bwd",
        _in_backward_with(
            "clip_grad_norm",
            lambda norm: norm is not None,
            "the optimizer steps in the backward pass, before gradients could be clipped; set "
            "clip_grad_norm: null, or optimizer_in_bwd: false",
        ),
    ),
    Rule(
        "activation offloading only on CUDA",
        "enable_activation_offloading should only be True when training on CUDA",
        _offloading_off_cuda,
    ),
    Rule(
        "activation offloading needs activation checkpointing",
        "enable_activation_offloading should only be True when enable_activation_checkpointing",
        _offloading_without_checkpointing,
    ),
    Rule("no fp16 training", "self._dtype == torch.float16", _fp16),
    Rule("a learning-rate scheduler", "cfg_lr_scheduler=cfg.lr_scheduler,", _no_scheduler),
    Rule(
        "no inference collator",
        "left_pad_sequence collator is only for inference",
        _left_pad_collator,
    ),
)
_PACKED_MARKER = "PackedDataset requires a max_seq_len to be set on the tokenizer"


def recipe_rule_problems(get: Values, recipe_file: Path) -> Iterator[tuple[KeyPath, str]]:
    """Each rule of the recipe that the config breaks: (key path, message).

    Args:
        get: The config's values, interpolations filled in.
        recipe_file: The recipe's ``.py`` file.
    """
    source = _source(recipe_file)
    for rule in RULES:
        if rule.marker in source and (found := rule.broken(get)) is not None:
            keypath, message = found
            yield (
                keypath,
                f"{recipe_file.stem} refuses it ({rule.name}): `tune run` fails; {message}",
            )


def packed_without_max_seq_len(
    get: Values, keypath: KeyPath, target: str, component: Any, kwargs: dict[str, Any]
) -> tuple[KeyPath, str] | None:
    """A dataset built packed while the tokenizer has no ``max_seq_len`` to pack to."""
    if kwargs.get("packed") is not True or get(("tokenizer", "max_seq_len")) not in (MISSING, None):
        return None
    source = _component_source(component)
    if _PACKED_MARKER not in source:
        return None
    name = target.rsplit(".", 1)[-1]
    return (*keypath, "packed"), (
        f"{name} refuses it (packing needs tokenizer.max_seq_len): `tune run` fails; packed is "
        "true but tokenizer.max_seq_len is not set: set tokenizer.max_seq_len (e.g. 2048), or "
        "packed: false"
    )


@cache
def _source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""  # an unreadable recipe is reported by the unread-key check


def _component_source(component: Any) -> str:
    target = getattr(component, "func", component)  # functools.partial: alpaca_cleaned_dataset
    try:
        path = inspect.getsourcefile(target)
    except TypeError:
        return ""
    return _source(Path(path)) if path else ""
