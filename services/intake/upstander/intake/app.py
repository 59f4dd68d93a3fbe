"""The intake service: build the app (`create_app`) from its settings."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.intake.forms.api import router as forms_router
from upstander.intake.models import Model
from upstander.intake.settings import Settings
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
        name="intake",
        title="Upstander intake",
        description=(
            "The reporters' front door: per-organisation reporting forms and resources "
            "(public), in English and Spanish."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[forms_router],
        openapi_tags=[
            {"name": "forms", "description": "Reporting forms, categories and resources."}
        ],
    )
    return create_service_app(settings or Settings(), spec, transport=transport, clock=clock)
