"""An identified report from the reporter page: the staff member signs in on the form itself.

The gateway owns identity, so the check is the password grant's own code (`password_grant`)
behind the same limits as `POST /auth/token`: the per-source window (keyed by the same hashed
address as the middleware on `/auth/`) and the per-account one. The access token it issues is
used for exactly one call, `POST /intake/v1/reports` with `mode: identified`, and its sign-in
(refresh token and, by `sid`, the access token) is revoked before the page answers: it is never
in a cookie, a form, a URL or a log. The password is never echoed back into the form.
Organisations with single sign-on are told to report from the staff app with it (the page
cannot run an SSO redirect without keeping a token in the browser).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response

from upstander.gateway.auth.api import _limit_account
from upstander.gateway.auth.store import SsoProvider
from upstander.gateway.auth.tokens import hash_refresh_token, password_grant, revoke_family
from upstander.gateway.edge.ratelimit import _source
from upstander.gateway.models import Org, RefreshToken
from upstander.gateway.web import i18n
from upstander.gateway.web.upstream import Unavailable, call
from upstander.kit.errors import ProblemError, RateLimited

router = APIRouter(tags=["reporter page"])


async def org_has_sso(request: Request, slug: str) -> bool:
    async with request.app.state.sessionmaker() as session:
        found = await session.scalar(
            select(SsoProvider.id)
            .join(Org, Org.id == SsoProvider.org_id)
            .where(Org.slug == slug, SsoProvider.enabled.is_(True))
            .limit(1)
        )
    return found is not None


async def _limits(request: Request, email: str) -> None:
    """The password grant's limits: per source (as the `/auth/` middleware counts), then per
    account. RateLimited when either is spent."""
    limits = request.app.state.auth_source_limits
    retry = await limits.hit("source:" + _source(request.scope, limits))
    if retry:
        raise RateLimited(retry, "Too many sign-in attempts from this address.")
    await _limit_account(request, "password", email, None)


class StaffRefused(Exception):
    """The staff sign-in was refused: the message to show by the email field, the status and
    headers (`Retry-After`) to answer with."""

    def __init__(self, message: str, status: int, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.headers = headers or {}


@asynccontextmanager
async def staff_token(
    request: Request, org: str, lang: str, email: str, password: str
) -> AsyncIterator[str]:
    """A one-call staff access token for `email` in `org`: checked by the password grant's own
    code behind its limits (StaffRefused otherwise), and its sign-in (refresh token and, by
    `sid`, the access token) revoked when the block ends, whatever happens in it."""
    words = i18n.words(lang)
    try:
        await _limits(request, email)
    except RateLimited as exc:
        retry = exc.headers.get("Retry-After", "60") if exc.headers else "60"
        raise StaffRefused(
            words["too_many"].format(seconds=retry), 429, {"Retry-After": retry}
        ) from None
    state = request.app.state
    async with state.sessionmaker() as session:
        try:
            issued = await password_grant(
                session, state.token_issuer, username=email, password=password, org_slug=org
            )
        except ProblemError:
            await session.rollback()
            raise StaffRefused(words["error_staff_credentials"], 400) from None
        await session.commit()
    try:
        yield issued.access_token
    finally:
        # The sign-in ends with this one call: refresh token and access token revoked.
        async with state.sessionmaker() as session:
            family = await session.scalar(
                select(RefreshToken.family_id).where(
                    RefreshToken.token_hash == hash_refresh_token(issued.refresh_token or "")
                )
            )
            if family is not None:
                await revoke_family(session, family, state.clock)
                await session.commit()


def staff_errors(values: dict[str, Any], words: dict[str, str]) -> dict[str, str]:
    """The staff sign-in fields of an identified report, checked as the report form does."""
    errors: dict[str, str] = {}
    if not values.get("staff_email") or len(values["staff_email"]) > 320:
        errors["staff_email"] = words["error_staff_sign_in"]
    if not values.get("staff_password") or len(values["staff_password"]) > 1024:
        errors["staff_password"] = words["error_staff_sign_in"]
    return errors


async def send_identified(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    values: dict[str, Any],
    report: dict[str, Any],
    files: list[tuple[str, bytes, str]],
    password: str,
    *,
    show_form: Callable[..., Response],
) -> Response:
    from upstander.gateway.web.pages import redirect, render  # no import cycle at load

    words = i18n.words(lang)
    email = str(values.get("staff_email") or "")
    try:
        async with staff_token(request, org, lang, email, password) as token:
            body = {**report, "mode": "identified"}
            body.pop("reporter", None)
            parts: list[tuple[str, Any]] = [
                ("report", (None, json.dumps(body), "application/json"))
            ]
            parts += [("files", file) for file in files]
            try:
                answer = await call(
                    request, "intake", "POST", "/intake/v1/reports", files=parts, token=token,
                )  # fmt: skip
            except Unavailable:
                return render(
                    request, "message.html", org=org, lang=lang, org_name=form.get("org_name"),
                    status_code=503, kind="unavailable",
                )  # fmt: skip
    except StaffRefused as refused:
        answer_ = show_form(
            request, org, lang, form, values=values,
            errors={"staff_email": refused.message}, status_code=refused.status,
        )  # fmt: skip
        answer_.headers.update(refused.headers)
        return answer_
    if answer.status == 201:
        return redirect(org, lang, "/sent")
    detail = answer.detail()
    return show_form(
        request, org, lang, form, values=values,
        errors={"form": words["error_report"].format(detail=detail)},
        status_code=422 if answer.status < 500 else 503,
    )  # fmt: skip


@router.get("/r/{org}/sent", include_in_schema=False)
async def identified_sent(request: Request, org: str) -> Response:
    from upstander.gateway.web.pages import _safe_form, not_found, render

    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    return render(
        request, "message.html", org=org, lang=lang, org_name=form.get("org_name"),
        kind="identified_sent",
    )  # fmt: skip
