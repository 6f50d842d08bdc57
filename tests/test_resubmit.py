"""`resubmit EXP`: the job array again for exactly the runs that did not finish and are not live.

The runs' files are written by hand and Slurm's commands answer with canned text in their real
formats, as in tests/test_status.py; sbatch is a recording stand-in (a function, or a script
named sbatch on PATH for the real runner), so nothing here needs a cluster.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import pytest

from torchtune_config_writer import generate
from torchtune_config_writer.errors import ConfigWriterError
from torchtune_config_writer.launchers.sbatch_limits import (
    LimitError,
    format_memory,
    format_time,
    parse_memory,
    parse_time,
    scaled_memory,
    scaled_time,
)
from torchtune_config_writer.runs import sbatch as sbatch_module
from torchtune_config_writer.runs import status as status_module
from torchtune_config_writer.runs.resubmit import Resubmission, prepare_resubmission
from torchtune_config_writer.runs.sbatch import SbatchFailed, run_sbatch, shell_commands, submit
from torchtune_config_writer.runs.status import STOPPED

from .conftest import CliResult, python_without_torch
from .test_status import CannedSlurm, make_study, save_final, started_process, task_log

SLURM = "{sbatch: {time: '01:30:00', mem: 16G}, max_parallel: 2}"
TRAIN = "configs/slurm_array.sh"
EVAL = "configs/slurm_eval_array.sh"

# One run of each status, run N in the N-th: task 40_N of one array, as sacct reports it.
EVERY_STATUS = {
    0: "finished",
    1: "running",
    2: "queued",
    3: "failed",
    4: "timed out",
    5: "out of memory",
    6: "preempted",
    7: "cancelled",
    8: STOPPED,
    9: "not started",
}
SACCT = (
    "40_1|RUNNING|0:0|None\n40_2|PENDING|0:0|Priority\n40_3|FAILED|1:0|None\n"
    "40_4|TIMEOUT|0:15|None\n40_5|OUT_OF_MEMORY|0:125|None\n40_6|PREEMPTED|0:15|None\n"
    "40_7|CANCELLED by 1000|0:15|None\n40_8|COMPLETED|0:0|None\n"
)


class RecordingSbatch:
    """sbatch that records each call (its arguments and folder) and answers with job ids from
    100 on, ``;cluster`` after every other; ``fail_at`` makes that call (0-based) fail."""

    def __init__(self, fail_at: int | None = None, said: str = "bad partition") -> None:
        self.calls: list[tuple[list[str], Path]] = []
        self.fail_at, self.said = fail_at, said

    def __call__(self, arguments: Sequence[str], folder: Path) -> str:
        if len(self.calls) == self.fail_at:
            raise SbatchFailed(self.said)
        self.calls.append((list(arguments), folder))
        job = 100 + len(self.calls) - 1
        return f"{job};cluster\n" if len(self.calls) % 2 == 0 else f"{job}\n"

    @property
    def arguments(self) -> list[list[str]]:
        return [arguments for arguments, _ in self.calls]


def every_status_study(folder: Path, slurm: str = SLURM) -> tuple[Path, CannedSlurm]:
    """A study of 10 runs, each in one status of EVERY_STATUS, and Slurm's answers."""
    study = make_study(folder, runs=10, slurm=slurm)
    save_final(study, 0)
    for run in (1, 3, 4, 5, 6, 7, 8):  # a queued task (2) or an unsubmitted run (9) wrote nothing
        task_log(study, run, job=40)
    return study, CannedSlurm(sacct=SACCT)


def prepared(study: Path, slurm: CannedSlurm | None, **options: object) -> Resubmission:
    return prepare_resubmission(study, slurm=slurm, **options)  # type: ignore[arg-type]


def with_evaluation(study: Path) -> None:
    base = study / "base.yaml"
    base.write_text(
        base.read_text() + "model:\n  _component_: torchtune.models.llama3_2.llama3_2_1b\n"
        "tokenizer:\n  _component_: torchtune.models.llama3.llama3_tokenizer\n  path: /t\n"
    )
    experiment = study / "experiment.yaml"
    experiment.write_text(
        experiment.read_text() + "evaluation:\n  tasks: [truthfulqa_mc2]\n  limit: 10\n"
    )
    generate(study)


