"""``results EXP``: every run's values, status and metrics, read from the files the runs wrote
(torchtune's DiskLogger text logs, TensorBoard events, W&B offline folders, evaluation results
JSON), and ``--best METRIC``: the winner and its final checkpoint."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from torchtune_config_writer.runs.metrics import parse_disk_log, read_run_metrics
from torchtune_config_writer.runs.results import read_results
from torchtune_config_writer.runs.results_report import render_text

from .conftest import CliResult, python_without_torch, snapshot
from .test_eval_table import TABLE_048, recipe_log

BASE = """\
output_dir: out
model:
  _component_: torchtune.models.llama2.lora_llama2
  lora_rank: 4
tokenizer:
  _component_: torchtune.models.llama2.llama2_tokenizer
  path: tok.model
checkpointer:
  _component_: torchtune.training.FullModelTorchTuneCheckpointer
  checkpoint_files: [model.pt]
  output_dir: ${output_dir}
metric_logger:
  _component_: torchtune.training.metric_logging.DiskLogger
  log_dir: ${output_dir}/logs
optimizer:
  lr: 0.001
epochs: 1
device: cpu
dtype: fp32
"""


def study(
    tmp_path: Path, values: str = "[0.001, 0.01, 0.1]", extra: str = "", base: str = BASE
) -> Path:
    """An experiment of three runs over ``optimizer.lr`` (``out/run_00N`` each); its folder."""
    folder = tmp_path / "exp"
    folder.mkdir()
    (folder / "base.yaml").write_text(base, encoding="utf-8")
    (folder / "experiment.yaml").write_text(
        "experiment:\n  name: study\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: lora_finetune_single_device\n"
        f"variables:\n  optimizer.lr: {values}\n" + extra,
        encoding="utf-8",
    )
    return folder


def write_log(folder: Path, name: str, text: str) -> None:
    """A DiskLogger file, lines as torchtune writes them (``log_dict``: a space after each)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def finish(run: Path) -> None:
    """The final checkpoint torchtune writes for epochs: 1."""
    (run / "epoch_0").mkdir(parents=True)
    (run / "epoch_0" / "model-00001-of-00001.bin").write_bytes(b"weights")


@pytest.fixture
def three_runs(tmp_path: Path) -> Path:
    """run_000 finished, resumed once (its log in two files); run_001 stopped, one log, no
    checkpoint; run_002 not started."""
    folder = study(tmp_path)
    logs = folder / "out" / "run_000" / "logs"
    # The first start: three steps, the third cut short by the crash, then the resumed start
    # logs step 3 again, and on: the later file's step 3 replaces the earlier one.
    write_log(
        logs,
        "log_1765100000.txt",
        """
        Step 1 | loss:5.545177936553955 lr:0.001 tokens_per_second_per_gpu:311.0286 
        Step 2 | loss:5.412 lr:0.001 tokens_per_second_per_gpu:320.5 
        Step 3 | loss:9.9 lr:0.001 tokens_per
        """,
    )
    write_log(
        logs,
        "log_1765103600.txt",
        """
        Step 3 | loss:5.301 lr:0.001 tokens_per_second_per_gpu:330.25 
        Step 4 | loss:5.350 lr:0.001 tokens_per_second_per_gpu:340.0 
        """,
    )
    finish(folder / "out" / "run_000")
    write_log(
        folder / "out" / "run_001" / "logs",
        "log_1765100001.txt",
        """
        Step 1 | loss:5.6 lr:0.01 tokens_per_second_per_gpu:300.0 
        Step 2 | loss:4.9 lr:0.01 tokens_per_second_per_gpu:310.0 
        """,
    )
    return folder


