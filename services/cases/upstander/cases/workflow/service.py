"""The case workflow as a state machine with guards, plus allegations, findings, updates of
severity and priority, and links between cases. Callers pass a case they may see
(`visible_case`); these functions only flush.

    new → triage → investigating → decision → closed
    new | triage | investigating → referred (to police, outside counsel, the party...)
    new | triage | investigating → dismissed (out of scope; a reason is required)
    decision → investigating (more to find out)
    closed | referred | dismissed → triage (reopening; a reason is required)
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from upstander.cases.cases import deadlines
from upstander.cases.cases.service import (
    actor_of,
    deadline_settings,
    involved_people,
    restrict,
    restrict_chain,
    restricted_person_ids,
    route_for,
)
from upstander.cases.directory.service import foreign_people, managers_above
from upstander.cases.messages.service import post_message
from upstander.cases.models import (
    Allegation,
    AssignmentRole,
    AuthorKind,
    Case,
    CaseAssignment,
    CaseLink,
    CaseReport,
    CaseRestriction,
    CaseStatus,
    CaseTransition,
    Finding,
    LinkKind,
    Outcome,
    Person,
    Priority,
    ReferralTarget,
    RestrictionReason,
    RoutedTo,
    Severity,
)
from upstander.cases.problems import (
    InvalidRequest,
    InvalidTransition,
    SeparationOfDuties,
    StaleVersion,
    TransitionBlocked,
)
from upstander.kit.auth import Principal
from upstander.kit.contracts import CaseRerouted, CaseStatusChanged, RoutedCaseEvent
from upstander.kit.crypto import Vault
from upstander.kit.errors import Conflict, NotFound
from upstander.kit.events import EventBus

S = CaseStatus
ALLOWED: dict[CaseStatus, tuple[CaseStatus, ...]] = {
    S.NEW: (S.TRIAGE, S.REFERRED, S.DISMISSED),
    S.TRIAGE: (S.INVESTIGATING, S.REFERRED, S.DISMISSED),
    S.INVESTIGATING: (S.DECISION, S.REFERRED, S.DISMISSED),
    S.DECISION: (S.CLOSED, S.INVESTIGATING),
    S.CLOSED: (S.TRIAGE,),
    S.REFERRED: (S.TRIAGE,),
    S.DISMISSED: (S.TRIAGE,),
    S.DELETED: (),  # a tombstone never moves (and nobody can reach it)
}
FINISHED = (S.CLOSED, S.REFERRED, S.DISMISSED)
# States in which allegations are recorded and findings written.
OPEN_FOR_ALLEGATIONS = (S.NEW, S.TRIAGE, S.INVESTIGATING, S.DECISION)
OPEN_FOR_FINDINGS = (S.INVESTIGATING, S.DECISION)

STATUS_CHANGED = CaseStatusChanged.EVENT_TYPE
REROUTED = CaseRerouted.EVENT_TYPE

# The automatic acknowledgment, in the reporter's language (English when unknown).
ACKNOWLEDGMENTS = {
    "en": (
        "We have received your report. A designated person is now handling it and will keep "
        "you informed. You can write to us here at any time."
    ),
    "es": (
        "Hemos recibido tu denuncia. Una persona designada se está ocupando de ella y te "
        "mantendrá informada. Puedes escribirnos aquí en cualquier momento."
    ),
}


def check_if_match(case: Case, if_match: str | None) -> None:
    """`If-Match` with the case's ETag (`"3"`, weak or strong, or `*`); absent is accepted."""
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",") if tag.strip()]
    if "*" in tags:
        return
    versions = {tag.removeprefix("W/").strip('"') for tag in tags}
    if str(case.version) not in versions:
        raise StaleVersion(
            "The case changed since you read it; fetch it again.", etag=f'"{case.version}"'
        )


async def _flush_case(session: AsyncSession) -> None:
    try:
        await session.flush()
    except StaleDataError:
        raise StaleVersion("The case changed meanwhile; fetch it again.") from None


async def _publish(
    session: AsyncSession,
    events: EventBus,
    case: Case,
    contract: type[RoutedCaseEvent],
    **extra: Any,
) -> None:
    data = contract(
        case_id=case.id,
        number=case.number,
        routed_to=case.routed_to.value,
        restricted_person_ids=await restricted_person_ids(session, case.id),
        **extra,
    )
    await events.publish(
        session,
        contract.EVENT_TYPE,
        f"case/{case.id}",
        data.model_dump(mode="json"),
        org_id=case.org_id,
    )


