"""Field encryption at rest: AES-256-GCM envelope encryption with a data key per record owner.

How it fits together
--------------------
* A **key-encryption key** (KEK) comes from the settings (`KitSettings.kek`, a comma-separated
  list of ``kid:base64key``). The first one wraps new data keys; every listed one can unwrap.
  Rotating the KEK is: put the new key first, keep the old one after it, run
  `Vault.rewrap_all`, then drop the old key. Encrypted fields are never rewritten for that.
* Each **record owner** (a case, a report: whatever a service names in `__encryption_owner__`)
  gets its own random 256-bit **data key** (DEK), stored wrapped in the service's `data_keys`
  table (`data_key_model`). The owner id is the AAD of the wrap, so a wrapped key copied onto
  another owner's row does not unwrap.
* **Crypto-shredding**: `Vault.destroy_key` deletes the owner's data key. Every field sealed
  under it, in the live database and in every backup, becomes unreadable and reads back as
  ``None``, so encrypted columns must be nullable in the models.
* Column types `EncryptedText` and `EncryptedJSON` store
  ``0x01 || owner uuid (16) || nonce (12) || AES-GCM ciphertext+tag`` in a binary column. The
  AAD is the version byte, the owner uuid, the kind ("text"/"json") and the column's optional
  `label`, so a blob cannot be moved to another owner, another kind or another labelled column.
  Never change a label once data exists under it.

Finding the vault from a column type
------------------------------------
SQLAlchemy's type hooks get no engine or session, and several services (each with its own
database) can live in one process in tests, so a process-wide "current vault" would be wrong.
Instead each service's declarative base owns a `VaultSlot`, the column types are built with
that slot, and app startup attaches the service's vault to it::

    class Model(Base):
        __abstract__ = True
        metadata = make_metadata()
        __vault_slot__ = VaultSlot("cases")

    DataKey = data_key_model(Model)

    class Note(Model):
        __tablename__ = "notes"
        __encryption_owner__ = "case_id"       # the attribute holding the owner id
        case_id: Mapped[uuid.UUID] = mapped_column(Uuid)
        body: Mapped[str | None] = mapped_column(EncryptedText(Model.__vault_slot__), nullable=True)

    # at startup
    vault = Vault(Keyring.from_settings(settings), engine, DataKey)
    Model.__vault_slot__.vault = vault
    vault.install(sessionmaker)

    # when the owner is created, in the same transaction as its first encrypted row
    await vault.create_key(session, org_id=org_id, owner_id=case.id)

Writing: models assign plain values; a ``before_flush`` hook (`Vault.install`) seals them with
the object's owner id (`SealedStr`, `SealedJSON`). A column type that receives a value without
an owner refuses it instead of storing it in the clear, so a Core ``insert().values(body="x")``
fails loudly; pass a `SealedStr`/`SealedJSON` explicitly there.

Reading: `EncryptedText` returns a `SealedStr` (a ``str``), `EncryptedJSON` the decoded value.
JSON values are not mutation-tracked: reassign the attribute to save a change.

Limits worth knowing:
* Encrypted columns cannot be filtered or compared in SQL (the nonce is random).
* On a cache miss the type loads the data key over a new connection with ``await_only``, which
  works inside the ORM (rows are processed within SQLAlchemy's greenlet). Core results iterated
  outside the greenlet must warm the cache first with `Vault.fetch_dek`.
* Unwrapped data keys are cached per process for `cache_ttl` seconds; a key destroyed by another
  process stays readable here until then.
* A data key created inside a SAVEPOINT that is rolled back stays cached until the outer
  transaction ends; create keys in the outer transaction.
* Alembic migrations should declare these columns as ``sa.LargeBinary()``.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import LargeBinary, String, TypeDecorator, Uuid, delete, event, inspect, select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Mapper, Session, SessionTransaction, mapped_column
from sqlalchemy.util import await_only

from upstander.kit.clock import utcnow
from upstander.kit.db import UTCDateTime

if TYPE_CHECKING:
    from upstander.kit.settings import KitSettings

__all__ = [
    "BLOB_VERSION",
    "DataKeyMissing",
    "DataKeyMixin",
    "DecryptionError",
    "EncryptedJSON",
    "EncryptedText",
    "Keyring",
    "SealedJSON",
    "SealedStr",
    "Vault",
    "VaultSlot",
    "data_key_model",
    "install_sealing",
]

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # the GCM standard nonce; random per encryption
TAG_BYTES = 16
BLOB_VERSION = 0x01
_VERSION_BYTE = bytes([BLOB_VERSION])
_HEADER_BYTES = 1 + 16 + NONCE_BYTES
_WRAP_AAD_PREFIX = b"upstander-dek-v1:"  # domain-separates key wraps from field encryption
_MAX_KID = 64  # data_keys.kek_id is String(64)


class DecryptionError(Exception):
    """Ciphertext or a wrapped key failed authentication, is malformed, or its KEK is unknown."""


class DataKeyMissing(Exception):
    """The owner has no data key: never created, or destroyed (crypto-shredded)."""

    def __init__(self, owner_id: uuid.UUID) -> None:
        super().__init__(f"no data key for owner {owner_id}")
        self.owner_id = owner_id


# --------------------------------------------------------------------------- key-encryption keys


class Keyring:
    """The deployment's key-encryption keys. The first one is primary: it wraps new data keys."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key-encryption key")
        self._keys: dict[str, AESGCM] = {}
        for kid, key in keys:
            if not kid or len(kid) > _MAX_KID or ":" in kid or "," in kid:
                raise ValueError(
                    f"invalid key-encryption key id {kid!r}: 1-{_MAX_KID} chars, no ':' or ','"
                )
            if kid in self._keys:
                raise ValueError(f"duplicate key-encryption key id {kid!r}")
            if len(key) != KEY_BYTES:
                # The length is safe to report; the key itself never is.
                raise ValueError(
                    f"key-encryption key {kid!r} must be {KEY_BYTES} bytes, got {len(key)}"
                )
            self._keys[kid] = AESGCM(key)
        self._primary = keys[0][0]

    @classmethod
    def parse(cls, spec: str) -> Keyring:
        """Parse ``"kid:base64key[,kid2:base64key2...]"``."""
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(spec.split(","), start=1):
            entry = entry.strip()
            kid, sep, encoded = entry.partition(":")
            kid, encoded = kid.strip(), encoded.strip()
            if not sep or not kid or not encoded:
                raise ValueError(
                    f"key-encryption key #{position} is not in the form 'kid:base64key'"
                )
            try:
                key = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"key-encryption key {kid!r} is not valid base64") from None
            keys.append((kid, key))
        return cls(keys)

    @classmethod
    def from_settings(cls, settings: KitSettings) -> Keyring:
        return cls.parse(settings.kek)

    @staticmethod
    def generate(kid: str) -> str:
        """A new random key in settings form, e.g. for ``UPSTANDER_KEK``."""
        return f"{kid}:{base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode('ascii')}"

    @property
    def primary_id(self) -> str:
        return self._primary

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def wrap(self, dek: bytes, aad: bytes) -> tuple[str, bytes]:
        """Encrypt a data key under the primary KEK; returns (kek_id, nonce || ciphertext)."""
        nonce = secrets.token_bytes(NONCE_BYTES)
        return self._primary, nonce + self._keys[self._primary].encrypt(nonce, dek, aad)

    def unwrap(self, kek_id: str, wrapped: bytes, aad: bytes) -> bytes:
        aead = self._keys.get(kek_id)
        if aead is None:
            raise DecryptionError(f"unknown key-encryption key {kek_id!r}; is it still configured?")
        if len(wrapped) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("wrapped data key is truncated")
        try:
            return aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise DecryptionError(
                f"wrapped data key failed authentication under {kek_id!r}"
            ) from None

    def __repr__(self) -> str:  # never show key material
        return f"Keyring(primary={self._primary!r}, keys={list(self._keys)!r})"


