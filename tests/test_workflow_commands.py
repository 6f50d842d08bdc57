"""Nothing a hostile repository writes becomes a workflow command in the Action's log.

The GitHub Actions runner reads a step's standard output and error line by line (a line ends at
LF, CR or CRLF) and acts on two syntaxes (GitHub's documentation, "Workflow commands for GitHub
Actions", and the runner's ActionCommandManager):

- ``::name key=value,...::data``, where the line starts with ``::`` after leading white space;
- ``##[name key=value;...]data``, anywhere in a line (the older syntax).

``::stop-commands::TOKEN`` switches both off until a line ``::TOKEN::``. The parser below follows
those rules; the Action's own steps (their ``run:`` scripts, from action.yml) run with bash on a
repository full of hostile names and values, and every command found must be one the Action
means to send. The runner itself cannot run here without act; the step scripts are its input,
byte for byte.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from .conftest import EXAMPLES, REPO
from .test_drift_attacks import git


@dataclass(frozen=True)
class Command:
    name: str
    properties: str
    data: str


_V1 = re.compile(r"##\[([^\]\s;]*)([^\]]*)\](.*)")


def workflow_commands(log: str) -> list[Command]:
    """Every command a runner would act on in ``log``, in order (``stop-commands`` included)."""
    found: list[Command] = []
    stopped: str | None = None
    for line in re.split(r"\r\n|\r|\n", log):
        if stopped is not None:
            if line.strip() == f"::{stopped}::":
                found.append(Command("resume", "", stopped))
                stopped = None
            continue
        trimmed = line.lstrip()  # .NET's TrimStart: every Unicode white space
        if trimmed.startswith("::"):
            end = trimmed.find("::", 2)
            if end != -1:
                name, _, properties = trimmed[2:end].partition(" ")
                found.append(Command(name, properties, trimmed[end + 2 :]))
                if name == "stop-commands":
                    stopped = trimmed[end + 2 :]
                continue
        match = _V1.search(line)
        if match:
            found.append(Command(match[1], match[2].strip(), match[3]))
    return found


def test_the_parser_reads_the_documented_forms() -> None:
    log = (
        "plain line\n"
        "  ::error file=a.yaml,line=3::bad value\n"
        "text ##[warning]older syntax\r"
        "::stop-commands::tok\n"
        "::add-mask::hidden while stopped\n"
        "::tok::\n"
        "\u3000::notice::after an ideographic space\n"
        "::no end\n"
    )
    assert workflow_commands(log) == [
        Command("error", "file=a.yaml,line=3", "bad value"),
        Command("warning", "", "older syntax"),
        Command("stop-commands", "", "tok"),
        Command("resume", "", "tok"),
        Command("notice", "", "after an ideographic space"),
    ]


HOSTILE_NAMES = [
    "a\n::add-mask::x",
    "b\r::stop-commands::abc",
    "c\x1b]52;c;aGk=\x07",
    "d ##[error]e",
    "e`<img src=x>@org",
    "f\u2028::set-output name=x::y",
]
HOSTILE_VALUE = "/scratch/x\n::add-mask::v\r##[error]forged\x1b[2J``` <h1>@team"
OURS = {"error", "warning", "notice"}
DOCUMENTED_PROPERTIES = {"title", "file", "line", "endLine", "col", "endColumn"}


def _tool(repo: Path, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", *args],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


@pytest.fixture
def hostile(tmp_path: Path) -> tuple[Path, str]:
    """A repository of experiments in hostile folders, committed (the base), then a pull
    request's working tree: a run file rewritten with command lines, an experiment changed, one
    removed. Returns the repository and the base commit."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    source = (EXAMPLES / "lora_rank_study" / "experiment.yaml").read_text()
    for index, name in enumerate(HOSTILE_NAMES):
        folder = repo / name
        folder.mkdir(parents=True)
        shutil.copytree(EXAMPLES / "lora_rank_study" / "configs", folder / "configs")
        text = source.replace("name: lora_rank_study", f"name: hostile_{index}")
        text = text.replace("[8, 16, 32, 64]", "[8, 16]")
        text = text.replace("/scratch/results/lora_study", f"/scratch/results/h{index}")
        text += "  +note: |\n    first\n    ```\n    <img src=x> @org/team\n"
        (folder / "experiment.yaml").write_text(text)
        for old in ("run_002.yaml", "run_003.yaml"):
            (folder / "configs" / old).unlink()
    _tool(repo, "generate", *(f"{name}/experiment.yaml" for name in HOSTILE_NAMES))
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    run = repo / HOSTILE_NAMES[0] / "configs" / "run_000.yaml"
    run.write_bytes(
        run.read_bytes() + b"::add-mask::x\n  ::stop-commands::abc\r##[error]forged\n```\n<h1>\n"
    )
    changed = repo / HOSTILE_NAMES[1] / "experiment.yaml"
    changed.write_text(
        changed.read_text().replace(
            "data_files: /scratch/data/alpaca.json", f"data_files: {yaml.safe_dump(HOSTILE_VALUE)}"
        )
    )
    _tool(repo, "generate", str(changed))  # the pull request's regenerated run files
    other = repo / HOSTILE_NAMES[2] / "experiment.yaml"
    other.write_text(other.read_text().replace("first", "second"))  # a diff around ```
    (repo / HOSTILE_NAMES[4] / "experiment.yaml").unlink()
    return repo, base


