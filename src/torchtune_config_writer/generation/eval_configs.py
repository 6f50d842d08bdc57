"""Each run's evaluation config: torchtune's ``eleuther_eval`` recipe on the run's final weights.

The config is built from the run's own: its model without the LoRA arguments (the recipes save
the LoRA weights merged into the model, ``lora_llama3_2_1b`` → ``llama3_2_1b``), its tokenizer,
device and dtype, and a checkpointer of the same kind reading the files that checkpointer writes
for the last epoch (torchtune 0.6.1, ``training/checkpointing/_checkpointer.py``):

- ``FullModelHFCheckpointer``: ``model-0000K-of-0000N.safetensors`` (``.bin`` without
  ``safe_serialization``), one per file it read, with the ``config.json`` it copies beside them;
- ``FullModelTorchTuneCheckpointer`` and ``FullModelMetaCheckpointer``:
  ``model-00001-of-00001.bin``.

``eleuther_eval`` loads only the model's weights, so a run that saves its adapter alone
(``save_adapter_weights_only: true``) has nothing it can evaluate: that is an error.
"""

from __future__ import annotations

import re
from typing import Any

from ..experiment.evaluation import Evaluation
from .output_dirs import OUTPUT_DIR, folder_in, references

COMPONENT = "_component_"
_LORA_ARGUMENT = re.compile(r"lora_.*|apply_lora_to_.*|use_dora|quantize_base")
_SINGLE_FILE = "model-00001-of-00001.bin"
_CHECKPOINTERS = (
    "FullModelHFCheckpointer",
    "FullModelTorchTuneCheckpointer",
    "FullModelMetaCheckpointer",
)
_LM_EVAL_SEED = 1234  # eleuther_eval's configs keep lm_eval's own seed


class EvaluationProblem(Exception):
    """Why a run's evaluation config cannot be written."""


# torchtune's recipes that fine-tune a `model:` and save it through `checkpointer:` in
# epoch_N folders: the runs an eleuther_eval config can evaluate. The others generate, quantize
# or evaluate (they train nothing), or train other models (PPO's policy_model).
FINE_TUNING_RECIPES = frozenset(
    {
        "full_finetune_single_device",
        "full_finetune_distributed",
        "lora_finetune_single_device",
        "lora_finetune_distributed",
        "lora_dpo_single_device",
        "lora_dpo_distributed",
        "full_dpo_distributed",
        "knowledge_distillation_single_device",
        "knowledge_distillation_distributed",
        "qat_distributed",
        "qat_lora_finetune_distributed",
        "dev/early_exit_finetune_distributed",
        "dev/lora_finetune_distributed_multi_dataset",
    }
)


def recipe_problem(recipe: str | None) -> str | None:
    """Why the runs of ``recipe`` cannot be evaluated, or ``None`` (a recipe of the user's own
    is taken to fine-tune a model, as torchtune's do)."""
    if recipe is None or recipe.endswith(".py") or recipe in FINE_TUNING_RECIPES:
        return None
    return (
        f"evaluation evaluates the model each run fine-tunes, but {recipe} fine-tunes no "
        "`model` into checkpoints of its own (it generates, quantizes, evaluates, or trains a "
        "policy): remove evaluation, or base the experiment on a fine-tuning recipe config "
        "(full, LoRA, QLoRA, DPO, knowledge distillation, QAT)"
    )


def final_checkpoint(config: dict[str, Any]) -> str | None:
    """Where torchtune saves the run's last epoch: ``checkpointer.output_dir/epoch_{epochs-1}``."""
    checkpoints = folder_in(config, "checkpointer.output_dir")
    epochs = config.get("epochs")
    if checkpoints and isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        return f"{checkpoints.rstrip('/')}/epoch_{epochs - 1}"
    return None