# ----------------------------------------------------------------------------- transitions


async def reporter_language(session: AsyncSession, case: Case) -> str:
    """The language the reporter wrote in, else their directory language, else English."""
    report = await session.scalar(select(CaseReport).where(CaseReport.case_id == case.id))
    language = (report.content or {}).get("language") if report is not None else None
    if not language and case.reporter_person_id is not None:
        person = await session.get(Person, case.reporter_person_id)
        language = person.language if person is not None else None
    primary = str(language or "en").split("-")[0].split("_")[0].lower()
    return primary if primary in ACKNOWLEDGMENTS else "en"


async def acknowledge(
    session: AsyncSession, case: Case, *, vault: Vault, events: EventBus, now: datetime
) -> None:
    """Acknowledge receipt: stamp it, count feedback from now (Art. 9), tell the reporter."""
    if case.acknowledged_at is not None:
        return
    acknowledge_days, months = await deadline_settings(session, case.org_id)
    case.acknowledged_at = now
    case.feedback_by = deadlines.feedback_by(
        case.received_at, now, acknowledge_days=acknowledge_days, months=months
    )
    language = await reporter_language(session, case)
    await post_message(
        session,
        case,
        author=AuthorKind.SYSTEM,
        body=ACKNOWLEDGMENTS[language],
        vault=vault,
        events=events,
        now=now,
    )


async def _unmet_guards(
    session: AsyncSession, case: Case, to: CaseStatus, *, outcome: Outcome | None
) -> list[str]:
    unmet: list[str] = []
    if to == S.INVESTIGATING:
        investigator = await session.scalar(
            select(CaseAssignment.id).where(
                CaseAssignment.case_id == case.id,
                CaseAssignment.role == AssignmentRole.INVESTIGATOR,
            )
        )
        if investigator is None:
            unmet.append("investigator_assigned")
    if to == S.CLOSED:
        allegations = list(
            await session.scalars(select(Allegation).where(Allegation.case_id == case.id))
        )
        if not allegations or any(a.finding is None for a in allegations):
            unmet.append("findings_complete")
        if outcome is None:
            unmet.append("outcome")
        if case.feedback_sent_at is None:
            unmet.append("feedback_sent")
    return unmet


async def transition(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    to: CaseStatus,
    reason: str | None,
    referred_to: ReferralTarget | None,
    outcome: Outcome | None,
    feedback_sent_at: datetime | None,
    if_match: str | None,
    vault: Vault,
    events: EventBus,
    now: datetime,
) -> CaseTransition:
    """Move `case` to `to`, checking the state machine, its guards and separation of duties,
    and record who, when and why."""
    check_if_match(case, if_match)
    allowed = ALLOWED[case.status]
    if to not in allowed:
        raise InvalidTransition(
            f"A case in {case.status.value} cannot move to {to.value}.",
            current=case.status.value,
            allowed=[state.value for state in allowed],
        )
    reopening = case.status in FINISHED and to == S.TRIAGE
    if (reopening or to == S.DISMISSED) and not reason:
        raise InvalidRequest("body.reason", "A reason is required to dismiss or reopen a case.")
    if to == S.REFERRED and referred_to is None:
        raise InvalidRequest("body.referred_to", "Say who the case is referred to.")
    if feedback_sent_at is not None:
        if feedback_sent_at > now:
            raise InvalidRequest("body.feedback_sent_at", "Feedback cannot be sent in the future.")
        if case.feedback_sent_at is None:
            case.feedback_sent_at = feedback_sent_at
    unmet = await _unmet_guards(session, case, to, outcome=outcome)
    if unmet:
        raise TransitionBlocked(
            f"The case cannot move to {to.value} yet: {', '.join(unmet)}.", unmet=unmet
        )
    actor_kind, actor_id = actor_of(principal)
    if case.status == S.DECISION and to == S.CLOSED:
        authors = await session.execute(
            select(Allegation.finding_by_kind, Allegation.finding_by_id).where(
                Allegation.case_id == case.id
            )
        )
        if (actor_kind, actor_id) in {(kind, ident) for kind, ident in authors}:
            raise SeparationOfDuties(
                "You wrote a finding on this case; someone else must approve the decision."
            )

    if case.status == S.NEW:
        await acknowledge(session, case, vault=vault, events=events, now=now)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    previous = case.status
    case.status = to
    if to == S.CLOSED:
        case.closed_at, case.outcome = now, outcome
    if to == S.REFERRED:
        case.referred_to, case.closed_at = referred_to, now
    if to == S.DISMISSED:
        case.closed_at = now
    if reopening:
        # A reopened case is live again: the reporter is owed new feedback.
        _, months = await deadline_settings(session, case.org_id)
        case.closed_at = case.outcome = case.referred_to = case.feedback_sent_at = None
        case.feedback_by = deadlines.add_months(now, months)
    case.updated_at = now
    position = await session.scalar(
        select(func.coalesce(func.max(CaseTransition.position), 0)).where(
            CaseTransition.case_id == case.id
        )
    )
    record = CaseTransition(
        org_id=case.org_id,
        case_id=case.id,
        position=int(position or 0) + 1,
        from_status=previous,
        to_status=to,
        actor_kind=actor_kind,
        actor_id=actor_id,
        reason=reason,
        referred_to=referred_to if to == S.REFERRED else None,
        outcome=outcome if to == S.CLOSED else None,
        feedback_sent_at=feedback_sent_at,
        created_at=now,
    )
    session.add(record)
    await _flush_case(session)
    await _publish(
        session, events, case, CaseStatusChanged, **{"from": previous.value, "to": to.value}
    )
    return record


