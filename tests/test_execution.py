"""The harness that runs a recipe's own code: a canary corpus that fails loudly on an upgrade.

It patches torchtune 0.6 and torch internals (``harness.py``, ``emulation.py``); these tests
run tiny configs of every recipe the oracle knows, and a few known failures, through the real
worker, and say which part broke when torchtune or torch change under it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.oracle.assets import RECIPES, TRAINING, Assets, build_assets
from torchtune_config_writer.validation.execution.client import shared_executor
from torchtune_config_writer.validation.execution.protocol import (
    DELETE,
    Edit,
    Mode,
    Outcome,
    Request,
    Status,
)

from .conftest import CliResult

pytestmark = pytest.mark.needs_torch


@pytest.fixture(scope="module")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    return build_assets(tmp_path_factory.mktemp("execution") / "tiny")


def execute(
    assets: Assets,
    kind: str,
    *edits: Edit,
    mode: Mode = Mode.VALUES,
    processes: int = 1,
    recipe: str | None = None,
) -> Outcome:
    request = Request(
        0,
        recipe or RECIPES[kind],
        str(assets.bases[kind]),
        str(assets.root),
        mode,
        tuple(edits),
        processes=processes,
    )
    (outcome,) = shared_executor().run([request])
    return outcome


@pytest.mark.parametrize("kind", list(RECIPES))
def test_a_tiny_config_of_every_recipe_runs_clean(assets: Assets, kind: str) -> None:
    outcome = execute(assets, kind)
    assert outcome.status is Status.PASSED, outcome
    # The training recipes take exactly one optimizer step; the others take none.
    assert (outcome.trains, outcome.steps) == ((True, 1) if kind in TRAINING else (False, 0))
    assert outcome.standins == ()  # every file is here: nothing was stood in for


@pytest.mark.parametrize(
    ("kind", "edit", "error", "site"),
    [
        (
            "lora",
            (("gradient_accumulation_steps",), 0),
            "ZeroDivisionError",
            "recipes/lora_finetune_single_device.py:setup",
        ),
        ("full", (("log_every_n_steps",), 0), "ZeroDivisionError", "recipes/full_finetune"),
        ("lora", (("model", "lora_dropout"), 1.5), "ValueError", "torchtune/modules/peft/lora.py"),
        ("dpo", (("dtype",), "float32"), "ValueError", "torchtune/training/precision.py"),
        ("kd", (("teacher_model", "vocab_size"), 512), "RuntimeError", "recipes/knowledge"),
        ("quantize", (("quantizer", "groupsize"), 0), "ZeroDivisionError", ""),
        ("generate", (("top_k",), 0), "IndexError", "torchtune/generation"),
    ],
)
def test_a_known_failure_raises_torchtunes_own_exception_where_it_does(
    assets: Assets, kind: str, edit: Edit, error: str, site: str
) -> None:
    outcome = execute(assets, kind, edit)
    assert (outcome.status, outcome.error) == (Status.FAILED, error), outcome
    assert outcome.site.startswith(site), outcome


def test_what_is_not_on_this_machine_is_stood_in_for_and_named(assets: Assets) -> None:
    outcome = execute(
        assets,
        "lora",
        (("tokenizer", "path"), "/nowhere/tokenizer.model"),
        (("checkpointer", "checkpoint_dir"), "/nowhere/model"),
        (("dataset",), {"_component_": "torchtune.datasets.alpaca_cleaned_dataset"}),
    )
    assert outcome.status is Status.PASSED, outcome
    assert outcome.standins == (
        "checkpointer: weights shaped from model",
        "tokenizer.path: a sentencepiece file",
        "dataset: made-up rows in the format it reads",
    )


def test_with_real_files_only_a_missing_file_fails_as_it_would(assets: Assets) -> None:
    edit = (("dataset", "data_files"), str(assets.root / "assets" / "missing.json"))
    assert execute(assets, "full", edit).status is Status.PASSED  # made up: not here
    (outcome,) = shared_executor().run(
        [Request(0, RECIPES["full"], str(assets.bases["full"]), str(assets.root),
                 edits=(edit,), real_files=True)]
    )  # fmt: skip
    assert (outcome.status, outcome.error) == (Status.FAILED, "FileNotFoundError"), outcome


def test_a_real_size_model_runs_at_a_tiny_size_for_values_and_at_its_size_for_shape(
    assets: Assets,
) -> None:
    llama3 = {
        "_component_": "torchtune.models.llama3_2.llama3_2_1b",
    }
    edits: tuple[Edit, ...] = (
        (("model",), llama3),
        (("tokenizer",), {"_component_": "torchtune.models.llama3.llama3_tokenizer",
                          "path": "/nowhere/tokenizer.model", "max_seq_len": 64}),
        (("checkpointer", "checkpoint_dir"), "/nowhere/model"),
        (("checkpointer", "model_type"), "LLAMA3_2"),
    )  # fmt: skip
    values = execute(assets, "full", *edits)
    shape = execute(assets, "full", *edits, mode=Mode.SHAPE)
    assert (values.status, values.shrunk) == (Status.PASSED, True), values
    assert (shape.status, shape.shrunk) == (Status.PASSED, False), shape
    assert "tokenizer.path: a tiktoken file" in values.standins


def test_a_distributed_recipe_runs_as_rank_zero_of_its_processes(assets: Assets) -> None:
    distributed = "full_finetune_distributed"
    edits = ((("optimizer_in_bwd",), DELETE),)
    outcome = execute(assets, "full", *edits, processes=2, recipe=distributed)
    assert (outcome.status, outcome.steps) == (Status.PASSED, 1), outcome
    # Without --nproc_per_node, tune run starts one process: the recipe refuses, as here.
    alone = execute(assets, "full", *edits, recipe=distributed)
    assert alone.status is Status.FAILED and "RANK expected" in alone.message


def test_an_optional_package_not_installed_is_unverified(assets: Assets) -> None:
    edit = (("optimizer",), {"_component_": "bitsandbytes.optim.PagedAdamW8bit", "lr": 1e-3})
    outcome = execute(assets, "full", edit)
    assert outcome.status is Status.UNVERIFIED and "bitsandbytes" in outcome.message


def test_another_torchtune_is_not_checked_rather_than_judged(tmp_path: Path) -> None:
    code = (
        "import torchtune; torchtune.__version__ = '0.7.0'\n"
        "from torchtune_config_writer.validation.execution import harness, standins\n"
        "from pathlib import Path\n"
        "try:\n    harness.install(Path('.'))\n"
        "except standins.HarnessLimit as exc:\n    print('limit:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True
    )
    assert "limit: execution is built for torchtune 0.6.x, this is 0.7.0" in result.stdout


def test_validate_runs_a_config_on_its_own_with_the_recipe_given(
    assets: Assets, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    config = yaml.safe_load(assets.bases["lora"].read_text())
    config["gradient_accumulation_steps"] = 0
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(config))
    result = cli("validate", path, "--recipe", "lora_finetune_single_device")
    assert result.code == 1
    assert "error gradient_accumulation_steps" in result.out
    assert "ZeroDivisionError" in result.out
    alone = cli("validate", path, "-v")  # each config's line says how it was checked
    assert alone.code == 0
    assert "not executed: the recipe is not known (give --recipe NAME)" in alone.out


def sparse_hf_checkpoint(folder: Path, builder: str) -> Path:
    """A Hugging Face checkpoint folder of ``builder`` at its real size that costs no disk: a
    ``config.json`` and one safetensors file of real headers followed by a hole, keys converted
    with torchtune's own ``tune_to_hf`` (the inverse of what its HF checkpointer reads)."""
    import json
    import struct

    import torch
    from torchtune.config._utils import _get_component_from_path
    from torchtune.models.convert_weights import tune_to_hf

    with torch.device("meta"):
        model = _get_component_from_path(builder)()
    attention = model.layers[0].attn
    dims = {
        "num_heads": attention.num_heads,
        "num_kv_heads": attention.num_kv_heads,
        "dim": attention.embed_dim,
        "head_dim": attention.head_dim,
    }
    state = tune_to_hf(model.state_dict(), **dims)
    header: dict[str, object] = {}
    offset = 0
    for name, tensor in state.items():
        size = tensor.numel() * 2  # bf16
        header[name] = {
            "dtype": "BF16",
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    folder.mkdir(parents=True)
    with open(folder / "model.safetensors", "wb") as file:
        file.write(struct.pack("<Q", len(raw)) + raw)
        file.truncate(8 + len(raw) + offset)  # a hole: no blocks written
    config = {
        "num_attention_heads": dims["num_heads"],
        "num_key_value_heads": dims["num_kv_heads"],
        "hidden_size": dims["dim"],
        "head_dim": dims["head_dim"],
        "num_hidden_layers": len(model.layers),
        "vocab_size": model.tok_embeddings.num_embeddings,
        "tie_word_embeddings": "lm_head.weight" not in state,
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_preflight_matches_a_real_size_checkpoint_by_its_headers_alone(tmp_path: Path) -> None:
    import torchtune

    folder = sparse_hf_checkpoint(
        tmp_path / "Llama-3.2-1B", "torchtune.models.llama3_2.llama3_2_1b"
    )
    assert (folder / "model.safetensors").stat().st_size > 2 * 10**9  # its apparent size
    assert (folder / "model.safetensors").stat().st_blocks * 512 < 10**6  # on disk
    recipes = Path(torchtune.__file__).parent.parent / "recipes" / "configs"
    config = yaml.safe_load((recipes / "llama3_2/1B_lora_single_device.yaml").read_text())
    config["checkpointer"]["checkpoint_dir"] = str(folder)
    right = tmp_path / "right.yaml"
    right.write_text(yaml.safe_dump(config))
    config["model"]["_component_"] = "torchtune.models.llama3_2.lora_llama3_2_3b"
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(yaml.safe_dump(config))
    recipe = "lora_finetune_single_device"
    outcomes = shared_executor().run(
        [Request(0, recipe, str(path), str(tmp_path), Mode.SHAPE) for path in (right, wrong)]
    )
    assert outcomes[0].status is Status.PASSED, outcomes[0]
    assert "checkpointer: weights shaped from model" not in outcomes[0].standins  # real headers
    assert (outcomes[1].status, outcomes[1].error) == (Status.FAILED, "RuntimeError"), outcomes[1]
    assert "size mismatch" in outcomes[1].message or "Missing key" in outcomes[1].message


@pytest.mark.parametrize("checkpoint_dir", ["here", "/nowhere/model"])
def test_an_output_folder_inside_the_checkpoint_folder_fails_as_torchtune_says(
    assets: Assets, checkpoint_dir: str
) -> None:
    # The run here writes elsewhere; torchtune's own check still sees the folders as written.
    folder = str(assets.root / "assets" / "ckpt") if checkpoint_dir == "here" else checkpoint_dir
    outcome = execute(
        assets,
        "full",
        (("checkpointer", "checkpoint_dir"), folder),
        (("output_dir",), folder + "/runs/a"),
    )
    assert (outcome.status, outcome.error) == (Status.FAILED, "ValueError"), outcome
    assert "cannot be the same as or a subdirectory" in outcome.message
    assert outcome.building == ("checkpointer",)
    beside = execute(
        assets,
        "full",
        (("checkpointer", "checkpoint_dir"), folder),
        (("output_dir",), folder + "-runs/a"),
    )
    assert beside.status is Status.PASSED, beside


def test_an_output_folder_built_on_another_key_is_written_elsewhere(
    assets: Assets, tmp_path: Path
) -> None:
    mine = tmp_path / "scratch"
    outcome = execute(
        assets,
        "full",
        (("scratch",), str(mine)),
        (("output_dir",), "${scratch}/run_000"),
        (("metric_logger", "log_dir"), "${oc.env:TTCW_UNSET_FOLDER," + str(mine) + "}/logs"),
    )
    assert outcome.status is Status.PASSED, outcome
    assert not mine.exists()  # the run never writes where the real run will


def test_an_environment_variable_with_a_default_is_not_unset(assets: Assets) -> None:
    with_default = "${oc.env:TTCW_UNSET_PATH," + str(assets.root) + "/assets/ckpt}"
    outcome = execute(assets, "full", (("checkpointer", "checkpoint_dir"), with_default))
    assert outcome.status is Status.PASSED and outcome.standins == (), outcome
    without = execute(
        assets,
        "full",
        (("checkpointer", "checkpoint_dir"), "${oc.env:TTCW_UNSET_PATH}"),
        (("model", "num_layers"), "oops"),
    )
    assert without.status is Status.UNVERIFIED, without
    assert "${oc.env:TTCW_UNSET_PATH} not set here" in without.message


def test_resuming_without_the_earlier_run_is_not_checked_rather_than_failed(
    assets: Assets,
) -> None:
    outcome = execute(
        assets,
        "full",
        (("checkpointer", "checkpoint_dir"), "/nowhere/model"),
        (("resume_from_checkpoint",), True),
        (("checkpointer", "resume_from_checkpoint"), True),
    )
    assert outcome.status is Status.NOT_CHECKED and "earlier run" in outcome.message, outcome


def test_a_failure_in_a_list_element_is_named_by_its_index(assets: Assets) -> None:
    fine = {"_component_": "torchtune.datasets.alpaca_dataset", "source": "tatsu-lab/alpaca"}
    misspelt = {"_component_": "torchtune.datasets.alpaca_datset"}
    outcome = execute(assets, "full", (("dataset",), [fine, misspelt]))
    assert outcome.status is Status.FAILED, outcome
    assert outcome.building == ("dataset", 1)


def test_a_dead_worker_leaves_runs_not_checked_and_the_next_run_restarts_it(
    assets: Assets, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from torchtune_config_writer.validation.execution.client import Executor

    executor = Executor()
    try:
        monkeypatch.chdir(assets.root)  # a relative config, as a user in the folder names it
        relative = str(assets.bases["full"].relative_to(assets.root))
        request = Request(0, RECIPES["full"], relative, ".")
        executor.run([])  # started and ready
        assert executor._process is not None
        executor._process.kill()
        (dead,) = executor.run([request])
        assert dead.status is Status.NOT_CHECKED and "worker exited" in dead.message
        monkeypatch.chdir(tmp_path)  # the same relative name here is another file: not cached
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(assets.bases["full"].read_text())
        executor.forget()
        (again,) = executor.run([Request(0, RECIPES["full"], relative, str(assets.root))])
        assert again.status is Status.PASSED, again
    finally:
        executor.close()
    assert executor._process is None
