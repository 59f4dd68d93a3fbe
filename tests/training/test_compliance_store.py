"""The stored compliance (`compliance_items` + the SQL status at *now*) says exactly what the
engine says, on each backend: random organisations are built and changed through the service
functions (so every incremental path runs), then compared with the in-memory reference at many
moments, including the exact deadlines and expiry times where a status flips."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.auth import Principal, PrincipalKind
from upstander.kit.errors import Conflict
from upstander.training.completions.schemas import CompletionCreate
from upstander.training.completions.service import import_completions, record_completion
from upstander.training.compliance import reference, service
from upstander.training.compliance.engine import Status
from upstander.training.compliance.store import rebuild_compliance
from upstander.training.courses.schemas import CourseCreate, CourseUpdate
from upstander.training.courses.service import create_course, update_course
from upstander.training.models import ComplianceItem
from upstander.training.people.service import apply_person_event
from upstander.training.policies.schemas import PolicyCreate, VersionCreate
from upstander.training.policies.service import acknowledge, create_policy, publish_version
from upstander.training.requirements.schemas import (
    ExemptionCreate,
    RequirementCreate,
    RequirementUpdate,
)
from upstander.training.requirements.service import (
    adopt_preset,
    create_exemption,
    create_requirement,
    update_requirement,
)
from upstander.training.xapi.service import store_statements

BASE = datetime(2025, 1, 1, tzinfo=UTC)
ROLES = ("staff", "field", "trainer", "manager")
LOCATIONS = ("CA", "NY", "IL", "ca", None)
AUDIENCES = (
    "everyone",
    "supervisors",
    "non_supervisors",
    "leadership",
    "role:field",
    "location:CA",
)
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"


class Events:
    """Anything that publishes: the store functions only need `publish`."""

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        return None


def moment(rng: random.Random, days: int = 900) -> datetime:
    return BASE + timedelta(minutes=rng.randrange(days * 24 * 60))


def person_event(rng: random.Random, org: uuid.UUID, person_id: uuid.UUID, managers: list) -> dict:
    return {
        "person_id": str(person_id),
        "org_id": str(org),
        "email": f"p{person_id.hex[:12]}@demo.example",
        "name": rng.choice(["", f"Person {person_id.hex[:4]}"]),
        "roles": rng.sample(ROLES, rng.randrange(0, 3)),
        "manager_id": str(rng.choice(managers)) if managers and rng.random() < 0.7 else None,
        "is_leadership": rng.random() < 0.15,
        "is_supervisor": rng.random() < 0.1,
        "start_date": (
            (date(2024, 6, 1) + timedelta(days=rng.randrange(600))).isoformat()
            if rng.random() < 0.7
            else None
        ),
        "location": rng.choice(LOCATIONS),
        "active": True,
    }


async def build_and_change(session: AsyncSession, rng: random.Random) -> tuple[Principal, list]:
    """A random org, built and then changed through the services; returns a trainer."""
    org = uuid.uuid4()
    trainer = Principal(PrincipalKind.STAFF, str(uuid.uuid4()), org, frozenset({"trainer"}))
    people: list[uuid.UUID] = []
    events: dict[uuid.UUID, dict] = {}
    clock = BASE
    for _ in range(rng.randrange(12, 24)):
        clock += timedelta(hours=rng.randrange(1, 200))
        person_id = uuid.uuid4()
        events[person_id] = person_event(rng, org, person_id, people)
        await apply_person_event(
            session,
            event_type="upstander.person.created",
            org_id=org,
            data=events[person_id],
            at=clock,
        )
        people.append(person_id)

    courses = []
    for number in range(3):
        courses.append(
            await create_course(
                session,
                trainer,
                CourseCreate(
                    title=f"Course {number}",
                    kind="other",
                    duration_minutes=rng.choice([30, 60, 120]),
                    interactive=rng.random() < 0.5,
                    activity_ids=[f"https://lms.example.org/act/{org.hex}/{number}"],
                    validity_months=rng.choice([None, 6, 12]),
                ),
            )
        )
    requirements = []
    for number in range(rng.randrange(2, 5)):
        requirements.append(
            await create_requirement(
                session,
                trainer,
                RequirementCreate(
                    course_id=rng.choice(courses).id,
                    name=f"Rule {number}",
                    audience=rng.choice(AUDIENCES),
                    location=rng.choice([None, None, "CA", "NY"]),
                    due_within_days=rng.choice([0, 30, 90, 183]),
                    recurrence_months=rng.choice([None, 12, 24]),
                    min_minutes=rng.choice([None, 45, 90]),
                    interactive_required=rng.random() < 0.3,
                    effective_from=rng.choice([None, moment(rng)]),
                ),
                now=moment(rng),
            )
        )
    if rng.random() < 0.5:
        await adopt_preset(
            session, trainer, rng.choice(["california", "new_york"]), now=moment(rng)
        )

    for _ in range(rng.randrange(10, 30)):
        await record_completion(
            session,
            trainer,
            CompletionCreate(
                person_id=rng.choice(people),
                course_id=rng.choice(courses).id,
                completed_at=moment(rng),
                duration_minutes=rng.choice([None, 30, 60, 120]),
            ),
        )
    lines = ["email,course,completed_at,duration_minutes"]
    for _ in range(rng.randrange(5, 30)):
        person = events[rng.choice(people)]
        when = moment(rng).isoformat().replace("+00:00", "Z")
        lines.append(
            f"{person['email']},{rng.choice(courses).title},{when},{rng.choice(['', 50, 130])}"
        )
    await import_completions(
        session, trainer, ("\n".join(lines) + "\n").encode(), now=BASE + timedelta(days=1000)
    )

    # xAPI: completions, and a voiding statement that takes one back.
    statements = []
    for _ in range(4):
        statements.append(
            {
                "id": str(uuid.uuid4()),
                "actor": {"mbox": f"mailto:{events[rng.choice(people)]['email']}"},
                "verb": {"id": COMPLETED},
                "object": {"id": rng.choice(courses).activity_ids[0]},
                "timestamp": moment(rng).isoformat(),
            }
        )
    now = BASE + timedelta(days=1000)
    await store_statements(session, org, statements, authority="lms", now=now)
    voiding = {
        "actor": {"mbox": "mailto:lms@demo.example"},
        "verb": {"id": VOIDED},
        "object": {"objectType": "StatementRef", "id": statements[0]["id"]},
    }
    await store_statements(session, org, [voiding], authority="lms", now=now)

    for person in rng.sample(people, 3):
        requirement = rng.choice(requirements)
        try:
            await create_exemption(
                session, trainer, requirement.id, ExemptionCreate(person_id=person, reason="x")
            )
        except Conflict:  # already exempt
            pass

    policies = []
    for number in range(2):
        policy = await create_policy(session, trainer, PolicyCreate(title=f"Policy {number}"))
        policies.append(policy)
        if number == 0 or rng.random() < 0.5:
            await publish_version(
                session,
                trainer,
                policy.id,
                VersionCreate(body="Be kind.", due_days=rng.choice([7, 30])),
                now=moment(rng),
                events=Events(),  # type: ignore[arg-type]
            )
    for person in rng.sample(people, len(people) // 2):
        policy = rng.choice(policies)
        if policy.current_version is None:
            continue
        me = Principal(PrincipalKind.STAFF, str(person), org, frozenset({"staff"}))
        await acknowledge(session, me, policy.id, policy.current_version, now=moment(rng))

    # Changes after the fact: moves, new managers, leavers, rule and course edits, a new version.
    for person in rng.sample(people, 6):
        clock += timedelta(days=rng.randrange(1, 90))
        data = dict(events[person])
        change = rng.choice(["location", "manager", "leave", "roles", "start"])
        if change == "location":
            data["location"] = rng.choice(LOCATIONS)
        elif change == "manager":
            data["manager_id"] = str(rng.choice(people))
        elif change == "roles":
            data["roles"] = rng.sample(ROLES, 2)
        elif change == "start":
            data["start_date"] = None
        event_type = "upstander.person.updated"
        if change == "leave":
            event_type = "upstander.person.deactivated"
        events[person] = data
        await apply_person_event(session, event_type=event_type, org_id=org, data=data, at=clock)
    first = requirements[0]
    await update_requirement(
        session,
        trainer,
        first.id,
        RequirementUpdate(due_within_days=rng.choice([10, 60]), min_minutes=rng.choice([None, 20])),
        if_match=None,
    )
    if len(requirements) > 2:
        await update_requirement(
            session, trainer, requirements[-1].id, RequirementUpdate(active=False), if_match=None
        )
    await update_course(
        session, trainer, courses[0].id, CourseUpdate(validity_months=rng.choice([3, 24]))
    )
    await publish_version(
        session,
        trainer,
        policies[0].id,
        VersionCreate(body="Be kinder.", due_days=14),
        now=moment(rng),
        events=Events(),  # type: ignore[arg-type]
    )
    return trainer, people


async def stored_rows(session: AsyncSession, org: uuid.UUID) -> set[tuple]:
    item = ComplianceItem
    rows = await session.execute(
        select(
            item.person_id,
            item.kind,
            item.requirement_id,
            item.course_id,
            item.policy_id,
            item.policy_version_id,
            item.policy_version,
            item.due_at,
            item.completed_at,
            item.valid_until,
            item.exempt,
        ).where(item.org_id == org)
    )
    return {tuple(row) for row in rows.all()}


def flat(results: list) -> list[tuple]:
    return [
        (
            str(r.person.id),
            r.status,
            [
                (
                    i.title,
                    i.status,
                    i.due_at,
                    i.completed_at,
                    i.expires_at,
                    i.requirement_id,
                    i.course_id,
                    i.policy_id,
                    i.policy_version,
                )
                for i in r.items
            ],
        )
        for r in results
    ]


def interesting_moments(rows: set[tuple], rng: random.Random) -> list[datetime]:
    """Random times, and the exact instants (and one microsecond either side) where a stored
    item's status flips."""
    edges = sorted({row[7] for row in rows if row[7]} | {row[9] for row in rows if row[9]})
    chosen = rng.sample(edges, min(4, len(edges)))
    times = [moment(rng, 1500) for _ in range(3)]
    for edge in chosen:
        times += [edge - timedelta(microseconds=1), edge, edge + timedelta(microseconds=1)]
    return times


