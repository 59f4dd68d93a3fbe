"""The reporter's web page at `/r/{org}`, request by request through the gateway of a whole
in-process platform: the form in English and Spanish, the receipt shown once, follow-up with
the receipt code (status, thread, reply, files, retaliation check-ins, sign out), and what
keeps it safe — headers, CSRF refusal, cookie flags, no address or browser kept anywhere."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest
from harness import Platform, running_platform
from sqlalchemy import inspect, select, text, update
from timing_support import json_log_lines

from upstander.cases.models import Case, CaseStatus
from upstander.intake.models import Report

ADDRESS = "203.0.113.77"
BROWSER = "Mozilla/5.0 reporter-page-marker-5521"
TRACES = {"User-Agent": BROWSER, "X-Forwarded-For": "198.51.100.9", "X-Real-IP": "198.51.100.9"}
CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
CODE = re.compile(r'id="receipt-code"[^>]*>([^<]+)<')
MARKER = "Quokka-marker-8841: he grabbed my arm after the rally"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@pytest.fixture(scope="module")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("reporter-page")) as running:
        yield running


def browser(platform: Platform, address: str = ADDRESS) -> httpx.AsyncClient:
    """A browser-like client (its own cookie jar) at `address`, sending a user agent, over
    HTTPS (so the cookies are Secure)."""
    gateway = platform.apps["gateway"]
    transport = httpx.ASGITransport(gateway, client=(address, 4711), raise_app_exceptions=False)
    host = httpx.URL(gateway.state.settings.service_url("gateway")).netloc.decode()
    return httpx.AsyncClient(transport=transport, base_url=f"https://{host}", headers=TRACES)


def csrf_of(page: httpx.Response) -> str:
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def set_cookies(response: httpx.Response) -> dict[str, Any]:
    """The response's cookies by name, each a `Morsel` (attributes by lower-case name)."""
    jar: dict[str, Any] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            jar[name] = morsel
    return jar


def report_form(token: str, **fields: Any) -> dict[str, Any]:
    return {"csrf_token": token, "lang": "en", "mode": "anonymous", **fields}


async def send_report(
    client: httpx.AsyncClient, files: list[Any] | None = None, **fields: Any
) -> httpx.Response:
    page = await client.get("/r/demo")
    data = report_form(csrf_of(page), description=MARKER, **fields)
    return await client.post("/r/demo/report", data=data, files=files or [])


async def receipt_code(client: httpx.AsyncClient, **fields: Any) -> str:
    sent = await send_report(client, **fields)
    assert sent.status_code == 303, sent.text
    shown = await client.get(sent.headers["location"])
    found = CODE.search(shown.text)
    assert found, shown.text
    return found.group(1)


async def sign_in(client: httpx.AsyncClient, code: str) -> httpx.Response:
    page = await client.get("/r/demo/follow-up")
    return await client.post(
        "/r/demo/follow-up/sign-in",
        data={"csrf_token": csrf_of(page), "lang": "en", "receipt_code": code},
    )


async def case_of(platform: Platform, code_report_id: str) -> str:
    async with platform.apps["cases"].state.sessionmaker() as session:
        found = await session.scalar(
            select(Case.id).where(Case.report_id == uuid.UUID(code_report_id))
        )
    assert found is not None
    return str(found)


def report_id_in(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["report"])


# ---- the pages -------------------------------------------------------------------------


async def test_the_page_shows_the_orgs_form_and_resources_in_english_and_spanish(
    platform: Platform,
) -> None:
    async with browser(platform) as client:
        english = await client.get("/r/demo")
        spanish = await client.get("/r/demo?lang=es")
        preferred = await client.get("/r/demo", headers={"Accept-Language": "es-MX,es;q=0.9"})
        ranked = await client.get("/r/demo", headers={"Accept-Language": "fr, en;q=0.5, es;q=0.4"})

    assert english.status_code == 200 and english.headers["content-type"].startswith("text/html")
    assert '<html lang="en">' in english.text and "Demo Campaign" in english.text
    for words in ("Sexual harassment", "Anonymously", "Confidentially", "With your name",
                  "Is there anyone who should not see this report?", "1-800-656-4673",
                  "Is it still happening?", 'type="file"', "Quick exit"):  # fmt: skip
        assert words in english.text, words
    assert '<html lang="es">' in spanish.text
    for words in ("Acoso sexual", "De forma anónima", "¿Sigue ocurriendo?", "Salida rápida"):
        assert words in spanish.text, words
    assert '<html lang="es">' in preferred.text
    assert '<html lang="en">' in ranked.text


