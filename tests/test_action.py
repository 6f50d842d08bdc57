"""The GitHub Action: validated against GitHub's formats, and run by a real runner (act).

act runs the workflow on this machine (host mode, offline). Third-party actions are swapped for
small local stand-ins: setup-python does nothing (the installed environment is used, with
`install: "false"`), upload-artifact copies into a folder, and a first step copies the repository
in place of checkout. The action itself is this repository's `action.yml`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import torchtune_config_writer

from .conftest import EXAMPLES, REPO
from .github_api import FakeGitHub, fake_github

BIN = Path(sys.executable).parent
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
UPLOAD_ARTIFACT = "actions/upload-artifact@65c4c4a1ddee5b72f698fdd19549f0f0fb45cf08"
# As the docs pin it: the release of this version (tests/test_release.py checks the docs).
THIS_ACTION = f"OWNER/torchtune-config-writer@v{torchtune_config_writer.__version__}"
EXAMPLE_WORKFLOW = REPO / "examples" / "github" / "torchtune-configs.yml"


def tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.needs_cli("check-jsonschema")
def test_action_yml_follows_githubs_action_schema() -> None:
    result = tool("check-jsonschema", "--builtin-schema", "vendor.github-actions", "action.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.needs_cli("check-jsonschema", "actionlint")
def test_example_workflow_follows_githubs_workflow_schema_and_lints_clean() -> None:
    workflow = str(EXAMPLE_WORKFLOW.relative_to(REPO))
    schema = tool("check-jsonschema", "--builtin-schema", "vendor.github-workflows", workflow)
    assert schema.returncode == 0, schema.stdout + schema.stderr
    lint = tool("actionlint", workflow)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.needs_cli("zizmor")
def test_zizmor_finds_no_security_problem_in_the_action_or_the_workflow() -> None:
    result = tool("zizmor", "--offline", "action.yml", str(EXAMPLE_WORKFLOW.relative_to(REPO)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout + result.stderr


STANDINS = {
    "setup-python": """\
name: setup-python stand-in
inputs:
  python-version: {default: "3"}
runs:
  using: composite
  steps:
    - shell: bash
      run: echo "the installed Python is used"
""",
    "upload-artifact": """\
name: upload-artifact stand-in
inputs:
  name: {default: artifact}
  path: {default: "."}
  if-no-files-found: {default: warn}
runs:
  using: composite
  steps:
    - shell: bash
      env:
        NAME: ${{ inputs.name }}
        SOURCE: ${{ inputs.path }}
      run: mkdir -p "$ARTIFACTS/$NAME" && cp -r "$SOURCE/." "$ARTIFACTS/$NAME/"
""",
}

WORKFLOW = """\
name: test
on: pull_request
jobs:
  configs:
    runs-on: ubuntu-latest
    steps:
      - name: Copy the repository (stands in for actions/checkout)
        run: cp -a "$SOURCE/." .
        env:
          SOURCE: {source}
      - uses: {action}
        id: configs
        with:
          install: "false"
{inputs}
      - name: Show the outputs
        if: always()
        env:
          CONFIGS: ${{{{ steps.configs.outputs.configs }}}}
          INVALID: ${{{{ steps.configs.outputs.invalid }}}}
          DRIFTED: ${{{{ steps.configs.outputs.drifted }}}}
          REPORT: ${{{{ steps.configs.outputs.report }}}}
        run: |
          echo "OUTPUTS configs=$CONFIGS invalid=$INVALID drifted=$DRIFTED \\
          report=$(basename "$REPORT")"
