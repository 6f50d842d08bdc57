"""The SLURM job array on a real cluster: every run trains with the real `tune run`, a study that
did not finish is resubmitted without training finished runs again, large studies are split into
arrays the cluster accepts, and the script's refusals hold under `sbatch`.

The cluster is one node on localhost (tests/slurm_cluster.py), installed and started here; the
tests skip with the reason where it cannot run.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import generate

from .conftest import mapping_of
from .slurm_cluster import Cluster, cluster_fixture

pytestmark = pytest.mark.needs_slurm

MAX_ARRAY_SIZE = 4  # the cluster's MaxArraySize: small, so that splitting is tested for real
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


cluster = cluster_fixture(cpus=4, max_array_size=MAX_ARRAY_SIZE)


def study(folder: Path, base: Path, recipe: str, variables: str, controls: str, slurm: str) -> Path:
    """A generated experiment on a tiny base (copied beside it) with a SLURM array."""
    folder.mkdir(parents=True)
    shutil.copyfile(base, folder / "base.yaml")
    (folder / "experiment.yaml").write_text(
        f"experiment:\n  name: {folder.name}\n  framework: torchtune\n"
        f"framework_config:\n  base_config_file: base.yaml\n  recipe: {recipe}\n"
        f"variables:\n{variables}controls:\n{controls}launch:\n  slurm:\n{slurm}"
    )
    generate(folder)
    return folder


def logs_of(run: dict[str, object]) -> list[Path]:
    return sorted(Path(str(run["output_dir"])).glob("slurm_*.log"))


def logged_config(log: Path) -> dict[str, object]:
    """The config torchtune logged when the recipe started ("... with resolved config:")."""
    text = log.read_text()
    start = text.index("with resolved config:") + len("with resolved config:")
    body = text[start:].lstrip("\n").split("\n\n", 1)[0]  # the YAML ends at a blank line
    config: dict[str, object] = yaml.safe_load(body)
    return config


def final_checkpoint(run: dict[str, object]) -> Path:
    return Path(str(run["output_dir"])) / "epoch_0"


@pytest.mark.needs_torch
def test_every_run_trains_under_slurm_and_a_resubmission_trains_only_what_did_not_finish(
    cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from tests.oracle.assets import FULL, LORA, RECIPES, build_assets

    root = tmp_path_factory.mktemp("slurm")
    assets = build_assets(root / "tiny")
    fail = root / "make_run_1_fail"
    fail.touch()
    lora = study(
        root / "lora_grid",
        assets.bases[LORA],
        RECIPES[LORA],
        "  model.lora_rank: [2, 4]\n  optimizer.lr: [0.001, 0.002]\n",
        f"  output_dir: {root}/out/lora_grid\n",
        # One task made to fail, on the first submission only.
        f"    setup:\n      - 'if [[ -e {fail} && $run == 1 ]]; then echo made to fail; exit 3; fi'"
        "\n",
    )
    full = study(
        root / "full_linked",
        assets.bases[FULL],
        RECIPES[FULL],
        "  schedule:\n    max_steps_per_epoch: [1, 2]\n    gradient_accumulation_steps: [1, 2]\n",
        f"  output_dir: {root}/out/full_linked/{{run_id}}_steps{{max_steps_per_epoch}}\n",
        "    {}\n",
    )
    env = {**OFFLINE, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    jobs = {
        folder: cluster.sbatch("configs/slurm_array.sh", cwd=folder, env=env)
        for folder in (lora, full)
    }
    outcomes = {folder: cluster.wait(job) for folder, job in jobs.items()}
    assert outcomes[full] == {0: ("COMPLETED", 0), 1: ("COMPLETED", 0)}
    assert outcomes[lora] == {
        0: ("COMPLETED", 0),
        1: ("FAILED", 3),
        2: ("COMPLETED", 0),
        3: ("COMPLETED", 0),
    }
    for folder in (lora, full):
        for index, run in enumerate(mapping_of(folder)):
            if folder is lora and index == 1:
                assert not final_checkpoint(run).exists()
                continue
            # Its checkpoint in its own folder, and torchtune ran it with its own values.
            assert any(final_checkpoint(run).iterdir()), run
            (log,) = logs_of(run)
            logged = logged_config(log)
            assert logged["output_dir"] == run["output_dir"]
            for name, value in dict(run["params"]).items():  # type: ignore[call-overload]
                node: object = logged
                for part in name.split("."):
                    node = node[part]  # type: ignore[index]
                assert node == value, (log, name)
    # Nothing of the runs' outputs lands in the committed folders.
    for folder in (lora, full):
        assert not [p for p in folder.rglob("*") if p.suffix in (".log", ".out", ".pt")]

    # Resubmitted: only the run that did not finish trains again.
    finished = {
        index: sorted((p.name, p.stat().st_mtime_ns) for p in final_checkpoint(run).iterdir())
        for index, run in enumerate(mapping_of(lora))
        if index != 1
    }
    fail.unlink()
    again = cluster.wait(cluster.sbatch("configs/slurm_array.sh", cwd=lora, env=env))
    assert again == {index: ("COMPLETED", 0) for index in range(4)}
    runs = mapping_of(lora)
    assert any(final_checkpoint(runs[1]).iterdir())
    for index, files in finished.items():
        assert (
            sorted((p.name, p.stat().st_mtime_ns) for p in final_checkpoint(runs[index]).iterdir())
            == files
        )
        assert "finished already" in logs_of(runs[index])[-1].read_text()
    assert "with resolved config:" in logs_of(runs[1])[-1].read_text()


@pytest.fixture
def stand_in_tune(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """An environment whose `tune` only records which config it was given, one line a call."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    (bin_dir / "tune").write_text(f'#!/bin/bash\necho "${{@: -1}}" >> {calls}\n')
    (bin_dir / "tune").chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, calls