async def test_every_page_is_strict_uncached_and_has_a_quick_exit(platform: Platform) -> None:
    async with browser(platform) as client:
        pages = {
            path: await client.get(path)
            for path in ("/r/demo", "/r/demo/follow-up", "/r/demo/receipt", "/r/nowhere")
        }
        style = await client.get("/r/_/reporter.css")
        script = await client.get("/r/_/quick-exit.js")

    for path, page in pages.items():
        assert page.headers["content-security-policy"] == CSP, path
        assert page.headers["referrer-policy"] == "no-referrer", path
        assert page.headers["cache-control"].startswith("no-store"), path
        assert page.headers["x-frame-options"] == "DENY", path
        assert page.headers["x-content-type-options"] == "nosniff", path
        assert 'id="quick-exit" href="https://www.google.com/" rel="noreferrer noopener"' in (
            page.text
        ), path
        # No inline script or style, nothing from another origin.
        assert not re.search(r"<script(?![^>]*\bsrc=\"/r/_/)", page.text), path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", page.text), path
        for url in re.findall(r'(?:src|href)="([^"]+)"', page.text):
            assert url.startswith(
                ("/r/", "#", "https://www.google.com/", "tel:", "https://www.")
            ), url
        assert re.search(r'<link rel="stylesheet" href="/r/_/reporter.css">', page.text)
    assert pages["/r/nowhere"].status_code == 404
    assert pages["/r/demo/receipt"].status_code == 410  # nothing to show
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    assert script.status_code == 200 and "location.replace" in script.text
    assert style.headers["cache-control"].startswith("no-store")


async def test_a_form_posted_without_its_csrf_token_is_refused_and_nothing_is_sent(
    platform: Platform,
) -> None:
    async with platform.apps["intake"].state.sessionmaker() as session:
        before = len((await session.scalars(select(Report.id))).all())
    async with browser(platform) as client, browser(platform) as other:
        page = await client.get("/r/demo")
        token = csrf_of(page)
        missing = await client.post("/r/demo/report", data=report_form("", description=MARKER))
        forged = await client.post("/r/demo/report", data=report_form("0" * 64, description=MARKER))
        await other.get("/r/demo")
        # Another browser's valid token does not match this browser's cookie.
        crossed = await other.post("/r/demo/report", data=report_form(token, description=MARKER))
        async with browser(platform) as fresh:  # never saw the page: no cookie
            no_cookie = await fresh.post(
                "/r/demo/report", data=report_form(token, description=MARKER)
            )
        signed_out = await client.post("/r/demo/follow-up/sign-out", data={"lang": "en"})
        sign_in = await client.post(
            "/r/demo/follow-up/sign-in", data={"receipt_code": "K7QW2-9XMDA-4RT0P-ZZ81C"}
        )
    async with platform.apps["intake"].state.sessionmaker() as session:
        after = len((await session.scalars(select(Report.id))).all())

    for refused in (missing, forged, crossed, no_cookie, signed_out, sign_in):
        assert refused.status_code == 403, refused.text
        assert "This form has expired" in refused.text
    assert after == before


