"""Routes of reporting forms: public read, admin replace."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Path, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.forms import service
from upstander.intake.forms.schemas import (
    SLUG_PATTERN,
    Language,
    LocalizedReportingFormOut,
    ReportingFormIn,
    ReportingFormOut,
)
from upstander.kit.app import make_router
from upstander.kit.auth import Principal, Role, require_roles
from upstander.kit.db import get_session
from upstander.kit.errors import PreconditionFailed, problem_responses
from upstander.kit.scopes import Scope, require_scope

router = make_router(prefix="/intake/v1", tags=["forms"])

OrgSlug = Annotated[
    str,
    Path(
        pattern=SLUG_PATTERN,
        max_length=63,
        description="The organisation's slug.",
        examples=["demo"],
    ),
]
FormResponse = ReportingFormOut | LocalizedReportingFormOut


def _etag(version: int) -> str:
    return f'"{version}"'


def _parse_if_match(value: str | None) -> int | None:
    if value is None or value.strip() == "*":
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    try:
        return int(tag)
    except ValueError as exc:
        raise PreconditionFailed("If-Match does not name a version of this form.") from exc


@router.get(
    "/forms/{org}",
    operation_id="get_form",
    summary="Get an organisation's reporting form",
    description=(
        "Public: what a reporter sees before reporting — categories, extra questions and "
        "resources (who to call, outside reviewer, hotlines, policy). Without `lang` every "
        'label is `{"en": ..., "es": ...}`; with `lang=en|es` labels are plain strings in that '
        "language. An organisation that has not set its own form gets the platform's default."
    ),
    response_model=FormResponse,
    responses={
        200: {
            "headers": {
                "ETag": {"description": "The form's version.", "schema": {"type": "string"}}
            }
        },
        **problem_responses(404, 422),
    },
)
async def get_form(
    response: Response,
    org: OrgSlug,
    lang: Language | None = Query(None, description="Flatten labels to this language."),
    session: AsyncSession = Depends(get_session),
) -> FormResponse:
    form = await service.get_by_slug(session, org)
    response.headers["ETag"] = _etag(form.version)
    return service.render(form, lang)


@router.put(
    "/forms/{org}",
    operation_id="put_form",
    dependencies=[require_scope(Scope.FORMS_WRITE)],
    summary="Set your organisation's reporting form",
    description=(
        "Admins only. Replaces the whole form of the caller's organisation, published at "
        "`{org}` (its slug). Answers 201 the first time, 200 after. A slug that belongs to "
        "another organisation answers 404. Send `If-Match` with the `ETag` you read to avoid "
        "overwriting someone else's change (412 when stale)."
    ),
    response_model=ReportingFormOut,
    responses={
        201: {"model": ReportingFormOut, "description": "Created"},
        **problem_responses(400, 401, 403, 404, 409, 412, 413, 415, 422),
    },
)
async def put_form(
    response: Response,
    org: OrgSlug,
    body: ReportingFormIn,
    if_match: str | None = Header(None, max_length=100, description="The ETag you read."),
    principal: Principal = require_roles(Role.ADMIN),
    session: AsyncSession = Depends(get_session),
) -> FormResponse:
    assert principal.org_id is not None  # staff_or_client guarantees it
    form, created = await service.put_form(
        session,
        org_id=principal.org_id,
        slug=org,
        body=body,
        if_match=_parse_if_match(if_match),
    )
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    response.headers["ETag"] = _etag(form.version)
    return service.render(form, None)
