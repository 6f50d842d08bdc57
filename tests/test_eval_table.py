"""lm_eval's results table in an evaluation's log (``runs/eval_table.py``): torchtune 0.6.1's
``eleuther_eval`` recipe logs ``make_table(output)`` and writes no results file, so the table is
what ``results`` reads. Tables copied from lm_eval's own files and its real ``make_table``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from torchtune_config_writer.runs.eval_table import parse_results_tables, task_name
from torchtune_config_writer.runs.metrics import read_run_metrics

# lm_eval/tasks/inverse_scaling/_some_results, verbatim from the lm_eval 0.4.8 wheel (written by
# lm_eval 0.4.0-0.4.2: no arrow column; every line commented out with "# "): two evaluations,
# each a Tasks and a Groups table.
INVERSE_SCALING = """\
# |                   Tasks                   |Version|Filter|n-shot| Metric |Value |   |Stderr|
# |-------------------------------------------|-------|------|-----:|--------|-----:|---|-----:|
# | - inverse_scaling_hindsight_neglect_10shot|      0|none  |     0|acc     |0.4476|±  |0.0281|
# |                                           |       |none  |     0|acc_norm|0.4476|±  |0.0281|
# |inverse_scaling_mc                         |N/A    |none  |     0|acc_norm|0.6273|±  |0.0096|
# |                                           |       |none  |     0|acc     |0.6210|±  |0.0095|
# | - inverse_scaling_neqa                    |      0|none  |     0|acc     |0.5300|±  |0.0289|
# |                                           |       |none  |     0|acc_norm|0.5300|±  |0.0289|
# | - inverse_scaling_quote_repetition        |      0|none  |     0|acc     |0.9367|±  |0.0141|
# |                                           |       |none  |     0|acc_norm|0.9367|±  |0.0141|
# | - inverse_scaling_redefine_math           |      0|none  |     0|acc     |0.7178|±  |0.0150|
# |                                           |       |none  |     0|acc_norm|0.7178|±  |0.0150|
# | - inverse_scaling_winobias_antistereotype |      0|none  |     0|acc     |0.3786|±  |0.0239|
# |                                           |       |none  |     0|acc_norm|0.4126|±  |0.0243|

# |      Groups      |Version|Filter|n-shot| Metric |Value |   |Stderr|
# |------------------|-------|------|-----:|--------|-----:|---|-----:|
# |inverse_scaling_mc|N/A    |none  |     0|acc_norm|0.6273|±  |0.0096|
# |                  |       |none  |     0|acc     |0.6210|±  |0.0095|
# hf (pretrained=facebook/opt-2.7b,add_bos_token=True,dtype=float32), gen_kwargs: (None), limit: None, num_fewshot: None, batch_size: auto (32)
# |                   Tasks                   |Version|Filter|n-shot| Metric |Value |   |Stderr|
# |-------------------------------------------|-------|------|-----:|--------|-----:|---|-----:|
# | - inverse_scaling_hindsight_neglect_10shot|      0|none  |     0|acc     |0.4476|±  |0.0281|
# |                                           |       |none  |     0|acc_norm|0.4476|±  |0.0281|
# |inverse_scaling_mc                         |N/A    |none  |     0|acc_norm|0.6291|±  |0.0095|
# |                                           |       |none  |     0|acc     |0.6219|±  |0.0095|
# | - inverse_scaling_neqa                    |      0|none  |     0|acc     |0.5267|±  |0.0289|
# |                                           |       |none  |     0|acc_norm|0.5267|±  |0.0289|
# | - inverse_scaling_quote_repetition        |      0|none  |     0|acc     |0.9433|±  |0.0134|
# |                                           |       |none  |     0|acc_norm|0.9433|±  |0.0134|
# | - inverse_scaling_redefine_math           |      0|none  |     0|acc     |0.7200|±  |0.0150|
# |                                           |       |none  |     0|acc_norm|0.7200|±  |0.0150|
# | - inverse_scaling_winobias_antistereotype |      0|none  |     0|acc     |0.3762|±  |0.0239|
# |                                           |       |none  |     0|acc_norm|0.4150|±  |0.0243|

