"""The sticky pull-request comment against a stand-in of GitHub's REST API (tests/github_api.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchtune_config_writer.review import comment
from torchtune_config_writer.review.comment import GITHUB_LIMIT, MARKER, fit

from .github_api import FakeGitHub, fake_github

REPOSITORY = "lab/study"
REPORT = {"counts": {"total": 4, "invalid": 0, "warning": 1, "unverified": 0, "valid": 3}}


def event_of(head_repository: str) -> dict[str, object]:
    """A pull_request event of pull request 7, its head in ``head_repository``."""
    return {
        "pull_request": {
            "number": 7,
            "base": {"repo": {"full_name": REPOSITORY}},
            "head": {"repo": {"full_name": head_repository}},
        }
    }


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with fake_github() as state:
        yield state


@pytest.fixture
def job(tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pull_request job's environment, its event and the files the Action writes."""
    (tmp_path / "event.json").write_text(json.dumps(event_of(REPOSITORY)))
    for name, value in {
        "GITHUB_EVENT_PATH": str(tmp_path / "event.json"),
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GITHUB_TOKEN": "token",
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "42",
    }.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "changes.md").write_text("## What this change does to the runs\n\n| table |\n")
    (tmp_path / "report.json").write_text(json.dumps(REPORT))
    return tmp_path


def run(job: Path, *extra: str, drift: str = "0") -> int:
    return comment.main(
        [
            "--changes",
            str(job / "changes.md"),
            "--report",
            str(job / "report.json"),
            "--drift-exit",
            drift,
            *extra,
        ]
    )


def test_the_first_push_creates_the_comment_and_the_next_updates_that_one(
    job: Path, github: FakeGitHub
) -> None:
    github.comments[1] = (7, "a reviewer's own comment")
    assert run(job) == 0
    [(method, path, body)] = github.writes()
    assert (method, path) == ("POST", f"/repos/{REPOSITORY}/issues/7/comments")
    assert body["body"].startswith(MARKER)
    assert "| table |" in body["body"] and "4 configs validated: 0 invalid" in body["body"]
    created = max(github.comments)
    (job / "changes.md").write_text("## What this change does to the runs\n\n| second |\n")
    assert run(job) == 0
    method, path, body = github.writes()[-1]
    assert (method, path) == ("PATCH", f"/repos/{REPOSITORY}/issues/comments/{created}")
    assert sorted(github.comments) == [1, created]  # still one comment of ours
    assert "| second |" in github.comments[created][1]
    assert github.comments[1] == (7, "a reviewer's own comment")


def test_the_comment_is_found_past_the_first_page(job: Path, github: FakeGitHub) -> None:
    for ident in range(1, 151):
        github.comments[ident] = (7, f"comment {ident}")
    github.comments[151] = (7, f"{MARKER}\nold")
    assert run(job) == 0
    [(method, path, _)] = github.writes()
    assert (method, path) == ("PATCH", f"/repos/{REPOSITORY}/issues/comments/151")
    pages = [path for method, path, _ in github.calls if method == "GET"]
    assert len(pages) == 2


def test_a_fork_makes_no_write_call_and_passes(
    job: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    (job / "event.json").write_text(json.dumps(event_of("a-fork/study")))
    assert run(job) == 0
    assert github.calls == []
    assert "::notice" in capsys.readouterr().out


def test_a_token_that_may_not_write_is_a_notice_not_a_failure(
    job: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    github.refuse_writes = 403
    assert run(job) == 0
    assert "pull-requests: write" in capsys.readouterr().out
    assert github.comments == {}


def test_when_clean_the_comment_is_deleted_or_marked_outdated_if_asked(
    job: Path, github: FakeGitHub
) -> None:
    assert run(job, drift="1") == 0  # drift: not clean, written
    [ours] = github.comments
    assert run(job, "--when-clean", "outdated") == 0
    assert "outdated" in github.comments[ours][1] and MARKER in github.comments[ours][1]
    assert run(job, "--when-clean", "delete") == 0
    assert github.comments == {}
    assert run(job, "--when-clean", "delete") == 0  # nothing to delete, nothing created
    assert github.comments == {}


def test_a_body_past_githubs_limit_is_cut_with_a_link_to_the_run() -> None:
    body = "".join(f"| run_{n:05d} | x |\n" for n in range(10_000))
    cut = fit(body, "https://github.example/lab/study/actions/runs/42")
    assert len(cut) <= GITHUB_LIMIT
    assert cut.endswith("job summary of https://github.example/lab/study/actions/runs/42\n")
    assert body.startswith(cut.split("\n\n… cut")[0])
    assert fit("short", "url") == "short"


def test_not_a_pull_request_writes_nothing(
    job: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    (job / "event.json").write_text(json.dumps({"push": {}}))
    assert run(job) == 0
    assert github.calls == []