async def compare(
    session: AsyncSession,
    snapshot: reference.Snapshot,
    principal: Principal,
    now: datetime,
    *,
    paging: bool = False,
) -> None:
    everyone = reference.matching(snapshot, principal, service.Filters(), now)
    stored = await service.compliance_all(session, principal, service.Filters(), now=now)
    assert flat(stored) == flat(everyone)

    names = {person.id: person.name or person.email for person in snapshot.people}
    assert await service.compliance_summary(session, principal, now=now) == reference.summarise(
        everyone, names
    )

    people = [person for person in snapshot.people if person.active]
    variants = [service.Filters(status=status) for status in Status]
    variants += [service.Filters(role="field"), service.Filters(location="ca")]
    if people:
        variants.append(service.Filters(team=people[0].id))
    for filters in variants:
        expected = reference.matching(snapshot, principal, filters, now)
        got = await service.compliance_all(session, principal, filters, now=now)
        assert flat(got) == flat(expected), filters

    if not paging:
        return
    # Paging through in threes gives the same people in the same order, with or without a
    # status filter (the page reads leadership and everyone else as two ranges).
    for filters in [service.Filters(), *variants]:
        paged: list = []
        cursor = None
        while True:
            page, cursor = await service.compliance_page(
                session, principal, filters, limit=3, cursor=cursor, now=now
            )
            paged += page
            if cursor is None:
                break
        assert flat(paged) == flat(reference.matching(snapshot, principal, filters, now)), filters


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_stored_statuses_equal_the_engine_at_every_moment(app: Any, seed: int) -> None:
    rng = random.Random(seed)
    async with app.state.sessionmaker() as session:
        try:
            trainer, people = await build_and_change(session, rng)
            org = trainer.org_id
            assert org is not None
            incremental = await stored_rows(session, org)
            assert incremental

            # Rebuilding from scratch finds nothing to change: the incremental paths are exact.
            await rebuild_compliance(session, org)
            assert await stored_rows(session, org) == incremental

            snapshot = await reference.load_snapshot(session, org)
            for number, now in enumerate(interesting_moments(incremental, rng)):
                await compare(session, snapshot, trainer, now, paging=number == 0)
            # A person's own view (themself and their reports) and a manager's team.
            for person in rng.sample(people, 3):
                me = Principal(PrincipalKind.STAFF, str(person), org, frozenset({"staff"}))
                await compare(session, snapshot, me, moment(rng, 1500), paging=True)
        finally:
            await session.rollback()