# |      Groups      |Version|Filter|n-shot| Metric |Value |   |Stderr|
# |------------------|-------|------|-----:|--------|-----:|---|-----:|
# |inverse_scaling_mc|N/A    |none  |     0|acc_norm|0.6291|±  |0.0095|
# |                  |       |none  |     0|acc     |0.6219|±  |0.0095|
"""  # noqa: E501 (a line of lm_eval's, verbatim)

# lm_eval/tasks/mmmu/README.md (lm_eval 0.4.8), verbatim: Qwen2-VL-2B's groups, lm_eval 0.4.3+'s
# arrow column, an empty n-shot, names with spaces.
MMMU_GROUPS = """\
|             Groups             |Version|Filter|n-shot|Metric|   |Value |   |Stderr|
|--------------------------------|------:|------|------|------|---|-----:|---|-----:|
|mmmu_val                        |      0|none  |      |acc   |↑  |0.3778|±  |0.0155|
| - Art and Design               |      0|none  |      |acc   |↑  |0.5500|±  |0.0415|
| - Business                     |      0|none  |      |acc   |↑  |0.3600|±  |0.0389|
| - Health and Medicine          |      0|none  |      |acc   |↑  |0.3667|±  |0.0394|
| - Humanities and Social Science|      0|none  |      |acc   |↑  |0.5167|±  |0.0438|
| - Science                      |      0|none  |      |acc   |↑  |0.2467|±  |0.0352|
| - Tech and Engineering         |      0|none  |      |acc   |↑  |0.3143|±  |0.0317|
"""

# What lm_eval 0.4.8's make_table (pytablewriter 1.2.1) printed for hellaswag, gsm8k (its two
# filters, one stderr N/A) and wikitext (no stderr): the table torchtune 0.6.1's recipe logs.
TABLE_048 = """\
|  Tasks  |Version|     Filter     |n-shot|    Metric     |   |Value |   |Stderr|
|---------|------:|----------------|-----:|---------------|---|-----:|---|------|
|gsm8k    |      3|flexible-extract|     5|exact_match    |↑  | 0.300|±  |   N/A|
|         |       |strict-match    |     5|exact_match    |↑  | 0.250|±  |0.0120|
|hellaswag|      1|none            |     0|acc            |↑  | 0.500|±  |0.0123|
|         |       |none            |     0|acc_norm       |↑  | 0.625|±  |0.0111|
|wikitext |      2|none            |     0|bits_per_byte  |↓  | 0.800|   |      |
|         |       |none            |     0|word_perplexity|↓  |12.500|±  |   N/A|
"""
TABLE_048_RESULTS = {
    "gsm8k": {
        "exact_match,flexible-extract": 0.3,
        "exact_match,strict-match": 0.25,
        "exact_match_stderr,strict-match": 0.012,
    },
    "hellaswag": {
        "acc,none": 0.5,
        "acc_stderr,none": 0.0123,
        "acc_norm,none": 0.625,
        "acc_norm_stderr,none": 0.0111,
    },
    "wikitext": {"bits_per_byte,none": 0.8, "word_perplexity,none": 12.5},
}


def recipe_log(table: str, prefix: str = "") -> str:
    """A log as torchtune 0.6.1's eleuther_eval ends it: ``logger.info(f"\\n\\n{table}\\n")``
    after the lines before it, with the logging format's ``prefix`` on the message's first line."""
    return (
        f"{prefix}Running evaluation on the following tasks: ['hellaswag', 'gsm8k']\n"
        "Running loglikelihood requests: 100%|██████████| 40168/40168 [02:11<00:00, 305.4it/s]\n"
        f"{prefix}Eval completed in 140.56 seconds.\n"
        f"{prefix}Max memory allocated: 17.02 GB\n"
        f"{prefix}\n\n{table.rstrip()}\n\n"
    )


def test_the_last_evaluation_of_lm_evals_own_results_file_is_read() -> None:
    evaluations = parse_results_tables(INVERSE_SCALING)
    assert len(evaluations) == 2  # each Groups table belongs to the Tasks table before it
    last = evaluations[-1]
    assert last["inverse_scaling_mc"] == {
        "acc_norm,none": 0.6291,
        "acc_norm_stderr,none": 0.0095,
        "acc,none": 0.6219,
        "acc_stderr,none": 0.0095,
    }
    # A subtask by its name, without the " - " of the group tree; the row below is its own.
    assert last["inverse_scaling_neqa"]["acc,none"] == 0.5267
    assert last["inverse_scaling_winobias_antistereotype"]["acc_norm,none"] == 0.415
    assert len(last) == 6


def test_a_groups_table_alone_with_names_of_words() -> None:
    (groups,) = parse_results_tables(MMMU_GROUPS)
    assert groups["mmmu_val"] == {"acc,none": 0.3778, "acc_stderr,none": 0.0155}
    assert groups["Art and Design"]["acc,none"] == 0.55
    assert list(groups)[-1] == "Tech and Engineering"


def test_lm_eval_03s_table_has_no_filter_column() -> None:
    # lm_eval 0.3.0's make_table (lm_eval/evaluator.py): headers Task, Version, Metric, Value, "",
    # Stderr, and "%.4f" values.
    table = """\
