"""Field encryption: round trips, nothing clear on disk, KEK rotation, shredding, tampering."""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helpers
import pytest
from sqlalchemy import LargeBinary, Uuid, bindparam, insert, select, text
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from upstander.kit.crypto import (
    DataKeyMissing,
    DecryptionError,
    EncryptedJSON,
    EncryptedText,
    Keyring,
    SealedJSON,
    SealedStr,
    Vault,
    VaultSlot,
    data_key_model,
)
from upstander.kit.db import Base, make_engine, make_metadata, make_sessionmaker, new_id
from upstander.kit.settings import KitSettings

MARKER = "zebra-quokka-7731 disclosure"  # distinctive, so a hit on disk is unambiguous
JSON_MARKER = "okapi-narwhal-4402"

KEK_OLD = Keyring.generate("old")
KEK_NEW = Keyring.generate("new")

slot = VaultSlot("kit-tests")


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()
    __vault_slot__ = slot


DataKey = data_key_model(Model)


class Note(Model):
    __tablename__ = "notes"
    __encryption_owner__ = "owner_id"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, nullable=True)
    body: Mapped[str | None] = mapped_column(EncryptedText(slot, label="notes.body"), nullable=True)
    meta: Mapped[Any] = mapped_column(EncryptedJSON(slot), nullable=True)


@dataclass
class Db:
    backend: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    path: Path | None  # the SQLite file


@pytest.fixture
async def db(test_backend: str, tmp_path: Path) -> AsyncIterator[Db]:
    """A scratch database on the selected backend (tests/helpers.py: a SQLite file, or a
    PostgreSQL database unique to this run)."""
    path: Path | None = None
    if test_backend == "sqlite":
        path = tmp_path / "crypto.db"
        url = f"sqlite+aiosqlite:///{path}"
    else:
        url = await helpers.fresh_pg_database("kit_crypto")
    engine = make_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(Model.metadata.create_all)
    yield Db(test_backend, engine, make_sessionmaker(engine), path)
    slot.vault = None
    await engine.dispose()
    await helpers.drop_database(url)


def make_vault(db: Db, kek: str = KEK_OLD) -> Vault:
    """A fresh vault (cold cache) attached to the test models' slot."""
    vault = Vault(Keyring.parse(kek), db.engine, DataKey)
    slot.vault = vault
    vault.install(db.sessionmaker)
    return vault


async def write_note(
    db: Db, vault: Vault, body: str | None = MARKER, meta: Any = None
) -> tuple[uuid.UUID, uuid.UUID]:
    org_id, owner_id = uuid.uuid4(), uuid.uuid4()
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=org_id, owner_id=owner_id)
        note = Note(org_id=org_id, owner_id=owner_id, body=body, meta=meta)
        session.add(note)
        await session.commit()
        return note.id, owner_id


async def read_note(db: Db, note_id: uuid.UUID) -> Note:
    async with db.sessionmaker() as session:
        note = await session.get(Note, note_id)
        assert note is not None
        return note


_RAW = (
    text("SELECT body, meta FROM notes WHERE id = :id")
    .bindparams(bindparam("id", type_=Uuid))
    .columns(body=LargeBinary, meta=LargeBinary)
)


async def raw_blobs(db: Db, note_id: uuid.UUID) -> tuple[bytes, bytes | None]:
    async with db.engine.connect() as conn:
        row = (await conn.execute(_RAW, {"id": note_id})).one()
    return bytes(row.body), None if row.meta is None else bytes(row.meta)


async def set_raw_body(db: Db, note_id: uuid.UUID, blob: bytes) -> None:
    stmt = text("UPDATE notes SET body = :b WHERE id = :id").bindparams(
        bindparam("b", type_=LargeBinary), bindparam("id", type_=Uuid)
    )
    async with db.engine.begin() as conn:
        await conn.execute(stmt, {"b": blob, "id": note_id})


# --------------------------------------------------------------------------- keyring


