"""The ops page and the agent card in a real browser: the system's Chromium, driven by
Playwright, against a real ``router serve`` with its rules watcher.

Set ``ROUTER_SCREENSHOTS=1`` to also write docs/images/ops.png and docs/images/card.png.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import playwright.async_api as playwright_api
import pytest

from tests.rules import write_rules
from tests.serving import ServeProcess
from tests.web.conftest import API_KEY, CARD_SECRET
from tests.web.rules import BROKEN_YAML, GOLD_REFUND, WEB_RULES_YAML

expect = playwright_api.expect

CHROMIUM = os.environ.get("ROUTER_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000
"""Playwright's wait for a condition: generous, for a loaded two-core machine."""
SCREENSHOTS = os.environ.get("ROUTER_SCREENSHOTS") == "1"
IMAGES = Path(__file__).resolve().parents[2] / "docs" / "images"


@pytest.fixture(autouse=True)
def _chromium_is_there() -> None:
    """Fail, never skip, without a browser: these tests are the proof the page works."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does), "
            "or set ROUTER_CHROMIUM to its path"
        )


@pytest.fixture
def rules_folder() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="router-web-browser-"))
    write_rules(folder, "default.yaml", WEB_RULES_YAML)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
async def served(rules_folder: Path) -> AsyncIterator[ServeProcess]:
    server = await ServeProcess.start(
        rules_folder,
        ROUTER_API_KEYS=API_KEY,
        ROUTER_CARD_SECRET=CARD_SECRET,
        ROUTER_RELOAD_SETTLE_MS="50",
        POLYAI_API_KEY="",
        ROUTER_LOG_LEVEL="info",
    )
    yield server
    if server.process.returncode is None:
        server.send(signal.SIGTERM)
        try:
            await server.exit_code(20)
        finally:
            await server.kill()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=LAUNCH_ARGS, timeout=60_000
        )
        yield launched
        await launched.close()


class Page:
    """A browser page signed in with the API key (Basic auth), collecting console errors."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.set_default_timeout(WAIT_MS)


@pytest.fixture
async def ops(browser: Any, served: ServeProcess) -> AsyncIterator[Page]:
    context = await browser.new_context(
        http_credentials={"username": "ops", "password": API_KEY},
        viewport={"width": 1280, "height": 900},
    )
    page = Page(await context.new_page())
    yield page
    await context.close()


async def route(served: ServeProcess, body: dict[str, Any] = GOLD_REFUND) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{served.url}/v1/route",
            json=body,
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        assert response.status == 200
        return await response.json()


async def test_page_loads_without_console_errors_and_shows_the_rulesets(
    ops: Page, served: ServeProcess
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{served.url}/v1/rulesets", headers={"Authorization": f"Bearer {API_KEY}"}
        ) as response,
    ):
        [ruleset] = (await response.json())["rulesets"]
    await ops.page.goto(f"{served.url}/ops")
    table = ops.page.locator("#rulesets")
    await expect(table).to_contain_text("default", timeout=WAIT_MS)
    await expect(table).to_contain_text(ruleset["version"][:19], timeout=WAIT_MS)
    await expect(table).to_contain_text("2 passed", timeout=WAIT_MS)
    # Polls of the feed go by without an error either.
    for _ in range(2):
        async with ops.page.expect_response(
            lambda r: r.url.endswith("/ops/feed"), timeout=WAIT_MS
        ) as polled:
            pass
        assert (await polled.value).status == 200
    await expect(ops.page.locator("#live")).to_have_text("live", timeout=WAIT_MS)
    assert ops.errors == []


async def test_a_broken_save_shows_its_location_without_a_refresh(
    ops: Page, served: ServeProcess, rules_folder: Path
) -> None:
    await ops.page.goto(f"{served.url}/ops")
    await expect(ops.page.locator("#reload-error")).to_contain_text("No reload errors")
    write_rules(rules_folder, "default.yaml", BROKEN_YAML)
    error = ops.page.locator("#reload-error")
    await expect(error).to_contain_text("default.yaml:5:", timeout=WAIT_MS)
    await expect(error).to_contain_text("equals", timeout=WAIT_MS)
    await expect(error.locator("pre.excerpt")).to_contain_text("state.customer_tier")
    assert ops.errors == []


