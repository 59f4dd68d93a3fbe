"""Reminders: what the compliance engine says is due soon, overdue or awaiting an
acknowledgment becomes an event for notify, once per person, thing, kind and cycle (the due
date of that cycle), and each supervisor hears which of their direct reports are overdue.

`run_once()` is one pass over every organisation with active rules, at the injected clock's
time; the background loop (hourly) just calls it. What was sent is kept in `reminders_sent`,
whose unique key makes a second pass (or a second replica) send nothing twice."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, union
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.kit.clock import Clock
from upstander.kit.contracts import (
    CourseReminder,
    OverdueCourse,
    PolicyAcknowledgmentDue,
    SupervisorDigest,
    TrainingDueSoon,
    TrainingOverdue,
)
from upstander.kit.events import EventBus
from upstander.kit.loops import PeriodicTask
from upstander.training.compliance.engine import Item, PersonLike, Status
from upstander.training.compliance.service import current_versions, organisation_compliance
from upstander.training.models import Policy, ReminderKind, ReminderSent, Requirement

log = logging.getLogger("upstander.training.reminders")

DUE_SOON = TrainingDueSoon.EVENT_TYPE
OVERDUE = TrainingOverdue.EVENT_TYPE
ACKNOWLEDGMENT_DUE = PolicyAcknowledgmentDue.EVENT_TYPE
SUPERVISOR_DIGEST = SupervisorDigest.EVENT_TYPE

EVENT_TYPES = {
    ReminderKind.DUE_SOON: DUE_SOON,
    ReminderKind.OVERDUE: OVERDUE,
    ReminderKind.ACKNOWLEDGMENT_DUE: ACKNOWLEDGMENT_DUE,
}

Key = tuple[uuid.UUID, uuid.UUID, ReminderKind, datetime]


@dataclass
class Reminder:
    person: PersonLike
    subject_id: uuid.UUID
    kind: ReminderKind
    due_at: datetime
    data: dict[str, Any]

    @property
    def key(self) -> Key:
        return (self.person.id, self.subject_id, self.kind, self.due_at)


@dataclass
class PassResult:
    organisations: int = 0
    sent: dict[str, int] = field(default_factory=dict)

    def count(self, event_type: str) -> None:
        self.sent[event_type] = self.sent.get(event_type, 0) + 1


def reminders_for(
    person: PersonLike,
    items: list[Item],
    versions: dict[tuple[uuid.UUID, int], uuid.UUID],
    *,
    now: datetime,
    window: timedelta,
) -> list[Reminder]:
    """The reminders one person's compliance items call for now. A course's cycle is its
    deadline: the first one, or when the last completion lapses (then renewal is due)."""
    found: list[Reminder] = []
    data: dict[str, Any]
    for item in items:
        if item.due_at is None:
            continue
        if item.kind == "course" and item.requirement_id is not None:
            contract: type[CourseReminder]
            if item.status in (Status.OVERDUE, Status.EXPIRED):
                kind, contract = ReminderKind.OVERDUE, TrainingOverdue
            elif item.status in (Status.DUE, Status.COMPLIANT) and item.due_at - now <= window:
                kind, contract = ReminderKind.DUE_SOON, TrainingDueSoon
            else:
                continue
            data = contract(
                person_id=person.id,
                requirement_id=item.requirement_id,
                course_id=item.course_id,
                due_at=item.due_at,
            ).model_dump(mode="json")
            found.append(Reminder(person, item.requirement_id, kind, item.due_at, data))
        elif item.kind == "policy" and item.status in (Status.DUE, Status.OVERDUE):
            assert item.policy_id is not None and item.policy_version is not None
            version_id = versions[(item.policy_id, item.policy_version)]
            data = PolicyAcknowledgmentDue(
                person_id=person.id,
                policy_id=item.policy_id,
                policy_version=item.policy_version,
                due_at=item.due_at,
            ).model_dump(mode="json")
            found.append(
                Reminder(person, version_id, ReminderKind.ACKNOWLEDGMENT_DUE, item.due_at, data)
            )
    return found


async def remind_organisation(
    session: AsyncSession,
    bus: EventBus,
    org_id: uuid.UUID,
    *,
    now: datetime,
    window: timedelta,
    result: PassResult,
) -> None:
    everyone = await organisation_compliance(session, org_id, now=now)
    versions = await current_versions(session, org_id)
    people = [standing.person for standing in everyone]
    overdue_courses: dict[uuid.UUID, set[uuid.UUID]] = {}
    candidates: list[Reminder] = []
    for standing in everyone:
        person, items = standing.person, standing.items
        overdue_courses[person.id] = {
            item.course_id
            for item in items
            if item.kind == "course"
            and item.course_id is not None
            and item.status in (Status.OVERDUE, Status.EXPIRED)
        }
        candidates.extend(reminders_for(person, items, versions, now=now, window=window))
    if not candidates:
        return

    subjects = {reminder.subject_id for reminder in candidates}
    sent: set[Key] = {
        (person_id, subject_id, kind, due)
        for person_id, subject_id, kind, due in (
            await session.execute(
                select(
                    ReminderSent.person_id,
                    ReminderSent.subject_id,
                    ReminderSent.kind,
                    ReminderSent.cycle_due_at,
                ).where(ReminderSent.org_id == org_id, ReminderSent.subject_id.in_(subjects))
            )
        ).all()
    }
    new = [reminder for reminder in candidates if reminder.key not in sent]
    if not new:
        return
    await session.execute(
        insert(ReminderSent),
        [
            {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "person_id": reminder.person.id,
                "subject_id": reminder.subject_id,
                "kind": reminder.kind,
                "cycle_due_at": reminder.due_at,
                "sent_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for reminder in new
        ],
    )
    for reminder in new:
        event_type = EVENT_TYPES[reminder.kind]
        await bus.publish(
            session, event_type, f"person/{reminder.person.id}", reminder.data, org_id=org_id
        )
        result.count(event_type)

    # A supervisor hears when one of their direct reports newly became overdue, with the
    # whole list of what their reports have overdue now.
    active = {person.id for person in people}
    supervisors = {
        reminder.person.manager_id
        for reminder in new
        if reminder.kind == ReminderKind.OVERDUE and reminder.person.manager_id in active
    }
    for supervisor_id in sorted(s for s in supervisors if s is not None):
        overdue = [
            OverdueCourse(person_id=person.id, course_id=course_id)
            for person in sorted(people, key=lambda p: str(p.id))
            if person.manager_id == supervisor_id
            for course_id in sorted(overdue_courses[person.id], key=str)
        ]
        await bus.publish(
            session,
            SUPERVISOR_DIGEST,
            f"person/{supervisor_id}",
            SupervisorDigest(supervisor_id=supervisor_id, overdue=overdue).model_dump(mode="json"),
            org_id=org_id,
        )
        result.count(SUPERVISOR_DIGEST)


class ReminderScheduler:
    """`app.state.reminders`: one pass on demand (`run_once`), or hourly in the background."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bus: EventBus,
        clock: Clock,
        *,
        window_days: int,
        interval_seconds: float = 3600.0,
        initial_delay_seconds: float = 60.0,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.bus = bus
        self.clock = clock
        self.window = timedelta(days=window_days)
        self.interval_seconds = interval_seconds
        self.initial_delay_seconds = initial_delay_seconds
        self._lock = asyncio.Lock()
        self._loop = PeriodicTask(
            "training-reminders",
            self._pass,
            interval=interval_seconds,
            initial_delay=initial_delay_seconds,
        )

    async def run_once(self) -> PassResult:
        """Send what is due now; each organisation in its own transaction."""
        async with self._lock:
            now = self.clock.now()
            result = PassResult()
            async with self.sessionmaker() as session:
                org_ids = (
                    await session.scalars(
                        union(
                            select(Requirement.org_id).where(Requirement.active.is_(True)),
                            select(Policy.org_id).where(
                                Policy.active.is_(True), Policy.current_version.is_not(None)
                            ),
                        )
                    )
                ).all()
            for org_id in org_ids:
                result.organisations += 1
                try:
                    async with self.sessionmaker() as session, session.begin():
                        await remind_organisation(
                            session, self.bus, org_id, now=now, window=self.window, result=result
                        )
                except IntegrityError:
                    # Another replica sent this organisation's reminders meanwhile.
                    log.info("reminders already sent elsewhere", extra={"org_id": str(org_id)})
            return result

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _pass(self) -> bool:
        """The kit loop's step (failures are logged by the loop, by type only)."""
        result = await self.run_once()
        log.info("reminders sent", extra={"sent": result.sent})
        return False