@pytest.fixture(autouse=True)
def no_real_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    """This machine may have Slurm's commands: no test here reaches them by accident."""

    def refuse(*_: object) -> str:
        raise AssertionError("a fast test ran the real sbatch")

    monkeypatch.setattr(sbatch_module, "run_sbatch", refuse)
    monkeypatch.setattr(status_module, "default_slurm", lambda: CannedSlurm())


def test_exactly_the_runs_that_did_not_finish_and_are_not_live_are_resubmitted(
    tmp_path: Path,
) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    resubmission = prepared(study, slurm)
    statuses = {run.id: run.status for run in resubmission.runs}
    assert statuses == {
        "run_003": "failed",
        "run_004": "timed out",
        "run_005": "out of memory",
        "run_006": "preempted",
        "run_008": STOPPED,
        "run_009": "not started",
    }
    assert resubmission.left_alone == {"finished": 1, "running": 1, "queued": 1, "cancelled": 1}
    [array] = resubmission.arrays
    assert array.training == ("--parsable", "--array=3-6,8-9%2", TRAIN)
    assert array.evaluation is None


def test_cancelled_runs_are_resubmitted_only_when_asked(tmp_path: Path) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    resubmission = prepared(study, slurm, cancelled=True)
    assert "run_007" in {run.id for run in resubmission.runs}
    assert resubmission.left_alone == {"finished": 1, "running": 1, "queued": 1}
    assert [a.training for a in resubmission.arrays] == [("--parsable", "--array=3-9%2", TRAIN)]


def test_more_time_and_memory_go_to_the_runs_that_lacked_them_as_arrays_of_their_own(
    tmp_path: Path,
) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    resubmission = prepared(study, slurm, more_time=Fraction(2), more_memory=Fraction("1.5"))
    assert [(a.runs, a.training) for a in resubmission.arrays] == [
        (("run_003", "run_006", "run_008", "run_009"), ("--parsable", "--array=3,6,8-9%2", TRAIN)),
        (("run_004",), ("--parsable", "--array=4-4%2", "--time=03:00:00", TRAIN)),
        (("run_005",), ("--parsable", "--array=5-5%2", "--mem=24G", TRAIN)),
    ]
    assert resubmission.options["run_004"] == ("--time=03:00:00",)
    assert resubmission.options["run_003"] == ()


def test_a_factor_alone_changes_only_its_own_runs(tmp_path: Path) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    arrays = prepared(study, slurm, more_memory=Fraction(2)).arrays
    assert [a.training for a in arrays] == [
        ("--parsable", "--array=3-4,6,8-9%2", TRAIN),
        ("--parsable", "--array=5-5%2", "--mem=32G", TRAIN),
    ]


def test_memory_per_cpu_is_scaled_under_its_own_name(tmp_path: Path) -> None:
    study, slurm = every_status_study(
        tmp_path / "per_cpu", slurm="{sbatch: {mem_per_cpu: 3000, time: 45}}"
    )
    arrays = prepared(study, slurm, more_memory=Fraction(3), more_time=Fraction("1.1")).arrays
    assert [a.training[1:-1] for a in arrays[1:]] == [
        ("--array=4-4", "--time=00:49:30"),
        ("--array=5-5", "--mem-per-cpu=9000M"),
    ]


def test_a_study_in_parts_is_resubmitted_in_parts_with_their_offsets(tmp_path: Path) -> None:
    study = make_study(tmp_path / "parts", runs=10, slurm="{max_array_size: 4}")
    for run in (0, 1, 3):
        save_final(study, run)
    arrays = prepared(study, CannedSlurm()).arrays
    assert [(a.runs, a.training) for a in arrays] == [
        (("run_002",), ("--parsable", "--array=2-2", TRAIN)),
        # Task ids stay below 4: task N of a part is run N + TCW_RUN_OFFSET.
        (
            ("run_004", "run_005", "run_006", "run_007"),
            ("--parsable", "--array=0-3", "--export=ALL,TCW_RUN_OFFSET=4", TRAIN),
        ),
        (
            ("run_008", "run_009"),
            ("--parsable", "--array=0-1", "--export=ALL,TCW_RUN_OFFSET=8", TRAIN),
        ),
    ]


def test_a_part_of_only_late_runs_starts_at_its_first_run(tmp_path: Path) -> None:
    study = make_study(tmp_path / "late", runs=10, slurm="{max_array_size: 4}")
    for run in range(10):
        if run not in (6, 9):
            save_final(study, run)
    [array] = prepared(study, CannedSlurm()).arrays
    assert array.training == ("--parsable", "--array=0,3", "--export=ALL,TCW_RUN_OFFSET=6", TRAIN)


