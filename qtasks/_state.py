"""Process-wide pointers upstream QTasks code relies on (``qtasks._state.app_main``).

The last app constructed is the one app-less task objects (``shared_task``) and
``Task.wait_result`` use. New code should pass the app explicitly.
"""

from __future__ import annotations

from typing import Any

from qtasks.logs import Logger

app_main: Any = None
log_main: Logger = Logger(name="QueueTasks", subname="_state")
