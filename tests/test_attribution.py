"""Which key makes an execution fail: the changes from the base, narrowed down; the exception read.

No torch here: executions are stood in for by a predicate over the edits applied to the base.
"""

from __future__ import annotations

from typing import Any

from torchtune_config_writer.validation.execution.attribution import (
    changes,
    guess_keypath,
    smallest_failing,
)
from torchtune_config_writer.validation.execution.protocol import (
    DELETE,
    Edit,
    Frame,
    Outcome,
    Status,
)

BASE: dict[str, Any] = {
    "model": {"_component_": "m.lora", "lora_rank": 8, "lora_dropout": 0.0},
    "optimizer": {"_component_": "torch.optim.AdamW", "lr": 3e-4, "fused": True},
    "batch_size": 4,
    "shuffle": True,
    "dataset": [{"_component_": "d.alpaca"}],
    "profiler": {"enabled": False},
}


def test_changes_are_the_smallest_independent_edits_in_config_order() -> None:
    config = {
        "model": {"_component_": "m.lora", "lora_rank": 16, "lora_dropout": 0.0},
        "optimizer": {"_component_": "torch.optim.SGD", "lr": 0.1},  # swapped: one edit
        "batch_size": 4.0,  # a float where the base has an integer is a change
        "shuffle": 1,  # 1 is not True for a recipe
        "dataset": [{"_component_": "d.alpaca"}, {"_component_": "d.alpaca"}],  # lists whole
        "seed": 3,  # new
    }  # profiler deleted
    assert changes(BASE, config) == [
        (("model", "lora_rank"), 16),
        (("optimizer",), config["optimizer"]),
        (("batch_size",), 4.0),
        (("shuffle",), 1),
        (("dataset",), config["dataset"]),
        (("seed",), 3),
        (("profiler",), DELETE),
    ]
    assert changes(BASE, BASE) == []


class Probe:
    """An execution stood in for: fails when every key of one of the ``failing`` sets is
    edited; counts the executions and the rounds (calls, each run in parallel)."""

    def __init__(self, *failing: set[str]) -> None:
        self.failing = failing
        self.executions = 0
        self.rounds = 0

    def __call__(self, subsets: list[list[Edit]]) -> list[bool]:
        self.rounds += 1
        self.executions += len(subsets)
        return [
            any(needed <= {".".join(map(str, k)) for k, _ in subset} for needed in self.failing)
            for subset in subsets
        ]


def edits(count: int) -> list[Edit]:
    return [((f"key{i}",), i) for i in range(count)]


def test_one_culprit_among_many_is_found_in_few_executions() -> None:
    probe = Probe({"key11"})
    assert smallest_failing(edits(16), probe) == [(("key11",), 11)]
    assert probe.executions <= 10


def test_two_values_that_fail_only_together_are_both_found() -> None:
    probe = Probe({"key2", "key13"})
    assert [k for k, _ in smallest_failing(edits(16), probe)] == [("key2",), ("key13",)]


def test_a_failure_that_needs_everything_keeps_everything() -> None:
    probe = Probe({"key0", "key1", "key2"})
    assert len(smallest_failing(edits(3), probe)) == 3


def test_either_of_two_culprits_is_enough_to_report() -> None:
    probe = Probe({"key1"}, {"key6"})
    found = smallest_failing(edits(8), probe)
    assert found in ([(("key1",), 1)], [(("key6",), 6)])


def outcome(message: str, building: tuple[str | int, ...] = (), *lines: str) -> Outcome:
    frames = tuple(Frame("recipes/r.py", n, "setup", text) for n, text in enumerate(lines))
    return Outcome(1, Status.FAILED, "ValueError", message, frames=frames, building=building)


def test_a_failure_while_building_a_node_names_the_argument_its_message_names() -> None:
    config = {"model": {"_component_": "m", "lora_rank": 8, "lora_dropout": 1.5}}
    said = "dropout probability has to be between 0 and 1, but got 1.5"
    assert guess_keypath(outcome(said, ("model",)), config) == ("model", "lora_dropout")
    said = "lora_rank must be positive"
    assert guess_keypath(outcome(said, ("model",)), config) == ("model", "lora_rank")
    assert guess_keypath(outcome("something else", ("model",)), config) == ("model",)


def test_a_failure_in_the_recipe_names_the_key_its_line_reads() -> None:
    config = {"gradient_accumulation_steps": 0, "log_every_n_steps": 1, "batch_size": 2}
    line = "steps = len(self._dataloader) // self._gradient_accumulation_steps"
    found = guess_keypath(outcome("integer division or modulo by zero", (), line), config)
    assert found == ("gradient_accumulation_steps",)


def test_a_failure_that_names_nothing_points_at_the_whole_config() -> None:
    assert guess_keypath(outcome("CUDA error"), {"seed": 1}) == ()
