"""Investigation notes of a case: write one, correct it (a new version; the old text stays),
read one with its versions, page through them oldest first. Every text is sealed under the
case's data key, so destroying that key (crypto-shredding) makes the notes unreadable.

Callers pass a case they may already see (`access.VisibleCase` / `LockedCase`); every query
here is scoped by that case and its organisation. Functions only flush, never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from upstander.cases.cases.service import actor_of
from upstander.cases.models import Case, CaseNote, CaseNoteVersion
from upstander.kit.auth import Principal
from upstander.kit.crypto import Vault
from upstander.kit.db import new_id
from upstander.kit.errors import NotFound
from upstander.kit.pagination import PageParams, paginate

NO_SUCH_NOTE = "No such note on this case."


def _notes_of(case: Case) -> Select[CaseNote]:
    # Versions come with every note (selectinload): the relationship refuses lazy loads.
    return (
        select(CaseNote)
        .where(CaseNote.org_id == case.org_id, CaseNote.case_id == case.id)
        .options(selectinload(CaseNote.versions))
    )


async def create_note(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    *,
    body: str,
    vault: Vault,
    now: datetime,
) -> CaseNote:
    """Write a note on `case` (its version 1), authored by the caller."""
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)  # idempotent
    author_kind, author_id = actor_of(principal)
    note = CaseNote(
        id=new_id(),
        org_id=case.org_id,
        case_id=case.id,
        author_kind=author_kind,
        author_id=author_id,
        current_version=1,
        created_at=now,
        updated_at=now,
        versions=[
            CaseNoteVersion(
                org_id=case.org_id,
                case_id=case.id,
                number=1,
                author_kind=author_kind,
                author_id=author_id,
                body=body,
                reason=None,
                created_at=now,
                updated_at=now,
            )
        ],
    )
    session.add(note)
    await session.flush()
    return note


async def correct_note(
    session: AsyncSession,
    principal: Principal,
    case: Case,
    note_id: uuid.UUID,
    *,
    body: str,
    reason: str | None,
    vault: Vault,
    now: datetime,
) -> CaseNote:
    """Add a version to a note: its text from now on. Earlier versions are never changed.
    Callers lock the case (`LockedCase`) so two corrections cannot take the same number."""
    note = await get_note(session, case, note_id)
    await vault.create_key(session, org_id=case.org_id, owner_id=case.id)  # idempotent
    author_kind, author_id = actor_of(principal)
    number = note.current_version + 1
    note.versions.append(
        CaseNoteVersion(
            org_id=case.org_id,
            case_id=case.id,
            number=number,
            author_kind=author_kind,
            author_id=author_id,
            body=body,
            reason=reason,
            created_at=now,
            updated_at=now,
        )
    )
    note.current_version = number
    note.updated_at = now
    await session.flush()
    return note


async def get_note(session: AsyncSession, case: Case, note_id: uuid.UUID) -> CaseNote:
    """One note of `case` with all its versions; `NotFound` if it is not this case's."""
    note = await session.scalar(_notes_of(case).where(CaseNote.id == note_id))
    if note is None:
        raise NotFound(NO_SUCH_NOTE)
    return note


async def list_notes(
    session: AsyncSession, case: Case, page: PageParams
) -> tuple[list[CaseNote], str | None]:
    """The case's notes, oldest first, one keyset page at a time (versions loaded)."""
    return await paginate(session, _notes_of(case), CaseNote, page)


async def notes_for_case(session: AsyncSession, case: Case) -> list[CaseNote]:
    """Every note of `case`, oldest first, each with all its versions loaded (oldest first):
    for the timeline and the export. Reading them is the caller's to audit."""
    rows = await session.scalars(_notes_of(case).order_by(CaseNote.created_at, CaseNote.id))
    return list(rows)
