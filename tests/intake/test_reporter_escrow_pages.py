"""The reporter page's private record (`/r/{org}/record`) and matching escrow (`/r/{org}/escrow`),
request by request through the gateway of a whole in-process platform: every page in English
and Spanish with the page's safety headers, CSRF refusals that send nothing, two reporters
holding reports that name the same person (in different forms) and each releasing it, a
withdrawal, and a private record started, read, added to, proved, downloaded, turned into a
report and deleted — with the codes never in a URL, a log line or a row."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from harness import Platform, running_platform
from sqlalchemy import func, inspect, select, text
from timing_support import json_log_lines

from upstander.cases.models import Case
from upstander.gateway.models import Person, RefreshToken, RevokedToken
from upstander.intake.escrow.models import EscrowEntry, PrivateRecord
from upstander.intake.models import Report

BROWSER = "Mozilla/5.0 escrow-page-marker-3317"
TRACES = {"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.19"}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
CODE = re.compile(r'id="receipt-code"[^>]*>([^<]+)<')
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("escrow-pages")) as running:
        yield running


class Browser:
    """A browser-like client (its own cookie jar) at its own address, over HTTPS, that keeps
    every URL it asked for and every `Location` it was sent to."""

    def __init__(self, platform: Platform, address: str) -> None:
        gateway = platform.apps["gateway"]
        transport = httpx.ASGITransport(gateway, client=(address, 4711), raise_app_exceptions=False)
        host = httpx.URL(gateway.state.settings.service_url("gateway")).netloc.decode()
        self.urls: list[str] = []
        self.client = httpx.AsyncClient(
            transport=transport,
            base_url=f"https://{host}",
            headers=TRACES,
            event_hooks={"response": [self._keep]},
        )

    async def _keep(self, response: httpx.Response) -> None:
        self.urls.append(str(response.request.url))
        if "location" in response.headers:
            self.urls.append(response.headers["location"])

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.get(url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.client.post(url, **kwargs)

    async def form(self, page_url: str, action: str, **fields: Any) -> httpx.Response:
        """Load `page_url`, then post its form to `action` with its CSRF token."""
        page = await self.get(page_url)
        files = fields.pop("files", None)
        data = {"csrf_token": csrf_of(page), "lang": fields.pop("lang", "en"), **fields}
        return await self.post(action, data=data, files=files or [])


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def code_in(page: httpx.Response) -> str:
    found = CODE.search(page.text)
    assert found, page.text
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    jar: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel
    return jar


def held(**fields: Any) -> dict[str, Any]:
    return {"mode": "anonymous", "description": "held report", **fields}


async def count(platform: Platform, model: Any) -> int:
    async with platform.apps["intake"].state.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def every_row(engine: Any) -> str:
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        dumped: list[str] = []
        for table in tables:
            for row in (await connection.execute(text(f'SELECT * FROM "{table}"'))).all():
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    dumped.append(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
    return "\n".join(dumped)


def assert_never_kept(codes: list[str], urls: list[str], lines: list[str]) -> None:
    logged = "\n".join(lines)
    for code in codes:
        bare = code.replace("-", "")
        for url in urls:
            assert code not in url and bare not in url, url
        assert code not in logged and bare not in logged
    assert BROWSER not in logged and "198.51.100.19" not in logged


# ---- the pages -------------------------------------------------------------------------


async def test_every_page_is_strict_bilingual_and_linked_from_the_main_page(
    platform: Platform,
) -> None:
    async with Browser(platform, "192.0.2.31") as browser:
        main = await browser.get("/r/demo")
        paths = (
            "/r/demo/escrow", "/r/demo/escrow/follow-up", "/r/demo/escrow/receipt",
            "/r/demo/record", "/r/demo/record/code",
        )  # fmt: skip
        english = {path: await browser.get(path) for path in paths}
        spanish = {path: await browser.get(path + "?lang=es") for path in paths}
        unknown = await browser.get("/r/nowhere/record")

    assert 'href="/r/demo/record?lang=en"' in main.text
    assert 'href="/r/demo/escrow?lang=en"' in main.text
    assert 'formaction="/r/demo/escrow"' in main.text and 'name="escrow_email"' in main.text
    # "Send report" stays the form's first (default) button.
    assert main.text.index("Send report") < main.text.index("Hold my report (do not send")
    for pages in (english, spanish):
        for path, page in pages.items():
            assert page.headers["content-security-policy"] == CSP, path
            assert page.headers["cache-control"].startswith("no-store"), path
            assert page.headers["referrer-policy"] == "no-referrer", path
            assert 'id="quick-exit"' in page.text, path
            assert not re.search(r"<script(?![^>]*\bsrc=\"/r/_/)", page.text), path
            assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text), path
            for action in re.findall(r'(?:action|formaction)="([^"]+)"', page.text):
                assert action.startswith("/r/demo/"), action
    assert english["/r/demo/escrow/receipt"].status_code == 410  # nothing to show
    assert english["/r/demo/record/code"].status_code == 410
    about = english["/r/demo/escrow"].text
    assert "What is protected" in about and "What is not" in about
    assert "could technically read held reports" in about
    assert "Check a held report" in english["/r/demo/escrow/follow-up"].text
    assert 'name="receipt_code"' in english["/r/demo/escrow/follow-up"].text
    record = english["/r/demo/record"].text
    assert 'name="record_code"' in record and 'name="text"' in record
    assert "never stored" in record
    assert '<html lang="es">' in spanish["/r/demo/record"].text
    assert "Su registro privado" in spanish["/r/demo/record"].text
    assert "Qué está protegido" in spanish["/r/demo/escrow"].text
    assert unknown.status_code == 404
    from upstander.gateway.web import i18n

    assert set(i18n.TEXT["en"]) == set(i18n.TEXT["es"])
    for status in ("waiting", "matched", "released", "withdrawn", "expired"):
        for lang in ("en", "es"):
            assert i18n.TEXT[lang][f"escrow_status_{status}_help"], (status, lang)


async def test_forms_posted_without_their_csrf_token_are_refused_and_send_nothing(
    platform: Platform,
) -> None:
    entries, records = await count(platform, EscrowEntry), await count(platform, PrivateRecord)
    actions = (
        "/r/demo/escrow", "/r/demo/escrow/receipt/done", "/r/demo/escrow/sign-in",
        "/r/demo/escrow/release", "/r/demo/escrow/withdraw", "/r/demo/escrow/sign-out",
        "/r/demo/record/start", "/r/demo/record/open", "/r/demo/record/entries",
        "/r/demo/record/proof", "/r/demo/record/file", "/r/demo/record/delete",
        "/r/demo/record/report", "/r/demo/record/close", "/r/demo/record/code/done",
    )  # fmt: skip
    fields = {
        **held(escrow_email="someone@example.org"),
        "text": "a record",
        "record_code": "AAAAA-BBBBB-CCCCC-DDDDD",
    }
    async with Browser(platform, "192.0.2.32") as browser, Browser(platform, "192.0.2.33") as other:
        token = csrf_of(await browser.get("/r/demo/record"))
        await other.get("/r/demo/record")
        refused = []
        for action in actions:
            refused.append(await browser.post(action, data={**fields, "lang": "en"}))
            refused.append(await browser.post(action, data={**fields, "csrf_token": "0" * 64}))
            # Another browser's token does not match this browser's cookie.
            refused.append(await other.post(action, data={**fields, "csrf_token": token}))

    for answer in refused:
        assert answer.status_code == 403, (answer.request.url, answer.text)
        assert "This form has expired" in answer.text
    assert await count(platform, EscrowEntry) == entries
    assert await count(platform, PrivateRecord) == records


# ---- the escrow ------------------------------------------------------------------------


async def test_mistakes_in_a_held_report_are_shown_next_to_their_fields(
    platform: Platform,
) -> None:
    entries = await count(platform, EscrowEntry)
    async with Browser(platform, "192.0.2.34") as browser:
        nobody = await browser.form("/r/demo", "/r/demo/escrow", **held())
        no_platform = await browser.form(
            "/r/demo?lang=es", "/r/demo/escrow", lang="es", **held(escrow_handle="@ana")
        )
        bad_email = await browser.form("/r/demo", "/r/demo/escrow", **held(escrow_email="nope"))
        with_file = await browser.form(
            "/r/demo", "/r/demo/escrow", **held(escrow_phone="+1 555 010 2030"),
            files=[("files", ("a.txt", b"text", "text/plain"))],
        )  # fmt: skip

    assert nobody.status_code == 422 and '<a href="#escrow">' in nobody.text
    assert "give at least one way to name the person" in nobody.text
    assert 'value="held report"' not in nobody.text and "held report</textarea>" in nobody.text
    assert no_platform.status_code == 422 and '<a href="#escrow_platform">' in no_platform.text
    assert "Indique en qué plataforma" in no_platform.text
    assert 'value="@ana"' in no_platform.text
    assert bad_email.status_code == 422 and '<a href="#escrow_email">' in bad_email.text
    assert with_file.status_code == 422 and '<a href="#files">' in with_file.text
    assert await count(platform, EscrowEntry) == entries


async def _hold(browser: Browser, lang: str = "en", **fields: Any) -> str:
    """Hold a report from the report form; the receipt code shown once."""
    sent = await browser.form(f"/r/demo?lang={lang}", "/r/demo/escrow", lang=lang, **fields)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"/r/demo/escrow/receipt?lang={lang}"
    sealed = set_cookies(sent)["upstander_escrow_receipt"]
    assert sealed["httponly"] and sealed["secure"] and sealed["samesite"] == "strict"
    assert sealed["path"] == "/r/demo/escrow/receipt" and not sealed["max-age"]
    shown = await browser.get(sent.headers["location"])
    code = code_in(shown)
    assert code not in sealed.value and code.replace("-", "") not in sealed.value
    assert set_cookies(shown)["upstander_escrow_receipt"]["max-age"] == "0"
    again = await browser.get(sent.headers["location"])
    assert again.status_code == 410 and code not in again.text
    done = await browser.post(
        "/r/demo/escrow/receipt/done", data={"csrf_token": csrf_of(shown), "lang": lang}
    )
    assert done.headers["location"] == f"/r/demo/escrow/follow-up?lang={lang}"
    assert "upstander_csrf" in set_cookies(done)  # a changed cookie drops the page from bfcache
    return code


async def _check(browser: Browser, code: str, lang: str = "en") -> httpx.Response:
    """Sign in on the held report's follow-up page with `code`: the status page."""
    signed_in = await browser.form(
        f"/r/demo/escrow/follow-up?lang={lang}", "/r/demo/escrow/sign-in", lang=lang,
        receipt_code=code,
    )  # fmt: skip
    assert signed_in.status_code == 303, signed_in.text
    session = set_cookies(signed_in)["upstander_reporter"]
    assert session["httponly"] and session["secure"] and session["samesite"] == "strict"
    assert code.replace("-", "") not in session.value
    return await browser.get(signed_in.headers["location"])