def test_keyring_rejects_wrong_key_length() -> None:
    short = base64.b64encode(secrets.token_bytes(31)).decode()
    with pytest.raises(ValueError, match="must be 32 bytes, got 31") as excinfo:
        Keyring.parse(f"k1:{short}")
    assert short not in str(excinfo.value)  # never echo key material


@pytest.mark.parametrize(
    "spec",
    ["", "no-colon", "k1:", ":abc", "k1:not*base64", f"{KEK_OLD},{KEK_OLD}"],
)
def test_keyring_rejects_malformed_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        Keyring.parse(spec)


def test_keyring_primary_is_first_and_all_unwrap() -> None:
    ring = Keyring.parse(f"{KEK_NEW}, {KEK_OLD}")
    assert ring.primary_id == "new"
    assert ring.key_ids == ("new", "old")
    assert KEK_NEW.split(":")[1] not in repr(ring)
    old_only = Keyring.parse(KEK_OLD)
    kid, wrapped = old_only.wrap(b"k" * 32, b"aad")
    assert kid == "old"
    assert ring.unwrap(kid, wrapped, b"aad") == b"k" * 32


def test_keyring_from_settings() -> None:
    ring = Keyring.from_settings(KitSettings(kek=f"{KEK_NEW},{KEK_OLD}"))
    assert ring.primary_id == "new"


def test_wrapped_key_is_bound_to_its_owner() -> None:
    ring = Keyring.parse(KEK_OLD)
    a, b = uuid.uuid4(), uuid.uuid4()
    kid, wrapped = ring.wrap(secrets.token_bytes(32), a.bytes)
    with pytest.raises(DecryptionError):
        ring.unwrap(kid, wrapped, b.bytes)
    with pytest.raises(DecryptionError, match="unknown key-encryption key"):
        ring.unwrap("gone", wrapped, a.bytes)


def test_column_type_without_vault_says_so() -> None:
    from sqlalchemy.dialects import sqlite

    lonely = EncryptedText(VaultSlot("lonely"))
    with pytest.raises(RuntimeError, match="no Vault attached"):
        lonely.process_bind_param(SealedStr("x", uuid.uuid4()), sqlite.dialect())


# --------------------------------------------------------------------------- database


async def test_round_trip(db: Db) -> None:
    vault = make_vault(db)
    meta = {"tags": [JSON_MARKER, "ü"], "n": 3, "nested": {"ok": True}}
    note_id, owner_id = await write_note(db, vault, meta=meta)

    note = await read_note(db, note_id)
    assert note.body == MARKER
    assert isinstance(note.body, SealedStr) and note.body.owner_id == owner_id
    assert note.meta == meta

    body, meta_blob = await raw_blobs(db, note_id)
    assert body[0] == 0x01 and body[1:17] == owner_id.bytes
    assert MARKER.encode() not in body
    assert meta_blob is not None and JSON_MARKER.encode() not in meta_blob


async def test_nulls_stay_null(db: Db) -> None:
    vault = make_vault(db)
    note_id, _ = await write_note(db, vault, body=None, meta=None)
    note = await read_note(db, note_id)
    assert note.body is None and note.meta is None


async def test_updates_reencrypt_and_noops_do_not(db: Db) -> None:
    vault = make_vault(db)
    note_id, _ = await write_note(db, vault, meta={"v": 1})
    before = await raw_blobs(db, note_id)

    async with db.sessionmaker() as session:
        note = await session.get(Note, note_id)
        assert note is not None
        note.body = MARKER  # the same text, as a plain str
        note.org_id = uuid.uuid4()  # an unencrypted change, so the row is dirty
        await session.commit()
    assert await raw_blobs(db, note_id) == before  # nothing re-encrypted needlessly

    async with db.sessionmaker() as session:
        note = await session.get(Note, note_id)
        assert note is not None
        note.body = "changed"
        note.meta = {"v": 2}
        await session.commit()
    after = await raw_blobs(db, note_id)
    assert after[0] != before[0] and after[1] != before[1]
    note = await read_note(db, note_id)
    assert (note.body, note.meta) == ("changed", {"v": 2})