def seeds_study(folder: Path, tmp_path: Path, runs: int) -> Path:
    folder.mkdir(parents=True)
    base = folder / "base.yaml"
    base.write_text(f"output_dir: {tmp_path}/out/{folder.name}\nseed: 0\nepochs: 1\n")
    seeds = ", ".join(map(str, range(runs)))
    (folder / "experiment.yaml").write_text(
        f"experiment:\n  name: {folder.name}\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: full_finetune_single_device\n"
        f"variables:\n  seed: [{seeds}]\n"
        f"launch:\n  slurm:\n    max_array_size: {MAX_ARRAY_SIZE}\n"
    )
    generate(folder)
    return folder


def test_a_study_larger_than_the_clusters_arrays_is_submitted_in_parts_covering_each_run_once(
    cluster: Cluster, tmp_path: Path, stand_in_tune: tuple[dict[str, str], Path]
) -> None:
    env, calls = stand_in_tune
    folder = seeds_study(tmp_path / "big", tmp_path, 10)
    script = (folder / "configs" / "slurm_array.sh").read_text()
    commands = re.findall(r"^#   sbatch (.*) configs/slurm_array\.sh$", script, re.M)
    assert len(commands) == 3
    # The whole study in one array is refused by this cluster, as Slurm refuses it.
    whole = cluster.run("sbatch", "--array=0-9", "configs/slurm_array.sh", cwd=folder)
    assert whole.returncode != 0 and "Invalid job array specification" in whole.stderr
    for command in commands:
        job = cluster.sbatch(*command.split(), "configs/slurm_array.sh", cwd=folder, env=env)
        assert set(cluster.wait(job).values()) == {("COMPLETED", 0)}
    assert sorted(calls.read_text().split()) == [f"configs/run_{n:03d}.yaml" for n in range(10)]


def test_the_script_refuses_another_folder_and_tasks_past_the_last_run_under_sbatch(
    cluster: Cluster, tmp_path: Path, stand_in_tune: tuple[dict[str, str], Path]
) -> None:
    env, calls = stand_in_tune
    folder = seeds_study(tmp_path / "small", tmp_path, 2)
    script = str(folder / "configs" / "slurm_array.sh")
    submitted = tmp_path / "elsewhere"
    submitted.mkdir()
    job = cluster.sbatch(script, cwd=submitted, env=env)
    assert cluster.wait(job) == {0: ("FAILED", 2), 1: ("FAILED", 2)}
    # sbatch sends a task's output to /dev/null: the refusal is in slurm-<job>_<task>.out where
    # it was submitted (docs/slurm.md), and nothing else is written anywhere.
    refusal = (
        f"error: {submitted} is not the folder of the experiment small: cd to the folder of the "
        "experiment file and run sbatch configs/slurm_array.sh\n"
    )
    assert {p.name: p.read_text() for p in submitted.iterdir()} == {
        f"slurm-{job}_0.out": refusal,
        f"slurm-{job}_1.out": refusal,
    }
    assert not (tmp_path / "out").exists()
    job = cluster.sbatch("--array=0-3", "configs/slurm_array.sh", cwd=folder, env=env)
    past = cluster.wait(job)
    assert past == {0: ("COMPLETED", 0), 1: ("COMPLETED", 0), 2: ("FAILED", 2), 3: ("FAILED", 2)}
    assert sorted(calls.read_text().split()) == ["configs/run_000.yaml", "configs/run_001.yaml"]
    # The tasks that trained left no such file: only the two that stopped did.
    assert sorted(p.name for p in folder.glob("slurm-*")) == [
        f"slurm-{job}_2.out",
        f"slurm-{job}_3.out",
    ]
    assert (folder / f"slurm-{job}_3.out").read_text() == (
        "error: array task 3 has no run: small has runs 0 to 1\n"
    )


