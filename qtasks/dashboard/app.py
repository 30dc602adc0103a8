"""``create_app(settings, client_factory)``: the dashboard as an ASGI application (Starlette).

Middleware, outermost first: Host check (loopback only: no DNS rebinding), body-size limit,
security headers, the signed session cookie, the login requirement; then the routes of
:mod:`qtasks.dashboard.views`. The broker gateway lives as long as the application does.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Callable

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.templating import Jinja2Templates

from qtasks.dashboard import display
from qtasks.dashboard.gateway import BrokerGateway, OpsClientLike
from qtasks.dashboard.security import (
    MAX_BODY,
    LimitBody,
    LoginThrottle,
    RequireLogin,
    SecurityHeaders,
    loopback_host_names,
)
from qtasks.dashboard.settings import DashboardSettings
from qtasks.dashboard.views import CANCELLABLE, RETRYABLE, routes

SESSION_COOKIE = "qtasks_dashboard"
SESSION_MAX_AGE = 12 * 3600


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(loader=jinja2.PackageLoader("qtasks.dashboard", "templates"),
                                     autoescape=True, undefined=jinja2.StrictUndefined)
    environment.filters.update(clock=display.clock, duration=display.duration, rate=display.rate,
                               shown=display.shown, priorities=display.priorities, last_line=display.last_line,
                               short=display.short, timestamp=display.timestamp)
    environment.globals.update(retryable=RETRYABLE, cancellable=CANCELLABLE)
    return Jinja2Templates(env=environment)


def create_app(settings: DashboardSettings, client_factory: Callable[[], OpsClientLike]) -> Starlette:
    """The dashboard for ``settings``; ``client_factory`` makes one broker client (called once per pool thread)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gateway = BrokerGateway(client_factory, threads=settings.client_threads)
        app.state.gateway = gateway
        try:
            yield
        finally:
            gateway.close()

    hosts = loopback_host_names(settings.host) if settings.loopback else ["*"]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False),
        Middleware(LimitBody, limit=MAX_BODY),
        Middleware(SecurityHeaders),
        Middleware(SessionMiddleware, secret_key=settings.secret_key, session_cookie=SESSION_COOKIE,
                   max_age=SESSION_MAX_AGE, same_site="strict", https_only=False),
        Middleware(RequireLogin, enabled=settings.password is not None),
    ]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    app.state.settings = settings
    app.state.templates = _templates()
    app.state.login_throttle = LoginThrottle()
    return app
