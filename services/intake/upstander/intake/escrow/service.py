"""The matching escrow: hold a report, match it by blind indexes, release or withdraw it. No
FastAPI here: plain values in, domain errors out; functions only flush.

Nothing in here logs, and nothing publishes an event before a release: before a match no
handler-facing route, stat, event, webhook or log line can know an entry exists (the
`upstander.report.submitted` of a release is the first thing anyone sees)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.intake.directory.service import foreign_people
from upstander.intake.escrow import identifiers as ids
from upstander.intake.escrow.models import (
    EscrowAlias,
    EscrowEntry,
    EscrowIdentifier,
    EscrowSettings,
    EscrowStatus,
)
from upstander.intake.escrow.schemas import EscrowIn, ReleaseIn
from upstander.intake.events import REPORT_SUBMITTED
from upstander.intake.hashing import slow_hash
from upstander.intake.models import Report, ReportingForm, ReportMode, ReportStatus
from upstander.intake.reports import receipts
from upstander.intake.reports import service as reports
from upstander.intake.reports.requests import parse_report
from upstander.intake.reports.schemas import PersonInvolved, ReportIn
from upstander.kit.clock import coarse, for_reporter
from upstander.kit.contracts import ReportSubmitted
from upstander.kit.crypto import Vault
from upstander.kit.errors import Conflict, Forbidden, NotFound, ProblemError, RateLimited
from upstander.kit.events import EventBus

DEFAULT_THRESHOLD = 2
NO_SUCH_ENTRY = "No such escrow entry."
# Statuses an entry matches against: a released report still counts as a reporter.
LIVE = (EscrowStatus.WAITING.value, EscrowStatus.MATCHED.value)
COUNTED = (*LIVE, EscrowStatus.RELEASED.value)


def validated_report(data: dict[str, Any]) -> ReportIn:
    """A report built from stored parts, validated as a submission is (422 naming fields,
    never values)."""
    return parse_report(json.dumps(data), ("body",))


class InvalidIdentifiers(ProblemError):
    status, slug, title = 422, "validation-error", "Validation error"


class Escrow:
    """The deployment's escrow keys and limits (from the intake settings)."""

    def __init__(self, *, index_key: str, max_per_org_per_day: int, default_expiry_days: int):
        self.index_key = index_key
        self.max_per_org_per_day = max_per_org_per_day
        self.default_expiry_days = default_expiry_days

    def index(self, kind: ids.IdentifierKind | str, normal: str) -> str:
        return ids.blind_index(self.index_key, kind, normal)

    def person_index(self, person_id: uuid.UUID | str) -> str:
        return self.index(ids.IdentifierKind.PERSON, str(person_id))


# ----------------------------------------------------------------------------- settings


async def settings_of(session: AsyncSession, org_id: uuid.UUID, escrow: Escrow) -> tuple[int, int]:
    """(threshold, expiry days) of an organisation: its own, or the defaults."""
    row = await session.get(EscrowSettings, org_id)
    if row is None:
        return DEFAULT_THRESHOLD, escrow.default_expiry_days
    return row.threshold, row.expiry_days


async def put_settings(
    session: AsyncSession, org_id: uuid.UUID, *, threshold: int, expiry_days: int, now: datetime
) -> EscrowSettings:
    row = await session.get(EscrowSettings, org_id)
    if row is None:
        row = EscrowSettings(org_id=org_id)
        session.add(row)
    row.threshold, row.expiry_days, row.updated_at = threshold, expiry_days, now
    await session.flush()
    return row


# ----------------------------------------------------------------------------- aliases


