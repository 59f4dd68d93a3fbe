"""Interviews of a case: record one, correct it, read one with its versions, page through
them oldest first.

Every role (reporter, witness, respondent, other) is recorded with the same fields, so the
respondent's account is kept as fully as the reporter's. Who was interviewed, who else
attended, the summary, the statement and the reasons for corrections are sealed under the
case's data key: destroying it (crypto-shredding) leaves nothing readable.

Corrections (chosen over append-only `amends_interview_id` records, so an interview keeps one
id and one history, exactly like a note): a correction names only what changes; the rest is
carried over from the current version and stored as a new, complete version. Earlier
versions are never changed and stay readable.

Callers pass a case they may already see (`access.VisibleCase` / `LockedCase`); every query
here is scoped by that case and its organisation. Functions only flush, never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.attributes import set_committed_value

from upstander.cases.assignments.service import check_impartial
from upstander.cases.cases.service import actor_of
from upstander.cases.models import (
    Case,
    CaseInterview,
    CaseInterviewVersion,
    EvidenceItem,
    InterviewRole,
    Person,
)
from upstander.cases.problems import InvalidRequest
from upstander.kit.auth import Principal
from upstander.kit.crypto import SealedJSON, Vault
from upstander.kit.db import new_id
from upstander.kit.errors import NotFound
from upstander.kit.pagination import PageParams, paginate

NO_SUCH_INTERVIEW = "No such interview on this case."
# Clocks disagree a little; an interview "held" further ahead than this is a typo.
CLOCK_SKEW = timedelta(minutes=5)


@dataclass
class InterviewRecord:
    """The content of one interview version, as plain values (ids, names, texts)."""

    role: InterviewRole
    held_at: datetime
    interviewee_person_id: uuid.UUID | None
    interviewee_name: str | None
    interviewer_person_ids: list[uuid.UUID]
    summary: str | None
    statement: str | None = None
    attendee_person_ids: list[uuid.UUID] = field(default_factory=list)
    attendee_names: list[str] = field(default_factory=list)
    evidence_item_ids: list[uuid.UUID] = field(default_factory=list)


def record_of(version: CaseInterviewVersion) -> InterviewRecord:
    """The content of a stored version (what a correction starts from)."""
    interviewee = version.interviewee or {}
    attendees = version.attendees or {}
    person_id = interviewee.get("person_id")
    return InterviewRecord(
        role=version.role,
        held_at=version.held_at,
        interviewee_person_id=uuid.UUID(person_id) if person_id else None,
        interviewee_name=interviewee.get("name"),
        interviewer_person_ids=[uuid.UUID(p) for p in version.interviewer_person_ids],
        summary=version.summary,
        statement=version.statement,
        attendee_person_ids=[uuid.UUID(p) for p in attendees.get("person_ids", [])],
        attendee_names=list(attendees.get("names", [])),
        evidence_item_ids=[uuid.UUID(e) for e in version.evidence_item_ids],
    )


def _interviews_of(case: Case) -> Select[CaseInterview]:
    # Versions come with every interview (selectinload): the relationship refuses lazy loads.
    return (
        select(CaseInterview)
        .where(CaseInterview.org_id == case.org_id, CaseInterview.case_id == case.id)
        .options(selectinload(CaseInterview.versions))
    )


# ----------------------------------------------------------------------------- validation


async def _check_people(
    session: AsyncSession, case: Case, person_ids: Iterable[uuid.UUID], field_name: str
) -> None:
    """422 unless every id is a person of the case's organisation (the directory projection).
    Another organisation's person is answered exactly like an unknown id."""
    wanted = set(person_ids)
    if not wanted:
        return
    found = set(
        await session.scalars(
            select(Person.id).where(Person.org_id == case.org_id, Person.id.in_(wanted))
        )
    )
    if wanted - found:
        raise InvalidRequest(field_name, "No person with this id in your organisation's directory.")


async def _check_evidence(session: AsyncSession, case: Case, evidence_ids: list[uuid.UUID]) -> None:
    wanted = set(evidence_ids)
    if not wanted:
        return
    found = set(
        await session.scalars(
            select(EvidenceItem.id).where(
                EvidenceItem.org_id == case.org_id,
                EvidenceItem.case_id == case.id,
                EvidenceItem.id.in_(wanted),
            )
        )
    )
    if wanted - found:
        raise InvalidRequest("body.evidence_item_ids", "No such evidence item on this case.")


async def _validate(
    session: AsyncSession,
    case: Case,
    record: InterviewRecord,
    *,
    changed: set[str] | None,
    caller: uuid.UUID | None,
    now: datetime,
) -> None:
    """Check what a new version states; `changed` limits it to the fields a correction
    names (carried-over values were checked when first stored). The caller, a person known
    from their token, need not be in the directory projection yet to be an interviewer."""

    def named(*fields: str) -> bool:
        return changed is None or bool(changed.intersection(fields))

    if named("held_at") and record.held_at > now + CLOCK_SKEW:
        raise InvalidRequest("body.held_at", "An interview cannot be recorded before it is held.")
    if named("interviewee") and record.interviewee_person_id is not None:
        await _check_people(
            session, case, [record.interviewee_person_id], "body.interviewee.person_id"
        )
    if named("attendees"):
        await _check_people(session, case, record.attendee_person_ids, "body.attendees.person_ids")
    if named("interviewer_person_ids"):
        if not record.interviewer_person_ids:
            raise InvalidRequest(
                "body.interviewer_person_ids", "Name who held the interview (directory ids)."
            )
        others = [p for p in record.interviewer_person_ids if p != caller]
        await _check_people(session, case, others, "body.interviewer_person_ids")
        for person_id in record.interviewer_person_ids:
            await check_impartial(session, case, person_id)  # 409 conflict-of-interest
    if named("evidence_item_ids"):
        await _check_evidence(session, case, record.evidence_item_ids)