def test_the_evaluation_array_follows_each_training_array_of_the_same_runs(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "evaluated", runs=6, slurm="{max_array_size: 4}")
    with_evaluation(study)
    save_final(study, 1)
    resubmission = prepared(study, CannedSlurm())
    sbatch = RecordingSbatch()
    submitted = submit(resubmission, sbatch)
    assert sbatch.calls == [
        (["--parsable", "--array=0,2-3", TRAIN], study),
        (["--parsable", "--array=0,2-3", "--dependency=aftercorr:100", EVAL], study),
        (["--parsable", "--array=0-1", "--export=ALL,TCW_RUN_OFFSET=4", TRAIN], study),
        (
            [
                "--parsable",
                "--array=0-1",
                "--export=ALL,TCW_RUN_OFFSET=4",
                "--dependency=aftercorr:102",
                EVAL,
            ],
            study,
        ),
    ]
    # "101;cluster": --parsable's job id on a cluster of a federation.
    assert [(s.job, s.evaluation_job) for s in submitted] == [("100", "101"), ("102", "103")]
    assert shell_commands(resubmission) == [
        f"job=$(sbatch --parsable --array=0,2-3 {TRAIN}) && sbatch --parsable --array=0,2-3 "
        f"--dependency=aftercorr:$job {EVAL}",
        "job=$(sbatch --parsable --array=0-1 --export=ALL,TCW_RUN_OFFSET=4 "
        f"{TRAIN}) && sbatch --parsable --array=0-1 --export=ALL,TCW_RUN_OFFSET=4 "
        f"--dependency=aftercorr:$job {EVAL}",
    ]


def test_the_evaluation_array_keeps_its_own_options_when_training_gets_more_time(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "evaluated", runs=2, slurm=SLURM)
    with_evaluation(study)
    task_log(study, 0, job=7)
    slurm = CannedSlurm(sacct="7_0|TIMEOUT|0:15|None\n")
    resubmission = prepared(study, slurm, more_time=Fraction(3))
    sbatch = RecordingSbatch()
    submit(resubmission, sbatch)
    assert sbatch.arguments == [  # the evaluation without --time: it keeps its own
        ["--parsable", "--array=0-0%2", "--time=04:30:00", TRAIN],
        ["--parsable", "--array=0-0%2", "--dependency=aftercorr:100", EVAL],
        ["--parsable", "--array=1-1%2", TRAIN],
        ["--parsable", "--array=1-1%2", "--dependency=aftercorr:102", EVAL],
    ]


def test_a_time_of_days_is_scaled_in_days_and_arrays_go_in_run_order(tmp_path: Path) -> None:
    study = make_study(tmp_path / "quoted", runs=2, slurm="{sbatch: {time: '1-00:00:00'}}")
    task_log(study, 0, job=3)
    resubmission = prepared(
        study, CannedSlurm(sacct="3_0|TIMEOUT|0:15|None\n"), more_time=Fraction(3, 2)
    )
    assert shell_commands(resubmission) == [
        f"sbatch --parsable --array=0-0 --time=1-12:00:00 {TRAIN}",
        f"sbatch --parsable --array=1-1 {TRAIN}",
    ]


@pytest.mark.parametrize(
    ("text", "seconds", "written"),
    [
        ("90", 5400, "01:30:00"),  # minutes alone
        ("0:30", 30, "00:00:30"),  # MM:SS
        ("61:00", 3660, "01:01:00"),  # minutes past the hour
        ("01:30:00", 5400, "01:30:00"),
        ("48:00:00", 172800, "2-00:00:00"),  # hours past a day
        ("2-0", 172800, "2-00:00:00"),  # D-HH
        ("1-12", 129600, "1-12:00:00"),
        ("1-2:3", 93780, "1-02:03:00"),  # D-HH:MM
        ("3-04:05:06", 273906, "3-04:05:06"),
        (" 10 ", 600, "00:10:00"),
        ("0:1", 1, "00:00:01"),
    ],
)
def test_each_slurm_time_format_reads_and_writes_back(
    text: str, seconds: int, written: str
) -> None:
    assert parse_time(text) == seconds
    assert format_time(seconds) == written
    assert parse_time(written) == seconds  # what is written reads back the same