"""


def run_workflow(
    tmp_path: Path,
    repo: Path,
    inputs: str = "",
    event: dict[str, Any] | None = None,
    env_vars: dict[str, str] | None = None,
) -> tuple[int, str, Path]:
    """Run the workflow on ``repo`` with act; returns (exit code, log, artifacts folder).

    Args:
        event: The pull_request event's payload (act's default is nearly empty).
        env_vars: Variables for the job, such as ``GITHUB_API_URL`` of a stand-in API.
    """
    standins, artifacts = tmp_path / "standins", tmp_path / "artifacts"
    for name, text in STANDINS.items():
        (standins / name).mkdir(parents=True, exist_ok=True)
        (standins / name / "action.yml").write_text(text)
    workflow = repo / ".github" / "workflows" / "test.yml"
    workflow.parent.mkdir(parents=True, exist_ok=True)
    workflow.write_text(WORKFLOW.format(source=repo, action=THIS_ACTION, inputs=inputs))
    # The action as published: its action.yml (act reads the whole folder, and a checkout's
    # virtual environment would be gigabytes).
    action = tmp_path / "action"
    action.mkdir(exist_ok=True)
    shutil.copy2(REPO / "action.yml", action / "action.yml")
    # act keeps its work folders in the cache folder: one per test, removed with it.
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }
    for args in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x", "--allow-empty"],
    ):
        subprocess.run(args, cwd=repo, check=True, env=env)
    extra = []
    if event is not None:
        (tmp_path / "event.json").write_text(json.dumps(event))
        extra += ["-e", str(tmp_path / "event.json")]
    for name, value in (env_vars or {}).items():
        extra += ["--env", f"{name}={value}"]
    result = subprocess.run(
        [
            str(BIN / "act"),
            "pull_request",
            *extra,
            "-W",
            str(workflow.relative_to(repo)),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--action-offline-mode",
            "--env",
            f"ARTIFACTS={artifacts}",
            "--local-repository",
            f"{SETUP_PYTHON}={standins / 'setup-python'}",
            "--local-repository",
            f"{UPLOAD_ARTIFACT}={standins / 'upload-artifact'}",
            "--local-repository",
            f"{THIS_ACTION}={action}",
        ],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result.returncode, result.stdout + result.stderr, artifacts


def add_control(repo: Path, line: str) -> None:
    """Add a control line to the experiment and regenerate it, as a researcher would."""
    experiment = repo / "lora_rank_study" / "experiment.yaml"
    experiment.write_text(experiment.read_text() + line)
    subprocess.run(
        [str(BIN / "torchtune-config-writer"), "generate", str(experiment)],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A research repository with one generated experiment (four runs)."""
    path = tmp_path / "repo"
    shutil.copytree(EXAMPLES / "lora_rank_study", path / "lora_rank_study")
    return path


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_a_clean_repository_passes_with_the_report_in_the_summary(
    repo: Path, tmp_path: Path
) -> None:
    code, log, artifacts = run_workflow(tmp_path, repo)
    assert code == 0, log
    assert "Summary - ## torchtune-config-writer validation report" in log
    assert "| `lora_rank_study/configs/run_003.yaml` | ✅ valid | passed |" in log
    assert "OUTPUTS configs=4 invalid=0 drifted=0 report=validation_report.txt" in log
    assert "::error" not in log
    # The log shows validate's progress as it goes, as plain lines: no terminal codes.
    progress = [line for line in log.splitlines() if "validate: " in line]
    assert any(line.endswith("validate: importing torch and torchtune") for line in progress)
    assert any(line.endswith("validate: checking 4/4") for line in progress), progress
    assert not any("\x1b[K" in line or "\r" in line for line in progress)
    report = artifacts / "torchtune-validation-report" / "validation_report.txt"
    assert "4 configs: 4 valid" in report.read_text()


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_an_invalid_config_fails_with_annotations_on_config_and_experiment_lines(
    repo: Path, tmp_path: Path
) -> None:
    add_control(repo, "  optimizer._component_: torch.optim.AdamWW\n")
    code, log, _ = run_workflow(tmp_path, repo)
    assert code != 0 and "Job failed" in log
    annotations = re.findall(r"::error file=([^,]+),line=(\d+),title=([^:]+)::", log)
    assert (
        "lora_rank_study/experiment.yaml",
        "25",
        "optimizer._component_ [import]%2C set here",
    ) in annotations
    assert (
        "lora_rank_study/configs/run_000.yaml",
        "33",
        "optimizer._component_ [import]",
    ) in annotations
    assert "did you mean torch.optim.AdamW?" in log
    assert "OUTPUTS configs=4 invalid=4 drifted=0" in log


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_drift_fails_the_job_and_says_how_to_fix_it(repo: Path, tmp_path: Path) -> None:
    run = repo / "lora_rank_study" / "configs" / "run_001.yaml"
    run.write_text(run.read_text().replace("lora_rank: 16", "lora_rank: 17"))
    code, log, _ = run_workflow(tmp_path, repo)
    assert code != 0, log
    assert "Summary - ## Generated configs differ from their experiments" in log
    assert "-  lora_rank: 17" in log and "+  lora_rank: 16" in log
    assert "::error title=torchtune configs drifted::1 experiment(s) differ" in log
    assert "OUTPUTS configs=4 invalid=0 drifted=1" in log


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_warnings_fail_the_job_only_when_the_input_says_so(repo: Path, tmp_path: Path) -> None:
    add_control(repo, "  +epoch: 3\n")
    code, log, _ = run_workflow(tmp_path, repo)
    assert code == 0, log
    assert re.search(
        r"::warning file=lora_rank_study/configs/run_000.yaml,line=\d+,title=epoch", log
    )
    strict = repo.parent / "strict"
    shutil.copytree(repo / "lora_rank_study", strict / "lora_rank_study")
    code, log, _ = run_workflow(tmp_path, strict, inputs='          warnings-fail: "true"')
    assert code != 0 and "Job failed" in log


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_a_generated_folder_whose_experiment_is_gone_fails_the_job(
    repo: Path, tmp_path: Path
) -> None:
    # `git rm experiment.yaml` leaves its configs/: the job must not call that clean.
    shutil.copytree(repo / "lora_rank_study" / "configs", repo / "retired" / "configs")
    code, log, _ = run_workflow(tmp_path, repo)
    assert code != 0 and "Job failed" in log, log
    assert "stale: retired/configs/ (its experiment.yaml is gone)" in log
    assert "OUTPUTS configs=4 invalid=0 drifted=1" in log


