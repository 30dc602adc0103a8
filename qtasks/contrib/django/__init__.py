"""``autodiscover_tasks(app, modules=None)``: import the task modules of Django's installed apps.

For each entry of ``settings.INSTALLED_APPS`` it imports ``<app>.<module>`` for every module
name (default ``["tasks"]``) that exists, so their ``@app.task`` / ``@shared_task`` functions
are registered; an import that fails is logged with its traceback and the others go on.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from typing import Any, Iterable, Optional

log = logging.getLogger("qtasks.contrib.django")

try:
    from django.conf import settings
except ImportError as exc:
    raise ImportError("Install with `pip install Django` to use this contrib.") from exc


def autodiscover_tasks(app: Any, modules: Optional[Iterable[str]] = None) -> list[str]:
    """Import the task modules found; returns their names."""
    found = []
    for installed in settings.INSTALLED_APPS:
        for module in modules or ["tasks"]:
            name = f"{installed}.{module}"
            try:
                if importlib.util.find_spec(name) is None:
                    continue
                importlib.import_module(name)
            except Exception:
                log.exception("autodiscover_tasks for %r: importing %s failed", getattr(app, "name", app), name)
                continue
            found.append(name)
    return found


__all__ = ["autodiscover_tasks"]
