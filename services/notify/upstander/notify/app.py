"""The notify service's FastAPI application, built by the kit."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock
from upstander.kit.crypto import Keyring, Vault
from upstander.notify.deliveries.api import router as deliveries_router
from upstander.notify.events import HANDLERS
from upstander.notify.inbox.api import router as inbox_router
from upstander.notify.models import AccessRecord, DataKey, IdempotencyKey, Inbox, Model, Outbox
from upstander.notify.preferences.api import router as preferences_router
from upstander.notify.rules.api import router as rules_router
from upstander.notify.settings import Settings
from upstander.notify.webhooks.api import router as webhooks_router
from upstander.notify.worker import start_worker, stop_worker

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


async def attach_vault(app: FastAPI) -> None:
    """Seal people's contact details and webhook secrets under per-owner data keys."""
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
        name="notify",
        title="Upstander notify",
        description=(
            "Delivery: the in-app inbox, email and signed webhooks (Standard Webhooks) "
            "for outside systems. Never carries case content."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[
            inbox_router,
            preferences_router,
            rules_router,
            deliveries_router,
            webhooks_router,
        ],
        on_startup=[attach_vault, start_worker],
        on_shutdown=[stop_worker],
        openapi_tags=[
            {"name": "inbox", "description": "Your in-app messages."},
            {"name": "preferences", "description": "How and when you want to be told."},
            {"name": "rules", "description": "Which events reach whom, through which channels."},
            {"name": "deliveries", "description": "The log of every notification sent."},
            {
                "name": "webhooks",
                "description": "Outside systems receiving signed events (Standard Webhooks).",
            },
        ],
        event_tables=(Outbox, Inbox),
        access_table=AccessRecord,
        idempotency_table=IdempotencyKey,
        event_handlers=dict(HANDLERS),
    )
    app = create_service_app(settings or Settings(), spec, transport=transport, clock=clock)
    # Tests replace the network; webhook deliveries then go through the same stand-in.
    app.state.webhook_transport = transport
    return app