async def list_transitions(session: AsyncSession, case: Case) -> list[CaseTransition]:
    rows = await session.scalars(
        select(CaseTransition)
        .where(CaseTransition.org_id == case.org_id, CaseTransition.case_id == case.id)
        .order_by(CaseTransition.position)
    )
    return list(rows.all())


# ----------------------------------------------------------------------------- updates


async def update_case(
    session: AsyncSession,
    case: Case,
    *,
    changes: dict[str, Any],
    if_match: str | None,
    now: datetime,
) -> Case:
    """Change severity and/or priority, guarded by `If-Match` (412 on a stale version)."""
    check_if_match(case, if_match)
    if "severity" in changes:
        value = changes["severity"]
        case.severity = Severity(value) if value is not None else None
    if "priority" in changes:
        case.priority = Priority(changes["priority"])
    case.updated_at = now
    await _flush_case(session)
    return case


# ----------------------------------------------------------------------------- allegations


NOT_OF_THIS_ORG = "Not a person of this organisation."


async def refuse_foreign_subjects(
    session: AsyncSession, case: Case, subject_person_ids: Sequence[uuid.UUID]
) -> None:
    """422 when a subject is a person of another organisation (per the directory): a case
    names only its own organisation's people. Every such subject is listed by position."""
    foreign = await foreign_people(session, case.org_id, subject_person_ids)
    if not foreign:
        return
    errors = [
        {"field": f"body.subject_person_ids.{index}", "message": NOT_OF_THIS_ORG}
        for index, person_id in enumerate(subject_person_ids)
        if person_id in foreign
    ]
    error = InvalidRequest(errors[0]["field"], NOT_OF_THIS_ORG)
    error.extra["errors"] = errors
    raise error


async def add_allegation(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    category: str,
    description: str,
    subject_person_ids: Sequence[uuid.UUID],
    vault: Vault,
    events: EventBus,
    now: datetime,
) -> Allegation:
    """Record an allegation. Its subjects are involved people from now on: the case is hidden
    from them and their chain, and goes to reviewers if their position calls for it."""
    if case.status not in OPEN_FOR_ALLEGATIONS:
        raise Conflict(f"Allegations cannot be added to a {case.status.value} case.")
    await refuse_foreign_subjects(session, case, subject_person_ids)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    allegation = Allegation(
        org_id=case.org_id,
        case_id=case.id,
        category=category,
        description=description,
        subject_person_ids=sorted({str(p) for p in subject_person_ids}),
        created_at=now,
        updated_at=now,
    )
    session.add(allegation)
    subjects = set(subject_person_ids)
    if subjects:
        # Announced (`case.restricted`): notify withdraws what they were told of the case.
        await restrict(session, case, subjects, RestrictionReason.INVOLVED, events=events, now=now)
        await restrict_chain(session, case, events=events, now=now)
        await escalate_routing(session, case, events=events, now=now)
    await _flush_case(session)
    return allegation


