"""The guard in front of every request: the API key, the size of the body, and a count of
requests accepted and answered (logged at shutdown, so a graceful stop can be checked)."""
from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from starlette.datastructures import Headers

from polymodal.serving.problems import Problem, answer

__all__ = ["Guard", "Counts", "BodyTooLarge", "DOCS_FILES"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

OPEN_PATHS = ("/", "/health", "/docs", "/docs/oauth2-redirect", "/openapi.json")
DOCS_FILES = "/docs-files"  # Swagger UI's scripts and styles


@dataclass
class Counts:
    """HTTP requests taken in, and answered in full."""

    accepted: int = 0
    answered: int = 0


class BodyTooLarge(Problem):
    """Raised while a body is read, once it passes the limit (answered 413)."""

    def __init__(self, limit: int):
        super().__init__(413, f"the request body is larger than the limit of {limit:,} bytes; send smaller "
                              "files or fewer rows (the server's --max-request-mb)")


class Guard:
    """ASGI middleware: API key (``X-API-Key`` or ``Authorization: Bearer``, compared in constant
    time) on every path but the page, its files, ``/health`` and the docs; bodies over
    ``max_bytes`` refused with 413, by their ``Content-Length`` or while they stream in.

    Args:
        app: the application it guards.
        api_key: None: no key needed.
        max_bytes: the largest request body.
        counts: where requests accepted and answered are counted.
    """

    def __init__(self, app: Any, api_key: str | None, max_bytes: int, counts: Counts):
        self.app, self.max_bytes, self.counts = app, max_bytes, counts
        self.key = api_key.encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.counts.accepted += 1
        started = False

        async def counted(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.counts.answered += 1

        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, counted)
            return
        seen = 0

        async def limited() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, limited, counted)
        except BodyTooLarge as exc:
            if started:
                raise
            await answer(413, exc.detail)(scope, receive, counted)

    def _refusal(self, scope: Scope, headers: Headers) -> Any:
        path, root = scope.get("path", ""), scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if self.key is not None and scope.get("method") != "OPTIONS" and not _open(path):
            if not self._authorised(headers):
                return answer(401, "this service needs an API key: send it in the X-API-Key header or as "
                                   "Authorization: Bearer KEY", {"WWW-Authenticate": "Bearer"})
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return answer(400, "the Content-Length header is not a number")
            if int(length) > self.max_bytes:
                return answer(413, BodyTooLarge(self.max_bytes).detail)
        return None

    def _authorised(self, headers: Headers) -> bool:
        given = [headers.get("x-api-key", "")]
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            given.append(token.strip())
        ok = False
        for candidate in given:  # every candidate is compared: the time does not say which matched
            ok |= hmac.compare_digest(candidate.encode(), self.key)
        return ok


def _open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith(("/static/", DOCS_FILES + "/"))
