"""`status EXP` against a real Slurm with accounting (slurmdbd on MariaDB): the ends that only
sacct remembers, each named as Slurm recorded it.

The study's runs are the generated job array, but `tune` is a stand-in: what is tested is Slurm's
states (a task past its --time, past its --mem, requeued, cancelled), not training, which
tests/test_slurm.py runs for real. The cluster is tests/slurm_cluster.py's, with
``accounting=True``; the tasks run at once, so the test takes about as long as Slurm takes to
time a task out (its one-minute minimum, checked every 30 s).
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import python_without_torch
from .slurm_cluster import Cluster, cluster_fixture, wait_for
from .test_resume import two_epoch_study
from .test_status import make_study

# run_000 sleeps past its --time, run_001 holds more than its --mem, run_002 trains once its gate
# exists (requeued before), run_003 sleeps until cancelled. Each start is logged; run_000 and
# run_001 train when they start again.
STAND_IN_TUNE = """#!/bin/bash
config="${@: -1}"
out=$(sed -n 's/^output_dir: //p' "$config")
run=$(basename "$config" .yaml)
echo "training $run"
# Resubmitted, the runs that timed out or ran out of memory train (their second start).
if [[ $run == run_00[01] && -e %(gates)s/started_$run ]]; then
  mkdir -p "$out/epoch_0" && echo weights > "$out/epoch_0/model.safetensors"
  exit 0
fi
touch %(gates)s/started_$run
case $run in
  run_001) exec %(python)s -c "import time; held = b'x' * (300 << 20); time.sleep(300)" ;;
  run_002) until [[ -e %(gates)s/$run ]]; do sleep 0.2; done ;;
  *) sleep 300 ;;