async def test_a_routed_call_appears_in_recent_decisions(ops: Page, served: ServeProcess) -> None:
    await ops.page.goto(f"{served.url}/ops")
    await expect(ops.page.locator("#recent")).to_contain_text("No decisions yet")
    answers = [
        await route(served, {**GOLD_REFUND, "conversation_id": f"c-{i}", "handoff": reason})
        for i, reason in enumerate(
            [{"handoff_reason": "refund"}, {"handoff_reason": "complaint"}, {}]
        )
    ]
    recent = ops.page.locator("#recent")
    for answer in answers:
        row = recent.locator(f'tr[data-decision="{answer["decision_id"][:8]}"]')
        await expect(row).to_contain_text(answer["queue"], timeout=WAIT_MS)
    first_row = recent.locator("tbody tr").first
    await expect(first_row).to_contain_text(answers[-1]["decision_id"][:8])  # newest first
    await expect(recent).to_contain_text("vip-billing")
    await expect(ops.page.locator("#traffic svg.chart rect").first).to_be_visible()
    assert ops.errors == []
    if SCREENSHOTS:
        await ops.page.locator("#explain-form button").click()
        await expect(ops.page.locator("#explain-result .matched-rule")).to_have_text("vip-billing")
        IMAGES.mkdir(parents=True, exist_ok=True)
        await ops.page.screenshot(path=str(IMAGES / "ops.png"), full_page=True)


async def test_explain_playground_shows_the_matched_rule_and_the_trace(
    ops: Page, served: ServeProcess
) -> None:
    await ops.page.goto(f"{served.url}/ops")
    await ops.page.locator("#explain-input").fill(
        '{"conversation_id": "p-1", "handoff": {"handoff_reason": "complaint"}}'
    )
    await ops.page.locator("#explain-form button").click()
    result = ops.page.locator("#explain-result")
    await expect(result.locator(".matched-rule")).to_have_text("complaints", timeout=WAIT_MS)
    await expect(result.locator("table.trace")).to_contain_text("vip-billing")
    await expect(result.locator("tr.selected")).to_contain_text("complaints")
    # The instant: on a Saturday the out-of-hours rule takes the call.
    await ops.page.locator("#explain-input").fill(
        '{"conversation_id": "p-1", "context": {"hours_check": "on"}}'
    )
    await ops.page.locator("#explain-at").fill("2026-11-21T10:00:00")
    await ops.page.locator("#explain-form button").click()
    await expect(result.locator(".matched-rule")).to_have_text("out-of-hours", timeout=WAIT_MS)
    assert ops.errors == []


async def test_replay_form_answers_even_where_replay_is_not_available(
    ops: Page, served: ServeProcess
) -> None:
    await ops.page.goto(f"{served.url}/ops")
    await ops.page.locator("#replay-rules").fill(WEB_RULES_YAML)
    await ops.page.locator("#replay-form button").click()
    result = ops.page.locator("#replay-result")
    await expect(result).not_to_contain_text("Replaying", timeout=WAIT_MS)
    text = await result.inner_text()
    assert "replayed" in text or "not available" in text


async def test_the_card_shows_the_label_to_a_browser_without_a_key(
    browser: Any, served: ServeProcess
) -> None:
    answer = await route(served)
    context = await browser.new_context(viewport={"width": 420, "height": 320})
    page = Page(await context.new_page())
    response = await page.page.goto(served.url + answer["card_url"])
    assert response is not None
    assert response.status == 200
    await expect(page.page.locator("h1.label")).to_have_text("Billing dispute · gold")
    await expect(page.page.locator(".queue")).to_contain_text("billing-priority")
    await expect(page.page.locator(".why")).to_contain_text("Gold customer")
    await expect(page.page.locator(".facts")).to_contain_text("refund")
    assert page.errors == []
    if SCREENSHOTS:
        IMAGES.mkdir(parents=True, exist_ok=True)
        await page.page.screenshot(path=str(IMAGES / "card.png"))
    await context.close()


async def test_a_tampered_card_link_is_refused(browser: Any, served: ServeProcess) -> None:
    answer = await route(served)
    url = served.url + answer["card_url"]
    last = url[-1]
    tampered = url[:-1] + ("0" if last != "0" else "1")
    context = await browser.new_context()
    page = await context.new_page()
    response = await page.goto(tampered)
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text("This link is not valid", timeout=WAIT_MS)
    assert "billing" not in (await page.content()).lower()
    await context.close()
