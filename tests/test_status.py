"""`status EXP`: where each run is, from its own files and from Slurm.

The fast tests give Slurm's commands canned answers in their real formats (squeue's `--format`,
sacct's `--parsable2`, scontrol's `--oneliner`) over run folders written by hand; the slow ones
submit a real job array to the one-node cluster of tests/slurm_cluster.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.runs import status as status_module
from torchtune_config_writer.runs.catalog import read_catalog
from torchtune_config_writer.runs.slurm_jobs import (
    TaskId,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
)
from torchtune_config_writer.runs.status import STOPPED, StudyStatus, study_status

from .conftest import CliResult, python_without_torch
from .slurm_cluster import Cluster, cluster_fixture, wait_for


def make_study(folder: Path, runs: int = 4, slurm: str = "{}") -> Path:
    """A generated study of ``runs`` seeds: each run its output_dir, checkpoints and DiskLogger
    logs in it, one epoch (its final checkpoint is epoch_0)."""
    folder.mkdir(parents=True)
    (folder / "base.yaml").write_text(
        f"output_dir: {folder}/out/placeholder\nseed: 0\nepochs: 1\n"
        "checkpointer:\n  _component_: torchtune.training.FullModelHFCheckpointer\n"
        "  checkpoint_dir: /ckpt\n  checkpoint_files: [model.safetensors]\n"
        "  output_dir: ${output_dir}\n  model_type: LLAMA3_2\n"
        "metric_logger:\n  _component_: torchtune.training.metric_logging.DiskLogger\n"
        "  log_dir: ${output_dir}/logs\n"
    )
    seeds = ", ".join(map(str, range(runs)))
    (folder / "experiment.yaml").write_text(
        f"experiment:\n  name: {folder.name}\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: full_finetune_single_device\n"
        f"variables:\n  seed: [{seeds}]\n"
        f"controls:\n  output_dir: {folder}/out/{{run_id}}\n"
        f"launch:\n  slurm: {slurm}\n"
    )
    generate(folder)
    return folder


def out(study: Path, run: int) -> Path:
    folder = study / "out" / f"run_{run:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_final(study: Path, run: int) -> None:
    (out(study, run) / "epoch_0").mkdir()
    (out(study, run) / "epoch_0" / "model-00001-of-00001.safetensors").write_bytes(b"weights")


def task_log(study: Path, run: int, job: int, task: int | None = None) -> Path:
    log = out(study, run) / f"slurm_{job}_{run if task is None else task}.log"
    log.write_text("Running FullFinetuneRecipeSingleDevice with resolved config:\n")
    return log


class CannedSlurm:
    """Slurm's commands answering with text in their real formats; ``None`` answers as a command
    that failed (sacct without accounting)."""

    def __init__(self, **answers: str | None) -> None:
        self.answers = answers
        self.calls: list[list[str]] = []

    def __call__(self, arguments: Sequence[str]) -> str | None:
        self.calls.append(list(arguments))
        if arguments[0] == "squeue" and "--me" in arguments:
            return self.answers.get("squeue_me", "")
        return self.answers.get(arguments[0], "")


def status_of(
    study: Path, slurm: CannedSlurm | None, processes: dict[Path, int] | None = None
) -> StudyStatus:
    catalog = read_catalog(study)
    return study_status(
        catalog.runs,
        study,
        slurm=slurm,
        script=study / "configs" / "slurm_array.sh",
        processes=lambda: processes or {},
    )


def by_run(status: StudyStatus) -> dict[str, tuple[str, str]]:
    return {run.id: (run.status, run.reason) for run in status.runs}


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return make_study(tmp_path / "seeds")


def test_a_run_never_submitted_is_not_started_and_a_saved_final_checkpoint_is_finished(
    study: Path,
) -> None:
    save_final(study, 1)
    status = status_of(study, None)
    assert [run.status for run in status.runs] == [
        "not started",
        "finished",
        "not started",
        "not started",
    ]
    assert by_run(status)["run_001"][1] == f"final checkpoint in {study}/out/run_001/epoch_0"
    assert status.counts() == {"finished": 1, "not started": 3}
    assert status.notes == (
        "Slurm's commands are not installed here: statuses come from the files alone",
    )


@pytest.mark.parametrize(
    ("sacct_line", "expected", "shown"),
    [
        ("|FAILED|3:0|None", "failed", "FAILED (exit 3) [sacct]"),
        # sacct's Reason is why the task last waited, not why it ended (a real 22.05's line for
        # a task of a %1 array that failed): not shown as the reason it failed.
        ("|FAILED|3:0|JobArrayTaskLimit", "failed", "FAILED (exit 3) [sacct]"),
        ("|PENDING|0:0|JobHeldUser", "queued", "PENDING, JobHeldUser [sacct]"),
        ("|NODE_FAIL|0:0|None", "failed", "NODE_FAIL (exit 0) [sacct]"),
        # Killed by a signal (a real 22.05's OverMemoryKill): no "exit 0", which reads as success.
        ("|FAILED|0:9|None", "failed", "FAILED (signal 9) [sacct]"),
        ("|TIMEOUT|0:15|None", "timed out", "TIMEOUT (exit 0) [sacct]"),
        ("|OUT_OF_MEMORY|0:125|None", "out of memory", "OUT_OF_MEMORY (exit 0) [sacct]"),
        ("|PREEMPTED|0:15|None", "preempted", "PREEMPTED (exit 0) [sacct]"),
        ("|CANCELLED by 1000|0:15|None", "cancelled", "CANCELLED (exit 0) [sacct]"),
        ("|RUNNING|0:0|None", "running", "RUNNING [sacct]"),
        ("|REQUEUED|0:0|None", "queued", "REQUEUED [sacct]"),
    ],
)
def test_each_state_sacct_gives_an_ended_task_is_its_runs_status(
    study: Path, sacct_line: str, expected: str, shown: str
) -> None:
    log = task_log(study, 2, job=41)
    slurm = CannedSlurm(sacct=f"41_2{sacct_line}\n41_0|COMPLETED|0:0|None\n")
    status = status_of(study, slurm)
    run = status.runs[2]
    assert (run.status, run.reason, run.log, run.task) == (
        expected,
        f"task 41_2 {shown}",
        log,
        "41_2",
    )
    assert status.notes == ()  # sacct answered: accounting works


def test_a_completed_task_whose_run_has_no_final_checkpoint_is_not_finished(study: Path) -> None:
    task_log(study, 0, job=7)
    task_log(study, 1, job=7)
    save_final(study, 1)
    (out(study, 0) / "logs").mkdir()
    (out(study, 0) / "logs" / "log_1700000000.txt").write_text(
        "Step 1 | loss:2.5 lr:0.001 \nStep 2 | loss:2.1 lr:0.001 \n"
    )
    slurm = CannedSlurm(sacct="7_0|COMPLETED|0:0|None\n7_1|COMPLETED|0:0|None\n")
    runs = by_run(status_of(study, slurm))
    assert runs["run_000"] == (
        STOPPED,
        f"task 7_0 ended COMPLETED, but no final checkpoint in {study}/out/run_000/epoch_0 "
        "(last logged step 2; no recipe_state.pt: submitted again it starts over)",
    )
    assert runs["run_001"][0] == "finished"


def test_squeue_lists_queued_tasks_before_they_write_anything_and_running_ones(
    study: Path,
) -> None:
    script = study / "configs" / "slurm_array.sh"
    task_log(study, 0, job=50)  # running: its log has started
    slurm = CannedSlurm(
        # squeue --me --array: every task of this user, ours by work dir and script.
        squeue_me=(
            f"50_0|RUNNING|None|{study}|configs/slurm_array.sh\n"
            f"50_1|PENDING|Resources|{study}|{script}\n"
            f"50_2|PENDING|Priority|{study}|{script}\n"
            f"51_3|PENDING|Resources|/elsewhere|configs/slurm_array.sh\n"
        ),
        squeue="50_0|RUNNING|None\n50_1|PENDING|Resources\n50_2|PENDING|Priority\n",
        sacct=None,
        scontrol=(
            "JobId=50 ArrayJobId=50 ArrayTaskId=1-2 ArrayTaskThrottle=0 JobName=seeds "
            "UserId=me(1000) JobState=PENDING Reason=Resources Dependency=(null) ExitCode=0:0\n"
        ),
    )
    status = status_of(study, slurm)
    runs = by_run(status)
    assert runs["run_000"] == ("running", "task 50_0 RUNNING [squeue]")
    assert runs["run_001"] == ("queued", "task 50_1 PENDING, Resources [squeue]")
    assert runs["run_002"] == ("queued", "task 50_2 PENDING, Priority [squeue]")
    assert runs["run_003"][0] == "not started"  # another folder's job is not ours
    assert status.runs[1].log is None
    assert status.counts() == {"running": 1, "queued": 2, "not started": 1}


def test_without_accounting_ended_tasks_come_from_scontrol(study: Path) -> None:
    for run in range(4):
        task_log(study, run, job=60)
    save_final(study, 0)
    slurm = CannedSlurm(
        squeue="60_3|RUNNING|None\n",
        sacct=None,  # "Slurm accounting storage is disabled": exit 1
        scontrol=(
            "JobId=61 ArrayJobId=60 ArrayTaskId=0 JobName=seeds JobState=COMPLETED Reason=None "
            "ExitCode=0:0 RunTime=00:00:03\n"
            "JobId=62 ArrayJobId=60 ArrayTaskId=1 JobName=seeds JobState=TIMEOUT Reason=TimeLimit "
            "ExitCode=0:15 RunTime=00:01:00\n"
            "JobId=63 ArrayJobId=60 ArrayTaskId=2 JobName=seeds JobState=OUT_OF_MEMORY "
            "Reason=OutOfMemory ExitCode=0:125\n"
            "JobId=60 ArrayJobId=60 ArrayTaskId=3 JobName=seeds JobState=RUNNING Reason=None "
            "ExitCode=0:0\n"
        ),
    )
    status = status_of(study, slurm)
    assert by_run(status) == {
        "run_000": ("finished", f"final checkpoint in {study}/out/run_000/epoch_0"),
        "run_001": ("timed out", "task 60_1 TIMEOUT (exit 0), TimeLimit [scontrol]"),
        "run_002": ("out of memory", "task 60_2 OUT_OF_MEMORY (exit 0), OutOfMemory [scontrol]"),
        "run_003": ("running", "task 60_3 RUNNING [squeue]"),
    }
    assert ["scontrol", "--oneliner", "show", "job", "60"] in slurm.calls
    assert status.notes == (
        "Slurm accounting (sacct) is not available: ended tasks' states come from scontrol, "
        "which forgets a job MinJobAge after it ends, and from the files",
    )


def test_a_task_cancelled_while_queued_wrote_nothing_but_its_job_still_names_it(
    study: Path,
) -> None:
    task_log(study, 0, job=90)  # the job is known by the task that started
    slurm = CannedSlurm(
        sacct="90_0|COMPLETED|0:0|None\n90_1|CANCELLED by 1000|0:0|None\n"
        "90_[2-3]|PENDING|0:0|JobArrayTaskLimit\n"
    )
    runs = by_run(status_of(study, slurm))
    assert runs["run_001"] == ("cancelled", "task 90_1 CANCELLED (exit 0) [sacct]")
    assert runs["run_002"] == ("queued", "task 90_2 PENDING, JobArrayTaskLimit [sacct]")


def test_a_task_that_stopped_before_its_log_is_failed_with_the_error_it_wrote(
    study: Path,
) -> None:
    # Slurm has forgotten the job; the early-failure file where it was submitted remains.
    (study / "slurm-70_1.out").write_text(
        "error: configs/run_001.yaml is missing: regenerate seeds (torchtune-config-writer "
        "generate)\n"
    )
    status = status_of(study, CannedSlurm(sacct=None, scontrol=None))
    assert by_run(status)["run_001"] == (
        "failed",
        "task 70_1 stopped before its log: error: configs/run_001.yaml is missing: regenerate "
        "seeds (torchtune-config-writer generate)",
    )
    assert status.runs[1].log == study / "slurm-70_1.out"


def test_the_newest_submission_decides_and_a_part_maps_its_tasks_by_its_offset(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "parts", runs=6, slurm="{max_array_size: 4}")
    task_log(study, 1, job=80)
    task_log(study, 1, job=95)  # resubmitted: the newer job's task is the one that counts
    task_log(study, 4, job=81, task=0)  # the second part: TCW_RUN_OFFSET=4
    (study / "slurm-81_1.out").write_text("error: cannot write /x/slurm_81_1.log: let this...\n")
    slurm = CannedSlurm(
        sacct="80_1|FAILED|1:0|None\n95_1|CANCELLED by 0|0:15|None\n81_0|FAILED|1:0|None\n"
        "81_1|FAILED|2:0|None\n"
    )
    runs = by_run(status_of(study, slurm))
    assert runs["run_001"] == ("cancelled", "task 95_1 CANCELLED (exit 0) [sacct]")
    assert runs["run_004"] == ("failed", "task 81_0 FAILED (exit 1) [sacct]")
    assert runs["run_005"] == (
        "failed",
        "task 81_1 FAILED (exit 2) [sacct]: error: cannot write /x/slurm_81_1.log: let this...",
    )
    assert runs["run_000"][0] == "not started"


def test_a_run_started_outside_slurm_is_running_while_its_process_lives_else_stopped(
    study: Path,
) -> None:
    logs = out(study, 3) / "logs"
    logs.mkdir()
    (logs / "log_1700000000.txt").write_text("Step 1 | loss:3.0 \n")
    (logs / "log_1700000100.txt").write_text("Step 1 | loss:3.0 \nStep 17 | loss:1.2 \n")
    config = (study / "configs" / "run_003.yaml").resolve()
    running = by_run(status_of(study, None, processes={config: 4242}))
    assert running["run_003"] == ("running", "outside Slurm, process 4242")
    stopped = status_of(study, None)
    assert by_run(stopped)["run_003"] == (
        STOPPED,
        f"no live process; no final checkpoint in {study}/out/run_003/epoch_0 "
        "(last logged step 17; no recipe_state.pt: submitted again it starts over)",
    )
    assert stopped.runs[3].log == logs / "log_1700000100.txt"


def test_slurm_that_does_not_answer_leaves_the_files_to_decide_and_says_so(study: Path) -> None:
    task_log(study, 0, job=9)
    status = status_of(study, CannedSlurm(squeue_me=None, squeue=None))
    assert by_run(status)["run_000"] == (
        STOPPED,
        f"Slurm no longer knows task 9_0: no final checkpoint in {study}/out/run_000/epoch_0",
    )
    assert status.notes == (
        "Slurm does not answer here (squeue failed): statuses come from the files",
    )


def test_the_parsers_read_slurms_own_formats() -> None:
    assert parse_squeue("12_[3-5,8]|PENDING|Resources\n12_1|RUNNING|None\n") == {
        **{
            TaskId(12, n): parse_squeue("12_3|PENDING|Resources")[TaskId(12, 3)]
            for n in (3, 4, 5, 8)
        },
        TaskId(12, 1): parse_squeue("12_1|RUNNING|None")[TaskId(12, 1)],
    }
    sacct = parse_sacct("12_[2-3%1]|PENDING|0:0|JobArrayTaskLimit\n13|COMPLETED|0:0|None\n")
    assert sorted(sacct) == [TaskId(12, 2), TaskId(12, 3)]  # job 13 is no array task
    assert sacct[TaskId(12, 2)].reason == "JobArrayTaskLimit"
    shown = parse_scontrol(
        "JobId=20 ArrayJobId=20 ArrayTaskId=4-5%2 JobState=PENDING Reason=JobArrayTaskLimit "
        "ExitCode=0:0\nJobId=21 JobName=plain JobState=RUNNING Reason=None ExitCode=0:0\n"
    )
    assert sorted(shown) == [TaskId(20, 4), TaskId(20, 5)]
    killed = parse_scontrol("JobId=22 ArrayJobId=22 ArrayTaskId=1 JobState=FAILED ExitCode=0:9\n")
    assert (killed[TaskId(22, 1)].exit_code, killed[TaskId(22, 1)].signal) == (0, 9)
    assert sacct[TaskId(12, 2)].signal is None  # 0:0: no signal


@pytest.fixture
def canned_cli(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> Iterator[Callable[[CannedSlurm | None], Callable[..., CliResult]]]:
    def with_slurm(slurm: CannedSlurm | None) -> Callable[..., CliResult]:
        # The one place status and results ask for Slurm (runs/status.py's catalog_status).
        monkeypatch.setattr(status_module, "default_slurm", lambda: slurm)
        return cli

    yield with_slurm


def test_the_command_prints_a_line_per_run_then_the_counts(
    study: Path, canned_cli: Callable[[CannedSlurm | None], Callable[..., CliResult]]
) -> None:
    save_final(study, 0)
    log = task_log(study, 1, job=5)
    result = canned_cli(CannedSlurm(sacct="5_1|FAILED|1:0|None\n"))("status", study)
    assert result.code == 0, result.err
    assert result.out == (
        f"run_000  finished     final checkpoint in {study}/out/run_000/epoch_0\n"
        f"run_001  failed       task 5_1 FAILED (exit 1) [sacct] (log: {log})\n"
        f"run_002  not started  no task queued, no log or checkpoint in {study}/out/run_002\n"
        f"run_003  not started  no task queued, no log or checkpoint in {study}/out/run_003\n"
        "4 runs: 1 finished, 1 failed, 2 not started\n"
    )


def test_the_command_writes_json_with_the_counts_and_notes(
    study: Path, canned_cli: Callable[[CannedSlurm | None], Callable[..., CliResult]]
) -> None:
    save_final(study, 3)
    result = canned_cli(None)("status", study / "experiment.yaml", "--format", "json")
    assert result.code == 0, result.err
    document = json.loads(result.out)
    assert document["experiment"] == "seeds"
    assert document["counts"] == {"finished": 1, "not started": 3}
    assert document["runs"][3] == {
        "id": "run_003",
        "status": "finished",
        "reason": f"final checkpoint in {study}/out/run_003/epoch_0",
        "log": None,
        "task": None,
    }
    assert document["notes"] == [
        "Slurm's commands are not installed here: statuses come from the files alone"
    ]


def test_a_missing_experiment_is_one_error_line(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("status", tmp_path / "nowhere")
    assert result.code == 2
    assert result.err.startswith("error: ") and len(result.err.splitlines()) == 1


def test_status_never_imports_torch(study: Path) -> None:
    task_log(study, 0, job=3)
    done = python_without_torch(
        "import sys\n"
        "from torchtune_config_writer.cli import main\n"
        f"code = main(['status', {str(study)!r}])\n"
        "assert 'torch' not in sys.modules and 'torchtune' not in sys.modules\n"
        "assert 'wandb' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "run_000" in done.stdout


def started_process(cwd: Path, config: str) -> subprocess.Popen[str]:
    """A real process whose arguments name ``config``, as `tune run` does, once it runs: until
    then its /proc cmdline may read empty (Popen returns while the kernel still sets up exec)."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; print(flush=True); time.sleep(60)", config],
        cwd=cwd,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process