async def test_mistakes_are_shown_next_to_their_fields_and_the_answers_are_kept(
    platform: Platform,
) -> None:
    async with browser(platform) as client:
        page = await client.get("/r/demo?lang=es")
        answered = await client.post(
            "/r/demo/report",
            data={
                "csrf_token": csrf_of(page),
                "lang": "es",
                "mode": "confidential",
                "description": "",
                "location": "La oficina de campo",
                "occurred_at": "not a date",
            },
        )

    assert answered.status_code == 422
    assert '<html lang="es">' in answered.text
    assert 'role="alert"' in answered.text
    for field in ("description", "occurred_at", "reporter_name", "reporter_contact"):
        assert f'<a href="#{field}">' in answered.text, field
        assert f'id="{field}-error"' in answered.text, field
    assert re.search(r'id="description"[^>]*aria-describedby="description-help description-error"'
                     r'[^>]*aria-invalid="true"', answered.text)  # fmt: skip
    assert 'value="La oficina de campo"' in answered.text
    assert 'value="confidential" aria-describedby="mode-confidential-help" checked' in (
        answered.text
    )


# ---- the whole flow --------------------------------------------------------------------


async def test_a_reporter_reports_keeps_the_code_and_follows_up_with_it(
    platform: Platform,
) -> None:
    async with browser(platform) as client:
        sent = await send_report(
            client,
            files=[("files", ("what-he-wrote.txt", b"the text he sent", "text/plain"))],
            categories=["sexual_harassment", "not-a-category"],
            occurred_at="2026-11-20",
            location="Rally, back room",
            people="The field director",
            witnesses="A volunteer\nThe driver",
            keep_out="The deputy campaign manager",
            desired_outcome="That it stops.",
            q_ongoing="yes",
        )
        sealed = set_cookies(sent)["upstander_receipt"]
        shown = await client.get(sent.headers["location"])
        cleared = set_cookies(shown)["upstander_receipt"]
        shown_again = await client.get(sent.headers["location"])
        code = CODE.search(shown.text).group(1)  # type: ignore[union-attr]

        # The report arrived as the API would have taken it.
        await platform.drain()
        before_sign_in = await client.get("/r/demo/follow-up")
        signed_in = await sign_in(client, code)
        session = set_cookies(signed_in)["upstander_reporter"]
        report_id = report_id_in(session.value)
        case_id = await case_of(platform, report_id)
        manager = await platform.auth("case_manager@demo.example")
        reply = await platform.gateway.post(
            f"/cases/v1/cases/{case_id}/messages",
            json={"body": "Thank you. Were you hurt?"},
            headers=manager,
        )
        assert reply.status_code == 201, reply.text
        followed = await client.get("/r/demo/follow-up")
        written = await client.post(
            "/r/demo/follow-up/messages",
            data={"csrf_token": csrf_of(followed), "lang": "en", "body": "No, but I am scared."},
        )
        after_reply = await client.get(written.headers["location"])
        uploaded = await client.post(
            "/r/demo/follow-up/attachments",
            data={"csrf_token": csrf_of(followed), "lang": "en"},
            files=[("file", ("photo.png", b"\x89PNG\r\n\x1a\nbruise", "image/png"))],
        )
        after_upload = await client.get(uploaded.headers["location"])
        report = await platform.gateway.get(f"/cases/v1/cases/{case_id}/report", headers=manager)
        thread = await platform.gateway.get(f"/cases/v1/cases/{case_id}/messages", headers=manager)

    assert sent.status_code == 303
    assert sent.headers["location"] == "/r/demo/receipt?lang=en"
    assert code not in sent.headers["location"] and code not in sealed.value
    assert sealed["httponly"] and sealed["secure"] and sealed["samesite"] == "strict"
    assert sealed["path"] == "/r/demo/receipt" and not sealed["max-age"]
    assert re.fullmatch(r"[0-9A-Z]{5}(-[0-9A-Z]{5}){3}", code)
    assert shown.status_code == 200 and "the only key to your report" in shown.text
    assert cleared["max-age"] == "0" and cleared.value == ""
    assert shown_again.status_code == 410 and code not in shown_again.text
    assert "Help and support" in shown.text  # resources after sending too

    assert before_sign_in.status_code == 200 and 'name="receipt_code"' in before_sign_in.text
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/r/demo/follow-up?lang=en"
    assert session.value != code and code.replace("-", "") not in session.value
    assert session["httponly"] and session["secure"] and session["samesite"] == "strict"
    assert session["path"] == "/r/demo" and session["max-age"] == "900"

    assert "Thank you. Were you hurt?" in followed.text
    assert "The people handling your report" in followed.text
    assert "Received: it will be looked at soon." in followed.text
    assert written.status_code == 303
    assert written.headers["location"] == "/r/demo/follow-up?lang=en&done=message_sent"
    assert "Your message was sent." in after_reply.text
    assert "No, but I am scared." in after_reply.text
    assert uploaded.status_code == 303 and "Your file was added." in after_upload.text
    assert [m["body"] for m in thread.json()["items"]][-1] == "No, but I am scared."
    written_report = report.json()
    assert written_report["categories"] == ["sexual_harassment"]
    assert written_report["description"].startswith(
        "Is there anyone who should not see this report? (optional)\n"
        "- The deputy campaign manager\n\n" + MARKER
    )
    assert "Is it still happening? Yes" in written_report["description"]
    assert written_report["location"] == "Rally, back room"
    assert [w["name"] for w in written_report["witnesses"]] == ["A volunteer", "The driver"]
    assert written_report["desired_outcome"] == "That it stops."


