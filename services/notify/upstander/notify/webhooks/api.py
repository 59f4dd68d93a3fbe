"""Admin routes for outside webhooks: endpoints, secret rotation, the delivery log, replay."""

from __future__ import annotations

import uuid
from typing import Literal

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, require_roles
from upstander.kit.db import after_commit, get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import Page, PageParams, page_params
from upstander.kit.scopes import Scope, require_scope
from upstander.notify.models import WebhookDelivery
from upstander.notify.webhooks import service
from upstander.notify.webhooks.schemas import (
    ATTEMPTS_SHOWN,
    ReplayRequest,
    ReplayResult,
    SecretRotated,
    WebhookCreate,
    WebhookDeliveryAttemptOut,
    WebhookDeliveryOut,
    WebhookOut,
    WebhookUpdate,
    WebhookWithSecret,
)

router = make_router(prefix="/notify/v1/webhooks", tags=["webhooks"])

Admin = require_roles("admin")


def _org(principal: Principal) -> uuid.UUID:
    assert principal.org_id is not None  # staff_or_client guarantees it
    return principal.org_id


async def _with_attempts(
    session: AsyncSession, deliveries: list[WebhookDelivery]
) -> list[WebhookDeliveryOut]:
    attempts = await service.attempts_of(session, [d.id for d in deliveries], latest=ATTEMPTS_SHOWN)
    return [
        WebhookDeliveryOut.model_validate(d).model_copy(
            update={
                "attempts_log": [
                    WebhookDeliveryAttemptOut.model_validate(a) for a in attempts[d.id]
                ]
            }
        )
        for d in deliveries
    ]


def _wake(request: Request) -> None:
    worker = getattr(request.app.state, "worker", None)
    if worker is not None:
        after_commit(request, worker.wake)


@router.post(
    "",
    operation_id="create_webhook",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Add a webhook endpoint; its signing secret is returned once",
    description=(
        "Admins only. You become the endpoint's owner (an API client's owner, for a client "
        "token): case events reach it only for cases its owner may see, never for a case "
        "hidden from them. `upstander.case.restricted` is never forwarded."
    ),
    status_code=201,
    response_model=WebhookWithSecret,
    responses=problem_responses(400),
)
async def create_webhook(
    body: WebhookCreate,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> WebhookWithSecret:
    webhook, secret = await service.create_webhook(
        session,
        request.app.state.vault,
        _org(principal),
        owner_person_id=service.owner_of(principal),
        url=str(body.url),
        event_types=body.event_types,
        description=body.description,
        allow_http=request.app.state.settings.allows_http_webhooks,
        policy=request.app.state.webhook_policy,
        now=request.app.state.clock.now(),
    )
    return WebhookWithSecret.model_validate(
        {**WebhookOut.model_validate(webhook).model_dump(), "secret": secret}
    )


@router.get(
    "",
    operation_id="list_webhooks",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Your org's webhook endpoints",
    response_model=Page[WebhookOut],
    responses=problem_responses(400),
)
async def list_webhooks(
    params: PageParams = Depends(page_params),
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> Page[WebhookOut]:
    rows, next_cursor = await service.list_webhooks(session, _org(principal), params)
    return Page[WebhookOut](
        items=[WebhookOut.model_validate(r) for r in rows], next_cursor=next_cursor
    )


@router.get(
    "/{webhook_id}",
    operation_id="get_webhook",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="One webhook endpoint",
    response_model=WebhookOut,
)
async def get_webhook(
    webhook_id: uuid.UUID,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> WebhookOut:
    return WebhookOut.model_validate(
        await service.get_webhook(session, _org(principal), webhook_id)
    )


@router.patch(
    "/{webhook_id}",
    operation_id="update_webhook",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Change an endpoint's URL, event types or description; pause or re-enable it",
    description=(
        "Admins only. Whoever changes an endpoint becomes its owner (an empty body claims an "
        "endpoint that has none): case events then follow what that person may see."
    ),
    response_model=WebhookOut,
    responses=problem_responses(400),
)
async def update_webhook(
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> WebhookOut:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    webhook = await service.update_webhook(
        session,
        webhook,
        body.model_dump(exclude_unset=True),
        owner_person_id=service.owner_of(principal),
        allow_http=request.app.state.settings.allows_http_webhooks,
        policy=request.app.state.webhook_policy,
        now=request.app.state.clock.now(),
    )
    return WebhookOut.model_validate(webhook)


@router.delete(
    "/{webhook_id}",
    operation_id="delete_webhook",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Remove an endpoint, its delivery log and its secrets",
    status_code=204,
    response_class=Response,
)
async def delete_webhook(
    webhook_id: uuid.UUID,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> Response:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    await service.delete_webhook(session, request.app.state.vault, webhook)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/rotate-secret",
    operation_id="rotate_webhook_secret",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Issue a new signing secret; the old one stays valid for 24 hours",
    response_model=SecretRotated,
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> SecretRotated:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    secret = await service.rotate_secret(session, webhook, now=request.app.state.clock.now())
    assert webhook.previous_secret_expires_at is not None
    return SecretRotated(
        secret=secret, previous_secret_expires_at=webhook.previous_secret_expires_at
    )


@router.get(
    "/{webhook_id}/deliveries",
    operation_id="list_webhook_deliveries",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="The endpoint's delivery log, newest first",
    description=(
        "Each delivery's latest state and its tries (`attempts_log`: time, response code, "
        "latency, error)."
    ),
    response_model=Page[WebhookDeliveryOut],
    responses=problem_responses(400),
)
async def list_webhook_deliveries(
    webhook_id: uuid.UUID,
    status: Literal["pending", "failed", "sent", "dead"] | None = Query(None),
    params: PageParams = Depends(page_params),
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> Page[WebhookDeliveryOut]:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    rows, next_cursor = await service.list_deliveries(session, webhook, params, status)
    return Page[WebhookDeliveryOut](
        items=await _with_attempts(session, rows), next_cursor=next_cursor
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/replay",
    operation_id="replay_webhook_delivery",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Send one delivery again (same webhook-id), e.g. a dead letter",
    status_code=202,
    response_model=WebhookDeliveryOut,
)
async def replay_webhook_delivery(
    webhook_id: uuid.UUID,
    delivery_id: uuid.UUID,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> WebhookDeliveryOut:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    delivery = await service.replay_delivery(
        session, webhook, delivery_id, now=request.app.state.clock.now()
    )
    _wake(request)
    (out,) = await _with_attempts(session, [delivery])
    return out


@router.post(
    "/{webhook_id}/replay",
    operation_id="replay_webhook_deliveries",
    dependencies=[require_scope(Scope.WEBHOOKS_MANAGE)],
    summary="Send again what has not got through since a time (optionally everything)",
    description=(
        "Dead letters and deliveries waiting for their next retry, created since `since`, are "
        "sent again now on a fresh retry schedule (with `include_sent`, delivered ones too), "
        "each with its original `webhook-id`. A delivery being attempted right now is left to "
        "that attempt."
    ),
    status_code=202,
    response_model=ReplayResult,
)
async def replay_webhook_deliveries(
    webhook_id: uuid.UUID,
    body: ReplayRequest,
    request: Request,
    principal: Principal = Admin,
    session: AsyncSession = Depends(get_session),
) -> ReplayResult:
    webhook = await service.get_webhook(session, _org(principal), webhook_id)
    count = await service.replay_since(
        session,
        webhook,
        body.since,
        include_sent=body.include_sent,
        now=request.app.state.clock.now(),
    )
    _wake(request)
    return ReplayResult(replayed=count)
