"""Recording the case change feed: every transaction that changes a case (its row, its
assignments, its external references) adds one `CaseChange` row per case, as it commits.
The numbering in commit order (and why the feed never skips a change) is the kit's
(`upstander.kit.changefeed`); what counts as a change to a case, and the announcement of
updated cases, are here.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from upstander.cases.models import Case, CaseAssignment, CaseRestriction, CaseStatus
from upstander.cases.sync.models import CaseChange, CaseExternalRef
from upstander.kit.changefeed import ChangeFeed
from upstander.kit.clock import coarse, for_reporter
from upstander.kit.contracts import CaseUpdated
from upstander.kit.db import new_id
from upstander.kit.events import EventBus

# The cases service's event bus, in its sessions' `info` (`start_change_events`).
BUS_KEY = "upstander_cases_bus"
# The advisory lock's namespace (its first key); the second is drawn from the org id.
LOCK_NAMESPACE = 0x5C0A


def _collect(session: Session, feed: ChangeFeed) -> None:
    for obj in session.new:
        if isinstance(obj, Case):
            if obj.id is None:
                obj.id = new_id()  # the column default comes at INSERT; the change needs it now
            feed.note(session, obj.org_id, obj.id, "created")
        elif isinstance(obj, CaseAssignment | CaseExternalRef):
            feed.note(session, obj.org_id, obj.case_id, "updated")
    for obj in session.dirty:
        if isinstance(obj, Case) and session.is_modified(obj, include_collections=False):
            kind = "deleted" if obj.status == CaseStatus.DELETED else "updated"
            feed.note(session, obj.org_id, obj.id, kind)
    for obj in session.deleted:
        if isinstance(obj, CaseAssignment | CaseExternalRef):
            feed.note(session, obj.org_id, obj.case_id, "updated")


def _stamp(_session: Session) -> datetime:
    # To the hour, whatever the case: the feed is ordered by its sequence, and a finer time
    # would tell when an anonymous or confidential reporter wrote (docs/scim.md).
    return coarse(datetime.now(UTC))


def _announce_updated(session: Session, kinds: dict[uuid.UUID, str]) -> None:
    _announce(session, [case_id for case_id, kind in kinds.items() if kind == "updated"])


def _announce(session: Session, case_ids: list[uuid.UUID]) -> None:
    """`upstander.case.updated` for each case updated in this transaction: a hint for syncs
    to read the feed (webhooks get its ids, status and version; notify leaves out the people
    the case is hidden from, as for every case event)."""
    bus: EventBus | None = session.info.get(BUS_KEY)
    if bus is None or not case_ids:
        return
    cases = session.execute(
        select(
            Case.id,
            Case.org_id,
            Case.number,
            Case.routed_to,
            Case.status,
            Case.version,
            Case.reporter_mode,
        ).where(Case.id.in_(case_ids), Case.status != CaseStatus.DELETED)
    ).all()
    restricted: dict[uuid.UUID, list[uuid.UUID]] = {row.id: [] for row in cases}
    for case_id, person_id in session.execute(
        select(CaseRestriction.case_id, CaseRestriction.person_id)
        .where(CaseRestriction.case_id.in_(list(restricted)))
        .order_by(CaseRestriction.person_id)
    ):
        if person_id not in restricted[case_id]:
            restricted[case_id].append(person_id)
    for row in cases:
        bus.stage(
            session,
            CaseUpdated.EVENT_TYPE,
            f"case/{row.id}",
            CaseUpdated(
                case_id=row.id,
                number=row.number,
                routed_to=row.routed_to.value,
                restricted_person_ids=restricted[row.id],
                status=row.status.value,
                version=row.version,
            ).model_dump(mode="json"),
            org_id=row.org_id,
            # An anonymous or confidential reporter's case: the hour only (kit.clock).
            at=for_reporter(bus.clock.now(), row.reporter_mode),
        )


FEED = ChangeFeed(
    name="case-changes",
    table=CaseChange,
    subject="case_id",
    kinds=("updated", "deleted", "created"),
    lock_namespace=LOCK_NAMESPACE,
    tracked=(Case, CaseAssignment, CaseExternalRef),
    collect=_collect,
    stamp=_stamp,
    after_numbering=_announce_updated,
)


async def start_change_events(app: FastAPI) -> None:
    """Give the cases service's sessions its event bus, so committed updates are announced
    (`upstander.case.updated`)."""
    info = dict(app.state.sessionmaker.kw.get("info") or {})
    app.state.sessionmaker.configure(info={**info, BUS_KEY: app.state.events})
    install()


def install() -> None:
    """Listen on every session (idempotent); only the cases models are looked at."""
    FEED.install()


install()
