"""The dashboard's routes.

Every page is live: its script asks the same URL again with the ``X-QTasks-Fragment`` header
every few seconds and gets only the page's live part (``_<page>.html``), which replaces the
old one when it changed. ``/api/...`` gives the same facts as JSON. Actions are POST-only
routes that check the session's CSRF token and the request's origin, then redirect (303).
"""

from __future__ import annotations

import asyncio
import logging
import uuid as uuid_module
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from qtasks.dashboard.security import (
    CSRF_FIELD,
    FRAGMENT_HEADER,
    LoginThrottle,
    csrf_token,
    csrf_valid,
    log_in,
    logged_in,
    same_origin,
)
from qtasks.exc import QTasksError, TaskNotFoundError

logger = logging.getLogger(__name__)

STATUSES = ("new", "process", "success", "error", "cancel", "retry")
RETRYABLE = frozenset({"error", "cancel"})
CANCELLABLE = frozenset({"new", "process"})
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_NAME = 200
MAX_REASON = 500
MAX_FORM_FIELDS = 8
OVERVIEW_TASKS = 10
OVERVIEW_DEAD = 20
MAX_CHAIN = 10
"""Attempts a task page shows on either side of its retry chain (each costs the broker a look-up)."""
MAX_FLASH = 5


async def _ask(request: Request, method: str, *args: Any, **kwargs: Any) -> Any:
    return await request.app.state.gateway.call(method, *args, **kwargs)


def _fragment(request: Request) -> bool:
    return bool(request.headers.get(FRAGMENT_HEADER))


def _flash(request: Request, kind: str, text: str) -> None:
    messages = list(request.session.get("flash", []))[-(MAX_FLASH - 1):]
    request.session["flash"] = [*messages, [kind, text]]


def _render(request: Request, page: str, context: dict[str, Any], status_code: int = 200) -> Response:
    """The page, or only its live part when the page's script asks for it."""
    fragment = _fragment(request)
    templates: Jinja2Templates = request.app.state.templates
    settings = request.app.state.settings
    full = {
        "settings": settings,
        "csrf": csrf_token(request),
        "here": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "live_part": f"_{page}.html",
        "logged_in": logged_in(request),
        "flash": [] if fragment else request.session.pop("flash", []),
        "error": None,
        **context,
    }
    name = full["live_part"] if fragment else f"{page}.html"
    return templates.TemplateResponse(request, name, full, status_code=status_code,
                                      headers={"vary": "X-QTasks-Fragment"})


def _unavailable(request: Request, page: str, exc: QTasksError, context: dict[str, Any] | None = None) -> Response:
    logger.warning("the broker did not answer the dashboard: %s", exc)
    return _render(request, page, {**(context or {}), "error": str(exc)}, status_code=503)


def _task_id(text: str) -> str | None:
    try:
        return str(uuid_module.UUID(text))
    except ValueError:
        return None


def _local_path(text: Any, default: str) -> str:
    """Where to go after an action: a path of this site only (no ``//host`` or scheme)."""
    if isinstance(text, str) and text.startswith("/") and not text.startswith(("//", "/\\")) and len(text) < 2048:
        return text
    return default


# pages


async def overview(request: Request) -> Response:
    try:
        status, dead, recent = await asyncio.gather(
            _ask(request, "status"), _ask(request, "dead_letters", limit=OVERVIEW_DEAD),
            _ask(request, "tasks", limit=OVERVIEW_TASKS))
    except QTasksError as exc:
        return _unavailable(request, "overview", exc)
    return _render(request, "overview", {"status": status, "dead": dead, "recent": recent})


class Filters:
    """The task list's query: ``status`` (one of STATUSES), ``name`` (exact task name), ``limit``."""

    def __init__(self, request: Request) -> None:
        query = request.query_params
        self.problems: list[str] = []
        status = query.get("status") or None
        if status is not None and status not in STATUSES:
            self.problems.append(f"unknown status {status[:40]!r}: use one of {', '.join(STATUSES)}")
            status = None
        self.status = status
        name = (query.get("name") or "").strip() or None
        if name is not None and len(name) > MAX_NAME:
            self.problems.append(f"a task name has at most {MAX_NAME} characters")
            name = None
        self.name = name
        try:
            self.limit = min(max(int(query.get("limit") or DEFAULT_LIMIT), 1), MAX_LIMIT)
        except ValueError:
            self.problems.append("limit must be a number")
            self.limit = DEFAULT_LIMIT

    def asked(self) -> dict[str, Any]:
        return {"status": self.status, "name": self.name, "limit": self.limit}