def test_a_process_running_a_runs_config_is_found_in_the_process_table(study: Path) -> None:
    # A real process whose arguments name the config relative to its folder, as `tune run` does.
    logs = out(study, 2) / "logs"
    logs.mkdir()
    (logs / "log_1700000000.txt").write_text("Step 3 | loss:1.0 \n")
    process = started_process(study, "configs/run_002.yaml")
    try:
        catalog = read_catalog(study)
        status = study_status(catalog.runs, study, slurm=None)
        assert by_run(status)["run_002"] == ("running", f"outside Slurm, process {process.pid}")
    finally:
        process.kill()
        process.wait()
    assert by_run(status_of(study, None))["run_002"][0] == STOPPED


def test_a_completed_task_of_a_run_whose_final_checkpoint_is_unknown_is_not_finished(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "no_epochs", runs=1)
    text = (study / "base.yaml").read_text().replace("epochs: 1\n", "")
    (study / "base.yaml").write_text(text)
    generate(study)
    task_log(study, 0, job=4)
    runs = by_run(status_of(study, CannedSlurm(sacct="4_0|COMPLETED|0:0|None\n")))
    assert runs["run_000"] == (
        STOPPED,
        "task 4_0 ended COMPLETED, but where its final checkpoint goes is unknown "
        "(no checkpointer.output_dir or epochs)",
    )


