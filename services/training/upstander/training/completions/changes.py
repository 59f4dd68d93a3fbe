"""The completion change feed: every committed change to a completion, by any channel (by
hand, an HR or LMS upsert, a CSV import, an xAPI statement; a voiding statement removes one),
numbered in commit order within the organisation (upstander.kit.changefeed) and read back a
page at a time (`GET /training/v1/completions/changes`).

Two hooks see every path, as for `upstander.training.completed` (announce.py): `before_flush`
for what goes through the session, `do_orm_execute` for the bulk INSERT of imports and xAPI
and the bulk DELETE of voided completions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Delete, Insert, Update, and_, event, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.util import identity_key

from upstander.kit.auth import Principal
from upstander.kit.changefeed import MAX_LIMIT, ChangeFeed
from upstander.kit.db import new_id
from upstander.kit.events import EventBus
from upstander.training.access import reads_everything
from upstander.training.completions.announce import BUS_KEY
from upstander.training.completions.change_tables import CompletionChange
from upstander.training.external_refs.models import CompletionExternalRef
from upstander.training.models import Completion

# The advisory lock's namespace (its first key); the second is drawn from the org id.
LOCK_NAMESPACE = 0x7C0C
FEED_MAX_LIMIT = MAX_LIMIT


def _ids(completion: Completion) -> dict[str, Any]:
    return {"person_id": completion.person_id, "course_id": completion.course_id}


def _collect(session: Session, feed: ChangeFeed) -> None:
    for obj in session.new:
        if isinstance(obj, Completion):
            if obj.id is None:
                obj.id = new_id()  # the column default comes at INSERT; the change needs it now
            feed.note(session, obj.org_id, obj.id, "created", **_ids(obj))
    for obj in session.dirty:
        # Its columns, or its references (a collection) changed.
        if isinstance(obj, Completion) and session.is_modified(obj):
            feed.note(session, obj.org_id, obj.id, "updated", **_ids(obj))
    for obj in session.deleted:
        if isinstance(obj, Completion):
            feed.note(session, obj.org_id, obj.id, "deleted", **_ids(obj))
    for obj in [*session.new, *session.dirty, *session.deleted]:
        if isinstance(obj, CompletionExternalRef) and obj.completion_id is not None:
            parent = session.identity_map.get(identity_key(Completion, obj.completion_id))
            ids = _ids(parent) if isinstance(parent, Completion) else {}
            feed.note(session, obj.org_id, obj.completion_id, "updated", **ids)


def _bulk(state: ORMExecuteState) -> None:
    """The bulk statements on completions: INSERT (imports, xAPI), DELETE (voiding), UPDATE."""
    statement = state.statement
    if not isinstance(statement, Insert | Delete | Update):
        return
    if (statement.entity_description or {}).get("type") is not Completion:
        return
    session = state.session
    if isinstance(statement, Insert):
        rows: Any = state.parameters
        values_list = list(rows) if isinstance(rows, list | tuple) else [rows or {}]
        for values in values_list:
            if isinstance(values, Mapping) and values.get("id") and values.get("org_id"):
                FEED.note(
                    session,
                    values["org_id"],
                    values["id"],
                    "created",
                    person_id=values.get("person_id"),
                    course_id=values.get("course_id"),
                )
        return
    kind = "deleted" if isinstance(statement, Delete) else "updated"
    query = select(Completion.id, Completion.org_id, Completion.person_id, Completion.course_id)
    if statement.whereclause is not None:
        query = query.where(statement.whereclause)
    for completion_id, org_id, person_id, course_id in session.execute(query).all():
        FEED.note(session, org_id, completion_id, kind, person_id=person_id, course_id=course_id)


def _stamp(session: Session) -> datetime:
    bus: EventBus | None = session.info.get(BUS_KEY)
    return bus.clock.now() if bus is not None else datetime.now(UTC)


FEED = ChangeFeed(
    name="completion-changes",
    table=CompletionChange,
    subject="completion_id",
    kinds=("updated", "deleted", "created"),
    lock_namespace=LOCK_NAMESPACE,
    tracked=(Completion, CompletionExternalRef),
    collect=_collect,
    stamp=_stamp,
)


def install() -> None:
    """Listen on every session (idempotent); only completions are looked at."""
    FEED.install()
    if not event.contains(Session, "do_orm_execute", _bulk):
        event.listen(Session, "do_orm_execute", _bulk)


install()


async def changes(
    session: AsyncSession, principal: Principal, *, after: int, limit: int
) -> tuple[list[tuple[CompletionChange, Completion | None]], int, bool]:
    """The changes after `after` to the organisation's completions, in commit order, each with
    the completion as it is now (None once removed). A reader of every record (trainer,
    admin, auditor, a client with `training:read`) gets all of them; anyone else their own.
    A removed completion shows once more, as its tombstone, and its earlier changes no
    longer show."""
    if principal.org_id is None:
        return [], after, False
    org_id = principal.org_id
    statement = select(CompletionChange, Completion).outerjoin(
        Completion,
        and_(Completion.id == CompletionChange.completion_id, Completion.org_id == org_id),
    )
    if not reads_everything(principal):
        own: uuid.UUID | None = principal.person_id
        if own is None:
            return [], after, False
        statement = statement.where(
            or_(CompletionChange.person_id == own, Completion.person_id == own)
        )
    return await FEED.read(
        session,
        statement,
        org_id=org_id,
        after=after,
        limit=limit,
        shown=lambda row: (row[0].kind == "deleted") == (row[1] is None),
    )
