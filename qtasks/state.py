"""State: dictionaries shared by every task of an app, in all of its worker processes.

Subclass :class:`AsyncState` (awaitable methods) or :class:`SyncState` (blocking ones)
and annotate a task parameter with the subclass; the worker passes a bound instance::

    class Signup(AsyncState):
        pass

    @app.task
    async def step1(state: Signup):
        await state.update(step=1)

Each call is one message to the state actor that runs beside the broker; it applies
messages one at a time, so ``incr``, ``setdefault`` and ``update`` are atomic across
processes with no lock anywhere. A class's data is keyed by the app name and the
class's qualified name; ``Signup.scope("user-42")`` is a separate namespace of the
same class (one per user, say). Values are anything msgpack carries; keys are strings.
State lives in the broker's memory: it is lost when the broker stops.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from qtasks.client.calls import PendingCall
from qtasks.current import current_app
from qtasks.exc import UnserializableArgumentError
from qtasks.protocol import pack_value, unpack_value


class _ScopeMethod:
    """``MyState.scope(key)`` and ``state.scope(key)``: the same class bound to another namespace."""

    def __get__(self, instance: Optional[BaseState], owner: type[BaseState]) -> Callable[[str], BaseState]:
        def scope(key: str) -> BaseState:
            if not isinstance(key, str):
                raise TypeError(f"a state scope is a string, got {type(key).__name__}")
            return owner(instance._app if instance is not None else None, scope=key)

        return scope


class BaseState:
    def __init__(self, app: Any = None, *, scope: str = "") -> None:
        self._app = app
        self._scope = scope

    scope = _ScopeMethod()

    @property
    def namespace(self) -> tuple[str, str, str]:
        return (self._resolve_app().name, type(self).__qualname__, self._scope)

    def _resolve_app(self) -> Any:
        self._app = current_app(self._app)
        return self._app

    def _call(self, op: str, *args: Any) -> PendingCall[Any]:
        return state_call(self._resolve_app(), self.namespace, op, args, f"{type(self).__qualname__}.{op}")

    def __repr__(self) -> str:
        scope = f" scope={self._scope!r}" if self._scope else ""
        return f"<{type(self).__qualname__}{scope}>"


def state_call(app: Any, namespace: tuple[str, str, str], op: str, args: tuple[Any, ...],
               what: str) -> PendingCall[Any]:
    """One operation on a namespace of the state actor, as a call both faces can make."""
    try:
        packed = pack_value(list(args))
    except Exception as exc:
        culprit = next((a for a in args if not _packable(a)), args)
        raise UnserializableArgumentError(what, "value", culprit, str(exc)) from exc
    broker = app.broker
    return PendingCall(broker, lambda b: b.state(namespace, op, packed), unpack_value, broker.connect_timeout)


def _packable(value: Any) -> bool:
    try:
        pack_value(value)
    except Exception:
        return False
    return True


class AsyncState(BaseState):
    async def get(self, key: Optional[str] = None, default: Any = None) -> Any:
        """The value of ``key`` (``default`` when absent); with no key, a copy of the whole dict."""
        return await self._call("get", key, default).wait_async()

    async def get_all(self) -> dict[str, Any]:
        values: dict[str, Any] = await self._call("get_all").wait_async()
        return values

    async def set(self, key: str, value: Any) -> None:
        await self._call("set", key, value).wait_async()

    async def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set several keys at once; returns the dict as it is afterwards."""
        values: dict[str, Any] = await self._call("update", kwargs).wait_async()
        return values

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is fine)."""
        await self._call("delete", key).wait_async()

    async def clear(self) -> None:
        await self._call("clear").wait_async()

    async def incr(self, key: str, amount: float = 1) -> Any:
        """Add ``amount`` to the number at ``key`` (0 when absent) atomically; returns the new value."""
        return await self._call("incr", key, amount).wait_async()

    async def setdefault(self, key: str, value: Any = None) -> Any:
        """Set ``key`` to ``value`` unless it is set; returns the value it holds afterwards."""
        return await self._call("setdefault", key, value).wait_async()

    async def pop(self, key: str, default: Any = None) -> Any:
        """Remove ``key`` and return its value (``default`` when absent), atomically."""
        return await self._call("pop", key, default).wait_async()


class SyncState(BaseState):
    def get(self, key: Optional[str] = None, default: Any = None) -> Any:
        """The value of ``key`` (``default`` when absent); with no key, a copy of the whole dict."""
        return self._call("get", key, default).result()

    def get_all(self) -> dict[str, Any]:
        values: dict[str, Any] = self._call("get_all").result()
        return values

    def set(self, key: str, value: Any) -> None:
        self._call("set", key, value).result()

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Set several keys at once; returns the dict as it is afterwards."""
        values: dict[str, Any] = self._call("update", kwargs).result()
        return values

    def delete(self, key: str) -> None:
        """Remove ``key`` (a missing key is fine)."""
        self._call("delete", key).result()

    def clear(self) -> None:
        self._call("clear").result()

    def incr(self, key: str, amount: float = 1) -> Any:
        """Add ``amount`` to the number at ``key`` (0 when absent) atomically; returns the new value."""
        return self._call("incr", key, amount).result()

    def setdefault(self, key: str, value: Any = None) -> Any:
        """Set ``key`` to ``value`` unless it is set; returns the value it holds afterwards."""
        return self._call("setdefault", key, value).result()

    def pop(self, key: str, default: Any = None) -> Any:
        """Remove ``key`` and return its value (``default`` when absent), atomically."""
        return self._call("pop", key, default).result()
