"""Helpers of the investigation-file tests (notes, interviews): the people a case is hidden
from, shredding a case through the retention pass, the audit entries of a case, and the raw
bytes of the SQLite database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from cases_world import Org, auth
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from upstander.cases.models import AuditEntry, Case, CaseStatus
from upstander.kit.clock import FrozenClock

RETENTION = timedelta(days=1461)


async def hidden_callers(org: Org, case_id: uuid.UUID) -> dict[str, dict[str, str]]:
    """Headers of handlers who must get 404 on the case, each with a role that would
    otherwise see it (case manager: every case routed to case managers), and of an admin of
    another organisation. The case comes from `org.report()` (involved: "involved",
    excluded: "excluded"); the deputy recuses here."""
    recused = await org.client.post(
        f"/cases/v1/cases/{case_id}/recusal", headers=org.headers("deputy")
    )
    assert recused.status_code == 201, recused.text
    return {
        "involved": org.headers("involved", ["case_manager"]),
        "excluded": org.headers("excluded", ["case_manager"]),
        "chain_above": org.headers("manager"),
        "recused": org.headers("deputy"),
        "other_org": auth(org.mint(org=uuid.uuid4(), roles=["admin", "reviewer"])),
    }


def staff_headers(org: Org) -> dict[str, str]:
    """A plain staff member (no handler role) of the case's organisation."""
    return auth(org.mint(org=org.id, roles=["staff"], sub=uuid.uuid4()))


async def shred(app: FastAPI, clock: FrozenClock, case_id: uuid.UUID) -> None:
    """Close the case and let the retention pass delete it: its data key is destroyed."""
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(
            update(Case)
            .where(Case.id == case_id)
            .values(status=CaseStatus.CLOSED, closed_at=clock.now())
        )
    clock.advance(RETENTION + timedelta(days=1))
    assert await app.state.retention.run_once() == 1


async def audit_entries(app: FastAPI, case_id: uuid.UUID, prefix: str) -> list[AuditEntry]:
    async with app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(AuditEntry)
            .where(AuditEntry.case_id == case_id, AuditEntry.action.startswith(prefix))
            .order_by(AuditEntry.seq)
        )
        return list(rows)


def database_bytes(app: FastAPI) -> bytes:
    """Every byte SQLite keeps on disk for the app's database (main file, WAL, journal)."""
    database = make_url(app.state.settings.database_url).database
    assert database, "SQLite file database expected"
    path = Path(database)
    files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-journal"))]
    return b"".join(f.read_bytes() for f in files if f.exists())


def marker(label: str) -> str:
    """A unique string to look for in responses and on disk."""
    return f"{label}-{uuid.uuid4().hex}"


def ids_only(detail: dict[str, Any]) -> bool:
    """Audit details hold identifiers and numbers, never text."""

    def plain(value: Any) -> bool:
        if isinstance(value, list):
            return all(plain(v) for v in value)
        if isinstance(value, int):
            return True
        try:
            uuid.UUID(str(value))
        except ValueError:
            return False
        return True

    return all(plain(v) for v in detail.values())