@pytest.mark.parametrize(
    "text", ["", "UNLIMITED", "infinite", "-1", "0", "0:0:0", "1:2:3:4", "1-2:3:4:5", "a", "1h",
             "1.5", "-5", "1--2", "1-", ":30", "١٢"],
)  # fmt: skip
def test_a_time_that_is_none_or_no_limit_is_refused(text: str) -> None:
    with pytest.raises(LimitError):
        parse_time(text)


def test_times_scale_exactly_and_round_up_to_the_second() -> None:
    assert scaled_time("60", Fraction("1.1")) == "01:06:00"  # not 01:06:01 after float error
    assert scaled_time("00:00:03", Fraction(3, 2)) == "00:00:05"
    assert scaled_time("12:00:00", Fraction(2)) == "1-00:00:00"
    assert scaled_time("6-23:59:59", Fraction(2)) == "13-23:59:58"
    for seconds in (1, 59, 60, 3599, 3600, 86399, 86400, 90061, 10**7):
        assert parse_time(format_time(seconds)) == seconds


@pytest.mark.parametrize(
    ("text", "megabytes", "written"),
    [
        ("16G", 16384, "16G"),
        ("16g", 16384, "16G"),
        ("4000", 4000, "4000M"),  # M by default
        ("1024M", 1024, "1G"),
        ("2T", 2 * 1024**2, "2T"),
        ("2048K", 2, "2M"),
    ],
)
def test_memory_reads_in_its_units_and_writes_in_the_largest_whole_one(
    text: str, megabytes: int, written: str
) -> None:
    assert parse_memory(text) == megabytes
    assert format_memory(megabytes) == written


def test_memory_scales_up_to_the_next_megabyte() -> None:
    assert scaled_memory("16G", Fraction("1.5")) == "24G"
    assert scaled_memory("3G", Fraction("1.5")) == "4608M"
    assert scaled_memory("16G", Fraction("1.1")) == "18023M"  # 18022.4, rounded up
    assert scaled_memory("100K", Fraction(2)) == "1M"
    assert scaled_memory("512G", Fraction(2)) == "1T"


@pytest.mark.parametrize("text", ["0", "0G", "", "16GB", "1.5G", "-1G", "G", "16 G", "١٦G"])
def test_memory_that_is_no_size_or_all_of_a_node_is_refused(text: str) -> None:
    with pytest.raises(LimitError):
        parse_memory(text)


def refused(study: Path, slurm: CannedSlurm | None, **options: object) -> str:
    with pytest.raises(ConfigWriterError) as caught:
        prepared(study, slurm, **options)
    return str(caught.value)


def test_an_experiment_without_launch_slurm_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "local", runs=2, slurm="~")
    assert "has no launch.slurm, so no job array to resubmit" in refused(study, CannedSlurm())


def test_a_generated_folder_out_of_date_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "drift", runs=2, slurm=SLURM)
    config = study / "configs" / "run_001.yaml"
    config.write_text(config.read_text().replace("seed: 1", "seed: 7"))
    said = refused(study, CannedSlurm())
    assert "the generated configs are out of date (1 file differs" in said
    assert "regenerate first" in said


def test_an_experiment_changed_after_generating_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "changed", runs=2, slurm=SLURM)
    experiment = study / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("seed: [0, 1]", "seed: [0, 1, 2]"))
    assert "regenerate first" in refused(study, CannedSlurm())


def test_a_factor_without_the_option_it_scales_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "bare", runs=2)
    said = refused(study, CannedSlurm(), more_time=Fraction(2))
    assert "set time in launch.slurm.sbatch" in said
    said = refused(study, CannedSlurm(), more_memory=Fraction(2))
    assert "set mem in launch.slurm.sbatch" in said


@pytest.mark.parametrize(
    ("sbatch", "option", "said"),
    [
        ("{time: UNLIMITED}", "more_time", "time limit UNLIMITED is no limit"),
        ("{time: '1h'}", "more_time", "'1h' is not a Slurm time limit"),
        ("{mem: 0}", "more_memory", "memory 0 is all of each node's memory"),
    ],
)
def test_a_limit_that_cannot_be_scaled_is_refused(
    tmp_path: Path, sbatch: str, option: str, said: str
) -> None:
    study = make_study(tmp_path / "unscalable", runs=2, slurm=f"{{sbatch: {sbatch}}}")
    assert said in refused(study, CannedSlurm(), **{option: Fraction(2)})


