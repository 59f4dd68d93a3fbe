"""The reporter page in a real browser (Debian's Chromium through its chromedriver): a person
reports anonymously, keeps the receipt code, reads the case manager's reply (sent through the
API) and answers it — first with JavaScript disabled, as in Tor Browser's safest mode, then
with it on — and every page passes axe-core (WCAG 2.2 A/AA rules) and the page-structure
checks (labels, `lang`, headings, focus order). Screenshots of each page at phone and desktop
width are saved as artifacts (`UPSTANDER_SCREENSHOT_DIR`, else the test's temporary folder).

One browser for the module; the gateway of the in-process platform is served over real HTTP
by uvicorn on the test's event loop, and the (blocking) browser is driven from a worker
thread. Skipped, with the reason, only when Chromium is not installed and CI is not set.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helpers
import pytest
import uvicorn
from harness import Platform, running_platform
from sqlalchemy import select

from upstander.cases.models import Case

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
AXE_CANDIDATES = (
    os.environ.get("UPSTANDER_AXE_JS", ""),
    "/opt/upstander-axe/node_modules/axe-core/axe.min.js",
)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]
PHONE = {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True}
DESKTOP = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
ZOOMED = {"width": 640, "height": 450, "deviceScaleFactor": 2, "mobile": False}
STORY = "After the rally the field director blocked the van door and would not let me out."

if helpers.selected_backend() != "sqlite":
    pytest.skip(
        "the page does not depend on the database; tests/intake/test_reporter_page.py runs "
        "it on PostgreSQL",
        allow_module_level=True,
    )
if not (CHROMIUM and CHROMEDRIVER) and not os.environ.get("CI"):
    pytest.skip(
        "Chromium and chromedriver are not installed (apt-get install chromium "
        "chromium-driver); CI installs them and runs this module",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402


def _axe_source() -> str | None:
    for candidate in AXE_CANDIDATES:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_text(encoding="utf-8")
    return None


@dataclass
class Site:
    platform: Platform
    base: str
    loop: asyncio.AbstractEventLoop

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        """Run `coroutine` on the platform's loop from the browser's thread."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


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
            yield Site(platform, f"http://127.0.0.1:{port}", asyncio.get_running_loop())
        finally:
            server.should_exit = True
            await serving
            listener.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    assert CHROMIUM and CHROMEDRIVER, "CI needs chromium and chromium-driver (apt-get)"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--no-first-run",
        "--lang=en-US",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get("UPSTANDER_SCREENSHOT_DIR")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("reporter-page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def javascript(driver: WebDriver, enabled: bool) -> None:
    """Scripts of pages loaded from now on run (or not); WebDriver's own calls still work."""
    driver.execute_cdp_cmd("Emulation.setScriptExecutionDisabled", {"value": not enabled})


def screenshot(driver: WebDriver, folder: Path, name: str) -> None:
    """The whole page at phone and at desktop width."""
    import base64

    for label, metrics in (("phone", PHONE), ("desktop", DESKTOP)):
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        width, height = metrics["width"], max(int(size["height"]), metrics["height"])
        # A phone-wide page wider than the phone would scroll sideways: WCAG 1.4.10 reflow.
        if label == "phone":
            assert int(size["width"]) <= width, f"{name} is {size['width']} px wide on a phone"
        image = driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            },
        )
        (folder / f"reporter-{name}-{label}.png").write_bytes(base64.b64decode(image["data"]))
    # 200% zoom on a 1280 px screen lays the page out in 640 CSS px: still no sideways scroll.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", ZOOMED)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    assert int(size["width"]) <= 640, f"{name} is {size['width']} px wide at 200% zoom"
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def check_accessibility(driver: WebDriver, page: str) -> None:
    """axe-core with no violations, and the structure a screen reader and a keyboard need."""
    structure = driver.execute_script(
        """
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
        """
    )
    assert structure["lang"] in ("en", "es"), page
    assert structure["unlabelled"] == [], (page, structure["unlabelled"])
    assert structure["groups"] == [], (page, structure["groups"])
    assert structure["levels"][:1] == [1] and structure["levels"].count(1) == 1, page
    steps = zip(structure["levels"], structure["levels"][1:], strict=False)
    assert all(after <= before + 1 for before, after in steps), (page, structure["levels"])
    assert structure["positiveTabindex"] == 0, page

    source = _axe_source()
    if source is None:
        if os.environ.get("CI"):
            raise AssertionError("axe-core is missing: .ci/run installs it from npm")
        return
    # axe works with timers, which a page whose scripts are off never fires: allow them for
    # the check (the page's own scripts, skipped at load, do not run for it).
    scripts_off = "js" not in (
        driver.find_element(By.TAG_NAME, "html").get_attribute("class") or ""
    )
    javascript(driver, enabled=True)
    try:
        driver.execute_script(source)
        result = run_axe(driver)
    finally:
        javascript(driver, enabled=not scripts_off)
    violations = json.loads(result)
    assert violations == [], (
        page,
        [(v["id"], v.get("help"), [n["target"] for n in v.get("nodes", [])]) for v in violations],
    )


