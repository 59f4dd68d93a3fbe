"""The reporter page's private record (`/r/{org}/record`) and matching escrow
(`/r/{org}/escrow`): the same server-rendered, JavaScript-free pages as pages.py, calling the
public routes of intake (docs/escrow.md) through the proxy's pool (`upstream.py`).

- A record code is never in a URL. The record is opened with a POST form; for the next
  quarter of an hour the code rides in a session cookie (`upstander_record`, HttpOnly,
  SameSite=Strict, path `/r/{org}/record`) sealed under the deployment's key-encryption key
  with its deadline inside the seal, because every record route wants the code itself (there
  is no record token). The new code is shown once, as the receipt code is.
- An escrow entry is made from the report form (its "hold my report" button posts the same
  form here), its receipt code shown once; follow-up exchanges the code with the very
  `POST /auth/receipt` handler (its limits), and the reporter token in the follow-up session
  cookie reads, releases or withdraws the entry.
- Every call to `/intake/v1/escrow` and `/intake/v1/records` counts against the same
  per-source limit as the API's (`auth_source_limits`), so the page is no way around it.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from upstander.gateway.auth.receipt import (
    IntakeUnavailable,
)
from upstander.gateway.web import i18n
from upstander.gateway.web.guard import (
    CSRF_COOKIE,
    RECEIPT_COOKIE,
    SESSION_COOKIE,
    _b64,
    _unb64,
    clear_cookie,
    set_cookie,
)
from upstander.gateway.web.identified import (
    StaffRefused,
    org_has_sso,
    staff_errors,
    staff_token,
)
from upstander.gateway.web.pages import (
    NO_STORE,
    OWN_FIELDS,
    CodeRefused,
    _base,
    _check_report,
    _csrf,
    _files,
    _form_lang,
    _now,
    _report_body,
    _report_page,
    _safe_form,
    _seal,
    _text,
    csrf_ok,
    csrf_refused,
    exchange_code,
    not_found,
    read_form,
    redirect,
    render,
)
from upstander.gateway.web.upstream import Answer, Unavailable, call
from upstander.kit.crypto import DecryptionError, Keyring

RECORD_COOKIE = "upstander_record"
RECORD_CODE_COOKIE = "upstander_record_code"
ESCROW_RECEIPT_COOKIE = "upstander_escrow_receipt"
RECORD_SESSION_SECONDS = 900
SHOW_ONCE_SECONDS = 600
ENTRY_MAX = 20_000
NAME_MAX = 200
CONTACT_MAX = 320
RELEASE_MODES = ("anonymous", "confidential", "identified")
# The page's identifier fields, in the order they are sent (an API error names an index).
IDENTIFIER_FIELDS = ("escrow_email", "escrow_phone", "escrow_handle")

router = APIRouter(tags=["reporter page"])


# ---- plumbing --------------------------------------------------------------------------


class CodeSeal:
    """A code sealed (AES-GCM, the kit's `Keyring`) for a cookie, with its deadline inside
    the seal and its purpose and organisation as associated data: a record code sealed for
    the record session opens nowhere else."""

    def __init__(self, keyring: Keyring, purpose: str, seconds: int) -> None:
        self.keyring = keyring
        self.purpose = purpose
        self.seconds = seconds

    def _aad(self, org: str) -> bytes:
        return b"upstander reporter page " + self.purpose.encode() + b"\x00" + org.encode()

    def seal(self, org: str, code: str, *, now: float | None = None) -> str:
        deadline = int((now if now is not None else time.time()) + self.seconds)
        kek_id, wrapped = self.keyring.wrap(f"{deadline}|{code}".encode(), self._aad(org))
        return f"{kek_id}.{_b64(wrapped)}"

    def open(self, org: str, sealed: str | None, *, now: float | None = None) -> str | None:
        if not sealed or len(sealed) > 400:
            return None
        kek_id, _, body = sealed.partition(".")
        try:
            plain = self.keyring.unwrap(kek_id, _unb64(body), self._aad(org)).decode()
            deadline, _, code = plain.partition("|")
            if int(deadline) < (now if now is not None else time.time()):
                return None
        except (DecryptionError, ValueError, binascii.Error, UnicodeDecodeError):
            return None
        return code or None


def _seals(request: Request) -> dict[str, CodeSeal]:
    seals = getattr(request.app.state, "reporter_page_code_seals", None)
    if seals is None:
        keyring = Keyring.from_settings(request.app.state.settings)
        seals = {
            "record": CodeSeal(keyring, "record session", RECORD_SESSION_SECONDS),
            "record_code": CodeSeal(keyring, "record code", SHOW_ONCE_SECONDS),
            "escrow_receipt": CodeSeal(keyring, "escrow receipt", SHOW_ONCE_SECONDS),
        }
        request.app.state.reporter_page_code_seals = seals
    return seals


def _cookie(
    response: Response, request: Request, name: str, value: str, path: str, max_age: int | None
) -> None:
    set_cookie(
        response, request, request.app.state.settings, name, value, path=path, max_age=max_age
    )


def _clear(response: Response, request: Request, name: str, path: str) -> None:
    clear_cookie(response, request, request.app.state.settings, name, path)


async def _over_limit(request: Request) -> int | None:
    """A hit on the per-source limit of `/auth/`, `/intake/v1/escrow` and `/intake/v1/records`
    (the middleware's own key): seconds to wait, or None."""
    limits = getattr(request.app.state, "auth_source_limits", None)
    if limits is None:
        return None
    client = request.client
    source = limits.key(client.host) if client else "unknown"
    retry: int | None = await limits.hit("source:" + source)
    return retry


def _message(
    request: Request,
    org: str,
    lang: str,
    kind: str,
    status_code: int,
    form: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request, "message.html", org=org, lang=lang, status_code=status_code, kind=kind,
        org_name=(form or {}).get("org_name"), headers=headers,
    )  # fmt: skip


def _limited(request: Request, org: str, lang: str, retry: int) -> HTMLResponse:
    return _message(request, org, lang, "page_too_many", 429, headers={"Retry-After": str(retry)})


def _unavailable(request: Request, org: str, lang: str) -> HTMLResponse:
    return _message(request, org, lang, "unavailable", 503)


async def _posted(
    request: Request, org: str
) -> tuple[FormData, str, dict[str, Any] | None, Response | None]:
    """The posted form, its language and the org's form — or the answer to give instead."""
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return posted, lang, None, csrf_refused(request, org, lang)
    form = await _safe_form(request, org, lang)
    if form is None:
        return posted, lang, None, not_found(request, lang)
    return posted, lang, form, None


def _fresh_csrf(response: Response, request: Request, org: str) -> None:
    """A changed HttpOnly cookie: browsers drop a page showing a code from back/forward."""
    _cookie(response, request, CSRF_COOKIE, _csrf(request).new_cookie_value(), _base(org), None)


def _first_error(answer: Answer) -> tuple[str, str]:
    body = answer.body if isinstance(answer.body, dict) else {}
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            return str(error.get("field", "")), str(error.get("message", ""))
    return "", answer.detail()


def _contact(
    values: dict[str, str], words: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """The confidential reporter's `{name, contact}` (both or neither), and errors."""
    name, contact = values.get("reporter_name", ""), values.get("reporter_contact", "")
    errors: dict[str, str] = {}
    if bool(name) != bool(contact):
        errors["reporter_name" if not name else "reporter_contact"] = words["error_contact"]
    if len(name) > NAME_MAX or len(contact) > CONTACT_MAX:
        errors["reporter_name"] = words["error_too_long"]
    return ({"name": name, "contact": contact} if name and contact else {}), errors


def _staff_values(posted: FormData, values: dict[str, str]) -> str:
    """The staff sign-in posted with an identified choice: the email is kept to show again,
    the password is returned to be checked once and is never shown again or stored."""
    values["staff_email"] = _text(posted, "staff_email")
    password = posted.get("staff_password")
    values["staff_password"] = password if isinstance(password, str) else ""
    return values["staff_password"]


# ---- the explanation -------------------------------------------------------------------


@router.get("/r/{org}/escrow", include_in_schema=False)
async def escrow_about(request: Request, org: str) -> Response:
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    return render(
        request, "escrow_about.html", org=org, lang=lang, org_name=form.get("org_name"),
        resources=form.get("resources") or {},
    )  # fmt: skip


# ---- the escrow: hold a report ---------------------------------------------------------


def _identifiers(values: dict[str, str]) -> tuple[list[dict[str, str]], list[str]]:
    """The identifiers the reporter gave, and for each the page field it came from."""
    chosen: list[dict[str, str]] = []
    fields: list[str] = []
    if values["escrow_email"]:
        chosen.append({"kind": "email", "value": values["escrow_email"]})
        fields.append("escrow_email")
    if values["escrow_phone"]:
        chosen.append({"kind": "phone", "value": values["escrow_phone"]})
        fields.append("escrow_phone")
    if values["escrow_handle"]:
        handle = {"kind": "handle", "value": values["escrow_handle"]}
        if values["escrow_platform"]:
            handle["platform"] = values["escrow_platform"]
        chosen.append(handle)
        fields.append("escrow_handle")
    return chosen, fields


@router.post("/r/{org}/escrow", include_in_schema=False)
async def hold_report(request: Request, org: str) -> Response:
    """The report form, sent with its "hold my report" button (`formaction`)."""
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return refused
    assert form is not None
    words = i18n.words(lang)
    names = (
        "mode", "description", "occurred_at", "location", "people", "witnesses", "keep_out",
        "desired_outcome", "reporter_name", "reporter_contact", "escrow_email",
        "escrow_phone", "escrow_handle", "escrow_platform",
    )  # fmt: skip
    values: dict[str, Any] = {name: _text(posted, name) for name in names}
    password = _staff_values(posted, values)
    known = {c["key"] for c in form.get("categories", [])}
    chosen = [c for c in posted.getlist("categories") if isinstance(c, str)]
    values["categories"] = [c for c in dict.fromkeys(chosen) if c in known]
    questions = [q for q in form.get("questions", []) if q.get("key") not in OWN_FIELDS]
    values["answers"] = {q["key"]: _text(posted, f"q_{q['key']}") for q in questions}

    errors = _check_report(values, words)
    identifiers, fields = _identifiers(values)
    if not identifiers:
        errors["escrow"] = words["escrow_error_identifiers"]
    if values["escrow_handle"] and not values["escrow_platform"]:
        errors["escrow_platform"] = words["escrow_error_platform"]
    if any(len(values[f]) > CONTACT_MAX for f in (*IDENTIFIER_FIELDS, "escrow_platform")):
        errors["escrow"] = words["error_too_long"]
    if await _files(posted, "files"):
        errors["files"] = words["escrow_error_files"]
    values["staff_password"] = ""  # never shown again
    if errors:
        return _report_page(request, org, lang, form, values=values, errors=errors, status_code=422)

    report = _report_body(org, lang, values, questions)
    for name in ("org", "mode"):
        report.pop(name, None)
    retry = await _over_limit(request)
    if retry is not None:
        return _limited(request, org, lang, retry)
    held = {"org": org, "identifiers": identifiers, "report": report}
    try:
        if values["mode"] == "identified":
            # Held with a one-call staff token, the entry is the staff member's own: it can be
            # released identified later and never matches their own other entries.
            async with staff_token(request, org, lang, values["staff_email"], password) as token:
                answer = await call(
                    request, "intake", "POST", "/intake/v1/escrow", json=held, token=token
                )
        else:
            answer = await call(request, "intake", "POST", "/intake/v1/escrow", json=held)
    except StaffRefused as denied:
        shown = _report_page(
            request, org, lang, form, values=values, status_code=denied.status,
            errors={"staff_email": denied.message},
        )  # fmt: skip
        shown.headers.update(denied.headers)
        return shown
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.status == 201 and isinstance(answer.body, dict) and answer.body.get("receipt_code"):
        response = redirect(org, lang, "/escrow/receipt")
        sealed = _seals(request)["escrow_receipt"].seal(
            org, str(answer.body["receipt_code"]), now=_now(request)
        )
        _cookie(
            response, request, ESCROW_RECEIPT_COOKIE, sealed, f"{_base(org)}/escrow/receipt", None
        )
        return response
    if answer.status == 429:
        return _limited(request, org, lang, 60)
    field, message = _first_error(answer)
    parts = field.split(".")
    target = "escrow"
    if "identifiers" in parts:
        index = (
            parts[parts.index("identifiers") + 1]
            if len(parts) > parts.index("identifiers") + 1
            else ""
        )
        if index.isdigit() and int(index) < len(fields):
            target = fields[int(index)]
    elif field:
        target = "form"
    return _report_page(
        request, org, lang, form, values=values,
        errors={target: words["escrow_error_hold"].format(detail=message)}, status_code=422,
    )  # fmt: skip


@router.get("/r/{org}/escrow/receipt", include_in_schema=False)
async def escrow_receipt(request: Request, org: str) -> Response:
    return await _code_once(
        request, org, template="escrow_receipt.html", seal="escrow_receipt",
        cookie=ESCROW_RECEIPT_COOKIE, path=f"{_base(org)}/escrow/receipt",
    )  # fmt: skip


async def _code_once(
    request: Request, org: str, *, template: str, seal: str, cookie: str, path: str
) -> Response:
    """A code shown once: opened from its sealed cookie (410 once it is gone), and the cookie
    cleared in the same answer that shows it."""
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    code = _seals(request)[seal].open(org, request.cookies.get(cookie), now=_now(request))
    response = render(
        request, template, org=org, lang=lang, org_name=form.get("org_name"),
        status_code=200 if code else 410, code=code,
    )  # fmt: skip
    _clear(response, request, cookie, path)
    return response


@router.post("/r/{org}/escrow/receipt/done", include_in_schema=False)
async def escrow_receipt_done(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/escrow/follow-up")
    _fresh_csrf(response, request, org)
    # A session of an earlier code would show that entry: the new code is the one to use.
    if request.cookies.get(SESSION_COOKIE):
        _clear(response, request, SESSION_COOKIE, _base(org))
    return response


# ---- the escrow: follow-up -------------------------------------------------------------


def _escrow_sign_in(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = render(
        request, "escrow_sign_in.html", org=org, lang=lang, org_name=form.get("org_name"),
        status_code=status_code, headers=headers, errors=errors or {}, notice=notice,
    )  # fmt: skip
    if request.cookies.get(SESSION_COOKIE):
        _clear(response, request, SESSION_COOKIE, _base(org))
    return response


async def _escrow_page(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    token: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        state = await call(request, "intake", "GET", "/intake/v1/reporter/escrow", token=token)
    except Unavailable:
        return _unavailable(request, org, lang)
    if state.status in (401, 403):
        return _escrow_sign_in(request, org, lang, form, notice="session_ended")
    entry = state.body if state.ok and isinstance(state.body, dict) else None
    done = request.query_params.get("done")
    return render(
        request, "escrow_follow_up.html", org=org, lang=lang, org_name=form.get("org_name"),
        status_code=status_code, entry=entry,
        notice=done if done in ("escrow_released", "escrow_withdrawn") else None,
        errors=errors or {}, values=values or {"mode": "anonymous"},
        resources=form.get("resources") or {}, sso=await org_has_sso(request, org),
    )  # fmt: skip


@router.get("/r/{org}/escrow/follow-up", include_in_schema=False)
async def escrow_follow_up(request: Request, org: str) -> Response:
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        notice = "signed_out" if request.query_params.get("done") == "signed_out" else None
        return _escrow_sign_in(request, org, lang, form, notice=notice)
    return await _escrow_page(request, org, lang, form, token)


@router.post("/r/{org}/escrow/sign-in", include_in_schema=False)
async def escrow_sign_in(request: Request, org: str) -> Response:
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return refused
    assert form is not None
    code = _text(posted, "receipt_code")
    try:
        token = await exchange_code(request, org, code, lang, invalid="escrow_invalid_receipt")
    except IntakeUnavailable:
        return _unavailable(request, org, lang)
    if isinstance(token, CodeRefused):
        return _escrow_sign_in(
            request, org, lang, form,
            errors=token.errors, status_code=token.status_code, headers=token.headers,
        )  # fmt: skip
    response = redirect(org, lang, "/escrow/follow-up")
    _cookie(response, request, SESSION_COOKIE, token.access_token, _base(org), token.expires_in)
    return response


async def _escrow_action(
    request: Request, org: str
) -> tuple[FormData, str, dict[str, Any] | None, str | None, Response | None]:
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return posted, lang, None, None, refused
    assert form is not None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        signed_out = _escrow_sign_in(request, org, lang, form, notice="session_ended")
        return posted, lang, form, None, signed_out
    return posted, lang, form, token, None


@router.post("/r/{org}/escrow/release", include_in_schema=False)
async def escrow_release(request: Request, org: str) -> Response:
    posted, lang, form, token, refused = await _escrow_action(request, org)
    if refused is not None:
        return refused
    assert form is not None and token is not None
    words = i18n.words(lang)
    values = {n: _text(posted, n) for n in ("mode", "reporter_name", "reporter_contact")}
    password = _staff_values(posted, values)
    reporter, errors = _contact(values, words)
    if values["mode"] not in RELEASE_MODES:
        errors["mode"] = words["error_mode"]
    elif values["mode"] == "identified":
        errors.update(staff_errors(values, words))
    values["staff_password"] = ""  # never shown again
    if errors:
        return await _escrow_page(
            request, org, lang, form, token, errors=errors, values=values, status_code=422
        )
    payload: dict[str, Any] = {"mode": values["mode"]}
    if values["mode"] == "confidential" and reporter:
        payload["reporter"] = reporter
    try:
        if values["mode"] == "identified":
            # The name goes out only once the staff member proves it is theirs: the password
            # grant checks it (its limits), and the sign-in is revoked right after. The release
            # itself is the entry's (the reporter token); intake refuses `identified` for an
            # entry that was not made with a staff token.
            async with staff_token(request, org, lang, values["staff_email"], password):
                answer = await call(
                    request, "intake", "POST", "/intake/v1/reporter/escrow/release",
                    token=token, json=payload,
                )  # fmt: skip
        else:
            answer = await call(
                request, "intake", "POST", "/intake/v1/reporter/escrow/release", token=token,
                json=payload,
            )  # fmt: skip
    except StaffRefused as denied:
        shown = await _escrow_page(
            request, org, lang, form, token, values=values, status_code=denied.status,
            errors={"staff_email": denied.message},
        )  # fmt: skip
        shown.headers.update(denied.headers)
        return shown
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.ok:
        return redirect(org, lang, "/escrow/follow-up", done="escrow_released")
    if answer.status == 401:
        return _escrow_sign_in(request, org, lang, form, notice="session_ended")
    _, message = _first_error(answer)
    return await _escrow_page(
        request, org, lang, form, token, values=values, status_code=422,
        errors={"mode": words["escrow_error_release"].format(detail=message)},
    )  # fmt: skip


@router.post("/r/{org}/escrow/withdraw", include_in_schema=False)
async def escrow_withdraw(request: Request, org: str) -> Response:
    posted, lang, form, token, refused = await _escrow_action(request, org)
    if refused is not None:
        return refused
    assert form is not None and token is not None
    words = i18n.words(lang)
    if _text(posted, "confirm") != "yes":
        return await _escrow_page(
            request, org, lang, form, token, status_code=422,
            errors={"confirm-withdraw": words["escrow_error_confirm"]},
        )  # fmt: skip
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/reporter/escrow/withdraw", token=token
        )
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.ok:
        return redirect(org, lang, "/escrow/follow-up", done="escrow_withdrawn")
    if answer.status == 401:
        return _escrow_sign_in(request, org, lang, form, notice="session_ended")
    _, message = _first_error(answer)
    return await _escrow_page(
        request, org, lang, form, token, status_code=422,
        errors={"confirm-withdraw": words["escrow_error_release"].format(detail=message)},
    )  # fmt: skip


@router.post("/r/{org}/escrow/sign-out", include_in_schema=False)
async def escrow_sign_out(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/escrow/follow-up", done="signed_out")
    _clear(response, request, SESSION_COOKIE, _base(org))
    return response


# ---- the private record ----------------------------------------------------------------


def _record_path(org: str) -> str:
    return f"{_base(org)}/record"


def _record_code(request: Request, org: str) -> str | None:
    return _seals(request)["record"].open(
        org, request.cookies.get(RECORD_COOKIE), now=_now(request)
    )


def _open_session(response: Response, request: Request, org: str, code: str) -> None:
    sealed = _seals(request)["record"].seal(org, code, now=_now(request))
    _cookie(response, request, RECORD_COOKIE, sealed, _record_path(org), None)


def _close_session(response: Response, request: Request, org: str) -> None:
    _clear(response, request, RECORD_COOKIE, _record_path(org))


async def _entry(
    posted: FormData, words: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The entry posted (`text`, `occurred_at`, `location`, `files`) as the API takes it,
    the values to show again and the errors."""
    values = {n: _text(posted, n) for n in ("text", "occurred_at", "location")}
    errors: dict[str, str] = {}
    if not values["text"]:
        errors["text"] = words["record_error_text"]
    elif len(values["text"]) > ENTRY_MAX:
        errors["text"] = words["error_too_long"]
    if values["occurred_at"]:
        try:
            date.fromisoformat(values["occurred_at"])
        except ValueError:
            errors["occurred_at"] = words["error_date"]
    if len(values["location"]) > 500:
        errors["location"] = words["error_too_long"]
    files = await _files(posted, "files")
    if len(files) > 5:
        errors["files"] = words["error_too_many"].format(count=5)
    entry: dict[str, Any] = {
        "text": values["text"],
        "attachments": [
            {
                "filename": name,
                "content_type": kind,
                "data_base64": base64.b64encode(data).decode("ascii"),
            }
            for name, data, kind in files
        ],
    }
    if values["occurred_at"]:
        entry["occurred_at"] = values["occurred_at"]
    if values["location"]:
        entry["location"] = values["location"]
    return entry, values, errors


def _entry_errors(answer: Answer, words: dict[str, str]) -> dict[str, str]:
    field, message = _first_error(answer)
    parts = field.split(".")
    for name in ("text", "occurred_at", "location"):
        if name in parts:
            return {name: message}
    if "attachments" in parts or answer.status in (413, 415):
        return {"files": message or answer.detail()}
    return {"form": words["record_error_save"].format(detail=message)}


def _record_home(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    response = render(
        request, "record_home.html", org=org, lang=lang, org_name=form.get("org_name"),
        status_code=status_code, headers=headers, errors=errors or {}, values=values or {},
        notice=notice, minutes=RECORD_SESSION_SECONDS // 60,
    )  # fmt: skip
    if request.cookies.get(RECORD_COOKIE):
        _close_session(response, request, org)
    return response


def _written(value: Any) -> str:
    """A signed time to the minute, in UTC: the point of the record is when it was written."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return ""
    return moment.strftime("%Y-%m-%d %H:%M UTC")


async def _record_view(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    code: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/read",
            json={"org": org, "record_code": code},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    if not answer.ok or not isinstance(answer.body, dict):
        # Deleted meanwhile, or the code no longer opens it.
        return _record_home(request, org, lang, form, notice="record_closed")
    done = request.query_params.get("done")
    return render(
        request, "record_view.html", org=org, lang=lang, org_name=form.get("org_name"),
        status_code=status_code, entries=answer.body.get("entries") or [],
        written=_written, notice=done if done in ("record_entry_added",) else None,
        errors=errors or {}, values=values or {"mode": "anonymous"},
        minutes=RECORD_SESSION_SECONDS // 60, sso=await org_has_sso(request, org),
    )  # fmt: skip


@router.get("/r/{org}/record", include_in_schema=False)
async def record_page(request: Request, org: str) -> Response:
    """The record open in this browser (the sealed session cookie), else start or open one."""
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    code = _record_code(request, org)
    if code is None:
        done = request.query_params.get("done")
        notice = done if done in ("record_deleted", "record_closed") else None
        if request.cookies.get(RECORD_COOKIE) and notice is None:
            notice = "record_session_ended"
        return _record_home(request, org, lang, form, notice=notice)
    return await _record_view(request, org, lang, form, code)


@router.post("/r/{org}/record/start", include_in_schema=False)
async def record_start(request: Request, org: str) -> Response:
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return refused
    assert form is not None
    words = i18n.words(lang)
    entry, values, errors = await _entry(posted, words)
    if errors:
        return _record_home(request, org, lang, form, errors=errors, values=values, status_code=422)
    retry = await _over_limit(request)
    if retry is not None:
        return _limited(request, org, lang, retry)
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records", json={"org": org, "entry": entry}
        )
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.status == 201 and isinstance(answer.body, dict) and answer.body.get("record_code"):
        code = str(answer.body["record_code"])
        response = redirect(org, lang, "/record/code")
        sealed = _seals(request)["record_code"].seal(org, code, now=_now(request))
        _cookie(response, request, RECORD_CODE_COOKIE, sealed, f"{_record_path(org)}/code", None)
        _open_session(response, request, org, code)
        return response
    if answer.status == 429:
        return _limited(request, org, lang, 60)
    return _record_home(
        request, org, lang, form, values=values, status_code=422,
        errors=_entry_errors(answer, words),
    )  # fmt: skip


@router.get("/r/{org}/record/code", include_in_schema=False)
async def record_code_page(request: Request, org: str) -> Response:
    return await _code_once(
        request, org, template="record_code.html", seal="record_code",
        cookie=RECORD_CODE_COOKIE, path=f"{_record_path(org)}/code",
    )  # fmt: skip


@router.post("/r/{org}/record/code/done", include_in_schema=False)
async def record_code_done(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/record")
    _fresh_csrf(response, request, org)
    return response


@router.post("/r/{org}/record/open", include_in_schema=False)
async def record_open(request: Request, org: str) -> Response:
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return refused
    assert form is not None
    words = i18n.words(lang)
    code = _text(posted, "record_code")
    if not code:
        errors = {"record_code": words["record_error_code"]}
        return _record_home(request, org, lang, form, errors=errors, status_code=422)
    invalid = {"record_code": words["record_invalid_code"]}
    if not 16 <= len(code) <= 64:
        return _record_home(request, org, lang, form, errors=invalid, status_code=400)
    retry = await _over_limit(request)
    if retry is not None:
        return _record_home(
            request, org, lang, form, status_code=429, headers={"Retry-After": str(retry)},
            errors={"record_code": words["too_many"].format(seconds=retry)},
        )  # fmt: skip
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/read",
            json={"org": org, "record_code": code},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    if not answer.ok:
        return _record_home(request, org, lang, form, errors=invalid, status_code=400)
    response = redirect(org, lang, "/record")
    _open_session(response, request, org, code)
    return response


async def _record_action(
    request: Request, org: str, *, limited: bool = True
) -> tuple[FormData, str, dict[str, Any] | None, str | None, Response | None]:
    """The posted form, its language, the org's form and the open record's code — or the
    answer to give instead (CSRF, no such org, no record open, too many requests)."""
    posted, lang, form, refused = await _posted(request, org)
    if refused is not None:
        return posted, lang, None, None, refused
    assert form is not None
    code = _record_code(request, org)
    if code is None:
        return posted, lang, form, None, redirect(org, lang, "/record")
    if limited:
        retry = await _over_limit(request)
        if retry is not None:
            return posted, lang, form, None, _limited(request, org, lang, retry)
    return posted, lang, form, code, None


@router.post("/r/{org}/record/entries", include_in_schema=False)
async def record_add(request: Request, org: str) -> Response:
    posted, lang, form, code, refused = await _record_action(request, org)
    if refused is not None:
        return refused
    assert form is not None and code is not None
    words = i18n.words(lang)
    entry, values, errors = await _entry(posted, words)
    if errors:
        return await _record_view(
            request, org, lang, form, code, errors=errors, values=values, status_code=422
        )
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/entries",
            json={"org": org, "record_code": code, "entry": entry},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.ok:
        return redirect(org, lang, "/record", done="record_entry_added")
    return await _record_view(
        request, org, lang, form, code, values=values, status_code=422,
        errors=_entry_errors(answer, words),
    )  # fmt: skip


def _download(content: bytes, filename: str, media_type: str) -> Response:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in filename)[:100] or "file"
    return Response(
        content,
        media_type=media_type,
        headers={**NO_STORE, "Content-Disposition": f'attachment; filename="{safe}"'},
    )


@router.post("/r/{org}/record/proof", include_in_schema=False)
async def record_proof(request: Request, org: str) -> Response:
    """The record's time proofs as a file (`POST /intake/v1/records/proof`, as it answers)."""
    _posted, lang, _form, code, refused = await _record_action(request, org)
    if refused is not None:
        return refused
    assert code is not None
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/proof",
            json={"org": org, "record_code": code},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    if not answer.ok:
        return redirect(org, lang, "/record")
    content = json.dumps(answer.body, indent=2, sort_keys=True).encode()
    return _download(content, "record-time-proof.json", "application/json")


@router.post("/r/{org}/record/file", include_in_schema=False)
async def record_file(request: Request, org: str) -> Response:
    """One of the record's files, downloaded (chosen by entry id and position)."""
    posted, lang, _form, code, refused = await _record_action(request, org, limited=False)
    if refused is not None:
        return refused
    assert code is not None
    try:
        wanted_entry, wanted_index = (
            uuid.UUID(_text(posted, "entry_id")),
            int(_text(posted, "index")),
        )
    except ValueError:
        return redirect(org, lang, "/record")
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/read",
            json={"org": org, "record_code": code},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    entries = answer.body.get("entries") if answer.ok and isinstance(answer.body, dict) else []
    for entry in entries or []:
        if entry.get("entry_id") == str(wanted_entry):
            files = entry.get("attachments") or []
            if 0 <= wanted_index < len(files):
                chosen = files[wanted_index]
                try:
                    data = base64.b64decode(chosen.get("data_base64", ""), validate=True)
                except (binascii.Error, ValueError):
                    break
                return _download(
                    data, str(chosen.get("filename", "file")), "application/octet-stream"
                )
    return redirect(org, lang, "/record")


@router.post("/r/{org}/record/delete", include_in_schema=False)
async def record_delete(request: Request, org: str) -> Response:
    posted, lang, form, code, refused = await _record_action(request, org)
    if refused is not None:
        return refused
    assert form is not None and code is not None
    words = i18n.words(lang)
    if _text(posted, "confirm") != "yes":
        return await _record_view(
            request, org, lang, form, code, status_code=422,
            errors={"confirm-delete": words["record_error_confirm"]},
        )  # fmt: skip
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/records/delete",
            json={"org": org, "record_code": code},
        )  # fmt: skip
    except Unavailable:
        return _unavailable(request, org, lang)
    if not answer.ok and answer.status != 404:
        return await _record_view(
            request, org, lang, form, code, status_code=422,
            errors={"confirm-delete": words["record_error_save"].format(detail=answer.detail())},
        )  # fmt: skip
    response = redirect(org, lang, "/record", done="record_deleted")
    _close_session(response, request, org)
    return response


@router.post("/r/{org}/record/report", include_in_schema=False)
async def record_report(request: Request, org: str) -> Response:
    """The record, sent as a report; its receipt code is shown once on the receipt page."""
    posted, lang, form, code, refused = await _record_action(request, org)
    if refused is not None:
        return refused
    assert form is not None and code is not None
    words = i18n.words(lang)
    values = {n: _text(posted, n) for n in ("mode", "reporter_name", "reporter_contact")}
    password = _staff_values(posted, values)
    reporter, errors = _contact(values, words)
    if values["mode"] not in RELEASE_MODES:
        errors["mode"] = words["error_mode"]
    elif values["mode"] == "confidential" and not reporter:
        errors.setdefault("reporter_name", words["error_contact"])
    elif values["mode"] == "identified":
        errors.update(staff_errors(values, words))
    values["staff_password"] = ""  # never shown again
    if errors:
        return await _record_view(
            request, org, lang, form, code, errors=errors, values=values, status_code=422
        )
    payload: dict[str, Any] = {
        "org": org, "record_code": code, "mode": values["mode"], "language": lang,
    }  # fmt: skip
    if values["mode"] == "confidential":
        payload["reporter"] = reporter
    try:
        if values["mode"] == "identified":
            async with staff_token(request, org, lang, values["staff_email"], password) as token:
                answer = await call(
                    request, "intake", "POST", "/intake/v1/records/report", json=payload,
                    token=token,
                )  # fmt: skip
        else:
            answer = await call(
                request, "intake", "POST", "/intake/v1/records/report", json=payload
            )
    except StaffRefused as denied:
        shown = await _record_view(
            request, org, lang, form, code, values=values, status_code=denied.status,
            errors={"staff_email": denied.message},
        )  # fmt: skip
        shown.headers.update(denied.headers)
        return shown
    except Unavailable:
        return _unavailable(request, org, lang)
    if answer.status == 201 and values["mode"] == "identified":
        return redirect(org, lang, "/sent")
    if answer.status == 201 and isinstance(answer.body, dict) and answer.body.get("receipt_code"):
        response = redirect(org, lang, "/receipt")
        sealed = _seal(request).seal(org, str(answer.body["receipt_code"]), now=_now(request))
        _cookie(response, request, RECEIPT_COOKIE, sealed, f"{_base(org)}/receipt", None)
        return response
    _, message = _first_error(answer)
    return await _record_view(
        request, org, lang, form, code, values=values, status_code=422,
        errors={"mode": words["error_report"].format(detail=message)},
    )  # fmt: skip


@router.post("/r/{org}/record/close", include_in_schema=False)
async def record_close(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/record", done="record_closed")
    _close_session(response, request, org)
    return response
