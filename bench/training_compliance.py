"""`make bench` (second part): what compliance costs for a large organisation. Builds an org of
10,000 people × 6 required courses with completions, in-process (httpx ASGITransport, the
service's own lifespan and migrations), on SQLite and, when one answers, on PostgreSQL; then
times the org roll-up (`GET /training/v1/compliance/summary`) and one page of people
(`GET /training/v1/compliance?limit=50`, also with a status filter), and a CSV import of
100,000 rows. Figures only;
nothing is asserted.

    python bench/training_compliance.py [--people 10000] [--repeat 7] [--import-rows 100000]
        [--no-analyze]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
from asgi_lifespan import LifespanManager
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from upstander.kit.clock import FrozenClock
from upstander.training.app import create_app
from upstander.training.compliance.store import rebuild_compliance
from upstander.training.models import (
    Completion,
    CompletionSource,
    Course,
    CourseKind,
    Person,
    Policy,
    PolicyVersion,
    Requirement,
)
from upstander.training.settings import Settings

NOW = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"
PG_URL = os.environ.get("UPSTANDER_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "upstander_bench_training"
COURSES = 6
LOCATIONS = ("CA", "NY", "IL", "CT", "DE", "TX")


class Keys:
    """A signing key and the JWKS that the service fetches (through a mock transport)."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = "bench"

    def transport(self) -> httpx.MockTransport:
        jwk = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        jwks = {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}
        return httpx.MockTransport(
            lambda request: (
                httpx.Response(200, json=jwks)
                if str(request.url) == JWKS_URL
                else httpx.Response(404)
            )
        )

    def token(self, org: uuid.UUID, roles: list[str]) -> str:
        # Services check a token's time window against the app's clock, frozen at NOW.
        now = int(NOW.timestamp())
        claims = {
            "iss": "upstander",
            "aud": "upstander",
            "sub": str(uuid.uuid4()),
            "org": str(org),
            "roles": roles,
            "scope": "",
            "typ": "staff",
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


async def build_org(
    app: Any, org: uuid.UUID, people: int, rng: random.Random, *, analyze: bool = True
) -> list[str]:
    """People (one manager per 8), 6 courses each required of everyone, 0-6 completions a
    person, and one policy; inserted in bulk, then (PostgreSQL, unless `analyze` is false)
    analysed. Returns the people's emails."""
    created = NOW - timedelta(days=400)
    courses = [
        {
            "id": uuid.uuid4(),
            "org_id": org,
            "title": f"Course {n}",
            "kind": CourseKind.ANTI_HARASSMENT,
            "description": "",
            "duration_minutes": 60,
            "languages": ["en"],
            "interactive": True,
            "activity_ids": [f"https://lms.example.org/xapi/activities/course-{n}"],
            "validity_months": None,
            "active": True,
            "version": 1,
            "created_at": created,
            "updated_at": created,
        }
        for n in range(COURSES)
    ]
    requirements = [
        {
            "id": uuid.uuid4(),
            "org_id": org,
            "course_id": course["id"],
            "name": f"Requirement {n}",
            "audience": "everyone",
            "location": None,
            "due_within_days": 90,
            "recurrence_months": 12,
            "min_minutes": None,
            "interactive_required": False,
            "effective_from": created,
            "preset_key": None,
            "active": True,
            "version": 1,
            "created_at": created + timedelta(seconds=n),
            "updated_at": created,
        }
        for n, course in enumerate(courses)
    ]
    ids = [uuid.uuid4() for _ in range(people)]
    rows = []
    for n, person_id in enumerate(ids):
        rows.append(
            {
                "id": person_id,
                "org_id": org,
                "email": f"p{n:06d}@bench.example",
                "name": f"Person {n}",
                "title": None,
                "roles": ["staff"],
                "manager_id": ids[(n // 8) * 8] if n % 8 else None,
                "is_leadership": n < 10,
                "supervisor_flag": n % 8 == 0,
                "is_supervisor": n % 8 == 0,
                "supervisor_since": None,
                "start_date": date(2024, 1, 1) + timedelta(days=rng.randrange(800)),
                "location": rng.choice(LOCATIONS),
                "location_since": None,
                "active": True,
                "last_event_at": created,
                "created_at": created + timedelta(seconds=n),
                "updated_at": created,
            }
        )
    completions = [
        {
            "id": uuid.uuid4(),
            "org_id": org,
            "person_id": person_id,
            "course_id": course["id"],
            "completed_at": NOW - timedelta(days=rng.randrange(1, 500)),
            "score": 90.0,
            "duration_minutes": 60,
            "source": CompletionSource.MANUAL,
            "certificate_id": None,
            "statement_id": None,
            "recorded_by": "bench",
            "created_at": created,
            "updated_at": created,
        }
        for person_id in ids
        for course in courses
        if rng.random() < 0.75
    ]
    policy_id = uuid.uuid4()
    async with app.state.sessionmaker() as session, session.begin():
        await session.execute(insert(Course), courses)
        await session.execute(insert(Requirement), requirements)
        for start in range(0, len(rows), 2_000):
            await session.execute(insert(Person), rows[start : start + 2_000])
        for start in range(0, len(completions), 5_000):
            await session.execute(insert(Completion), completions[start : start + 5_000])
        await session.execute(
            insert(Policy),
            [
                {
                    "id": policy_id,
                    "org_id": org,
                    "title": "Respect",
                    "summary": "",
                    "current_version": 1,
                    "active": True,
                    "created_at": created,
                    "updated_at": created,
                }
            ],
        )
        await session.execute(
            insert(PolicyVersion),
            [
                {
                    "id": uuid.uuid4(),
                    "org_id": org,
                    "policy_id": policy_id,
                    "number": 1,
                    "body": "Be kind.",
                    "changes": "",
                    "due_days": 30,
                    "published_at": created,
                    "published_by": "bench",
                    "created_at": created,
                    "updated_at": created,
                }
            ],
        )
    print(f"  org: {people} people, {COURSES} courses, {len(completions)} completions")
    # The rows went in behind the services' backs, so the stored compliance is built once here.
    started = time.perf_counter()
    async with app.state.sessionmaker() as session, session.begin():
        await rebuild_compliance(session, org)
    print(f"  rebuild_compliance: {time.perf_counter() - started:.1f} s")
    if analyze:
        # What autovacuum does within a minute of a bulk load: without statistics PostgreSQL
        # plans for one-row tables (sorts instead of reading an index in order, and so on).
        async with app.state.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                await session.execute(text("ANALYZE"))
    return [row["email"] for row in rows]


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"median {statistics.median(ordered) * 1000:8.1f} ms   p95 {p95 * 1000:8.1f} ms"


async def timed_get(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], repeat: int
) -> list[float]:
    response = await client.get(path, headers=headers)  # warm-up, not counted
    response.raise_for_status()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        samples.append(time.perf_counter() - started)
        response.raise_for_status()
    return samples


async def bench(database_url: str, label: str, args: argparse.Namespace) -> None:
    print(f"\n{label}")
    keys = Keys()
    app = create_app(
        Settings(
            database_url=database_url,
            log_json=False,
            log_level="WARNING",
            relay_background=False,
            reminders_background=False,
        ),
        transport=keys.transport(),
        clock=FrozenClock(NOW),
    )
    rng = random.Random(42)
    async with LifespanManager(app):
        org = uuid.uuid4()
        started = time.perf_counter()
        emails = await build_org(app, org, args.people, rng, analyze=not args.no_analyze)
        print(f"  built in {time.perf_counter() - started:.1f} s")
        headers = {"Authorization": f"Bearer {keys.token(org, ['trainer'])}"}
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            summary = await timed_get(
                client, "/training/v1/compliance/summary", headers, args.repeat
            )
            print(f"  GET /compliance/summary    {figures(summary)}")
            page = await timed_get(client, "/training/v1/compliance?limit=50", headers, args.repeat)
            print(f"  GET /compliance?limit=50   {figures(page)}")
            for status in ("overdue", "compliant"):
                path = f"/training/v1/compliance?limit=50&status={status}"
                filtered = await timed_get(client, path, headers, args.repeat)
                print(f"  GET ...&status={status:<10} {figures(filtered)}")

            lines = ["email,course,completed_at,score,duration_minutes"]
            for n in range(args.import_rows):
                when = NOW - timedelta(days=600 + n // len(emails), minutes=n % 1440)
                lines.append(
                    f"{emails[n % len(emails)]},Course {n % COURSES},"
                    f"{when.isoformat().replace('+00:00', 'Z')},80,60"
                )
            body = ("\n".join(lines) + "\n").encode()
            started = time.perf_counter()
            response = await client.post(
                "/training/v1/completions/imports",
                content=body,
                headers={**headers, "Content-Type": "text/csv"},
                timeout=600,
            )
            elapsed = time.perf_counter() - started
            outcome = response.json() if response.status_code == 200 else {}
            print(
                f"  CSV import {args.import_rows:,} rows ({len(body) / 1e6:.1f} MB): "
                f"{elapsed:.1f} s, HTTP {response.status_code}, "
                f"accepted {outcome.get('accepted')}, rejected {len(outcome.get('rejected', []))}"
            )


async def postgres_url() -> str | None:
    url = make_url(PG_URL).set(drivername="postgresql")
    try:
        connection = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        print(f"\nPostgreSQL not reachable ({type(error).__name__}): skipped")
        return None
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{PG_DATABASE}"')
    finally:
        await connection.close()
    return url.set(drivername="postgresql+asyncpg", database=PG_DATABASE).render_as_string(
        hide_password=False
    )


async def drop_postgres() -> None:
    url = make_url(PG_URL).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False), timeout=3)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    finally:
        await connection.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--import-rows", type=int, default=100_000)
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="time PostgreSQL without table statistics (straight after the bulk load)",
    )
    args = parser.parse_args()
    print(f"training compliance: {args.people:,} people × {COURSES} courses, in-process")
    with tempfile.TemporaryDirectory() as directory:
        await bench(f"sqlite+aiosqlite:///{directory}/training.db", "SQLite", args)
    url = await postgres_url()
    if url is not None:
        try:
            await bench(url, "PostgreSQL", args)
        finally:
            await drop_postgres()


if __name__ == "__main__":
    asyncio.run(main())
