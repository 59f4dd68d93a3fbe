"""The reporter page in a real browser (Debian's Chromium driven by Playwright for Python): a
person reports anonymously, keeps the receipt code, reads the case manager's reply (sent
through the API) and answers it — first with JavaScript disabled (a `java_script_enabled=False`
context, as in Tor Browser's safest mode), in English and in Spanish, then with it on — and
every page passes axe-core (WCAG 2.x A/AA and best-practice rules) and the page-structure
checks (labels, `lang`, headings, focus order). Screenshots of each page at phone and desktop
width are saved as artifacts (`UPSTANDER_SCREENSHOT_DIR`, else the test's temporary folder).

Playwright's own browser download does not work on these machines: it launches the binary
Debian's `chromium` package installs (`executable_path`), through the driver the `playwright`
wheel bundles (never `playwright install`). One browser for the module, driven with the async
API on the test's event loop, next to uvicorn serving the in-process platform's gateway over
real HTTP. Skipped, with the reason, only when Chromium is not installed and CI is not set.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import helpers
import pytest
import uvicorn
from harness import Platform, running_platform
from sqlalchemy import select

from upstander.cases.models import Case

if TYPE_CHECKING:
    from playwright.async_api import ViewportSize

CHROMIUM = os.environ.get("UPSTANDER_CHROMIUM") or (
    shutil.which("chromium") or shutil.which("chromium-browser")
)
AXE_CANDIDATES = (
    os.environ.get("UPSTANDER_AXE_JS", ""),
    "/opt/upstander-axe/node_modules/axe-core/axe.min.js",
)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
ZOOMED: ViewportSize = {"width": 640, "height": 450}  # 200% zoom on a 1280 px screen
STORY = "After the rally the field director blocked the van door and would not let me out."
NEUTRAL = "https://www.google.com/"

if helpers.selected_backend() != "sqlite":
    pytest.skip(
        "the page does not depend on the database; tests/intake/test_reporter_page.py runs "
        "it on PostgreSQL",
        allow_module_level=True,
    )
if not CHROMIUM and not os.environ.get("CI"):
    pytest.skip(
        "Chromium is not installed (apt-get install chromium); CI installs it and runs this module",
        allow_module_level=True,
    )

from playwright.async_api import (  # noqa: E402
    Browser,
    BrowserContext,
    Page,
    async_playwright,
)


def _axe_source() -> str | None:
    for candidate in AXE_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text(encoding="utf-8")
    return None


@dataclass
class Site:
    platform: Platform
    base: str


@pytest.fixture(scope="module")
async def site(test_backend: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    async with running_platform(tmp_path_factory.mktemp("reporter-browser")) as platform:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        config = uvicorn.Config(
            platform.apps["gateway"], lifespan="off", log_config=None, access_log=False
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
            yield Site(platform, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await serving
            listener.close()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    assert CHROMIUM, "CI needs Debian's chromium (apt-get install chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            # A person's Chromium keeps pages for Back/Forward (even `no-store` ones, in
            # memory): keep that on, so the tests see what the receipt page must survive.
            ignore_default_args=["--disable-back-forward-cache"],
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-US"],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def new_context(browser: Browser, *, javascript: bool) -> BrowserContext:
    context = await browser.new_context(
        java_script_enabled=javascript, viewport=DESKTOP, locale="en-US"
    )
    context.set_default_timeout(20_000)

    # The quick exit's neutral site, answered here: the test machine has no way out.
    async def neutral(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html", body="<title>Search</title>")

    await context.route(f"{NEUTRAL}**", neutral)
    return context


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("UPSTANDER_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("reporter-page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def html_class(page: Page) -> str:
    return await page.locator("html").get_attribute("class") or ""


async def page_width(page: Page) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


async def screenshot(page: Page, folder: Path, name: str) -> None:
    """The whole page at phone and at desktop width; no sideways scroll on the phone or at
    200% zoom (WCAG 1.4.10 reflow)."""
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        if label == "phone":
            width = await page_width(page)
            assert width <= size["width"], f"{name} is {width} px wide on a phone"
        await page.screenshot(path=str(folder / f"reporter-{name}-{label}.png"), full_page=True)
    await page.set_viewport_size(ZOOMED)
    width = await page_width(page)
    assert width <= ZOOMED["width"], f"{name} is {width} px wide at 200% zoom"
    await page.set_viewport_size(DESKTOP)


STRUCTURE = """() => {
    const labelled = (el) => (el.id && document.querySelector(`label[for="${el.id}"]`))
        || el.closest('label') || el.getAttribute('aria-label');
    const fields = [...document.querySelectorAll('input, textarea, select')]
        .filter((el) => el.type !== 'hidden');
    const levels = [...document.querySelectorAll('h1, h2, h3, h4, h5, h6')]
        .map((h) => Number(h.tagName[1]));
    return {
        lang: document.documentElement.lang,
        unlabelled: fields.filter((el) => !labelled(el)).map((el) => el.name || el.id),
        levels: levels,
        positiveTabindex: [...document.querySelectorAll('[tabindex]')]
            .filter((el) => el.tabIndex > 0).length,
        groups: [...document.querySelectorAll('input[type=radio], input[type=checkbox]')]
            .filter((el) => !el.closest('fieldset')).map((el) => el.name),
    };
}"""

AXE_RUN = """(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})
    .then((r) => JSON.stringify(r.violations),
          (e) => JSON.stringify([{id: 'axe-error', help: String(e)}]))"""


async def check_accessibility(page: Page, name: str) -> None:
    """axe-core with no violations, and the structure a screen reader and a keyboard need."""
    structure = await page.evaluate(STRUCTURE)
    assert structure["lang"] in ("en", "es"), name
    assert structure["unlabelled"] == [], (name, structure["unlabelled"])
    assert structure["groups"] == [], (name, structure["groups"])
    assert structure["levels"][:1] == [1] and structure["levels"].count(1) == 1, name
    steps = zip(structure["levels"], structure["levels"][1:], strict=False)
    assert all(after <= before + 1 for before, after in steps), (name, structure["levels"])
    assert structure["positiveTabindex"] == 0, name

    source = _axe_source()
    if source is None:
        if os.environ.get("CI"):
            raise AssertionError("axe-core is missing: .ci/run installs it from npm")
        return
    if "js" in await html_class(page):
        violations = await run_axe(page, source)
    else:
        # axe works with timers and promises, which never run in a page whose scripts are off
        # (and a DevTools override cannot lift the context's setting): axe checks the same
        # document — the DOM the scripts-off page holds, under the same URL, styled by the
        # same stylesheet from the server — in a page with scripts on, whose own script
        # (quick-exit.js) is answered empty so that it cannot change anything.
        violations = await run_axe_on_copy(page, source)
    assert violations == [], (
        name,
        [(v["id"], v.get("help"), [n["target"] for n in v.get("nodes", [])]) for v in violations],
    )


async def run_axe(page: Page, source: str) -> list[dict[str, Any]]:
    # Evaluated through the DevTools protocol: not subject to the page's CSP.
    await page.evaluate(source)
    return list(json.loads(await page.evaluate(AXE_RUN, AXE_TAGS)))


async def run_axe_on_copy(page: Page, source: str) -> list[dict[str, Any]]:
    browser = page.context.browser
    assert browser is not None
    copy = await page.content()
    context = await browser.new_context(java_script_enabled=True, viewport=DESKTOP)
    try:

        async def document(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=copy)

        async def no_script(route: Any) -> None:
            await route.fulfill(status=200, content_type="text/javascript", body="")

        address = page.url.split("#")[0]
        await context.route(address, document)
        await context.route("**/quick-exit.js", no_script)
        twin = await context.new_page()
        await twin.goto(address)
        assert "js" not in await html_class(twin)
        return await run_axe(twin, source)
    finally:
        await context.close()


async def keyboard_order(page: Page, count: int) -> list[str]:
    """What Tab reaches first on a freshly loaded page (id, else class, of each stop), each
    with a visible focus ring."""
    await page.reload()
    reached = []
    for _ in range(count):
        await page.keyboard.press("Tab")
        stop, outline = await page.evaluate(
            "() => { const el = document.activeElement; const style = getComputedStyle(el);"
            " return [el.id || el.className || el.tagName,"
            " [style.outlineStyle, style.outlineWidth]]; }"
        )
        assert outline[0] != "none" and outline[1] != "0px", (stop, outline)  # focus visible
        reached.append(stop)
    return reached


async def submit(page: Page, form_action_suffix: str) -> None:
    """Press the form's button and wait for the next page (the answer to the POST, or the
    page its 303 leads to)."""
    async with page.expect_navigation(wait_until="load"):
        await page.click(f'form[action$="{form_action_suffix}"] button[type="submit"]')


async def cookies(page: Page) -> list[dict[str, Any]]:
    return [dict(c) for c in await page.context.cookies()]


async def report_anonymously(page: Page, site: Site, folder: Path | None, lang: str) -> str:
    await page.goto(f"{site.base}/r/demo?lang={lang}")
    if folder is not None:
        await check_accessibility(page, "report")
        await screenshot(page, folder, f"report-{lang}")
    await page.check("#mode-anonymous")
    await page.check("#category-harassment")
    await page.fill("#description", STORY)
    await page.fill("#location", "Parking lot")
    await page.fill("#keep_out", "The deputy")
    await submit(page, "/report")

    assert page.url.endswith(f"/r/demo/receipt?lang={lang}"), page.url
    code = (await page.inner_text("#receipt-code")).strip()
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", code), code
    if folder is not None:
        await check_accessibility(page, "receipt")
        await screenshot(page, folder, f"receipt-{lang}")
    # Never in a URL or a cookie the browser keeps.
    assert code not in page.url
    assert all(code not in c["value"] for c in await cookies(page))
    if "js" in await html_class(page):
        # The page kept for Back/Forward has lost the code (scrubbed when it was left).
        # (A page restored from that cache fires no `load`: wait for the commit.)
        await page.go_back(wait_until="commit")
        await page.go_forward(wait_until="commit")
        assert code not in await page.content()
    # "I have written it down": on to the follow-up page, and Back does not show the code.
    await submit(page, "/receipt/done")
    assert f"/r/demo/follow-up?lang={lang}" in page.url
    await page.go_back(wait_until="commit")
    await page.wait_for_load_state("domcontentloaded")
    assert code not in await page.content()
    return code


async def case_manager_replies(site: Site, body: str) -> str:
    """Through the API, as the case manager: reply on the case the newest report opened."""
    platform = site.platform
    await platform.drain()
    async with platform.apps["cases"].state.sessionmaker() as session:
        case_id = await session.scalar(
            select(Case.id).order_by(Case.created_at.desc(), Case.number.desc()).limit(1)
        )
    manager = await platform.auth("case_manager@demo.example")
    answer = await platform.gateway.post(
        f"/cases/v1/cases/{case_id}/messages", json={"body": body}, headers=manager
    )
    assert answer.status_code == 201, answer.text
    return str(case_id)


async def read_thread(site: Site, case_id: str) -> list[dict[str, Any]]:
    manager = await site.platform.auth("case_manager@demo.example")
    answer = await site.platform.gateway.get(
        f"/cases/v1/cases/{uuid.UUID(case_id)}/messages", headers=manager
    )
    return list(answer.json()["items"])


async def follow_up(
    page: Page, site: Site, code: str, folder: Path | None, lang: str, reply: str
) -> str:
    case_id = await case_manager_replies(site, "Thank you for telling us. Are you safe now?")
    await page.goto(f"{site.base}/r/demo/follow-up?lang={lang}")
    if folder is not None:
        await check_accessibility(page, "sign-in")
        await screenshot(page, folder, f"sign-in-{lang}")
    await page.fill("#receipt_code", code.lower().replace("-", " "))
    await submit(page, "/follow-up/sign-in")

    assert "Are you safe now?" in await page.content()
    session = [c for c in await cookies(page) if c["name"] == "upstander_reporter"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert code.replace("-", "") not in session[0]["value"]
    if folder is not None:
        await check_accessibility(page, "follow-up")
        await screenshot(page, folder, f"follow-up-{lang}")
    await page.fill("#body", reply)
    await submit(page, "/follow-up/messages")
    assert "done=message_sent" in page.url
    assert reply in await page.content()
    assert (await read_thread(site, case_id))[-1]["body"] == reply

    await submit(page, "/follow-up/sign-out")
    assert 'name="receipt_code"' in await page.content()
    assert not [c for c in await cookies(page) if c["name"] == "upstander_reporter"]
    return case_id


async def test_with_javascript_off_a_reporter_reports_and_follows_up_and_every_page_passes_axe(
    site: Site, browser: Browser, shots: Path
) -> None:
    context = await new_context(browser, javascript=False)
    try:
        page = await context.new_page()
        await page.goto(f"{site.base}/r/demo")
        # Scripts really are off: the quick-exit script marks the page when it runs.
        assert "js" not in await html_class(page)
        assert await keyboard_order(page, 2) == ["quick-exit", "skip-link"]
        # A mistake: the summary is announced (role=alert) and links to the field.
        await submit(page, "/report")
        summary = page.locator("#error-summary")
        assert await summary.get_attribute("role") == "alert"
        await summary.locator('a[href="#description"]').click()
        assert await page.evaluate("document.activeElement.id") == "description"
        await check_accessibility(page, "report with errors")
        code = await report_anonymously(page, site, shots, "en")
        await follow_up(page, site, code, shots, "en", "I am safe, thank you. It happened twice.")
        # Spanish, start to end of the report, with the same checks.
        await page.goto(f"{site.base}/r/demo?lang=es")
        assert await page.locator("html").get_attribute("lang") == "es"
        code_es = await report_anonymously(page, site, shots, "es")
        await follow_up(page, site, code_es, shots, "es", "Estoy bien, gracias.")
    finally:
        await context.close()
    taken = {p.name for p in shots.glob("reporter-*-phone.png")}
    assert {
        f"reporter-{name}-{lang}-phone.png"
        for name in ("report", "receipt", "sign-in", "follow-up")
        for lang in ("en", "es")
    } <= taken, taken


async def test_with_javascript_on_the_same_flow_works_and_quick_exit_leaves_the_page(
    site: Site, browser: Browser
) -> None:
    context = await new_context(browser, javascript=True)
    try:
        page = await context.new_page()
        await page.goto(f"{site.base}/r/demo")
        assert "js" in await html_class(page)
        code = await report_anonymously(page, site, None, "en")
        await follow_up(page, site, code, None, "en", "Replying with scripts on.")
        await page.goto(f"{site.base}/r/demo")
        async with page.expect_navigation():
            await page.click("#quick-exit")
        assert "/r/demo" not in page.url
    finally:
        await context.close()


def _tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    rows = b"".join(b"\x00" + b"\x5a\x2d\x82" * 8 for _ in range(8))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def embedding_site(site: Site) -> tuple[uvicorn.Server, str]:
    """Another site on this machine (a real server: Chromium keeps local pages from framing
    local addresses only when they come from one) whose page frames the reporter page."""
    body = (
        f'<!doctype html><html lang="en"><title>Campaign</title><iframe id="f" title="Report" '
        f'src="{site.base}/r/demo" width="800" height="600"></iframe></html>'
    ).encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_config=None, access_log=False))
    asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    return server, f"http://localhost:{port}"


async def test_a_branded_page_passes_axe_and_only_the_listed_site_can_frame_it(
    site: Site, browser: Browser, shots: Path
) -> None:
    """The org's name, colours and stored logo on the page (axe checks the brand's contrast
    too), and embedding: a page of a listed origin frames it, any other origin is refused."""
    campaign_server, campaign = await embedding_site(site)
    stranger_server, stranger = await embedding_site(site)
    admin = await site.platform.auth("admin@demo.example")
    gateway = site.platform.gateway
    branded = await gateway.put(
        "/identity/v1/orgs/current/branding",
        json={
            "display_name": "Rivera for Council",
            "accent": "#5a2d82",
            "header_background": "#5a2d82",
            "header_text": "#ffffff",
            "frame_ancestors": [campaign],
        },
        headers=admin,
    )
    assert branded.status_code == 200, branded.text
    logo = await gateway.put(
        "/identity/v1/orgs/current/branding/logo",
        files={"file": ("logo.png", _tiny_png(), "image/png")},
        headers=admin,
    )
    assert logo.status_code == 200, logo.text
    context = await new_context(browser, javascript=True)
    try:
        page = await context.new_page()
        loaded: list[str] = []
        page.on("requestfinished", lambda request: loaded.append(request.url))
        await page.goto(f"{site.base}/r/demo")
        assert "Rivera for Council" in await page.inner_text(".org-name")
        header = await page.evaluate(
            "() => { const s = getComputedStyle(document.querySelector('.site'));"
            " const l = getComputedStyle(document.querySelector('.org-logo'));"
            " return [s.backgroundColor, s.color, l.backgroundImage, l.width]; }"
        )
        assert header[:2] == ["rgb(90, 45, 130)", "rgb(255, 255, 255)"], header
        assert header[2] == f'url("{site.base}/r/demo/brand/logo.png")' and header[3] == "48px"
        assert f"{site.base}/r/demo/brand/logo.png" in loaded
        assert all(url.startswith(site.base) for url in loaded), loaded  # nothing hot-linked
        await check_accessibility(page, "branded report")
        await screenshot(page, shots, "branded-report-en")

        # Embedding: the campaign's page frames the reporter page; a stranger's cannot.
        for origin, allowed in ((campaign, True), (stranger, False)):
            answers: list[int] = []

            def note(response: Any, into: list[int] = answers) -> None:
                if response.url == f"{site.base}/r/demo":
                    into.append(response.status)

            page.on("response", note)
            await page.goto(f"{origin}/embed")
            page.remove_listener("response", note)
            assert answers == [200], (origin, answers)  # the gateway answered the frame...
            inner = page.frames[-1]
            for _ in range(200):  # a refused frame's error page may commit after `load`
                if inner.url:
                    break
                await asyncio.sleep(0.025)
            if allowed:
                assert inner.url == f"{site.base}/r/demo"
                assert "Rivera for Council" in await inner.locator(".org-name").inner_text()
                assert await inner.locator("form").count() > 0
                # Its SameSite=Strict cookies are not kept in another site's frame, so a post
                # from inside the frame is refused as an expired form (docs/reporter-page.md).
                await inner.fill("#description", STORY)
                async with inner.expect_navigation():
                    await inner.click('form[action$="/report"] button[type="submit"]')
                assert "This form has expired" in await inner.locator("h1").inner_text()
            else:
                # ...but Chromium refused to show it there: its error page, no form.
                assert inner.url.startswith("chrome-error:"), inner.url
                assert await inner.locator("form").count() == 0
    finally:
        await context.close()
        for server in (campaign_server, stranger_server):
            server.should_exit = True
        await gateway.put("/identity/v1/orgs/current/branding", json={}, headers=admin)
        await gateway.delete("/identity/v1/orgs/current/branding/logo", headers=admin)


async def test_with_javascript_off_a_staff_member_reports_with_their_name(
    site: Site, browser: Browser, shots: Path
) -> None:
    """Identified: staff email and password on the form itself; the sign-in lasts for the one
    report, and nothing of it stays in the browser."""
    context = await new_context(browser, javascript=False)
    try:
        page = await context.new_page()
        await page.goto(f"{site.base}/r/demo?lang=es")
        await page.check("#mode-identified")
        await page.fill("#description", STORY)
        await page.fill("#staff_email", "leader@demo.example")
        await page.fill("#staff_password", "not-the-password")
        await submit(page, "/report")
        assert await page.locator("#staff_email-error").count() == 1
        assert await page.input_value("#staff_password") == ""  # never echoed back
        assert await page.input_value("#staff_email") == "leader@demo.example"
        await check_accessibility(page, "identified refused")
        await page.fill("#staff_password", "upstander-demo")
        await submit(page, "/report")
        assert page.url.endswith("/r/demo/sent?lang=es"), page.url
        await check_accessibility(page, "identified sent")
        await screenshot(page, shots, "identified-sent-es")
        assert all("eyJ" not in c["value"] for c in await cookies(page))
        assert {c["name"] for c in await cookies(page)} <= {"upstander_csrf"}
    finally:
        await context.close()


# The private record and escrow pages, with JavaScript off: each page passes axe-core and the
# page-structure checks, and a held report and a record work by clicks alone (one platform and
# one browser for the whole module).
async def test_record_and_escrow_pages_pass_axe_with_javascript_off(
    site: Site,
    browser: Browser,
) -> None:
    context = await new_context(browser, javascript=False)
    try:
        page = await context.new_page()
        for lang in ("en", "es"):
            await page.goto(f"{site.base}/r/demo/escrow?lang={lang}")
            await check_accessibility(page, f"escrow about {lang}")
            await page.goto(f"{site.base}/r/demo/record?lang={lang}")
            await check_accessibility(page, f"record home {lang}")

        # Hold a report from the report form (its second button), then check it.
        await page.goto(f"{site.base}/r/demo")
        await page.fill("#description", "He follows me to my car.")
        await page.fill("#escrow_email", "Someone@Demo.example")
        async with page.expect_navigation(wait_until="load"):
            await page.click('button[formaction$="/escrow"]')
        await check_accessibility(page, "escrow receipt")
        code = (await page.locator("#receipt-code").inner_text()).strip()
        assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", code)
        await submit(page, "/escrow/receipt/done")
        await check_accessibility(page, "escrow sign-in")
        await page.fill("#receipt_code", code)
        await submit(page, "/escrow/sign-in")
        assert "Waiting" in await page.content()
        await check_accessibility(page, "escrow status")
        assert code not in page.url
        # A second, independent report naming the same person: matched, with release offered.
        await page.goto(f"{site.base}/r/demo?lang=es")
        await page.fill("#description", "Me sigue hasta el coche.")
        await page.fill("#escrow_email", " someone@demo.EXAMPLE ")
        async with page.expect_navigation(wait_until="load"):
            await page.click('button[formaction$="/escrow"]')
        second = (await page.locator("#receipt-code").inner_text()).strip()
        await submit(page, "/escrow/receipt/done")
        await page.fill("#receipt_code", second)
        await submit(page, "/escrow/sign-in")
        assert "Coincidencia" in await page.content()
        await check_accessibility(page, "escrow matched")
        await page.check("#mode-anonymous")
        await submit(page, "/escrow/release")
        assert "Su denuncia fue enviada." in await page.content()

        # A record: start, see the code once, read it.
        await page.goto(f"{site.base}/r/demo/record")
        await page.fill("#text", "Tuesday: he blocked the door again.")
        await submit(page, "/record/start")
        await check_accessibility(page, "record code")
        record_code = (await page.locator("#receipt-code").inner_text()).strip()
        await submit(page, "/record/code/done")
        assert "Tuesday: he blocked the door again." in await page.content()
        await check_accessibility(page, "record view")
        assert record_code not in page.url
    finally:
        await context.close()
