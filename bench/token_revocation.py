"""What the revocation check adds to a token check: times `TokenVerifier.verify` on one staff
token without the check, with a service's ledger check on a cache hit, with the ledger read on
every call (`access_cache_seconds=0`), and with the gateway's directory check (a read of the
person joined with their org). SQLite files in a temporary folder, one process, sequential
calls; prints microseconds per call (median of 5 runs) and what each adds. Figures only.

    python bench/token_revocation.py [-n 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from upstander.gateway.auth.revocation import DirectoryRevocationCheck
from upstander.gateway.models import Model as GatewayModel
from upstander.gateway.models import Org, Person
from upstander.kit.auth import TokenVerifier
from upstander.kit.db import Base, make_engine, make_metadata, make_sessionmaker
from upstander.kit.revocation import AccessChanged, AccessLedger, access_table

KEY = Ed25519PrivateKey.generate()
KID = "bench"


class Model(Base):
    __abstract__ = True
    metadata = make_metadata()


AccessRecord = access_table(Model)


class Keys:
    async def key(self, kid: str) -> Any:
        return KEY.public_key()


def _token(person: uuid.UUID, org: uuid.UUID) -> str:
    now = int(time.time())
    claims = {
        "iss": "upstander",
        "aud": "upstander",
        "sub": str(person),
        "org": str(org),
        "typ": "staff",
        "roles": ["case_manager"],
        "scope": "",
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "access_version": 3,
    }
    return jwt.encode(claims, KEY, algorithm="EdDSA", headers={"kid": KID})


async def _database(path: Path, metadata: Any) -> async_sessionmaker[AsyncSession]:
    engine = make_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    return make_sessionmaker(engine)


async def _time(call: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    """Microseconds per call, wall clock and this process's CPU (all its threads: aiosqlite
    works in one), each the median of 5 runs of `n` calls after a warm-up. On a busy machine
    the CPU figure is the steadier one."""
    for _ in range(50):
        await call()
    wall, cpu = [], []
    for _ in range(5):
        started, started_cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await call()
        wall.append((time.perf_counter() - started) / n * 1e6)
        cpu.append((time.process_time() - started_cpu) / n * 1e6)
    return statistics.median(wall), statistics.median(cpu)


async def main(n: int) -> None:
    person, org = uuid.uuid4(), uuid.uuid4()
    raw = _token(person, org)
    with tempfile.TemporaryDirectory() as folder:
        ledger_db = await _database(Path(folder) / "service.db", Model.metadata)
        async with ledger_db() as session:
            change = AccessChanged(
                kind="staff",
                subject=str(person),
                org_id=org,
                active=True,
                version=3,
                changed_at=datetime.now(UTC),
            )
            await AccessLedger(ledger_db, AccessRecord).apply(session, change)
            await session.commit()
        directory_db = await _database(Path(folder) / "gateway.db", GatewayModel.metadata)
        async with directory_db() as session:
            session.add(Org(id=org, slug="bench", name="Bench", active=True, version=1))
            session.add(
                Person(
                    id=person,
                    org_id=org,
                    email="bench@example.org",
                    name="Bench",
                    roles=["case_manager"],
                    access_version=3,
                )
            )
            await session.commit()

        def verifier(check: Any) -> TokenVerifier:
            return TokenVerifier(
                Keys(), audience="upstander", issuer="upstander", revocation_check=check
            )

        cached = AccessLedger(ledger_db, AccessRecord, cache_seconds=3600)
        uncached = AccessLedger(ledger_db, AccessRecord, cache_seconds=0)
        cases = {
            "verify, no revocation check": verifier(None),
            "+ service ledger, cache hit": verifier(cached.is_revoked),
            "+ service ledger, read every call": verifier(uncached.is_revoked),
            "+ gateway directory read": verifier(DirectoryRevocationCheck(directory_db)),
        }
        baseline: tuple[float, float] | None = None
        print(f"{'µs per call':38} {'wall':>8} {'added':>8} {'cpu':>8} {'added':>8}")
        for name, candidate in cases.items():
            wall, cpu = await _time(lambda v=candidate: v.verify(raw), n)
            baseline = baseline or (wall, cpu)
            print(
                f"{name:38} {wall:8.1f} {wall - baseline[0]:+8.1f} "
                f"{cpu:8.1f} {cpu - baseline[1]:+8.1f}"
            )
        # The check alone, on an already verified caller: the part that is this feature's.
        principal = await verifier(None).verify(raw)
        checks = {
            "check alone: ledger, cache hit": cached.is_revoked,
            "check alone: ledger read": uncached.is_revoked,
            "check alone: gateway directory read": DirectoryRevocationCheck(directory_db),
        }
        for name, check in checks.items():
            wall, cpu = await _time(lambda c=check: c(principal), n)
            print(f"{name:38} {wall:8.1f} {'':8} {cpu:8.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=2000, help="calls per run")
    asyncio.run(main(parser.parse_args().n))
