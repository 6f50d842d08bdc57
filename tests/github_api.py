"""A small stand-in for GitHub's REST API of issue comments, recording every call.

It answers what the sticky comment uses (who the token is, and list, create, update, delete a
pull request's comments) the way GitHub does, with pages of ``per_page``; GitHub itself cannot
be reached here. A test can also have it answer one call with anything at all (``canned``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_LIST = re.compile(r"/repos/([^/]+/[^/]+)/issues/(\d+)/comments")
_ONE = re.compile(r"/repos/([^/]+/[^/]+)/issues/comments/(\d+)")
ACTIONS_BOT = {"login": "github-actions[bot]", "type": "Bot"}

# An answer as GitHub would not send it: (status, body, headers) or the raw bytes of a response.
Canned = tuple[int, bytes, dict[str, str]] | bytes


@dataclass
class FakeGitHub:
    """The comments it holds, the calls it got, and what it refuses.

    Attributes:
        url: Its base URL (what ``GITHUB_API_URL`` is set to).
        comments: Comment id → (pull request number, body).
        authors: Comment id → its ``user``; a comment not here is the token's own.
        user: What ``GET /user`` answers; ``None``: 403, as for the Actions token (whose
            comments are by ``github-actions[bot]``).
        calls: (method, path, body) of each request, in order.
        headers: The request headers of each call, in the same order.
        refuse_writes: Answer writes with this HTTP status (403: a read-only token).
        canned: (method, path without query) → the answer to the next such call, used once.
    """

    url: str = ""
    comments: dict[int, tuple[int, str]] = field(default_factory=dict)
    authors: dict[int, dict[str, Any]] = field(default_factory=dict)
    user: dict[str, Any] | None = None
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    refuse_writes: int | None = None
    canned: dict[tuple[str, str], Canned] = field(default_factory=dict)
    next_id: int = 1000

    def writes(self) -> list[tuple[str, str, Any]]:
        return [call for call in self.calls if call[0] != "GET"]

    def author(self, ident: int) -> dict[str, Any]:
        return self.authors.get(ident, self.user or ACTIONS_BOT)


def recorded_user(login: str, kind: str, ident: int = 41898282) -> dict[str, Any]:
    """A user as GitHub's REST API answers it (the documented "simple user" shape)."""
    api = "https://api.github.com/users/" + login
    return {
        "login": login,
        "id": ident,
        "node_id": "MDM6Qm90NDE4OTgyODI=",
        "avatar_url": "https://avatars.githubusercontent.com/in/15368?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": "https://github.com/apps/github-actions",
        "followers_url": api + "/followers",
        "following_url": api + "/following{/other_user}",
        "gists_url": api + "/gists{/gist_id}",
        "starred_url": api + "/starred{/owner}{/repo}",
        "subscriptions_url": api + "/subscriptions",
        "organizations_url": api + "/orgs",
        "repos_url": api + "/repos",
        "events_url": api + "/events{/privacy}",
        "received_events_url": api + "/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def recorded_comment(
    repository: str, number: int, ident: int, body: str, user: dict[str, Any]
) -> dict[str, Any]:
    """An issue comment as GitHub's REST API answers it (every documented field), so the
    comment step reads what the real API sends, not only the three fields it uses."""
    api = f"https://api.github.com/repos/{repository}"
    return {
        "url": f"{api}/issues/comments/{ident}",
        "html_url": f"https://github.com/{repository}/pull/{number}#issuecomment-{ident}",
        "issue_url": f"{api}/issues/{number}",
        "id": ident,
        "node_id": "IC_kwDOABCDEF5" + str(ident),
        "user": recorded_user(str(user.get("login")), str(user.get("type"))),
        "created_at": "2026-12-01T10:00:00Z",
        "updated_at": "2026-12-01T10:05:00Z",
        "author_association": "NONE" if user.get("type") == "Bot" else "MEMBER",
        "body": body,
        "reactions": {
            "url": f"{api}/issues/comments/{ident}/reactions",
            "total_count": 0,
            **dict.fromkeys(
                ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes"), 0
            ),
        },
        "performed_via_github_app": None,
    }


def _handler(state: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any = None) -> None:
            self._send(status, b"" if body is None else json.dumps(body).encode(), {})

        def _send(self, status: int, data: bytes, extra: dict[str, str]) -> None:
            self.send_response(status)
            headers = {"Content-Type": "application/json", "Content-Length": str(len(data))}
            for name, value in {**headers, **extra}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _handle(self) -> None:
            url = urlparse(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            state.calls.append((self.command, url.path, body))
            state.headers.append(dict(self.headers))
            canned = state.canned.pop((self.command, url.path), None)
            if isinstance(canned, bytes):
                self.wfile.write(canned)
                self.close_connection = True
                return
            if canned is not None:
                self._send(*canned)
                return
            if url.path == "/user" and self.command == "GET":
                if state.user is None:
                    self._answer(403, {"message": "Resource not accessible by integration"})
                else:
                    login, kind = str(state.user.get("login")), str(state.user.get("type"))
                    self._answer(200, recorded_user(login, kind) | state.user)
                return
            if self.command != "GET" and state.refuse_writes is not None:
                self._answer(state.refuse_writes, {"message": "Resource not accessible"})
                return
            listing, one = _LIST.fullmatch(url.path), _ONE.fullmatch(url.path)
            if listing and self.command == "GET":
                query = parse_qs(url.query)
                per_page, page = int(query["per_page"][0]), int(query["page"][0])
                number = int(listing[2])
                mine = [
                    recorded_comment(listing[1], number, ident, text, state.author(ident))
                    for ident, (pull, text) in sorted(state.comments.items())
                    if pull == number
                ]
                self._answer(200, mine[(page - 1) * per_page : page * per_page])
            elif listing and self.command == "POST":
                state.next_id += 1
                state.comments[state.next_id] = (int(listing[2]), body["body"])
                self._answer(
                    201,
                    recorded_comment(
                        listing[1], int(listing[2]), state.next_id, body["body"], state.author(0)
                    ),
                )
            elif one and int(one[2]) in state.comments and self.command == "PATCH":
                pull, _ = state.comments[int(one[2])]
                state.comments[int(one[2])] = (pull, body["body"])
                ident = int(one[2])
                self._answer(
                    200, recorded_comment(one[1], pull, ident, body["body"], state.author(ident))
                )
            elif one and int(one[2]) in state.comments and self.command == "DELETE":
                del state.comments[int(one[2])]
                self._answer(204)
            else:
                self._answer(404, {"message": "Not Found"})

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


@contextmanager
def fake_github() -> Iterator[FakeGitHub]:
    """A running stand-in on a free local port."""
    state = FakeGitHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
