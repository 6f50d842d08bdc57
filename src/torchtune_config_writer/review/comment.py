"""One pull-request comment that stays current: created once, updated in place on every push.

Run by the GitHub Action (``python -m torchtune_config_writer.review.comment BODY``) with the
job's token. The comment is found again by a hidden marker in its body. GitHub's REST API is
called with the standard library only. On a fork's pull request the token may not write: the
table stays in the job summary, with a notice, and the job does not fail for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MARKER = "<!-- torchtune-config-writer: sticky comment -->"
GITHUB_LIMIT = 65536  # characters in a comment's body
_PAGE = 100


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
    except (OSError, ValueError):
        return None
    pull = event.get("pull_request") if isinstance(event, dict) else None
    if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
        return None
    # The pull request's own repository, where the comment goes; a head elsewhere is a fork.
    base = (pull.get("base") or {}).get("repo") or {}
    repository = base.get("full_name") or environ.get("GITHUB_REPOSITORY", "")
    head = (pull.get("head") or {}).get("repo") or {}
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
    """``body`` cut to GitHub's limit, ending with where the whole table is."""
    if len(body) <= limit:
        return body
    tail = f"\n\n… cut to fit a comment: the whole table is in the job summary of {run_url}\n"
    return body[: limit - len(tail)].rsplit("\n", 1)[0] + tail


class _Api:
    def __init__(self, pull: PullRequest) -> None:
        self.pull = pull

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
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
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the job's API
            text = response.read().decode() or "null"
        return json.loads(text)

    def sticky(self) -> dict[str, Any] | None:
        """Our comment on the pull request, found by its marker."""
        pull = self.pull
        for page in range(1, 1000):
            path = f"/repos/{pull.repository}/issues/{pull.number}/comments"
            comments = self.call("GET", f"{path}?per_page={_PAGE}&page={page}")
            for comment in comments:
                if MARKER in (comment.get("body") or ""):
                    found: dict[str, Any] = comment
                    return found
            if len(comments) < _PAGE:
                return None
        return None


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
    """
    api = _Api(pull)
    existing = api.sticky()
    repository = pull.repository
    if clean and when_clean == "delete":
        if existing is None:
            return "everything is clean and there is no comment to delete"
        api.call("DELETE", f"/repos/{repository}/issues/comments/{existing['id']}")
        return f"everything is clean: deleted comment {existing['id']}"
    if clean and when_clean == "outdated":
        if existing is None:
            return "everything is clean: no comment written"
        body = "~~Earlier report~~: outdated, everything is clean now."
    text = fit(f"{MARKER}\n{body}", pull.run_url)
    if existing is not None:
        api.call("PATCH", f"/repos/{repository}/issues/comments/{existing['id']}", {"body": text})
        return f"updated comment {existing['id']}"
    created = api.call("POST", f"/repos/{repository}/issues/{pull.number}/comments", {"body": text})
    return f"created comment {created.get('id')}"


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
    pull = pull_request_of_job(dict(os.environ))
    if pull is None:
        print("::notice title=torchtune-config-writer::not a pull request: no comment written")
        return 0
    if pull.from_fork:
        print(
            "::notice title=torchtune-config-writer::a pull request from a fork gets a read-only "
            "token: the change table is in the job summary, not in a comment"
        )
        return 0
    body, clean = compose(_read(args.changes), _json(args.report), args.drift_exit, pull.run_url)
    try:
        print(post(pull, body, clean, args.when_clean))
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403, 404):  # a token that may not write: the summary has it all
            print(
                f"::notice title=torchtune-config-writer::the job's token may not comment "
                f"(HTTP {exc.code}; the workflow needs `permissions: pull-requests: write`): the "
                "change table is in the job summary"
            )
            return 0
        print(f"::warning title=torchtune-config-writer::commenting failed: HTTP {exc.code}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"::warning title=torchtune-config-writer::commenting failed: {exc}")
    return 0  # a comment that could not be written never fails the job


def _read(path: Path | None) -> str | None:
    try:
        return path.read_text(encoding="utf-8") if path is not None else None
    except OSError:
        return None


def _json(path: Path | None) -> dict[str, Any] | None:
    text = _read(path)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


if __name__ == "__main__":
    sys.exit(main())
