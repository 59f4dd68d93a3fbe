"""The reporter page's per-organisation branding and embeddable mode, request by request
through the gateway of an in-process platform: an org admin (`org:write`) sets a display name
and colours (refused below WCAG AA contrast), uploads a PNG logo (stored, sanitised, served by
the gateway; SVG and oversized files refused), and lists the origins allowed to frame the
page; the page then links a stylesheet route (no inline style), shows the name, and its
`frame-ancestors` follows the list (default: 'none' with `X-Frame-Options: DENY`)."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import AsyncIterator

import httpx
import pytest
from harness import Platform, running_platform
from sqlalchemy import select

from upstander.gateway.models import Person, RefreshToken, RevokedToken
from upstander.intake.models import Report

BRANDING = "/identity/v1/orgs/current/branding"
LOGO = f"{BRANDING}/logo"
CSP_NONE = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
GOOD = {
    "display_name": "Rivera for Council",
    "accent": "#5A2D82",
    "header_background": "#5a2d82",
    "header_text": "#ffffff",
    "frame_ancestors": ["https://Rivera.example:443", "http://localhost:8080"],
}


def chunk(kind: bytes, body: bytes, *, crc: int | None = None) -> bytes:
    value = zlib.crc32(kind + body) if crc is None else crc
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", value)


def png(width: int = 2, height: int = 2, *, extra: bytes = b"", trailer: bytes = b"") -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x5a\x2d\x82" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + extra
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
        + trailer
    )


@pytest.fixture(scope="module")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("reporter-branding")) as running:
        yield running


@pytest.fixture
async def admin(platform: Platform) -> AsyncIterator[dict[str, str]]:
    headers = await platform.auth("admin@demo.example")
    yield headers
    # Every test starts from the platform's look.
    await platform.gateway.put(BRANDING, json={}, headers=headers)
    await platform.gateway.delete(LOGO, headers=headers)


async def test_without_branding_the_page_has_the_platform_look_and_refuses_every_frame(
    platform: Platform, admin: dict[str, str]
) -> None:
    shown = await platform.gateway.get(BRANDING, headers=admin)
    assert shown.status_code == 200, shown.text
    assert shown.json()["frame_ancestors"] == [] and shown.json()["logo_url"] is None
    page = await platform.gateway.get("/r/demo")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == CSP_NONE
    assert page.headers["x-frame-options"] == "DENY"
    assert "x-upstander-frame-ancestors" not in page.headers
    assert "/brand.css" not in page.text and "org-logo" not in page.text


async def test_an_admin_brands_the_page_through_a_stylesheet_and_lists_who_may_frame_it(
    platform: Platform, admin: dict[str, str]
) -> None:
    before = await platform.gateway.get(BRANDING, headers=admin)
    stale = before.headers["etag"]
    saved = await platform.gateway.put(BRANDING, json=GOOD, headers=admin)
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["accent"] == "#5a2d82"
    assert body["frame_ancestors"] == ["https://rivera.example", "http://localhost:8080"]
    # A lost update is refused.
    again = await platform.gateway.put(BRANDING, json=GOOD, headers={**admin, "If-Match": stale})
    assert again.status_code == 412, again.text
    assert again.headers["content-type"].startswith("application/problem+json")

    for lang in ("en", "es"):
        page = await platform.gateway.get(f"/r/demo?lang={lang}")
        assert page.status_code == 200
        assert "Rivera for Council" in page.text
        assert '<link rel="stylesheet" href="/r/demo/brand.css">' in page.text
        assert "style=" not in page.text and "<style" not in page.text
        csp = page.headers["content-security-policy"]
        assert csp.endswith("frame-ancestors https://rivera.example http://localhost:8080")
        assert "style-src 'self'" in csp and "'unsafe-inline'" not in csp
        assert "x-frame-options" not in page.headers
        assert "x-upstander-frame-ancestors" not in page.headers
    # The follow-up page too; the API itself never becomes frameable.
    follow = await platform.gateway.get("/r/demo/follow-up")
    assert "frame-ancestors https://rivera.example" in follow.headers["content-security-policy"]
    api = await platform.gateway.get(BRANDING, headers=admin)
    assert api.headers["x-frame-options"] == "DENY"
    assert api.headers["content-security-policy"].endswith("frame-ancestors 'none'")

    css = await platform.gateway.get("/r/demo/brand.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "--accent: #5a2d82" in css.text
    assert ".site { background: #5a2d82; color: #ffffff; }" in css.text
    assert "url(" not in css.text  # no logo yet
    assert (await platform.gateway.get("/r/nobody-here/brand.css")).text.strip() == ""

    # Emptying the list restores the default.
    cleared = await platform.gateway.put(
        BRANDING, json={**GOOD, "frame_ancestors": []}, headers=admin
    )
    assert cleared.status_code == 200
    page = await platform.gateway.get("/r/demo")
    assert page.headers["content-security-policy"] == CSP_NONE
    assert page.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"accent": "#aaaaaa"}, "contrast"),  # 2.3:1 on white
        ({"accent": "purple"}, "#rrggbb"),
        ({"accent": "#5a2d82;}body{x"}, "#rrggbb"),
        ({"header_background": "#ffff00", "header_text": "#ffffff"}, "contrast"),
        ({"header_background": "#000000", "header_text": None}, "together"),
        ({"frame_ancestors": ["http://campaign.example"]}, "localhost"),
        ({"frame_ancestors": ["https://campaign.example/embed"]}, "no path"),
        ({"frame_ancestors": ["*"]}, "origin"),
        ({"frame_ancestors": ["https://a.example 'unsafe-inline'"]}, "origin"),
    ],
)
async def test_colours_without_aa_contrast_and_bad_origins_are_refused(
    platform: Platform, admin: dict[str, str], change: dict[str, object], field: str
) -> None:
    refused = await platform.gateway.put(BRANDING, json={**GOOD, **change}, headers=admin)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert field in refused.text
    assert (await platform.gateway.get(BRANDING, headers=admin)).json()["accent"] is None


async def test_only_an_org_admin_with_org_write_changes_the_branding(platform: Platform) -> None:
    manager = await platform.auth("case_manager@demo.example")
    assert (await platform.gateway.get(BRANDING, headers=manager)).status_code == 403
    assert (await platform.gateway.put(BRANDING, json=GOOD, headers=manager)).status_code == 403
    sent = await platform.gateway.put(
        LOGO, files={"file": ("logo.png", png(), "image/png")}, headers=manager
    )
    assert sent.status_code == 403
    assert (await platform.gateway.put(BRANDING, json=GOOD)).status_code == 401
    # An admin's token narrowed to reading.
    token = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "admin@demo.example",
            "password": "upstander-demo",
            "org": "demo",
            "scope": "org:read",
        },
    )
    assert token.status_code == 200, token.text
    reader = {"authorization": f"Bearer {token.json()['access_token']}"}
    assert (await platform.gateway.get(BRANDING, headers=reader)).status_code == 200
    refused = await platform.gateway.put(BRANDING, json=GOOD, headers=reader)
    assert refused.status_code == 403, refused.text


async def test_the_logo_is_a_sanitised_png_stored_and_served_by_the_gateway(
    platform: Platform, admin: dict[str, str]
) -> None:
    assert (await platform.gateway.get("/r/demo/brand/logo.png")).status_code == 404
    text = chunk(b"tEXt", b"Comment\x00<script>alert(1)</script>")
    upload = png(extra=text, trailer=b"<svg onload=alert(1)>")
    sent = await platform.gateway.put(
        LOGO, files={"file": ("logo.png", upload, "image/png")}, headers=admin
    )
    assert sent.status_code == 200, sent.text
    assert sent.json()["logo_url"] == "/r/demo/brand/logo.png"

    served = await platform.gateway.get("/r/demo/brand/logo.png")
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == png()  # the critical chunks only: no text, nothing after IEND
    assert b"script" not in served.content and b"svg" not in served.content

    page = await platform.gateway.get("/r/demo")
    assert '<span class="org-logo" aria-hidden="true"></span>' in page.text
    css = await platform.gateway.get("/r/demo/brand.css")
    assert 'url("/r/demo/brand/logo.png")' in css.text  # this gateway's, never another site's
    assert "http" not in css.text

    removed = await platform.gateway.delete(LOGO, headers=admin)
    assert removed.status_code == 200 and removed.json()["logo_url"] is None
    assert (await platform.gateway.get("/r/demo/brand/logo.png")).status_code == 404


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
         "image/svg+xml", 415),
        (b"GIF89a....", "image/gif", 415),
        (b"<svg/>", "image/png", 422),  # says PNG, is not
        (png()[:40], "image/png", 422),  # cut short
        (png(5000, 1), "image/png", 422),  # too wide
        (png().replace(b"IEND", b"IEND")[:-4] + b"\x00\x00\x00\x00", "image/png", 422),  # CRC
        (png(extra=chunk(b"ZZZZ", b"x")), "image/png", 422),  # unknown critical chunk
        (png(extra=chunk(b"zTXt", b"a" * 100_001)), "image/png", 413),
    ],
)  # fmt: skip
async def test_other_images_and_damaged_or_oversized_pngs_are_refused(
    platform: Platform, admin: dict[str, str], content: bytes, content_type: str, status: int
) -> None:
    sent = await platform.gateway.put(
        LOGO, files={"file": ("logo", content, content_type)}, headers=admin
    )
    assert sent.status_code == status, sent.text
    assert sent.headers["content-type"].startswith("application/problem+json")
    assert (await platform.gateway.get("/r/demo/brand/logo.png")).status_code == 404


async def test_the_api_is_documented_with_its_scopes(platform: Platform) -> None:
    document = (await platform.gateway.get("/openapi.json")).json()
    paths = document["paths"]
    assert {"get", "put"} <= set(paths[BRANDING])
    assert {"put", "delete"} <= set(paths[LOGO])
    assert "multipart/form-data" in paths[LOGO]["put"]["requestBody"]["content"]
    put = paths[BRANDING]["put"]
    assert any("org:write" in scopes for item in put["security"] for scopes in item.values())


# ---- an identified report from the page ------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')
PASSWORD = "upstander-demo"


def page_client(platform: Platform, address: str) -> httpx.AsyncClient:
    """A browser-like client of its own (cookie jar, source address)."""
    gateway = platform.apps["gateway"]
    transport = httpx.ASGITransport(gateway, client=(address, 4711), raise_app_exceptions=False)
    host = httpx.URL(gateway.state.settings.service_url("gateway")).netloc.decode()
    return httpx.AsyncClient(transport=transport, base_url=f"https://{host}")


async def identified_post(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    page = await client.get("/r/demo")
    found = CSRF.search(page.text)
    assert found, page.text
    data = {
        "csrf_token": found.group(1),
        "lang": "en",
        "mode": "identified",
        "description": "The scheduler keeps moving my shifts since I complained.",
        "staff_email": email,
        "staff_password": password,
    }
    return await client.post("/r/demo/report", data=data)


async def reports(platform: Platform) -> list[tuple[str, str | None]]:
    async with platform.apps["intake"].state.sessionmaker() as session:
        rows = await session.execute(select(Report.mode, Report.receipt_lookup))
        return [(mode, lookup) for mode, lookup in rows.all()]


async def test_a_staff_member_reports_with_their_name_signed_in_only_for_that_one_report(
    platform: Platform, caplog: pytest.LogCaptureFixture
) -> None:
    before = await reports(platform)
    async with page_client(platform, "203.0.113.41") as client:
        offered = await client.get("/r/demo?lang=es")
        assert 'id="mode-identified"' in offered.text and 'id="staff_password"' in offered.text
        assert 'autocomplete="current-password"' in offered.text
        sent = await identified_post(client, "leader@demo.example", PASSWORD)
        assert sent.status_code == 303, sent.text
        assert sent.headers["location"] == "/r/demo/sent?lang=en"
        # No token (a JWT starts "eyJ") or refresh token handed to the browser.
        assert all("eyJ" not in c for c in sent.headers.get_list("set-cookie"))
        done = await client.get(sent.headers["location"])
        assert done.status_code == 200 and "sent with your name" in done.text
    after = await reports(platform)
    assert len(after) == len(before) + 1
    assert ("identified", None) in after and ("identified", None) not in before
    # The sign-in the page made is over: its refresh token revoked (and, by sid, the token).
    async with platform.apps["gateway"].state.sessionmaker() as session:
        leader = await session.scalar(
            select(Person.id).where(Person.email == "leader@demo.example")
        )
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
    assert PASSWORD not in caplog.text and "leader@demo.example" not in caplog.text


async def test_a_wrong_password_is_refused_without_echoing_it_and_then_limited(
    platform: Platform,
) -> None:
    before = await reports(platform)
    async with page_client(platform, "203.0.113.42") as client:
        missing = await identified_post(client, "leader@demo.example", "")
        assert missing.status_code == 422
        assert 'aria-describedby="staff_password-error"' in missing.text
        wrong = await identified_post(client, "leader@demo.example", "not-the-password-7731")
        assert wrong.status_code == 400
        assert "did not sign you in" in wrong.text
        assert "not-the-password-7731" not in wrong.text
        assert 'value="leader@demo.example"' in wrong.text  # the email is kept, not the password
        # The password grant's per-account limit (the test platform raises it: lower it
        # back to a person's scale for this test).
        limiter = platform.apps["gateway"].state.auth_account_limiter
        limit, limiter.limit = limiter.limit, 5
        statuses = []
        try:
            for _ in range(8):
                answer = await identified_post(client, "nobody-5521@demo.example", "guess-123")
                statuses.append(answer.status_code)
                if answer.status_code == 429:
                    assert int(answer.headers["retry-after"]) > 0
                    assert "Too many attempts" in answer.text
                    break
            # The same account through the API is limited too: one limit, not two.
            api = await client.post(
                "/auth/token",
                data={"grant_type": "password", "username": "nobody-5521@demo.example",
                      "password": "guess-123", "org": "demo"},
            )  # fmt: skip
            assert api.status_code == 429, api.text
        finally:
            limiter.limit = limit
        assert statuses == [400] * 5 + [429], statuses
    assert await reports(platform) == before


async def test_an_organisation_with_single_sign_on_tells_its_staff_to_use_it(
    platform: Platform, admin: dict[str, str]
) -> None:
    sso = "/identity/v1/orgs/current/sso"
    config = {"issuer": "https://idp.example", "client_id": "upstander", "client_secret": "s"}
    made = await platform.gateway.put(sso, json=config, headers=admin)
    assert made.status_code in (200, 201), made.text
    try:
        page = await platform.gateway.get("/r/demo")
        assert "single sign-on" in page.text
    finally:
        off = await platform.gateway.put(sso, json={**config, "enabled": False}, headers=admin)
        assert off.status_code == 200, off.text
    assert "single sign-on" not in (await platform.gateway.get("/r/demo")).text
