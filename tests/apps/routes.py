"""Routers with bare and called ``@router.task``."""

from qtasks import AsyncRouter, SyncRouter

router = SyncRouter()
async_router = AsyncRouter()


@router.task
def routed_bare(x):
    return f"bare {x}"


@router.task(name="routed_called", priority=3)
def routed_called(x):
    return f"called {x}"


@async_router.task
async def routed_bare(x):  # noqa: F811 - the async router's own task of that name
    return f"bare {x}"


@async_router.task(name="routed_called", priority=3)
async def routed_called(x):  # noqa: F811
    return f"called {x}"
