"""One pull-request comment that stays current: created once, updated in place on every push.

Run by the GitHub Action (``python -I -m torchtune_config_writer.review.comment``: isolated, so
no module of the pull request's checkout is imported) with the job's token. The comment is found
again by a hidden marker in its body, on a comment written by the token's own identity (anyone
can paste the marker). GitHub's REST API is called with the standard library only, and the
token goes to the API's origin only. On a fork's pull request the token may not write: the
table stays in the job summary, with a notice. Nothing the API answers fails the job: a comment
that cannot be written is a warning.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeGuard

from ..terminal import printable

MARKER = "<!-- torchtune-config-writer: sticky comment -->"
GITHUB_LIMIT = 65536  # characters in a comment's body
ACTIONS_BOT = "github-actions[bot]"  # who writes with the Actions token
_PAGE = 100
_MAX_ANSWER = 64 * 2**20  # a page of 100 comments of 65536 characters is far below
_VERDICT = "\n### Validation\n"  # compose() ends the body with it
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


class Unexpected(Exception):
    """An answer of the API that is not what GitHub documents."""


@dataclass(frozen=True)
class PullRequest:
    """Where the comment goes, from the job's environment and event."""

    api: str
    repository: str
    number: int
    token: str
    from_fork: bool
    run_url: str


def pull_request_of_job(environ: dict[str, str]) -> PullRequest | None:
    """The pull request of a ``pull_request`` job, or ``None`` for any other event."""
    event_path = environ.get("GITHUB_EVENT_PATH")
    if not event_path:
        return None
    try:
        event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    pull = _object(event).get("pull_request")
    if not isinstance(pull, dict) or not _is_id(pull.get("number")):
        return None
    # The pull request's own repository, where the comment goes; a head elsewhere is a fork.
    base = _object(_object(pull.get("base")).get("repo"))
    repository = base.get("full_name")
    if not isinstance(repository, str) or not repository:
        repository = environ.get("GITHUB_REPOSITORY", "")
    head = _object(_object(pull.get("head")).get("repo"))
    from_fork = bool(head.get("fork")) or head.get("full_name", repository) != repository
    server = environ.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = f"{server}/{repository}/actions/runs/{environ.get('GITHUB_RUN_ID', '')}"
    return PullRequest(
        environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/"),
        repository,
        pull["number"],
        environ.get("GITHUB_TOKEN", ""),
        from_fork,
        run_url,
    )


def fit(body: str, run_url: str, limit: int = GITHUB_LIMIT) -> str:
    """``body`` within GitHub's limit: the change table is cut from its end, at a line, and
    the verdict (the ``### Validation`` section that ends the body) is kept whole."""
    if len(body) <= limit:
        return body
    notice = f"\n… cut to fit a comment: the whole table is in the job summary of {run_url}\n"
    start = body.rfind(_VERDICT) + 1  # the last one: a table could hold the same line
    head, verdict = (body[:start], "\n" + body[start:]) if start else (body, "")
    room = limit - len(notice) - len(verdict)
    if room < 0:  # only for a limit far below GitHub's
        return body[:limit]
    return (_whole_lines(head, room) or head[:room]) + notice + verdict


def _whole_lines(text: str, room: int) -> str:
    """The first whole lines of ``text`` within ``room`` characters, a code block left open
    closed (else it would hold the verdict)."""
    cut = text[:room]
    while cut:
        cut = cut[: cut.rfind("\n") + 1]
        closing = _open_fence(cut)
        if len(cut) + len(closing) <= room:
            return cut + closing
        cut = cut[:-1]
    return ""


def _open_fence(text: str) -> str:
    """The line that closes the code block ``text`` leaves open, or ``""``."""
    fence = ""
    for line in text.split("\n"):
        match = _FENCE.match(line)
        if match is None:
            continue
        run = match[1]
        if not fence:
            fence = run
        elif run[0] == fence[0] and len(run) >= len(fence) and not line[match.end() :].strip():
            fence = ""
    return f"{fence}\n" if fence else ""


class _SameOrigin(urllib.request.HTTPRedirectHandler):
    """Follows a redirect of a read only, and drops the token when it leads off the API's
    origin (urllib keeps every header). A write is not followed: urllib would send a POST on
    as a GET, and a comment not written is then reported as written."""

    def __init__(self, api: str) -> None:
        self.origin = _origin(api)

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        if req.get_method() != "GET" or urllib.parse.urlsplit(newurl).scheme not in _PORTS:
            return None  # urllib then raises HTTPError of the redirect's status
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != self.origin:
            new.remove_header("Authorization")
        return new