async def escalate_routing(
    session: AsyncSession, case: Case, *, events: EventBus, now: datetime
) -> None:
    """Send a case to reviewers once someone involved calls for it; never back."""
    if case.routed_to == RoutedTo.REVIEWERS:
        return
    involved = await involved_people(session, case.id)
    if await route_for(session, case.org_id, involved) == RoutedTo.REVIEWERS:
        case.routed_to = RoutedTo.REVIEWERS
        case.updated_at = now
        await _flush_case(session)
        await _publish(session, events, case, CaseRerouted)


async def reroute_for_person(
    session: AsyncSession, person: Person, *, events: EventBus, now: datetime
) -> int:
    """A person's directory record arrived or changed after cases opened: reroute to
    reviewers the open cases where they are involved (they may be leadership), or, when they
    are a case manager, where someone above them is involved. Returns how many moved."""
    candidates = {person.id}
    if "case_manager" in (person.roles or []):
        candidates |= await managers_above(session, person.org_id, {person.id})
    cases = await session.scalars(
        select(Case)
        .where(
            Case.org_id == person.org_id,
            Case.routed_to == RoutedTo.CASE_MANAGERS,
            Case.status != CaseStatus.DELETED,
            Case.id.in_(
                select(CaseRestriction.case_id).where(
                    CaseRestriction.org_id == person.org_id,
                    CaseRestriction.reason == RestrictionReason.INVOLVED,
                    CaseRestriction.person_id.in_(candidates),
                )
            ),
        )
        .order_by(Case.created_at, Case.id)
    )
    moved = 0
    for case in list(cases):
        await escalate_routing(session, case, events=events, now=now)
        moved += int(case.routed_to == RoutedTo.REVIEWERS)
    return moved


async def list_allegations(session: AsyncSession, case: Case) -> list[Allegation]:
    rows = await session.scalars(
        select(Allegation)
        .where(Allegation.org_id == case.org_id, Allegation.case_id == case.id)
        .order_by(Allegation.created_at, Allegation.id)
    )
    return list(rows.all())


async def set_finding(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    allegation_id: uuid.UUID,
    *,
    finding: Finding,
    rationale: str,
    vault: Vault,
    now: datetime,
) -> Allegation:
    """Write (or rewrite) the finding on an allegation, recording its author."""
    allegation = await session.scalar(
        select(Allegation).where(
            Allegation.id == allegation_id,
            Allegation.case_id == case.id,
            Allegation.org_id == case.org_id,
        )
    )
    if allegation is None:
        raise NotFound("No such allegation on this case.")
    if case.status not in OPEN_FOR_FINDINGS:
        raise Conflict(
            f"Findings are written while investigating or deciding, not in {case.status.value}."
        )
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    allegation.finding_by_kind, allegation.finding_by_id = actor_of(principal)
    allegation.finding, allegation.rationale = finding, rationale
    allegation.finding_at = allegation.updated_at = now
    await session.flush()
    return allegation


# ----------------------------------------------------------------------------- links


async def link_cases(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    other: Case,
    *,
    kind: LinkKind,
    now: datetime,
) -> CaseLink:
    if case.id == other.id:
        raise InvalidRequest("body.case_id", "A case cannot be linked to itself.")
    existing = await session.scalar(
        select(CaseLink.id).where(
            CaseLink.org_id == case.org_id,
            CaseLink.kind == kind,
            or_(
                (CaseLink.case_id == case.id) & (CaseLink.linked_case_id == other.id),
                (CaseLink.case_id == other.id) & (CaseLink.linked_case_id == case.id),
            ),
        )
    )
    if existing is not None:
        raise Conflict("These cases are already linked that way.")
    link = CaseLink(
        org_id=case.org_id,
        case_id=case.id,
        linked_case_id=other.id,
        kind=kind,
        created_by=actor_of(principal)[1],
        created_at=now,
    )
    session.add(link)
    await session.flush()
    return link


async def links_of(session: AsyncSession, case: Case) -> list[tuple[CaseLink, uuid.UUID]]:
    """Links in both directions, each with the other case's id (callers filter visibility)."""
    rows = await session.scalars(
        select(CaseLink)
        .where(
            CaseLink.org_id == case.org_id,
            or_(CaseLink.case_id == case.id, CaseLink.linked_case_id == case.id),
        )
        .order_by(CaseLink.created_at, CaseLink.id)
    )
    return [
        (link, link.linked_case_id if link.case_id == case.id else link.case_id)
        for link in rows.all()
    ]
