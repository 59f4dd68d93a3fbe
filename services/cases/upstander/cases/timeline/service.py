"""A case's timeline: every record of the case as one list ordered by (at, kind, id).

Each kind of record is one *source*: an async function that returns, from its own table, the
first `limit` items strictly after the cursor in timeline order. A page asks every source for
`limit + 1` items, merges them and keeps the first `limit`: keyset paging across tables
without OFFSET and without a UNION of unlike rows. A new kind of record is one more source in
`SOURCES` (and a member of `TimelineKind`).

Sources select only plain columns (ids, states, dates), so building a timeline decrypts
nothing: the timeline says what happened and when; the records and the export hold the text.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Row, and_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from upstander.cases.models import (
    Allegation,
    AuthorKind,
    Case,
    CaseAssignment,
    CaseAttachment,
    CaseInterview,
    CaseInterviewVersion,
    CaseNote,
    CaseNoteVersion,
    CaseShare,
    CaseTransition,
    CorrectiveAction,
    CustodyAction,
    EvidenceCustody,
    EvidenceItem,
    InterimMeasure,
    Message,
    RetaliationCheckin,
)
from upstander.cases.timeline.schemas import (
    SummaryValue,
    TimelineActor,
    TimelineItem,
    TimelineKind,
)
from upstander.kit.pagination import (
    InvalidCursor,
    PageParams,
    cursor_id,
    cursor_time,
    cursor_values,
)

# Custody entries worth a line of their own: uploads are the `evidence` item itself, and
# every metadata read ("viewed") would drown the rest.
TIMELINE_CUSTODY = (CustodyAction.DOWNLOADED, CustodyAction.EXPORTED)


# ----------------------------------------------------------------------------- cursor


@dataclass(frozen=True)
class Position:
    """A place in the timeline: the last item of a page."""

    at: datetime
    kind: str
    id: uuid.UUID

    def key(self) -> tuple[datetime, str, uuid.UUID]:
        return (self.at, self.kind, self.id)


def encode_cursor(item: TimelineItem) -> str:
    raw = json.dumps([item.at.isoformat(), item.kind.value, str(item.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position of `encode_cursor`; anything else is a 400 `invalid-cursor` problem."""
    at, kind, row_id = cursor_values(cursor, 3)
    if not isinstance(kind, str):
        raise InvalidCursor()
    try:
        kind_value = TimelineKind(kind).value
    except ValueError as exc:
        raise InvalidCursor() from exc
    return Position(cursor_time(at), kind_value, cursor_id(row_id))


def _after(
    kind: TimelineKind,
    at: InstrumentedAttribute[Any],
    row_id: InstrumentedAttribute[Any],
    position: Position | None,
) -> ColumnElement[bool]:
    """SQL for "(at, kind, id) > position" on a table whose rows are all of `kind`."""
    if position is None:
        return true()
    if kind.value > position.kind:
        return at >= position.at
    if kind.value < position.kind:
        return at > position.at
    return or_(at > position.at, and_(at == position.at, row_id > position.id))


def _is_after(item: TimelineItem, position: Position | None) -> bool:
    return position is None or (item.at, item.kind.value, item.id) > position.key()


# ----------------------------------------------------------------------------- sources

Source = Callable[[AsyncSession, Case, Position | None, int], Awaitable[list[TimelineItem]]]


async def _rows(
    session: AsyncSession,
    case: Case,
    model: Any,
    kind: TimelineKind,
    at: InstrumentedAttribute[Any],
    position: Position | None,
    limit: int,
    columns: Sequence[Any] = (),
    where: Sequence[ColumnElement[bool]] = (),
) -> Sequence[Row[Any]]:
    """(id, at, *columns) of `model`'s rows of `case` after `position`, in timeline order."""
    statement = (
        select(model.id, at, *columns)
        .where(
            model.org_id == case.org_id,
            model.case_id == case.id,
            at.is_not(None),
            _after(kind, at, model.id, position),
            *where,
        )
        .order_by(at, model.id)
        .limit(limit)
    )
    return (await session.execute(statement)).all()


def _item(
    kind: TimelineKind,
    row_id: uuid.UUID,
    at: datetime,
    actor: TimelineActor | None = None,
    /,
    **summary: SummaryValue | date | datetime | uuid.UUID,
) -> TimelineItem:
    facts: dict[str, SummaryValue] = {}
    for name, value in summary.items():
        if isinstance(value, date | datetime):
            facts[name] = value.isoformat()
        elif isinstance(value, uuid.UUID):
            facts[name] = str(value)
        else:
            facts[name] = value
    return TimelineItem(at=at, kind=kind, id=row_id, actor=actor, summary=facts)


