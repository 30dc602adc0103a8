"""The app: one core (``core.py``) and its two faces, blocking (``sync.py``) and awaitable (``aio.py``)."""
