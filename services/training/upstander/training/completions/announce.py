"""`upstander.training.completed`: every completion, however it is recorded (by hand, a CSV
import, an xAPI statement), is announced in the transaction that records it.

Two hooks see every path: `before_flush` for completions added through the session, and
`do_orm_execute` for the bulk `insert(Completion)` of imports and xAPI. So no write path has
to remember to announce (as the gateway's directory events are made, gateway/events.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Insert, event, insert
from sqlalchemy.orm import ORMExecuteState, Session

from upstander.kit.catalogue import SENSITIVE_TYPES
from upstander.kit.contracts import TrainingCompleted
from upstander.kit.db import new_id
from upstander.kit.events import PENDING, EventBus
from upstander.training.models import Completion

BUS_KEY = "upstander_training_bus"
COMPLETED = TrainingCompleted.EVENT_TYPE
# From this many completions in one INSERT, their events are written in one INSERT too.
BULK_FROM = 50


def _data(values: Mapping[str, Any]) -> dict[str, Any]:
    return TrainingCompleted(
        completion_id=values["id"],
        person_id=values["person_id"],
        course_id=values["course_id"],
        completed_at=values["completed_at"],
        source=str(getattr(values["source"], "value", values["source"])),
    ).model_dump(mode="json")


def _stage(session: Session, bus: EventBus, values: Mapping[str, Any]) -> None:
    bus.stage(
        session,
        COMPLETED,
        f"completion/{values['id']}",
        _data(values),
        org_id=values["org_id"],
    )


def _added(session: Session, _context: Any, _instances: Any) -> None:
    bus: EventBus | None = session.info.get(BUS_KEY)
    if bus is None:
        return
    for obj in list(session.new):
        if isinstance(obj, Completion):
            if obj.id is None:
                obj.id = new_id()  # the column default comes at INSERT; the event needs it now
            _stage(session, bus, {name: getattr(obj, name) for name in _FIELDS})


_FIELDS = ("id", "org_id", "person_id", "course_id", "completed_at", "source")


def _inserted(state: ORMExecuteState) -> None:
    statement = state.statement
    if not isinstance(statement, Insert):
        return
    if (statement.entity_description or {}).get("type") is not Completion:
        return
    bus: EventBus | None = state.session.info.get(BUS_KEY)
    if bus is None:
        return
    rows: Any = state.parameters
    candidates: list[Any] = list(rows) if isinstance(rows, list | tuple) else [rows or {}]
    found: list[Mapping[str, Any]] = [
        values
        for values in candidates
        if isinstance(values, Mapping) and all(name in values for name in _FIELDS)
    ]
    if COMPLETED in SENSITIVE_TYPES or len(found) < BULK_FROM:
        for values in found:
            _stage(state.session, bus, values)
        return
    # An import of thousands: the same outbox rows `EventBus.stage` writes, in one INSERT
    # (an ORM object per row costs more than the import itself).
    now = bus.clock.now()
    outbox_rows = []
    for values in found:
        payload = json.dumps(_data(values), separators=(",", ":")).encode()
        event_id = uuid.uuid4()
        for destination in bus.destinations(COMPLETED):
            outbox_rows.append(
                {
                    "event_id": event_id,
                    "destination": destination,
                    "org_id": values["org_id"],
                    "type": COMPLETED,
                    "subject": f"completion/{values['id']}",
                    "source": f"/{bus.service}",
                    "time": now,
                    "payload": payload,
                    "sealed_with": None,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    if outbox_rows:
        state.session.execute(insert(bus.outbox), outbox_rows)
        if bus.transport is not None:
            bus.transport.wake_after_commit(state.session)


def install() -> None:
    if not event.contains(Session, "before_flush", _added):
        event.listen(Session, "before_flush", _added)
    if not event.contains(Session, "do_orm_execute", _inserted):
        event.listen(Session, "do_orm_execute", _inserted)


async def start_completion_events(app: FastAPI) -> None:
    """Give the training service's sessions its event bus, and announce from every write."""
    info = dict(app.state.sessionmaker.kw.get("info") or {})
    app.state.sessionmaker.configure(info={**info, BUS_KEY: app.state.events})
    install()