def test_where_slurm_does_not_answer_nothing_is_submitted_but_a_dry_run_notes_it(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "silent", runs=2, slurm=SLURM)
    silent = CannedSlurm(squeue_me=None, squeue=None)
    assert "Slurm does not answer here (squeue)" in refused(study, silent)
    dry = prepare_resubmission(study, slurm=silent, need_slurm=False)
    assert len(dry.runs) == 2 and dry.notes


def test_a_failed_sbatch_says_its_last_line_and_that_nothing_was_submitted(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "failing", runs=2, slurm=SLURM)
    with pytest.raises(ConfigWriterError) as caught:
        submit(prepared(study, CannedSlurm()), RecordingSbatch(fail_at=0))
    assert str(caught.value) == (
        "sbatch failed for run_000-run_001: bad partition; nothing was submitted"
    )


def test_a_part_that_fails_after_another_was_submitted_says_what_was_and_was_not(
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "parts", runs=10, slurm="{max_array_size: 4}")
    submitted: list[str] = []
    with pytest.raises(ConfigWriterError) as caught:
        submit(
            prepared(study, CannedSlurm()),
            RecordingSbatch(fail_at=1),
            lambda done: submitted.append(done.job),
        )
    assert submitted == ["100"]  # told as it happened
    assert str(caught.value) == (
        "sbatch failed for run_004-run_007: bad partition; submitted: job 100 "
        "(run_000-run_003); not submitted: run_004-run_009"
    )


def test_an_evaluation_that_fails_after_its_training_array_says_so(tmp_path: Path) -> None:
    study = make_study(tmp_path / "evaluated", runs=2, slurm=SLURM)
    with_evaluation(study)
    with pytest.raises(ConfigWriterError) as caught:
        submit(prepared(study, CannedSlurm()), RecordingSbatch(fail_at=1, said="x"))
    assert str(caught.value) == (
        "sbatch failed for the evaluation of run_000-run_001: x; submitted: job 100 "
        "(run_000-run_001); not submitted: the evaluation of run_000-run_001"
    )


def test_sbatch_output_that_is_no_job_id_stops_before_the_evaluation(tmp_path: Path) -> None:
    study = make_study(tmp_path / "evaluated", runs=2, slurm=SLURM)
    with_evaluation(study)
    calls: list[Sequence[str]] = []

    def chatty(arguments: Sequence[str], folder: Path) -> str:
        calls.append(arguments)
        return "Submitted batch job 5\n"  # without --parsable's plain id

    with pytest.raises(ConfigWriterError) as caught:
        submit(prepared(study, CannedSlurm()), chatty)
    assert len(calls) == 1 and "squeue --me shows whether it was submitted" in str(caught.value)


# The real runner, with a script named sbatch on PATH standing in for Slurm's.
FAKE_SBATCH = """#!/bin/sh
pwd > "$RECORD"; printf '%s\\n' "$@" >> "$RECORD"
if [ -n "$FAIL" ]; then echo "sbatch: warning: something first" >&2; echo "$FAIL" >&2; exit 1; fi
echo "4242;cluster"
"""


