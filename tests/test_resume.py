"""A run stopped part-way resumes after its last whole epoch, and a task near its time limit
requeues itself: the generated SLURM script, run with bash.

The fast tests give the script the files torchtune 0.6.1 writes (``epoch_N/``,
``recipe_state/recipe_state.pt``) and a stand-in ``tune`` and ``scontrol`` that record their
arguments; the slow ones train for real with ``tune run``, stop a run mid-way with Slurm's signal
and resume it. (The real cluster's requeue is in tests/test_slurm.py.)
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from torchtune_config_writer import generate
from torchtune_config_writer.runs.catalog import read_catalog
from torchtune_config_writer.runs.status import study_status

from .conftest import experiment_text

SLURM = """\
launch:
  slurm:
    sbatch:
      time: "01:00:00"
"""


def stand_ins(tmp_path: Path, tune_body: str = "") -> tuple[Path, Path]:
    """A folder with a ``tune`` and an ``scontrol`` that record their arguments, one line per
    call, in the file returned; ``tune_body`` is more of ``tune``'s bash."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.txt"
    bin_dir.mkdir()
    for name, body in (("tune", tune_body), ("scontrol", "")):
        command = bin_dir / name
        command.write_text(f'#!/bin/bash\necho "{name} $*" >> "{calls}"\n{body}')
        command.chmod(0o755)
    return bin_dir, calls


def study(
    write_experiment: Callable[..., Path],
    tmp_path: Path,
    sbatch: str = SLURM,
    name: str = "exp",
    epochs: int = 2,
) -> Path:
    """Two LoRA runs, each in its own folder under ``out dir/`` (a space in it)."""
    out = tmp_path / name / "out dir"
    controls = f"epochs: {epochs}\noutput_dir: '{out}'"
    path = write_experiment(
        experiment_text(variables="lora_rank: [8, 16]", controls=controls) + sbatch,
        folder=name,
    )
    generate(path)
    return path.parent


def stopped_study(
    write_experiment: Callable[..., Path], tmp_path: Path, epochs: int = 2
) -> tuple[Path, Path, Path]:
    """:func:`study` with the stand-ins: its folder, the stand-ins' folder and their calls."""
    folder = study(write_experiment, tmp_path, epochs=epochs)
    return (folder, *stand_ins(tmp_path))


def output_dir(folder: Path, run: int) -> Path:
    mapping = yaml.safe_load((folder / "configs" / "run_mapping.yaml").read_text())
    return Path(mapping["runs"][run]["output_dir"])


def zip_bytes() -> bytes:
    """A whole file in torch.save's format: a zip archive."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as written:
        written.writestr("recipe_state/data.pkl", b"state")
    return archive.getvalue()


WHOLE = zip_bytes()


def save(path: Path, at: float, data: bytes = WHOLE) -> None:
    """A file torchtune wrote at time ``at``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (at, at))
    os.utime(path.parent, (at, at))


def start(
    folder: Path, bin_dir: Path, task: int = 0, extra: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """Array task ``task`` of job 41, as Slurm starts it, with ``bin_dir`` first on the PATH."""
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_ARRAY_JOB_ID": "41",
        "SLURM_ARRAY_TASK_ID": str(task),
        **(extra or {}),
    }
    return subprocess.Popen(
        ["bash", "configs/slurm_array.sh"],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_task(folder: Path, bin_dir: Path, task: int = 0) -> tuple[int, str]:
    """Run array task ``task`` to its end: its exit code and its log."""
    process = start(folder, bin_dir, task)
    process.communicate(timeout=60)
    logs = sorted(output_dir(folder, task).glob("slurm_41_*.log"))
    return process.returncode, "".join(log.read_text() for log in logs)


def tune_calls(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("tune ")]


def test_a_run_without_recipe_state_trains_from_the_start(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls = stand_ins(tmp_path)
    # An epoch saved but no recipe_state.pt: a one-epoch run, or a save cut short.
    save(output_dir(folder, 0) / "epoch_0" / "adapter_model.pt", 1_000)
    code, log = run_task(folder, bin_dir)
    assert code == 0, log
    assert tune_calls(calls) == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml"
    ]
    assert "resuming" not in log


def test_a_lora_run_resumes_with_its_last_whole_epochs_adapter(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path)
    out = output_dir(folder, 1)
    save(out / "epoch_0" / "adapter_model.pt", 1_000)
    save(out / "epoch_0" / "model-00001-of-00001.safetensors", 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001)
    code, log = run_task(folder, bin_dir, task=1)
    assert code == 0, log
    assert tune_calls(calls) == [
        "tune run lora_finetune_single_device --config configs/run_001.yaml "
        "resume_from_checkpoint=true checkpointer.recipe_checkpoint=null "
        "checkpointer.adapter_checkpoint=epoch_0/adapter_model.pt"
    ]
    assert "configs/run_001.yaml: resuming after epoch_0" in log


def test_a_save_cut_short_is_not_resumed_from_but_the_epoch_before_it_is(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path, epochs=20)
    out = output_dir(folder, 0)
    for epoch in (0, 1, 2, 10):  # 10 after 2: epochs compare as numbers, not as text
        save(out / f"epoch_{epoch}" / "adapter_model.pt", 1_000 + epoch)
    save(out / "recipe_state" / "recipe_state.pt", 1_010)
    # Killed while it saved epoch 11: newer than recipe_state.pt, so not whole.
    save(out / "epoch_11" / "adapter_model.pt", 1_020)
    code, log = run_task(folder, bin_dir)
    assert code == 0, log
    assert tune_calls(calls)[0].endswith(
        "checkpointer.adapter_checkpoint=epoch_10/adapter_model.pt"
    )


def test_a_full_finetune_resumes_from_the_epochs_weight_files_in_output_dir(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path)
    out = output_dir(folder, 0)
    for name in (
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "config.json",
    ):
        save(out / "epoch_0" / name, 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001)
    code, log = run_task(folder, bin_dir)
    assert code == 0, log
    # checkpoint_files is replaced whole (it may be a filename_format mapping in the config).
    assert tune_calls(calls) == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml "
        "resume_from_checkpoint=true checkpointer.recipe_checkpoint=null "
        "~checkpointer.checkpoint_files checkpointer.checkpoint_files=["
        "epoch_0/model-00001-of-00002.safetensors,epoch_0/model-00002-of-00002.safetensors]"
    ]


