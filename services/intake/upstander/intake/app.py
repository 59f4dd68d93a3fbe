"""The intake service: build the app (`create_app`) from its settings."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from pydantic import BaseModel

from upstander.intake.escrow.api import router as escrow_router
from upstander.intake.escrow.service import Escrow
from upstander.intake.events import HANDLERS
from upstander.intake.forms.api import router as forms_router
from upstander.intake.models import AccessRecord, DataKey, Inbox, Model, Outbox
from upstander.intake.records.api import router as records_router
from upstander.intake.records.sealing import Signer
from upstander.intake.reports.api import OPENAPI_MODELS
from upstander.intake.reports.api import internal_router as reports_internal_router
from upstander.intake.reports.api import router as reports_router
from upstander.intake.settings import Settings
from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock
from upstander.kit.crypto import Keyring, Vault

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
COMPONENT_REF = "#/components/schemas/{model}"


async def attach_vault(app: FastAPI) -> None:
    """Seal reports and attachments under a data key per report."""
    vault = Vault(Keyring.from_settings(app.state.settings), app.state.engine, DataKey)
    Model.__vault_slot__.vault = vault
    vault.install(app.state.sessionmaker)
    app.state.vault = vault


async def attach_escrow(app: FastAPI) -> None:
    """The escrow's blind-index key and limits, and the private records' signing key
    (docs/escrow.md); both secrets come from the settings only."""
    settings = app.state.settings
    app.state.escrow = Escrow(
        index_key=settings.escrow_index_key,
        max_per_org_per_day=settings.escrow_max_entries_per_org_per_day,
        default_expiry_days=settings.escrow_default_expiry_days,
    )
    app.state.record_signer = Signer.from_seed(settings.record_signing_key)


def _with_components(app: FastAPI, models: Sequence[type[BaseModel]]) -> Callable[[], Any]:
    """`app.openapi` that also publishes `models` (and what they refer to) as components, for
    request bodies a route documents by hand."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            model_schema = model.model_json_schema(ref_template=COMPONENT_REF)
            for name, definition in model_schema.pop("$defs", {}).items():
                components.setdefault(name, definition)
            components.setdefault(model.__name__, model_schema)
        app.openapi_schema = schema
        return schema

    return openapi


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or Settings()
    spec = ServiceSpec(
        name="intake",
        title="Upstander intake",
        description=(
            "The reporters' front door: per-organisation reporting forms and resources "
            "(public), in English and Spanish, and reports — anonymous, confidential or "
            "identified — with attachments and receipt codes."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[
            forms_router,
            reports_router,
            reports_internal_router,
            escrow_router,
            records_router,
        ],
        on_startup=[attach_vault, attach_escrow],
        max_body_bytes=settings.max_body_bytes,
        openapi_tags=[
            {"name": "forms", "description": "Reporting forms, categories and resources."},
            {"name": "reports", "description": "Submitting reports and attachments."},
            {
                "name": "escrow",
                "description": "Reports held until another reporter names the same person.",
            },
            {"name": "records", "description": "Private, sealed, time-stamped records."},
        ],
        event_tables=(Outbox, Inbox),
        access_table=AccessRecord,
        event_handlers=dict(HANDLERS),
    )
    app = create_service_app(settings, spec, transport=transport, clock=clock)
    app.openapi = _with_components(app, OPENAPI_MODELS)  # type: ignore[method-assign]
    return app