async def task_list(request: Request) -> Response:
    filters = Filters(request)
    context: dict[str, Any] = {"filters": filters, "statuses": STATUSES, "max_limit": MAX_LIMIT}
    if filters.problems:
        return _render(request, "tasks", {**context, "tasks": [], "error": "; ".join(filters.problems)}, 400)
    try:
        tasks = await _ask(request, "tasks", **filters.asked())
    except QTasksError as exc:
        return _unavailable(request, "tasks", exc, {**context, "tasks": []})
    return _render(request, "tasks", {**context, "tasks": tasks})


async def task_page(request: Request) -> Response:
    task_id = _task_id(request.path_params["uuid"])
    if task_id is None:
        return PlainTextResponse("not a task id: a task's page is /tasks/UUID", status_code=404)
    try:
        task = await _ask(request, "inspect", task_id)
    except TaskNotFoundError as exc:
        return _render(request, "task", {"uuid": task_id, "task": None, "error": str(exc)}, 404)
    except QTasksError as exc:
        return _unavailable(request, "task", exc, {"uuid": task_id, "task": None})
    return _render(request, "task", {"uuid": task_id, "task": task, "chain": await _chain(request, task)})


async def _chain(request: Request, task: dict[str, Any]) -> list[dict[str, Any]]:
    """The attempts around ``task``, oldest first: the ones it retries (following ``retry_of``) and
    the ones that retried it (following ``retries``), at most MAX_CHAIN each way. An attempt the
    broker no longer knows is listed by its uuid alone, and the chain stops there."""

    async def record(task_id: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await _ask(request, "inspect", task_id)
            return found
        except QTasksError:
            return None

    earlier: list[dict[str, Any]] = []
    parent = task.get("retry_of")
    while parent and len(earlier) < MAX_CHAIN:
        found = await record(parent)
        earlier.append(found or {"uuid": parent})
        parent = found.get("retry_of") if found else None
    later: list[dict[str, Any]] = []
    waiting = list(task.get("retries") or [])
    while waiting and len(later) < MAX_CHAIN:
        child = waiting.pop(0)
        found = await record(child)
        later.append(found or {"uuid": child})
        waiting.extend((found or {}).get("retries") or [])
    return [*reversed(earlier), task, *later]


# JSON


async def _json(request: Request, method: str, *args: Any, **kwargs: Any) -> Response:
    try:
        value = await _ask(request, method, *args, **kwargs)
    except QTasksError as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    return JSONResponse(value, headers={"cache-control": "no-store"})


async def api_status(request: Request) -> Response:
    return await _json(request, "status")


async def api_tasks(request: Request) -> Response:
    filters = Filters(request)
    if filters.problems:
        return JSONResponse({"error": "; ".join(filters.problems)}, status_code=400)
    return await _json(request, "tasks", **filters.asked())


async def api_task(request: Request) -> Response:
    task_id = _task_id(request.path_params["uuid"])
    if task_id is None:
        return JSONResponse({"error": "not a task id"}, status_code=404)
    try:
        task = await _ask(request, "inspect", task_id)
    except TaskNotFoundError as exc:
        return JSONResponse({"error": str(exc)}, status_code=404)
    except QTasksError as exc:
        return JSONResponse({"error": str(exc)}, status_code=503)
    return JSONResponse(task)


async def api_dead(request: Request) -> Response:
    return await _json(request, "dead_letters", limit=MAX_LIMIT)


# actions


async def _action_form(request: Request) -> FormData | Response:
    """The form of a POST that a page of this site sent in this session; else the refusal."""
    if not same_origin(request):
        return PlainTextResponse("refused: the request did not come from a page of this dashboard "
                                 "(Origin or Referer missing or of another site)", status_code=403)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    if not csrf_valid(request, form.get(CSRF_FIELD)):
        return PlainTextResponse("refused: the form's token does not match this session; reload the page "
                                 "and try again", status_code=403)
    return form


async def retry(request: Request) -> Response:
    form = await _action_form(request)
    if isinstance(form, Response):
        return form
    task_id = _task_id(request.path_params["uuid"])
    back = _local_path(form.get("back"), "/")
    if task_id is None:
        return PlainTextResponse("not a task id", status_code=404)
    try:
        new_id = await _ask(request, "retry", task_id)
    except QTasksError as exc:
        _flash(request, "error", f"task {task_id} was not retried: {exc}")
        return RedirectResponse(back, status_code=303)
    logger.info("dashboard: retried task %s as %s", task_id, new_id)
    _flash(request, "ok", f"retried task {task_id}: this is the new attempt")
    return RedirectResponse(f"/tasks/{new_id}", status_code=303)


async def cancel(request: Request) -> Response:
    form = await _action_form(request)
    if isinstance(form, Response):
        return form
    task_id = _task_id(request.path_params["uuid"])
    if task_id is None:
        return PlainTextResponse("not a task id", status_code=404)
    back = _local_path(form.get("back"), f"/tasks/{task_id}")
    reason = form.get("reason")
    reason = reason[:MAX_REASON] if isinstance(reason, str) and reason.strip() else "cancelled from the dashboard"
    try:
        cancelled = await _ask(request, "cancel", task_id, reason)
    except QTasksError as exc:
        _flash(request, "error", f"task {task_id} was not cancelled: {exc}")
        return RedirectResponse(back, status_code=303)
    if cancelled:
        logger.info("dashboard: cancelled task %s", task_id)
        _flash(request, "ok", f"cancelled task {task_id}")
    else:
        _flash(request, "error", f"task {task_id} was not cancelled: it has ended already, or the broker "
                                 "does not know it")
    return RedirectResponse(back, status_code=303)


async def retry_all_dead(request: Request) -> Response:
    form = await _action_form(request)
    if isinstance(form, Response):
        return form
    try:
        count = await _ask(request, "retry_all_dead")
    except QTasksError as exc:
        _flash(request, "error", f"the dead letters were not retried: {exc}")
        return RedirectResponse("/", status_code=303)
    logger.info("dashboard: retried %s dead letter(s)", count)
    _flash(request, "ok", f"retried {count} dead letter(s)")
    return RedirectResponse("/", status_code=303)


# logging in and out


async def login_page(request: Request) -> Response:
    if request.app.state.settings.password is None or logged_in(request):
        return RedirectResponse(_local_path(request.query_params.get("next"), "/"), status_code=303)
    return _login_form(request, None, 200)


def _login_form(request: Request, error: str | None, status_code: int) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "login.html", {
        "settings": request.app.state.settings, "csrf": csrf_token(request), "error": error, "flash": [],
        "next": _local_path(request.query_params.get("next"), "/"), "logged_in": False,
    }, status_code=status_code)