async def record_alias(
    session: AsyncSession,
    escrow: Escrow,
    *,
    org_id: uuid.UUID,
    person_id: uuid.UUID,
    email: str | None,
    now: datetime,
) -> None:
    """Learn (from a person event) that a work email is a directory person's, as blind
    indexes only, and let entries that named the email match the person too."""
    if not email:
        return
    try:
        normal = ids.normalise(ids.IdentifierKind.EMAIL, email)
    except ValueError:
        return
    email_index = escrow.index(ids.IdentifierKind.EMAIL, normal)
    person_index = escrow.person_index(person_id)
    alias = await session.get(EscrowAlias, email_index)
    if alias is not None and alias.org_id != org_id:
        return
    if alias is None:
        session.add(
            EscrowAlias(
                blind_index=email_index,
                org_id=org_id,
                person_index=person_index,
                person_id=person_id,
            )
        )
    else:
        alias.person_index, alias.person_id = person_index, person_id
    # Entries that named the email before the directory knew it: they name the person too.
    named = (
        await session.scalars(
            select(EscrowIdentifier.entry_id).where(
                EscrowIdentifier.org_id == org_id, EscrowIdentifier.blind_index == email_index
            )
        )
    ).all()
    for entry_id in set(named):
        has = await session.scalar(
            select(EscrowIdentifier.id).where(
                EscrowIdentifier.entry_id == entry_id,
                EscrowIdentifier.blind_index == person_index,
            )
        )
        if has is None:
            session.add(
                EscrowIdentifier(org_id=org_id, entry_id=entry_id, blind_index=person_index)
            )
    await session.flush()
    for entry_id in set(named):
        entry = await session.get(EscrowEntry, entry_id)
        if entry is not None and entry.status in LIVE:
            content = entry.content
            if content is not None and str(person_id) not in content.get("people", []):
                # Released, the report names them as its subject (routing and conflicts).
                people = sorted({*content.get("people", []), str(person_id)})
                entry.content = {**content, "people": people}
            await _match(session, entry, escrow, now=now)


# ----------------------------------------------------------------------------- entries


def _normalised(body: EscrowIn) -> list[tuple[ids.IdentifierKind, str]]:
    out: list[tuple[ids.IdentifierKind, str]] = []
    errors: list[dict[str, str]] = []
    for position, identifier in enumerate(body.identifiers):
        try:
            out.append(
                (
                    identifier.kind,
                    ids.normalise(identifier.kind, identifier.value, identifier.platform),
                )
            )
        except ValueError as exc:
            errors.append({"field": f"body.identifiers.{position}.value", "message": str(exc)})
    if errors:
        raise InvalidIdentifiers("The request did not validate.", errors=errors)
    return out


def _as_report(body_report: dict[str, Any], org: str, mode: ReportMode, reporter: Any) -> ReportIn:
    fields = {k: v for k, v in body_report.items() if k != "reporter"}
    return validated_report({**fields, "org": org, "mode": mode.value, "reporter": reporter})


async def _indexes(
    session: AsyncSession,
    escrow: Escrow,
    org_id: uuid.UUID,
    named: Sequence[tuple[ids.IdentifierKind, str]],
) -> tuple[set[str], set[uuid.UUID]]:
    """The blind indexes an entry holds (an email the directory knows adds its person's),
    and the directory people it names (for routing once released)."""
    indexes: set[str] = set()
    people: set[uuid.UUID] = set()
    for kind, normal in named:
        index = escrow.index(kind, normal)
        indexes.add(index)
        if kind == ids.IdentifierKind.PERSON:
            people.add(uuid.UUID(normal))
        elif kind == ids.IdentifierKind.EMAIL:
            alias = await session.get(EscrowAlias, index)
            if alias is not None and alias.org_id == org_id:
                indexes.add(alias.person_index)
                people.add(alias.person_id)
    return indexes, people


async def _check_rate(
    session: AsyncSession, escrow: Escrow, org_id: uuid.UUID, now: datetime
) -> None:
    """At most `max_per_org_per_day` new entries per organisation and day: guessing who is
    named by submitting entries costs time (the gateway also limits each source)."""
    since = coarse(now) - timedelta(days=1)
    count = await session.scalar(
        select(func.count())
        .select_from(EscrowEntry)
        .where(EscrowEntry.org_id == org_id, EscrowEntry.created_at >= since)
    )
    if (count or 0) >= escrow.max_per_org_per_day:
        raise RateLimited(3600, "Too many escrow entries for this organisation; try later.")