def evaluation_config(config: dict[str, Any], evaluation: Evaluation) -> dict[str, Any]:
    """The ``eleuther_eval`` config of a run whose merged config is ``config``.

    Raises:
        EvaluationProblem: the run saves no weights the recipe can load, or where is unknown.
    """
    final = final_checkpoint(config)
    if final is None:
        raise EvaluationProblem(
            "evaluation reads each run's final checkpoint, in checkpointer.output_dir/epoch_N: "
            "give the runs a checkpointer.output_dir and a whole number of epochs"
        )
    if config.get("save_adapter_weights_only") is True:
        raise EvaluationProblem(
            "evaluation needs the runs' merged weights, but save_adapter_weights_only: true "
            "saves only the LoRA adapter (eleuther_eval loads model weights alone): set it to "
            "false in controls"
        )
    model, checkpointer = config.get("model"), config.get("checkpointer")
    if not (isinstance(model, dict) and isinstance(model.get(COMPONENT), str)):
        raise EvaluationProblem("evaluation needs a model with a _component_ in each run")
    if not isinstance(checkpointer, dict):
        raise EvaluationProblem("evaluation needs a checkpointer in each run")
    kind = str(checkpointer.get(COMPONENT, "")).rsplit(".", 1)[-1]
    if kind not in _CHECKPOINTERS:
        named = kind or "this checkpointer"
        raise EvaluationProblem(
            f"evaluation knows the files {', '.join(_CHECKPOINTERS)} save, not {named}'s"
        )
    output_dir = folder_in(config, OUTPUT_DIR)
    evaluated: dict[str, Any] = {
        OUTPUT_DIR: f"{output_dir.rstrip('/')}/eval" if output_dir else "./",
        "model": _merged_model(model),
        "checkpointer": {
            COMPONENT: checkpointer[COMPONENT],
            "checkpoint_dir": final,
            "checkpoint_files": _saved_files(kind, checkpointer),
            "recipe_checkpoint": None,
            OUTPUT_DIR: "${output_dir}",
            **({"model_type": checkpointer["model_type"]} if "model_type" in checkpointer else {}),
        },
    }
    for key in ("tokenizer", "device", "dtype"):
        if key in config:
            evaluated[key] = config[key]
    tokenizer = config.get("tokenizer")
    max_seq_len = tokenizer.get("max_seq_len") if isinstance(tokenizer, dict) else None
    evaluated.update(
        {
            "seed": _LM_EVAL_SEED,
            "tasks": list(evaluation.tasks),
            "limit": evaluation.limit,
            "max_seq_length": evaluation.max_seq_length or max_seq_len or 4096,
            "batch_size": evaluation.batch_size or 8,
            "enable_kv_cache": True,
            "quantizer": None,
        }
    )
    if evaluation.include_path is not None:
        evaluated["include_path"] = evaluation.include_path
    # What the copied values refer to (``${base_dir}/tokenizer.model``) comes along, as written.
    while missing := [
        key
        for key in dict.fromkeys(references(evaluated))
        if key not in evaluated and key in config
    ]:
        evaluated.update((key, config[key]) for key in missing)
    return evaluated


def _merged_model(model: dict[str, Any]) -> dict[str, Any]:
    """The model the merged weights load into: a LoRA builder's base builder, without LoRA's
    arguments."""
    module, _, name = str(model[COMPONENT]).rpartition(".")
    for prefix in ("qlora_", "lora_"):
        if name.startswith(prefix):
            base = f"{module}.{name.removeprefix(prefix)}" if module else name.removeprefix(prefix)
            kept = {
                key: value
                for key, value in model.items()
                if key != COMPONENT and not _LORA_ARGUMENT.fullmatch(str(key))
            }
            return {COMPONENT: base, **kept}
    return dict(model)


def _saved_files(kind: str, checkpointer: dict[str, Any]) -> list[str]:
    if kind != "FullModelHFCheckpointer":
        return [_SINGLE_FILE]
    files = checkpointer.get("checkpoint_files")
    if isinstance(files, dict):  # {filename_format: ..., max_filename: "00004"}
        count = int(str(files.get("max_filename", "1")))
    else:
        count = len(files) if isinstance(files, list) else 1
    suffix = ".bin" if checkpointer.get("safe_serialization") is False else ".safetensors"
    return [f"model-{index:05d}-of-{count:05d}{suffix}" for index in range(1, count + 1)]
