"""The route of the completion change feed, `GET /training/v1/completions/changes`, and its
bodies (registered before the completion routes, so `changes` is never read as an id)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from fastapi import Depends, Query
from pydantic import ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.app import make_router
from upstander.kit.auth import Principal, staff_or_client
from upstander.kit.changefeed import HAS_MORE_DESCRIPTION, NEXT_CURSOR_DESCRIPTION
from upstander.kit.db import get_session
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import cursor_query
from upstander.kit.schemas import ResponseModel
from upstander.kit.scopes import Scope, require_scope
from upstander.training.completions import changes as service
from upstander.training.completions.change_tables import CompletionChange
from upstander.training.completions.schemas import CompletionOut
from upstander.training.models import Completion

router = make_router(prefix="/training/v1/completions", tags=["completions"])

COMPLETION_ID = "9b2f1c3d-4e5f-4a6b-8c7d-0e1f2a3b4c5d"
PERSON_ID = "2c1d0e9f-8a7b-4c3d-9e0f-1a2b3c4d5e6f"
COURSE_ID = "6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"
PAGE_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "completion_id": COMPLETION_ID,
            "change": "created",
            "changed_at": "2026-11-30T10:00:00Z",
            "person_id": PERSON_ID,
            "course_id": COURSE_ID,
            "completion": {
                "id": COMPLETION_ID,
                "org_id": "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e",
                "person_id": PERSON_ID,
                "course_id": COURSE_ID,
                "completed_at": "2026-11-29T17:00:00Z",
                "score": 92.5,
                "duration_minutes": 60,
                "source": "xapi",
                "certificate_id": None,
                "statement_id": "3f2e1d0c-9b8a-4765-8432-10fedcba9876",
                "external_refs": [],
                "created_at": "2026-11-30T10:00:00Z",
            },
        },
        {
            "completion_id": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
            "change": "deleted",
            "changed_at": "2026-11-30T10:05:00Z",
            "person_id": PERSON_ID,
            "course_id": COURSE_ID,
            "completion": None,
        },
    ],
    "next_cursor": "WyJjb21wbGV0aW9uLWNoYW5nZXMiLCA0Ml0",
    "has_more": False,
}


class CompletionChangeOut(ResponseModel):
    """One committed change to a completion."""

    completion_id: uuid.UUID = Field(examples=[COMPLETION_ID])
    change: Literal["created", "updated", "deleted"] = Field(
        description="`created`: recorded (by hand, an upsert, a CSV import or an xAPI "
        "statement); `updated`: its score, duration, certificate, time or external "
        "references changed (an upsert); `deleted`: a tombstone, the completion was removed "
        "(its xAPI statement was voided). Drop your copy: its earlier changes no longer "
        "appear in the feed.",
        examples=["created"],
    )
    changed_at: datetime = Field(
        description="When the change was committed.", examples=["2026-11-30T10:00:00Z"]
    )
    person_id: uuid.UUID | None = Field(
        description="Whose completion it is (also on a tombstone).", examples=[PERSON_ID]
    )
    course_id: uuid.UUID | None = Field(
        description="Of which course (also on a tombstone).", examples=[COURSE_ID]
    )
    completion: CompletionOut | None = Field(
        description="The completion as it is now (with its `external_refs`); null for a "
        "tombstone (`deleted`)."
    )


class CompletionChangePage(ResponseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [PAGE_EXAMPLE]})

    items: list[CompletionChangeOut]
    next_cursor: str = Field(
        description=NEXT_CURSOR_DESCRIPTION, examples=["WyJjb21wbGV0aW9uLWNoYW5nZXMiLCA0Ml0"]
    )
    has_more: bool = Field(description=HAS_MORE_DESCRIPTION, examples=[False])


def _entry(change: CompletionChange, completion: Completion | None) -> CompletionChangeOut:
    live = completion if change.kind != "deleted" else None
    return CompletionChangeOut(
        completion_id=change.completion_id,
        change=change.kind,  # type: ignore[arg-type]
        changed_at=change.changed_at,
        person_id=completion.person_id if completion is not None else change.person_id,
        course_id=completion.course_id if completion is not None else change.course_id,
        completion=CompletionOut.model_validate(live) if live is not None else None,
    )


@router.get(
    "/changes",
    operation_id="list_completion_changes",
    dependencies=[require_scope(Scope.TRAINING_READ)],
    summary="The completion change feed (for HR and LMS syncs)",
    description=(
        "Every committed change to the organisation's completions, whatever recorded them "
        "(by hand, an upsert by external reference, a CSV import, an xAPI statement), in "
        "commit order, from `cursor` on (omit it to start from the beginning). Keep "
        "`next_cursor` and pass it back: no change is skipped or repeated across pages, even "
        "while completions are recorded. Trainers, admins, auditors and clients with "
        "`training:read` read everyone's; anyone else their own. A completion removed (its "
        "xAPI statement voided) appears once more as a tombstone (`change: deleted`). A "
        "cursor the platform did not give is a 400 `invalid-cursor`. Webhooks "
        "(`upstander.training.completed`) are hints to call this; the feed is the truth."
    ),
    response_model=CompletionChangePage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_completion_changes(
    cursor: str | None = cursor_query("`next_cursor` of the previous call."),
    limit: int = Query(100, ge=1, le=service.FEED_MAX_LIMIT, description="Changes per page."),
    principal: Principal = Depends(staff_or_client),
    session: AsyncSession = Depends(get_session),
) -> CompletionChangePage:
    after = service.FEED.decode_cursor(cursor)
    rows, position, more = await service.changes(session, principal, after=after, limit=limit)
    return CompletionChangePage(
        items=[_entry(change, completion) for change, completion in rows],
        next_cursor=service.FEED.encode_cursor(position),
        has_more=more,
    )