async def create_entry(
    session: AsyncSession,
    *,
    vault: Vault,
    escrow: Escrow,
    form: ReportingForm,
    body: EscrowIn,
    reporter_person_id: uuid.UUID | None,
    receipt_key: str,
    now: datetime,
) -> tuple[EscrowEntry, str]:
    """Hold a report in escrow and match it. Returns the entry and its receipt code (display
    form, shown once). Times are the hour's (nobody can tell when it was written)."""
    hour = coarse(now)
    await expire_due(session, vault, form.org_id, now=now)
    await _check_rate(session, escrow, form.org_id, now)
    named = _normalised(body)
    report_data = body.report.model_dump(mode="json")
    as_report = _as_report(report_data, form.org_slug, ReportMode.ANONYMOUS, None)
    reports._check_categories(form, as_report.categories)
    await reports._check_people(session, form, as_report)
    people = {uuid.UUID(normal) for kind, normal in named if kind == ids.IdentifierKind.PERSON}
    foreign = await foreign_people(session, form.org_id, people)
    if foreign:
        raise InvalidIdentifiers(
            "The request did not validate.",
            errors=[
                {"field": f"body.identifiers.{position}.value", "message": reports.NOT_OF_THIS_ORG}
                for position, (kind, normal) in enumerate(named)
                if kind == ids.IdentifierKind.PERSON and uuid.UUID(normal) in foreign
            ],
        )
    indexes, people = await _indexes(session, escrow, form.org_id, named)

    who: str | None = None
    own: set[str] = set()
    if reporter_person_id is not None:
        who = f"person:{reporter_person_id}"
        own.add(escrow.person_index(reporter_person_id))
    elif body.report.reporter is not None:
        who = ids.contact_normal(body.report.reporter.contact)
        kind, _, normal = who.partition(":")
        if kind in (ids.IdentifierKind.EMAIL, ids.IdentifierKind.PHONE):
            own.add(escrow.index(kind, normal))
    if own & indexes:
        raise InvalidIdentifiers(
            "The request did not validate.",
            errors=[{"field": "body.identifiers", "message": "An entry cannot name its reporter."}],
        )

    threshold, expiry_days = await settings_of(session, form.org_id, escrow)
    code = receipts.new_code()
    entry_id = uuid.uuid4()
    await vault.create_key(session, org_id=form.org_id, owner_id=entry_id, created_at=hour)
    entry = EscrowEntry(
        id=entry_id,
        org_id=form.org_id,
        status=EscrowStatus.WAITING.value,
        created_at=hour,
        expires_at=hour + timedelta(days=expiry_days),
        reporter_index=ids.reporter_index(escrow.index_key, who) if who else None,
        receipt_lookup=receipts.lookup_key(code, receipt_key),
        receipt_hash=await slow_hash(receipts.hash_code, code),
        content={
            "report": report_data,
            "identifiers": [{"kind": k.value, "value": v} for k, v in named],
            "people": sorted(str(p) for p in people),
            "reporter_person_id": str(reporter_person_id) if reporter_person_id else None,
        },
    )
    session.add(entry)
    await session.flush()
    session.add_all(
        EscrowIdentifier(org_id=form.org_id, entry_id=entry_id, blind_index=index)
        for index in sorted(indexes)
    )
    await session.flush()
    await _match(session, entry, escrow, now=now, threshold=threshold)
    return entry, receipts.display(code)