esac
mkdir -p "$out/epoch_0" && echo weights > "$out/epoch_0/model.safetensors"
"""


cluster = cluster_fixture(cpus=4, max_array_size=4, accounting=True)


@pytest.mark.slow
@pytest.mark.needs_slurm
def test_sacct_names_a_timeout_an_out_of_memory_a_requeue_and_a_cancel(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, gates = tmp_path / "bin", tmp_path / "gates"
    bin_dir.mkdir()
    gates.mkdir()
    (bin_dir / "tune").write_text(STAND_IN_TUNE % {"gates": gates, "python": sys.executable})
    (bin_dir / "tune").chmod(0o755)
    study = make_study(tmp_path / "ends", runs=4)
    env = {"PATH": f"{bin_dir}:{cluster.env['PATH']}"}
    script = "configs/slurm_array.sh"
    # One array task per end, its limits on sbatch's command line (they override the script's).
    timed = cluster.sbatch("--array=0", "--time=1", script, cwd=study, env=env)
    memory = cluster.sbatch("--array=1", "--mem=50M", script, cwd=study, env=env)
    rest = cluster.sbatch("--array=2-3", script, cwd=study, env=env)

    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])

    def status() -> dict[str, Any]:
        """`python -m torchtune_config_writer status --format json`, as a user runs it."""
        done = python_without_torch(
            "import runpy, sys\n"
            f"sys.argv = ['tcw', 'status', {str(study)!r}, '--format', 'json']\n"
            "runpy.run_module('torchtune_config_writer', run_name='__main__')\n"
        )
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def runs() -> dict[str, tuple[str, str]]:
        return {run["id"]: (run["status"], run["reason"]) for run in status()["runs"]}

    def starts(run: int, job: str) -> int:
        log = study / "out" / f"run_{run:03d}" / f"slurm_{job}_{run}.log"
        return log.read_text().count("training") if log.is_file() else 0

    wait_for(lambda: starts(2, rest) == 1 and starts(3, rest) == 1, "tasks 2 and 3 did not start")
    assert runs()["run_003"][0] == "running"
    assert cluster.run("scancel", f"{rest}_3").returncode == 0

    # Requeued: queued (Slurm holds it two minutes, BeginTime), then, let go, it runs again.
    requeued = cluster.run("scontrol", "requeue", f"{rest}_2")
    assert requeued.returncode == 0, requeued.stderr
    wait_for(lambda: runs()["run_002"][0] == "queued", "the requeued task is not queued")
    assert "BeginTime" in runs()["run_002"][1]
    cluster.release(f"{rest}_2")
    wait_for(lambda: starts(2, rest) == 2, "the requeued task did not run again")
    assert runs()["run_002"][0] == "running"
    (gates / "run_002").touch()

    # Slurm times a task out at the first check (every 30 s) past its one minute.
    expected = {
        "run_000": ("timed out", f"task {timed}_0 TIMEOUT"),
        "run_001": (
            ("out of memory", f"task {memory}_1 OUT_OF_MEMORY")
            if cluster.memory_cgroup  # the kernel's oom-kill in the task's cgroup
            else ("failed", f"task {memory}_1 FAILED (signal 9)")  # OverMemoryKill's SIGKILL
        ),
        "run_002": ("finished", "final checkpoint in"),
        "run_003": ("cancelled", f"task {rest}_3 CANCELLED"),
    }

    def ended() -> dict[str, tuple[str, str]]:
        found = runs()
        return {
            run: (found[run][0], prefix if found[run][1].startswith(prefix) else found[run][1])
            for run, (_, prefix) in expected.items()
        }

    deadline = time.monotonic() + 150
    while (now := ended()) != expected and time.monotonic() < deadline:
        time.sleep(1)
    assert now == expected
    final = status()
    reasons = {run["id"]: run["reason"] for run in final["runs"]}
    for run in ("run_000", "run_001", "run_003"):
        assert reasons[run].endswith("[sacct]"), reasons[run]
    assert final["counts"]["finished"] == 1
    assert not any("accounting" in note for note in final["notes"]), final["notes"]

    # Resubmitted: exactly the runs that timed out and ran out of memory; the cancelled one only
    # when asked, the finished one never.
    def resubmit(*options: str) -> str:
        done = python_without_torch(
            "import runpy, sys\n"
            f"sys.argv = ['tcw', 'resubmit', {str(study)!r}, *{list(options)!r}]\n"
            "runpy.run_module('torchtune_config_writer', run_name='__main__')\n"
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    monkeypatch.setenv("PATH", env["PATH"])  # sbatch passes it on: the tasks find the stand-in
    planned = resubmit("--dry-run", "--cancelled")
    assert "--array=0-1,3 configs/slurm_array.sh" in planned, planned
    said = resubmit()
    (job,) = re.findall(r"submitted job (\d+): trains run_000-run_001\n", said)
    assert "left alone: 1 finished, 1 cancelled" in said
    assert cluster.wait(job) == {0: ("COMPLETED", 0), 1: ("COMPLETED", 0)}
    again = runs()
    assert [again[f"run_{n:03d}"][0] for n in range(4)] == [
        "finished", "finished", "finished", "cancelled"
    ]  # fmt: skip
    assert not list(study.glob(f"out/run_00[23]/slurm_{job}_*.log"))  # they never started
    assert "nothing to resubmit" in resubmit()


@pytest.mark.slow
@pytest.mark.needs_torch
@pytest.mark.needs_slurm
def test_a_real_run_signalled_before_its_time_limit_requeues_itself_and_resumes(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real `tune run` under sbatch: Slurm's USR1 (sent here with scancel, as --signal
    would send it before the time limit) in the second epoch stops training and requeues the
    task, which starts again, resumes after epoch_0 and finishes."""
    study = two_epoch_study(tmp_path)
    out = tmp_path / "out"
    env = {
        "PATH": f"{Path(sys.executable).parent}:{cluster.env['PATH']}",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
    }
    job = cluster.sbatch("configs/slurm_array.sh", cwd=study, env=env)
    assert "--signal=B:USR1@120" in (study / "configs" / "slurm_array.sh").read_text()
    wait_for(lambda: (out / "recipe_state" / "recipe_state.pt").is_file(), "no epoch saved", 300)
    signalled = cluster.run("scancel", "--batch", "--signal=USR1", f"{job}_0")
    assert signalled.returncode == 0, signalled.stderr

    def state() -> str:
        shown = cluster.run("scontrol", "-o", "show", "job", f"{job}_0").stdout
        return dict(f.split("=", 1) for f in shown.split() if "=" in f).get("JobState", "")

    wait_for(lambda: state() == "PENDING", "the task did not requeue itself", 120)
    assert not (out / "epoch_1").exists()
    cluster.release(f"{job}_0")  # not after Slurm's two-minute hold
    assert cluster.wait(job, timeout=600) == {0: ("COMPLETED", 0)}
    log = (out / f"slurm_{job}_0.log").read_text()
    assert f"requeueing {job}_0 to resume after epoch_0" in log
    assert "configs/run_000.yaml: resuming after epoch_0" in log
    assert any((out / "epoch_1").iterdir())
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])
    done = python_without_torch(
        "import runpy, sys\n"
        f"sys.argv = ['tcw', 'results', {str(study)!r}, '--format', 'json']\n"
        "runpy.run_module('torchtune_config_writer', run_name='__main__')\n"
    )
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    assert (run["status"], run["steps"]) == ("finished", 600)
