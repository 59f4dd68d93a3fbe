"""Retaliation check-ins (Directive 2019/1937 Art. 19; ISO 37002 "protective measures keep
being monitored"): some days after a case closes (`checkin_offsets_days`, 30 and 90 by
default) the reporter gets a system message asking whether they have faced retaliation, in
the Art. 19 vocabulary. They answer with their reporter token; a "yes" opens a new case of
high (or urgent) priority, linked `retaliation_follow_up`, hidden from everyone the original
is hidden from and routed like it.

The follow-up case has no intake report of its own: its `report_id` is derived from the
check-in (uuid5), so opening it is idempotent, and the reporter keeps talking to the handlers
through the original case's conversation (their token is scoped to the original report)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.cases.cases import service as cases
from upstander.cases.cases.flows import CASE_OPENED
from upstander.cases.directory.service import org_slug
from upstander.cases.messages.service import post_message
from upstander.cases.models import (
    AuthorKind,
    Case,
    CaseLink,
    CaseReport,
    CaseRestriction,
    CaseSettings,
    CaseStatus,
    LinkKind,
    Priority,
    RetaliationCheckin,
    Severity,
)
from upstander.cases.workflow.service import reporter_language
from upstander.kit.clock import Clock
from upstander.kit.contracts import CaseOpened
from upstander.kit.crypto import Vault
from upstander.kit.db import upsert_insert
from upstander.kit.errors import Conflict, NotFound
from upstander.kit.events import EventBus

log = logging.getLogger("upstander.cases.checkins")

DEFAULT_OFFSETS_DAYS = (30, 90)
BATCH = 500
# A namespace for the synthetic report id of a follow-up case (uuid5 of the check-in id).
FOLLOW_UP_NAMESPACE = uuid.UUID("6f1d2c9e-4b1a-4e0c-9d8f-2a3b4c5d6e7f")

# The question, with Art. 19's list of forbidden retaliation, in the reporter's language.
QUESTIONS = {
    "en": (
        "Your case was closed {days} days ago. We want to make sure no one has retaliated "
        "against you for reporting. Since you reported, have you faced any of the following: "
        "suspension, lay-off or dismissal; demotion or withheld promotion; a negative "
        "performance appraisal or reference; changed duties, location, hours or pay; withheld "
        "training; a disciplinary measure or reprimand; coercion, intimidation, harassment or "
        "ostracism; discrimination or unfair treatment; blacklisting; or harm to your "
        "reputation, including on social media? Please answer this check-in (yes or no); "
        "anything you add stays confidential, and a yes opens a new case handled with priority."
    ),
    "es": (
        "Tu caso se cerró hace {days} días. Queremos asegurarnos de que nadie haya tomado "
        "represalias contra ti por denunciar. Desde que denunciaste, ¿has sufrido alguna de "
        "estas situaciones: suspensión, despido; degradación o denegación de un ascenso; una "
        "evaluación de desempeño o referencia negativa; cambios de funciones, lugar, horario o "
        "salario; denegación de formación; una medida disciplinaria o amonestación; coacción, "
        "intimidación, acoso u ostracismo; discriminación o trato injusto; inclusión en listas "
        "negras; o daño a tu reputación, también en redes sociales? Responde a este seguimiento "
        "(sí o no); lo que añadas es confidencial, y un sí abre un nuevo caso prioritario."
    ),
}


async def offsets_of(session: AsyncSession, org_id: uuid.UUID) -> list[int]:
    settings = await session.get(CaseSettings, org_id)
    if settings is None or settings.checkin_offsets_days is None:
        return list(DEFAULT_OFFSETS_DAYS)
    return sorted({int(days) for days in settings.checkin_offsets_days})


async def post_due_checkins(
    session: AsyncSession, *, vault: Vault, events: EventBus, now: datetime
) -> int:
    """Ask the reporters of closed cases whose check-in day has come; each once (a unique
    key per case, closing and offset, inserted with ON CONFLICT DO NOTHING). Returns how many
    were posted."""
    org_ids = set(
        await session.scalars(
            select(Case.org_id).where(Case.status == CaseStatus.CLOSED).distinct()
        )
    )
    posted = 0
    for org_id in sorted(org_ids):
        for days in await offsets_of(session, org_id):
            due = await session.scalars(
                select(Case)
                .where(
                    Case.org_id == org_id,
                    Case.status == CaseStatus.CLOSED,
                    Case.closed_at.is_not(None),
                    Case.closed_at <= now - timedelta(days=days),
                    ~exists().where(
                        RetaliationCheckin.case_id == Case.id,
                        RetaliationCheckin.case_closed_at == Case.closed_at,
                        RetaliationCheckin.offset_days == days,
                    ),
                )
                .order_by(Case.closed_at, Case.id)
                .limit(BATCH)
            )
            for case in list(due):
                posted += await _post_checkin(
                    session, case, days, vault=vault, events=events, now=now
                )
    return posted


async def _post_checkin(
    session: AsyncSession,
    case: Case,
    days: int,
    *,
    vault: Vault,
    events: EventBus,
    now: datetime,
) -> int:
    assert case.closed_at is not None
    checkin_id = uuid.uuid4()
    inserted = (
        await session.execute(
            upsert_insert(session, RetaliationCheckin)
            .values(
                id=checkin_id,
                org_id=case.org_id,
                case_id=case.id,
                case_closed_at=case.closed_at,
                offset_days=days,
                due_at=case.closed_at + timedelta(days=days),
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["case_id", "case_closed_at", "offset_days"])
            .returning(RetaliationCheckin.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        return 0  # another replica asked first
    language = await reporter_language(session, case)
    message = await post_message(
        session,
        case,
        author=AuthorKind.SYSTEM,
        body=QUESTIONS[language].format(days=days),
        vault=vault,
        events=events,
        now=now,
    )
    checkin = await session.get_one(RetaliationCheckin, checkin_id)
    checkin.message_id = message.id
    await session.flush()
    log.info("retaliation check-in posted", extra={"case_id": str(case.id), "days": days})
    return 1


async def list_checkins(session: AsyncSession, case: Case) -> list[RetaliationCheckin]:
    rows = await session.scalars(
        select(RetaliationCheckin)
        .where(RetaliationCheckin.org_id == case.org_id, RetaliationCheckin.case_id == case.id)
        .order_by(RetaliationCheckin.due_at, RetaliationCheckin.id)
    )
    return list(rows.all())


async def answer_checkin(
    session: AsyncSession,
    case: Case,
    checkin_id: uuid.UUID,
    *,
    retaliation: bool,
    details: str | None,
    vault: Vault,
    events: EventBus,
    clock: Clock,
) -> RetaliationCheckin:
    """Record the reporter's answer (once: 409 after); a yes opens the follow-up case."""
    checkin = await session.scalar(
        select(RetaliationCheckin)
        .where(
            RetaliationCheckin.id == checkin_id,
            RetaliationCheckin.case_id == case.id,
            RetaliationCheckin.org_id == case.org_id,
        )
        .with_for_update()
    )
    if checkin is None:
        raise NotFound("No such check-in on your case.")
    if checkin.answered_at is not None:
        raise Conflict("This check-in was already answered.")
    now = clock.now()
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    checkin.answered_at = checkin.updated_at = now
    checkin.retaliation = retaliation
    checkin.details = details
    await session.flush()
    if retaliation:
        follow_up = await open_follow_up(
            session, case, checkin, details=details, vault=vault, events=events, clock=clock
        )
        checkin.follow_up_case_id = follow_up.id
        await session.flush()
    return checkin


