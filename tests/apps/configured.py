"""An app whose config is replaced after it is built (``update_config``), and tasks that report
the config their worker process sees."""

from __future__ import annotations

from typing import Any

from qtasks import QueueTasks
from qtasks.configs import QueueConfig

app = QueueTasks(name="configured")
app.update_config(QueueConfig(shutdown_grace=1.5, heartbeat_interval=0.2, max_attempts=5))


@app.task
def seen_config() -> dict[str, Any]:
    worker_config = app.worker.config
    return {"same": worker_config is app.config and app.broker.config is app.config,
            "shutdown_grace": worker_config.shutdown_grace, "max_tasks_process": worker_config.max_tasks_process}
