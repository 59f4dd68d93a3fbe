"""Completion logic: record, list, and import from CSV, scoped by the caller's org."""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal
from upstander.kit.errors import BadRequest, Conflict, NotFound
from upstander.kit.pagination import PageParams, paginate
from upstander.training.access import InvalidReference, org_of, reads_everything
from upstander.training.completions.schemas import CompletionCreate, RejectedRow
from upstander.training.compliance.store import refresh_items
from upstander.training.external_refs import service as refs
from upstander.training.models import Completion, CompletionSource, Course, Person

MAX_IMPORT_ROWS = 100_000
REQUIRED_COLUMNS = ("email", "course", "completed_at")


async def record_completion(
    session: AsyncSession, principal: Principal, data: CompletionCreate
) -> Completion:
    org_id = org_of(principal)
    person = await session.get(Person, data.person_id)
    if person is None or person.org_id != org_id:
        raise InvalidReference("body.person_id", "No such person.")
    course = await session.scalar(
        select(Course).where(Course.id == data.course_id, Course.org_id == org_id)
    )
    if course is None:
        raise InvalidReference("body.course_id", "No such course.")
    completed_at = data.completed_at.astimezone(UTC)
    duplicate = await session.scalar(
        select(Completion.id).where(
            Completion.org_id == org_id,
            Completion.person_id == person.id,
            Completion.course_id == course.id,
            Completion.completed_at == completed_at,
        )
    )
    if duplicate is not None:
        raise Conflict("This completion is already recorded.", completion_id=str(duplicate))
    completion = Completion(
        org_id=org_id,
        person_id=person.id,
        course_id=course.id,
        completed_at=completed_at,
        score=data.score,
        duration_minutes=data.duration_minutes,
        source=CompletionSource.MANUAL,
        certificate_id=data.certificate_id,
        recorded_by=principal.subject[:64],
    )
    refs.attach(completion, data.external_refs)
    session.add(completion)
    await refs.flush(session, completion)
    await refresh_items(session, org_id, people=[person.id], courses=[course.id])
    return completion


async def upsert_completion(
    session: AsyncSession, principal: Principal, data: CompletionCreate
) -> tuple[Completion, bool]:
    """Record the completion, or, when one of `data.external_refs` already names a
    completion of the organisation (or the same person, course and time are already
    recorded), update that one's score, duration and certificate and give it the references.
    Returns the completion and whether it is new. A reference naming a completion of another
    person or course is a 409."""
    org_id = org_of(principal)
    if not data.external_refs:
        return await record_completion(session, principal, data), True
    existing = await refs.completion_by_refs(session, org_id, data.external_refs)
    if existing is None:
        existing = await session.scalar(
            select(Completion).where(
                Completion.org_id == org_id,
                Completion.person_id == data.person_id,
                Completion.course_id == data.course_id,
                Completion.completed_at == data.completed_at.astimezone(UTC),
            )
        )
        if existing is None:
            return await record_completion(session, principal, data), True
    if existing.person_id != data.person_id or existing.course_id != data.course_id:
        raise Conflict(
            "The reference names a completion of another person or course.",
            rule="external_ref_taken",
        )
    completed_at = data.completed_at.astimezone(UTC)
    changed = refs.attach(existing, data.external_refs)
    for name, value in (
        ("completed_at", completed_at),
        ("score", data.score),
        ("duration_minutes", data.duration_minutes),
        ("certificate_id", data.certificate_id),
    ):
        if getattr(existing, name) != value:
            setattr(existing, name, value)
            changed = True
    if changed:
        await refs.flush(session, existing)
        await refresh_items(
            session, org_id, people=[existing.person_id], courses=[existing.course_id]
        )
    return existing, False


async def list_completions(
    session: AsyncSession,
    principal: Principal,
    params: PageParams,
    *,
    person_id: uuid.UUID | None,
    course_id: uuid.UUID | None,
    source: CompletionSource | None,
    completed_after: datetime | None,
    completed_before: datetime | None,
    external_ref: str | None = None,
) -> tuple[list[Completion], str | None]:
    statement = select(Completion).where(Completion.org_id == org_of(principal))
    if external_ref is not None:
        statement = statement.where(refs.completion_condition(org_of(principal), external_ref))
    if not reads_everything(principal):
        # Everyone else reads their own records only.
        own = principal.person_id
        if own is None or (person_id is not None and person_id != own):
            return [], None
        person_id = own
    if person_id is not None:
        statement = statement.where(Completion.person_id == person_id)
    if course_id is not None:
        statement = statement.where(Completion.course_id == course_id)
    if source is not None:
        statement = statement.where(Completion.source == source)
    if completed_after is not None:
        statement = statement.where(Completion.completed_at >= _aware(completed_after))
    if completed_before is not None:
        statement = statement.where(Completion.completed_at < _aware(completed_before))
    return await paginate(session, statement, Completion, params, descending=True)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


async def get_completion(
    session: AsyncSession, principal: Principal, completion_id: uuid.UUID
) -> Completion:
    completion = await session.scalar(
        select(Completion).where(
            Completion.id == completion_id, Completion.org_id == org_of(principal)
        )
    )
    if completion is None or not (
        reads_everything(principal) or completion.person_id == principal.person_id
    ):
        raise NotFound("No such completion.")
    return completion


# ----------------------------------------------------------------------------- CSV import


@dataclass
class ImportOutcome:
    accepted: int
    rejected: list[RejectedRow]


def _parse_when(text: str, now: datetime) -> datetime:
    """ISO 8601 date or date-time; a date is midnight UTC, a naive time is UTC."""
    if len(text) == 10:
        value = datetime.combine(date.fromisoformat(text), time(0), tzinfo=UTC)
    else:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if value > now:
        raise ValueError("in the future")
    return value


