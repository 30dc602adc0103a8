"""The state actor: it alone owns every State namespace and applies operations one at a time.

Tasks in any worker process reach a namespace only by sending it a message, so
read-modify-write operations (``incr``, ``setdefault``, ``update``) are atomic
without a lock: the actor never runs two operations at once. It lives beside the
broker, on the broker's thread, answering STATE messages from its socket::

    namespaces  {("myapp", "MyState", ""): {"state": "await_phone", "step": 1},
                 ("myapp", "MyState", "user-42"): {...}}          # MyState.scope("user-42")
"""

from __future__ import annotations

import fnmatch
from typing import Any, Callable

from qtasks.protocol import pack_value, unpack_value

Namespace = tuple[str, str, str]
_MISSING = object()


class StateOpError(ValueError):
    """A state operation that cannot be applied; the message goes back to the caller."""


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise StateOpError(f"state keys must be strings, got {type(key).__name__} {key!r}")
    return key


_CHANGES = frozenset({"set", "update", "delete", "clear", "incr", "setdefault", "pop"})


class StateActor:
    def __init__(self) -> None:
        self.namespaces: dict[Namespace, dict[str, Any]] = {}
        self.changed: set[Namespace] = set()
        """Namespaces changed since the broker last stored them (``take_changed``)."""
        self._ops: dict[str, Callable[..., Any]] = {
            "get": self._get,
            "get_all": self._get_all,
            "set": self._set,
            "update": self._update,
            "delete": self._delete,
            "clear": self._clear,
            "incr": self._incr,
            "setdefault": self._setdefault,
            "pop": self._pop,
            "scopes": self._scopes,
        }

    def apply(self, namespace: Namespace, op: str, packed_args: bytes) -> bytes:
        """Apply ``op`` to ``namespace``; returns the packed result or raises StateOpError."""
        handler = self._ops.get(op)
        if handler is None:
            raise StateOpError(f"unknown state operation {op!r}; the actor knows {', '.join(sorted(self._ops))}")
        try:
            args = unpack_value(packed_args)
        except Exception as exc:
            raise StateOpError(f"the arguments of {op!r} are not valid msgpack: {exc}") from None
        if not isinstance(args, list):
            raise StateOpError(f"the arguments of {op!r} must be a msgpack array")
        try:
            result = handler(namespace, *args)
        except TypeError as exc:  # wrong number of arguments
            raise StateOpError(f"bad arguments for state operation {op!r}: {exc}") from None
        if op in _CHANGES:
            self.changed.add(namespace)
        return pack_value(result)

    def load(self, namespaces: dict[Namespace, dict[str, Any]]) -> None:
        """The namespaces a data directory kept (at start)."""
        self.namespaces.update(namespaces)

    def take_changed(self) -> list[tuple[Namespace, dict[str, Any] | None]]:
        """Each namespace changed since the last call, as it is now (None: gone)."""
        changed, self.changed = self.changed, set()
        return [(namespace, self.namespaces.get(namespace)) for namespace in changed]

    def _space(self, namespace: Namespace) -> dict[str, Any]:
        space = self.namespaces.get(namespace)
        if space is None:
            space = self.namespaces[namespace] = {}
        return space

    def _get(self, namespace: Namespace, key: Any = None, default: Any = None) -> Any:
        space = self.namespaces.get(namespace, {})
        if key is None:
            return dict(space)
        return space.get(_key(key), default)

    def _get_all(self, namespace: Namespace) -> dict[str, Any]:
        return dict(self.namespaces.get(namespace, {}))

    def _set(self, namespace: Namespace, key: Any, value: Any) -> None:
        self._space(namespace)[_key(key)] = value

    def _update(self, namespace: Namespace, mapping: Any) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise StateOpError(f"update takes a mapping, got {type(mapping).__name__}")
        space = self._space(namespace)
        space.update({_key(k): v for k, v in mapping.items()})
        return dict(space)

    def _delete(self, namespace: Namespace, key: Any) -> None:
        self.namespaces.get(namespace, {}).pop(_key(key), None)

    def _clear(self, namespace: Namespace) -> None:
        self.namespaces.pop(namespace, None)

    def _incr(self, namespace: Namespace, key: Any, amount: Any = 1) -> Any:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise StateOpError(f"incr needs a number to add, got {type(amount).__name__}")
        space = self._space(namespace)
        current = space.get(_key(key), 0)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise StateOpError(f"cannot incr {key!r}: it holds a {type(current).__name__}, not a number")
        space[key] = current + amount
        return space[key]

    def _setdefault(self, namespace: Namespace, key: Any, value: Any = None) -> Any:
        return self._space(namespace).setdefault(_key(key), value)

    def _pop(self, namespace: Namespace, key: Any, default: Any = None) -> Any:
        space = self.namespaces.get(namespace)
        return default if space is None else space.pop(_key(key), default)

    def _scopes(self, namespace: Namespace, pattern: Any = "*") -> dict[str, dict[str, Any]]:
        """Every scope of the namespace's class whose name matches ``pattern`` (shell-style), with
        its values: global config groups are the scopes of one class."""
        if not isinstance(pattern, str):
            raise StateOpError(f"scopes takes a pattern string, got {type(pattern).__name__}")
        app, state_class, _ = namespace
        return {scope: dict(space) for (a, c, scope), space in self.namespaces.items()
                if a == app and c == state_class and space and fnmatch.fnmatchcase(scope, pattern)}

    def stats(self) -> dict[str, int]:
        return {"namespaces": len(self.namespaces),
                "keys": sum(len(space) for space in self.namespaces.values())}