def run_axe(driver: WebDriver) -> str:
    return str(
        driver.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
            ".then((r) => done(JSON.stringify(r.violations)), (e) => done(JSON.stringify("
            "[{id: 'axe-error', help: String(e)}])));",
            AXE_TAGS,
        )
    )


def keyboard_order(driver: WebDriver, count: int) -> list[str]:
    """What Tab reaches first on a freshly loaded page (id, else class, of each stop)."""
    driver.get(driver.current_url)
    reached = []
    for _ in range(count):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        stop, outline = driver.execute_script(
            "const el = document.activeElement; const style = getComputedStyle(el);"
            "return [el.id || el.className || el.tagName,"
            " [style.outlineStyle, style.outlineWidth]];"
        )
        assert outline[0] != "none" and outline[1] != "0px", (stop, outline)  # focus visible
        reached.append(stop)
    return reached


def submit(driver: WebDriver, form_action_suffix: str) -> None:
    """Press the form's button and wait for the next page (the answer to the POST, or the
    page its 303 leads to)."""
    page = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(
        By.CSS_SELECTOR, f'form[action$="{form_action_suffix}"] button[type="submit"]'
    ).click()
    WebDriverWait(driver, 20).until(staleness_of(page))
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def report_anonymously(driver: WebDriver, site: Site, folder: Path | None, lang: str) -> str:
    driver.get(f"{site.base}/r/demo?lang={lang}")
    if folder is not None:
        check_accessibility(driver, "report")
        screenshot(driver, folder, f"report-{lang}")
    driver.find_element(By.ID, "mode-anonymous").click()
    driver.find_element(By.ID, "category-harassment").click()
    driver.find_element(By.ID, "description").send_keys(STORY)
    driver.find_element(By.ID, "location").send_keys("Parking lot")
    driver.find_element(By.ID, "keep_out").send_keys("The deputy")
    submit(driver, "/report")

    assert driver.current_url.endswith(f"/r/demo/receipt?lang={lang}"), driver.current_url
    code = driver.find_element(By.ID, "receipt-code").text.strip()
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", code), code
    if folder is not None:
        check_accessibility(driver, "receipt")
        screenshot(driver, folder, f"receipt-{lang}")
    # Never in a URL or a cookie the browser keeps.
    assert code not in driver.current_url
    assert all(code not in c["value"] for c in driver.get_cookies())
    scripts_on = "js" in (driver.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
    if scripts_on:
        # The page kept for Back/Forward has lost the code (scrubbed when it was left).
        driver.back()
        driver.forward()
        assert code not in driver.page_source
    # "I have written it down": on to the follow-up page, and Back does not show the code.
    submit(driver, "/receipt/done")
    assert f"/r/demo/follow-up?lang={lang}" in driver.current_url
    driver.back()
    assert code not in driver.page_source
    return code


def case_manager_replies(site: Site, code_holder: WebDriver, body: str) -> str:
    """Through the API, as the case manager: reply on the case the newest report opened."""

    async def reply() -> str:
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

    return str(site.run(reply()))


def read_thread(site: Site, case_id: str) -> list[dict[str, Any]]:
    async def thread() -> list[dict[str, Any]]:
        manager = await site.platform.auth("case_manager@demo.example")
        answer = await site.platform.gateway.get(
            f"/cases/v1/cases/{uuid.UUID(case_id)}/messages", headers=manager
        )
        return list(answer.json()["items"])

    return list(site.run(thread()))


def follow_up(
    driver: WebDriver, site: Site, code: str, folder: Path | None, lang: str, reply: str
) -> str:
    case_id = case_manager_replies(site, driver, "Thank you for telling us. Are you safe now?")
    driver.get(f"{site.base}/r/demo/follow-up?lang={lang}")
    if folder is not None:
        check_accessibility(driver, "sign-in")
        screenshot(driver, folder, f"sign-in-{lang}")
    driver.find_element(By.ID, "receipt_code").send_keys(code.lower().replace("-", " "))
    submit(driver, "/follow-up/sign-in")

    assert "Are you safe now?" in driver.page_source
    session = [c for c in driver.get_cookies() if c["name"] == "upstander_reporter"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert code.replace("-", "") not in session[0]["value"]
    if folder is not None:
        check_accessibility(driver, "follow-up")
        screenshot(driver, folder, f"follow-up-{lang}")
    driver.find_element(By.ID, "body").send_keys(reply)
    submit(driver, "/follow-up/messages")
    assert "done=message_sent" in driver.current_url
    assert reply in driver.page_source
    assert read_thread(site, case_id)[-1]["body"] == reply

    submit(driver, "/follow-up/sign-out")
    assert 'name="receipt_code"' in driver.page_source
    assert not [c for c in driver.get_cookies() if c["name"] == "upstander_reporter"]
    return case_id


async def _in_thread(function: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(function, *args)


async def test_with_javascript_off_a_reporter_reports_and_follows_up_and_every_page_passes_axe(
    site: Site, browser: WebDriver, shots: Path
) -> None:
    def story() -> None:
        javascript(browser, enabled=False)
        browser.get(f"{site.base}/r/demo")
        # Scripts really are off: the quick-exit script marks the page when it runs.
        assert "js" not in (browser.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
        assert keyboard_order(browser, 2) == ["quick-exit", "skip-link"]
        # A mistake: the summary is announced (role=alert) and links to the field.
        submit(browser, "/report")
        summary = browser.find_element(By.ID, "error-summary")
        assert summary.get_attribute("role") == "alert"
        link = summary.find_element(By.CSS_SELECTOR, 'a[href="#description"]')
        link.click()
        assert browser.switch_to.active_element.get_attribute("id") == "description"
        check_accessibility(browser, "report with errors")
        code = report_anonymously(browser, site, shots, "en")
        follow_up(browser, site, code, shots, "en", "I am safe, thank you. It happened twice.")
        # Spanish, start to end of the report, with the same checks.
        browser.get(f"{site.base}/r/demo?lang=es")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es"
        code_es = report_anonymously(browser, site, shots, "es")
        follow_up(browser, site, code_es, shots, "es", "Estoy bien, gracias.")

    await _in_thread(story)
    assert sorted(p.name for p in shots.glob("reporter-*-phone.png")) == sorted(
        f"reporter-{page}-{lang}-phone.png"
        for page in ("report", "receipt", "sign-in", "follow-up")
        for lang in ("en", "es")
    )


async def test_with_javascript_on_the_same_flow_works_and_quick_exit_leaves_the_page(
    site: Site, browser: WebDriver
) -> None:
    def story() -> None:
        javascript(browser, enabled=True)
        browser.get(f"{site.base}/r/demo")
        assert "js" in (browser.find_element(By.TAG_NAME, "html").get_attribute("class") or "")
        code = report_anonymously(browser, site, None, "en")
        follow_up(browser, site, code, None, "en", "Replying with scripts on.")
        browser.get(f"{site.base}/r/demo")
        browser.find_element(By.ID, "quick-exit").click()
        assert "/r/demo" not in browser.current_url

    await _in_thread(story)
