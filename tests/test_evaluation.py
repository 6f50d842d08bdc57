"""An evaluation config per run (torchtune's eleuther_eval recipe on the run's final weights).

lm_eval, which eleuther_eval needs to run, cannot be installed beside torchtune 0.6.1 here (its
transformers pin conflicts with the datasets torchtune brings), so the recipe itself never runs
in these tests. What they check with the real parts instead: the real `tune run` trains a tiny
run, and the evaluation config's checkpointer and model, built with torchtune's own
`config.instantiate`, load that run's final checkpoint exactly as eleuther_eval's setup does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import generate

from .conftest import RECIPE, CliResult, mapping_of, snapshot

HEAD = f"""\
experiment:
  name: study
  framework: torchtune
framework_config:
  base_config: {RECIPE}
"""
EVALUATION = "evaluation:\n  tasks: [truthfulqa_mc2]\n  limit: 10\n"


def eval_config(path: Path, run: str = "run_000") -> dict[str, object]:
    data: dict[str, object] = yaml.safe_load(
        (path.parent / "configs" / f"eval_{run}.yaml").read_text()
    )
    return data


def test_each_run_gets_an_eval_config_reading_its_final_merged_checkpoint(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        HEAD
        + "variables:\n  lora_rank: [8, 16]\n"
        + "controls:\n  epochs: 3\n  output_dir: /scratch/study\n"
        + EVALUATION
    )
    generate(path)
    for index, run in enumerate(("run_000", "run_001")):
        config = eval_config(path, run)
        assert config["model"] == {"_component_": "torchtune.models.llama3_2.llama3_2_1b"}
        checkpointer = config["checkpointer"]
        assert isinstance(checkpointer, dict)
        assert checkpointer["checkpoint_dir"] == f"/scratch/study/{run}/epoch_2"
        assert checkpointer["checkpoint_files"] == ["model-00001-of-00001.safetensors"]
        assert config["tasks"] == ["truthfulqa_mc2"] and config["limit"] == 10
        entry = mapping_of(path)[index]
        assert entry["eval_command"] == f"tune run eleuther_eval --config configs/eval_{run}.yaml"


def test_an_adapter_only_run_or_no_final_checkpoint_is_refused_at_evaluation(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(HEAD + "controls:\n  save_adapter_weights_only: true\n" + EVALUATION)
    before = snapshot(path.parent)
    result = cli("generate", path)
    assert result.code == 2 and "save_adapter_weights_only: true saves only the LoRA" in result.err
    assert "experiment.yaml:8:" in result.err  # at evaluation:
    assert snapshot(path.parent) == before
    path.write_text(HEAD + "variables:\n  epochs: [1, 0]\n" + EVALUATION)
    result = cli("generate", path)
    assert (
        result.code == 2 and "run_001: evaluation reads each run's final checkpoint" in result.err
    )


def test_the_eval_array_waits_for_each_training_task(
    write_experiment: Callable[..., Path],
) -> None:
    path = write_experiment(
        HEAD
        + "variables:\n  lora_rank: [8, 16, 32]\n"
        + "controls:\n  output_dir: /scratch/study\n"
        + "launch:\n  slurm: {}\n"
        + EVALUATION
    )
    generate(path)
    configs = path.parent / "configs"
    training = (configs / "slurm_array.sh").read_text()
    evaluating = (configs / "slurm_eval_array.sh").read_text()
    chain = (
        "job=$(sbatch --parsable configs/slurm_array.sh) && "
        "sbatch --dependency=aftercorr:$job configs/slurm_eval_array.sh"
    )
    assert chain in training and chain in evaluating
    assert "#SBATCH --kill-on-invalid-dep=yes\n" in evaluating
    assert "printf -v config 'configs/eval_run_%03d.yaml'" in evaluating
    assert 'exec tune run eleuther_eval --config "$config"\n' in evaluating


def test_drift_and_stale_eval_files_are_checked_like_run_files(
    write_experiment: Callable[..., Path], cli: Callable[..., CliResult]
) -> None:
    path = write_experiment(HEAD + "variables:\n  lora_rank: [8, 16]\n" + EVALUATION)
    generate(path)
    eval_file = path.parent / "configs" / "eval_run_001.yaml"
    eval_file.write_text(eval_file.read_text().replace("limit: 10", "limit: 11"))
    assert cli("check", path).code == 1
    path.write_text(HEAD + "variables:\n  lora_rank: [8, 16]\n")
    generate(path)
    assert not list((path.parent / "configs").glob("eval_*"))  # removed with the section


_LOAD_AS_ELEUTHER_EVAL_DOES = """
import sys
from omegaconf import OmegaConf
from torchtune import config, training

cfg = OmegaConf.load(sys.argv[1])
checkpointer = config.instantiate(cfg.checkpointer)
state = checkpointer.load_checkpoint()[training.MODEL_KEY]
model = config.instantiate(cfg.model)
model.load_state_dict(state)  # strict: every weight of the model, nothing else
print("loaded", len(state))
"""


@pytest.mark.needs_torch
@pytest.mark.parametrize("kind", ["lora", "full"])
def test_the_eval_config_loads_the_weights_the_real_tune_run_saved(
    tmp_path: Path, kind: str
) -> None:
    from tests.oracle.assets import build_assets
    from tests.oracle.runner import offline_env
    from torchtune_config_writer import validate

    assets = build_assets(tmp_path / "tiny")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "base.yaml").write_text(assets.bases[kind].read_text())
    recipe = "lora_finetune_single_device" if kind == "lora" else "full_finetune_single_device"
    (folder / "experiment.yaml").write_text(
        "experiment:\n  name: study\n  framework: torchtune\n"
        f"framework_config:\n  base_config_file: base.yaml\n  recipe: {recipe}\n"
        f"controls:\n  output_dir: {json.dumps(str(tmp_path / 'out'))}\n" + EVALUATION
    )
    generate(folder)
    env = offline_env(tmp_path)
    trained = subprocess.run(
        [
            str(Path(sys.executable).parent / "tune"),
            "run",
            recipe,
            "--config",
            "configs/run_000.yaml",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    loaded = subprocess.run(
        [sys.executable, "-c", _LOAD_AS_ELEUTHER_EVAL_DOES, "configs/eval_run_000.yaml"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loaded.returncode == 0 and "loaded" in loaded.stdout, loaded.stderr[-3000:]
    result = validate([folder / "configs" / "eval_run_000.yaml"])
    [config] = result.configs
    assert config.tune_validate == "passed"
    assert [f for f in config.findings if f.severity == "error"] == [], config.findings