async def login(request: Request) -> Response:
    password = request.app.state.settings.password
    if password is None:
        return RedirectResponse("/", status_code=303)
    form = await _action_form(request)
    if isinstance(form, Response):
        return form
    given = form.get("password")
    throttle: LoginThrottle = request.app.state.login_throttle
    if not isinstance(given, str) or not await throttle.check(given, password):
        logger.warning("dashboard: a wrong password from %s", request.client.host if request.client else "?")
        return _login_form(request, "wrong password", 401)
    log_in(request)
    return RedirectResponse(_local_path(form.get("next"), "/"), status_code=303)


async def logout(request: Request) -> Response:
    form = await _action_form(request)
    if isinstance(form, Response):
        return form
    request.session.clear()
    return RedirectResponse("/login" if request.app.state.settings.password else "/", status_code=303)


routes = [
    Route("/", overview, name="overview"),
    Route("/tasks", task_list, name="tasks"),
    Route("/tasks/{uuid}", task_page, name="task"),
    Route("/tasks/{uuid}/retry", retry, methods=["POST"], name="retry"),
    Route("/tasks/{uuid}/cancel", cancel, methods=["POST"], name="cancel"),
    Route("/dead/retry-all", retry_all_dead, methods=["POST"], name="retry_all_dead"),
    Route("/api/status", api_status),
    Route("/api/tasks", api_tasks),
    Route("/api/tasks/{uuid}", api_task),
    Route("/api/dead", api_dead),
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"], name="logout"),
    Mount("/static", StaticFiles(packages=[("qtasks.dashboard", "static")]), name="static"),
]
