"""The reporter's web page at `/r/{org}`: report, see the receipt code once, follow up.

Server-rendered HTML with plain forms and redirect-after-post, so it works with JavaScript off.
It lives in the gateway because the gateway alone sees the reporter's connection and owns the
receipt-code exchange with its limits: the sign-in form calls the very `POST /auth/receipt`
handler, so its delays and limits are the API's, keyed by the same (hashed) source, while the
address itself never leaves this process. Everything else is the public API of intake and
cases, called through the proxy's pool (`upstream.py`). See docs/reporter-page.md.
"""

from __future__ import annotations

import functools
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from upstander.gateway.auth.receipt import (
    IntakeUnavailable,
    InvalidReceipt,
    ReceiptExchange,
    ReporterToken,
    exchange_receipt,
)
from upstander.gateway.web import i18n
from upstander.gateway.web.branding import PageBrand, frame_headers, page_brand
from upstander.gateway.web.guard import (
    CSRF_COOKIE,
    CSRF_FIELD,
    RECEIPT_COOKIE,
    SESSION_COOKIE,
    Csrf,
    ReceiptSeal,
    clear_cookie,
    set_cookie,
)
from upstander.gateway.web.identified import org_has_sso, send_identified
from upstander.gateway.web.upstream import Answer, Unavailable, call
from upstander.kit.crypto import Keyring
from upstander.kit.errors import RateLimited

if TYPE_CHECKING:
    from jinja2 import Environment

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_TYPES = {"reporter.css": "text/css; charset=utf-8", "quick-exit.js": "text/javascript"}
SLUG = re.compile(r"^[a-z0-9-]{2,63}$")
QUICK_EXIT_URL = "https://www.google.com/"
NO_ORG = "_"  # never a slug: the not-found page's, and the assets' folder
# Questions of the org's form that the page asks with its own fields.
OWN_FIELDS = frozenset({"when", "where"})
MAX_LINES = 20
NAME_MAX = 200
TEXT_MAX = 5_000
DESCRIPTION_MAX = 20_000
MAX_FILES = 5
NO_STORE = {
    "Cache-Control": "no-store, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
    "Vary": "Accept-Language, Cookie",
}
STATUS_DOCS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The reporting page (HTML).",
        "content": {"text/html": {"example": '<!doctype html><html lang="en">…</html>'}},
    },
    404: {
        "description": "No organisation at this address (an HTML page).",
        "content": {"text/html": {"example": '<!doctype html><html lang="en">…</html>'}},
    },
}

router = APIRouter(tags=["reporter page"])


@functools.cache
def templates() -> Environment:
    """The page templates. jinja2 is imported with the first page the gateway renders, not with
    the gateway: 1.7 MB that a gateway serving only the API never holds."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    return Environment(
        loader=PackageLoader("upstander.gateway.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


# ---- plumbing --------------------------------------------------------------------------


def _csrf(request: Request) -> Csrf:
    csrf = getattr(request.app.state, "reporter_page_csrf", None)
    if csrf is None:
        csrf = Csrf(request.app.state.settings.service_secret)
        request.app.state.reporter_page_csrf = csrf
    return csrf


def _seal(request: Request) -> ReceiptSeal:
    seal = getattr(request.app.state, "reporter_page_seal", None)
    if seal is None:
        seal = ReceiptSeal(Keyring.from_settings(request.app.state.settings))
        request.app.state.reporter_page_seal = seal
    return seal


def _now(request: Request) -> float:
    return float(request.app.state.clock.now().timestamp())


def _base(org: str) -> str:
    return f"/r/{org}"


def _url(org: str, lang: str, suffix: str = "", **params: str) -> str:
    return f"{_base(org)}{suffix}?{urlencode({'lang': lang, **params})}"


def _short_date(value: Any) -> str:
    """A day, never a time: what the reporter needs, and nothing more precise to remember."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).date().isoformat()
    except ValueError:
        return ""