@pytest.fixture
def fake_sbatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bin_folder = tmp_path / "bin"
    bin_folder.mkdir()
    script = bin_folder / "sbatch"
    script.write_text(FAKE_SBATCH)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    record = tmp_path / "record"
    monkeypatch.setenv("PATH", f"{bin_folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("RECORD", str(record))
    yield record


def test_the_real_runner_runs_sbatch_in_the_folder_and_reads_its_last_error_line(
    tmp_path: Path, fake_sbatch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run_sbatch(["--array=0-1", TRAIN], tmp_path) == "4242;cluster\n"
    assert fake_sbatch.read_text().splitlines() == [str(tmp_path), "--array=0-1", TRAIN]
    monkeypatch.setenv("FAIL", "sbatch: error: Batch job submission failed: Invalid partition")
    with pytest.raises(SbatchFailed, match="^sbatch: error: Batch job submission failed: Inv"):
        run_sbatch([TRAIN], tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    with pytest.raises(SbatchFailed):
        run_sbatch([TRAIN], tmp_path)


# The command line.


@pytest.fixture
def canned(
    monkeypatch: pytest.MonkeyPatch, cli: Callable[..., CliResult]
) -> Callable[[CannedSlurm | None, RecordingSbatch | None], Callable[..., CliResult]]:
    def with_slurm(
        slurm: CannedSlurm | None, sbatch: RecordingSbatch | None
    ) -> Callable[..., CliResult]:
        monkeypatch.setattr(status_module, "default_slurm", lambda: slurm)
        monkeypatch.setattr(sbatch_module, "default_sbatch", lambda: sbatch)
        return cli

    return with_slurm


Canned = Callable[[CannedSlurm | None, RecordingSbatch | None], Callable[..., CliResult]]


def test_the_command_says_which_runs_why_the_jobs_and_what_it_left_alone(
    tmp_path: Path, canned: Canned
) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    sbatch = RecordingSbatch()
    result = canned(slurm, sbatch)("resubmit", study, "--more-time", "2")
    assert result.code == 0, result.err
    log = study / "out"
    assert result.out == (
        "resubmitting 6 runs:\n"
        "run_003  failed                         task 40_3 FAILED (exit 1) [sacct]\n"
        "run_004  timed out                      task 40_4 TIMEOUT (exit 0) [sacct] "
        "[--time=03:00:00]\n"
        "run_005  out of memory                  task 40_5 OUT_OF_MEMORY (exit 0) [sacct]\n"
        "run_006  preempted                      task 40_6 PREEMPTED (exit 0) [sacct]\n"
        f"run_008  {STOPPED}  task 40_8 ended COMPLETED, but no final checkpoint in "
        f"{log}/run_008/epoch_0\n"
        f"run_009  not started                    no task queued, no log or checkpoint in "
        f"{log}/run_009\n"
        "note: run_005 gets the same memory again: --more-memory FACTOR gives more\n"
        "submitted job 100: trains run_003, run_005-run_006, run_008-run_009\n"
        "submitted job 101: trains run_004 with --time=03:00:00\n"
        "left alone: 1 finished, 1 running, 1 queued, 1 cancelled (--cancelled resubmits "
        "cancelled runs)\n"
    )
    assert sbatch.arguments == [
        ["--parsable", "--array=3,5-6,8-9%2", TRAIN],
        ["--parsable", "--array=4-4%2", "--time=03:00:00", TRAIN],
    ]
    assert all(folder == study for _, folder in sbatch.calls)


def test_quiet_prints_only_the_job_ids(tmp_path: Path, canned: Canned) -> None:
    study = make_study(tmp_path / "quiet", runs=2, slurm=SLURM)
    with_evaluation(study)
    result = canned(CannedSlurm(), RecordingSbatch())("resubmit", study, "-q")
    assert (result.code, result.out, result.err) == (0, "100\n101\n", "")


def test_the_dry_run_prints_a_shell_script_and_submits_nothing(
    tmp_path: Path, canned: Canned
) -> None:
    study, slurm = every_status_study(tmp_path / "every")
    result = canned(slurm, None)("resubmit", study, "--dry-run", "--cancelled")
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    commands = [line for line in lines if not line.startswith("# ")]
    assert commands == [f"sbatch --parsable --array=3-9%2 {TRAIN}"]
    assert lines[0] == "# would resubmit 7 runs:"
    assert f"# from {study}:" in lines
    assert lines[-1] == "# left alone: 1 finished, 1 running, 1 queued"
    quiet = canned(slurm, None)("resubmit", study, "--dry-run", "-q")
    assert quiet.out == f"sbatch --parsable --array=3-6,8-9%2 {TRAIN}\n"


def test_nothing_to_resubmit_says_so_and_exits_0(tmp_path: Path, canned: Canned) -> None:
    study = make_study(tmp_path / "done", runs=2, slurm=SLURM)
    save_final(study, 0)
    task_log(study, 1, job=9)
    sbatch = RecordingSbatch()
    result = canned(CannedSlurm(squeue="9_1|RUNNING|None\n"), sbatch)("resubmit", study)
    assert (result.code, result.out) == (
        0,
        "nothing to resubmit; left alone: 1 finished, 1 running\n",
    )
    assert sbatch.calls == []


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--more-time", "1"], "argument --more-time: 1 is no more: give a factor above 1"),
        (["--more-memory", "0.5"], "argument --more-memory: 0.5 is no more"),
        (["--more-time", "nan"], "argument --more-time: 'nan' is not a number"),
        (["--more-time", "1/0"], "argument --more-time: '1/0' is not a number"),
    ],
)
def test_a_factor_that_is_no_more_is_one_error_line(
    tmp_path: Path, canned: Canned, arguments: list[str], said: str
) -> None:
    sbatch = RecordingSbatch()
    result = canned(CannedSlurm(), sbatch)("resubmit", tmp_path, *arguments)
    assert result.code == 2 and said in result.err and result.err.count("\n") == 1
    assert sbatch.calls == []


def refusal(cli: Callable[..., CliResult], *argv: str | Path) -> str:
    result = cli(*argv)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    return result.err


def test_every_refusal_is_one_error_line_and_submits_nothing(
    tmp_path: Path, canned: Canned
) -> None:
    sbatch = RecordingSbatch()
    cli = canned(CannedSlurm(), sbatch)
    local = make_study(tmp_path / "local", runs=2, slurm="~")
    assert "has no launch.slurm" in refusal(cli, "resubmit", local)
    study = make_study(tmp_path / "study", runs=2, slurm="{}")
    assert "set time in launch.slurm.sbatch" in refusal(cli, "resubmit", study, "--more-time", "2")
    config = study / "configs" / "run_000.yaml"
    config.write_text(config.read_text() + "extra: 1\n")
    assert "regenerate first" in refusal(cli, "resubmit", study)
    assert "file not found" in refusal(cli, "resubmit", tmp_path / "nowhere")
    silent = canned(CannedSlurm(squeue_me=None, squeue=None), sbatch)
    fresh = make_study(tmp_path / "fresh", runs=1, slurm="{}")
    assert "Slurm does not answer here" in refusal(silent, "resubmit", fresh)
    assert sbatch.calls == []


def test_without_sbatch_the_command_refuses_but_the_dry_run_works(
    tmp_path: Path, canned: Canned
) -> None:
    study = make_study(tmp_path / "nosbatch", runs=2, slurm=SLURM)
    cli = canned(None, None)  # neither Slurm's commands nor sbatch installed
    assert "error: sbatch is not installed here" in refusal(cli, "resubmit", study)
    dry = cli("resubmit", study, "--dry-run")
    assert dry.code == 0
    assert "# note: Slurm's commands are not installed here" in dry.out


def test_a_failing_sbatch_is_one_error_line_after_what_was_submitted(
    tmp_path: Path, canned: Canned
) -> None:
    study = make_study(tmp_path / "parts", runs=6, slurm="{max_array_size: 4}")
    sbatch = RecordingSbatch(fail_at=1, said="sbatch: error: QOSMaxSubmitJobPerUserLimit")
    result = canned(CannedSlurm(), sbatch)("resubmit", study)
    assert result.code == 2
    assert result.out.splitlines()[-1] == "submitted job 100: trains run_000-run_003"
    assert result.err == (
        "error: sbatch failed for run_004-run_005: sbatch: error: QOSMaxSubmitJobPerUserLimit; "
        "submitted: job 100 (run_000-run_003); not submitted: run_004-run_005\n"
    )


def test_resubmit_never_imports_torch(tmp_path: Path) -> None:
    study, _ = every_status_study(tmp_path / "every")
    done = python_without_torch(
        "import sys\n"
        "from torchtune_config_writer.cli import main\n"
        "from torchtune_config_writer.runs import status\n"
        "status.default_slurm = lambda: None  # the files alone: no Slurm of this machine\n"
        f"code = main(['resubmit', {str(study)!r}, '--dry-run', '--more-time', '2'])\n"
        "assert 'torch' not in sys.modules and 'torchtune' not in sys.modules\n"
        "sys.exit(code)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "sbatch --parsable" in done.stdout


def test_resubmitting_writes_nothing(tmp_path: Path) -> None:
    # It reads; the generated folder and the runs' files stay as they were.
    study, slurm = every_status_study(tmp_path / "every")
    before = {p: p.read_bytes() for p in sorted(study.rglob("*")) if p.is_file()}
    submit(prepared(study, slurm), RecordingSbatch())
    assert {p: p.read_bytes() for p in sorted(study.rglob("*")) if p.is_file()} == before


def test_a_deleted_script_is_drift_and_refused(tmp_path: Path, canned: Canned) -> None:
    study = make_study(tmp_path / "deleted", runs=2, slurm=SLURM)
    (study / TRAIN).unlink()
    sbatch = RecordingSbatch()
    assert "regenerate first" in refusal(canned(CannedSlurm(), sbatch), "resubmit", study)
    assert sbatch.calls == []


def test_a_timestamped_experiment_never_generated_has_no_script_to_submit(
    tmp_path: Path, canned: Canned
) -> None:
    study = make_study(tmp_path / "stamped", runs=2, slurm=SLURM)
    experiment = study / "experiment.yaml"
    experiment.write_text(experiment.read_text() + f"output:\n  base_dir: {tmp_path / 'runs'}\n")
    said = refusal(canned(CannedSlurm(), RecordingSbatch()), "resubmit", study)
    assert "there is no generated job array script to submit: generate the experiment" in said


def test_retired_run_ids_are_left_out_of_the_array(tmp_path: Path) -> None:
    study = make_study(tmp_path / "gaps", runs=5, slurm=SLURM)
    experiment = study / "experiment.yaml"
    experiment.write_text(experiment.read_text().replace("[0, 1, 2, 3, 4]", "[0, 2, 3, 4]"))
    generate(study)  # run_001 is retired; the others keep their ids
    save_final(study, 3)
    [array] = prepared(study, CannedSlurm()).arrays
    assert array.runs == ("run_000", "run_002", "run_004")
    assert array.training == ("--parsable", "--array=0,2,4%2", TRAIN)


def test_a_run_training_outside_slurm_on_this_machine_is_left_alone(tmp_path: Path) -> None:
    study = make_study(tmp_path / "by_hand", runs=2, slurm=SLURM)
    logs = study / "out" / "run_001" / "logs"
    logs.mkdir(parents=True)
    (logs / "log_1700000000.txt").write_text("Step 3 | loss:1.0 \n")
    # A real process whose arguments name the config, as `tune run` started by hand does.
    process = started_process(study, "configs/run_001.yaml")
    try:
        resubmission = prepared(study, CannedSlurm())
    finally:
        process.kill()
        process.wait()
    assert [run.id for run in resubmission.runs] == ["run_000"]
    assert resubmission.left_alone == {"running": 1}


def test_a_finished_run_whose_task_is_still_queued_is_left_alone(tmp_path: Path) -> None:
    study = make_study(tmp_path / "queued_done", runs=2, slurm=SLURM)
    save_final(study, 0)
    task_log(study, 1, job=12)
    slurm = CannedSlurm(sacct="12_0|PENDING|0:0|Priority\n12_1|FAILED|1:0|None\n")
    resubmission = prepared(study, slurm)
    assert [run.id for run in resubmission.runs] == ["run_001"]
    assert resubmission.left_alone == {"finished": 1}


def test_more_time_with_no_run_timed_out_adds_no_array(tmp_path: Path) -> None:
    study = make_study(tmp_path / "no_timeout", runs=2, slurm=SLURM)
    arrays = prepared(study, CannedSlurm(), more_time=Fraction(2)).arrays
    assert [a.training for a in arrays] == [("--parsable", "--array=0-1%2", TRAIN)]


def test_verbose_shows_each_sbatch_line_under_its_job(tmp_path: Path, canned: Canned) -> None:
    study = make_study(tmp_path / "verbose", runs=2, slurm=SLURM)
    result = canned(CannedSlurm(), RecordingSbatch())("resubmit", study, "-v")
    assert result.code == 0, result.err
    assert (
        f"submitted job 100: trains run_000-run_001\n  sbatch --parsable --array=0-1%2 {TRAIN}\n"
    ) in result.out


def test_a_queued_part_whose_runs_are_not_known_yet_is_refused(tmp_path: Path) -> None:
    study = make_study(tmp_path / "parts", runs=10, slurm="{max_array_size: 4}")
    # The second part, queued: none of its tasks has logged, so its offset is unknown.
    queued = f"77_[0-3]|PENDING|Priority|{study}|{TRAIN}\n"
    said = refused(study, CannedSlurm(squeue_me=queued))
    assert said.startswith("job 77 of this study is queued, and which runs it trains is known")
    task_log(study, 4, job=77, task=0)  # one task started: the part is run_004 to run_007
    started = f"77_0|RUNNING|None|{study}|{TRAIN}\n77_[1-3]|PENDING|Priority|{study}|{TRAIN}\n"
    resubmission = prepared(study, CannedSlurm(squeue_me=started))
    assert [run.id for run in resubmission.runs] == [f"run_00{n}" for n in (0, 1, 2, 3, 8, 9)]
    assert resubmission.left_alone == {"running": 1, "queued": 3}