def _step(step_id: str) -> str:
    steps = yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"]
    [step] = [step for step in steps if step.get("id") == step_id]
    return str(step["run"])


def _run_step(step_id: str, repo: Path, temp: Path, **env: str) -> str:
    """The step's script as the runner starts it (bash -e, with the runner's files); what it
    prints, standard output and error together as the runner reads them."""
    outputs, summary = temp / "output.txt", temp / "summary.md"
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", _step(step_id)],
        cwd=repo,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "RUNNER_TEMP": str(temp),
            "GITHUB_OUTPUT": str(outputs),
            "GITHUB_STEP_SUMMARY": str(summary),
            "INPUT_PATH": ".",
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert done.returncode == 0, done.stdout.decode(errors="replace")
    return done.stdout.decode("utf-8", errors="replace")


def _only_ours(log: str) -> list[Command]:
    commands = workflow_commands(log)
    stops = [c.data for c in commands if c.name == "stop-commands"]
    resumes = [c.data for c in commands if c.name == "resume"]
    assert stops == resumes, log  # each fence closed, by its own token
    for token in stops:
        assert re.fullmatch(r"[0-9a-f]{32}", token), log  # fresh, random: no repository text
    assert len(set(stops)) == len(stops)
    rest = [c for c in commands if c.name not in ("stop-commands", "resume")]
    for command in rest:
        assert command.name in OURS, (command, log)
        names = {pair.partition("=")[0] for pair in command.properties.split(",") if pair}
        assert names <= DOCUMENTED_PROPERTIES, (command, log)
    return rest


def _outside_code(markdown: str) -> str:
    """The Markdown text that renders as Markdown: fenced blocks and code spans removed."""
    kept: list[str] = []
    fence: str | None = None
    for line in markdown.split("\n"):
        opening = re.match(r" {0,3}(`{3,}|~{3,})", line)
        if fence is None and opening:
            fence = opening[1]
        elif fence is not None:
            closing = opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence)
            if closing and opening and not line[opening.end() :].strip():
                fence = None
        else:
            kept.append(re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", line))
    return "\n".join(kept)


def _assert_renders_no_pull_request_markup(summary: str) -> None:
    rendered = _outside_code(summary)
    for hostile_text in ("<img", "<h1>", "@org", "@team"):
        assert hostile_text not in rendered, rendered


def test_the_drift_and_change_steps_send_no_command_from_the_repository(
    hostile: tuple[Path, str], tmp_path: Path
) -> None:
    repo, base = hostile
    temp = tmp_path / "runner"
    temp.mkdir()
    drift = _run_step("drift", repo, temp, MAX_RUNS="")
    commands = _only_ours(drift)
    drifted = [c for c in commands if c.properties == "title=torchtune configs drifted"]
    assert len(drifted) == 1, drift  # the step's own error, never switched off
    # Two folders drifted and one lost its experiment, counted from check's JSON.
    assert "drifted=3\n" in (temp / "output.txt").read_text()
    # The report itself is printed, inside a fence of the step's own.
    start = re.search("::stop-commands::(\\w+)\n", drift)
    assert start, drift
    end = drift.find(f"::{start[1]}::")
    assert start.end() < drift.find("drift: ") < drift.rfind("stale: ") < end
    changes = _run_step("changes", repo, temp, COMPARE_BASE=base)
    assert _only_ours(changes) == []
    summary = (temp / "summary.md").read_text()
    assert "Generated configs differ" in summary and "What this change does" in summary
    _assert_renders_no_pull_request_markup(summary)
    assert "\x1b" not in summary and "\r" not in summary


@pytest.mark.needs_torch
def test_the_validate_step_sends_only_its_annotations(
    hostile: tuple[Path, str], tmp_path: Path
) -> None:
    repo, _ = hostile
    temp = tmp_path / "runner"
    temp.mkdir()
    log = _run_step("validate", repo, temp, WARNINGS_FAIL="false", UNVERIFIED_FAILS="false")
    _only_ours(log)
    _assert_renders_no_pull_request_markup((temp / "summary.md").read_text())


def test_the_drift_step_checks_once_and_prints_the_text_written_from_its_json(
    hostile: tuple[Path, str], tmp_path: Path
) -> None:
    repo, _ = hostile
    runs = re.findall(r"^\s*torchtune-config-writer check\b", _step("drift"), re.MULTILINE)
    assert len(runs) == 1
    temp = tmp_path / "runner"
    temp.mkdir()
    log = _run_step("drift", repo, temp, MAX_RUNS="")
    start = re.search("::stop-commands::(\\w+)\n", log)
    assert start, log
    shown = log[start.end() : log.find(f"::{start[1]}::")]
    done = subprocess.run(
        [sys.executable, "-m", "torchtune_config_writer", "check"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1 and done.stderr == ""
    assert shown == done.stdout  # the text check prints, byte for byte


def test_no_step_reads_a_commands_text_output() -> None:
    steps = yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"]
    for step in steps:
        assert not re.search(r"\b(grep|sed|awk)\b", step.get("run", "")), step["name"]
