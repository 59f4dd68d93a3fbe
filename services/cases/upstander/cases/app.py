"""The cases service: build the app (`create_app`) from its settings."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.cases.cases.api import router as cases_router
from upstander.cases.models import Model
from upstander.cases.settings import Settings
from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    spec = ServiceSpec(
        name="cases",
        title="Upstander cases",
        description=(
            "The case file: cases opened from reports, their workflow and legal deadlines, "
            "for the people who handle them."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[cases_router],
        openapi_tags=[{"name": "cases", "description": "Case files and their deadlines."}],
    )
    return create_service_app(settings or Settings(), spec, transport=transport, clock=clock)