async def test_plaintext_never_reaches_the_sqlite_file(db: Db) -> None:
    if db.backend != "sqlite":
        pytest.skip("file check is SQLite-specific; raw column bytes are checked in round trip")
    assert db.path is not None
    vault = make_vault(db)
    _, owner_id = await write_note(db, vault, meta={"k": JSON_MARKER})
    async with db.engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    await db.engine.dispose()

    files = [p for p in db.path.parent.iterdir() if p.name.startswith(db.path.name)]
    data = b"".join(p.read_bytes() for p in files)
    assert owner_id.hex.encode() in data  # the check can see the row's clear columns
    assert MARKER.encode() not in data
    assert JSON_MARKER.encode() not in data


async def test_cold_cache_loads_the_key_from_the_database(db: Db) -> None:
    note_id, _ = await write_note(db, make_vault(db), meta=[1, "two"])
    make_vault(db)  # a new process, in effect: nothing cached
    note = await read_note(db, note_id)
    assert (note.body, note.meta) == (MARKER, [1, "two"])

    # A cold-cache write (an update inside a flush) works too.
    make_vault(db)
    async with db.sessionmaker() as session:
        fresh = await session.get(Note, note_id)
        assert fresh is not None
        fresh.meta = {"after": "restart"}
        await session.commit()
    make_vault(db)
    assert (await read_note(db, note_id)).meta == {"after": "restart"}


async def test_create_key_is_idempotent(db: Db) -> None:
    vault = make_vault(db)
    note_id, owner_id = await write_note(db, vault)
    for v in (vault, make_vault(db)):
        async with db.sessionmaker() as session:
            await v.create_key(session, org_id=uuid.uuid4(), owner_id=owner_id)
            await session.commit()
    async with db.sessionmaker() as session:
        keys = (await session.scalars(select(DataKey))).all()
    assert len(keys) == 1
    assert (await read_note(db, note_id)).body == MARKER


async def test_uncommitted_keys_are_forgotten(db: Db) -> None:
    vault = make_vault(db)
    org_id, owner_id = uuid.uuid4(), uuid.uuid4()
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=org_id, owner_id=owner_id)
        await session.rollback()
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=org_id, owner_id=owner_id)
        # closed without commit
    with pytest.raises(DataKeyMissing):
        await vault.fetch_dek(owner_id)

    # Had the lost key stayed cached, this would encrypt under a key that was never stored.
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=org_id, owner_id=owner_id)
        note = Note(org_id=org_id, owner_id=owner_id, body=MARKER)
        session.add(note)
        await session.commit()
    make_vault(db)
    assert (await read_note(db, note.id)).body == MARKER


async def test_kek_rotation_rewraps_keys_without_touching_data(db: Db) -> None:
    old_vault = make_vault(db, KEK_OLD)
    note_id, _ = await write_note(db, old_vault, meta={"k": 1})
    second_id, _ = await write_note(db, old_vault)
    blobs_before = [await raw_blobs(db, i) for i in (note_id, second_id)]

    rotating = make_vault(db, f"{KEK_NEW},{KEK_OLD}")
    async with db.sessionmaker() as session:
        assert await rotating.rewrap_all(session) == 2
        await session.commit()
    async with db.sessionmaker() as session:
        assert await rotating.rewrap_all(session) == 0
        assert set((await session.scalars(select(DataKey.kek_id))).all()) == {"new"}

    assert [await raw_blobs(db, i) for i in (note_id, second_id)] == blobs_before

    make_vault(db, KEK_NEW)  # the old KEK is gone entirely
    note = await read_note(db, note_id)
    assert (note.body, note.meta) == (MARKER, {"k": 1})

    make_vault(db, KEK_OLD)  # and the old KEK alone no longer opens anything
    with pytest.raises(DecryptionError, match="unknown key-encryption key 'new'"):
        await read_note(db, note_id)


