"""The dashboard as a person uses it: a real broker, a worker process, ``qtasks dashboard`` as its
own process, and Debian's chromium driven by Playwright.

Given a small deployment and the dashboard open in a browser, when a task is submitted the
overview shows it appear and finish without a reload; when a task fails the first time, its
"retry" button on the overview starts a new attempt whose page shows it succeed; when the broker
stops, the open page says that it does not answer. A screenshot
is saved under pytest's tmp dir and, when ``$QTASKS_ARTIFACTS`` is set, to
``artifacts/dashboard.png`` in the repository (``QTASKS_ARTIFACTS=/some/dir`` copies there instead).

Every wait is bounded; every process is stopped by PID, also when the test fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from qtasks import QueueTasks
from tests.support import (
    ROOT,
    broker_process,
    popen,
    read_line_matching,
    stop_process,
    wait_for_workers,
    worker_process,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 20_000
"""Every wait of the browser (actions and ``expect``) ends within this many milliseconds."""
APP = "tests.apps.dashboard:app"
expect.set_options(timeout=WAIT_MS)


@contextmanager
def dashboard_process(broker_url: str, *extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """``qtasks --broker URL dashboard --bind 127.0.0.1:0``; yields the URL it serves."""
    proc = popen([sys.executable, "-m", "qtasks", "--broker", broker_url, "--timeout", "2", "dashboard",
                  "--bind", "127.0.0.1:0", "--refresh", "0.5", *extra], env=env, stdout=subprocess.PIPE)
    try:
        yield read_line_matching(proc, r"serving (http://\S+)", 30).group(1)
    finally:
        stop_process(proc)


@contextmanager
def browser_page() -> Iterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"this test drives Debian's chromium at {CHROMIUM}, which is missing: "
                    "apt-get install -y --no-install-recommends chromium (.ci/run does it when missing)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            yield page
        finally:
            browser.close()


def save_screenshot(page: Page, tmp_path: Path, name: str = "dashboard.png") -> Path:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    target = os.environ.get("QTASKS_ARTIFACTS")
    if target:
        folder = ROOT / "artifacts" if target in ("1", "true", "yes") else Path(target)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, folder / name)
    return shot


@pytest.fixture()
def deployment() -> Iterator[tuple[str, subprocess.Popen[str], QueueTasks]]:
    """A broker daemon and one worker process serving ``tests.apps.dashboard``; yields (url, the broker
    process, a client app)."""
    with broker_process() as (url, broker), worker_process(APP, url, processes=1, stderr=subprocess.DEVNULL):
        client = QueueTasks(name="dashboard-demo", broker_url=url)
        try:
            wait_for_workers(client, 1)
            yield url, broker, client
        finally:
            client.close()


def row(page: Page, section: str, task_id: Any) -> Any:
    return page.locator(f"#{section} tr[data-uuid='{task_id}']")


def test_a_person_watches_a_task_finish_and_retries_a_failed_one(deployment, tmp_path):
    url, broker, client = deployment
    with dashboard_process(url) as base, browser_page() as page:
        # Given the overview, open in the browser, with the worker listed
        page.goto(base)
        expect(page.locator("#workers tbody tr")).to_have_count(1)
        expect(page.locator("#workers")).to_contain_text(str(next(iter(wait_for_workers(client, 1)))))
        page.evaluate("window.__sameDocument = true")  # gone after any reload or navigation

        # When a task is submitted, it appears on the page and finishes there, without a reload
        watched = client.add_task("slow_echo", "hello from the browser test", 1.0)
        assert watched is not None
        expect(row(page, "recent", watched.uuid)).to_be_visible()
        expect(row(page, "recent", watched.uuid).locator(".status")).to_have_text("success")
        assert page.evaluate("window.__sameDocument") is True
        expect(page.locator("#live-state")).to_have_attribute("data-state", "ok")

        # And a task that fails the first time shows up among the failures
        failed = client.add_task("flaky", str(tmp_path), "first-try", timeout=20)
        assert failed is not None and failed.status == "error"
        failure = page.locator(f"#failures tr[data-uuid='{failed.uuid}']")
        expect(failure).to_contain_text("ValueError")
        expect(failure).to_contain_text("the first attempt fails on purpose")
        assert page.evaluate("window.__sameDocument") is True
        save_screenshot(page, tmp_path, "dashboard-before-retry.png")

        # When the person clicks "retry" on it
        failure.get_by_role("button", name="retry").click()

        # Then the new attempt's page opens, linked to the failed task, and shows it succeed
        expect(page).to_have_url(re.compile(r"/tasks/[0-9a-f-]{36}$"))
        new_id = page.url.rsplit("/", 1)[1]
        assert new_id != str(failed.uuid)
        expect(page.locator(".flash")).to_contain_text("this is the new attempt")
        expect(page.locator("h1 .status")).to_have_text("success")
        expect(page.locator("#result")).to_contain_text("first-try: the second attempt succeeded")
        expect(page.locator("#chain")).to_contain_text(str(failed.uuid)[:8])
        save_screenshot(page, tmp_path, "dashboard-retried-task.png")
        again = client.get(new_id)
        assert again is not None and again.status == "success"

        # And the overview shows both: the failed task retried, the new one a success
        page.goto(base)
        expect(row(page, "recent", new_id).locator(".status")).to_have_text("success")
        expect(row(page, "recent", failed.uuid).locator(".status")).to_have_text("error")
        shot = save_screenshot(page, tmp_path)

        # When the broker stops, the open page says so, still without a reload
        page.evaluate("window.__sameDocument = true")
        stop_process(broker)
        expect(page.locator("#live .banner")).to_contain_text("no QTasks broker answered")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "down")
        assert page.evaluate("window.__sameDocument") is True
    assert shot.stat().st_size > 10_000