def _wrap_aad(owner_id: uuid.UUID) -> bytes:
    return _WRAP_AAD_PREFIX + owner_id.bytes


# --------------------------------------------------------------------------- the data-key table


class DataKeyMixin:
    """Columns of the `data_keys` table; `data_key_model` maps them onto a service's base."""

    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    org_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    kek_id: Mapped[str] = mapped_column(String(_MAX_KID))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def data_key_model(base: type) -> type[DataKeyMixin]:
    """Map a `DataKey` class (table ``data_keys``) onto a service's declarative base."""
    # type() rather than a class statement: the base is only known at runtime.
    model: type[DataKeyMixin] = type(
        "DataKey",
        (DataKeyMixin, base),
        {"__tablename__": "data_keys", "__module__": base.__module__},
    )
    return model


# --------------------------------------------------------------------------- sealed values


class SealedStr(str):
    """A string that knows whose data key encrypts it."""

    __slots__ = ("owner_id",)
    owner_id: uuid.UUID

    def __new__(cls, value: str, owner_id: uuid.UUID) -> SealedStr:
        obj = super().__new__(cls, value)
        obj.owner_id = owner_id
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (SealedStr, (str(self), self.owner_id))


class SealedBytes(bytes):
    """Bytes bound to the owner whose data key seals them (see `SealedStr`)."""

    owner_id: uuid.UUID

    def __new__(cls, value: bytes, owner_id: uuid.UUID) -> SealedBytes:
        instance = super().__new__(cls, value)
        instance.owner_id = owner_id
        return instance

    def __reduce__(self) -> tuple[Any, ...]:
        return (SealedBytes, (bytes(self), self.owner_id))