|  Task   |Version| Metric |Value |   |Stderr|
|---------|------:|--------|-----:|---|-----:|
|hellaswag|      0|acc     |0.5000|±  |0.0050|
|         |       |acc_norm|0.6250|±  |0.0048|
"""
    assert parse_results_tables(table) == [
        {
            "hellaswag": {
                "acc,none": 0.5,
                "acc_stderr,none": 0.005,
                "acc_norm,none": 0.625,
                "acc_norm_stderr,none": 0.0048,
            }
        }
    ]


@pytest.mark.parametrize(
    "prefix",
    [
        "",  # torchtune's get_logger: a StreamHandler of its own, the message alone
        "INFO:torchtune.utils._logging:",  # the root logger's basicConfig() format
        "2025-04-11:10:12:13,456 INFO     [torchtune.utils._logging:560] ",  # lm_eval's format
    ],
)
def test_the_table_torchtunes_recipe_logs_is_read_whatever_the_log_prefix(prefix: str) -> None:
    assert parse_results_tables(recipe_log(TABLE_048, prefix)) == [TABLE_048_RESULTS]


def test_a_prefix_on_every_line_is_taken_off() -> None:
    labelled = "".join(f"0: {line}\n" for line in TABLE_048.splitlines())  # srun --label
    assert parse_results_tables(labelled) == [TABLE_048_RESULTS]
    windows = TABLE_048.replace("\n", "\r\n")
    assert parse_results_tables(windows) == [TABLE_048_RESULTS]


def test_na_values_are_passed_over_and_the_row_below_keeps_its_task() -> None:
    table = TABLE_048.replace(
        "|gsm8k    |      3|flexible-extract|     5|exact_match    |↑  | 0.300|±  |   N/A|",
        "|gsm8k    |      3|flexible-extract|     5|exact_match    |↑  |   N/A|±  |   N/A|",
    )
    (results,) = parse_results_tables(table)
    assert results["gsm8k"] == {
        "exact_match,strict-match": 0.25,
        "exact_match_stderr,strict-match": 0.012,
    }


def test_a_table_cut_short_keeps_its_whole_rows() -> None:
    lines = TABLE_048.splitlines()
    cut = "\n".join(lines[:4]) + "\n" + lines[4][:30]  # killed while hellaswag's row was written
    last = parse_results_tables(recipe_log(TABLE_048) + cut)[-1]
    assert last == {"gsm8k": TABLE_048_RESULTS["gsm8k"]}
    # Cut before its first row: the evaluation before it in the log stands.
    assert parse_results_tables(recipe_log(TABLE_048) + "\n".join(lines[:2])) == [TABLE_048_RESULTS]


def test_two_evaluations_in_one_log_the_last_one_is_read(tmp_path: Path) -> None:
    second = TABLE_048.replace(" 0.500|", " 0.750|")
    log = tmp_path / "slurm_12_0.log"  # a task requeued by Slurm appends to its log
    log.write_text(recipe_log(TABLE_048) + recipe_log(second), encoding="utf-8")
    metrics = read_run_metrics(None, tmp_path).metrics
    assert metrics["hellaswag/acc"].final == 0.75
    assert metrics["hellaswag/acc"].source == "eval"


def test_a_log_without_a_table_gives_nothing(tmp_path: Path) -> None:
    text = recipe_log("").replace("Eval completed", "Traceback (most recent call last)")
    (tmp_path / "slurm_12_0.log").write_text(text + "| a | pipe | table |\n", encoding="utf-8")
    assert parse_results_tables(text) == []
    found = read_run_metrics(None, tmp_path)
    assert (found.metrics, found.notes) == ({}, ())


def test_the_newest_log_with_a_table_is_read(tmp_path: Path) -> None:
    old, new, failed = (tmp_path / f"slurm_{job}_0.log" for job in (10, 11, 12))
    old.write_text(recipe_log(TABLE_048), encoding="utf-8")
    new.write_text(recipe_log(TABLE_048.replace(" 0.500|", " 0.900|")), encoding="utf-8")
    failed.write_text("RuntimeError: CUDA out of memory\n", encoding="utf-8")
    (tmp_path / "by_hand.txt").write_text("notes, no table\n", encoding="utf-8")
    for age, path in enumerate((old, new, failed)):
        os.utime(path, (1_700_000_000 + age, 1_700_000_000 + age))
    assert read_run_metrics(None, tmp_path).metrics["hellaswag/acc"].final == 0.9
    os.utime(old, (1_800_000_000, 1_800_000_000))  # evaluated again, by hand, into that file
    assert read_run_metrics(None, tmp_path).metrics["hellaswag/acc"].final == 0.5


def test_a_results_json_wins_for_its_tasks_and_the_table_adds_the_others(
    tmp_path: Path,
) -> None:
    (tmp_path / "slurm_12_0.log").write_text(
        recipe_log(TABLE_048 + "| - humanities|2|none|0|acc|↑|0.41|±|0.01|\n"),
        encoding="utf-8",
    )
    results = {
        "hellaswag": {"alias": "hellaswag", "acc,none": 0.5012},
        "mmlu_humanities": {"alias": " - humanities", "acc,none": 0.4123},
    }
    (tmp_path / "results.json").write_text(json.dumps({"results": results}), encoding="utf-8")
    metrics = read_run_metrics(None, tmp_path).metrics
    assert metrics["hellaswag/acc"].final == 0.5012
    assert "hellaswag/acc_norm" not in metrics  # the task is the results file's, whole
    assert metrics["mmlu_humanities/acc"].final == 0.4123
    assert "humanities/acc" not in metrics  # the same task, by its alias in the table
    assert metrics["gsm8k/exact_match,strict-match"].final == 0.25
    assert metrics["wikitext/word_perplexity"].final == 12.5


def test_task_names_lose_the_marks_of_the_group_tree() -> None:
    assert task_name(" - humanities") == "humanities"  # lm_eval 0.4.x's alias
    assert task_name("  - formal_logic") == "formal_logic"
    assert task_name(" -  - formal_logic") == "formal_logic"  # 0.4.13 marks a marked one again
    assert task_name("arc-challenge ") == "arc-challenge"


# The real make_table, installed without its dependencies beside this project's (lm_eval cannot
# share torchtune's environment): 0.4.8, torchtune 0.6.1's contemporary (its make_table is the
# same from 0.4.5, the recipe's minimum, to 0.4.9.2), and 0.4.13, which marks the group tree in
# make_table itself.
LM_EVAL_VERSIONS = ("0.4.8", "0.4.13")
TABLE_DEPENDENCIES = (
    "pytablewriter==1.2.1",
    "DataProperty==1.1.1",
    "mbstrdecoder==1.1.5",
    "pathvalidate==3.3.1",
    "tabledata==1.3.5",
    "tcolorpy==0.1.7",
    "typepy==1.3.5",
    "chardet==5.2.0",
    "python-dateutil==2.9.0.post0",
    "six==1.17.0",
    "pytz==2025.2",
)


def pip_install_target(target: Path, *requirements: str) -> None:
    """``pip install --no-deps --target``, or skip the test with pip's last words."""
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target)]
        + ["--disable-pip-version-check", "--retries", "1", "--timeout", "30", *requirements],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        said = (done.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"cannot pip install {' '.join(requirements)}: {said}")


