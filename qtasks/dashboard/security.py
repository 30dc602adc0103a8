"""Who may see the dashboard and act through it.

- **Password** (optional on loopback, required elsewhere): a login form; a right password marks
  the session (a cookie signed with the process's secret, HttpOnly, SameSite=Strict). Compared
  in constant time; wrong tries are answered one at a time, each after a pause.
- **Actions** are POSTs only (routes accept no other method) and need both the session's CSRF
  token in the form and an ``Origin`` (or, without one, a ``Referer``) of this very site.
- **Limits**: request bodies over ``MAX_BODY`` bytes are refused with 413 before they are read;
  a dashboard on loopback answers only to loopback host names (no DNS rebinding).
- **Headers**: a strict Content-Security-Policy (scripts and styles from this site only), no
  framing (clickjacking of the action buttons), no MIME sniffing, no caching of pages.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 16 * 1024
LOGIN_PAUSE = 0.5
"""Seconds a wrong password waits before its answer; tries are answered one at a time."""
CSRF_FIELD = "csrf"
FRAGMENT_HEADER = "x-qtasks-fragment"
PUBLIC_PATHS = ("/login", "/static/")

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def password_matches(given: str, expected: str) -> bool:
    """Constant time whatever the lengths: compare digests, not the texts."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(), hashlib.sha256(expected.encode()).digest())


def csrf_token(request: Request) -> str:
    """The session's token, made on first use; forms carry it back in the ``csrf`` field."""
    token = request.session.get(CSRF_FIELD)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_FIELD] = token
    return token


def csrf_valid(request: Request, submitted: Any) -> bool:
    token = request.session.get(CSRF_FIELD)
    return (isinstance(token, str) and isinstance(submitted, str)
            and hmac.compare_digest(token.encode(), submitted.encode()))


def same_origin(request: Request) -> bool:
    """The request was sent by a page of this site: its Origin (else Referer) names this host."""
    host = request.headers.get("host")
    if not host:
        return False
    origin = request.headers.get("origin")
    source = origin if origin and origin != "null" else request.headers.get("referer")
    if not source:
        return False
    parts = urlsplit(source)
    return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def logged_in(request: Request) -> bool:
    return request.session.get("auth") is True


def log_in(request: Request) -> None:
    """A fresh session for the person who gave the password (a token known before login is not kept)."""
    request.session.clear()
    request.session["auth"] = True
    csrf_token(request)


class LoginThrottle:
    """Password checks one at a time, a wrong one answered after ``pause`` seconds: a few tries a second."""

    def __init__(self, pause: float = LOGIN_PAUSE) -> None:
        self._lock = asyncio.Lock()
        self._pause = pause

    async def check(self, given: str, expected: str) -> bool:
        async with self._lock:
            if password_matches(given, expected):
                return True
            await asyncio.sleep(self._pause)
            return False


class RequireLogin:
    """With a password, every path but the login page and static files needs a logged-in session.

    A page is redirected to the login form; a live fragment or JSON request gets 401, so the
    page's script can reload into the login form.
    """

    def __init__(self, app: ASGIApp, enabled: bool) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http" or scope["path"].startswith(PUBLIC_PATHS):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        if logged_in(request):
            await self.app(scope, receive, send)
            return
        response: Response
        if request.headers.get(FRAGMENT_HEADER) or scope["path"].startswith("/api/"):
            response = JSONResponse({"error": "log in first"}, status_code=401)
        elif request.method in ("GET", "HEAD"):
            response = RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        else:
            response = PlainTextResponse("log in first", status_code=401)
        await response(scope, receive, send)


class LimitBody:
    """Refuses a request body over ``limit`` bytes with 413, by its Content-Length or while it streams."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = False

        async def limited() -> Message:
            nonlocal received, too_large
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    raise BodyTooLarge()
            return message

        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if not started:
                await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(f"request body over {self.limit} bytes", status_code=413)
        await response(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised inside :class:`LimitBody` to stop reading a body that grew past the limit."""


class SecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response (static files may be cached)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if not (static and name == "cache-control"):
                        headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, with_headers)


def loopback_host_names(bind_host: str) -> list[str]:
    """The Host names a loopback dashboard answers to (anything else may be a DNS-rebinding page)."""
    return sorted({"127.0.0.1", "localhost", "::1", "[::1]", bind_host})