def test_the_table_has_every_run_its_values_status_and_final_and_best_metrics(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    before = snapshot(three_runs)
    result = cli("results", three_runs)
    assert (result.code, result.err) == (0, "")
    assert result.out == textwrap.dedent(
        """\
        study: 3 runs, 1 finished, 1 stopped, 1 not started

        run      optimizer.lr  status       steps  loss  loss (min)  lr     tokens_per_second_per_gpu
        run_000  0.001         finished     4      5.35  5.301       0.001  340
        run_001  0.01          stopped      2      4.9   4.9         0.01   310
        run_002  0.1           not started  -      -     -           -      -
        """  # noqa: E501
    )
    assert snapshot(three_runs) == before  # reads only


def test_a_resumed_runs_logs_are_read_in_the_order_of_their_times_not_their_names(
    tmp_path: Path,
) -> None:
    # log_999 is older than log_1000, though it sorts after it as text.
    logs = tmp_path / "logs"
    write_log(logs, "log_999.txt", "Step 1 | loss:2.0 \nStep 2 | loss:1.5 \n")
    write_log(logs, "log_1000.txt", "Step 2 | loss:1.25 \nStep 3 | loss:1.0 \n")
    write_log(logs, "notes.txt", "Step 9 | loss:0.0 \n")  # not DiskLogger's name
    loss = read_run_metrics(logs).metrics["loss"]
    assert loss.steps == ((1, 2.0), (2, 1.25), (3, 1.0))
    assert (loss.final, loss.minimum, loss.maximum) == (1.0, 1.0, 2.0)


def test_a_disk_log_named_by_the_config_is_read(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    base = BASE.replace(
        "  log_dir: ${output_dir}/logs\n", "  log_dir: ${output_dir}/logs\n  filename: train.txt\n"
    )
    folder = study(tmp_path, "[0.001, 0.01]", base=base)
    logs = folder / "out" / "run_001" / "logs"
    write_log(logs, "train.txt", "Step 1 | loss:3.0 \nStep 2 | loss:2.0 \n")
    write_log(logs, "other.txt", "Step 3 | loss:0.5 \n")  # neither named nor DiskLogger's
    document = json.loads(cli("results", folder, "--format", "json").out)
    assert document["runs"][1]["metrics"]["loss"]["final"] == 2.0
    assert document["runs"][1]["steps"] == 2 and document["runs"][0]["status"] == "not started"


def test_log_lines_as_torchtune_writes_them_and_what_is_passed_over() -> None:
    text = (
        "Step 1 | loss:5.545177936553955 lr:0.001 tokens_per_second_per_gpu:311.0286 \n"
        "Step 2 | loss:5.5\n"  # DiskLogger.log: one value, no trailing space
        "Step 3 | loss:tensor(4.25) grad_norm:nan\n"  # a tensor's str; a loss that diverged
        "Step 4 | loss:abc lr:0.002 \n"
        "Writing logs to x\n"
        "Step 5 | loss:1\n"  # cut short: what was written of it is read
        "Step 6 | peak_memory_active:tensor(1.5, device='cpu') \n"
    )
    parsed = parse_disk_log(text)
    assert parsed["loss"] == {1: 5.545177936553955, 2: 5.5, 3: 4.25, 5: 1.0}
    assert parsed["lr"] == {1: 0.001, 4: 0.002}
    assert parsed["tokens_per_second_per_gpu"] == {1: 311.0286}
    assert math.isnan(parsed["grad_norm"][3])
    assert parsed["peak_memory_active"] == {6: 1.5}


def test_csv_has_every_value_whole(three_runs: Path, cli: Callable[..., CliResult]) -> None:
    result = cli("results", three_runs, "--format", "csv")
    assert result.code == 0
    rows = list(csv.DictReader(io.StringIO(result.out)))
    assert [row["run"] for row in rows] == ["run_000", "run_001", "run_002"]
    assert rows[0]["loss"] == "5.35" and rows[0]["loss (min)"] == "5.301"
    assert rows[0]["tokens_per_second_per_gpu"] == "340.0"
    assert rows[0]["status"] == "finished" and rows[0]["steps"] == "4"
    assert rows[2]["loss"] == "" and rows[2]["status"] == "not started"


def test_json_has_each_metrics_final_min_max_and_steps(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("results", three_runs, "--format", "json")
    assert result.code == 0
    document = json.loads(result.out)
    assert document["experiment"] == "study"
    assert document["variables"] == ["optimizer.lr"]
    assert document["metrics"] == ["loss", "lr", "tokens_per_second_per_gpu"]
    first, second, third = document["runs"]
    assert first["id"] == "run_000" and first["params"] == {"optimizer.lr": 0.001}
    assert first["status"] == "finished" and first["steps"] == 4
    assert first["metrics"]["loss"] == {
        "final": 5.35, "min": 5.301, "max": 5.545177936553955, "last_step": 4, "count": 4,
        "source": "log",
    }  # fmt: skip
    assert first["final_checkpoint"] == str(three_runs / "out" / "run_000" / "epoch_0")
    assert second["metrics"]["loss"]["final"] == 4.9
    assert third["metrics"] == {} and third["steps"] is None


def test_markdown_writes_names_and_values_as_code(
    three_runs: Path, cli: Callable[..., CliResult], tmp_path: Path
) -> None:
    report = tmp_path / "results.md"
    result = cli("results", three_runs, "--format", "markdown", "--output", report,
                 "--metrics", "loss")  # fmt: skip
    assert (result.code, result.out) == (0, "")
    lines = report.read_text().splitlines()
    assert lines[0] == "**`study`**: 3 runs, 1 finished, 1 stopped, 1 not started"
    assert lines[2] == "| `run` | `optimizer.lr` | `status` | `steps` | `loss` | `loss (min)` |"
    assert lines[4] == "| `run_000` | 0.001 | `finished` | 4 | 5.35 | 5.301 |"
    assert lines[6] == "| `run_002` | 0.1 | `not started` | - | - | - |"
    assert "- note: 2 more metrics not shown (--metrics chooses)" in lines


def test_a_run_logged_to_wandb_offline_is_read_from_its_history_or_summary(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    folder = study(tmp_path, "[0.001, 0.01]")
    run = folder / "out" / "run_000" / "logs" / "wandb" / "offline-run-20261207_101500-ab12cd34"
    (run / "files").mkdir(parents=True)
    (run / "files" / "wandb-summary.json").write_text(
        json.dumps({"loss": 2.5, "lr": 0.001, "_step": 40, "_runtime": 12.5, "_wandb": {}})
    )
    other = folder / "out" / "run_001" / "logs" / "wandb" / "offline-run-20261207_101501-ef56ab78"
    (other / "files").mkdir(parents=True)
    (other / "files" / "wandb-summary.json").write_text(json.dumps({"loss": 9.0, "_step": 40}))
    history = [{"loss": 3.0, "_step": 1}, {"loss": 2.0, "_step": 2, "global_step": "x"}]
    (other / "files" / "wandb-history.jsonl").write_text(
        "\n".join(json.dumps(row) for row in history) + "\n"
    )
    result = cli("results", folder, "--format", "json")
    first, second = json.loads(result.out)["runs"]
    assert first["metrics"]["loss"]["final"] == 2.5 and first["steps"] == 40
    assert first["metrics"]["loss"]["source"] == "wandb"
    assert "_runtime" not in first["metrics"]
    # The history has every step; the summary is only its last values.
    assert second["metrics"]["loss"] == {
        "final": 2.0, "min": 2.0, "max": 3.0, "last_step": 2, "count": 2, "source": "wandb"
    }  # fmt: skip
    assert first["status"] == second["status"] == "stopped"


def test_a_wandb_store_without_wandb_installed_is_a_note_or_its_summary(
    tmp_path: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # as if it were not installed
    folder = study(tmp_path, "[0.001, 0.01]")
    for index, name in enumerate(["offline-run-20261207_101500-ab12cd34", "run-20261207_1016-x"]):
        run = folder / "out" / f"run_00{index}" / "logs" / "wandb" / name
        (run / "files").mkdir(parents=True)
        (run / f"run-{name[-8:]}.wandb").write_bytes(b":W&B\xe1\xbe\x00")
    # An older wandb wrote the summary beside its store: the last values are read from it.
    summary = folder / "out" / "run_001" / "logs" / "wandb" / "run-20261207_1016-x" / "files"
    (summary / "wandb-summary.json").write_text(json.dumps({"loss": 2.5, "_step": 7}))
    result = cli("results", folder, "--format", "json")
    first, second = json.loads(result.out)["runs"]
    assert first["metrics"] == {} and second["metrics"]["loss"]["final"] == 2.5
    assert json.loads(result.out)["notes"] == [
        "wandb is not installed, its run-*.wandb files are not read (pip install wandb) (run_000)"
    ]


LM_EVAL_RESULTS = {
    "results": {
        "truthfulqa_mc2": {"alias": "truthfulqa_mc2", "acc,none": 0.41, "acc_stderr,none": 0.02},
        "gsm8k": {"exact_match,strict-match": 0.12, "exact_match,flexible-extract": 0.15},
    },
    "config": {"model": "hf"},
}


def test_evaluation_results_json_in_the_eval_folder_are_columns(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    folder = study(tmp_path, "[0.001, 0.01]", "evaluation:\n  tasks: [truthfulqa_mc2, gsm8k]\n")
    evaluation = folder / "out" / "run_001" / "eval"
    evaluation.mkdir(parents=True)
    (evaluation / "results_2026-12-07T10-00-00.json").write_text(json.dumps(LM_EVAL_RESULTS))
    (evaluation / "other.json").write_text('["not results"]')
    result = cli("results", folder, "--format", "csv")
    assert result.code == 0
    header, first, second = list(csv.reader(io.StringIO(result.out)))
    assert header == [
        "run", "optimizer.lr", "status", "steps", "gsm8k/exact_match,flexible-extract",
        "gsm8k/exact_match,strict-match", "truthfulqa_mc2/acc", "truthfulqa_mc2/acc_stderr",
    ]  # fmt: skip
    assert second == ["run_001", "0.01", "not started", "", "0.15", "0.12", "0.41", "0.02"]
    assert first[4:] == ["", "", "", ""]
    best = cli("results", folder, "--best", "truthfulqa_mc2/acc")
    assert best.out.startswith("best: run_001, highest final truthfulqa_mc2/acc 0.41 (of 1 run")


def test_the_results_table_an_evaluation_task_logged_is_read_without_torch(
    tmp_path: Path,
) -> None:
    folder = study(tmp_path, "[0.001, 0.01]", "evaluation:\n  tasks: [hellaswag, gsm8k]\n")
    evaluation = folder / "out" / "run_000" / "eval"
    evaluation.mkdir(parents=True)
    # torchtune's eleuther_eval writes no results file: its log is all there is.
    (evaluation / "slurm_41_0.log").write_text(recipe_log(TABLE_048), encoding="utf-8")
    script = (
        "import sys; from torchtune_config_writer.cli import main; "
        f"sys.exit(main(['results', {str(folder)!r}, '--format', 'csv']))"
    )
    done = python_without_torch(script)
    assert (done.returncode, done.stderr) == (0, "")
    header, first, second = list(csv.reader(io.StringIO(done.stdout)))
    values = dict(zip(header, first, strict=True))
    assert values["hellaswag/acc"] == "0.5" and values["hellaswag/acc_norm_stderr"] == "0.0111"
    assert values["gsm8k/exact_match,strict-match"] == "0.25"
    assert values["wikitext/word_perplexity"] == "12.5"
    assert second[4:] == [""] * (len(header) - 4)


def test_best_names_the_winner_its_values_and_its_existing_checkpoint(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("results", three_runs, "--best", "loss")
    assert (result.code, result.err) == (0, "")
    out = three_runs / "out"
    assert result.out == (
        "best: run_001, lowest final loss 4.9 (of 2 runs with it)\n"
        "  optimizer.lr: 0.01\n"
        "  status: stopped\n"
        f"  config: {three_runs / 'configs' / 'run_001.yaml'}\n"
        f"  checkpoint: {out / 'run_001' / 'epoch_0'} (does not exist yet)\n"
        "without a final loss: run_002 (not started)\n"
    )
    highest = cli("results", three_runs, "--best", "loss", "--max", "--format", "json")
    document = json.loads(highest.out)
    assert document["direction"] == "max" and document["value"] == 5.35
    assert document["winners"][0]["id"] == "run_000"
    assert document["winners"][0]["checkpoint_exists"] is True
    assert document["winners"][0]["final_checkpoint"] == str(out / "run_000" / "epoch_0")
    assert document["tie"] is False and document["missing"] == ["run_002"]


def test_a_tie_is_said_and_no_run_is_chosen(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    folder = study(tmp_path)
    for run in ("run_000", "run_002"):
        write_log(
            folder / "out" / run / "logs", "log_1.txt", "Step 1 | loss:3.0 \nStep 2 | loss:1.5 \n"
        )
    write_log(
        folder / "out" / "run_001" / "logs", "log_1.txt", "Step 1 | loss:1.0 \nStep 2 | loss:2.0 \n"
    )
    result = cli("results", folder, "--best", "loss")
    assert result.code == 0
    lines = result.out.splitlines()
    # run_001's best step (1.0) is not its final value: the final checkpoint is what is compared.
    assert lines[0] == (
        "tie: run_000, run_002 share the lowest final loss, 1.5 (of 3 runs with it); none is chosen"
    )
    assert "run_000:" in lines and "run_002:" in lines and "run_001:" not in lines
    assert json.loads(cli("results", folder, "--best", "loss", "--format", "json").out)["tie"]


def test_best_of_a_metric_no_run_has_yet_says_so(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    for run in ("run_000", "run_001"):
        for log in (three_runs / "out" / run / "logs").iterdir():
            log.write_text("")  # started, nothing logged yet
    result = cli("results", three_runs, "--best", "loss")
    assert result.code == 2 and result.err.startswith("error: no metric 'loss': no run of study")


def test_an_unknown_metric_is_one_error_line_with_a_guess(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    for args in (("--best", "los"), ("--metrics", "loss,tokens_per_second")):
        result = cli("results", three_runs, *args)
        assert result.code == 2 and result.out == ""
        [line] = result.err.splitlines()
        assert line.startswith("error: no run logged a metric ")
        assert "did you mean" in line


def test_best_of_a_metric_of_no_known_direction_asks_for_min_or_max(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("results", three_runs, "--best", "lr")
    assert result.code == 2
    assert result.err == (
        "error: which is better for 'lr', lower or higher? add --min or --max (only loss and "
        "accuracy-like names have a default)\n"
    )
    assert cli("results", three_runs, "--best", "lr", "--min").out.startswith(
        "best: run_000, lowest final lr 0.001"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--min",), "error: --min and --max choose the direction of --best METRIC: add it\n"),
        (
            ("--best", "loss", "--format", "csv"),
            "error: --best writes text or json, not csv: drop --format, or use json\n",
        ),
    ],
)
def test_options_that_do_not_go_together_are_one_error_line(
    three_runs: Path, cli: Callable[..., CliResult], args: tuple[str, ...], message: str
) -> None:
    result = cli("results", three_runs, *args)
    assert (result.code, result.out, result.err) == (2, "", message)


def test_a_missing_experiment_is_one_error_line(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    result = cli("results", tmp_path / "nowhere")
    assert result.code == 2 and len(result.err.splitlines()) == 1
    assert result.err.startswith("error: ")


def test_event_files_without_tensorboard_installed_are_a_note(
    three_runs: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    logs = three_runs / "out" / "run_002" / "logs" / "run_0_1765100000.5"
    logs.mkdir(parents=True)
    (logs / "events.out.tfevents.1765100000.host.1.0").write_bytes(b"\x00" * 16)
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    result = cli("results", three_runs)
    assert result.code == 0
    assert result.out.splitlines()[-1] == (
        "note: tensorboard is not installed, its event files are not read "
        "(pip install tensorboard) (run_002)"
    )
    assert re.search(r"run_002 +0\.1 +stopped", result.out)


def test_results_never_imports_torch(three_runs: Path) -> None:
    script = (
        "import sys; from torchtune_config_writer.cli import main; "
        f"code = main(['results', {str(three_runs)!r}, '--best', 'loss']); "
        # wandb too: 700 modules, imported only where a run has a W&B folder.
        "assert 'wandb' not in sys.modules; sys.exit(code)"
    )
    done = python_without_torch(script)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith("best: run_001")


@pytest.mark.needs_torch
def test_tensorboard_events_written_by_torch_are_read_back(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed here")
    from torch.utils.tensorboard import SummaryWriter

    logs = tmp_path / "logs"
    # As torchtune's TensorBoardLogger organizes them: a folder per start; the second resumes.
    for start, steps in ((1765100000, [(1, 4.0), (2, 3.0)]), (1765103600, [(2, 2.5), (3, 2.0)])):
        writer = SummaryWriter(log_dir=str(logs / f"run_0_{start}.25"))
        for step, loss in steps:
            writer.add_scalar("loss", loss, global_step=step)
            writer.add_scalar("lr", 0.001, global_step=step)
        writer.close()
    read = read_run_metrics(logs)
    assert read.logged and read.notes == ()
    assert read.metrics["loss"].steps == ((1, 4.0), (2, 2.5), (3, 2.0))
    assert read.metrics["loss"].source == "tensorboard" and read.steps_done == 3


# Two starts of torchtune's own WandBLogger, as a run resumed once logs them: what a real
# offline run writes. The 40,000-character note makes a record longer than a store block.
WANDB_STARTS = """\
import sys, time
from torchtune.training.metric_logging import WandBLogger

for steps in ([(1, 4.0), (2, 3.0)], [(2, 2.5), (3, 2.0)]):
    logger = WandBLogger(project="study", log_dir=sys.argv[1])
    for step, loss in steps:
        logger.log_dict({"loss": loss, "lr": 0.001}, step=step)
    logger.log("note", "x" * 40000, step)
    logger.log("tokens_per_second_per_gpu", 12.5, step)
    logger.close()
    del logger  # its __del__ finishes wandb's current run: it must not meet the next start's
    time.sleep(1.1)  # offline-run-<second>-<id>: the second start's folder sorts after the first
"""


def offline_wandb_env(home: Path) -> dict[str, str]:
    """Offline, silent, and every file wandb keeps outside the run's folder under ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        HOME=str(home), XDG_CACHE_HOME=str(home / "cache"), XDG_CONFIG_HOME=str(home / "config"),
        WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(home / "wandb"),
        WANDB_CACHE_DIR=str(home / "cache"), WANDB_CONFIG_DIR=str(home / "config"),
        WANDB_DATA_DIR=str(home / "data"), WANDB_ARTIFACT_DIR=str(home / "artifacts"),
    )  # fmt: skip
    return env


def without_network(argv: list[str]) -> list[str]:
    """``argv`` in a network namespace of its own where this machine allows one (no packet can
    leave it), else as it is (offline mode is then what keeps wandb off the network)."""
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-rn", *argv]
    return argv


@pytest.mark.slow
@pytest.mark.needs_torch
def test_a_run_torchtunes_wandb_logger_wrote_offline_is_read_from_its_store(
    tmp_path: Path,
) -> None:
    pytest.importorskip("wandb", reason="wandb is not installed here")
    folder = study(tmp_path, "[0.001, 0.01]", base=BASE.replace("DiskLogger", "WandBLogger"))
    logs = folder / "out" / "run_000" / "logs"
    done = subprocess.run(
        without_network([sys.executable, "-c", WANDB_STARTS, str(logs)]),
        env=offline_wandb_env(tmp_path / "home"), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = sorted((logs / "wandb").glob("offline-run-*"))
    assert len(runs) == 2
    # wandb 0.31 offline keeps the steps in run-<id>.wandb only: no history, no summary file.
    for run in runs:
        assert sorted(p.name for p in run.glob("*.wandb")) == [f"run-{run.name[-8:]}.wandb"]
        assert sorted(p.name for p in (run / "files").iterdir()) == ["requirements.txt"]
    script = (
        "import sys; from torchtune_config_writer.cli import main; "
        f"sys.exit(main(['results', {str(folder)!r}, '--format', 'json']))"
    )
    read = python_without_torch(script)
    assert (read.returncode, read.stderr) == (0, "")
    first, second = json.loads(read.stdout)["runs"]
    # The steps are torchtune's global_step (wandb's _step counts calls of log from 0); the
    # resumed start's value for step 2 replaces the first start's.
    assert first["metrics"]["loss"] == {
        "final": 2.0, "min": 2.0, "max": 4.0, "last_step": 3, "count": 3, "source": "wandb"
    }  # fmt: skip
    assert first["metrics"]["tokens_per_second_per_gpu"]["count"] == 2
    assert first["steps"] == 3 and "global_step" not in first["metrics"]
    assert json.loads(read.stdout)["notes"] == [] and second["status"] == "not started"
    # A run killed while writing: its store cut short mid-record still gives the steps before.
    store = next(runs[1].glob("*.wandb"))
    data = store.read_bytes()
    store.write_bytes(data[: data.rindex(b"loss")])  # inside the last record of loss: step 3's
    cut = read_run_metrics(logs)
    assert cut.metrics["loss"].steps == ((1, 4.0), (2, 2.5)) and cut.notes == ()
    # A store of a version this reader does not know: a note, not a guess.
    store.write_bytes(b":W&B\xe1\xbe\x01" + data[7:])
    later = read_run_metrics(logs)
    assert later.metrics["loss"].steps == ((1, 4.0), (2, 3.0))
    assert later.notes == (f"{store}: a W&B store of version 1, not read",)


@pytest.mark.needs_torch
def test_results_of_a_sweep_the_real_tune_run_trained(tmp_path: Path) -> None:
    """Two runs of the tiny llama2, trained by the real ``tune run`` with the command
    ``run_mapping.yaml`` gives, then ``results`` in a fresh process."""
    import yaml

    from tests.oracle.assets import build_assets
    from tests.oracle.runner import offline_env

    assets = build_assets(tmp_path / "tiny")
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "base.yaml").write_text(assets.bases["lora"].read_text())
    (folder / "experiment.yaml").write_text(
        "experiment:\n  name: tiny\n  framework: torchtune\n"
        "framework_config:\n  base_config_file: base.yaml\n  recipe: lora_finetune_single_device\n"
        f"controls:\n  output_dir: {json.dumps(str(tmp_path / 'out'))}\n"
        "variables:\n  optimizer.lr: [1.0e-3, 1.0e-2]\n"
    )
    command = [sys.executable, "-m", "torchtune_config_writer"]
    subprocess.run([*command, "generate", str(folder)], check=True, capture_output=True)
    mapping = yaml.safe_load((folder / "configs" / "run_mapping.yaml").read_text())
    runs = mapping["runs"]
    assert len(runs) == 2
    tune = str(Path(sys.executable).parent / "tune")
    for run in runs:
        args = run["command"].split()
        assert args[0] == "tune"
        trained = subprocess.run(
            [tune, *args[1:]],
            cwd=folder,
            env=offline_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert trained.returncode == 0, trained.stderr[-3000:]
    finals = {}
    for run_id in ("run_000", "run_001"):
        [log] = (tmp_path / "out" / run_id / "logs").glob("log_*.txt")
        last = log.read_text().splitlines()[-1]
        finals[run_id] = float(re.search(r"loss:(\S+)", last).group(1))  # type: ignore[union-attr]
    shown = subprocess.run(
        [*command, "results", str(folder), "--format", "json"], capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    for run in document["runs"]:
        assert run["status"] == "finished" and run["steps"] == 2
        assert run["metrics"]["loss"]["final"] == finals[run["id"]]
        assert run["metrics"]["tokens_per_second_per_gpu"]["final"] > 0
    winner = min(finals, key=finals.__getitem__)
    best = subprocess.run(
        [*command, "results", str(folder), "--best", "loss"], capture_output=True, text=True
    )
    assert best.returncode == 0, best.stderr
    assert best.stdout.startswith(f"best: {winner}, lowest final loss {finals[winner]!r}")
    checkpoint = tmp_path / "out" / winner / "epoch_0"
    assert f"  checkpoint: {checkpoint} (exists)\n" in best.stdout
    assert any(checkpoint.iterdir())


def test_on_a_narrow_terminal_metric_columns_past_its_width_are_left_out_with_a_note(
    three_runs: Path,
) -> None:
    results = read_results(three_runs)
    text = render_text(results, results.metric_names, width=50)
    lines = text.splitlines()
    assert lines[2] == "run      optimizer.lr  status       steps  loss"
    assert all(len(line) <= 50 for line in lines[2:6])
    assert lines[-1] == (
        "note: 3 more columns past the terminal's width (--metrics chooses; --format csv has "
        "them all)"
    )
    # However narrow, the run, its values, its status and its steps are there.
    assert render_text(results, results.metric_names, width=10).splitlines()[2].endswith("steps")


def test_the_json_docs_results_md_shows_has_the_shape_results_writes(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    page = (Path(__file__).resolve().parent.parent / "docs" / "results.md").read_text()
    shown = json.loads(page.split("## `results --format json`\n\n```json\n", 1)[1].split("```")[0])
    written = json.loads(cli("results", three_runs, "--format", "json").out)
    assert shown.keys() == written.keys()
    assert shown["runs"][0].keys() == written["runs"][0].keys()
    assert (
        shown["runs"][0]["metrics"]["loss"].keys() == written["runs"][0]["metrics"]["loss"].keys()
    )
    assert (shown["variables"], shown["metrics"]) == (written["variables"], written["metrics"])


def test_plot_without_matplotlib_is_one_error_line_before_any_work(
    three_runs: Path, cli: Callable[..., CliResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    plot = three_runs / "loss.png"
    result = cli("results", three_runs, "--plot", plot)
    assert (result.code, result.out) == (2, "")
    assert result.err == (
        "error: --plot draws with matplotlib, which is not installed here: pip install matplotlib\n"
    )
    assert not plot.exists()


@pytest.mark.slow  # importing matplotlib takes about a second
def test_plot_draws_each_metric_a_line_per_run_and_refusals_write_no_plot(
    three_runs: Path, cli: Callable[..., CliResult]
) -> None:
    pytest.importorskip("matplotlib", reason="matplotlib is not installed here")
    plot = three_runs / "loss.png"
    result = cli("results", three_runs, "--plot", plot, "--metrics", "loss", "--format", "csv")
    assert result.code == 0 and result.out.startswith("run,optimizer.lr,status")
    assert plot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = three_runs / "all.svg"
    assert cli("results", three_runs, "--plot", svg, "--best", "loss").code == 0
    drawn = svg.read_text()
    # run_002 logged nothing: two runs' lines, in the legend with their values.
    assert "run_000 (optimizer.lr=0.001)" in drawn and "run_001 (optimizer.lr=0.01)" in drawn
    assert "run_002" not in drawn
    refused = three_runs / "refused.png"
    assert cli("results", three_runs, "--plot", refused, "--best", "los").code == 2
    assert not refused.exists()


def test_a_cut_short_last_line_is_passed_over_and_an_unreadable_log_is_skipped(
    tmp_path: Path,
) -> None:
    from torchtune_config_writer.runs.metrics import parse_disk_log, read_disk_logs

    # The run died while writing "loss:1.53": "loss:1" is not its value.
    assert parse_disk_log("Step 1 | loss:2.5 \nStep 2 | loss:1.9 \nStep 3 | loss:1") == {
        "loss": {1: 2.5, 2: 1.9}
    }
    good = tmp_path / "log_1.txt"
    good.write_text("Step 1 | loss:2.5 \n")
    dangling = tmp_path / "log_2.txt"
    dangling.symlink_to(tmp_path / "gone.txt")
    (metric,) = read_disk_logs([good, dangling])
    assert (metric.name, metric.steps) == ("loss", ((1, 2.5),))


@pytest.mark.slow  # importing matplotlib takes about a second
def test_plot_has_a_row_per_metric_a_line_per_run_and_a_panel_per_swept_variable(
    tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    image = pytest.importorskip("matplotlib.image", reason="matplotlib is not installed here")
    from torchtune_config_writer.runs.plots import plot_metrics
    from torchtune_config_writer.runs.results import read_results

    folder = study(
        tmp_path,
        "[0.0001, 0.01]",
        extra="  model.lora_rank: [4, 8]\nevaluation:\n  tasks: [hellaswag]\n",
    )
    for run in range(3):  # run_003 logged nothing yet
        write_log(
            folder / "out" / f"run_{run:03d}" / "logs",
            "log_1765100000.txt",
            f"Step 1 | loss:{5 - run} lr:0.1 \nStep 2 | loss:{4 - run} lr:0.1 \n",
        )
    evaluated = folder / "out" / "run_000" / "eval"
    evaluated.mkdir()
    (evaluated / "results.json").write_text('{"results": {"hellaswag": {"acc,none": 0.3}}}')
    plot = tmp_path / "study.png"
    result = cli("results", folder, "--plot", plot, "--format", "csv")
    assert result.code == 0 and result.out.startswith("run,optimizer.lr,model.lora_rank,")
    assert result.err == (
        "✓ Plotted loss, lr, hellaswag/acc over the steps and against optimizer.lr, "
        f"model.lora_rank: {plot}\n"
    )
    # A readable PNG of its size: 3 rows of 3.2 in, 7 in of steps and 3.6 in a variable, 100 dpi.
    assert image.imread(plot).shape[:2] == (960, 1420)
    drawn = plot_metrics(read_results(folder), ("loss", "hellaswag/acc"), tmp_path / "a.svg")
    assert drawn.lines == {
        "loss": (
            "run_000 (optimizer.lr=0.0001, model.lora_rank=4)",
            "run_001 (optimizer.lr=0.0001, model.lora_rank=8)",
            "run_002 (optimizer.lr=0.01, model.lora_rank=4)",
        ),
        "hellaswag/acc": (),  # one value a run: drawn against the variables alone
    }
    svg = (tmp_path / "a.svg").read_text()
    assert "final value vs optimizer.lr" in svg and "final value vs model.lora_rank" in svg
    assert cli("results", folder, "--plot", tmp_path / "q.png", "-q").err == ""