def _optional_number(text: str, *, kind: type, low: float, high: float) -> Any:
    if not text:
        return None
    value = kind(text)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    if not low <= value <= high:
        raise ValueError("out of range")
    return value


def _course_index(courses: list[Course]) -> dict[str, Course]:
    """Look courses up by id, activity IRI or title (case-insensitive); ids win, then IRIs."""
    index: dict[str, Course] = {}
    for course in courses:
        index.setdefault(course.title.strip().lower(), course)
    for course in courses:
        for activity in course.activity_ids:
            index[activity.strip().lower()] = course
    for course in courses:
        index[str(course.id)] = course
    return index


async def import_completions(
    session: AsyncSession, principal: Principal, body: bytes, *, now: datetime
) -> ImportOutcome:
    """Validate every row, then insert the good ones in one executemany. Rows already recorded
    (same person, course and time) are reported as duplicates, so re-importing is harmless."""
    org_id = org_of(principal)
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadRequest("The CSV file must be UTF-8.") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise BadRequest(
            "The CSV header lacks required columns: " + ", ".join(missing) + ".",
            errors=[{"field": f"csv.{column}", "message": "Column missing."} for column in missing],
        )
    reader.fieldnames = header
    try:
        rows = [(number, row) for number, row in enumerate(reader, start=2)]
    except csv.Error as exc:
        raise BadRequest(f"The CSV file cannot be read: {exc}.") from exc
    if len(rows) > MAX_IMPORT_ROWS:
        raise BadRequest(f"Import at most {MAX_IMPORT_ROWS} rows at a time.")

    # Bulk lookups: one query each for people and courses of the org.
    people = {
        email.lower(): person_id
        for person_id, email in (
            await session.execute(select(Person.id, Person.email).where(Person.org_id == org_id))
        ).all()
    }
    courses = _course_index(
        list((await session.scalars(select(Course).where(Course.org_id == org_id))).all())
    )

    rejected: list[RejectedRow] = []
    candidates: list[tuple[int, dict[str, Any]]] = []
    for number, row in rows:

        def cell(name: str, row: dict[str, Any] = row) -> str:
            value = row.get(name)
            return value.strip() if isinstance(value, str) else ""

        email, course_ref, when = cell("email"), cell("course"), cell("completed_at")
        if not (email and course_ref and when):
            rejected.append(
                RejectedRow(
                    row=number,
                    reason="missing_value",
                    detail="email, course and completed_at are required.",
                )
            )
            continue
        person_id = people.get(email.lower())
        if person_id is None:
            rejected.append(
                RejectedRow(
                    row=number,
                    reason="unknown_person",
                    detail=f"No person with email {email[:320]}.",
                )
            )
            continue
        course = courses.get(course_ref.lower())
        if course is None:
            rejected.append(
                RejectedRow(
                    row=number, reason="unknown_course", detail=f"No course {course_ref[:200]!r}."
                )
            )
            continue
        try:
            completed_at = _parse_when(when, now)
        except ValueError:
            rejected.append(
                RejectedRow(
                    row=number,
                    reason="bad_date",
                    detail=f"{when[:40]!r} is not a past ISO 8601 date.",
                )
            )
            continue
        try:
            score = _optional_number(cell("score"), kind=float, low=0, high=100)
            duration = _optional_number(cell("duration_minutes"), kind=int, low=0, high=10_000)
        except ValueError:
            rejected.append(
                RejectedRow(
                    row=number,
                    reason="bad_value",
                    detail="score must be 0-100 and duration_minutes a whole number 0-10000.",
                )
            )
            continue
        certificate = cell("certificate_id")[:200] or None
        candidates.append(
            (
                number,
                {
                    "person_id": person_id,
                    "course_id": course.id,
                    "completed_at": completed_at,
                    "score": score,
                    "duration_minutes": duration,
                    "certificate_id": certificate,
                },
            )
        )

    existing: set[tuple[uuid.UUID, uuid.UUID, datetime]] = set()
    if candidates:
        times = [values["completed_at"] for _, values in candidates]
        course_ids = {values["course_id"] for _, values in candidates}
        found = await session.execute(
            select(Completion.person_id, Completion.course_id, Completion.completed_at).where(
                Completion.org_id == org_id,
                Completion.course_id.in_(course_ids),
                Completion.completed_at >= min(times),
                Completion.completed_at <= max(times),
            )
        )
        existing = {(p, c, at.astimezone(UTC)) for p, c, at in found.all()}

    inserts: list[dict[str, Any]] = []
    for number, values in candidates:
        key = (values["person_id"], values["course_id"], values["completed_at"])
        if key in existing:
            rejected.append(
                RejectedRow(
                    row=number,
                    reason="duplicate",
                    detail="Already recorded (same person, course and time).",
                )
            )
            continue
        existing.add(key)
        inserts.append(
            {
                **values,
                "id": uuid.uuid4(),
                "org_id": org_id,
                "source": CompletionSource.CSV,
                "statement_id": None,
                "recorded_by": principal.subject[:64],
            }
        )
    if inserts:
        try:
            await session.execute(insert(Completion), inserts)
        except IntegrityError as exc:  # a concurrent import of the same rows won the race
            raise Conflict("Some rows were recorded meanwhile; import the file again.") from exc
        await refresh_items(
            session,
            org_id,
            people={values["person_id"] for values in inserts},
            courses={values["course_id"] for values in inserts},
        )
    rejected.sort(key=lambda r: r.row)
    return ImportOutcome(accepted=len(inserts), rejected=rejected)
