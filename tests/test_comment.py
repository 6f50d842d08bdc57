"""The sticky pull-request comment against a stand-in of GitHub's REST API (tests/github_api.py)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from torchtune_config_writer.review import comment
from torchtune_config_writer.review.comment import GITHUB_LIMIT, MARKER, compose, fit

from .github_api import ACTIONS_BOT, Canned, FakeGitHub, fake_github

REPOSITORY = "lab/study"
REPORT = {"counts": {"total": 4, "invalid": 0, "warning": 1, "unverified": 0, "valid": 3}}
LISTING = f"/repos/{REPOSITORY}/issues/7/comments"
WARNING = "::warning title=torchtune-config-writer::commenting failed: "
RUN_URL = "https://github.example/lab/study/actions/runs/42"


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
    pages = [path for method, path, _ in github.calls if (method, path) == ("GET", LISTING)]
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


def test_a_marker_in_someone_elses_comment_is_never_edited_or_deleted(
    job: Path, github: FakeGitHub
) -> None:
    github.comments[1] = (7, f"{MARKER}\na reviewer quoting the bot")
    github.authors[1] = {"login": "mallory", "type": "User"}
    github.comments[2] = (7, f"{MARKER}\na user named like the bot")
    github.authors[2] = {"login": "github-actions[bot]", "type": "User"}
    assert run(job, drift="1") == 0
    [(method, path, _)] = github.writes()
    assert (method, path) == ("POST", LISTING)  # ours, beside theirs
    ours = max(github.comments)
    assert run(job, "--when-clean", "delete") == 0
    assert github.writes()[-1][:2] == ("DELETE", f"/repos/{REPOSITORY}/issues/comments/{ours}")
    assert run(job, "--when-clean", "delete") == 0
    assert sorted(github.comments) == [1, 2]
    assert github.comments[1] == (7, f"{MARKER}\na reviewer quoting the bot")


def test_with_a_personal_token_the_comment_is_the_token_owners(
    job: Path, github: FakeGitHub
) -> None:
    github.user = {"login": "alice", "type": "User"}
    github.comments[1] = (7, f"{MARKER}\nwritten by the Actions token")
    github.authors[1] = ACTIONS_BOT
    github.comments[2] = (7, f"{MARKER}\nalice's")
    assert run(job) == 0
    [(method, path, _)] = github.writes()
    assert (method, path) == ("PATCH", f"/repos/{REPOSITORY}/issues/comments/2")


def test_a_redirect_to_another_port_or_host_gets_no_token(job: Path, github: FakeGitHub) -> None:
    port = github.url.rsplit(":", 1)[1]
    with fake_github() as other:
        github.canned[("GET", "/user")] = (307, b"", {"Location": f"{other.url}/user"})
        elsewhere = f"http://localhost:{port}{LISTING}?per_page=100&page=1"
        github.canned[("GET", LISTING)] = (302, b"", {"Location": elsewhere})
        assert run(job) == 0
    assert [call[:2] for call in other.calls] == [("GET", "/user")]
    assert "Authorization" not in other.headers[0]
    hosts = [
        (headers["Host"].split(":")[0], "Authorization" in headers) for headers in github.headers
    ]
    # /user, the listing, the listing again at localhost, then the comment itself
    assert hosts == [
        ("127.0.0.1", True),
        ("127.0.0.1", True),
        ("localhost", False),
        ("127.0.0.1", True),
    ]
    assert github.writes()[0][:2] == ("POST", LISTING)


def test_a_redirect_within_the_api_keeps_the_token(job: Path, github: FakeGitHub) -> None:
    github.canned[("GET", "/user")] = (301, b"", {"Location": f"{github.url}/user"})
    assert run(job) == 0
    assert all("Authorization" in headers for headers in github.headers)
    assert github.writes()[0][:2] == ("POST", LISTING)


def one_line_warning(out: str) -> str:
    """The only line of ``out``: a warning, and nothing in it that a runner acts on."""
    [line] = out.splitlines()  # \r and the Unicode line breaks count as line ends here
    assert line.startswith(WARNING), out
    assert not re.search("[\x00-\x1f\x7f-\x9f]", line), line
    assert not re.search("%(?!25|0D|0A)", line), line
    return line


@pytest.mark.parametrize(
    ("status", "method"), [(301, "POST"), (302, "POST"), (307, "POST"), (308, "PATCH")]
)
def test_a_redirected_write_is_a_warning_and_is_not_followed(
    job: Path,
    github: FakeGitHub,
    capsys: pytest.CaptureFixture[str],
    status: int,
    method: str,
) -> None:
    path = LISTING
    if method == "PATCH":
        github.comments[5] = (7, f"{MARKER}\nold")
        path = f"/repos/{REPOSITORY}/issues/comments/5"
    # urllib would send a POST on as a GET: to the listing, whose list reads as no comment
    where = f"{github.url}{LISTING}?per_page=100&page=1"
    github.canned[(method, path)] = (status, b"", {"Location": where})
    assert run(job) == 0
    assert one_line_warning(capsys.readouterr().out) == f"{WARNING}HTTP {status}"
    assert github.calls[-1][:2] == (method, path)


BOT_SAYS = {"body": MARKER, "user": ACTIONS_BOT}
ONE = f"/repos/{REPOSITORY}/issues/comments/5"
MALFORMED: dict[str, tuple[str, str, Canned]] = {
    "listing an object": ("GET", LISTING, (200, b'{"id": 1}', {})),
    "listing empty": ("GET", LISTING, (200, b"", {})),
    "listing no content": ("GET", LISTING, (204, b"", {})),
    "listing not JSON": ("GET", LISTING, (200, b"<html>", {})),
    "listing not UTF-8": ("GET", LISTING, (200, b'["\xff"]', {})),
    "listing nested past the parser": ("GET", LISTING, (200, b"[" * 100_000, {})),
    "listing cut short": ("GET", LISTING, (200, b"[", {"Content-Length": "100"})),
    "listing of numbers": ("GET", LISTING, (200, b"[1]", {})),
    "id a path": ("GET", LISTING, (200, json.dumps([{**BOT_SAYS, "id": "5/.."}]).encode(), {})),
    "id a boolean": ("GET", LISTING, (200, json.dumps([{**BOT_SAYS, "id": True}]).encode(), {})),
    "status line unreadable": ("GET", LISTING, b"HTTP/1.1 OK\r\n\r\n"),
    "no answer": ("GET", LISTING, b""),
    "identity a list": ("GET", "/user", (200, b"[]", {})),
    "identity without login": ("GET", "/user", (200, b'{"login": 5}', {})),
    "created a list": ("POST", LISTING, (201, b"[]", {})),
    "created a string": ("POST", LISTING, (201, b'"created"', {})),
    "created null": ("POST", LISTING, (201, b"null", {})),
    "created without id": ("POST", LISTING, (201, b"{}", {})),
    "updated a list": ("PATCH", ONE, (200, b"[]", {})),
    "updated empty": ("PATCH", ONE, (200, b"", {})),
    "updated an id of text": ("PATCH", ONE, (200, b'{"id": "5"}', {})),
    "server error": ("GET", LISTING, (500, b"{}", {})),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_a_malformed_answer_is_one_warning_and_the_job_passes(
    job: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    method, path, answer = MALFORMED[case]
    if method == "PATCH":
        github.comments[5] = (7, f"{MARKER}\nold")
    github.canned[(method, path)] = answer
    assert run(job) == 0
    one_line_warning(capsys.readouterr().out)
    if method == "GET":
        assert github.writes() == []  # nothing written on what could not be read


def test_what_the_server_said_is_escaped_in_the_warning(
    job: Path, github: FakeGitHub, capsys: pytest.CaptureFixture[str]
) -> None:
    status = b"HTTP/1.1 2xx 100% \x1b]52;c;aGk=\x07\r::error::forged\xc2\x85%0A\r\n\r\n"
    github.canned[("GET", LISTING)] = status
    assert run(job) == 0
    line = one_line_warning(capsys.readouterr().out)
    assert "100%25" in line and "::error::forged" in line


def changes_of(rows: str) -> str:
    head = "## What this change does to the runs\n\n| | runs | key | before | after |\n"
    return f"{head}|---|---|---|---|---|\n{rows}"


def test_a_cut_comment_keeps_its_head_and_its_whole_verdict() -> None:
    rows = "".join(f"| changed | run_{n:05d} | `lr` | 1 | 2 |\n" for n in range(5000))
    body, _ = compose(changes_of(rows), REPORT, "1", RUN_URL)
    verdict = body[body.index("### Validation") :]
    text = fit(f"{MARKER}\n{body}", RUN_URL)
    assert len(text) <= GITHUB_LIMIT
    assert text.startswith(f"{MARKER}\n## What this change does to the runs\n\n| | runs |")
    assert text.endswith(
        f"… cut to fit a comment: the whole table is in the job summary of {RUN_URL}\n\n{verdict}"
    )
    kept = text.split("\n\n… cut")[0]
    assert f"{MARKER}\n{body}".startswith(kept) and kept.endswith("| 2 |")  # whole rows


def test_one_value_past_the_limit_leaves_the_verdict_whole() -> None:
    body, _ = compose(
        changes_of(f"| changed | all 4 runs | `lr` | {'9' * 70_000} | 1 |\n"), REPORT, "0", RUN_URL
    )
    text = fit(f"{MARKER}\n{body}", RUN_URL)
    assert len(text) <= GITHUB_LIMIT
    assert "999" not in text  # no half row
    assert "✅ 4 configs validated" in text and text.endswith(
        f"[The job's summary and reports]({RUN_URL})\n"
    )
    lone = fit("9" * 70_000, RUN_URL)  # no line to cut at: cut within it
    assert lone.startswith("999") and RUN_URL in lone and len(lone) <= GITHUB_LIMIT


def test_a_code_block_cut_open_is_closed_before_the_verdict() -> None:
    block = "```diff\n" + "".join(f"+ line {n}\n" for n in range(20_000)) + "```\n"
    body, _ = compose(f"## What this change does to the runs\n\n{block}", REPORT, "1", RUN_URL)
    text = fit(f"{MARKER}\n{body}", RUN_URL)
    assert len(text) <= GITHUB_LIMIT
    before = text[: text.index("\n… cut")]
    assert before.count("```") == 2 and before.endswith("```\n")


def test_a_limit_too_small_for_the_verdict_still_gives_text_within_it() -> None:
    body, _ = compose(changes_of("| added | run_000 | | | |\n"), REPORT, "0", RUN_URL)
    text = fit(f"{MARKER}\n{body}", RUN_URL, limit=80)
    assert text and len(text) <= 80
