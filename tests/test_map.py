"""``task.map``, ``imap``, ``imap_unordered`` and ``starmap``, sync and async, end to end on the real
broker and worker actors in this process (``InProcessStack``, over ``inproc://``)."""

from __future__ import annotations

import asyncio
import itertools
from typing import Iterator

import pytest

from qtasks.exc import MapItemError, UnserializableArgumentError
from qtasks.inprocess import InProcessStack
from tests.apps import batch
from tests.apps.batch import (
    RUNS,
    aio_fail_on,
    aio_square,
    blocking,
    fail_on,
    flaky,
    later_first,
    point,
    power,
    shifted,
    slow,
    square,
    tally,
    with_dependency,
)
from tests.support import wait_for

WAIT = 30.0


@pytest.fixture(scope="module")
def stack() -> Iterator[InProcessStack]:
    with InProcessStack(batch.app, workers=2, concurrency=4) as served:
        yield served


def stats() -> dict:
    return batch.app.broker_stats()


def wait_idle(stack: InProcessStack) -> dict:
    """The broker's stats once nothing is queued or running (bounded)."""

    def idle() -> dict | None:
        now = stats()
        return now if now["in_flight"] == 0 and not any(now["queues"].values()) else None

    return wait_for(idle, WAIT, "the broker to have nothing queued or running")


def test_map_returns_results_in_input_order(stack):
    assert square.map(range(1000)) == [x * x for x in range(1000)]
    assert square.map([]) == []


def test_imap_yields_in_order_though_results_arrive_out_of_order(stack):
    arrived = list(later_first.imap_unordered(range(40), chunksize=1))
    assert sorted(arrived) == list(range(40))
    assert arrived != list(range(40)), "later items finish first: they should arrive first"
    assert list(later_first.imap(range(40), chunksize=1)) == list(range(40))


def test_imap_unordered_gives_every_result_once(stack):
    results = list(square.imap_unordered(range(500), chunksize=7))
    assert sorted(results) == [x * x for x in range(500)]


def test_starmap_passes_each_item_as_the_arguments(stack):
    assert power.starmap([(2, 3), (3,), (10, 0)]) == [8, 9, 1]


def test_explicit_chunks_of_any_size_keep_order(stack):
    for chunksize in (1, 3, 64, 5000):
        assert square.map(range(300), chunksize=chunksize) == [x * x for x in range(300)]


def test_first_failure_raises_with_index_uuid_and_remote_traceback(stack):
    with pytest.raises(MapItemError) as caught:
        fail_on.map(range(50), chunksize=5)
    error = caught.value
    assert error.index == 7
    assert error.status == "error"
    assert error.uuid is not None
    assert "ValueError: item 7 is bad" in error.traceback
    assert "Traceback" in error.traceback and "fail_on" in error.traceback
    wait_idle(stack)


def test_return_exceptions_puts_errors_in_their_items_places(stack):
    results = fail_on.map(range(20), chunksize=3, return_exceptions=True)
    assert [r for i, r in enumerate(results) if i != 7] == [x for x in range(20) if x != 7]
    assert isinstance(results[7], MapItemError) and results[7].index == 7


def test_a_failure_cancels_the_rest_of_the_map(stack):
    before = stats()["totals"].get("cancel", 0)
    items = itertools.chain([7], range(100, 100 + 400))  # the first item fails; 400 slow ones follow
    with pytest.raises(MapItemError):
        list(fail_on.imap(items, chunksize=1, window=50))
    totals = wait_idle(stack)["totals"]
    assert totals.get("cancel", 0) > before, totals


def test_leaving_the_iterator_early_cancels_what_is_queued(stack):
    consumed = 0

    def items() -> Iterator[int]:
        nonlocal consumed
        for x in range(10_000):
            consumed += 1
            yield x

    results = slow.imap(items(), chunksize=1, window=16)
    assert next(results) == 0
    results.close()  # what a `break` out of a for loop does
    wait_idle(stack)
    assert consumed < 100, "the input was read past the window"


def test_the_input_is_read_lazily_within_the_window(stack):
    consumed = 0
    window, chunk = 4, 10

    def items() -> Iterator[int]:
        nonlocal consumed
        for x in range(5000):
            consumed += 1
            yield x

    for index, result in enumerate(square.imap(items(), chunksize=chunk, window=window)):
        assert result == index * index
        # never more than the window's chunks ahead of what the caller took, whatever the input's size
        assert consumed - index <= (window + 1) * chunk, (consumed, index)
    assert consumed == 5000


def test_a_call_that_cannot_travel_names_its_item(stack):
    with pytest.raises(UnserializableArgumentError, match=r"item #2"):
        square.map([1, 2, object()], chunksize=10)


def test_bad_options_are_refused_with_the_fix(stack):
    with pytest.raises(ValueError, match="chunksize must be at least 1"):
        square.map([1], chunksize=0)
    with pytest.raises(ValueError, match="window must be at least 1"):
        square.map([1], window=0)


def test_timeout_raises_and_cancels_the_rest(stack):
    with pytest.raises(TimeoutError, match="did not finish within"):
        slow.map(range(200), chunksize=1, window=4, timeout=0.2)
    wait_idle(stack)


def test_progress_callable_gets_counts_to_the_total(stack):
    seen = []
    square.map(range(100), chunksize=10, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (100, 100)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_progress_bar_is_drawn_on_stderr(stack, capsys):
    square.map(range(50), chunksize=10, progress=True)
    err = capsys.readouterr().err
    assert "50/50" in err


def test_retries_apply_to_each_item(stack):
    RUNS.clear()
    assert flaky.map(range(10), chunksize=5) == list(range(10))
    assert all(RUNS[x] == 2 for x in range(10)), RUNS


def test_depends_state_and_middlewares_apply_to_each_item(stack):
    assert with_dependency.map(range(5)) == [1000 + x for x in range(5)]
    assert shifted.map(range(5)) == [10 + x for x in range(5)]
    counts = tally.map(range(30), chunksize=4)
    assert sorted(counts) == list(range(1, 31))


def test_plugins_see_each_items_result(stack):
    assert point.map([1, 2]) == [{"x": 1, "y": -1}, {"x": 2, "y": -2}]


def test_plain_def_tasks_that_block_run_in_threads(stack):
    assert blocking.map(range(20)) == list(range(20))


@pytest.fixture()
def aio(stack):
    batch.aio_app.broker.use_url(stack.url)
    yield
    batch.aio_app.broker.close()


def test_async_face(stack, aio):
    async def run() -> tuple[list[int], list[int], list[int]]:
        ordered = await aio_square.map(range(300))
        streamed = [r async for r in aio_square.imap(range(50), chunksize=3)]
        unordered = [r async for r in aio_square.imap_unordered(range(50), chunksize=3)]
        return ordered, streamed, sorted(unordered)

    ordered, streamed, unordered = asyncio.run(run())
    assert ordered == [x * x for x in range(300)]
    assert streamed == unordered == [x * x for x in range(50)]


def test_async_face_failure_and_return_exceptions(stack, aio):
    async def run() -> list[object]:
        with pytest.raises(MapItemError):
            await aio_fail_on.map(range(20))
        return await aio_fail_on.map(range(10), return_exceptions=True)

    results = asyncio.run(run())
    assert isinstance(results[7], MapItemError)
