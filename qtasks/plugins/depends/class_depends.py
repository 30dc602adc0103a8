"""``Depends``: marks a task parameter to be filled by calling a provider."""

from __future__ import annotations

from typing import Any, Callable, Union

from qtasks.plugins.depends.enums.scope import ScopeEnum


class Depends:
    """``db=Depends(get_db)``, ``db: Depends(get_db)`` or ``db: Annotated[Db, Depends(get_db)]``.

    The provider is called with no arguments. It may be a plain or ``async`` function,
    a generator or async generator (the code after ``yield`` runs once the scope ends),
    a ``@contextmanager``/``@asynccontextmanager`` function, or any callable returning a
    context manager or an awaitable. ``scope`` says how long the value lives (ScopeEnum);
    scopes are per worker process.
    """

    __slots__ = ("func", "scope")

    def __init__(self, func: Callable[..., Any], scope: Union[ScopeEnum, str] = ScopeEnum.TASK) -> None:
        if not callable(func):
            raise TypeError(f"Depends needs a callable provider, got {type(func).__name__} {func!r}")
        try:
            self.scope: str = ScopeEnum(scope).value
        except ValueError:
            valid = ", ".join(repr(s.value) for s in ScopeEnum)
            raise ValueError(f"unknown Depends scope {scope!r}; use one of {valid}") from None
        self.func = func

    def __repr__(self) -> str:
        return f"Depends({getattr(self.func, '__qualname__', self.func)!r}, scope={self.scope!r})"
