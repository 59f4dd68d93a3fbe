"""The reference for `make bench`'s database row: a bare FastAPI + async SQLAlchemy app with
one route running the query `GET /training/v1/courses` runs (an organisation's active courses,
keyset-ordered by `(created_at, id)`, one page of 50 + 1) on the same database file or
PostgreSQL database as the training service, and answering the same JSON shape. No
middleware, no token check, no problem handlers: what FastAPI and SQLAlchemy cost by
themselves.

    BARE_DATABASE_URL=sqlite+aiosqlite:////tmp/x/training.db BARE_ORG_ID=<uuid> \\
        python bench/bare_courses.py --port 9000
"""

from __future__ import annotations

import argparse
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from upstander.training.models import Course

LIMIT = 50


def create_app() -> FastAPI:
    url = os.environ["BARE_DATABASE_URL"]
    org_id = uuid.UUID(os.environ["BARE_ORG_ID"])
    engine = create_async_engine(url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await engine.dispose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/training/v1/courses")
    async def list_courses() -> dict[str, Any]:
        statement = (
            select(Course)
            .where(Course.org_id == org_id, Course.active.is_(True))
            .order_by(Course.created_at.asc(), Course.id.asc())
            .limit(LIMIT + 1)
        )
        async with sessions() as session:
            rows = list((await session.scalars(statement)).all())
        return {
            "items": [{"id": str(c.id), "title": c.title} for c in rows[:LIMIT]],
            "next_cursor": None,
        }

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        "bare_courses:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        access_log=False,
        log_level="warning",
        app_dir=os.path.dirname(os.path.abspath(__file__)),
    )


if __name__ == "__main__":
    main()