@pytest.fixture(scope="session")
def make_table_path(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each lm_eval version's PYTHONPATH for its real make_table."""
    for module in ("numpy", "yaml", "jinja2", "requests"):
        try:
            __import__(module)
        except ModuleNotFoundError:
            pytest.skip(f"lm_eval.utils imports {module}, not installed here")
    root = tmp_path_factory.mktemp("lm_eval")
    pip_install_target(root / "tables", *TABLE_DEPENDENCIES)
    paths = {}
    for version in LM_EVAL_VERSIONS:
        pip_install_target(root / version, f"lm_eval=={version}")
        paths[version] = os.pathsep.join([str(root / version), str(root / "tables")])
    return paths


# Run in its own Python: lm_eval/__init__.py imports its evaluator (torch, datasets, ...), so the
# package is stood in for and lm_eval/utils.py, which make_table needs alone, is imported from it.
# Then the table is logged as torchtune 0.6.1's eleuther_eval recipe logs it, or printed with the
# groups' table after it as lm_eval's own command line does.
MAKE_TABLE_SCRIPT = """\
import importlib.util, json, logging, sys, types
lm_eval = types.ModuleType("lm_eval")
lm_eval.__path__ = [importlib.util.find_spec("lm_eval").submodule_search_locations[0]]
sys.modules["lm_eval"] = lm_eval
from lm_eval.utils import make_table, setup_logging
output, form = json.loads(sys.argv[1]), sys.argv[2]
if form == "lm_eval_cli":
    print(make_table(output))
    print(make_table(output, "groups"))
    sys.exit()
if form == "basic_config":
    logging.basicConfig()
elif form == "lm_eval_logging":
    setup_logging()
logger = logging.getLogger("torchtune.utils._logging")
if not logger.hasHandlers():  # torchtune.utils.get_logger
    logger.addHandler(logging.StreamHandler())
logger.setLevel(logging.INFO)
logger.info("Running evaluation on the following tasks: ['hellaswag', 'mmlu', 'gsm8k']")
logger.info(f"\\n\\n{make_table(output)}\\n")  # recipes/eleuther_eval.py, its last line
"""


def lm_eval_output(marked: bool) -> dict[str, Any]:
    """What ``lm_eval.evaluator.evaluate`` returns for hellaswag, gsm8k (two filters) and mmlu
    (a group of a group of subtasks); ``marked``: aliases carry the group tree's marks, as
    lm_eval up to 0.4.11 gives them (0.4.13's make_table adds them itself)."""

    def alias(name: str, depth: int) -> str:
        return (" " * depth + "- " + name) if marked and depth else name

    results = {
        "hellaswag": {
            "alias": "hellaswag",
            "acc,none": 0.4563831905,
            "acc_stderr,none": 0.0049706,
            "acc_norm,none": 0.6011750647,
            "acc_norm_stderr,none": 0.0048862,
        },
        "mmlu": {"acc,none": 0.41025, "acc_stderr,none": 0.0040893, "alias": "mmlu"},
        "mmlu_humanities": {
            "acc,none": 0.3825717,
            "acc_stderr,none": 0.0069066,
            "alias": alias("humanities", 1),
        },
        "mmlu_formal_logic": {
            "alias": alias("formal_logic", 2),
            "acc,none": 0.2936507,
            "acc_stderr,none": 0.0407358,
        },
        "mmlu_world_religions": {
            "alias": alias("world_religions", 2),
            "acc,none": 0.5614035,
            "acc_stderr,none": 0.0380577,
        },
        "gsm8k": {
            "alias": "gsm8k",
            "exact_match,strict-match": 0.1394996,
            "exact_match_stderr,strict-match": 0.0095432,
            "exact_match,flexible-extract": 0.1440485,
            "exact_match_stderr,flexible-extract": "N/A",
        },
    }
    groups = ("mmlu", "mmlu_humanities")
    return {
        "results": results,
        "groups": {name: dict(results[name]) for name in groups},
        "group_subtasks": {
            "mmlu_humanities": ["mmlu_formal_logic", "mmlu_world_religions"],
            "mmlu": ["mmlu_humanities"],
            "hellaswag": [],
            "gsm8k": [],
        },
        "versions": {
            "hellaswag": 1.0,
            "mmlu": 2,
            "mmlu_humanities": 2,
            "mmlu_formal_logic": 1.0,
            "mmlu_world_religions": 1.0,
            "gsm8k": 3.0,
        },
        "n-shot": {name: 5 if name == "gsm8k" else 0 for name in results},
        "higher_is_better": {
            name: {metric.split(",")[0]: True for metric in values if metric != "alias"}
            for name, values in results.items()
        },
        "n-samples": {"hellaswag": {"original": 10042, "effective": 10042}},
    }


@pytest.mark.slow
@pytest.mark.parametrize("version", LM_EVAL_VERSIONS)
@pytest.mark.parametrize("form", ["torchtune", "basic_config", "lm_eval_logging", "lm_eval_cli"])
def test_the_real_make_tables_values_are_read_back(
    make_table_path: dict[str, str], version: str, form: str, tmp_path: Path
) -> None:
    output = lm_eval_output(marked=version != "0.4.13")
    log = tmp_path / "slurm_7_0.log"
    with log.open("a", encoding="utf-8") as sink:  # the array's `exec >>"$log" 2>&1`
        done = subprocess.run(
            [sys.executable, "-c", MAKE_TABLE_SCRIPT, json.dumps(output), form],
            env={**os.environ, "PYTHONPATH": make_table_path[version]},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0, text
    assert "Traceback" not in text
    metrics = {name: m.final for name, m in read_run_metrics(None, tmp_path).metrics.items()}
    expected = {}
    for values in output["results"].values():
        name = task_name(values["alias"])
        for key, value in values.items():
            metric, _, kind = key.partition(",")
            if isinstance(value, float):  # make_table prints "%.4f"; N/A is no number
                suffix = "" if kind == "none" else f",{kind}"
                expected[f"{name}/{metric}{suffix}"] = float(f"{value:.4f}")
    assert metrics == expected, textwrap.indent(text, "  ")
    assert metrics["formal_logic/acc"] == 0.2937 and metrics["humanities/acc"] == 0.3826
    assert metrics["gsm8k/exact_match,flexible-extract"] == 0.144
    assert "gsm8k/exact_match_stderr,flexible-extract" not in metrics