async def test_a_reporter_answers_a_retaliation_check_in_and_signs_out(
    platform: Platform,
) -> None:
    async with browser(platform) as client:
        code = await receipt_code(client)
        await platform.drain()
        signed_in = await sign_in(client, code)
        report_id = report_id_in(set_cookies(signed_in)["upstander_reporter"].value)
        case_id = await case_of(platform, report_id)
        closed_at = platform.clock.now()
        async with platform.apps["cases"].state.sessionmaker() as session, session.begin():
            await session.execute(
                update(Case)
                .where(Case.id == uuid.UUID(case_id))
                .values(status=CaseStatus.CLOSED, closed_at=closed_at)
            )
        platform.clock.set(closed_at + timedelta(days=30))
        try:
            assert await platform.apps["cases"].state.deadlines.run_once() >= 1
            # The session token outlived: the page says so and asks for the code again.
            expired = await client.get("/r/demo/follow-up")
            await sign_in(client, code)
            asked = await client.get("/r/demo/follow-up?lang=es")
            checkin_id = re.search(r"/follow-up/checkins/([0-9a-f-]{36})", asked.text).group(1)  # type: ignore[union-attr]
            unanswered = await client.post(
                f"/r/demo/follow-up/checkins/{checkin_id}",
                data={"csrf_token": csrf_of(asked), "lang": "es"},
            )
            answered = await client.post(
                f"/r/demo/follow-up/checkins/{checkin_id}",
                data={
                    "csrf_token": csrf_of(asked),
                    "lang": "es",
                    "retaliation": "yes",
                    "details": "Me quitaron turnos",
                },
            )
            after = await client.get(answered.headers["location"])
            signed_out = await client.post(
                "/r/demo/follow-up/sign-out", data={"csrf_token": csrf_of(after), "lang": "es"}
            )
            gone = set_cookies(signed_out)["upstander_reporter"]
            landing = await client.get(signed_out.headers["location"])
        finally:
            platform.clock.set(closed_at)

    assert "Your session ended" in expired.text and 'name="receipt_code"' in expired.text
    assert "Seguimiento sobre represalias" in asked.text and "Cerrada." in asked.text
    assert unanswered.status_code == 422 and "Elija sí o no." in unanswered.text
    assert answered.status_code == 303
    assert "Gracias, su respuesta quedó registrada." in after.text
    assert "Respondida el" in after.text and f"/checkins/{checkin_id}" not in after.text
    assert gone["max-age"] == "0" and gone["path"] == "/r/demo"
    assert landing.status_code == 200 and "Cerró la sesión." in landing.text
    assert 'name="receipt_code"' in landing.text