async def _match(
    session: AsyncSession,
    entry: EscrowEntry,
    escrow: Escrow,
    *,
    now: datetime,
    threshold: int | None = None,
) -> bool:
    """Match `entry` with the live or released entries of its organisation that share a
    blind index with it. A match needs `threshold` distinct reporters: entries of one
    reporter (same reporter index) count once, so nobody matches themselves."""
    if threshold is None:
        threshold, _ = await settings_of(session, entry.org_id, escrow)
    mine = select(EscrowIdentifier.blind_index).where(EscrowIdentifier.entry_id == entry.id)
    others = (
        await session.scalars(
            select(EscrowEntry)
            .join(EscrowIdentifier, EscrowIdentifier.entry_id == EscrowEntry.id)
            .where(
                EscrowIdentifier.org_id == entry.org_id,
                EscrowIdentifier.blind_index.in_(mine),
                EscrowEntry.id != entry.id,
                EscrowEntry.status.in_(COUNTED),
                EscrowEntry.expires_at > now,
            )
            .distinct()
        )
    ).all()
    group = [entry, *others]
    reporters = {e.reporter_index or f"entry:{e.id}" for e in group}
    if len(reporters) < threshold:
        return False
    match_id = next((e.match_id for e in others if e.match_id is not None), None) or uuid.uuid4()
    hour = coarse(now)
    for member in group:
        if member.match_id is not None and member.match_id != match_id:
            # Two matched groups joined by this entry: one match from now on.
            await session.execute(
                update(EscrowEntry)
                .where(EscrowEntry.match_id == member.match_id)
                .values(match_id=match_id)
            )
        member.match_id = match_id
        if member.status == EscrowStatus.WAITING.value:
            member.status = EscrowStatus.MATCHED.value
            member.matched_at = hour
    await session.flush()
    return True


async def expire_due(
    session: AsyncSession, vault: Vault, org_id: uuid.UUID, *, now: datetime
) -> None:
    """Entries past their time that were never released: their content is shredded and
    their identifiers deleted; the row stays only so the reporter reads `expired`."""
    due = (
        await session.scalars(
            select(EscrowEntry).where(
                EscrowEntry.org_id == org_id,
                EscrowEntry.status.in_(LIVE),
                EscrowEntry.expires_at <= now,
            )
        )
    ).all()
    for entry in due:
        await _forget(session, vault, entry, EscrowStatus.EXPIRED)


async def _forget(
    session: AsyncSession, vault: Vault, entry: EscrowEntry, status: EscrowStatus
) -> None:
    entry.status = status.value
    entry.reporter_index = None
    entry.match_id = None
    entry.content = None
    await session.execute(delete(EscrowIdentifier).where(EscrowIdentifier.entry_id == entry.id))
    await session.flush()
    await vault.destroy_key(session, entry.id)


async def entry_of(
    session: AsyncSession, entry_id: uuid.UUID, org_id: uuid.UUID | None
) -> EscrowEntry:
    entry = await session.scalar(
        select(EscrowEntry).where(EscrowEntry.id == entry_id, EscrowEntry.org_id == org_id)
    )
    if entry is None:
        raise NotFound(NO_SUCH_ENTRY)
    return entry


async def read_entry(
    session: AsyncSession,
    vault: Vault,
    entry_id: uuid.UUID,
    org_id: uuid.UUID | None,
    now: datetime,
) -> EscrowEntry:
    """The reporter's entry, after expiring it if its time is up."""
    entry = await entry_of(session, entry_id, org_id)
    if entry.status in LIVE and entry.expires_at <= now:
        await _forget(session, vault, entry, EscrowStatus.EXPIRED)
    return entry


async def withdraw(
    session: AsyncSession,
    vault: Vault,
    entry_id: uuid.UUID,
    org_id: uuid.UUID | None,
    now: datetime,
) -> EscrowEntry:
    """Withdraw an entry (until it is released): its content is crypto-shredded and its
    identifiers deleted, so it never matches again. Repeating it changes nothing."""
    entry = await read_entry(session, vault, entry_id, org_id, now)
    if entry.status == EscrowStatus.RELEASED.value:
        raise Conflict("This entry was released: it is a report now.")
    if entry.status in LIVE:
        await _forget(session, vault, entry, EscrowStatus.WITHDRAWN)
    return entry