async def test_destroy_key_shreds(db: Db) -> None:
    vault = make_vault(db)
    note_id, owner_id = await write_note(db, vault, meta={"k": JSON_MARKER})
    other_id, _ = await write_note(db, vault)
    async with db.sessionmaker() as session:
        await vault.destroy_key(session, owner_id)
        await session.commit()

    for _ in ("warm vault", "cold vault"):
        note = await read_note(db, note_id)
        assert note.body is None and note.meta is None
        assert (await read_note(db, other_id)).body == MARKER  # other owners are unaffected
        make_vault(db)
    with pytest.raises(DataKeyMissing):
        await vault.fetch_dek(owner_id)
    body, _ = await raw_blobs(db, note_id)
    assert body  # the ciphertext is still there; it is just unreadable


async def test_moving_a_row_to_another_owner_reseals_it(db: Db) -> None:
    vault = make_vault(db)
    note_id, old_owner = await write_note(db, vault, meta={"k": 1})
    new_owner = uuid.uuid4()
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=uuid.uuid4(), owner_id=new_owner)
        note = await session.get(Note, note_id)
        assert note is not None
        note.owner_id = new_owner
        await session.commit()
    body, meta = await raw_blobs(db, note_id)
    assert body[1:17] == new_owner.bytes and meta is not None and meta[1:17] == new_owner.bytes

    async with db.sessionmaker() as session:
        await vault.destroy_key(session, old_owner)
        await session.commit()
    note = await read_note(db, note_id)
    assert (note.body, note.meta) == (MARKER, {"k": 1})


async def test_tampered_ciphertext_fails_loudly(db: Db) -> None:
    vault = make_vault(db)
    note_id, _ = await write_note(db, vault)
    body, _ = await raw_blobs(db, note_id)

    await set_raw_body(db, note_id, body[:-1] + bytes([body[-1] ^ 0x01]))
    with pytest.raises(DecryptionError, match="failed authentication"):
        await read_note(db, note_id)

    await set_raw_body(db, note_id, b"\x02" + body[1:])
    with pytest.raises(DecryptionError, match="version"):
        await read_note(db, note_id)

    await set_raw_body(db, note_id, body[:20])
    with pytest.raises(DecryptionError, match="truncated"):
        await read_note(db, note_id)


async def test_blob_cannot_move_between_columns(db: Db) -> None:
    vault = make_vault(db)
    note_id, _ = await write_note(db, vault, meta="a json string")
    _, meta = await raw_blobs(db, note_id)
    assert meta is not None
    await set_raw_body(db, note_id, meta)  # same owner, same key: only the AAD differs
    with pytest.raises(DecryptionError):
        await read_note(db, note_id)


async def test_values_without_an_owner_are_refused(db: Db) -> None:
    vault = make_vault(db)
    async with db.sessionmaker() as session:
        session.add(Note(org_id=uuid.uuid4(), owner_id=None, body=MARKER))
        with pytest.raises(ValueError, match="owner_id must be set"):
            await session.flush()
        await session.rollback()

    # Core bypasses the flush hook: the column type itself refuses the clear value.
    owner_id = uuid.uuid4()
    async with db.sessionmaker() as session:
        await vault.create_key(session, org_id=uuid.uuid4(), owner_id=owner_id)
        await session.commit()
    for column, value in (("body", MARKER), ("meta", {"k": MARKER})):
        async with db.engine.begin() as conn:
            stmt = insert(Note).values(
                id=uuid.uuid4(), org_id=uuid.uuid4(), owner_id=owner_id, **{column: value}
            )
            with pytest.raises(StatementError, match="refusing to store an encrypted field"):
                await conn.execute(stmt)

    # Explicitly sealed values are fine through Core.
    note_id = uuid.uuid4()
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(Note).values(
                id=note_id,
                org_id=uuid.uuid4(),
                owner_id=owner_id,
                body=SealedStr(MARKER, owner_id),
                meta=SealedJSON({"k": 1}, owner_id),
            )
        )
    note = await read_note(db, note_id)
    assert (note.body, note.meta) == (MARKER, {"k": 1})

    async with db.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 1