async def open_follow_up(
    session: AsyncSession,
    original: Case,
    checkin: RetaliationCheckin,
    *,
    details: str | None,
    vault: Vault,
    events: EventBus,
    clock: Clock,
) -> Case:
    """A new case for the retaliation the reporter reports: same org, new number, priority
    high (urgent when the original was of high or critical severity), every restriction of the
    original copied, routed like the original, linked, and announced with `case.opened`."""
    now = clock.now()
    slug = await org_slug(session, original.org_id) or "case"
    case = await cases.open_case(
        session,
        org_id=original.org_id,
        org_slug=slug,
        report_id=uuid.uuid5(FOLLOW_UP_NAMESPACE, str(checkin.id)),
        received_at=now,
        categories=["retaliation"],
        clock=clock,
        reporter_mode=original.reporter_mode,
        reporter_person_id=original.reporter_person_id,
        routed_to=original.routed_to,
    )
    urgent = original.severity in (Severity.HIGH, Severity.CRITICAL)
    case.priority = Priority.URGENT if urgent else Priority.HIGH
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)
    language = await reporter_language(session, original)
    session.add(
        CaseReport(
            org_id=case.org_id,
            case_id=case.id,
            content={
                "source": "retaliation_check_in",
                "follows_up": original.number,
                "check_in_id": str(checkin.id),
                "language": language,
                "categories": ["retaliation"],
                "description": details,
            },
            created_at=now,
            updated_at=now,
        )
    )
    restrictions = await session.execute(
        select(CaseRestriction.person_id, CaseRestriction.reason).where(
            CaseRestriction.case_id == original.id
        )
    )
    by_reason: dict[Any, set[uuid.UUID]] = {}
    for person_id, reason in restrictions:
        by_reason.setdefault(reason, set()).add(person_id)
    for reason, people in by_reason.items():
        # The follow-up case is new: nobody was told of it yet (`case.opened` below).
        await cases.restrict(session, case, people, reason, events=None, now=now)
    session.add(
        CaseLink(
            org_id=case.org_id,
            case_id=original.id,
            linked_case_id=case.id,
            kind=LinkKind.RETALIATION_FOLLOW_UP,
            created_by="system",
            created_at=now,
        )
    )
    await session.flush()
    await events.publish(
        session,
        CASE_OPENED,
        f"case/{case.id}",
        CaseOpened(
            case_id=case.id,
            number=case.number,
            routed_to=case.routed_to.value,
            restricted_person_ids=await cases.restricted_person_ids(session, case.id),
        ).model_dump(mode="json"),
        org_id=case.org_id,
    )
    log.info(
        "retaliation follow-up opened",
        extra={"case_id": str(case.id), "follows_up": str(original.id)},
    )
    return case