async def release(
    session: AsyncSession,
    *,
    vault: Vault,
    events: EventBus,
    entry_id: uuid.UUID,
    org_id: uuid.UUID | None,
    body: ReleaseIn,
    now: datetime,
) -> Report:
    """Turn a matched entry into a report with the entry's id, in the mode its reporter
    chose, and emit `upstander.report.submitted` naming the reports of the same match
    already released (`linked_report_ids`: cases links their cases). The receipt code moves
    to the report, so the reporter's token follows it to the case."""
    entry = await read_entry(session, vault, entry_id, org_id, now)
    if entry.status != EscrowStatus.MATCHED.value:
        raise Conflict(
            {
                EscrowStatus.WAITING.value: "Nobody else has named this person yet.",
                EscrowStatus.RELEASED.value: "This entry was released already.",
            }.get(entry.status, "This entry can no longer be released.")
        )
    content = entry.content
    if content is None:
        raise NotFound(NO_SUCH_ENTRY)
    form = await session.scalar(select(ReportingForm).where(ReportingForm.org_id == entry.org_id))
    if form is None:
        raise NotFound(NO_SUCH_ENTRY)
    reporter_person_id = (
        uuid.UUID(content["reporter_person_id"]) if content.get("reporter_person_id") else None
    )
    if body.mode == ReportMode.IDENTIFIED and reporter_person_id is None:
        raise Forbidden("Only an entry made with your staff token can be released identified.")
    given = content["report"].get("reporter")
    reporter = body.reporter.model_dump(mode="json") if body.reporter else given
    report_in = _as_report(
        content["report"],
        form.org_slug,
        body.mode,
        reporter if body.mode == ReportMode.CONFIDENTIAL else None,
    )
    # The person the entry names is the report's subject: cases routes it by the usual
    # conflict and leadership rules.
    listed = {p.person_id for p in report_in.people_involved if p.person_id is not None}
    extra = [
        {"person_id": person, "role": "subject"}
        for person in content.get("people", [])
        if uuid.UUID(person) not in listed
    ]
    if extra:
        report_in = report_in.model_copy(
            update={
                "people_involved": [
                    *report_in.people_involved,
                    *(PersonInvolved.model_validate(p) for p in extra),
                ]
            }
        )
    submitted_at = for_reporter(now, body.mode)
    linked = (
        await session.scalars(
            select(EscrowEntry.id).where(
                EscrowEntry.match_id == entry.match_id,
                EscrowEntry.status == EscrowStatus.RELEASED.value,
                EscrowEntry.id != entry.id,
            )
        )
    ).all()
    report_content = reports._content(
        report_in, reporter_person_id if body.mode == ReportMode.IDENTIFIED else None
    )
    report = Report(
        id=entry.id,
        org_id=entry.org_id,
        mode=body.mode.value,
        status=ReportStatus.SUBMITTED.value,
        submitted_at=submitted_at,
        receipt_lookup=entry.receipt_lookup if body.mode != ReportMode.IDENTIFIED else None,
        receipt_hash=entry.receipt_hash if body.mode != ReportMode.IDENTIFIED else None,
        content=report_content,
        created_at=submitted_at,
        updated_at=submitted_at,
    )
    # The same data key (owner: this id) seals the report; the entry's copy goes.
    entry.receipt_lookup = None
    entry.content = None
    entry.status = EscrowStatus.RELEASED.value
    entry.released_at = coarse(now)
    await session.flush()
    session.add(report)
    await session.flush()
    data = reports.submitted_event_data(report, report_content, form.org_slug, [])
    data = ReportSubmitted.model_validate(
        {**data, "linked_report_ids": [str(i) for i in sorted(linked)]}
    ).model_dump(mode="json")
    await events.publish(
        session,
        REPORT_SUBMITTED,
        f"report/{report.id}",
        data,
        org_id=entry.org_id,
        at=submitted_at,
    )
    await session.flush()
    return report
