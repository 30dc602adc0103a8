"""A long-running server: ``python examples/main.py`` serves tasks until Ctrl+C.

With nothing listening at the broker URL (``$QTASKS_BROKER_URL``, default
tcp://127.0.0.1:5555) it hosts the broker itself; run ``examples/client.py``
from another terminal to send it work.
"""

from app import app  # examples/app.py: the app and its tasks

app.run_forever(num_workers=2)