async def test_a_wrong_code_is_refused_and_repeated_guesses_are_limited(
    platform: Platform,
) -> None:
    async with browser(platform, address="192.0.2.201") as client:  # a source of its own
        wrong = await sign_in(client, "AAAAA-BBBBB-CCCCC-DDDDD")
        short = await sign_in(client, "ABC")
        answers = [await sign_in(client, f"AAAAA-BBBBB-CCCCC-DDDD{n}") for n in range(8)]

    assert wrong.status_code == 400 and "does not open a report here" in wrong.text
    assert "upstander_reporter" not in set_cookies(wrong)
    assert short.status_code == 400
    limited = [a for a in answers if a.status_code == 429]
    assert limited, [a.status_code for a in answers]
    assert int(limited[0].headers["retry-after"]) >= 1
    assert "Too many attempts" in limited[0].text


async def test_nothing_keeps_the_reporters_address_or_browser(platform: Platform) -> None:
    with json_log_lines() as lines:
        async with browser(platform) as client:
            code = await receipt_code(client, files=None)
            await platform.drain()
            await sign_in(client, code)
            page = await client.get("/r/demo/follow-up")
            await client.post(
                "/r/demo/follow-up/messages",
                data={"csrf_token": csrf_of(page), "lang": "en", "body": "One more thing."},
            )
            await platform.drain()

    assert lines, "the platform logged nothing"
    page_lines = [json.loads(line) for line in lines if '"/r/' in line]
    assert page_lines, "no access line for the page"
    for entry in page_lines:  # kept to the hour, without request id
        moment = datetime.fromisoformat(entry["time"])
        assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0), entry
        assert not entry.get("request_id"), entry
    logged = "\n".join(lines)
    for trace in (ADDRESS, BROWSER, "198.51.100.9", code):
        assert trace not in logged, trace
    for name, app in platform.apps.items():
        stored = await _every_row(app.state.engine)
        for trace in (ADDRESS, BROWSER, "198.51.100.9", code, code.replace("-", "")):
            assert trace not in stored, (name, trace)


async def _every_row(engine: Any) -> str:
    """Every row of every table, as text (bytes read as latin-1)."""
    async with engine.connect() as connection:
        tables = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        dumped: list[str] = []
        for table in tables:
            rows = (await connection.execute(text(f'SELECT * FROM "{table}"'))).all()
            for row in rows:
                for value in row:
                    if isinstance(value, memoryview):
                        value = bytes(value)
                    dumped.append(
                        value.decode("latin-1") if isinstance(value, bytes) else str(value)
                    )
    return "\n".join(dumped)


async def test_only_the_page_itself_is_in_the_api_document(platform: Platform) -> None:
    """`GET /r/{org}` is part of the public surface; the page's form posts are not API."""
    spec = (await platform.gateway.get("/openapi.json")).json()

    documented = [path for path in spec["paths"] if path.startswith("/r/")]
    assert documented == ["/r/{org}"]
    operation = spec["paths"]["/r/{org}"]["get"]
    assert operation["operationId"] == "get_reporter_page"
    assert "text/html" in operation["responses"]["200"]["content"]
    assert "text/html" in operation["responses"]["404"]["content"]


async def test_before_the_case_opens_the_page_says_it_is_waiting_and_takes_files(
    platform: Platform,
) -> None:
    async with browser(platform, address="192.0.2.202") as client:
        code = await receipt_code(client)
        await sign_in(client, code)  # the report is in; its case is not opened yet
        waiting = await client.get("/r/demo/follow-up?lang=es")
        uploaded = await client.post(
            "/r/demo/follow-up/attachments",
            data={"csrf_token": csrf_of(waiting), "lang": "es"},
            files=[("file", ("nota.txt", b"lo que vi", "text/plain"))],
        )
        empty = await client.post(
            "/r/demo/follow-up/messages", data={"csrf_token": csrf_of(waiting), "lang": "es"}
        )
        await platform.drain()

    assert waiting.status_code == 200
    assert "espera a que la abran" in waiting.text and 'name="body"' not in waiting.text
    assert uploaded.status_code == 303 and "done=file_added" in uploaded.headers["location"]
    assert empty.status_code == 422 and "Escriba un mensaje primero." in empty.text
