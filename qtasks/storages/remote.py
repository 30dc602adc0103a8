"""``RemoteStorage``: the broker daemon's storage, as an app sees it (``app.broker.storage``).

Task records live in the daemon (``qtasks-broker``, in memory or in ``--data-dir``; a user
storage with ``--storage module:factory``); an app reads them through the broker
(``app.get``). This object is where upstream code finds the global config
(``app.broker.storage.global_config``) and what ``ctx.get_component("storage")`` returns.
"""

from __future__ import annotations

from typing import Any, Optional

from qtasks.components import Component


class RemoteStorage(Component):
    def __init__(self, name: Optional[str] = None, global_config: Any = None, log: Any = None,
                 config: Any = None, events: Any = None) -> None:
        super().__init__(name, log, config, events)
        self.global_config = global_config

    def __repr__(self) -> str:
        return f"<RemoteStorage of {self.name!r}: records are kept by the broker daemon>"
