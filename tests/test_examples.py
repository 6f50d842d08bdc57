"""The seed's examples generate what the seed states, and every config passes `tune validate`."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from torchtune_config_writer import generate
from torchtune_config_writer.validation.validating import validate

from .conftest import EXAMPLES, assert_same_files, snapshot

EXAMPLE_NAMES = sorted(path.parent.name for path in EXAMPLES.glob("*/experiment.yaml"))


def load_runs(folder: Path) -> list[dict]:
    files = sorted(folder.glob("configs/run_[0-9]*.yaml"))
    return [OmegaConf.to_container(OmegaConf.load(path), resolve=False) for path in files]


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_committed_example_folder_is_exactly_what_generate_writes(
    name: str, tmp_path: Path
) -> None:
    copy = tmp_path / name
    shutil.copytree(EXAMPLES / name, copy)
    shutil.rmtree(copy / "configs")
    generate(copy)
    assert_same_files(snapshot(copy), snapshot(EXAMPLES / name))


def test_example_1_sweeps_lora_rank_with_the_float_learning_rate() -> None:
    runs = load_runs(EXAMPLES / "lora_rank_study")
    assert [run["model"]["lora_rank"] for run in runs] == [8, 16, 32, 64]
    for index, run in enumerate(runs):
        assert run["optimizer"]["lr"] == 0.0003 and isinstance(run["optimizer"]["lr"], float)
        assert run["model"]["lora_alpha"] == 16
        assert (run["epochs"], run["batch_size"]) == (3, 4)
        # The dataset mapping merges: its component stays, the two keys are set.
        assert run["dataset"] == {
            "_component_": "torchtune.datasets.alpaca_cleaned_dataset",
            "packed": True,
            "data_files": "/scratch/data/alpaca.json",
        }
        assert run["output_dir"] == f"/scratch/results/lora_study/run_{index:03d}"
        assert run["checkpointer"]["output_dir"] == "${output_dir}"


def test_example_2_is_a_3_by_3_grid_with_the_last_variable_fastest() -> None:
    runs = load_runs(EXAMPLES / "lr_batch_sweep")
    grid = [(run["optimizer"]["lr"], run["batch_size"]) for run in runs]
    assert grid == [(lr, bs) for lr in (1e-4, 3e-4, 5e-4) for bs in (2, 4, 8)]
    assert {(run["epochs"], run["seed"]) for run in runs} == {(5, 42)}
    # The custom base's own choices survive.
    assert {run["compile"] for run in runs} == {True}
    assert {run["tokenizer"]["max_seq_len"] for run in runs} == {2048}


def test_example_3_switches_the_logger_and_keeps_its_interpolation() -> None:
    runs = load_runs(EXAMPLES / "cap_viz_test")
    assert [run["model"]["lora_rank"] for run in runs] == [8, 16]
    for run in runs:
        assert run["metric_logger"] == {
            "_component_": "torchtune.training.metric_logging.WandBLogger",
            "log_dir": "${output_dir}/logs",
            "project": "capitalization",
            "mode": "offline",
        }
        assert run["dataset"]["field"] == "train"
        assert (run["epochs"], run["batch_size"]) == (2, 16)


def test_run_mapping_lists_each_run_with_its_values() -> None:
    mapping = OmegaConf.to_container(
        OmegaConf.load(EXAMPLES / "lr_batch_sweep/configs/run_mapping.yaml")
    )
    assert mapping["experiment"] == "lr_batch_sweep"
    assert mapping["base"] == "my_gpu_optimized.yaml"
    assert mapping["runs"][4] == {
        "id": "run_004",
        "params": {"learning_rate": 0.0003, "batch_size": 4},
        "output_dir": "/scratch/torchtune/llama3_2_1B_lora/run_004",
    }


SEED_EXAMPLES = ("lora_rank_study", "lr_batch_sweep", "cap_viz_test")
SEED_CONFIGS = sorted(
    path for name in SEED_EXAMPLES for path in EXAMPLES.glob(f"{name}/configs/run_[0-9]*.yaml")
)


@pytest.mark.needs_torch
def test_the_real_tune_validate_accepts_every_seed_example_config() -> None:
    assert len(SEED_CONFIGS) == 15
    tune = Path(sys.executable).with_name("tune")

    def validate(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tune), "validate", str(path)], capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=2) as pool:  # ~5 s each, nearly all importing torch
        results = list(pool.map(validate, SEED_CONFIGS))
    for path, result in zip(SEED_CONFIGS, results, strict=True):
        assert result.returncode == 0, (path, result.stderr)
        assert "Config is well-formed!" in result.stdout


@pytest.mark.needs_torch
def test_every_other_example_config_is_valid() -> None:
    # In one process: stage 1 is tune validate's own check, with its verdict (test_validate.py).
    others = [
        path for path in EXAMPLES.glob("*/experiment.yaml") if path.parent.name not in SEED_EXAMPLES
    ]
    assert others
    result = validate(others)
    assert len(result.configs) == 12 + 8 + 12 + 2 + 2  # + batch_design, lr_search, lora_eval_study
    training = [item for item in result.configs if not item.config.name.startswith("eval_")]
    assert [(item.config.name, item.tune_validate, item.findings) for item in training] == [
        (item.config.name, "passed", ()) for item in training
    ]
    assert all(item.execution.startswith("values: ") for item in training)
    # eleuther_eval imports lm_eval, which is not installed here: its runs are unverified.
    evaluations = [item for item in result.configs if item not in training]
    assert [item.status for item in evaluations] == ["unverified", "unverified"]
    for item in evaluations:
        (finding,) = item.findings
        assert finding.check == "execution" and "No module named 'lm_eval'" in finding.message


# What version 0.1 generated for the seed's examples, before the features beyond the seed: the
# run configs must stay byte for byte the same (sha256, first 16 hex digits).
SEED_RUN_CONFIGS_0_1 = {
    "lora_rank_study/run_000.yaml": "e2e89c855c463f71",
    "lora_rank_study/run_001.yaml": "02e04ad70d75e2eb",
    "lora_rank_study/run_002.yaml": "350c22d30e6aa60c",
    "lora_rank_study/run_003.yaml": "077e2f5b5728f75b",
    "lr_batch_sweep/run_000.yaml": "f3b9be2a8ce97147",
    "lr_batch_sweep/run_001.yaml": "a13ace5d7191da83",
    "lr_batch_sweep/run_002.yaml": "71114a621acf7937",
    "lr_batch_sweep/run_003.yaml": "040c67cca434e09a",
    "lr_batch_sweep/run_004.yaml": "0cae4836240fd53c",
    "lr_batch_sweep/run_005.yaml": "d19a109ddae1d489",
    "lr_batch_sweep/run_006.yaml": "a33c7968645063d9",
    "lr_batch_sweep/run_007.yaml": "aec72a17465156c4",
    "lr_batch_sweep/run_008.yaml": "b41ffc65c3b4eb4d",
    "cap_viz_test/run_000.yaml": "1b4a5c77828ebd5b",
    "cap_viz_test/run_001.yaml": "69b6024f8758f9bb",
}


# Lines added to the seed's examples since 0.1, taken out again to compare with what 0.1
# generated: lora_rank_study packs without a tokenizer max_seq_len, which `tune run` refuses.
SEED_EXAMPLE_FIXES = {
    "lora_rank_study": "  tokenizer:\n    max_seq_len: 2048  # packing needs a fixed length (the "
    "recipe config has none)\n",
}


def test_the_seed_examples_still_generate_their_0_1_run_configs(tmp_path: Path) -> None:
    for name in SEED_EXAMPLES:
        shutil.copytree(EXAMPLES / name, tmp_path / name)
        shutil.rmtree(tmp_path / name / "configs")
        experiment = tmp_path / name / "experiment.yaml"
        fix = SEED_EXAMPLE_FIXES.get(name, "")
        assert fix in experiment.read_text()
        experiment.write_text(experiment.read_text().replace(fix, ""))
        generate(tmp_path / name)
    files = {
        f"{path.parent.parent.name}/{path.name}": path
        for path in sorted(tmp_path.glob("*/configs/run_[0-9]*.yaml"))
    }
    generated = {name: hashlib.sha256(p.read_bytes()).hexdigest()[:16] for name, p in files.items()}
    changed = sorted(name for name in files if generated[name] != SEED_RUN_CONFIGS_0_1.get(name))
    assert generated.keys() == SEED_RUN_CONFIGS_0_1.keys()
    # Only hashes of 0.1 are kept: show what changed against the committed example (whose
    # lora_rank_study files carry the fix above as well).
    committed = {name: (EXAMPLES / name.replace("/", "/configs/")).read_bytes() for name in changed}
    assert_same_files({name: files[name].read_bytes() for name in changed}, committed)
    assert not changed, f"{changed}: as committed, yet not as 0.1 generated them"


def readme_experiment() -> str:
    """The experiment the README shows (the first YAML block under "An experiment")."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("## An experiment", 1)[1]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]