def commit_all(repo: Path) -> str:
    """Commit the repository as it is; its commit's hash."""
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "base", "--allow-empty"], cwd=repo, check=True)
    done = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=repo, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def pull_request(base: str, head_repository: str = "lab/study") -> dict[str, Any]:
    return {
        "repository": {"full_name": "lab/study", "name": "study", "owner": {"login": "lab"}},
        "pull_request": {
            "number": 7,
            "base": {"sha": base, "repo": {"full_name": "lab/study"}},
            "head": {"repo": {"full_name": head_repository}},
        },
    }


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_the_change_table_is_in_the_summary_before_the_validation_report(
    repo: Path, tmp_path: Path
) -> None:
    base = commit_all(repo)
    add_control(repo, "  seed: 7\n")
    code, log, _ = run_workflow(tmp_path, repo, event=pull_request(base))
    assert code == 0, log
    table = log.index("Summary - ## What this change does to the runs")
    assert table < log.index("Summary - ## torchtune-config-writer validation report"), log
    assert "| changed | all 4 runs | `seed` | `null` | `7` |" in log


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as state:
        yield state


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_one_comment_is_created_then_updated_and_a_fork_gets_only_a_notice(
    repo: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    base = commit_all(repo)
    add_control(repo, "  seed: 7\n")
    inputs = '          comment: "true"\n'
    api = {"GITHUB_API_URL": github.url}
    code, log, _ = run_workflow(tmp_path / "1", repo, inputs, pull_request(base), api)
    assert code == 0, log
    [(method, path, body)] = github.writes()
    assert (method, path) == ("POST", "/repos/lab/study/issues/7/comments")
    assert "| changed | all 4 runs | `seed` | `null` | `7` |" in body["body"]
    [ours] = github.comments
    add_control(repo, "  shuffle: false\n")  # the next push
    code, log, _ = run_workflow(tmp_path / "2", repo, inputs, pull_request(base), api)
    assert code == 0, log
    method, path, body = github.writes()[-1]
    assert (method, path) == ("PATCH", f"/repos/lab/study/issues/comments/{ours}")
    assert list(github.comments) == [ours] and "`shuffle`" in github.comments[ours][1]
    writes = len(github.writes())
    fork = pull_request(base, head_repository="someone/study")
    code, log, _ = run_workflow(tmp_path / "3", repo, inputs, fork, api)
    assert code == 0, log
    assert len(github.writes()) == writes  # no write call from a fork's pull request
    assert "a pull request from a fork gets a read-only token" in log


def hijacking_json(folder: Path, record: Path) -> None:
    """A pull request's json.py in ``folder``: it writes the command line of whoever imports it
    (the token is in that process's reach) to ``record``, then stands in for the real json."""
    (folder / "json.py").write_text(
        textwrap.dedent(
            f"""\
            import os, sys
            with open({str(record)!r}, "a") as out:
                out.write(" ".join(sys.argv) + "\\n")
            here = os.path.dirname(os.path.abspath(__file__))
            sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
            del sys.modules["json"]
            import json
            """
        )
    )


def test_the_comment_step_runs_the_module_isolated() -> None:
    steps = yaml.safe_load((REPO / "action.yml").read_text())["runs"]["steps"]
    [step] = [step for step in steps if step.get("name") == "Comment on the pull request"]
    assert "python -I -m torchtune_config_writer.review.comment" in step["run"]


@pytest.mark.parametrize("isolated", [True, False])
def test_a_json_py_in_the_working_directory_is_imported_only_without_isolation(
    tmp_path: Path, github: FakeGitHub, isolated: bool
) -> None:
    record = tmp_path / "imported.txt"
    hijacking_json(tmp_path, record)
    (tmp_path / "event.json").write_text(json.dumps(pull_request("0" * 40)))
    env = {
        **os.environ,
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_API_URL": github.url,
        "GITHUB_TOKEN": "token",
    }
    flags = ["-I"] if isolated else []
    module = "torchtune_config_writer.review.comment"
    command = [sys.executable, *flags, "-m", module, "--drift-exit", "1", "--when-clean", "update"]
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    if isolated:  # as the Action runs it
        assert not record.exists()
        assert [call[:2] for call in github.writes()] == [
            ("POST", "/repos/lab/study/issues/7/comments")
        ]
    else:  # what -I prevents: the test above can fail
        assert "--when-clean" in record.read_text()


@pytest.mark.needs_act
@pytest.mark.needs_torch  # the workflow validates
def test_the_comment_step_imports_no_module_of_the_pull_requests_checkout(
    repo: Path, tmp_path: Path, github: FakeGitHub
) -> None:
    base = commit_all(repo)
    record = tmp_path / "imported.txt"
    hijacking_json(repo, record)
    inputs = '          comment: "true"\n'
    api = {"GITHUB_API_URL": github.url}
    code, log, _ = run_workflow(tmp_path, repo, inputs, pull_request(base), api)
    assert code == 0, log
    assert [call[:2] for call in github.writes()] == [
        ("POST", "/repos/lab/study/issues/7/comments")
    ]
    imports = record.read_text() if record.exists() else ""
    assert "--when-clean" not in imports, imports  # (the validate step's `python -` is not ours)
