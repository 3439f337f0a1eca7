"""The chat page at `GET /`, driven in headless Chromium with Playwright.

The browser is Debian's `chromium` package at /usr/bin/chromium (CI installs it;
Playwright never downloads one). The app runs under a real uvicorn on a free
loopback port, in the test's own event loop.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from playwright.async_api import Page, ViewportSize, async_playwright, expect

from _support.serving import serving
from runstream._demo import _ANSWER, _SUMMARY, _THOUGHT, build_demo_agent
from runstream.server import create_app

pytestmark = [pytest.mark.anyio, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@asynccontextmanager
async def chromium_page(width: int = 1000, height: int = 800) -> AsyncIterator[Page]:
    """A fresh page (1000x800 unless told) in Debian's headless Chromium, with a fresh profile."""
    if not await anyio.Path(CHROMIUM).exists():
        pytest.fail(
            "Chromium is missing: these tests drive Debian's chromium package at "
            "/usr/bin/chromium. Install it with `apt-get install chromium` "
            "(.ci/run does this in CI).",
            pytrace=False,
        )
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True
        )
        try:
            viewport: ViewportSize = {"width": width, "height": height}
            context = await browser.new_context(viewport=viewport)
            page = await context.new_page()
            page.set_default_timeout(20_000)
            yield page
            await context.close()
        finally:
            await browser.close()


async def run_events(base: str, run_id: str) -> list[dict[str, Any]]:
    """Every event of a finished run, read straight from the server's SSE route."""
    events: list[dict[str, Any]] = []
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{base}/runs/{run_id}/events") as response,
    ):
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events


async def test_page_streams_a_demo_run() -> None:
    app = create_app({"demo": build_demo_agent(delay=0.01)})
    async with serving(app) as base, chromium_page() as page:
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        console_errors: list[str] = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)

        await page.goto(base + "/")
        await expect(page.locator("#graph")).to_have_value("demo")
        question = "Is solar <b>cheaper</b> than coal? <img src=x onerror=alert(1)>"
        await page.fill("#question", question)
        await page.click("#send")
        await expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)

        reply = await page.locator(".reply").text_content()
        assert reply is not None
        assert reply.startswith("Yes, in most of the world.")
        assert reply == _ANSWER
        assert await page.locator(".thought-text").first.text_content() == _THOUGHT

        for name in ("web_search", "fetch_stats", "summarizer"):
            card = page.locator(f'.tool-card[data-tool-name="{name}"]')
            await expect(card).to_have_count(1)
            await expect(card.locator(".tool-head .status")).to_have_text("✓")
        search = page.locator('.tool-card[data-tool-name="web_search"]')
        await expect(search.locator(".tool-args")).to_contain_text("solar vs coal cost per MWh")
        await expect(search.locator(".tool-msg")).to_have_text("read IEA")
        width = await search.locator(".bar").evaluate("bar => bar.style.width")
        assert width == "100%"
        summarizer = page.locator('.tool-card[data-tool-name="summarizer"]')
        await expect(summarizer.locator(".child-run .child-reply")).to_have_text(_SUMMARY)
        await expect(summarizer.locator(".child-head")).to_contain_text("summarizer")

        usage = page.locator("#usage")
        await expect(usage).to_be_visible()
        await expect(usage).to_contain_text("scripted-large")
        await expect(usage).to_contain_text("scripted-small")
        match = re.search(r"total ([\d,]+)", await usage.text_content() or "")
        assert match is not None, await usage.text_content()
        total = int(match.group(1).replace(",", ""))
        assert total > 0

        # The question is shown as text, never parsed as HTML.
        bubble = page.locator(".bubble-user")
        await expect(bubble).to_have_text(question)
        assert await bubble.locator("b, img").count() == 0

        # The usage line sums the run's Usage events exactly once each.
        run_id = await page.locator(".turn-assistant").get_attribute("data-run-id")
        assert run_id
        events = await run_events(base, run_id)
        expected = sum(
            e["input_tokens"] + e["output_tokens"] for e in events if e["type"] == "usage"
        )
        assert total == expected

        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "page.png"))

        # Self-contained: nothing but the app's own origin was asked for.
        assert requested, "the page made no requests"
        assert {urllib.parse.urlsplit(url).netloc for url in requested} == {
            urllib.parse.urlsplit(base).netloc
        }, requested
        assert console_errors == []

        async with httpx.AsyncClient() as client:
            served = (await client.get(base + "/")).text
    packaged = files("runstream.server") / "static" / "chat.html"
    assert served == packaged.read_text(encoding="utf-8")
    external = re.findall(r"https?://[^\s\"'<>)]*", served)
    assert external == [], f"the page refers to other hosts: {external}"