def test_an_epoch_without_weights_it_can_read_trains_from_the_start_and_says_why(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path)
    out = output_dir(folder, 0)
    save(out / "epoch_0" / "consolidated.pth", 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001)
    code, log = run_task(folder, bin_dir)
    assert code == 0, log
    assert tune_calls(calls) == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml"
    ]
    assert "epoch_0 holds no model-*-of-*.safetensors or .bin to resume from" in log


def test_a_run_whose_final_epoch_is_saved_is_never_resumed(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path)
    out = output_dir(folder, 0)
    save(out / "epoch_0" / "adapter_model.pt", 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001)  # stale: left by epoch 0
    save(out / "epoch_1" / "adapter_model.pt", 1_002)
    code, log = run_task(folder, bin_dir)
    assert code == 0 and not calls.exists()
    assert "finished already" in log


def test_status_says_where_a_stopped_run_resumes_and_what_it_loses_as_the_script_does(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder = study(write_experiment, tmp_path, epochs=5)
    for run, cut_short in ((0, False), (1, True)):
        out = output_dir(folder, run)
        save(out / "epoch_0" / "adapter_model.pt", 1_000)
        save(out / "epoch_1" / "adapter_model.pt", 1_010)
        save(out / "recipe_state" / "recipe_state.pt", 1_011)
        if cut_short:  # killed while saving epoch 2
            save(out / "epoch_2" / "adapter_model.pt", 1_020)
    said = {
        run.id: run.reason
        for run in study_status(read_catalog(folder).runs, folder, slurm=None).runs
    }
    assert said["run_000"].endswith(
        "(saved epoch_0, epoch_1; submitted again it resumes after epoch_1, losing the epoch it "
        "was in)"
    )
    assert said["run_001"].endswith(
        "(saved epoch_0, epoch_1, epoch_2; submitted again it resumes after epoch_1, losing the "
        "epoch it was in)"
    )
    # The script picks the same epochs.
    bin_dir, calls = stand_ins(tmp_path)
    for task in (0, 1):
        assert run_task(folder, bin_dir, task)[0] == 0
    assert [call.rsplit("=", 1)[-1] for call in tune_calls(calls)] == [
        "epoch_1/adapter_model.pt",
        "epoch_1/adapter_model.pt",
    ]


# A `tune` that saves an epoch (when asked) once it starts, says it is training, and trains
# until it is stopped, recording the signal that stopped it.
TRAINING = """\
trap 'echo "tune stopped by TERM" >> "{calls}"; exit 143' TERM
out=$(sed -n 's/^output_dir: //p' "$4" | tr -d "'")
if [[ -n $SAVE_EPOCH ]]; then
  mkdir -p "$out/epoch_$SAVE_EPOCH" "$out/recipe_state"
  touch "$out/epoch_$SAVE_EPOCH/adapter_model.pt"
  sleep 0.05
  if [[ -n $CUT_SHORT ]]; then  # still being written: its first bytes only
    head -c 10 "{whole}" > "$out/recipe_state/recipe_state.pt"
  else
    cp "{whole}" "$out/recipe_state/recipe_state.pt"
  fi
fi
echo training > "{started}"
for _ in $(seq 600); do sleep 0.1; [[ -e "{stop}" ]] && exit 0; done
exit 1
"""


def training_stand_ins(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    started, stop, whole = tmp_path / "started", tmp_path / "stop", tmp_path / "whole.pt"
    whole.write_bytes(WHOLE)
    bin_dir, calls = stand_ins(
        tmp_path,
        TRAINING.format(calls=tmp_path / "calls.txt", started=started, stop=stop, whole=whole),
    )
    return bin_dir, calls, started, stop


def until(ready: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_slurms_signal_after_a_saved_epoch_stops_training_and_requeues_the_task(
    write_experiment: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls, started, _ = training_stand_ins(tmp_path)
    monkeypatch.setenv("SAVE_EPOCH", "0")
    task = start(folder, bin_dir)
    until(started.exists)
    task.send_signal(signal.SIGUSR1)
    task.communicate(timeout=30)
    assert task.returncode == 0
    assert calls.read_text().splitlines() == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml",
        "tune stopped by TERM",
        "scontrol requeue 41_0",
    ]
    (log,) = output_dir(folder, 0).glob("slurm_41_0.log")
    assert "time limit near: stopping, and requeueing 41_0 to resume after epoch_0" in (
        log.read_text()
    )


def test_slurms_signal_before_any_epoch_is_saved_does_not_requeue_and_training_goes_on(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls, started, stop = training_stand_ins(tmp_path)
    task = start(folder, bin_dir)
    until(started.exists)
    task.send_signal(signal.SIGUSR1)
    until(lambda: "not requeued" in (output_dir(folder, 0) / "slurm_41_0.log").read_text())
    assert task.poll() is None  # still training: requeued, it would start the same epoch again
    stop.touch()
    task.communicate(timeout=30)
    assert task.returncode == 0
    assert "scontrol" not in calls.read_text() and "TERM" not in calls.read_text()


def test_slurms_signal_while_recipe_state_is_being_saved_waits_for_it_before_stopping(
    write_experiment: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls, started, _ = training_stand_ins(tmp_path)
    monkeypatch.setenv("SAVE_EPOCH", "0")
    monkeypatch.setenv("CUT_SHORT", "1")
    task = start(folder, bin_dir)
    until(started.exists)
    task.send_signal(signal.SIGUSR1)
    time.sleep(1.5)
    assert task.poll() is None and "scontrol" not in calls.read_text()  # waiting for the save
    state = output_dir(folder, 0) / "recipe_state" / "recipe_state.pt"
    state.write_bytes(WHOLE)  # the save ends
    task.communicate(timeout=30)
    assert task.returncode == 0
    assert calls.read_text().splitlines()[-2:] == ["tune stopped by TERM", "scontrol requeue 41_0"]


def test_a_recipe_state_cut_short_is_not_resumed_from(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder, bin_dir, calls = stopped_study(write_experiment, tmp_path)
    out = output_dir(folder, 0)
    save(out / "epoch_0" / "adapter_model.pt", 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001, WHOLE[:-30])  # killed while saving
    code, log = run_task(folder, bin_dir)
    assert code == 0, log
    assert tune_calls(calls) == [
        "tune run lora_finetune_single_device --config configs/run_000.yaml"
    ]
    assert "recipe_state.pt was cut short while it was saved: training from the start" in log
    reason = study_status(read_catalog(folder).runs, folder, slurm=None).runs[0].reason
    assert reason.endswith(
        "(saved epoch_0; recipe_state.pt cut short: submitted again it starts over)"
    )


def test_a_resumed_task_requeues_again_only_after_it_saved_another_epoch(
    write_experiment: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls, started, stop = training_stand_ins(tmp_path)
    out = output_dir(folder, 0)
    save(out / "epoch_0" / "adapter_model.pt", 1_000)
    save(out / "recipe_state" / "recipe_state.pt", 1_001)
    task = start(folder, bin_dir)  # resumes after epoch_0, and saves nothing new
    until(started.exists)
    task.send_signal(signal.SIGUSR1)
    until(lambda: "not requeued" in (out / "slurm_41_0.log").read_text())
    stop.touch()
    task.communicate(timeout=30)
    assert "scontrol" not in calls.read_text()


def test_a_failing_training_is_the_tasks_exit_code(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, _ = stand_ins(tmp_path, "exit 7\n")
    assert run_task(folder, bin_dir)[0] == 7


def test_no_requeue_asks_for_no_signal_and_a_signal_of_the_users_own_stands(
    write_experiment: Callable[..., Path], tmp_path: Path
) -> None:
    refused = study(write_experiment, tmp_path, SLURM + "      no_requeue: true\n")
    script = (refused / "configs" / "slurm_array.sh").read_text()
    assert "#SBATCH --no-requeue" in script and "--signal" not in script
    assert "trap requeue" not in script
    assert 'exec tune run lora_finetune_single_device --config "$config" "${resume[@]}"' in script
    bin_dir, calls = stand_ins(tmp_path)
    assert run_task(refused, bin_dir)[0] == 0 and len(tune_calls(calls)) == 1

    own = study(write_experiment, tmp_path, SLURM + "      signal: B:USR1@600\n", "own")
    directives = [
        line
        for line in (own / "configs" / "slurm_array.sh").read_text().splitlines()
        if "signal" in line and line.startswith("#SBATCH")
    ]
    assert directives == ["#SBATCH --signal=B:USR1@600"]


def test_a_requeue_slurm_refuses_is_an_error_the_task_exits_with(
    write_experiment: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = study(write_experiment, tmp_path)
    bin_dir, calls, started, _ = training_stand_ins(tmp_path)
    (bin_dir / "scontrol").write_text(
        "#!/bin/bash\necho 'Requested operation is presently disabled' >&2\nexit 1\n"
    )
    monkeypatch.setenv("SAVE_EPOCH", "0")
    task = start(folder, bin_dir)
    until(started.exists)
    task.send_signal(signal.SIGUSR1)
    task.communicate(timeout=30)
    assert task.returncode == 1
    log = (output_dir(folder, 0) / "slurm_41_0.log").read_text()
    assert "error: scontrol requeue failed: submit the run again" in log


def two_epoch_study(root: Path, kind: str = "lora") -> Path:
    """A generated study of one real run on the tiny model of tests/oracle/assets.py (CPU), two
    epochs of 300 steps each (about 2 s: long enough to be stopped within the second), its
    output_dir ``root/out``; its folder."""
    from tests.oracle.assets import RECIPES, build_assets, make_dataset

    assets = build_assets(root / "tiny")
    make_dataset(assets.root / "assets", random.Random(1), records=1200)  # 600 batches
    folder = root / f"resumed_{kind}"
    folder.mkdir()
    shutil.copyfile(assets.bases[kind], folder / "base.yaml")
    (folder / "experiment.yaml").write_text(
        f"experiment:\n  name: resumed_{kind}\n  framework: torchtune\n"
        f"framework_config:\n  base_config_file: base.yaml\n  recipe: {RECIPES[kind]}\n"
        "variables:\n  optimizer.lr: [0.001]\n"
        f"controls:\n  epochs: 2\n  max_steps_per_epoch: 300\n  output_dir: {root}/out\n" + SLURM
    )
    generate(folder)
    return folder


@pytest.mark.slow
@pytest.mark.needs_torch
@pytest.mark.parametrize("kind", ["lora", "full"])
def test_a_real_run_stopped_by_slurms_signal_in_its_second_epoch_resumes_and_finishes(
    kind: str, tmp_path: Path
) -> None:
    folder = two_epoch_study(tmp_path, kind)
    bin_dir, calls = stand_ins(tmp_path)
    (bin_dir / "tune").unlink()  # the real one, from this interpreter's environment
    path = f"{Path(sys.executable).parent}:{bin_dir}"
    out = output_dir(folder, 0)
    state = out / "recipe_state" / "recipe_state.pt"
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}

    first = start(folder, Path(path), extra=env)
    until(state.exists, timeout=300)
    first.send_signal(signal.SIGUSR1)  # as Slurm does before the time limit
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert calls.read_text().splitlines() == ["scontrol requeue 41_0"]
    assert (out / "epoch_0").is_dir() and not (out / "epoch_1").exists()

    second = start(folder, Path(path), extra=env)  # Slurm starts the requeued task again
    second.communicate(timeout=300)
    assert second.returncode == 0
    log = (out / "slurm_41_0.log").read_text()
    assert "configs/run_000.yaml: resuming after epoch_0" in log
    assert "Loading the recipe state" in log  # torchtune's own word that it resumed
    assert any((out / "epoch_1").iterdir())
    # The DiskLogger logs of both attempts: the second goes on at step 301 (max_steps_per_epoch
    # set, so the step count and LR schedule carry on), and results reads both.
    logs = sorted((out / "logs").glob("log_*.txt"))
    assert len(logs) == 2
    assert logs[1].read_text().startswith("Step 301 |")
    results = subprocess.run(
        [
            sys.executable,
            "-m",
            "torchtune_config_writer",
            "results",
            str(folder),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
    )
    assert results.returncode == 0, results.stderr
    (run,) = json.loads(results.stdout)["runs"]
    assert (run["status"], run["steps"]) == ("finished", 600)