def _actor(kind: str | None, actor_id: str | uuid.UUID | None) -> TimelineActor:
    return TimelineActor(kind=kind, id=str(actor_id) if actor_id is not None else None)


async def case_opened(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    item = _item(
        TimelineKind.CASE_OPENED,
        case.id,
        case.created_at,
        _actor(AuthorKind.REPORTER.value, None),
        number=case.number,
        reporter_mode=case.reporter_mode.value,
        routed_to=case.routed_to.value,
        received_at=case.received_at,
    )
    return [item] if _is_after(item, position) else []


async def report_attachments(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind = TimelineKind.REPORT_ATTACHMENT
    rows = await _rows(
        session,
        case,
        CaseAttachment,
        kind,
        CaseAttachment.created_at,
        position,
        limit,
        (CaseAttachment.content_type, CaseAttachment.size),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor("reporter", None),
            content_type=r.content_type,
            size=r.size,
        )
        for r in rows
    ]


async def transitions(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.TRANSITION, CaseTransition
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (
            model.actor_kind,
            model.actor_id,
            model.from_status,
            model.to_status,
            model.referred_to,
            model.outcome,
        ),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(r.actor_kind, r.actor_id),
            **{
                "from": r.from_status.value,
                "to": r.to_status.value,
                "referred_to": r.referred_to.value if r.referred_to else None,
                "outcome": r.outcome.value if r.outcome else None,
            },
        )
        for r in rows
    ]


def _direction(author: AuthorKind) -> str:
    if author == AuthorKind.REPORTER:
        return "from_reporter"
    return "to_reporter" if author == AuthorKind.HANDLER else "system"


async def messages(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind = TimelineKind.MESSAGE
    rows = await _rows(
        session,
        case,
        Message,
        kind,
        Message.created_at,
        position,
        limit,
        (Message.author_kind, Message.author_person_id, Message.is_feedback),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(
                "person" if r.author_person_id else r.author_kind.value,
                r.author_person_id,
            ),
            direction=_direction(r.author_kind),
            is_feedback=r.is_feedback,
        )
        for r in rows
    ]


async def assignments(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.ASSIGNMENT, CaseAssignment
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.person_id, model.role, model.assigned_by),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(None, r.assigned_by),
            person_id=r.person_id,
            role=r.role.value,
        )
        for r in rows
    ]


async def shares(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.SHARE, CaseShare
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.person_id, model.shared_by),
    )
    return [
        _item(kind, r.id, r.created_at, _actor(None, r.shared_by), person_id=r.person_id)
        for r in rows
    ]


async def interim_measures(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.INTERIM_MEASURE, InterimMeasure
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.kind, model.affects, model.starts_on, model.ends_on, model.created_by),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(None, r.created_by),
            kind=r.kind.value,
            affects=r.affects.value,
            starts_on=r.starts_on,
            ends_on=r.ends_on,
        )
        for r in rows
    ]


async def allegations(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind = TimelineKind.ALLEGATION
    rows = await _rows(
        session,
        case,
        Allegation,
        kind,
        Allegation.created_at,
        position,
        limit,
        (Allegation.category,),
    )
    return [_item(kind, r.id, r.created_at, category=r.category) for r in rows]


async def findings(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.FINDING, Allegation
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.finding_at,
        position,
        limit,
        (model.category, model.finding, model.finding_by_kind, model.finding_by_id),
    )
    return [
        _item(
            kind,
            r.id,
            r.finding_at,
            _actor(r.finding_by_kind, r.finding_by_id),
            category=r.category,
            finding=r.finding.value if r.finding else None,
        )
        for r in rows
    ]


async def corrective_actions(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.CORRECTIVE_ACTION, CorrectiveAction
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.status, model.due_at, model.owner_person_id, model.created_by),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(None, r.created_by),
            status=r.status.value,
            due_at=r.due_at,
            owner_person_id=r.owner_person_id,
        )
        for r in rows
    ]


async def corrective_actions_done(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind = TimelineKind.CORRECTIVE_ACTION_DONE
    rows = await _rows(
        session, case, CorrectiveAction, kind, CorrectiveAction.completed_at, position, limit
    )
    return [_item(kind, r.id, r.completed_at) for r in rows]


async def checkins(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.CHECKIN, RetaliationCheckin
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.offset_days, model.due_at),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor("system", None),
            offset_days=r.offset_days,
            due_at=r.due_at,
        )
        for r in rows
    ]


