"""Routes of compliance: per-person statuses, roll-ups and a CSV export."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import fields

from fastapi import Depends, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, staff_or_client
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT, cursor_query
from upstander.kit.scopes import Scope, require_scope
from upstander.training.access import clock_of
from upstander.training.compliance import service
from upstander.training.compliance.engine import Item, Status
from upstander.training.compliance.schemas import (
    ComplianceGroup,
    ComplianceItem,
    CompliancePage,
    ComplianceSummary,
    PersonCompliance,
    PersonSummary,
)

ITEM_FIELDS = tuple(field.name for field in fields(Item))

router = make_router(prefix="/training/v1", tags=["compliance"])

VISIBILITY = (
    "Trainers, admins and auditors see everyone; a person sees themself and the people who "
    "report to them (directly or not)."
)


def filters(
    team: uuid.UUID | None = Query(
        None, description="Only people below this manager in the reporting lines."
    ),
    role: str | None = Query(None, max_length=64, examples=["staff"]),
    location: str | None = Query(None, max_length=64, examples=["CA"]),
    status: Status | None = Query(
        None, description="Only people with at least one item in this status."
    ),
) -> service.Filters:
    return service.Filters(team=team, role=role, location=location, status=status)


def _out(result: service.PersonCompliance) -> PersonCompliance:
    return PersonCompliance(
        person=PersonSummary.model_validate(result.person),
        status=result.status,
        # Shallow: `dataclasses.asdict` deep-copies every datetime and UUID, which costs more
        # than the query for a page.
        items=[
            ComplianceItem(**{name: getattr(item, name) for name in ITEM_FIELDS})
            for item in result.items
        ],
    )


@router.get(
    "/compliance",
    operation_id="list_compliance",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Each person's training and policy status, leadership first",
    description=VISIBILITY,
    response_model=CompliancePage,
    responses=problem_responses(400),
)
async def list_compliance(
    request: Request,
    chosen: service.Filters = Depends(filters),
    limit: int = Query(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT),
    cursor: str | None = cursor_query(),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> CompliancePage:
    results, next_cursor = await service.compliance_page(
        session, principal, chosen, limit=limit, cursor=cursor, now=clock_of(request).now()
    )
    return CompliancePage(items=[_out(r) for r in results], next_cursor=next_cursor)


@router.get(
    "/compliance/summary",
    operation_id="summarise_compliance",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="Compliance roll-ups by organisation, role, location and team",
    description=VISIBILITY,
    response_model=ComplianceSummary,
)
async def summarise_compliance(
    request: Request,
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> ComplianceSummary:
    now = clock_of(request).now()
    groups = await service.compliance_summary(session, principal, now=now)
    return ComplianceSummary(
        as_of=now,
        **{
            # Shallow, as in `_out`: `asdict` deep-copies, once per group (~1,300 at 10k people).
            dimension: [
                ComplianceGroup(
                    key=group.key,
                    label=group.label,
                    people=group.people,
                    people_compliant=group.people_compliant,
                    items=group.items,
                )
                for group in found
            ]
            for dimension, found in groups.items()
        },
    )


CSV_COLUMNS = [
    "person_id",
    "email",
    "name",
    "roles",
    "location",
    "manager_id",
    "is_leadership",
    "overall_status",
    "kind",
    "title",
    "status",
    "due_at",
    "completed_at",
    "expires_at",
    "requirement_id",
    "course_id",
    "policy_id",
    "policy_version",
]


def _cell(value: object) -> str:
    """Text for a spreadsheet cell; formulas are neutralised (CSV injection)."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.get(
    "/compliance.csv",
    operation_id="export_compliance",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="The compliance view as CSV: one row per person and item",
    description=VISIBILITY,
    response_class=Response,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def export_compliance(
    request: Request,
    chosen: service.Filters = Depends(filters),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> Response:
    results = await service.compliance_all(session, principal, chosen, now=clock_of(request).now())
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for result in results:
        person = result.person
        head = [
            person.id,
            person.email,
            person.name,
            " ".join(person.roles or []),
            person.location,
            person.manager_id,
            person.is_leadership,
            result.status.value,
        ]
        entries: list[Item | None] = list(result.items) or [None]
        for item in entries:
            tail = (
                [
                    item.kind,
                    item.title,
                    item.status.value,
                    item.due_at,
                    item.completed_at,
                    item.expires_at,
                    item.requirement_id,
                    item.course_id,
                    item.policy_id,
                    item.policy_version,
                ]
                if item is not None
                else [""] * 10
            )
            writer.writerow([_cell(value) for value in head + tail])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="compliance.csv"'},
    )
