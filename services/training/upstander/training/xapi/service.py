"""The Learning Record Store: store statements (a batch is all or nothing), read them back by
id or by filters, void them, and turn `completed`/`passed` statements about a course's
activity into completions."""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.errors import BadRequest, Conflict, NotFound
from upstander.kit.pagination import decode_cursor as decode_keyset_cursor
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Completion, CompletionSource, Course, Person, XapiStatement
from upstander.training.xapi.schemas import (
    COMPLETION_VERBS,
    VOIDED,
    ParsedStatement,
    mbox_sha1,
    parse_statement,
    same_statement,
)

AUTHORITY_HOME = "https://upstander.dev"
MAX_BATCH = 2_000


@dataclass(frozen=True)
class StatementFilters:
    agent: str | None = None
    verb: str | None = None
    activity: str | None = None
    registration: uuid.UUID | None = None
    since: datetime | None = None
    until: datetime | None = None
    ascending: bool = False


# ----------------------------------------------------------------------------- writing


async def store_statements(
    session: AsyncSession,
    org_id: uuid.UUID,
    raw_statements: list[Any],
    *,
    authority: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Validate every statement, then store the new ones; any error stores nothing. Returns
    the ids in the order sent (a statement sent again unchanged is accepted, not stored twice)."""
    if len(raw_statements) > MAX_BATCH:
        raise BadRequest(f"Send at most {MAX_BATCH} statements at a time.")
    parsed = [
        parse_statement(raw, where=f"statements[{index}]" if len(raw_statements) > 1 else None)
        for index, raw in enumerate(raw_statements)
    ]
    fresh: dict[uuid.UUID, ParsedStatement] = {}
    for statement in parsed:
        earlier = fresh.get(statement.statement_id)
        if earlier is not None and not same_statement(earlier.body, statement.body):
            raise BadRequest(f"Two statements in the batch share the id {statement.statement_id}.")
        fresh[statement.statement_id] = statement

    existing = {
        row.statement_id: row
        for row in await session.scalars(
            select(XapiStatement).where(
                XapiStatement.org_id == org_id, XapiStatement.statement_id.in_(list(fresh))
            )
        )
    }
    for statement_id, row in existing.items():
        if not same_statement(row.body, fresh[statement_id].body):
            raise Conflict(
                f"Statement {statement_id} is already stored with other content; a stored "
                "statement never changes."
            )
        del fresh[statement_id]

    await _check_voiding(session, org_id, fresh)
    if fresh:
        await session.execute(
            insert(XapiStatement),
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": org_id,
                    "statement_id": s.statement_id,
                    "body": s.body,
                    "stored": now,
                    "authority": authority[:64],
                    "actor": s.actor,
                    "object_agent": s.object_agent,
                    "verb_id": s.verb_id[:500],
                    "activity_id": s.activity_id,
                    "registration": s.registration,
                    "voids": s.voids,
                    "voided": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for s in fresh.values()
            ],
        )
        touched = await _record_completions(session, org_id, list(fresh.values()), authority, now)
        touched |= await _apply_voiding(session, org_id, list(fresh.values()), now)
        if touched:
            await refresh_items(
                session,
                org_id,
                people={person_id for person_id, _ in touched},
                courses={course_id for _, course_id in touched},
            )
    return [statement.statement_id for statement in parsed]


async def _check_voiding(
    session: AsyncSession, org_id: uuid.UUID, fresh: dict[uuid.UUID, ParsedStatement]
) -> None:
    """A voiding statement may not void another voiding statement."""
    targets = {s.voids for s in fresh.values() if s.voids is not None}
    if not targets:
        return
    in_batch = {t for t in targets if t in fresh and fresh[t].verb_id == VOIDED}
    stored = set(
        (
            await session.scalars(
                select(XapiStatement.statement_id).where(
                    XapiStatement.org_id == org_id,
                    XapiStatement.statement_id.in_(targets),
                    XapiStatement.verb_id == VOIDED,
                )
            )
        ).all()
    )
    if in_batch or stored:
        target = sorted(in_batch | stored)[0]
        raise BadRequest(f"Statement {target} is itself a voiding statement; it cannot be voided.")


async def _apply_voiding(
    session: AsyncSession, org_id: uuid.UUID, stored: list[ParsedStatement], now: datetime
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """Mark voided what the new voiding statements target, and what earlier voiding
    statements targeted before it arrived; their completions go with them. Returns the
    (person, course) pairs that lost a completion."""
    targets = {s.voids for s in stored if s.voids is not None}
    new_ids = [s.statement_id for s in stored]
    earlier = await session.scalars(
        select(XapiStatement.voids).where(
            XapiStatement.org_id == org_id, XapiStatement.voids.in_(new_ids)
        )
    )
    targets |= {target for target in earlier.all() if target is not None}
    if not targets:
        return set()
    await session.execute(
        update(XapiStatement)
        .where(
            XapiStatement.org_id == org_id,
            XapiStatement.statement_id.in_(targets),
            XapiStatement.verb_id != VOIDED,
        )
        .values(voided=True, updated_at=now)
    )
    voided = (
        Completion.org_id == org_id,
        Completion.source == CompletionSource.XAPI,
        Completion.statement_id.in_(targets),
    )
    lost = {
        (person_id, course_id)
        for person_id, course_id in (
            await session.execute(select(Completion.person_id, Completion.course_id).where(*voided))
        ).all()
    }
    await session.execute(delete(Completion).where(*voided))
    return lost


async def _record_completions(
    session: AsyncSession,
    org_id: uuid.UUID,
    stored: list[ParsedStatement],
    authority: str,
    now: datetime,
) -> set[tuple[uuid.UUID, uuid.UUID]]:
    """`completed`/`passed` of a course's activity by a known person → a completion. Returns
    the (person, course) pairs that gained one."""
    candidates = [s for s in stored if s.verb_id in COMPLETION_VERBS and s.activity_id]
    candidates = [s for s in candidates if s.actor_ifi is not None]
    if not candidates:
        return set()
    courses: dict[str, uuid.UUID] = {}
    for course in await session.scalars(select(Course).where(Course.org_id == org_id)):
        for activity in course.activity_ids or []:
            courses.setdefault(activity, course.id)
    candidates = [s for s in candidates if s.activity_id in courses]
    if not candidates:
        return set()
    people = await _people_by_identifier(session, org_id, candidates)
    rows: list[dict[str, Any]] = []
    seen: set[tuple[uuid.UUID, uuid.UUID, datetime]] = set()
    for statement in candidates:
        assert statement.actor_ifi is not None and statement.activity_id is not None
        person_id = people.get(statement.actor_ifi)
        if person_id is None:
            continue
        course_id = courses[statement.activity_id]
        completed_at = min(statement.timestamp or now, now)
        key = (person_id, course_id, completed_at)
        if key in seen:
            continue
        seen.add(key)
        duplicate = await session.scalar(
            select(Completion.id).where(
                Completion.org_id == org_id,
                Completion.person_id == person_id,
                Completion.course_id == course_id,
                Completion.completed_at == completed_at,
            )
        )
        if duplicate is not None:
            continue  # e.g. `completed` and `passed` sent for the same attempt
        rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "person_id": person_id,
                "course_id": course_id,
                "completed_at": completed_at,
                "score": statement.score,
                "duration_minutes": statement.duration_minutes,
                "source": CompletionSource.XAPI,
                "certificate_id": None,
                "statement_id": statement.statement_id,
                "recorded_by": f"xapi:{authority}"[:64],
                "created_at": now,
                "updated_at": now,
            }
        )
    if rows:
        await session.execute(insert(Completion), rows)
    return {(row["person_id"], row["course_id"]) for row in rows}


async def _people_by_identifier(
    session: AsyncSession, org_id: uuid.UUID, statements: list[ParsedStatement]
) -> dict[tuple[str, str], uuid.UUID]:
    """Actors → people of the org: `mbox` mailto: email, an account whose name is the email,
    or the SHA-1 of the mailto: IRI."""
    emails: dict[str, tuple[str, str]] = {}
    digests: dict[str, tuple[str, str]] = {}
    for statement in statements:
        assert statement.actor_ifi is not None
        kind, value = statement.actor_ifi
        if kind == "mbox":
            emails[value.removeprefix("mailto:").lower()] = statement.actor_ifi
        elif kind == "account":
            emails[value.split("|", 1)[1].strip().lower()] = statement.actor_ifi
        elif kind == "mbox_sha1sum":
            digests[value] = statement.actor_ifi
    found: dict[tuple[str, str], uuid.UUID] = {}
    if emails:
        for person_id, email in await session.execute(
            select(Person.id, Person.email).where(
                Person.org_id == org_id, Person.email.in_(list(emails))
            )
        ):
            found[emails[email.lower()]] = person_id
    if digests:
        for person_id, email in await session.execute(
            select(Person.id, Person.email).where(Person.org_id == org_id)
        ):
            identifier = digests.get(mbox_sha1(email.lower()))
            if identifier is not None:
                found[identifier] = person_id
    return found


# ----------------------------------------------------------------------------- reading


def representation(row: XapiStatement) -> dict[str, Any]:
    """The statement as the LRS returns it: as sent, plus stored, authority, version, and a
    timestamp (the stored time) where it had none."""
    statement = dict(row.body)
    stored = row.stored.isoformat()
    statement["stored"] = stored
    statement.setdefault("timestamp", stored)
    statement.setdefault("version", "1.0.0")
    statement["authority"] = {
        "objectType": "Agent",
        "account": {"homePage": AUTHORITY_HOME, "name": row.authority},
    }
    return statement


async def get_statement(
    session: AsyncSession, org_id: uuid.UUID, statement_id: uuid.UUID, *, voided: bool
) -> dict[str, Any]:
    row = await session.scalar(
        select(XapiStatement).where(
            XapiStatement.org_id == org_id, XapiStatement.statement_id == statement_id
        )
    )
    if row is None or row.voided != voided:
        raise NotFound("No such voided statement." if voided else "No such statement.")
    return representation(row)


def encode_cursor(stored: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([stored.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    # The kit's decoder: the same (time, id) shape, and the same 400 for anything malformed.
    return decode_keyset_cursor(cursor)


async def query_statements(
    session: AsyncSession,
    org_id: uuid.UUID,
    filters: StatementFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Statements that match, by stored time (newest first unless ascending); voided
    statements are left out. Returns a page and the cursor of the next one."""
    statement: Select[Any] = select(XapiStatement).where(
        XapiStatement.org_id == org_id, XapiStatement.voided.is_(False)
    )
    if filters.agent is not None:
        statement = statement.where(
            or_(XapiStatement.actor == filters.agent, XapiStatement.object_agent == filters.agent)
        )
    if filters.verb is not None:
        statement = statement.where(XapiStatement.verb_id == filters.verb)
    if filters.activity is not None:
        statement = statement.where(XapiStatement.activity_id == filters.activity)
    if filters.registration is not None:
        statement = statement.where(XapiStatement.registration == filters.registration)
    if filters.since is not None:
        statement = statement.where(XapiStatement.stored > filters.since)
    if filters.until is not None:
        statement = statement.where(XapiStatement.stored <= filters.until)
    if cursor:
        stored, row_id = decode_cursor(cursor)
        if filters.ascending:
            after = or_(
                XapiStatement.stored > stored,
                and_(XapiStatement.stored == stored, XapiStatement.id > row_id),
            )
        else:
            after = or_(
                XapiStatement.stored < stored,
                and_(XapiStatement.stored == stored, XapiStatement.id < row_id),
            )
        statement = statement.where(after)
    if filters.ascending:
        statement = statement.order_by(XapiStatement.stored, XapiStatement.id)
    else:
        statement = statement.order_by(XapiStatement.stored.desc(), XapiStatement.id.desc())
    rows: list[XapiStatement] = list((await session.scalars(statement.limit(limit + 1))).all())
    more = encode_cursor(rows[limit - 1].stored, rows[limit - 1].id) if len(rows) > limit else None
    return [representation(row) for row in rows[:limit]], more
