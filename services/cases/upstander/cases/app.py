"""The cases service: build the app (`create_app`) from its settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.cases.assignments.api import router as assignments_router
from upstander.cases.audit.api import router as audit_router
from upstander.cases.cases.api import router as cases_router
from upstander.cases.checkins.api import router as checkins_router
from upstander.cases.deadlines.api import router as settings_router
from upstander.cases.deadlines.service import DeadlineScheduler
from upstander.cases.events import HANDLERS
from upstander.cases.evidence.api import router as evidence_router
from upstander.cases.export.api import router as export_router
from upstander.cases.interviews.api import router as interviews_router
from upstander.cases.measures.api import router as measures_router
from upstander.cases.messages.api import router as messages_router
from upstander.cases.models import AccessRecord, DataKey, IdempotencyKey, Inbox, Model, Outbox
from upstander.cases.notes.api import router as notes_router
from upstander.cases.report.api import router as report_router
from upstander.cases.report.fetcher import start_attachment_fetcher, stop_attachment_fetcher
from upstander.cases.reporter.api import router as reporter_router
from upstander.cases.retention.api import router as retention_router
from upstander.cases.retention.service import RetentionSweeper
from upstander.cases.settings import Settings
from upstander.cases.stats.api import router as stats_router
from upstander.cases.sync import changes as _change_feed  # noqa: F401  (records the feed)
from upstander.cases.sync.api import router as sync_router
from upstander.cases.sync.changes import start_change_events
from upstander.cases.timeline.api import router as timeline_router
from upstander.cases.workflow.api import router as workflow_router
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


async def start_deadlines(app: FastAPI) -> None:
    """The deadline scheduler (`app.state.deadlines.run_once()`: deadlines and retaliation
    check-ins) and the retention pass (`app.state.retention.run_once()`), looping in the
    background unless `deadline_scheduler_background` is off."""
    settings: Settings = app.state.settings
    retention = RetentionSweeper(app.state.sessionmaker, app.state.vault, app.state.clock)
    scheduler = DeadlineScheduler(
        app.state.sessionmaker,
        app.state.events,
        app.state.clock,
        warning=timedelta(hours=settings.deadline_warning_hours),
        interval_seconds=settings.deadline_scheduler_interval_seconds,
        vault=app.state.vault,
        after_pass=[retention.run_once],
    )
    app.state.deadlines = scheduler
    app.state.retention = retention
    if settings.deadline_scheduler_background:
        scheduler.start()


async def stop_deadlines(app: FastAPI) -> None:
    scheduler: DeadlineScheduler | None = getattr(app.state, "deadlines", None)
    if scheduler is not None:
        await scheduler.stop()


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or Settings()
    spec = ServiceSpec(
        name="cases",
        title="Upstander cases",
        description=(
            "The case file: cases opened from reports, their workflow and legal deadlines, "
            "for the people who handle them."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        # Raised from the kit's 10 MiB so an evidence file of the largest size fits.
        max_body_bytes=settings.max_body_bytes,
        routers=[
            cases_router,
            workflow_router,
            assignments_router,
            measures_router,
            messages_router,
            notes_router,
            interviews_router,
            evidence_router,
            report_router,
            reporter_router,
            checkins_router,
            retention_router,
            stats_router,
            settings_router,
            audit_router,
            timeline_router,
            export_router,
            sync_router,
        ],
        on_startup=[attach_vault, start_deadlines, start_attachment_fetcher, start_change_events],
        on_shutdown=[stop_attachment_fetcher, stop_deadlines],
        openapi_tags=[
            {"name": "cases", "description": "Case files and their deadlines."},
            {
                "name": "workflow",
                "description": "Transitions, severity and priority, allegations, findings, links.",
            },
            {
                "name": "assignments",
                "description": "Impartial assignment, recusal and sharing of cases.",
            },
            {"name": "measures", "description": "Interim measures and corrective actions."},
            {"name": "messages", "description": "The conversation with a case's reporter."},
            {
                "name": "notes",
                "description": "Investigation notes, sealed; corrected by new versions only.",
            },
            {
                "name": "interviews",
                "description": "Interviews of everyone heard, sealed; corrected by new versions.",
            },
            {
                "name": "evidence",
                "description": (
                    "Files added to the investigation: sealed, hashed (SHA-256) on receipt, "
                    "each with its chain of custody."
                ),
            },
            {
                "name": "report",
                "description": (
                    "What the reporter gave: the report, attachments, and a confidential "
                    "reporter's identity (read with a reason)."
                ),
            },
            {
                "name": "reporter",
                "description": "For reporters, with the token their receipt code gives them.",
            },
            {
                "name": "retention",
                "description": "Legal holds; finished cases are deleted past retention.",
            },
            {
                "name": "stats",
                "description": "Aggregate figures; any figure from fewer than 5 cases is hidden.",
            },
            {
                "name": "settings",
                "description": "Your organisation's deadlines, check-in days and retention.",
            },
            {"name": "audit", "description": "The hash-chained access audit trail."},
            {
                "name": "timeline",
                "description": "Everything that happened on a case, in one ordered list.",
            },
            {
                "name": "export",
                "description": (
                    "A case file as one signed ZIP, the public keys that check it, and its "
                    "verification."
                ),
            },
        ],
        event_tables=(Outbox, Inbox),
        access_table=AccessRecord,
        idempotency_table=IdempotencyKey,
        event_handlers=dict(HANDLERS),
    )
    return create_service_app(settings, spec, transport=transport, clock=clock)
