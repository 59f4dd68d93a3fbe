"""The Learning Record Store: store statements (a batch is all or nothing), read them back by
id or by filters, void them, and turn `completed`/`passed` statements about a course's
activity into completions."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, exists, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from upstander.kit.errors import BadRequest, Conflict, NotFound
from upstander.kit.pagination import decode_cursor as decode_keyset_cursor
from upstander.training.compliance.store import refresh_items
from upstander.training.models import Completion, CompletionSource, Course, Person, XapiStatement
from upstander.training.xapi import content
from upstander.training.xapi.models import XapiActivity, XapiAttachment, XapiStatementLink
from upstander.training.xapi.schemas import (
    COMPLETION_VERBS,
    VOIDED,
    ParsedStatement,
    agent_identifier,
    canonical,
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
    related_agents: bool = False
    related_activities: bool = False


@dataclass
class Attachments:
    """The parts of a multipart/mixed statement request: SHA-2 → (content type, content)."""

    parts: dict[str, tuple[str, bytes]] = field(default_factory=dict)


def value_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# ----------------------------------------------------------------------------- writing


async def store_statements(
    session: AsyncSession,
    org_id: uuid.UUID,
    raw_statements: list[Any],
    *,
    authority: str,
    now: datetime,
    attachments: Attachments | None = None,
) -> list[uuid.UUID]:
    """Validate every statement, then store the new ones; any error stores nothing. Returns
    the ids in the order sent (a statement sent again unchanged is accepted, not stored twice).
    `attachments` holds the multipart parts; every attachment without a `fileUrl` needs one."""
    if len(raw_statements) > MAX_BATCH:
        raise BadRequest(f"Send at most {MAX_BATCH} statements at a time.")
    parsed = [
        parse_statement(raw, where=f"statements[{index}]" if len(raw_statements) > 1 else None)
        for index, raw in enumerate(raw_statements)
    ]
    parts = (attachments or Attachments()).parts
    content.check_attachments([s.body for s in parsed], parts)
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
        rows: list[dict[str, Any]] = []
        links: list[dict[str, Any]] = []
        for s in fresh.values():
            row_id = uuid.uuid4()
            body = content.normalised(s.body)
            rows.append(
                {
                    "id": row_id,
                    "org_id": org_id,
                    "statement_id": s.statement_id,
                    "body": body,
                    "stored": now,
                    "authority": authority[:64],
                    "actor": s.actor,
                    "object_agent": s.object_agent,
                    "verb_id": s.verb_id[:500],
                    "activity_id": s.activity_id[:500] if s.activity_id else None,
                    "registration": s.registration,
                    "voids": s.voids,
                    "voided": False,
                    "object_ref": _object_ref(body),
                    "created_at": now,
                    "updated_at": now,
                }
            )
            for kind, value, related in _mentions(body, authority):
                links.append(
                    {
                        "id": uuid.uuid4(),
                        "org_id": org_id,
                        "statement_row": row_id,
                        "kind": kind,
                        "value_hash": value_hash(value),
                        "related": related,
                    }
                )
        try:
            await session.execute(insert(XapiStatement), rows)
        except IntegrityError as exc:
            raise Conflict(
                "A statement of this batch was stored meanwhile; send it again."
            ) from exc
        if links:
            await session.execute(insert(XapiStatementLink), links)
        await _store_parts(session, org_id, parts, now)
        await _remember_activities(session, org_id, [row["body"] for row in rows], now)
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


def _object_ref(body: dict[str, Any]) -> uuid.UUID | None:
    target = body.get("object") or {}
    if target.get("objectType") == "StatementRef":
        return uuid.UUID(target["id"])
    return None


def _agent_keys(agent: Any) -> list[str]:
    """The canonical identifier of an Agent or identified Group, and of a Group's members."""
    if not isinstance(agent, dict):
        return []
    keys = []
    key = canonical(agent_identifier(agent, "agent"))
    if key is not None:
        keys.append(key)
    for member in agent.get("member") or []:
        member_key = canonical(agent_identifier(member, "member"))
        if member_key is not None:
            keys.append(member_key)
    return keys


def _context_activities(context: Any) -> list[str]:
    found: list[str] = []
    for items in ((context or {}).get("contextActivities") or {}).values():
        for item in items if isinstance(items, list) else [items]:
            found.append(item["id"])
    return found


def _mentions(body: dict[str, Any], authority: str) -> set[tuple[str, str, bool]]:
    """(kind, value, related) for every agent and activity the statement mentions."""
    found: set[tuple[str, str, bool]] = set()

    def agents(agent: Any, related: bool) -> None:
        # A Group's members match as the Group does.
        for key in _agent_keys(agent):
            found.add(("agent", key, related))

    def activities(target: Any, related: bool) -> None:
        if isinstance(target, dict) and target.get("objectType", "Activity") == "Activity":
            found.add(("activity", target["id"], related))

    def walk(statement: dict[str, Any], nested: bool) -> None:
        agents(statement.get("actor"), nested)
        target = statement.get("object") or {}
        if target.get("objectType") in ("Agent", "Group"):
            agents(target, nested)
        activities(target, nested)
        context = statement.get("context") or {}
        agents(context.get("instructor"), True)
        agents(context.get("team"), True)
        for activity_id in _context_activities(context):
            found.add(("activity", activity_id, True))
        if target.get("objectType") == "SubStatement":
            walk(target, True)

    walk(body, False)
    found.add(("agent", f"account:{AUTHORITY_HOME}|{authority}"[:600], True))
    # Every plain match is a related match too.
    return found | {(kind, value, True) for kind, value, _ in found}


