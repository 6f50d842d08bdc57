"""Recipe names resolve to what `tune cp` copies, without torch; `recipes` is `tune ls`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.errors import display_path
from torchtune_config_writer.workspace.layout import LOCK_FILE

from .conftest import (
    RECIPE,
    CliResult,
    experiment_text,
    python_without_torch,
    snapshot,
    torchtune_version,
)

TUNE = str(Path(sys.executable).with_name("tune"))


@pytest.mark.needs_torch
def test_recorded_base_holds_exactly_the_bytes_tune_cp_writes(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    path = write_experiment(experiment_text())
    generate(path)
    subprocess.run(
        [TUNE, "cp", RECIPE, str(tmp_path / "copied.yaml")], check=True, capture_output=True
    )
    lock = (path.parent / "configs" / LOCK_FILE).read_bytes()
    header, _, recorded = lock.partition(b"follow. Refresh with `generate --refresh-base`.\n")
    assert recorded == (tmp_path / "copied.yaml").read_bytes()
    assert header.splitlines()[1:3] == [
        f"# recipe: {RECIPE}".encode(),
        f"# torchtune: {torchtune_version()}".encode(),
    ]


@pytest.mark.needs_torchtune
def test_generate_and_recipes_never_import_torch(write_experiment: Callable[..., Path]) -> None:
    path = write_experiment(experiment_text(variables="lora_rank: [8, 16]"))
    script = textwrap.dedent(f"""
        import sys
        from torchtune_config_writer.cli import main
        assert main(["generate", {str(path)!r}, "--refresh-base"]) == 0
        assert main(["recipes", "lora"]) == 0
        heavy = ("torch", "torchtune", "torchao")
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
        assert not loaded, loaded
    """)
    result = python_without_torch(script)
    assert result.returncode == 0, result.stderr


@pytest.mark.needs_torch
def test_recipes_lists_what_tune_ls_lists(cli: Callable[..., CliResult]) -> None:
    tune_ls = subprocess.run([TUNE, "ls"], capture_output=True, text=True, check=True).stdout
    expected = [line.rstrip() for line in tune_ls.splitlines() if not line.rstrip().endswith("<>")]
    result = cli("recipes")
    assert result.code == 0
    assert result.out.splitlines() == expected


@pytest.mark.needs_torchtune
def test_recipes_filters_by_substring_or_glob(cli: Callable[..., CliResult]) -> None:
    assert cli("recipes", "3_2/1B_LORA").out.splitlines()[1:] == [
        "lora_finetune_single_device              llama3_2/1B_lora_single_device",
        "lora_finetune_distributed                llama3_2/1B_lora",
    ]
    assert cli("recipes", "llama3_2/*qlora*").out.splitlines()[1:] == [
        "lora_finetune_single_device              llama3_2/1B_qlora_single_device",
        "                                         llama3_2/3B_qlora_single_device",
    ]


def test_unknown_recipe_suggests_close_names(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(experiment_text(base="base_config: llama3_2/1B_lora_single"))
    result = cli("generate", path)
    assert result.code == 2
    assert result.err.startswith(
        f"error: {display_path(path)}:5:3: 'llama3_2/1B_lora_single' is not a torchtune"
    )
    assert "did you mean 'llama3_2/1B_lora_single_device'" in result.err


@pytest.mark.needs_torchtune
@pytest.mark.slow
def test_same_bytes_under_other_hash_seeds_locales_and_working_folders(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    text = experiment_text(
        variables="lora_rank: [8, 16]\nlearning_rate: [1e-4, 3e-4]",
        controls="dataset: {data_files: /data/ünïcode.json}",
    )
    folders = []
    for index, (seed, locale) in enumerate([("0", "C"), ("1234", "C.UTF-8"), ("random", "POSIX")]):
        path = write_experiment(text, folder=f"checkout{index}/exp")
        env = {**os.environ, "PYTHONHASHSEED": seed, "LC_ALL": locale, "LANG": locale}
        subprocess.run(
            [sys.executable, "-m", "torchtune_config_writer", "generate", str(path)],
            check=True,
            capture_output=True,
            env=env,
            cwd=tmp_path if index else path.parent,
        )
        folders.append(snapshot(path.parent))
    assert folders[0] == folders[1] == folders[2]


@pytest.mark.needs_torchtune
def test_recipes_as_json_lists_every_config_with_its_recipe_and_files(
    cli: Callable[..., CliResult],
) -> None:
    listed = cli("recipes", "llama3_2/*lora*").out.splitlines()[1:]
    result = cli("recipes", "--format", "json", "llama3_2/*lora*")
    assert result.code == 0 and result.err == ""
    report = json.loads(result.out)
    assert report["torchtune"] == torchtune_version()
    configs = report["configs"]
    assert [config["config"] for config in configs] == [line.split()[-1] for line in listed]
    recipe = ""
    for line, config in zip(listed, configs, strict=True):
        recipe = line[:40].strip() or recipe  # the text names a recipe on its first config
        assert config["recipe"] == recipe
        assert Path(config["config_file"]).is_file()
        assert config["recipe_file"].endswith(f"{recipe}.py")