class FlakyEvents:
    """Wraps the app so that the page's event stream is interrupted, as a network would.

    Connections to `GET /runs/{id}/events`, in order:

    1. cut short (the response ends cleanly) after `cuts[0]` events: the browser's
       EventSource reconnects by itself with `Last-Event-ID`;
    2. that reconnection is cut short too, after `cuts[1]` events;
    3. the next reconnection is refused with a 503, which makes the browser give
       up (`EventSource.CLOSED`): the page must open a new one with `?after=`;
    4. that one is answered from 10 events *before* the asked position, so the
       page receives events it has already seen and must drop them.
    """

    def __init__(self, app: Any, cuts: tuple[int, int] = (20, 40)) -> None:
        self.app = app
        self.cuts = cuts
        self.connections: list[tuple[str, str | None]] = []
        self.rewound_to: int | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/events"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        last_id = headers.get(b"last-event-id")
        query = scope["query_string"].decode()
        n = len(self.connections)
        self.connections.append((query, None if last_id is None else last_id.decode()))
        if n < len(self.cuts):
            await self.app(scope, receive, _cut_after(send, self.cuts[n]))
        elif n == len(self.cuts):
            await send(
                {
                    "type": "http.response.start",
                    "status": 503,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"detail": "try later"}'})
        else:
            params = urllib.parse.parse_qs(query)
            if "after" in params:
                self.rewound_to = max(-1, int(params["after"][0]) - 10)
                params["after"] = [str(self.rewound_to)]
            scope = {**scope, "query_string": urllib.parse.urlencode(params, doseq=True).encode()}
            await self.app(scope, receive, send)


def _cut_after(send: Send, frames: int) -> Send:
    """A `send` that ends the response after `frames` SSE events and drops the rest."""
    seen = 0
    cut = False

    async def cutting(message: Message) -> None:
        nonlocal seen, cut
        if cut:
            return
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            if body.startswith(b"id: "):
                seen += 1
            if seen >= frames and message.get("more_body", False):
                cut = True
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
        await send(message)

    return cutting


RECORD_EVENT_SOURCES = """
window.eventSources = [];
window.EventSource = class extends window.EventSource {
  constructor(...args) {
    super(...args);
    window.eventSources.push(this);
  }
};
"""


async def test_page_resumes_after_dropped_connections() -> None:
    flaky = FlakyEvents(create_app({"demo": build_demo_agent(delay=0.03)}))
    async with serving(flaky) as base, chromium_page() as page:
        await page.add_init_script(RECORD_EVENT_SOURCES)
        await page.goto(base + "/")
        await expect(page.locator("#graph")).to_have_value("demo")
        await page.fill("#question", "Is solar cheaper than coal?")
        await page.press("#question", "Enter")
        await expect(page.locator("#run-status")).to_have_text("completed", timeout=40_000)

        # Each piece of text exactly once: nothing lost, nothing repeated.
        assert await page.locator(".reply").text_content() == _ANSWER
        assert await page.locator(".thought-text").text_content() == _THOUGHT
        summarizer = page.locator('.tool-card[data-tool-name="summarizer"]')
        await expect(summarizer.locator(".child-reply")).to_have_text(_SUMMARY)
        await expect(page.locator(".tool-card")).to_have_count(3)
        await expect(page.locator(".tool-card .tool-head .status")).to_have_text(["✓"] * 3)
        await expect(page.locator(".reply-box")).to_have_count(1)
        await expect(page.locator("#conn")).to_have_text("")

        # The stream was really interrupted, and resumed both ways.
        conns = flaky.connections
        assert len(conns) == 4, conns
        assert conns[0] == ("", None)
        first, second = int(conns[1][1] or -1), int(conns[2][1] or -1)
        # The browser's own resume, with Last-Event-ID and no query:
        assert conns[1][0] == "", conns
        assert first >= 19, conns
        assert conns[2][0] == "", conns
        assert second >= first + 40, conns
        # The page's resume after the EventSource gave up: a new one with ?after=.
        assert conns[3] == (f"after={second}", None), conns
        assert flaky.rewound_to == second - 10  # ...answered with 10 events it had seen

        # After the terminal event the page stops listening: every EventSource it opened
        # is closed, and a closed EventSource never reconnects (the server's `retry:`
        # would otherwise bring one back within a second).
        await page.wait_for_function(
            "() => window.eventSources.every((es) => es.readyState === EventSource.CLOSED)"
        )
        assert await page.evaluate("window.eventSources.length") == 2  # the first one, the ?after=
        assert len(flaky.connections) == 4, flaky.connections

        # The usage line counted every Usage event once.
        run_id = await page.locator(".turn-assistant").get_attribute("data-run-id")
        assert run_id
        events = await run_events(base, run_id)
        expected = sum(
            e["input_tokens"] + e["output_tokens"] for e in events if e["type"] == "usage"
        )
        assert await page.locator("#usage").get_attribute("data-total") == str(expected)


async def test_page_stops_a_run() -> None:
    app = create_app({"demo": build_demo_agent(delay=0.05)})
    async with serving(app) as base, chromium_page() as page:
        await page.goto(base + "/")
        await expect(page.locator("#graph")).to_have_value("demo")
        await page.fill("#question", "Is solar cheaper than coal?")
        await page.click("#send")
        await expect(page.locator('.tool-card[data-tool-name="web_search"]')).to_be_visible()
        await expect(page.locator("#send")).to_be_disabled()
        await page.click("#stop")
        await expect(page.locator("#run-status")).to_have_text("canceled")
        await expect(page.locator(".spinner")).to_have_count(0)
        await expect(page.locator(".turn-state")).to_contain_text("canceled")
        await expect(page.locator("#stop")).to_be_hidden()
        await expect(page.locator("#send")).to_be_enabled()


async def fits_the_screen(page: Page) -> None:
    """Nothing scrolls sideways, and the run's status pill is shown whole."""
    pill = page.locator("#run-status")
    await expect(pill).to_be_visible()
    width = await page.evaluate("window.innerWidth")
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the page is {scroll_width} px wide in a {width} px window"
    box = await pill.bounding_box()
    assert box is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= width, (box, width)


@pytest.mark.parametrize("width", [420, 360])
async def test_page_fits_a_phone_screen(width: int) -> None:
    agent = build_demo_agent(delay=0.05)
    app = create_app({"demo": agent, "quarterly_report_writer": agent})
    async with serving(app) as base, chromium_page(width, 760) as page:
        await page.goto(base + "/")
        await expect(page.locator("#graph")).to_have_value("demo")
        await page.fill("#question", "Is solar cheaper than coal?")
        await page.click("#send")

        # While the run goes on: the header holds the phase and the RUNNING pill.
        await expect(page.locator('.tool-card[data-tool-name="web_search"]')).to_be_visible()
        await expect(page.locator("#stop")).to_be_visible()
        await fits_the_screen(page)

        await expect(page.locator("#run-status")).to_have_text("completed", timeout=30_000)
        await fits_the_screen(page)
        if width == 420:
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "page-420.png"))


