"""Directory events: every change to an org or a person, by any path (API, bootstrap, SCIM),
becomes an `upstander.org.*` / `upstander.person.*` event in the same transaction.

A `before_flush` hook is the one place that sees every change, so no write path can forget to
tell the services that keep projections of the directory. The same hook counts access changes
(a person's or API client's `access_version`) and announces them, with an organisation's
deactivation, as `upstander.access.changed`: services then refuse the tokens signed before
(upstander.kit.revocation).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from upstander.gateway.models import ApiClient, Org, Person
from upstander.kit.contracts import AccessChanged, OrgEvent, PersonEvent
from upstander.kit.db import new_id
from upstander.kit.events import EventBus
from upstander.kit.revocation import ACCESS_CHANGED

BUS_KEY = "upstander_event_bus"


# The data of `upstander.org.*` and `upstander.person.*` (the shared contracts, one shape for
# every verb). Read in `before_flush`, before column defaults apply: an unset flag is its
# default here too.


def org_data(org: Org) -> dict[str, Any]:
    return OrgEvent(
        org_id=org.id,
        slug=org.slug,
        name=org.name,
        active=True if org.active is None else org.active,
    ).model_dump(mode="json")


def person_data(person: Person) -> dict[str, Any]:
    return PersonEvent(
        person_id=person.id,
        org_id=person.org_id,
        email=person.email,
        name=person.name,
        title=person.title,
        roles=list(person.roles or []),
        manager_id=person.manager_id,
        is_leadership=bool(person.is_leadership),
        start_date=person.start_date,
        location=person.location,
        language=person.language or "en",
        active=True if person.active is None else person.active,
        external_id=person.external_id,
    ).model_dump(mode="json")


_ORG_FIELDS = {"slug", "name", "active"}
_PERSON_FIELDS = {
    "org_id",
    "email",
    "name",
    "title",
    "roles",
    "manager_id",
    "is_leadership",
    "start_date",
    "location",
    "language",
    "active",
    "external_id",
}


# What a person's or a client's tokens let them do; a change to any of them is an access
# change. A manager or leadership change is not (cases reads those live from its projection);
# a password an admin sets is, by the writer's own bump (identity.service.update_person). A
# password or secret merely rehashed at sign-in is not: the credential stays the same.
_PERSON_ACCESS_FIELDS = {"roles", "active", "org_id"}
_CLIENT_ACCESS_FIELDS = {"roles", "scopes", "active", "org_id"}


def _changed(obj: Any, fields: set[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in fields)


def _count_access_change(
    session: Session, bus: EventBus, obj: Person | ApiClient, fields: set[str]
) -> None:
    """Bump `access_version` when an access field changed (once per flush, however many did,
    and not again when the writer bumped it itself), and announce the new version."""
    if _changed(obj, fields) and not _changed(obj, {"access_version"}):
        obj.access_version = (obj.access_version or 0) + 1
    if not _changed(obj, {"access_version"}):
        return
    obj.access_changed_at = bus.clock.now()
    if isinstance(obj, Person):
        kind, subject, event_subject = "staff", str(obj.id), f"person/{obj.id}"
    else:
        kind, subject, event_subject = "client", obj.client_id, f"client/{obj.id}"
    change = AccessChanged(
        kind=kind,
        subject=subject,
        org_id=obj.org_id,
        active=bool(obj.active),
        version=obj.access_version,
        changed_at=obj.access_changed_at,
    )
    _stage_access(session, bus, event_subject, change)


def _stage_access(session: Session, bus: EventBus, subject: str, change: AccessChanged) -> None:
    bus.stage(
        session, ACCESS_CHANGED, subject, change.model_dump(mode="json"), org_id=change.org_id
    )


def _publish_directory_changes(session: Session, _context: Any, _instances: Any) -> None:
    bus: EventBus | None = session.info.get(BUS_KEY)
    if bus is None:
        return
    for obj in list(session.new) + list(session.dirty):
        is_new = obj in session.new
        if is_new and isinstance(obj, Org | Person) and obj.id is None:
            obj.id = new_id()  # column defaults come at INSERT; the event needs the id now
        if isinstance(obj, Org):
            if not is_new and not _changed(obj, _ORG_FIELDS):
                continue
            verb = "created" if is_new else "updated"
            bus.stage(
                session, f"upstander.org.{verb}", f"org/{obj.id}", org_data(obj), org_id=obj.id
            )
            if not is_new and _changed(obj, {"active"}):
                # Every token of the org's people and clients stops (or, back on, works again).
                change = AccessChanged(
                    kind="org",
                    subject=str(obj.id),
                    org_id=obj.id,
                    active=bool(obj.active),
                    version=0,
                    changed_at=bus.clock.now(),
                )
                _stage_access(session, bus, f"org/{obj.id}", change)
        elif isinstance(obj, Person):
            if not is_new:  # first: a password an admin set changes no directory field
                _count_access_change(session, bus, obj, _PERSON_ACCESS_FIELDS)
            if not is_new and not _changed(obj, _PERSON_FIELDS):
                continue
            if is_new:
                verb = "created"
            elif not obj.active and inspect(obj).attrs["active"].history.has_changes():
                verb = "deactivated"
            else:
                verb = "updated"
            bus.stage(
                session,
                f"upstander.person.{verb}",
                f"person/{obj.id}",
                person_data(obj),
                org_id=obj.org_id,
            )
        elif isinstance(obj, ApiClient) and not is_new and obj.kind == "client":
            # An org's API client (platform service clients have no org and no access events).
            _count_access_change(session, bus, obj, _CLIENT_ACCESS_FIELDS)


async def start_directory_events(app: FastAPI) -> None:
    """Give the gateway's sessions the event bus, and publish from every flush."""
    app.state.sessionmaker.configure(info={BUS_KEY: app.state.events})
    if not event.contains(Session, "before_flush", _publish_directory_changes):
        event.listen(Session, "before_flush", _publish_directory_changes)
