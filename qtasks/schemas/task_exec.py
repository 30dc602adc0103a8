"""``TaskExecSchema``: a registered task; ``TaskPrioritySchema``: one delivery inside a worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Optional, Union


@dataclass
class TaskExecSchema:
    priority: int
    name: str
    func: Callable[..., Any]
    awaiting: bool = False
    generating: Union[Literal["async", "sync"], Literal[False]] = False
    echo: bool = False
    max_time: Optional[float] = None
    retry: Optional[int] = None
    retry_on_exc: Optional[list[type[BaseException]]] = None
    decode: Optional[Callable[..., Any]] = None
    tags: Optional[list[str]] = None
    description: Optional[str] = None
    generate_handler: Optional[Callable[..., Any]] = None
    executor: Optional[type] = None
    middlewares_before: list[type] = field(default_factory=list)
    middlewares_after: list[type] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def add_middlewares_before(self, middlewares: list[type]) -> None:
        self.middlewares_before.extend(middlewares)

    def add_middlewares_after(self, middlewares: list[type]) -> None:
        self.middlewares_after.extend(middlewares)


@dataclass(order=True)
class TaskPrioritySchema:
    priority: int
    uuid: Any = field(compare=False)
    name: str = field(compare=False)
    args: list[Any] = field(compare=False)
    kwargs: dict[str, Any] = field(compare=False)
    created_at: float = 0.0
    updated_at: float = 0.0
    attempt: int = field(default=1, compare=False)
    """Which delivery of the task this is (1 = first)."""