def booking_agent() -> Any:
    import runstream as rs

    @rs.tool
    async def pick_time(ctx: rs.RunContext) -> str:
        """Ask the user for a time."""
        answer: str = await ctx.ask("For what time?")
        return answer

    @rs.tool(approval=True)
    def send_mail(to: str) -> str:
        """Send the confirmation."""
        return f"sent to {to}"

    model = rs.ScriptedModel(
        [
            rs.Turn(tool_calls=[("pick_time", {})]),
            rs.Turn(tool_calls=[("send_mail", {"to": "ann@example.org"})]),
            "Booked, and Ann knows.",
        ]
    )
    return rs.create_agent(model, tools=[pick_time, send_mail], name="booker")


async def test_page_answers_a_question_and_approves_a_tool_call() -> None:
    app = create_app({"booker": booking_agent()})
    async with serving(app) as base, chromium_page() as page:
        await page.goto(base + "/")
        await page.fill("#question", "Book a table")
        await page.click("#send")
        question = page.locator(".question").first
        await expect(question.locator(".question-text")).to_have_text("For what time?")
        await question.locator("input.answer").fill("19:30")
        await question.locator("button.send-answer").click()
        await expect(question.locator(".question-said")).to_have_text("You said: 19:30")
        approval = page.locator(".question").nth(1)
        await expect(approval.locator(".question-text")).to_contain_text("send_mail")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "page-approval.png"))
        await approval.locator("button.approve").click()
        await expect(page.locator("#run-status")).to_have_text("completed")
        await expect(page.locator(".reply").last).to_contain_text("Booked, and Ann knows.")
        sent = page.locator('.tool-card[data-tool-name="send_mail"]')
        await expect(sent).to_have_attribute("data-state", "done")
        picked = page.locator('.tool-card[data-tool-name="pick_time"] .tool-result pre')
        await expect(picked).to_contain_text("19:30")


async def test_page_denies_a_tool_call() -> None:
    app = create_app({"booker": booking_agent()})
    async with serving(app) as base, chromium_page() as page:
        await page.goto(base + "/")
        await page.fill("#question", "Book a table")
        await page.click("#send")
        await page.locator(".question input.answer").fill("noon")
        await page.locator(".question button.send-answer").click()
        await page.locator(".question button.deny").click()
        await expect(page.locator("#run-status")).to_have_text("completed")
        denied = page.locator('.tool-card[data-tool-name="send_mail"]')
        await expect(denied).to_have_attribute("data-state", "error")
        await expect(denied.locator(".tool-error")).to_contain_text("denied")