async def _store_parts(
    session: AsyncSession, org_id: uuid.UUID, parts: dict[str, tuple[str, bytes]], now: datetime
) -> None:
    if not parts:
        return
    known = set(
        (
            await session.scalars(
                select(XapiAttachment.sha2).where(
                    XapiAttachment.org_id == org_id, XapiAttachment.sha2.in_(list(parts))
                )
            )
        ).all()
    )
    rows = [
        {
            "id": uuid.uuid4(),
            "org_id": org_id,
            "sha2": sha2,
            "content_type": content_type[:255],
            "length": len(data),
            "content": data,
            "created_at": now,
            "updated_at": now,
        }
        for sha2, (content_type, data) in parts.items()
        if sha2 not in known
    ]
    for row in rows:
        try:
            async with session.begin_nested():
                await session.execute(insert(XapiAttachment), [row])
        except IntegrityError:
            pass  # the same content, stored by a concurrent request


async def _remember_activities(
    session: AsyncSession, org_id: uuid.UUID, bodies: list[dict[str, Any]], now: datetime
) -> None:
    """Merge each activity definition the statements carry into the Activities resource."""
    definitions: dict[str, dict[str, Any]] = {}

    def collect(target: Any) -> None:
        if isinstance(target, dict) and target.get("objectType", "Activity") == "Activity":
            merged = definitions.setdefault(target["id"], {})
            content.merge_definition(merged, target.get("definition") or {})

    def walk(statement: dict[str, Any]) -> None:
        target = statement.get("object") or {}
        collect(target)
        for items in ((statement.get("context") or {}).get("contextActivities") or {}).values():
            for item in items if isinstance(items, list) else [items]:
                collect(item)
        if target.get("objectType") == "SubStatement":
            walk(target)

    for body in bodies:
        walk(body)
    for activity_id, definition in definitions.items():
        key = value_hash(activity_id)
        row = await session.scalar(
            select(XapiActivity).where(XapiActivity.org_id == org_id, XapiActivity.key_hash == key)
        )
        if row is None:
            try:
                async with session.begin_nested():
                    session.add(
                        XapiActivity(
                            org_id=org_id,
                            key_hash=key,
                            activity_id=activity_id,
                            definition=definition,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                continue
            except IntegrityError:  # a concurrent request recorded it first: merge into it
                row = await session.scalar(
                    select(XapiActivity).where(
                        XapiActivity.org_id == org_id, XapiActivity.key_hash == key
                    )
                )
        if row is not None and definition:
            merged = dict(row.definition or {})
            content.merge_definition(merged, definition)
            row.definition = merged
            row.updated_at = now
    await session.flush()


async def get_activity(
    session: AsyncSession, org_id: uuid.UUID, activity_id: str
) -> dict[str, Any]:
    row = await session.scalar(
        select(XapiActivity).where(
            XapiActivity.org_id == org_id, XapiActivity.key_hash == value_hash(activity_id)
        )
    )
    if row is None:
        raise NotFound("No statement mentions this activity.")
    activity: dict[str, Any] = {"objectType": "Activity", "id": row.activity_id}
    if row.definition:
        activity["definition"] = row.definition
    return activity


async def attachment_parts(
    session: AsyncSession, org_id: uuid.UUID, statements: list[dict[str, Any]]
) -> list[tuple[str, str, bytes]]:
    """(sha2, content type, content) of the attachments these statements carry, once each."""
    wanted: list[str] = []
    for statement in statements:
        for attachment in statement.get("attachments") or []:
            if attachment["sha2"].lower() not in wanted:
                wanted.append(attachment["sha2"].lower())
    if not wanted:
        return []
    rows = {
        row.sha2: row
        for row in await session.scalars(
            select(XapiAttachment).where(
                XapiAttachment.org_id == org_id, XapiAttachment.sha2.in_(wanted)
            )
        )
    }
    return [(sha2, rows[sha2].content_type, rows[sha2].content) for sha2 in wanted if sha2 in rows]


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
) -> tuple[list[dict[str, Any]], str | None, datetime | None]:
    """Statements that match, by stored time (newest first unless ascending), and those that
    target a match with a StatementRef; voided statements are left out. Returns a page, the
    cursor of the next one, and the newest stored time on the page."""
    matches = _matching(org_id, filters, XapiStatement)
    statement: Select[Any] = select(XapiStatement).where(
        XapiStatement.org_id == org_id, XapiStatement.voided.is_(False)
    )
    if matches is not None:
        target = aliased(XapiStatement)
        referenced = select(target.statement_id).where(
            target.org_id == org_id, *(_matching(org_id, filters, target) or [])
        )
        statement = statement.where(or_(and_(*matches), XapiStatement.object_ref.in_(referenced)))
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
    page = rows[:limit]
    newest = max((row.stored for row in page), default=None)
    return [representation(row) for row in page], more, newest


def _matching(org_id: uuid.UUID, filters: StatementFilters, table: Any) -> list[Any] | None:
    """The filter conditions (agent, verb, activity, registration) on `table`, or None."""
    conditions: list[Any] = []
    if filters.agent is not None:
        conditions.append(_linked(org_id, table, "agent", filters.agent, filters.related_agents))
    if filters.verb is not None:
        conditions.append(table.verb_id == filters.verb)
    if filters.activity is not None:
        conditions.append(
            _linked(org_id, table, "activity", filters.activity, filters.related_activities)
        )
    if filters.registration is not None:
        conditions.append(table.registration == filters.registration)
    return conditions or None


def _linked(org_id: uuid.UUID, table: Any, kind: str, value: str, related: bool) -> Any:
    link = aliased(XapiStatementLink)
    return exists().where(
        link.org_id == org_id,
        link.statement_row == table.id,
        link.kind == kind,
        link.value_hash == value_hash(value),
        link.related.is_(related),
    )