def render(
    request: Request,
    template: str,
    *,
    org: str,
    lang: str,
    org_name: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page, never cached, with a CSRF cookie (made when missing) and its signed field."""
    csrf = _csrf(request)
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = not cookie or len(cookie) > 100
    if fresh:
        cookie = csrf.new_cookie_value()
    assert cookie is not None
    words = i18n.words(lang)
    other = words["other_language_code"]
    html = (
        templates()
        .get_template(template)
        .render(
            t=words,
            lang=lang,
            org=org,
            org_name=org_name or org,
            base=_base(org),
            url=lambda suffix="", **params: _url(org, lang, suffix, **params),
            other_url=f"{request.url.path}?{urlencode({'lang': other})}",
            csrf_field=CSRF_FIELD,
            csrf_token=csrf.sign(cookie),
            quick_exit_url=QUICK_EXIT_URL,
            short_date=_short_date,
            branded=_styled(request),
            **context,
        )
    )
    response = HTMLResponse(
        html,
        status_code=status_code,
        headers={**NO_STORE, **frame_headers(request), **(headers or {})},
    )
    if fresh and org != NO_ORG:
        set_cookie(
            response, request, request.app.state.settings, CSRF_COOKIE, cookie, path=_base(org)
        )
    return response


def _styled(request: Request) -> bool:
    brand = getattr(request.state, "brand", None)
    return isinstance(brand, PageBrand) and brand.styled


def redirect(org: str, lang: str, suffix: str = "", **params: str) -> RedirectResponse:
    return RedirectResponse(_url(org, lang, suffix, **params), status_code=303, headers=NO_STORE)


def not_found(request: Request, lang: str) -> HTMLResponse:
    return render(request, "message.html", org=NO_ORG, lang=lang, status_code=404, kind="not_found")


async def load_form(request: Request, org: str, lang: str) -> dict[str, Any] | None:
    """The org's form in `lang` (`GET /intake/v1/forms/{org}`), or None when there is none."""
    if not SLUG.match(org):
        return None
    answer = await call(request, "intake", "GET", f"/intake/v1/forms/{org}", params={"lang": lang})
    if answer.status == 404 or not answer.ok or not isinstance(answer.body, dict):
        return None
    return answer.body


async def read_form(request: Request) -> FormData:
    org = request.path_params.get("org")
    if isinstance(org, str) and SLUG.match(org):
        # Even a refusal (an expired form) is framed where the org allows (branding.py).
        await page_brand(request, org)
    return await request.form(max_files=MAX_FILES + 1, max_fields=200)


def csrf_ok(request: Request, form: FormData) -> bool:
    field = form.get(CSRF_FIELD)
    return _csrf(request).valid(
        request.cookies.get(CSRF_COOKIE), field if isinstance(field, str) else None
    )


def csrf_refused(request: Request, org: str, lang: str) -> HTMLResponse:
    return render(request, "message.html", org=org, lang=lang, status_code=403, kind="csrf")


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


async def _files(form: FormData, name: str) -> list[tuple[str, bytes, str]]:
    """The files chosen in `name` (a browser sends an empty part when none was chosen)."""
    chosen: list[tuple[str, bytes, str]] = []
    for item in form.getlist(name):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read()
            content_type = item.content_type or "application/octet-stream"
            chosen.append((item.filename[:200], data, content_type))
    return chosen


def _form_lang(request: Request, form: FormData) -> str:
    return i18n.pick_language(request, _text(form, "lang") or None)


# ---- static assets ---------------------------------------------------------------------


@router.get("/r/_/{asset}", include_in_schema=False)
async def reporter_asset(asset: str) -> Response:
    if asset not in STATIC_TYPES:
        return Response(status_code=404, headers=NO_STORE)
    return Response(
        (STATIC_DIR / asset).read_bytes(), media_type=STATIC_TYPES[asset], headers=NO_STORE
    )


# ---- reporting -------------------------------------------------------------------------


@router.get(
    "/r/{org}",
    operation_id="get_reporter_page",
    summary="The reporter's web page",
    description=(
        "Public, no token. An HTML page for people, not an API: the organisation's reporting "
        "form (from `GET /intake/v1/forms/{org}`), with its resources, in English or Spanish "
        "(`?lang=es`, else `Accept-Language`). It works without JavaScript; its forms post "
        "to `/r/{org}/...` and follow-up happens at `/r/{org}/follow-up` with the receipt "
        "code. See docs/reporter-page.md."
    ),
    response_class=HTMLResponse,
    responses=STATUS_DOCS,
    # Public: no token. (A page never answers a validation problem: an unknown `lang` falls
    # back to `Accept-Language`, then English.)
    openapi_extra={"security": [{}]},
)
async def reporter_page(
    request: Request,
    org: str,
    lang: str | None = Query(
        default=None,
        description="`en` or `es`; anything else falls back to `Accept-Language`.",
        examples=["es"],
    ),
) -> HTMLResponse:
    language = i18n.pick_language(request)
    form = await _safe_form(request, org, language)
    if form is None:
        return not_found(request, language)
    request.state.org_sso = await org_has_sso(request, org)
    return _report_page(request, org, language, form)


async def _safe_form(request: Request, org: str, lang: str) -> dict[str, Any] | None:
    try:
        form = await load_form(request, org, lang)
    except Unavailable:
        return None
    if form is not None:
        # The org's branding (branding.py): its display name, and for render() its framing.
        brand = await page_brand(request, org)
        if brand.display_name:
            form = {**form, "org_name": brand.display_name}
    return form


def _report_page(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    questions = [q for q in form.get("questions", []) if q.get("key") not in OWN_FIELDS]
    return render(
        request,
        "report.html",
        org=org,
        lang=lang,
        org_name=form.get("org_name"),
        status_code=status_code,
        form=form,
        questions=questions,
        resources=form.get("resources") or {},
        values=values or {"mode": "anonymous"},
        errors=errors or {},
        max_files=MAX_FILES,
        sso=bool(getattr(request.state, "org_sso", False)),
    )


# Fields of the API's report → the page's field that shows its error.
_API_FIELDS = {
    "description": "description",
    "occurred_at": "occurred_at",
    "location": "location",
    "desired_outcome": "desired_outcome",
    "categories": "categories",
    "people_involved": "people",
    "witnesses": "witnesses",
    "reporter": "reporter_name",
    "mode": "mode",
    "files": "files",
}


def _api_field(field: str) -> str:
    for part in field.split("."):
        if part in _API_FIELDS:
            return _API_FIELDS[part]
    return "form"


@router.post("/r/{org}/report", include_in_schema=False)
async def submit_report(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    words = i18n.words(lang)
    values: dict[str, Any] = {
        name: _text(posted, name)
        for name in (
            "mode",
            "description",
            "occurred_at",
            "location",
            "people",
            "witnesses",
            "keep_out",
            "desired_outcome",
            "reporter_name",
            "reporter_contact",
            "staff_email",
        )
    }
    # Never shown again, never stored: only checked, for an identified report (identified.py).
    values["staff_password"] = (
        posted.get("staff_password") if isinstance(posted.get("staff_password"), str) else ""
    )
    known_categories = {c["key"] for c in form.get("categories", [])}
    chosen = [c for c in posted.getlist("categories") if isinstance(c, str)]
    values["categories"] = [c for c in dict.fromkeys(chosen) if c in known_categories]
    questions = [q for q in form.get("questions", []) if q.get("key") not in OWN_FIELDS]
    answers = {q["key"]: _text(posted, f"q_{q['key']}") for q in questions}
    values["answers"] = answers

    errors = _check_report(values, words)
    files = await _files(posted, "files")
    if len(files) > MAX_FILES:
        errors["files"] = words["error_too_many"].format(count=MAX_FILES)
    if errors:
        values["staff_password"] = ""
        return _report_page(request, org, lang, form, values=values, errors=errors, status_code=422)

    report = _report_body(org, lang, values, questions)
    if values["mode"] == "identified":
        password, values["staff_password"] = values["staff_password"], ""
        return await send_identified(
            request, org, lang, form, values, report, files, password,
            show_form=_report_page,
        )  # fmt: skip
    parts: list[tuple[str, Any]] = [("report", (None, json.dumps(report), "application/json"))]
    parts += [("files", file) for file in files]
    try:
        answer = await call(request, "intake", "POST", "/intake/v1/reports", files=parts)
    except Unavailable:
        return render(
            request, "message.html", org=org, lang=lang, org_name=form.get("org_name"),
            status_code=503, kind="unavailable",
        )  # fmt: skip
    if answer.status == 201 and isinstance(answer.body, dict) and answer.body.get("receipt_code"):
        response = redirect(org, lang, "/receipt")
        sealed = _seal(request).seal(org, str(answer.body["receipt_code"]), now=_now(request))
        set_cookie(
            response, request, request.app.state.settings, RECEIPT_COOKIE, sealed,
            path=f"{_base(org)}/receipt",
        )  # fmt: skip
        return response
    return _report_page(
        request,
        org,
        lang,
        form,
        values=values,
        errors=_api_errors(answer, words),
        status_code=422 if answer.status < 500 else 503,
    )


def _api_errors(answer: Answer, words: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    body = answer.body if isinstance(answer.body, dict) else {}
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            field = _api_field(str(error.get("field", "")))
            errors.setdefault(field, str(error.get("message", "")))
    if answer.status in (413, 415):
        errors.setdefault("files", answer.detail())
    if not errors:
        errors["form"] = words["error_report"].format(detail=answer.detail())
    return errors


def _check_report(values: dict[str, Any], words: dict[str, str]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if values["mode"] not in ("anonymous", "confidential", "identified"):
        errors["mode"] = words["error_mode"]
    if values["mode"] == "identified":
        if not values["staff_email"] or len(values["staff_email"]) > 320:
            errors["staff_email"] = words["error_staff_sign_in"]
        if not values["staff_password"] or len(values["staff_password"]) > 1024:
            errors["staff_password"] = words["error_staff_sign_in"]
    if not values["description"]:
        errors["description"] = words["error_description"]
    elif len(values["description"]) > DESCRIPTION_MAX - 2 * TEXT_MAX:
        errors["description"] = words["error_too_long"]
    if values["occurred_at"]:
        try:
            date.fromisoformat(values["occurred_at"])
        except ValueError:
            errors["occurred_at"] = words["error_date"]
    if len(values["location"]) > 500:
        errors["location"] = words["error_too_long"]
    for name in ("desired_outcome", "keep_out"):
        if len(values[name]) > TEXT_MAX:
            errors[name] = words["error_too_long"]
    for name in ("people", "witnesses", "keep_out"):
        lines = _lines(values[name])
        if len(lines) > MAX_LINES:
            errors[name] = words["error_too_many"].format(count=MAX_LINES)
        elif any(len(line) > NAME_MAX for line in lines):
            errors[name] = words["error_too_long"]
    if values["mode"] == "confidential":
        if not values["reporter_name"]:
            errors["reporter_name"] = words["error_contact"]
        if not values["reporter_contact"]:
            errors["reporter_contact"] = words["error_contact"]
    if len(values["reporter_name"]) > NAME_MAX or len(values["reporter_contact"]) > 320:
        errors["reporter_name"] = words["error_too_long"]
    for answer in values["answers"].values():
        if len(answer) > 1000:
            errors["questions"] = words["error_too_long"]
    return errors


def _report_body(
    org: str, lang: str, values: dict[str, Any], questions: list[dict[str, Any]]
) -> dict[str, Any]:
    """The `POST /intake/v1/reports` body for what the page collected. The form's own questions
    and the people to keep out have no field of their own in the API: they go into the
    description, the people to keep out first, where a handler reads before anything else."""
    words = i18n.words(lang)
    sections: list[str] = []
    keep_out = _lines(values["keep_out"])
    if keep_out:
        sections.append(words["keep_out"] + "\n" + "\n".join(f"- {name}" for name in keep_out))
    sections.append(values["description"])
    extra = []
    for question in questions:
        answer = values["answers"].get(question["key"], "")
        if not answer:
            continue
        if question.get("kind") == "choice":
            labels = {c["key"]: c["label"] for c in question.get("choices") or []}
            if answer not in labels:
                continue
            answer = labels[answer]
        extra.append(f"{question['label']} {answer}")
    if extra:
        sections.append("\n".join(extra))
    body: dict[str, Any] = {
        "org": org,
        "mode": values["mode"],
        "description": "\n\n".join(sections),
        "categories": values["categories"],
        "people_involved": [{"name": name} for name in _lines(values["people"])],
        "witnesses": [{"name": name} for name in _lines(values["witnesses"])],
        "language": lang,
    }
    if values["occurred_at"]:
        body["occurred_at"] = values["occurred_at"]
    if values["location"]:
        body["location"] = values["location"]
    if values["desired_outcome"]:
        body["desired_outcome"] = values["desired_outcome"]
    if values["mode"] == "confidential":
        body["reporter"] = {"name": values["reporter_name"], "contact": values["reporter_contact"]}
    return body


@router.get("/r/{org}/receipt", include_in_schema=False)
async def receipt_page(request: Request, org: str) -> Response:
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    code = _seal(request).open(org, request.cookies.get(RECEIPT_COOKIE), now=_now(request))
    response = render(
        request,
        "receipt.html",
        org=org,
        lang=lang,
        org_name=form.get("org_name"),
        status_code=200 if code else 410,
        code=code,
        resources=form.get("resources") or {},
    )
    # Shown once: the cookie goes in the same answer that shows the code.
    clear_cookie(
        response, request, request.app.state.settings, RECEIPT_COOKIE, f"{_base(org)}/receipt"
    )
    return response


@router.post("/r/{org}/receipt/done", include_in_schema=False)
async def receipt_done(request: Request, org: str) -> Response:
    """The reporter has the code. A fresh CSRF cookie (an HttpOnly cookie changed) makes
    browsers drop the receipt page from their back/forward cache, so Back cannot show the code
    again; then on to the follow-up page."""
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/follow-up")
    set_cookie(
        response, request, request.app.state.settings, CSRF_COOKIE,
        _csrf(request).new_cookie_value(), path=_base(org),
    )  # fmt: skip
    return response


# ---- follow-up -------------------------------------------------------------------------


@router.get("/r/{org}/follow-up", include_in_schema=False)
async def follow_up_page(request: Request, org: str) -> Response:
    lang = i18n.pick_language(request)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        notice = "signed_out" if request.query_params.get("done") == "signed_out" else None
        return _sign_in_page(request, org, lang, form, notice=notice)
    return await _case_page(request, org, lang, form, token)


def _sign_in_page(
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
    settings = request.app.state.settings
    response = render(
        request,
        "sign_in.html",
        org=org,
        lang=lang,
        org_name=form.get("org_name"),
        status_code=status_code,
        headers=headers,
        errors=errors or {},
        notice=notice,
        minutes=max(1, int(settings.reporter_token_ttl_seconds) // 60),
    )
    if request.cookies.get(SESSION_COOKIE):
        clear_cookie(response, request, settings, SESSION_COOKIE, _base(org))
    return response


async def _case_page(
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
        case = await call(request, "cases", "GET", "/cases/v1/reporter/case", token=token)
        if case.status in (401, 403):
            return _sign_in_page(request, org, lang, form, notice="session_ended")
        messages: list[dict[str, Any]] = []
        checkins: list[dict[str, Any]] = []
        if case.ok:
            listed = await call(
                request, "cases", "GET", "/cases/v1/reporter/messages", token=token,
                params={"limit": 100},
            )  # fmt: skip
            if listed.ok and isinstance(listed.body, dict):
                messages = list(listed.body.get("items") or [])
            asked = await call(request, "cases", "GET", "/cases/v1/reporter/checkins", token=token)
            if asked.ok and isinstance(asked.body, dict):
                checkins = list(asked.body.get("items") or [])
    except Unavailable:
        return render(
            request, "message.html", org=org, lang=lang, org_name=form.get("org_name"),
            status_code=503, kind="unavailable",
        )  # fmt: skip
    done = request.query_params.get("done")
    return render(
        request,
        "follow_up.html",
        org=org,
        lang=lang,
        org_name=form.get("org_name"),
        status_code=status_code,
        case=case.body if case.ok else None,
        status_text=i18n.STATUS[lang].get(str((case.body or {}).get("status")), "")
        if case.ok
        else "",
        messages=messages,
        checkins=checkins,
        notice=done if done in ("message_sent", "file_added", "checkin_thanks") else None,
        errors=errors or {},
        values=values or {},
        resources=form.get("resources") or {},
    )


@dataclass(frozen=True)
class CodeRefused:
    """Why a receipt code was not taken, as the sign-in page shows it."""

    errors: dict[str, str]
    status_code: int
    headers: dict[str, str] | None = None


async def exchange_code(
    request: Request, org: str, code: str, lang: str, *, invalid: str = "invalid_receipt"
) -> ReporterToken | CodeRefused:
    """A receipt code for a reporter token through the API's own handler (`POST /auth/receipt`:
    the same limits, keyed by the same hashed source), or what the sign-in page says instead.
    `invalid` names the words for a wrong code; IntakeUnavailable is the caller's to answer."""
    words = i18n.words(lang)
    if not code:
        return CodeRefused({"receipt_code": words["error_code"]}, 422)
    wrong = CodeRefused({"receipt_code": words[invalid]}, 400)
    try:
        body = ReceiptExchange(org=org, receipt_code=code)
    except ValidationError:
        return wrong  # what the API answers 422 to, without counting an attempt
    try:
        return await exchange_receipt(body, request, Response())
    except InvalidReceipt:
        return wrong
    except RateLimited as exc:
        retry = exc.headers.get("Retry-After", "60") if exc.headers else "60"
        too_many = {"receipt_code": words["too_many"].format(seconds=retry)}
        return CodeRefused(too_many, 429, {"Retry-After": retry})


@router.post("/r/{org}/follow-up/sign-in", include_in_schema=False)
async def sign_in(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    form = await _safe_form(request, org, lang)
    if form is None:
        return not_found(request, lang)
    try:
        token = await exchange_code(request, org, _text(posted, "receipt_code"), lang)
    except IntakeUnavailable:
        return render(
            request, "message.html", org=org, lang=lang, org_name=form.get("org_name"),
            status_code=503, kind="unavailable",
        )  # fmt: skip
    if isinstance(token, CodeRefused):
        return _sign_in_page(
            request, org, lang, form,
            errors=token.errors, status_code=token.status_code, headers=token.headers,
        )  # fmt: skip
    response = redirect(org, lang, "/follow-up")
    set_cookie(
        response, request, request.app.state.settings, SESSION_COOKIE, token.access_token,
        path=_base(org), max_age=token.expires_in,
    )  # fmt: skip
    return response


async def _signed_in(
    request: Request, org: str
) -> tuple[FormData, str, dict[str, Any] | None, str | None, Response | None]:
    """The posted form, its language, the org's form and the session token — or the answer
    to give instead (CSRF refused, no such org)."""
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return posted, lang, None, None, csrf_refused(request, org, lang)
    form = await _safe_form(request, org, lang)
    if form is None:
        return posted, lang, None, None, not_found(request, lang)
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return (
            posted,
            lang,
            form,
            None,
            _sign_in_page(request, org, lang, form, notice="session_ended"),
        )
    return posted, lang, form, token, None


async def _after_write(
    request: Request,
    org: str,
    lang: str,
    form: dict[str, Any],
    token: str,
    answer: Answer,
    *,
    done: str,
    field: str,
    template: str,
    values: dict[str, str],
) -> Response:
    if answer.ok:
        return redirect(org, lang, "/follow-up", done=done)
    if answer.status == 401:
        return _sign_in_page(request, org, lang, form, notice="session_ended")
    words = i18n.words(lang)
    return await _case_page(
        request, org, lang, form, token,
        errors={field: words[template].format(detail=answer.detail())},
        values=values, status_code=422,
    )  # fmt: skip


@router.post("/r/{org}/follow-up/messages", include_in_schema=False)
async def send_message(request: Request, org: str) -> Response:
    posted, lang, form, token, refused = await _signed_in(request, org)
    if refused is not None:
        return refused
    assert form is not None and token is not None
    words = i18n.words(lang)
    text = _text(posted, "body")
    if not text:
        return await _case_page(
            request, org, lang, form, token, errors={"body": words["error_message"]},
            status_code=422,
        )  # fmt: skip
    try:
        answer = await call(
            request, "cases", "POST", "/cases/v1/reporter/messages", token=token,
            json={"body": text},
        )  # fmt: skip
    except Unavailable:
        return render(
            request, "message.html", org=org, lang=lang, status_code=503, kind="unavailable"
        )
    return await _after_write(
        request, org, lang, form, token, answer, done="message_sent", field="body",
        template="error_send", values={"body": text},
    )  # fmt: skip


@router.post("/r/{org}/follow-up/attachments", include_in_schema=False)
async def add_attachment(request: Request, org: str) -> Response:
    posted, lang, form, token, refused = await _signed_in(request, org)
    if refused is not None:
        return refused
    assert form is not None and token is not None
    files = await _files(posted, "file")
    if not files:
        words = i18n.words(lang)
        return await _case_page(
            request, org, lang, form, token, errors={"file": words["error_file"]},
            status_code=422,
        )  # fmt: skip
    try:
        answer = await call(
            request, "intake", "POST", "/intake/v1/reporter/attachments", token=token,
            files={"file": files[0]},
        )  # fmt: skip
    except Unavailable:
        return render(
            request, "message.html", org=org, lang=lang, status_code=503, kind="unavailable"
        )
    return await _after_write(
        request, org, lang, form, token, answer, done="file_added", field="file",
        template="error_upload", values={},
    )  # fmt: skip


@router.post("/r/{org}/follow-up/checkins/{checkin_id}", include_in_schema=False)
async def answer_checkin(request: Request, org: str, checkin_id: uuid.UUID) -> Response:
    posted, lang, form, token, refused = await _signed_in(request, org)
    if refused is not None:
        return refused
    assert form is not None and token is not None
    words = i18n.words(lang)
    choice = _text(posted, "retaliation")
    details = _text(posted, "details")
    field = f"checkin-{checkin_id}"
    if choice not in ("yes", "no"):
        return await _case_page(
            request, org, lang, form, token, errors={field: words["error_answer"]},
            values={field: details}, status_code=422,
        )  # fmt: skip
    payload: dict[str, Any] = {"retaliation": choice == "yes"}
    if details:
        payload["details"] = details
    try:
        answer = await call(
            request, "cases", "POST", f"/cases/v1/reporter/checkins/{checkin_id}", token=token,
            json=payload,
        )  # fmt: skip
    except Unavailable:
        return render(
            request, "message.html", org=org, lang=lang, status_code=503, kind="unavailable"
        )
    return await _after_write(
        request, org, lang, form, token, answer, done="checkin_thanks", field=field,
        template="error_send", values={field: details},
    )  # fmt: skip


@router.post("/r/{org}/follow-up/sign-out", include_in_schema=False)
async def sign_out(request: Request, org: str) -> Response:
    posted = await read_form(request)
    lang = _form_lang(request, posted)
    if not csrf_ok(request, posted):
        return csrf_refused(request, org, lang)
    response = redirect(org, lang, "/follow-up", done="signed_out")
    clear_cookie(response, request, request.app.state.settings, SESSION_COOKIE, _base(org))
    return response