def test_where_slurm_is_not_installed_the_command_says_so_once(
    study: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_final(study, 0)
    task_log(study, 1, job=8)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no squeue on it
    done = python_without_torch(
        "from torchtune_config_writer.cli import main\n"
        f"raise SystemExit(main(['status', {str(study)!r}]))\n"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("run_000  finished  ")
    assert lines[1].startswith(f"run_001  {STOPPED}  Slurm no longer knows task 8_1: ")
    assert lines[-2:] == [
        f"4 runs: 1 finished, 1 {STOPPED}, 2 not started",
        "note: Slurm's commands are not installed here: statuses come from the files alone",
    ]


# The real cluster: a job array of the generated script, with a stand-in `tune` that trains
# nothing but saves the final checkpoint once its run's gate file exists (real training under
# Slurm is tests/test_slurm.py's; here the point is what Slurm says while tasks wait and run).
GATED_TUNE = """#!/bin/bash
config="${@: -1}"
out=$(sed -n 's/^output_dir: //p' "$config")
run=$(basename "$config" .yaml)
echo "training $run"
until [[ -e %(gates)s/$run ]]; do sleep 0.2; done
mkdir -p "$out/epoch_0" && echo weights > "$out/epoch_0/model.safetensors"
"""


cluster = cluster_fixture(cpus=4, max_array_size=8)


@pytest.mark.slow
@pytest.mark.needs_slurm
def test_status_follows_a_real_job_array_queued_running_cancelled_finished(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, gates = tmp_path / "bin", tmp_path / "gates"
    bin_dir.mkdir()
    gates.mkdir()
    (bin_dir / "tune").write_text(GATED_TUNE % {"gates": gates})
    (bin_dir / "tune").chmod(0o755)
    # Two tasks at a time (max_parallel): the third waits in the queue.
    study = make_study(tmp_path / "watched", runs=3, slurm="{max_parallel: 2}")
    job = cluster.sbatch(
        "configs/slurm_array.sh",
        cwd=study,
        env={"PATH": f"{bin_dir}:{cluster.env['PATH']}"},
    )
    monkeypatch.setenv("SLURM_CONF", cluster.env["SLURM_CONF"])

    def status() -> dict[str, Any]:
        """The command's JSON, from a process of its own (as a user runs it)."""
        done = python_without_torch(
            "from torchtune_config_writer.cli import main\n"
            f"main(['status', {str(study)!r}, '--format', 'json'])\n"
        )
        result: dict[str, Any] = json.loads(done.stdout)
        return {run["id"]: run["status"] for run in result["runs"]} | {"notes": result["notes"]}

    def logged(run: int) -> bool:
        log = study / "out" / f"run_{run:03d}" / f"slurm_{job}_{run}.log"
        return log.is_file() and "training" in log.read_text()

    wait_for(lambda: logged(0) and logged(1), "tasks 0 and 1 did not start")
    now = status()
    assert (now["run_000"], now["run_001"], now["run_002"]) == ("running", "running", "queued")

    done = cluster.run("scancel", f"{job}_1")
    assert done.returncode == 0, done.stderr
    (gates / "run_000").touch()
    (gates / "run_002").touch()
    cluster.wait(job)
    after = status()
    assert (after["run_000"], after["run_001"], after["run_002"]) == (
        "finished",
        "cancelled",
        "finished",
    )
    # No accounting in this cluster: status says it fell back to scontrol.
    assert any("sacct" in note and "scontrol" in note for note in after["notes"])


def test_a_job_squeue_has_forgotten_is_still_asked_of_sacct(study: Path) -> None:
    # squeue --jobs fails on a job past MinJobAge ("Invalid job id specified"): the usual study,
    # one array that ended a while ago. Its tasks' ends are sacct's to say.
    task_log(study, 1, job=77)
    slurm = CannedSlurm(squeue=None, squeue_me="", sacct="77_1|TIMEOUT|0:15|None\n")
    status = status_of(study, slurm)
    assert by_run(status)["run_001"] == ("timed out", "task 77_1 TIMEOUT (exit 0) [sacct]")
    assert status.notes == ()
    assert any(call[0] == "sacct" for call in slurm.calls)


def test_an_early_failure_of_a_part_whose_offset_is_unknown_is_charged_to_no_run(
    study: Path,
) -> None:
    # A study in parts: task 0 of job 88 may be any part's first run; nothing says which.
    (study / "slurm-88_0.out").write_text("error: configs/run_000.yaml is missing\n")
    catalog = read_catalog(study)
    status = study_status(catalog.runs, study, slurm=None, one_array=False, processes=dict)
    assert by_run(status)["run_000"][0] == "not started"
    one = study_status(catalog.runs, study, slurm=None, one_array=True, processes=dict)
    assert by_run(one)["run_000"][0] == "failed"
