"""Directory events: every change to an org or a person, by any path (API, bootstrap, SCIM),
becomes an `upstander.org.*` / `upstander.person.*` event in the same transaction.

A `before_flush` hook is the one place that sees every change, so no write path can forget to
tell the services that keep projections of the directory.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from upstander.gateway.models import Org, Person
from upstander.kit.db import new_id
from upstander.kit.events import EventBus

BUS_KEY = "upstander_event_bus"


def org_data(org: Org) -> dict[str, Any]:
    return {"org_id": org.id, "slug": org.slug, "name": org.name, "active": org.active}


def person_data(person: Person) -> dict[str, Any]:
    return {
        "person_id": person.id,
        "org_id": person.org_id,
        "email": person.email,
        "name": person.name,
        "title": person.title,
        "roles": list(person.roles or []),
        "manager_id": person.manager_id,
        "is_leadership": person.is_leadership,
        "start_date": person.start_date,
        "location": person.location,
        "language": person.language,
        "active": person.active,
    }


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
}


def _changed(obj: Any, fields: set[str]) -> bool:
    state = inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in fields)


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
        elif isinstance(obj, Person):
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


async def start_directory_events(app: FastAPI) -> None:
    """Give the gateway's sessions the event bus, and publish from every flush."""
    app.state.sessionmaker.configure(info={BUS_KEY: app.state.events})
    if not event.contains(Session, "before_flush", _publish_directory_changes):
        event.listen(Session, "before_flush", _publish_directory_changes)
