"""`POST /auth/receipt`: a reporter exchanges their org and receipt code for a short-lived token
scoped to their one report.

Intake owns the receipt codes (it alone holds their keyed hashes); the gateway asks it, with a
service token it signs for itself, and answers the same way whether the org or the code was
wrong. Attempts are limited per source, and sources that keep failing wait while an organisation
sees many failures; a reporter with the right code is never held back by others' guesses
(`ReceiptLimiter`, docs/threat-model.md "Receipt codes"), in this process or shared by every
replica (`ReceiptLimits`, `UPSTANDER_RATE_LIMIT_STORE`).
"""

from __future__ import annotations

import logging
import uuid

import httpx
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from upstander.gateway.auth.tokens import TokenIssuer
from upstander.gateway.edge.limitstore import ReceiptLimits
from upstander.kit.db import CommittingRoute
from upstander.kit.errors import ProblemError, RateLimited, problem_responses
from upstander.kit.schemas import RequestModel

log = logging.getLogger("upstander.gateway.receipt")

router = APIRouter(tags=["auth"], route_class=CommittingRoute)


class ReceiptExchange(RequestModel):
    org: str = Field(
        min_length=2,
        max_length=63,
        pattern=r"^[a-z0-9-]+$",
        examples=["demo"],
        description="The organisation's slug, as in the reporting form's address.",
    )
    receipt_code: str = Field(
        min_length=16,
        max_length=64,
        examples=["K7QW2-9XMDA-4RT8C-JH3PZ"],
        description="The code shown once when the report was made.",
    )


class ReporterToken(BaseModel):
    access_token: str
    token_type: str = "Bearer"
    expires_in: int = Field(examples=[900])
    scope: str = Field(examples=["reporter"])


class InvalidReceipt(ProblemError):
    status, slug, title = 401, "invalid-receipt", "Invalid receipt"

    def __init__(self) -> None:
        super().__init__(
            "The organisation or the receipt code is not valid.",
            headers={"WWW-Authenticate": 'Bearer realm="upstander"'},
        )


class IntakeUnavailable(ProblemError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


async def _service_token(issuer: TokenIssuer) -> str:
    return await issuer.issue_gateway_service_token(ttl_seconds=60)


@router.post(
    "/auth/receipt",
    operation_id="exchange_receipt",
    summary="Exchange a receipt code for a reporter token",
    description=(
        "A reporter (anonymous or confidential) sends the organisation's slug and the receipt "
        "code they were given. The token lets them read their case's status and deadlines and "
        "talk with the people handling it (`/cases/v1/reporter/...`), and add attachments "
        "(`/intake/v1/reporter/attachments`). Each address may try a few codes at once and a "
        "few a minute (a right code does not count); over that the answer is 429 with "
        "`Retry-After`."
    ),
    response_model=ReporterToken,
    responses=problem_responses(401, 422, 429, 503),
)
async def exchange_receipt(
    body: ReceiptExchange, request: Request, response: Response
) -> ReporterToken:
    limiter: ReceiptLimits = request.app.state.receipt_limits
    client = request.client
    # Keys are keyed hashes (in memory, or in the shared store with a TTL): the address is
    # never stored in a row or logged.
    source_key = limiter.key(client.host) if client else "unknown"
    org_key = limiter.key(body.org)
    # The attempt is taken now and given back only by an answer that says so (a right code,
    # intake unavailable): a request abandoned mid-check keeps it, so cancelling buys nothing.
    retry_after = await limiter.begin(source_key, org_key)
    if retry_after is not None:
        raise RateLimited(retry_after, "Too many attempts; wait before trying again.")

    issuer: TokenIssuer = request.app.state.token_issuer
    settings = request.app.state.settings
    http: httpx.AsyncClient = request.app.state.http
    try:
        answer = await http.post(
            settings.intake_url.rstrip("/") + "/intake/internal/receipts/verify",
            json={"org": body.org, "receipt_code": body.receipt_code},
            headers={"authorization": f"Bearer {await _service_token(issuer)}"},
            timeout=10.0,
        )
    except httpx.HTTPError as exc:
        await limiter.abandoned(source_key)
        log.warning("receipt verification unavailable: %s", type(exc).__name__)
        raise IntakeUnavailable("Receipts cannot be checked right now; try again soon.") from exc
    if answer.status_code == 404:
        await limiter.failed(source_key, org_key)
        raise InvalidReceipt()
    if not answer.is_success:
        await limiter.abandoned(source_key)
        log.warning("receipt verification failed with HTTP %s", answer.status_code)
        raise IntakeUnavailable("Receipts cannot be checked right now; try again soon.")
    await limiter.succeeded(source_key)
    found = answer.json()
    token, expires_in = await issuer.issue_reporter_token(
        uuid.UUID(found["org_id"]), uuid.UUID(found["report_id"])
    )
    response.headers["Cache-Control"] = "no-store"
    return ReporterToken(access_token=token, expires_in=expires_in, scope="reporter")
