"""The GitHub Action: validated against GitHub's formats, and run by a real runner (act).

act runs the workflow on this machine (host mode, offline). Third-party actions are swapped for
small local stand-ins: setup-python does nothing (the installed environment is used, with
`install: "false"`), upload-artifact copies into a folder, and a first step copies the repository
in place of checkout. The action itself is this repository's `action.yml`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import EXAMPLES, REPO

BIN = Path(sys.executable).parent
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065"
UPLOAD_ARTIFACT = "actions/upload-artifact@65c4c4a1ddee5b72f698fdd19549f0f0fb45cf08"
THIS_ACTION = "OWNER/torchtune-config-writer@v0.2.0"
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


def run_workflow(tmp_path: Path, repo: Path, inputs: str = "") -> tuple[int, str, Path]:
    """Run the workflow on ``repo`` with act; returns (exit code, log, artifacts folder)."""
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
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"],
    ):
        subprocess.run(args, cwd=repo, check=True, env=env)
    result = subprocess.run(
        [
            str(BIN / "act"),
            "pull_request",
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
