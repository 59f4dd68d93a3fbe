"""The private record and escrow pages in a real browser with JavaScript off: each page passes
axe-core and the page-structure checks of test_platform_reporter_browser.py (whose browser,
site and checks this module reuses), and a held report and a record work by clicks alone."""

from __future__ import annotations

import re

from playwright.async_api import Browser
from test_platform_reporter_browser import (  # noqa: F401 (fixtures)
    Site,
    browser,
    check_accessibility,
    new_context,
    site,
    submit,
)


async def test_record_and_escrow_pages_pass_axe_with_javascript_off(
    site: Site,  # noqa: F811
    browser: Browser,  # noqa: F811
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
