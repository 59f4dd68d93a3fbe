"""The route of the people change feed, `GET /identity/v1/people/changes`, and its bodies
(registered before the identity routes, so `changes` is never read as a person's id)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from fastapi import Query
from pydantic import ConfigDict, Field

from upstander.gateway.identity import people_changes as service
from upstander.gateway.identity.api import DirectoryReader, Session
from upstander.gateway.identity.change_tables import PersonChange
from upstander.gateway.identity.schemas import REFS_EXAMPLE, RefsOut
from upstander.gateway.models import Person
from upstander.kit.app import make_router
from upstander.kit.changefeed import HAS_MORE_DESCRIPTION, NEXT_CURSOR_DESCRIPTION
from upstander.kit.errors import problem_responses
from upstander.kit.pagination import cursor_query
from upstander.kit.schemas import ResponseModel
from upstander.kit.scopes import Scope, require_scope

router = make_router(prefix="/identity/v1", tags=["identity"])

PERSON_ID = "0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"
PAGE_EXAMPLE: dict[str, Any] = {
    "items": [
        {
            "person_id": PERSON_ID,
            "change": "updated",
            "changed_at": "2026-11-30T10:00:00Z",
            "external_id": "E-1042",
            "person": {
                "email": "ana@campaign.example",
                "name": "Ana Ruiz",
                "given_name": "Ana",
                "family_name": "Ruiz",
                "title": "Field Organizer",
                "department": "Field",
                "employee_number": "1042",
                "manager_id": None,
                "roles": ["staff"],
                "is_leadership": False,
                "start_date": "2026-03-01",
                "location": "CA",
                "language": "en",
                "active": True,
                "external_refs": REFS_EXAMPLE,
                "version": 3,
                "updated_at": "2026-11-30T10:00:00Z",
            },
        },
        {
            "person_id": "5e0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77",
            "change": "deleted",
            "changed_at": "2026-11-30T10:05:00Z",
            "external_id": "E-0977",
            "person": None,
        },
    ],
    "next_cursor": "WyJwZW9wbGUtY2hhbmdlcyIsIDQyXQ",
    "has_more": False,
}


class PersonNow(ResponseModel):
    """A person as they are when the feed is read (what an HR sync keeps)."""

    email: str = Field(examples=["ana@campaign.example"])
    name: str = Field(examples=["Ana Ruiz"])
    given_name: str | None = Field(default=None, examples=["Ana"])
    family_name: str | None = Field(default=None, examples=["Ruiz"])
    title: str | None = Field(default=None, examples=["Field Organizer"])
    department: str | None = Field(default=None, examples=["Field"])
    employee_number: str | None = Field(default=None, examples=["1042"])
    manager_id: uuid.UUID | None = Field(default=None, examples=[None])
    roles: list[str] = Field(examples=[["staff"]])
    is_leadership: bool = Field(examples=[False])
    start_date: date | None = Field(default=None, examples=["2026-03-01"])
    location: str | None = Field(default=None, examples=["CA"])
    language: str = Field(examples=["en"])
    active: bool = Field(examples=[True])
    external_refs: RefsOut = Field(
        default_factory=list,
        description="What other systems call the person (`POST /identity/v1/people`).",
        examples=[REFS_EXAMPLE],
    )
    version: int = Field(description="Also the person's ETag.", examples=[3])
    updated_at: datetime = Field(examples=["2026-11-30T10:00:00Z"])


class PersonChangeOut(ResponseModel):
    """One committed change to a person. Fetch `GET /identity/v1/people/{person_id}` for
    more (a tombstone's person is 404 over SCIM, still readable here: records keep them)."""

    person_id: uuid.UUID = Field(examples=[PERSON_ID])
    change: Literal["created", "updated", "deactivated", "deleted"] = Field(
        description="`created`: added to the directory (or provisioned again after a "
        "`deleted`); `updated`: a field below changed (a reactivation too); `deactivated`: "
        "they left (sign-in stops, records keep them); `deleted`: a tombstone, deprovisioned "
        "over SCIM. Drop your copy: their earlier changes no longer appear in the feed.",
        examples=["updated"],
    )
    changed_at: datetime = Field(
        description="When the change was committed.", examples=["2026-11-30T10:00:00Z"]
    )
    external_id: str | None = Field(
        description="What your identity provider or HR system calls them (SCIM "
        "`externalId`), also on a tombstone.",
        examples=["E-1042"],
    )
    person: PersonNow | None = Field(
        description="The person as they are now; null for a tombstone (`deleted`)."
    )


class PersonChangePage(ResponseModel):
    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [PAGE_EXAMPLE]})

    items: list[PersonChangeOut]
    next_cursor: str = Field(
        description=NEXT_CURSOR_DESCRIPTION, examples=["WyJwZW9wbGUtY2hhbmdlcyIsIDQyXQ"]
    )
    has_more: bool = Field(description=HAS_MORE_DESCRIPTION, examples=[False])


def _entry(change: PersonChange, person: Person | None) -> PersonChangeOut:
    tombstone = change.kind == "deleted"
    return PersonChangeOut(
        person_id=change.person_id,
        change=change.kind,  # type: ignore[arg-type]
        changed_at=change.changed_at,
        external_id=person.external_id if person is not None else None,
        person=None if tombstone or person is None else PersonNow.model_validate(person),
    )


@router.get(
    "/people/changes",
    operation_id="list_people_changes",
    dependencies=[require_scope(Scope.PEOPLE_READ)],
    summary="The people change feed (for HR syncs)",
    description=(
        "Every committed change to your organisation's people, by any path (this API, "
        "SCIM, single sign-on), in commit order, from `cursor` on (omit it to start from "
        "the beginning). Keep `next_cursor` and pass it back: no change is skipped or "
        "repeated across pages, even while people change. Each entry carries the person "
        "as they are now; a person deprovisioned over SCIM appears once more as a tombstone "
        "(`change: deleted`). A cursor the platform did not give is a 400 `invalid-cursor`. "
        "Webhooks (`upstander.person.*`) are hints to call this; the feed is the truth."
    ),
    response_model=PersonChangePage,
    responses=problem_responses(400, 401, 403, 422),
)
async def list_people_changes(
    session: Session,
    principal: DirectoryReader,
    cursor: str | None = cursor_query("`next_cursor` of the previous call."),
    limit: int = Query(100, ge=1, le=service.FEED_MAX_LIMIT, description="Changes per page."),
) -> PersonChangePage:
    after = service.FEED.decode_cursor(cursor)
    rows, position, more = await service.changes(session, principal, after=after, limit=limit)
    return PersonChangePage(
        items=[_entry(change, person) for change, person in rows],
        next_cursor=service.FEED.encode_cursor(position),
        has_more=more,
    )