async def test_two_reporters_hold_reports_naming_the_same_person_and_each_releases(
    platform: Platform,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    marker = f"Escrow-page-marker-{suffix}"
    email = f"field.director.{suffix}@demo.example"
    with json_log_lines() as lines:
        async with (
            Browser(platform, "192.0.2.41") as first,
            Browser(platform, "192.0.2.42") as second,
        ):
            code_one = await _hold(
                first, **held(description=f"{marker} one", escrow_email=f"  {email.upper()} ")
            )
            waiting = await _check(first, code_one)
            await platform.drain()
            manager = await platform.auth("case_manager@demo.example")
            before = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
            code_two = await _hold(
                second, lang="es",
                **held(description=f"{marker} two", mode="confidential",
                       reporter_name="Jo", reporter_contact="jo@example.org",
                       escrow_email=email, escrow_phone="+1 (555) 010-7788"),
            )  # fmt: skip
            matched_one = await first.get("/r/demo/escrow/follow-up?lang=en")
            matched_two = await _check(second, code_two, lang="es")

            no_mode = await first.post(
                "/r/demo/escrow/release",
                data={"csrf_token": csrf_of(matched_one), "lang": "en", "mode": "identified"},
            )
            released_one = await first.post(
                "/r/demo/escrow/release",
                data={"csrf_token": csrf_of(matched_one), "lang": "en", "mode": "anonymous"},
            )
            after_one = await first.get(released_one.headers["location"])
            await platform.drain()
            # Confidential, with the contact given when it was held.
            released_two = await second.post(
                "/r/demo/escrow/release",
                data={"csrf_token": csrf_of(matched_two), "lang": "es", "mode": "confidential"},
            )
            after_two = await second.get(released_two.headers["location"])
            await platform.drain()
            case_page = await first.get("/r/demo/follow-up")
            signed_out = await first.post(
                "/r/demo/escrow/sign-out", data={"csrf_token": csrf_of(after_one), "lang": "en"}
            )
            urls = first.urls + second.urls

    assert "Waiting" in waiting.text and 'action="/r/demo/escrow/withdraw"' in waiting.text
    assert 'action="/r/demo/escrow/release"' not in waiting.text
    assert marker not in before.text
    assert "Matched" in matched_one.text and 'action="/r/demo/escrow/release"' in matched_one.text
    assert "Coincidencia" in matched_two.text and '<html lang="es">' in matched_two.text
    # Identified asks for the staff sign-in first.
    assert no_mode.status_code == 422 and '<a href="#staff_email">' in no_mode.text
    assert released_one.status_code == 303
    assert (
        released_one.headers["location"] == "/r/demo/escrow/follow-up?lang=en&done=escrow_released"
    )
    assert "Your report was sent." in after_one.text and "Sent" in after_one.text
    assert 'href="/r/demo/follow-up?lang=en"' in after_one.text
    assert released_two.status_code == 303 and "Su denuncia fue enviada." in after_two.text
    # The same receipt code (and session) follows the case.
    assert case_page.status_code == 200 and "Received: it will be looked at soon." in case_page.text
    assert set_cookies(signed_out)["upstander_reporter"]["max-age"] == "0"

    # Two cases, linked; the second confidential with the contact given in escrow.
    listing = await platform.gateway.get("/cases/v1/cases?limit=200", headers=manager)
    async with platform.apps["cases"].state.sessionmaker() as session:
        found = (await session.scalars(select(Case).order_by(Case.created_at))).all()
    mine = [c for c in found if str(c.id) in listing.text]
    reports = []
    for case in mine:
        report = await platform.gateway.get(f"/cases/v1/cases/{case.id}/report", headers=manager)
        if marker in report.text:
            reports.append((case, report.json()))
    assert len(reports) == 2, [r for _, r in reports]
    (case_one, one), (case_two, two) = sorted(reports, key=lambda pair: pair[1]["description"])
    assert one["description"].startswith(f"{marker} one")
    assert one["reporter_mode"] == "anonymous" and two["reporter_mode"] == "confidential"
    links = await platform.gateway.get(f"/cases/v1/cases/{case_two.id}/links", headers=manager)
    assert [link["case_id"] for link in links.json()["items"]] == [str(case_one.id)]

    assert_never_kept([code_one, code_two], urls, lines)
    for name, app in platform.apps.items():
        stored = await every_row(app.state.engine)
        for trace in (code_one, code_two, code_one.replace("-", ""), BROWSER):
            assert trace not in stored, (name, trace)


async def test_a_held_report_is_withdrawn_and_never_matches(platform: Platform) -> None:
    phone = f"+44 20 7946 {uuid.uuid4().int % 10**4:04d}"
    async with Browser(platform, "192.0.2.51") as browser, Browser(platform, "192.0.2.52") as later:
        code = await _hold(browser, **held(escrow_phone=phone))
        page = await _check(browser, code)
        unconfirmed = await browser.post(
            "/r/demo/escrow/withdraw", data={"csrf_token": csrf_of(page), "lang": "en"}
        )
        withdrawn = await browser.post(
            "/r/demo/escrow/withdraw",
            data={"csrf_token": csrf_of(page), "lang": "en", "confirm": "yes"},
        )
        after = await browser.get(withdrawn.headers["location"])
        again = await browser.post(
            "/r/demo/escrow/withdraw",
            data={"csrf_token": csrf_of(page), "lang": "en", "confirm": "yes"},
        )
        other = await _hold(later, **held(escrow_phone=phone.replace(" ", "")))
        still = await _check(later, other)
        # A receipt code of a report that was sent, not held.
        sent = await later.form("/r/demo", "/r/demo/report", **held())
        shown = await later.get(sent.headers["location"])
        not_held = await _check(later, code_in(shown))

    assert unconfirmed.status_code == 422 and '<a href="#confirm-withdraw">' in unconfirmed.text
    assert withdrawn.status_code == 303 and "done=escrow_withdrawn" in withdrawn.headers["location"]
    assert "Withdrawn" in after.text and "was withdrawn and destroyed" in after.text
    assert 'action="/r/demo/escrow/withdraw"' not in after.text
    assert again.status_code == 303  # a replayed withdrawal changes nothing
    assert "Waiting" in still.text
    assert "belongs to a report that was sent" in not_held.text


async def test_a_wrong_receipt_code_is_refused_and_guessing_is_limited(
    platform: Platform,
) -> None:
    async with Browser(platform, "192.0.2.61") as browser:
        answers = [
            await browser.form(
                "/r/demo/escrow/follow-up",
                "/r/demo/escrow/sign-in",
                receipt_code=f"AAAAA-BBBBB-CCCCC-DDDD{n}",
            )
            for n in range(9)
        ]
    assert answers[0].status_code == 400 and "does not open a report here" in answers[0].text
    limited = [a for a in answers if a.status_code == 429]
    assert limited and int(limited[0].headers["retry-after"]) >= 1


# ---- the private record ----------------------------------------------------------------


async def test_a_private_record_is_started_read_added_to_proved_reported_and_deleted(
    platform: Platform,
) -> None:
    marker = f"Record-page-marker-{uuid.uuid4().hex[:8]}"
    photo = b"\x89PNG\r\n\x1a\n" + marker.encode()
    with json_log_lines() as lines:
        async with Browser(platform, "192.0.2.71") as browser:
            empty = await browser.form("/r/demo/record", "/r/demo/record/start", text="")
            started = await browser.form(
                "/r/demo/record", "/r/demo/record/start", text=f"{marker}: Tuesday, again.",
                occurred_at="2026-11-24", location="The back office",
                files=[("files", ("bruise.png", photo, "image/png"))],
            )  # fmt: skip
            session = set_cookies(started)["upstander_record"]
            shown = await browser.get(started.headers["location"])
            code = code_in(shown)
            shown_again = await browser.get(started.headers["location"])
            done = await browser.post(
                "/r/demo/record/code/done", data={"csrf_token": csrf_of(shown), "lang": "en"}
            )
            view = await browser.get(done.headers["location"])
            token = csrf_of(view)
            added = await browser.post(
                "/r/demo/record/entries",
                data={"csrf_token": token, "lang": "en", "text": "Wednesday: he apologised."},
            )
            view = await browser.get(added.headers["location"])
            entry_id = re.search(r'name="entry_id" value="([0-9a-f-]{36})"', view.text).group(1)  # type: ignore[union-attr]
            proof = await browser.post(
                "/r/demo/record/proof", data={"csrf_token": token, "lang": "en"}
            )
            file = await browser.post(
                "/r/demo/record/file",
                data={"csrf_token": token, "lang": "en", "entry_id": entry_id, "index": "0"},
            )
            closed = await browser.post(
                "/r/demo/record/close", data={"csrf_token": token, "lang": "en"}
            )
            after_close = await browser.get(closed.headers["location"])
            wrong = await browser.form(
                "/r/demo/record", "/r/demo/record/open", record_code="AAAAA-BBBBB-CCCCC-DDDDD"
            )
            opened = await browser.form(
                "/r/demo/record?lang=es", "/r/demo/record/open", lang="es", record_code=code
            )
            reopened = await browser.get(opened.headers["location"])
            unconfirmed = await browser.post(
                "/r/demo/record/delete", data={"csrf_token": csrf_of(reopened), "lang": "es"}
            )
            no_contact = await browser.post(
                "/r/demo/record/report",
                data={"csrf_token": csrf_of(reopened), "lang": "es", "mode": "confidential"},
            )
            reported = await browser.post(
                "/r/demo/record/report",
                data={
                    "csrf_token": csrf_of(reopened), "lang": "es", "mode": "confidential",
                    "reporter_name": "Sam", "reporter_contact": "sam@example.org",
                },
            )  # fmt: skip
            receipt = await browser.get(reported.headers["location"])
            receipt_code = code_in(receipt)
            await platform.drain()
            deleted = await browser.post(
                "/r/demo/record/delete",
                data={"csrf_token": csrf_of(reopened), "lang": "es", "confirm": "yes"},
            )
            gone = await browser.get(deleted.headers["location"])
            urls = browser.urls
    read_after = await platform.gateway.post(
        "/intake/v1/records/read", json={"org": "demo", "record_code": code}
    )

    assert empty.status_code == 422 and '<a href="#text">' in empty.text
    assert (
        started.status_code == 303 and started.headers["location"] == "/r/demo/record/code?lang=en"
    )
    assert session["httponly"] and session["secure"] and session["samesite"] == "strict"
    assert session["path"] == "/r/demo/record" and not session["max-age"]
    assert code not in session.value and code.replace("-", "") not in session.value
    assert shown.status_code == 200 and "the only key to your record" in shown.text
    assert shown_again.status_code == 410 and code not in shown_again.text
    assert done.headers["location"] == "/r/demo/record?lang=en"

    assert f"{marker}: Tuesday, again." in view.text and "Wednesday: he apologised." in view.text
    assert "Your record was updated." in view.text and "The back office" in view.text
    assert "happened on 2026-11-24" in view.text and "Download bruise.png" in view.text
    assert proof.status_code == 200 and proof.headers["content-type"] == "application/json"
    assert proof.headers["content-disposition"] == 'attachment; filename="record-time-proof.json"'
    assert proof.headers["cache-control"].startswith("no-store")
    proofs = proof.json()["proofs"]
    assert len(proofs) == 2
    for pack in proofs:
        document = base64.b64decode(pack["document"])
        assert hashlib.sha256(document).hexdigest() == pack["proof"]["sha256"]
        checked = await platform.gateway.post(
            "/intake/v1/records/proofs/verify",
            json={"proof": pack["proof"], "document": pack["document"]},
        )
        assert checked.json() == {"valid": True}
    assert file.status_code == 200 and file.content == photo
    assert 'filename="bruise.png"' in file.headers["content-disposition"]

    assert set_cookies(closed)["upstander_record"]["max-age"] == "0"
    assert "Your record is closed in this browser." in after_close.text
    assert wrong.status_code == 400 and "does not open a record here" in wrong.text
    assert "upstander_record" not in set_cookies(wrong)
    assert opened.status_code == 303 and opened.headers["location"] == "/r/demo/record?lang=es"
    assert "Lo que escribió" in reopened.text and marker in reopened.text
    assert unconfirmed.status_code == 422 and '<a href="#confirm-delete">' in unconfirmed.text
    assert no_contact.status_code == 422 and '<a href="#reporter_name">' in no_contact.text
    assert reported.status_code == 303 and reported.headers["location"] == "/r/demo/receipt?lang=es"
    assert receipt.status_code == 200
    assert deleted.status_code == 303 and "Su registro fue borrado." in gone.text
    assert read_after.status_code == 404

    # The report made of the record reached cases, with the contact and the record's words.
    async with platform.apps["cases"].state.sessionmaker() as db:
        cases = (await db.scalars(select(Case))).all()
    manager = await platform.auth("case_manager@demo.example")
    written = [
        (await platform.gateway.get(f"/cases/v1/cases/{c.id}/report", headers=manager)).json()
        for c in cases
    ]
    ours = [r for r in written if marker in json.dumps(r)]
    assert len(ours) == 1 and ours[0]["reporter_mode"] == "confidential"
    assert "Wednesday: he apologised." in ours[0]["description"]

    assert_never_kept([code, receipt_code], urls, lines)
    assert marker not in "\n".join(lines)
    for name, app in platform.apps.items():
        stored = await every_row(app.state.engine)
        for trace in (code, code.replace("-", ""), receipt_code, BROWSER):
            assert trace not in stored, (name, trace)


async def test_an_expired_record_session_asks_for_the_code_again(platform: Platform) -> None:
    async with Browser(platform, "192.0.2.72") as browser:
        started = await browser.form("/r/demo/record", "/r/demo/record/start", text="Once.")
        await browser.get(started.headers["location"])
        now = platform.clock.now()
        from datetime import timedelta

        platform.clock.set(now + timedelta(minutes=16))
        try:
            ended = await browser.get("/r/demo/record")
            refused = await browser.post(
                "/r/demo/record/proof", data={"csrf_token": csrf_of(ended), "lang": "en"}
            )
        finally:
            platform.clock.set(now)

    assert "Your record was closed after a while" in ended.text
    assert 'name="record_code"' in ended.text
    assert set_cookies(ended)["upstander_record"]["max-age"] == "0"
    assert refused.status_code == 303 and refused.headers["location"] == "/r/demo/record?lang=en"


async def test_the_pages_share_the_apis_per_source_limit(platform: Platform) -> None:
    """Holding reports and opening records from the page count against the same per-source
    limit as `/intake/v1/escrow` and `/intake/v1/records` called directly."""
    limits = platform.apps["gateway"].state.auth_source_limits
    entries = await count(platform, EscrowEntry)
    saved = limits.local.limit
    limits.local.limit = 3
    try:
        async with Browser(platform, "192.0.2.81") as browser:
            token = csrf_of(await browser.get("/r/demo/record"))
            opened = [
                await browser.post(
                    "/r/demo/record/open",
                    data={
                        "csrf_token": token,
                        "lang": "en",
                        "record_code": f"AAAAA-BBBBB-CCCCC-DDDD{n}",
                    },
                )
                for n in range(3)
            ]
            page = await browser.get("/r/demo")
            held_now = await browser.post(
                "/r/demo/escrow",
                data={
                    "csrf_token": csrf_of(page),
                    "lang": "en",
                    **held(escrow_email="x@example.org"),
                },
            )
        async with Browser(platform, "192.0.2.81") as api_caller:  # the same source, the API
            direct = await api_caller.post(
                "/intake/v1/records/read",
                json={"org": "demo", "record_code": "AAAAA-BBBBB-CCCCC-DDDDD"},
            )
    finally:
        limits.local.limit = saved

    assert [a.status_code for a in opened] == [400, 400, 400]
    assert held_now.status_code == 429 and int(held_now.headers["retry-after"]) >= 1
    assert "Too many attempts from here" in held_now.text
    assert direct.status_code == 429
    assert await count(platform, EscrowEntry) == entries


# ---- identified: the staff member signs in on the page for that one call -------------------

STAFF = "leader@demo.example"
PASSWORD = "upstander-demo"
WRONG = "not-the-password-8842"


async def identified_reports(platform: Platform) -> int:
    async with platform.apps["intake"].state.sessionmaker() as session:
        found = await session.scalar(
            select(func.count()).select_from(Report).where(Report.mode == "identified")
        )
        return int(found or 0)


async def assert_sign_in_revoked(platform: Platform) -> None:
    """The page's sign-in is over: its refresh token revoked, and by `sid` its access token."""
    async with platform.apps["gateway"].state.sessionmaker() as session:
        leader = await session.scalar(select(Person.id).where(Person.email == STAFF))
        newest = (
            await session.execute(
                select(RefreshToken.revoked_at, RefreshToken.family_id)
                .where(RefreshToken.person_id == leader)
                .order_by(RefreshToken.created_at.desc())
                .limit(1)
            )
        ).one()
        assert newest.revoked_at is not None
        assert await session.get(RevokedToken, f"sid:{newest.family_id}") is not None


def assert_no_secret_kept(responses: list[httpx.Response], lines: list[str]) -> None:
    """Neither the password nor a token (a JWT starts "eyJ") in a page, a cookie or a log."""
    logged = "\n".join(lines)
    assert PASSWORD not in logged and WRONG not in logged and STAFF not in logged
    assert "eyJ" not in logged
    for response in responses:
        assert PASSWORD not in response.text and WRONG not in response.text
        for cookie in response.headers.get_list("set-cookie"):
            assert "eyJ" not in cookie and PASSWORD not in cookie


async def test_a_private_record_becomes_an_identified_report_with_a_staff_sign_in(
    platform: Platform,
) -> None:
    marker = f"Record-identified-marker-{uuid.uuid4().hex[:8]}"
    with json_log_lines() as lines:
        async with Browser(platform, "192.0.2.81") as browser:
            started = await browser.form(
                "/r/demo/record", "/r/demo/record/start", text=f"{marker}: it happened again."
            )
            shown = await browser.get(started.headers["location"])
            done = await browser.post(
                "/r/demo/record/code/done", data={"csrf_token": csrf_of(shown), "lang": "en"}
            )
            view = await browser.get(done.headers["location"])
            spanish = await browser.get("/r/demo/record?lang=es")
            before = await identified_reports(platform)
            token = csrf_of(view)
            form = {"csrf_token": token, "lang": "en", "mode": "identified"}
            missing = await browser.post("/r/demo/record/report", data=form)
            wrong = await browser.post(
                "/r/demo/record/report",
                data={**form, "staff_email": STAFF, "staff_password": WRONG},
            )
            after_wrong = await identified_reports(platform)
            sent = await browser.post(
                "/r/demo/record/report",
                data={**form, "staff_email": STAFF, "staff_password": PASSWORD},
            )
            thanks = await browser.get(sent.headers["location"])
            urls = browser.urls

    assert 'id="mode-identified"' in view.text and 'id="staff_password"' in view.text
    assert 'autocomplete="current-password"' in view.text
    assert 'id="mode-identified"' in spanish.text and "Contraseña" in spanish.text
    assert missing.status_code == 422 and '<a href="#staff_email">' in missing.text
    # A wrong password: refused, nothing created, the email kept but never the password.
    assert wrong.status_code == 400, wrong.text
    assert 'value="leader@demo.example"' in wrong.text and 'value=""' in wrong.text
    assert after_wrong == before
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == "/r/demo/sent?lang=en"
    assert "sent with your name" in thanks.text
    assert await identified_reports(platform) == before + 1
    await assert_sign_in_revoked(platform)
    assert_no_secret_kept([view, missing, wrong, sent, thanks], lines)
    assert all(PASSWORD not in url and STAFF not in url for url in urls)


async def test_a_staff_member_holds_and_releases_a_report_with_their_name(
    platform: Platform,
) -> None:
    suffix = uuid.uuid4().hex[:8]
    marker = f"Escrow-identified-marker-{suffix}"
    email = f"site.lead.{suffix}@demo.example"
    named = held(
        mode="identified", description=f"{marker} staff", escrow_email=email, staff_email=STAFF
    )
    with json_log_lines() as lines:
        async with (
            Browser(platform, "192.0.2.91") as staff,
            Browser(platform, "192.0.2.92") as other,
        ):
            entries = await count(platform, EscrowEntry)
            refused = await staff.form("/r/demo", "/r/demo/escrow", **named, staff_password=WRONG)
            entries_after_refusal = await count(platform, EscrowEntry)
            code = await _hold(staff, **named, staff_password=PASSWORD)
            await _hold(other, **held(description=f"{marker} other", escrow_email=email))
            matched = await _check(staff, code)
            before = await identified_reports(platform)
            form = {"csrf_token": csrf_of(matched), "lang": "en", "mode": "identified"}
            wrong = await staff.post(
                "/r/demo/escrow/release",
                data={**form, "staff_email": STAFF, "staff_password": WRONG},
            )
            still = await staff.get("/r/demo/escrow/follow-up?lang=en")
            after_wrong = await identified_reports(platform)
            released = await staff.post(
                "/r/demo/escrow/release",
                data={**form, "staff_email": STAFF, "staff_password": PASSWORD},
            )
            after = await staff.get(released.headers["location"])
            await platform.drain()

    assert refused.status_code == 400 and entries_after_refusal == entries
    assert WRONG not in refused.text and 'value="leader@demo.example"' in refused.text
    assert "Matched" in matched.text and 'id="mode-identified"' in matched.text
    assert 'id="staff_password"' in matched.text
    assert wrong.status_code == 400 and WRONG not in wrong.text
    assert "Matched" in still.text and after_wrong == before
    assert released.status_code == 303, released.text
    assert released.headers["location"].endswith("done=escrow_released")
    assert "Your report was sent." in after.text
    assert await identified_reports(platform) == before + 1
    await assert_sign_in_revoked(platform)
    assert_no_secret_kept([refused, matched, wrong, still, released, after], lines)


async def test_an_entry_held_without_a_staff_sign_in_is_not_released_identified(
    platform: Platform,
) -> None:
    email = f"night.manager.{uuid.uuid4().hex[:8]}@demo.example"
    async with (
        Browser(platform, "192.0.2.95") as first,
        Browser(platform, "192.0.2.96") as second,
    ):
        code = await _hold(first, **held(description="anonymous hold", escrow_email=email))
        await _hold(second, **held(description="another hold", escrow_email=email))
        matched = await _check(first, code)
        before = await identified_reports(platform)
        refused = await first.post(
            "/r/demo/escrow/release",
            data={"csrf_token": csrf_of(matched), "lang": "en", "mode": "identified",
                  "staff_email": STAFF, "staff_password": PASSWORD},
        )  # fmt: skip
    # Intake's rule: only an entry made with a staff token is released identified.
    assert refused.status_code == 422 and '<a href="#mode">' in refused.text
    assert "staff token" in refused.text and PASSWORD not in refused.text
    assert await identified_reports(platform) == before