async def checkins_answered(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.CHECKIN_ANSWERED, RetaliationCheckin
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.answered_at,
        position,
        limit,
        (model.retaliation, model.follow_up_case_id),
    )
    return [
        _item(
            kind,
            r.id,
            r.answered_at,
            _actor("reporter", None),
            retaliation=r.retaliation,
            follow_up_opened=r.follow_up_case_id is not None,
        )
        for r in rows
    ]


def _versioned_records(kind: TimelineKind, model: Any) -> Source:
    """A source of records kept in versions (notes, interviews): one item per record."""

    async def source(
        session: AsyncSession, case: Case, position: Position | None, limit: int
    ) -> list[TimelineItem]:
        rows = await _rows(
            session,
            case,
            model,
            kind,
            model.created_at,
            position,
            limit,
            (model.author_kind, model.author_id, model.current_version),
        )
        return [
            _item(
                kind,
                r.id,
                r.created_at,
                _actor(r.author_kind, r.author_id),
                version=r.current_version,
            )
            for r in rows
        ]

    return source


def _corrections(kind: TimelineKind, model: Any, record: Any) -> Source:
    """A source of a versioned record's corrections (version 1 is the record's own item);
    `record` is the version table's column naming its record."""

    async def source(
        session: AsyncSession, case: Case, position: Position | None, limit: int
    ) -> list[TimelineItem]:
        rows = await _rows(
            session,
            case,
            model,
            kind,
            model.created_at,
            position,
            limit,
            (record, model.number, model.author_kind, model.author_id),
            (model.number > 1,),
        )
        return [
            _item(
                kind,
                r.id,
                r.created_at,
                _actor(r.author_kind, r.author_id),
                record_id=getattr(r, record.key),
                version=r.number,
            )
            for r in rows
        ]

    return source


notes = _versioned_records(TimelineKind.NOTE, CaseNote)
note_versions = _corrections(TimelineKind.NOTE_VERSION, CaseNoteVersion, CaseNoteVersion.note_id)
interviews = _versioned_records(TimelineKind.INTERVIEW, CaseInterview)
interview_versions = _corrections(
    TimelineKind.INTERVIEW_VERSION, CaseInterviewVersion, CaseInterviewVersion.interview_id
)


async def evidence(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.EVIDENCE, EvidenceItem
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.content_type, model.size, model.uploaded_by_kind, model.uploaded_by_id),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(r.uploaded_by_kind, r.uploaded_by_id),
            content_type=r.content_type,
            size=r.size,
        )
        for r in rows
    ]


async def custody(
    session: AsyncSession, case: Case, position: Position | None, limit: int
) -> list[TimelineItem]:
    kind, model = TimelineKind.CUSTODY, EvidenceCustody
    rows = await _rows(
        session,
        case,
        model,
        kind,
        model.created_at,
        position,
        limit,
        (model.evidence_id, model.action, model.actor_kind, model.actor_id),
        (model.action.in_(TIMELINE_CUSTODY),),
    )
    return [
        _item(
            kind,
            r.id,
            r.created_at,
            _actor(r.actor_kind, r.actor_id),
            evidence_id=r.evidence_id,
            action=r.action.value,
        )
        for r in rows
    ]


SOURCES: tuple[Source, ...] = (
    case_opened,
    report_attachments,
    transitions,
    messages,
    assignments,
    shares,
    interim_measures,
    allegations,
    findings,
    corrective_actions,
    corrective_actions_done,
    checkins,
    checkins_answered,
    notes,
    note_versions,
    interviews,
    interview_versions,
    evidence,
    custody,
)


# ----------------------------------------------------------------------------- the page


async def timeline(
    session: AsyncSession, case: Case, page: PageParams
) -> tuple[list[TimelineItem], str | None]:
    """One page of the case's timeline, oldest first, and the cursor of the next page."""
    position = decode_cursor(page.cursor) if page.cursor else None
    items: list[TimelineItem] = []
    for source in SOURCES:
        items.extend(await source(session, case, position, page.limit + 1))
    items.sort(key=lambda item: (item.at, item.kind.value, item.id))
    if len(items) <= page.limit:
        return items, None
    items = items[: page.limit]
    return items, encode_cursor(items[-1])