def test_the_readmes_experiment_is_the_bundled_example_in_its_values() -> None:
    shown = OmegaConf.create(readme_experiment())
    bundled = OmegaConf.load(EXAMPLES / "lora_rank_study" / "experiment.yaml")
    for key in ("framework_config", "variables", "controls"):
        for name, value in shown[key].items():
            assert bundled[key][name] == value, (key, name)


@pytest.mark.needs_torch
def test_the_readmes_experiment_generates_configs_that_validate(tmp_path: Path) -> None:
    path = tmp_path / "study" / "experiment.yaml"
    path.parent.mkdir()
    path.write_text(readme_experiment(), encoding="utf-8")
    shutil.copytree(EXAMPLES / "lora_rank_study" / "configs", path.parent / "configs")
    generate(path)
    result = validate([path])
    assert len(result.configs) == 4
    assert [(item.status, item.findings) for item in result.configs] == [("valid", ())] * 4


def shown_commands() -> list[tuple[str, str, str]]:
    """Each command the README and docs show with its output: (file, command, output)."""
    pair = re.compile(r"```bash\n([^`]*?)```\n\n```(?:text|json)?\n(.*?)```", re.S)
    repo = Path(__file__).resolve().parent.parent
    found = []
    for page in [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]:
        for match in pair.finditer(page.read_text(encoding="utf-8")):
            lines = [line for line in match[1].splitlines() if line and not line.startswith("#")]
            command = lines[-1].rpartition("&& ")[2]  # `pip install . && …`: the tool's part
            found.append((page.name, command, match[2]))
    return found


@pytest.mark.parametrize(("page", "command", "output"), shown_commands())
def test_every_command_the_docs_show_prints_what_they_show(
    page: str, command: str, output: str, tmp_path: Path
) -> None:
    assert command.startswith("torchtune-config-writer "), (page, command)
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    argv = [sys.executable, "-m", "torchtune_config_writer", *command.split()[1:]]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout + done.stderr == output, (page, command)
