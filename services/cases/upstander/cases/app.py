"""The cases service: build the app (`create_app`) from its settings."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.cases.cases.api import router as cases_router
from upstander.cases.events import HANDLERS
from upstander.cases.messages.api import router as messages_router
from upstander.cases.models import DataKey, Inbox, Model, Outbox
from upstander.cases.reporter.api import router as reporter_router
from upstander.cases.settings import Settings
from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock
from upstander.kit.crypto import Keyring, Vault

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


async def attach_vault(app: FastAPI) -> None:
    """Seal report content, messages and directory details under per-owner data keys."""
    vault = Vault(Keyring.from_settings(app.state.settings), app.state.engine, DataKey)
    Model.__vault_slot__.vault = vault
    vault.install(app.state.sessionmaker)
    app.state.vault = vault


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
        routers=[cases_router, messages_router, reporter_router],
        on_startup=[attach_vault],
        openapi_tags=[
            {"name": "cases", "description": "Case files and their deadlines."},
            {"name": "messages", "description": "The conversation with a case's reporter."},
            {
                "name": "reporter",
                "description": "For reporters, with the token their receipt code gives them.",
            },
        ],
        event_tables=(Outbox, Inbox),
        event_handlers=dict(HANDLERS),
    )
    return create_service_app(settings or Settings(), spec, transport=transport, clock=clock)
