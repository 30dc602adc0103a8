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


DELETED = object()
"""In what ``take_changed`` returns: the key is gone."""


class StateChange:
    """What happened to one namespace since the broker last stored it: ``cleared`` (everything gone
    first), then ``keys`` set to a value (or ``DELETED``)."""

    __slots__ = ("cleared", "keys")

    def __init__(self) -> None:
        self.cleared = False
        self.keys: set[str] = set()


class StateActor:
    def __init__(self) -> None:
        self.namespaces: dict[Namespace, dict[str, Any]] = {}
        self.changed: dict[Namespace, StateChange] = {}
        """Namespaces changed since the broker last stored them (``take_changed``), key by key: a
        namespace of many keys costs one row per changed key, not the whole namespace."""
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
        return pack_value(result)

    def load(self, namespaces: dict[Namespace, dict[str, Any]]) -> None:
        """The namespaces a data directory kept (at start)."""
        self.namespaces.update(namespaces)

    def take_changed(self) -> list[tuple[Namespace, bool, dict[str, Any]]]:
        """(namespace, cleared, {key: value or ``DELETED``}) of each namespace changed since the last call."""
        changed, self.changed = self.changed, {}
        taken = []
        for namespace, change in changed.items():
            space = self.namespaces.get(namespace, {})
            taken.append((namespace, change.cleared, {key: space.get(key, DELETED) for key in change.keys}))
        return taken

    def _changed(self, namespace: Namespace, key: str) -> None:
        change = self.changed.get(namespace)
        if change is None:
            change = self.changed[namespace] = StateChange()
        change.keys.add(key)

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
        self._changed(namespace, key)

    def _update(self, namespace: Namespace, mapping: Any) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise StateOpError(f"update takes a mapping, got {type(mapping).__name__}")
        space = self._space(namespace)
        space.update({_key(k): v for k, v in mapping.items()})
        for key in mapping:
            self._changed(namespace, key)
        return dict(space)

    def _delete(self, namespace: Namespace, key: Any) -> None:
        self.namespaces.get(namespace, {}).pop(_key(key), None)
        self._changed(namespace, key)

    def _clear(self, namespace: Namespace) -> None:
        self.namespaces.pop(namespace, None)
        change = self.changed[namespace] = StateChange()
        change.cleared = True

    def _incr(self, namespace: Namespace, key: Any, amount: Any = 1) -> Any:
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise StateOpError(f"incr needs a number to add, got {type(amount).__name__}")
        space = self._space(namespace)
        current = space.get(_key(key), 0)
        if isinstance(current, bool) or not isinstance(current, (int, float)):
            raise StateOpError(f"cannot incr {key!r}: it holds a {type(current).__name__}, not a number")
        space[key] = current + amount
        self._changed(namespace, key)
        return space[key]

    def _setdefault(self, namespace: Namespace, key: Any, value: Any = None) -> Any:
        space = self._space(namespace)
        if _key(key) not in space:
            self._changed(namespace, key)
        return space.setdefault(key, value)

    def _pop(self, namespace: Namespace, key: Any, default: Any = None) -> Any:
        space = self.namespaces.get(namespace)
        if space is None:
            return default
        self._changed(namespace, _key(key))
        return space.pop(key, default)

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
