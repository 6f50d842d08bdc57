"""What a run is watched for while it runs: the steps it takes, the token ids its batches hold,
and where it would save; patched once per worker."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from . import emulation, standins
from .state import STATE

DECODE_STEPS = 4  # forward passes of a model no optimizer trains: a prefill and a few tokens


def patch_checkpoint_loading() -> None:
    import torchtune.training.checkpointing._checkpointer as checkpointing

    if not hasattr(checkpointing, "safe_torch_load"):
        raise AttributeError("torchtune's checkpointer no longer loads with safe_torch_load")
    checkpointing.safe_torch_load = standins.header_only_load


def no_save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
    """``torch.save`` of data-less tensors: an empty file where the recipe writes it."""
    if isinstance(f, (str, os.PathLike)):
        Path(f).parent.mkdir(parents=True, exist_ok=True)
        Path(f).write_bytes(b"")


def count_steps() -> None:
    from torch.optim.optimizer import Optimizer, register_optimizer_step_post_hook

    def stepped(*args: Any) -> None:
        STATE.steps += 1

    register_optimizer_step_post_hook(stepped)
    real_init = Optimizer.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        STATE.trains = True
        real_init(self, *args, **kwargs)

    Optimizer.__init__ = __init__  # type: ignore[method-assign]


def check_token_ids() -> None:
    """A token id past the model's vocabulary: an IndexError on the CPU, a device-side assert
    on a GPU; a tensor without data cannot tell, so the ids of the real batches are kept."""
    from torchdata.stateful_dataloader import StatefulDataLoader
    from torchtune.modules import TransformerDecoder

    real_iter = StatefulDataLoader.__iter__

    def __iter__(self: Any) -> Any:
        with emulation.real_values():
            batches = real_iter(self)
        while not STATE.steps:  # one optimizer step is all a run must take: the epoch ends
            with emulation.real_values():
                try:
                    batch = next(batches)
                except StopIteration:
                    return
                STATE.largest_token = max(STATE.largest_token, _largest_token(batch))
            yield batch

    StatefulDataLoader.__iter__ = __iter__
    real_forward = TransformerDecoder.forward

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        embeddings = getattr(self, "tok_embeddings", None)
        size = getattr(embeddings, "num_embeddings", None)
        if isinstance(size, int) and STATE.largest_token >= size and not STATE.tokenizer_stood_in:
            raise standins.TokenPastVocabulary(
                f"token id {STATE.largest_token} is past the model's vocabulary of {size}: "
                "index out of range in self"
            )
        if not STATE.trains:
            # A generation loop of the recipe's own (dev/generate_v2) decodes max_new_tokens
            # times, and a token without data never stops it: a few steps run every line.
            STATE.forwards += 1
            if STATE.forwards > DECODE_STEPS:
                raise standins.StopRun("generation")
        return real_forward(self, *args, **kwargs)

    TransformerDecoder.forward = forward


def _largest_token(batch: Any) -> int:
    largest = -1
    items = (
        batch.items()
        if isinstance(batch, dict)
        else enumerate(batch)
        if isinstance(batch, (list, tuple))
        else []
    )
    for key, value in items:
        if isinstance(value, torch.Tensor) and not value.is_floating_point() and value.numel():
            if "label" not in str(key) and "mask" not in str(key):
                largest = max(largest, int(value.max()))
        elif isinstance(value, (dict, list, tuple)):
            largest = max(largest, _largest_token(value))
    return largest