def _version(
    case: Case,
    record: InterviewRecord,
    *,
    number: int,
    author: tuple[str, str],
    reason: str | None,
    now: datetime,
) -> CaseInterviewVersion:
    interviewee: dict[str, Any] = {
        "person_id": str(record.interviewee_person_id) if record.interviewee_person_id else None,
        "name": record.interviewee_name,
    }
    return CaseInterviewVersion(
        org_id=case.org_id,
        case_id=case.id,
        number=number,
        author_kind=author[0],
        author_id=author[1],
        role=record.role,
        held_at=record.held_at.astimezone(UTC),
        interviewee=interviewee,
        interviewer_person_ids=[str(p) for p in record.interviewer_person_ids],
        attendees={
            "person_ids": [str(p) for p in record.attendee_person_ids],
            "names": list(record.attendee_names),
        },
        summary=record.summary,
        statement=record.statement,
        evidence_item_ids=[str(e) for e in record.evidence_item_ids],
        reason=reason,
        created_at=now,
        updated_at=now,
    )


def _unwrap_sealed(version: CaseInterviewVersion) -> None:
    """After a flush, sealed JSON attributes hold `SealedJSON` wrappers; give the row back its
    plain values (as a row loaded from the database has) without marking it changed."""
    for key in ("interviewee", "attendees"):
        value = getattr(version, key)
        if isinstance(value, SealedJSON):
            set_committed_value(version, key, value.value)


# ----------------------------------------------------------------------------- writes


async def create_interview(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    record: InterviewRecord,
    *,
    vault: Vault,
    now: datetime,
) -> CaseInterview:
    """Record an interview on `case` (its version 1). With no interviewers named, the
    interviewer is the caller (an API client, being nobody, must name them)."""
    if not record.interviewer_person_ids and principal.person_id is not None:
        record.interviewer_person_ids = [principal.person_id]
    await _validate(session, case, record, changed=None, caller=principal.person_id, now=now)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)  # idempotent
    author = actor_of(principal)
    interview = CaseInterview(
        id=new_id(),
        org_id=case.org_id,
        case_id=case.id,
        author_kind=author[0],
        author_id=author[1],
        current_version=1,
        created_at=now,
        updated_at=now,
        versions=[_version(case, record, number=1, author=author, reason=None, now=now)],
    )
    session.add(interview)
    await session.flush()
    _unwrap_sealed(interview.versions[-1])
    return interview


async def correct_interview(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    interview_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    reason: str | None,
    vault: Vault,
    now: datetime,
) -> CaseInterview:
    """Add a version to an interview: the current one with `changes` applied (keys are
    `InterviewRecord` fields, plus `interviewee` / `attendees` as their parts). Callers lock
    the case (`LockedCase`) so two corrections cannot take the same number."""
    interview = await get_interview(session, case, interview_id)
    record = record_of(interview.versions[-1])
    changed = set(changes)
    for name, value in changes.items():
        if name == "interviewee":
            record.interviewee_person_id, record.interviewee_name = value
        elif name == "attendees":
            record.attendee_person_ids, record.attendee_names = value
        else:
            setattr(record, name, value)
    await _validate(session, case, record, changed=changed, caller=principal.person_id, now=now)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)  # idempotent
    number = interview.current_version + 1
    interview.versions.append(
        _version(case, record, number=number, author=actor_of(principal), reason=reason, now=now)
    )
    interview.current_version = number
    interview.updated_at = now
    await session.flush()
    _unwrap_sealed(interview.versions[-1])
    return interview


# ----------------------------------------------------------------------------- reads


async def get_interview(
    session: AsyncSession, case: Case, interview_id: uuid.UUID
) -> CaseInterview:
    """One interview of `case` with all its versions; `NotFound` if it is not this case's."""
    interview = await session.scalar(_interviews_of(case).where(CaseInterview.id == interview_id))
    if interview is None:
        raise NotFound(NO_SUCH_INTERVIEW)
    return interview


async def list_interviews(
    session: AsyncSession, case: Case, page: PageParams
) -> tuple[list[CaseInterview], str | None]:
    """The case's interviews, oldest recorded first, one keyset page at a time."""
    return await paginate(session, _interviews_of(case), CaseInterview, page)


async def interviews_for_case(session: AsyncSession, case: Case) -> list[CaseInterview]:
    """Every interview of `case`, oldest recorded first, each with all its versions loaded
    (oldest first): for the timeline and the export. Reading them is the caller's to audit."""
    rows = await session.scalars(
        _interviews_of(case).order_by(CaseInterview.created_at, CaseInterview.id)
    )
    return list(rows)
