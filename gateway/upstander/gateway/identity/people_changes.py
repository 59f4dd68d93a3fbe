"""The people change feed: every committed change to a person of the directory, by any path
(the identity API, SCIM, single sign-on, invitations, bootstrap), numbered in commit order
within the organisation (upstander.kit.changefeed), and read back a page at a time for an
HR system's sync (`GET /identity/v1/people/changes`).

A change is `created`, `updated`, `deactivated` or `deleted` (deprovisioned over SCIM: a
tombstone). Rows hold ids and the kind only; an entry shows the person as they are when the
feed is read."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import and_, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from upstander.gateway.events import BUS_KEY
from upstander.gateway.identity.change_tables import PersonChange
from upstander.gateway.identity.ref_tables import PersonExternalRef
from upstander.gateway.models import Person
from upstander.kit.auth import Principal
from upstander.kit.changefeed import MAX_LIMIT, ChangeFeed
from upstander.kit.db import new_id
from upstander.kit.events import EventBus

# The advisory lock's namespace (its first key); the second is drawn from the org id.
LOCK_NAMESPACE = 0x9E0B
FEED_MAX_LIMIT = MAX_LIMIT

# What a sync sees of a person (and SCIM's own fields): a change to any of them is a change.
# A password, a sign-in or an access counter is not.
_FIELDS = (
    "org_id",
    "email",
    "name",
    "given_name",
    "family_name",
    "title",
    "roles",
    "manager_id",
    "is_leadership",
    "start_date",
    "location",
    "language",
    "active",
    "external_id",
    "department",
    "employee_number",
    "scim_user_name",
    "scim_emails",
    "scim_deleted_at",
    "external_refs",  # a reference added or removed (one changed in place: below)
)


def _changed(person: Person, name: str) -> bool:
    return bool(inspect(person).attrs[name].history.has_changes())


def _collect(session: Session, feed: ChangeFeed) -> None:
    for obj in session.new:
        if isinstance(obj, Person):
            if obj.id is None:
                obj.id = new_id()  # the column default comes at INSERT; the change needs it now
            feed.note(session, obj.org_id, obj.id, "created")
    for obj in session.dirty:
        if not isinstance(obj, Person) or not any(_changed(obj, name) for name in _FIELDS):
            continue
        if _changed(obj, "scim_deleted_at"):
            # Deprovisioned (a tombstone), or provisioned again: a person once more.
            kind = "deleted" if obj.scim_deleted_at is not None else "created"
        elif _changed(obj, "active") and not obj.active:
            kind = "deactivated"
        else:
            kind = "updated"
        feed.note(session, obj.org_id, obj.id, kind)
    for obj in session.deleted:
        if isinstance(obj, Person):
            feed.note(session, obj.org_id, obj.id, "deleted")
    # An external reference added, changed or removed changes the person (`updated`; a
    # stronger kind noted for them in the same transaction wins).
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, PersonExternalRef) and obj.person_id is not None:
            feed.note(session, obj.org_id, obj.person_id, "updated")


def _stamp(session: Session) -> datetime:
    bus: EventBus | None = session.info.get(BUS_KEY)
    return bus.clock.now() if bus is not None else datetime.now(UTC)


FEED = ChangeFeed(
    name="people-changes",
    table=PersonChange,
    subject="person_id",
    kinds=("updated", "deactivated", "deleted", "created"),
    lock_namespace=LOCK_NAMESPACE,
    tracked=(Person, PersonExternalRef),
    collect=_collect,
    stamp=_stamp,
)
FEED.install()


def is_gone(person: Person | None) -> bool:
    """Deleted (over SCIM), or no longer a row at all: the feed shows its tombstone."""
    return person is None or person.scim_deleted_at is not None


async def changes(
    session: AsyncSession, principal: Principal, *, after: int, limit: int
) -> tuple[list[tuple[PersonChange, Person | None]], int, bool]:
    """The changes after `after` to the people of the caller's organisation, in commit order,
    each with the person as they are now. Returns them, the position to resume from and
    whether more may follow. A deleted person shows once more, as their tombstone, and their
    earlier changes no longer show; a person provisioned again shows from then on (and their
    tombstone no longer shows): whatever the position, the last entry a sync applies for a
    person tells how they are now."""
    if principal.org_id is None:
        return [], after, False
    org_id = principal.org_id
    return await FEED.read(
        session,
        select(PersonChange, Person).outerjoin(
            Person, and_(Person.id == PersonChange.person_id, Person.org_id == org_id)
        ),
        org_id=org_id,
        after=after,
        limit=limit,
        shown=lambda row: (row[0].kind == "deleted") == is_gone(row[1]),
    )