def test_after_runs_retire_and_others_join_the_arrays_hold_exactly_the_ids_that_exist(
    cluster: Cluster, tmp_path: Path, stand_in_tune: tuple[dict[str, str], Path]
) -> None:
    env, calls = stand_in_tune
    folder = seeds_study(tmp_path / "grown", tmp_path, 6)
    experiment = folder / "experiment.yaml"
    # Seeds 1 and 4 leave (run_001, run_004 retire), seeds 10 and 11 join (run_006, run_007).
    text = experiment.read_text().replace("[0, 1, 2, 3, 4, 5]", "[0, 2, 3, 5, 10, 11]")
    experiment.write_text(text)
    generate(folder)
    existing = ["run_000", "run_002", "run_003", "run_005", "run_006", "run_007"]
    assert sorted(p.stem for p in (folder / "configs").glob("run_0*.yaml")) == existing
    script = (folder / "configs" / "slurm_array.sh").read_text()
    commands = re.findall(r"^#   sbatch (.*) configs/slurm_array\.sh$", script, re.M)
    assert commands == ["--array=0,2-3", "--array=0-2 --export=ALL,TCW_RUN_OFFSET=5"]
    for command in commands:
        job = cluster.sbatch(*command.split(), "configs/slurm_array.sh", cwd=folder, env=env)
        assert set(cluster.wait(job).values()) == {("COMPLETED", 0)}
    assert sorted(calls.read_text().split()) == [f"configs/{run}.yaml" for run in existing]
    retired = cluster.wait(
        cluster.sbatch("--array=1", "configs/slurm_array.sh", cwd=folder, env=env)
    )
    assert retired == {1: ("FAILED", 2)}  # a retired id's task trains nothing


def test_each_evaluation_task_starts_after_its_training_task_succeeded(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The evaluation array chained with --dependency=aftercorr: on the training array, with a
    stand-in `tune` (eleuther_eval's lm_eval cannot be installed here, see test_evaluation.py):
    training writes the final checkpoint, and run_001's training fails."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    (bin_dir / "tune").write_text(
        "#!/bin/bash\n"
        'config="${@: -1}"\n'
        f'echo "$(date +%s.%N) $config" >> {calls}\n'
        'case "$config" in\n'
        "  *eval_run_*) exit 0 ;;\n"
        "  *run_001.yaml) exit 1 ;;\n"
        "esac\n"
        "out=$(sed -n 's/^output_dir: //p' \"$config\")\n"
        'mkdir -p "$out/epoch_0" && touch "$out/epoch_0/model-00001-of-00001.bin"\n'
    )
    (bin_dir / "tune").chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    folder = tmp_path / "evaluated"
    folder.mkdir()
    (folder / "base.yaml").write_text(
        f"output_dir: {tmp_path}/out\nseed: 0\nepochs: 1\n"
        "model: {_component_: torchtune.models.llama2.llama2}\n"
        "checkpointer:\n  _component_: torchtune.training.FullModelTorchTuneCheckpointer\n"
        "  checkpoint_dir: /ckpt\n  checkpoint_files: [model.pt]\n  output_dir: ${output_dir}\n"
        "  model_type: LLAMA2\n"
    )
    (folder / "experiment.yaml").write_text(
        "experiment:\n  name: evaluated\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: full_finetune_single_device\n"
        "variables:\n  seed: [0, 1, 2]\n"
        "launch:\n  slurm: {}\n"
        "evaluation:\n  tasks: [local_task]\n"
    )
    generate(folder)
    training = cluster.sbatch("configs/slurm_array.sh", cwd=folder, env=env)
    evaluating = cluster.sbatch(
        f"--dependency=aftercorr:{training}", "configs/slurm_eval_array.sh", cwd=folder, env=env
    )
    assert cluster.wait(training) == {
        0: ("COMPLETED", 0),
        1: ("FAILED", 1),
        2: ("COMPLETED", 0),
    }
    states = cluster.wait(evaluating)
    assert states[0] == ("COMPLETED", 0) and states[2] == ("COMPLETED", 0)
    assert states[1][0] != "COMPLETED"  # its training failed: never evaluated
    started = {line.split()[1]: float(line.split()[0]) for line in calls.read_text().splitlines()}
    assert "configs/eval_run_001.yaml" not in started
    for run in ("run_000", "run_002"):
        assert started[f"configs/eval_{run}.yaml"] > started[f"configs/{run}.yaml"]
