"""The web dashboard, ``qtasks dashboard --broker URL``: a separate process that reads and operates
a broker the way a client does, through :class:`qtasks.ops.client.OpsClient`.

::

    command.py    the ``dashboard`` / ``web`` sub-commands; serving with uvicorn
    settings.py   DashboardSettings: bind address, password, limits; the loopback rule
    gateway.py    OpsClient calls off the event loop, one client per pool thread
    security.py   login, the session's CSRF token, Origin/Referer and body-size checks, headers
    views.py      the routes: pages, their live fragments, JSON, the actions (POST only)
    app.py        create_app(): the Starlette application
    templates/    Jinja2 pages; a page's live part is a fragment the page polls for
    static/       the stylesheet and the script that keeps pages live

Importing this package (and ``command``) needs no web library: the web stack is the optional
``qtasks[dashboard]`` extra, imported only when a dashboard starts.
"""