_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _PORTS.get(scheme)


class _Api:
    def __init__(self, pull: PullRequest) -> None:
        self.pull = pull
        # Its own opener: the global one would follow a redirect with the token.
        self.opener = urllib.request.build_opener(_SameOrigin(pull.api))

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The answer's JSON (``None`` for DELETE, which answers with no body)."""
        request = urllib.request.Request(
            f"{self.pull.api}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Accept": "application/vnd.github+json",
                "Authorization": f"Bearer {self.pull.token}",
                "X-GitHub-Api-Version": "2022-11-28",
                "Content-Type": "application/json",
            },
        )
        with self.opener.open(request, timeout=30) as response:
            data = response.read(_MAX_ANSWER + 1)
        if method == "DELETE":
            return None
        if not data or len(data) > _MAX_ANSWER:
            raise Unexpected(f"{method} answered with {'no' if not data else 'too large a'} body")
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise Unexpected(f"{method} answered with no readable JSON") from exc

    def object(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = self.call(method, path, body)
        if not isinstance(answer, dict):
            raise Unexpected(f"{method} answered with no JSON object")
        return answer

    def identity(self) -> tuple[str, str | None]:
        """The token's login and user type: whose comment is ours."""
        try:
            user = self.object("GET", "/user")
        except urllib.error.HTTPError as exc:
            if exc.code != 403:
                raise
            return ACTIONS_BOT, "Bot"  # the Actions token may not read /user
        login, kind = user.get("login"), user.get("type")
        if not isinstance(login, str) or not login:
            raise Unexpected("/user answered with no login")
        return login, kind if isinstance(kind, str) else None

    def sticky(self) -> int | None:
        """The id of our comment on the pull request: the marker in a comment of ours."""
        identity = self.identity()
        path = f"/repos/{self.pull.repository}/issues/{self.pull.number}/comments"
        for page in range(1, 1000):
            comments = self.call("GET", f"{path}?per_page={_PAGE}&page={page}")
            if not isinstance(comments, list):
                raise Unexpected("the comments' listing is not a list")
            for comment in comments:
                if _ours(comment, identity):
                    return _id_of(comment)
            if len(comments) < _PAGE:
                return None
        return None


def _ours(comment: Any, identity: tuple[str, str | None]) -> bool:
    if not isinstance(comment, dict):
        raise Unexpected("the comments' listing holds something other than comments")
    body, user = comment.get("body"), _object(comment.get("user"))
    login, kind = identity
    return (
        isinstance(body, str)
        and MARKER in body
        and user.get("login") == login
        and (kind is None or user.get("type") == kind)
    )


def _id_of(comment: dict[str, Any]) -> int:
    ident = comment.get("id")
    if not _is_id(ident):
        raise Unexpected("a comment without a numeric id")
    return ident


def _is_id(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def post(pull: PullRequest, body: str, clean: bool, when_clean: str) -> str:
    """Create, update or (when everything is clean and the user asks) remove the comment.

    Args:
        pull: The pull request.
        body: The comment's Markdown, without the marker.
        clean: No drift and no invalid config.
        when_clean: ``update`` (default), ``delete``, or ``outdated`` (the body is replaced by
            a line saying the earlier report is outdated).

    Returns:
        What was done, for the job's log.

    Raises:
        Unexpected: An answer not of the shape GitHub documents.
    """
    api = _Api(pull)
    existing = api.sticky()
    repository = pull.repository
    if clean and when_clean == "delete":
        if existing is None:
            return "everything is clean and there is no comment to delete"
        api.call("DELETE", f"/repos/{repository}/issues/comments/{existing}")
        return f"everything is clean: deleted comment {existing}"
    if clean and when_clean == "outdated":
        if existing is None:
            return "everything is clean: no comment written"
        body = "~~Earlier report~~: outdated, everything is clean now."
    text = fit(f"{MARKER}\n{body}", pull.run_url)
    if existing is not None:
        path = f"/repos/{repository}/issues/comments/{existing}"
        return f"updated comment {_id_of(api.object('PATCH', path, {'body': text}))}"
    path = f"/repos/{repository}/issues/{pull.number}/comments"
    return f"created comment {_id_of(api.object('POST', path, {'body': text}))}"


def compose(
    changes: str | None,
    report: dict[str, Any] | None,
    drift_exit: str,
    run_url: str,
) -> tuple[str, bool]:
    """The comment's Markdown and whether everything is clean (no drift, no invalid config).

    Args:
        changes: The change table (``diff --format markdown``), or ``None`` where it could not
            be made (the base commit not fetched).
        report: The validation report (``validate --json``), or ``None`` where it did not run.
        drift_exit: The drift check's exit code.
        run_url: The job's run, where the summary and the reports are.
    """
    parts = [
        changes
        or "## What this change does to the runs\n\nNo table: the base commit was "
        "not fetched (actions/checkout with `fetch-depth: 0`).\n"
    ]
    verdict = []
    drifted = drift_exit not in ("", "0")
    verdict.append(
        "❌ generated configs differ from their experiments: run `torchtune-config-writer check "
        "--fix` and commit"
        if drifted
        else "✅ generated configs match their experiments"
    )
    invalid = None
    if report is None:
        verdict.append("❌ validation did not run: see the job's log")
    else:
        counts = report.get("counts", {})
        total, invalid = counts.get("total", 0), counts.get("invalid", 0)
        warnings, unverified = counts.get("warning", 0), counts.get("unverified", 0)
        mark = "❌" if invalid else "✅"
        verdict.append(
            f"{mark} {total} configs validated: {invalid} invalid, {warnings} with warnings, "
            f"{unverified} unverified"
        )
    parts.append("### Validation\n\n" + "".join(f"- {line}\n" for line in verdict))
    parts.append(f"[The job's summary and reports]({run_url})\n")
    clean = not drifted and report is not None and not invalid
    return "\n".join(part.rstrip("\n") + "\n" for part in parts), clean


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m torchtune_config_writer.review.comment")
    parser.add_argument("--changes", type=Path, help="the change table, Markdown")
    parser.add_argument("--report", type=Path, help="the validation report, JSON")
    parser.add_argument("--drift-exit", default="", help="the drift check's exit code")
    parser.add_argument("--when-clean", choices=("update", "delete", "outdated"), default="update")
    args = parser.parse_args(argv)
    try:
        print(_comment(args))
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403, 404):  # a token that may not write: the summary has it all
            print(
                f"::notice title=torchtune-config-writer::the job's token may not comment "
                f"(HTTP {exc.code}; the workflow needs `permissions: pull-requests: write`): the "
                "change table is in the job summary"
            )
            return 0
        _warn(f"HTTP {exc.code}")
    except Exception as exc:  # noqa: BLE001 - whatever the API answers, the job goes on
        _warn(str(exc) if isinstance(exc, Unexpected) else f"{type(exc).__name__}: {exc}")
    return 0  # a comment that could not be written never fails the job


def _comment(args: argparse.Namespace) -> str:
    """Write the comment; the line for the job's log."""
    pull = pull_request_of_job(dict(os.environ))
    if pull is None:
        return "::notice title=torchtune-config-writer::not a pull request: no comment written"
    if pull.from_fork:
        return (
            "::notice title=torchtune-config-writer::a pull request from a fork gets a read-only "
            "token: the change table is in the job summary, not in a comment"
        )
    body, clean = compose(_read(args.changes), _report(args.report), args.drift_exit, pull.run_url)
    return post(pull, body, clean, args.when_clean)


def _warn(message: str) -> None:
    """One warning line; ``message`` may hold what the server said, escaped as GitHub
    documents for a workflow command's data (a tab too: no control character at all)."""
    text = printable(message).replace("\t", "\\t")
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    print(f"::warning title=torchtune-config-writer::commenting failed: {text}")


def _read(path: Path | None) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path is not None else None
    except OSError:
        return None


def _report(path: Path | None) -> dict[str, Any] | None:
    """The validation report, or ``None`` where it is missing or its counts are not numbers
    (then nothing counts as clean)."""
    text = _read(path)
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    report = _object(data)
    counts = report.get("counts")
    if not isinstance(counts, dict) or not all(isinstance(value, int) for value in counts.values()):
        return None
    return report


if __name__ == "__main__":
    sys.exit(main())