@dataclass(frozen=True, slots=True)
class SealedJSON:
    """A JSON-able value and the owner whose data key encrypts it."""

    value: Any
    owner_id: uuid.UUID


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# --------------------------------------------------------------------------- the vault


class VaultSlot:
    """Where a service's column types find its `Vault`; one per declarative base."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._vault: Vault | None = None

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            raise RuntimeError(
                f"no Vault attached to VaultSlot({self.name!r}); set slot.vault at app startup"
            )
        return self._vault

    @vault.setter
    def vault(self, vault: Vault | None) -> None:
        self._vault = vault

    @property
    def attached(self) -> bool:
        return self._vault is not None

    def __repr__(self) -> str:
        return f"VaultSlot({self.name!r})"


@dataclass
class _TxKeys:
    """Keys a session created or destroyed in its current transaction."""

    created: set[uuid.UUID] = field(default_factory=set)
    destroyed: set[uuid.UUID] = field(default_factory=set)


class Vault:
    """Data keys of one service: creates, caches, rotates and destroys them."""

    def __init__(
        self,
        keyring: Keyring,
        engine: AsyncEngine,
        data_key_model: type[DataKeyMixin],
        *,
        cache_size: int = 10_000,
        cache_ttl: float = 300.0,
    ) -> None:
        self.keyring = keyring
        self.engine = engine
        self.model = data_key_model
        self._cache_size = cache_size
        self._cache_ttl = cache_ttl
        # owner -> (dek or None for "no key", monotonic expiry). Negative entries spare a query
        # per row when listing shredded records.
        self._cache: OrderedDict[uuid.UUID, tuple[bytes | None, float]] = OrderedDict()
        # Keys added in a transaction that has not committed yet. Kept apart from the LRU so
        # they cannot be evicted before their row exists in the database.
        self._pending: dict[uuid.UUID, bytes] = {}
        self._info_key = f"upstander.kit.crypto:{id(self)}"

    # -- keys ---------------------------------------------------------------------------------

    async def create_key(
        self,
        session: AsyncSession,
        org_id: uuid.UUID,
        owner_id: uuid.UUID,
        *,
        created_at: datetime | None = None,
        new_owner: bool = False,
    ) -> None:
        """Give `owner_id` a data key (idempotent). Fields can be sealed before the commit.
        `created_at` is stored as the key's time (default: now); an anonymous report's key
        gets its coarse time (`upstander.kit.clock.coarse`), so the row does not tell when
        the reporter wrote. `new_owner`: the owner was created in this transaction, so it
        can have no key yet (no lookup)."""
        if owner_id in self._pending or self._cached(owner_id)[1] is not None:
            return
        if not new_owner and await session.get(self.model, owner_id) is not None:
            return
        dek = secrets.token_bytes(KEY_BYTES)
        kek_id, wrapped = self.keyring.wrap(dek, _wrap_aad(owner_id))
        row = self.model()
        row.owner_id = owner_id
        row.org_id = org_id
        row.kek_id = kek_id
        row.wrapped_key = wrapped
        if created_at is not None:
            row.created_at = created_at
        session.add(row)
        self._cache.pop(owner_id, None)  # a stale "no key" entry
        self._pending[owner_id] = dek
        self._tx_keys(session).created.add(owner_id)

    async def destroy_key(self, session: AsyncSession, owner_id: uuid.UUID) -> None:
        """Crypto-shred: delete the owner's data key. Effective for good once committed."""
        await session.flush()  # a key added in this transaction must exist to be deleted
        await session.execute(delete(self.model).where(self.model.owner_id == owner_id))
        self._pending.pop(owner_id, None)
        self._cache.pop(owner_id, None)
        self._tx_keys(session).destroyed.add(owner_id)

    async def rewrap_all(self, session: AsyncSession) -> int:
        """Re-wrap every data key not under the primary KEK with it; returns how many."""
        primary = self.keyring.primary_id
        rows = (await session.scalars(select(self.model).where(self.model.kek_id != primary))).all()
        for row in rows:
            aad = _wrap_aad(row.owner_id)
            dek = self.keyring.unwrap(row.kek_id, row.wrapped_key, aad)
            row.kek_id, row.wrapped_key = self.keyring.wrap(dek, aad)
        await session.flush()
        return len(rows)

    def dek_for(self, owner_id: uuid.UUID) -> bytes:
        """The owner's data key, for the column types. Must run inside SQLAlchemy's greenlet
        on a cache miss (it does, within ORM flushes and loads)."""
        dek = self._pending.get(owner_id)
        if dek is not None:
            return dek
        hit, dek = self._cached(owner_id)
        if not hit:
            # A new connection: the session's own one is busy running the statement that
            # called us. Type hooks are synchronous, hence await_only inside the greenlet.
            dek = await_only(self._load(owner_id))
            self._remember(owner_id, dek)
        if dek is None:
            raise DataKeyMissing(owner_id)
        return dek

    async def fetch_dek(self, owner_id: uuid.UUID) -> bytes:
        """`dek_for` from async code; also warms the cache before Core queries."""
        dek = self._pending.get(owner_id)
        if dek is not None:
            return dek
        hit, dek = self._cached(owner_id)
        if not hit:
            dek = await self._load(owner_id)
            self._remember(owner_id, dek)
        if dek is None:
            raise DataKeyMissing(owner_id)
        return dek

    def clear_cache(self) -> None:
        self._cache.clear()

    def install(self, target: Any) -> None:
        """Seal plain values of encrypted columns before each flush of `target`'s sessions."""
        install_sealing(target)

    # -- internals ----------------------------------------------------------------------------

    async def _load(self, owner_id: uuid.UUID) -> bytes | None:
        table = self.model.__table__  # type: ignore[attr-defined]
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(table.c.kek_id, table.c.wrapped_key).where(table.c.owner_id == owner_id)
                )
            ).first()
        if row is None:
            return None
        return self.keyring.unwrap(row.kek_id, bytes(row.wrapped_key), _wrap_aad(owner_id))

    def _cached(self, owner_id: uuid.UUID) -> tuple[bool, bytes | None]:
        """(hit, dek); a hit with None means "known to have no key"."""
        entry = self._cache.get(owner_id)
        if entry is None:
            return False, None
        dek, expires = entry
        if time.monotonic() >= expires:
            del self._cache[owner_id]
            return False, None
        self._cache.move_to_end(owner_id)
        return True, dek

    def _remember(self, owner_id: uuid.UUID, dek: bytes | None) -> None:
        self._cache[owner_id] = (dek, time.monotonic() + self._cache_ttl)
        self._cache.move_to_end(owner_id)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _tx_keys(self, session: AsyncSession) -> _TxKeys:
        sync = session.sync_session
        if not event.contains(sync, "after_commit", self._after_commit):
            event.listen(sync, "after_commit", self._after_commit)
            event.listen(sync, "after_transaction_end", self._after_transaction_end)
        tx = sync.info.get(self._info_key)
        if tx is None:
            tx = sync.info[self._info_key] = _TxKeys()
        assert isinstance(tx, _TxKeys)
        return tx

    def _after_commit(self, session: Session) -> None:
        tx = session.info.pop(self._info_key, None)
        if not isinstance(tx, _TxKeys):
            return
        for owner_id in tx.created:
            dek = self._pending.pop(owner_id, None)
            if dek is not None:
                self._remember(owner_id, dek)
        for owner_id in tx.destroyed:
            # Again after the commit: a concurrent read may have re-cached it meanwhile.
            self._cache.pop(owner_id, None)

    def _after_transaction_end(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is not None:
            return
        # Still here means the transaction did not commit: its new keys never reached the
        # database, so nothing may be encrypted under them any more.
        tx = session.info.pop(self._info_key, None)
        if isinstance(tx, _TxKeys):
            for owner_id in tx.created:
                self._pending.pop(owner_id, None)

    def __repr__(self) -> str:
        return f"Vault({self.keyring!r}, cached={len(self._cache)})"


# --------------------------------------------------------------------------- column types

_T = TypeVar("_T")


class _EncryptedType(TypeDecorator[_T], Generic[_T]):
    impl = LargeBinary
    cache_ok = True  # the cache key is (slot, label), both hashable
    kind: ClassVar[bytes]

    def __init__(self, slot: VaultSlot, label: str = "") -> None:
        super().__init__()
        self.slot = slot
        self.label = label

    # Subclasses: turn a sealed value into (owner, plaintext bytes), and plaintext back.
    def _unseal_for_bind(self, value: Any) -> tuple[uuid.UUID, bytes]:
        raise NotImplementedError

    def _decode(self, plaintext: bytes, owner_id: uuid.UUID) -> _T:
        raise NotImplementedError

    def _aad(self, owner_id: uuid.UUID) -> bytes:
        return _VERSION_BYTE + owner_id.bytes + self.kind + b"\x00" + self.label.encode("utf-8")

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        owner_id, plaintext = self._unseal_for_bind(value)
        dek = self.slot.vault.dek_for(owner_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        ciphertext = AESGCM(dek).encrypt(nonce, plaintext, self._aad(owner_id))
        return _VERSION_BYTE + owner_id.bytes + nonce + ciphertext

    def process_result_value(self, value: Any, dialect: Dialect) -> _T | None:
        if value is None:
            return None
        blob = bytes(value)  # memoryview on some drivers
        if len(blob) < _HEADER_BYTES + TAG_BYTES:
            raise DecryptionError("encrypted field is truncated")
        if blob[0] != BLOB_VERSION:
            raise DecryptionError(f"unknown encrypted field format version {blob[0]}")
        owner_id = uuid.UUID(bytes=blob[1:17])
        try:
            dek = self.slot.vault.dek_for(owner_id)
        except DataKeyMissing:
            return None  # crypto-shredded
        try:
            plaintext = AESGCM(dek).decrypt(
                blob[17:_HEADER_BYTES], blob[_HEADER_BYTES:], self._aad(owner_id)
            )
        except InvalidTag:
            raise DecryptionError(
                f"encrypted field of owner {owner_id} failed authentication (tampered or moved)"
            ) from None
        return self._decode(plaintext, owner_id)

    def compare_values(self, x: Any, y: Any) -> bool:
        # The ORM asks this to decide whether a column changed. The same text under another
        # owner is a change: it must be re-encrypted under that owner's key.
        return bool(_plain(x) == _plain(y)) and _owner(x) == _owner(y)


def _plain(value: Any) -> Any:
    if isinstance(value, SealedJSON):
        return value.value
    if isinstance(value, SealedStr):
        return str(value)
    if isinstance(value, SealedBytes):
        return bytes(value)
    return value


def _owner(value: Any) -> uuid.UUID | None:
    return value.owner_id if isinstance(value, SealedStr | SealedJSON | SealedBytes) else None


_CLEAR = "refusing to store an encrypted field in the clear"


class EncryptedText(_EncryptedType[str]):
    """A string encrypted under its owner's data key; reads back as `SealedStr`, or None if
    the key was destroyed."""

    kind = b"text"
    cache_ok = True  # SQLAlchemy reads it from each class itself, not from the base

    def _unseal_for_bind(self, value: Any) -> tuple[uuid.UUID, bytes]:
        if not isinstance(value, SealedStr):
            raise ValueError(
                f"{_CLEAR}: value has no owner (is Vault.install() set up for this session and "
                "__encryption_owner__ declared on the model?)"
            )
        return value.owner_id, str(value).encode("utf-8")

    def _decode(self, plaintext: bytes, owner_id: uuid.UUID) -> str:
        return SealedStr(plaintext.decode("utf-8"), owner_id)


class EncryptedJSON(_EncryptedType[Any]):
    """A JSON-able value encrypted under its owner's data key; reads back as the plain decoded
    value, or None if the key was destroyed. In-place mutations are not tracked."""

    kind = b"json"
    cache_ok = True

    def _unseal_for_bind(self, value: Any) -> tuple[uuid.UUID, bytes]:
        if not isinstance(value, SealedJSON):
            raise ValueError(
                f"{_CLEAR}: value has no owner (is Vault.install() set up for this session and "
                "__encryption_owner__ declared on the model?)"
            )
        encoded = json.dumps(
            value.value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        )
        return value.owner_id, encoded.encode("utf-8")

    def _decode(self, plaintext: bytes, owner_id: uuid.UUID) -> Any:
        return json.loads(plaintext)


class EncryptedBytes(_EncryptedType[bytes]):
    """Binary content (a file, or one chunk of it) encrypted under its owner's data key; reads
    back as `SealedBytes`, or None if the key was destroyed."""

    kind = b"bytes"
    cache_ok = True

    def _unseal_for_bind(self, value: Any) -> tuple[uuid.UUID, bytes]:
        if not isinstance(value, SealedBytes):
            raise ValueError(
                f"{_CLEAR}: value has no owner (is Vault.install() set up for this session and "
                "__encryption_owner__ declared on the model?)"
            )
        return value.owner_id, bytes(value)

    def _decode(self, plaintext: bytes, owner_id: uuid.UUID) -> bytes:
        return SealedBytes(plaintext, owner_id)


# --------------------------------------------------------------------------- sealing on flush


def install_sealing(target: Any) -> None:
    """Listen for ``before_flush`` on a Session class, sessionmaker, async_sessionmaker,
    AsyncSession class or session. Sealing does not depend on any vault, so listening on the
    plain `Session` class (what async_sessionmaker uses) from several services is harmless."""
    resolved: Any = target
    if isinstance(target, async_sessionmaker):
        resolved = target.kw.get("sync_session_class") or target.class_.sync_session_class
    elif isinstance(target, type) and issubclass(target, AsyncSession):
        resolved = target.sync_session_class
    elif isinstance(target, AsyncSession):
        resolved = target.sync_session
    if not event.contains(resolved, "before_flush", _seal_before_flush):
        event.listen(resolved, "before_flush", _seal_before_flush)


def _seal_before_flush(session: Session, _flush_context: Any, _instances: Any) -> None:
    for obj in [*session.new, *session.dirty]:
        _seal_object(obj)


def _encrypted_fields(mapper: Mapper[Any]) -> Iterator[tuple[str, _EncryptedType[Any]]]:
    for prop in mapper.column_attrs:
        column_type = prop.columns[0].type
        if isinstance(column_type, _EncryptedType):
            yield prop.key, column_type


def _seal_object(obj: Any) -> None:
    owner_attr: str | None = getattr(type(obj), "__encryption_owner__", None)
    if owner_attr is None:
        return
    state = inspect(obj)
    fields = list(_encrypted_fields(state.mapper))
    if not fields:
        return
    persistent = state.key is not None
    # A persistent row moving to another owner: every encrypted field must follow it, or
    # shredding the new owner would leave them readable under the old owner's key.
    owner_changed = persistent and bool(state.attrs[owner_attr].history.deleted)
    owner: Any = getattr(obj, owner_attr)
    for key, column_type in fields:
        if owner_changed:
            pass  # reseal even untouched fields (loads them if expired)
        elif persistent:
            if not state.attrs[key].history.has_changes():
                continue
        elif key not in state.dict:
            continue
        value = getattr(obj, key)
        if value is None:
            continue
        if owner is None:
            raise ValueError(
                f"{type(obj).__name__}.{owner_attr} must be set to store the encrypted "
                f"field {key!r}"
            )
        owner_id = _as_uuid(owner)
        if _owner(value) == owner_id:
            continue
        if isinstance(column_type, EncryptedText):
            if not isinstance(value, str):
                raise TypeError(f"{type(obj).__name__}.{key} must be a str")
            setattr(obj, key, SealedStr(str(value), owner_id))
        elif isinstance(column_type, EncryptedBytes):
            if not isinstance(value, bytes | bytearray | memoryview):
                raise TypeError(f"{type(obj).__name__}.{key} must be bytes")
            setattr(obj, key, SealedBytes(bytes(value), owner_id))
        else:
            setattr(obj, key, SealedJSON(_plain(value), owner_id))
