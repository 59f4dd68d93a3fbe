"""The training service's FastAPI application, built by the kit."""

from __future__ import annotations

from pathlib import Path

import httpx
from fastapi import FastAPI

from upstander.kit.app import ServiceSpec, create_service_app
from upstander.kit.clock import Clock
from upstander.kit.http import DEFAULT_CONTENT_TYPES
from upstander.training.completions.announce import start_completion_events
from upstander.training.completions.api import router as completions_router
from upstander.training.completions.changes_api import router as completion_changes_router
from upstander.training.compliance.api import router as compliance_router
from upstander.training.courses.api import router as courses_router
from upstander.training.events import HANDLERS
from upstander.training.models import AccessRecord, Inbox, Model, Outbox
from upstander.training.people.api import router as people_router
from upstander.training.policies.api import router as policies_router
from upstander.training.reminders.service import ReminderScheduler
from upstander.training.requirements.api import router as requirements_router
from upstander.training.settings import Settings
from upstander.training.xapi.api import XapiVersionMiddleware
from upstander.training.xapi.api import router as xapi_router
from upstander.training.xapi.content import XAPI_CONTENT_TYPES_UNDER

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


def create_app(
    settings: Settings | None = None,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    settings = settings or Settings()

    async def start_reminders(app: FastAPI) -> None:
        scheduler = ReminderScheduler(
            app.state.sessionmaker,
            app.state.events,
            app.state.clock,
            window_days=settings.reminder_window_days,
            interval_seconds=settings.reminders_interval_seconds,
            initial_delay_seconds=settings.reminders_initial_delay_seconds,
        )
        app.state.reminders = scheduler
        if settings.reminders_background:
            scheduler.start()

    async def stop_reminders(app: FastAPI) -> None:
        scheduler: ReminderScheduler | None = getattr(app.state, "reminders", None)
        if scheduler is not None:
            await scheduler.stop()

    spec = ServiceSpec(
        name="training",
        title="Upstander training",
        description=(
            "Training and policy records: the course catalogue, requirements by role, "
            "completions from any LMS (xAPI) and compliance."
        ),
        metadata=Model.metadata,
        migrations_dir=MIGRATIONS_DIR,
        routers=[
            courses_router,
            requirements_router,
            completion_changes_router,  # before `/completions/{completion_id}`
            completions_router,
            policies_router,
            compliance_router,
            people_router,
            xapi_router,
        ],
        on_startup=[start_reminders, start_completion_events],
        on_shutdown=[stop_reminders],
        # CSV imports everywhere; the LRS takes attachments and documents of any type.
        content_types=(*DEFAULT_CONTENT_TYPES, "text/csv"),
        content_types_under=XAPI_CONTENT_TYPES_UNDER,
        event_tables=(Outbox, Inbox),
        access_table=AccessRecord,
        event_handlers=dict(HANDLERS),
        openapi_tags=[
            {"name": "courses", "description": "The organisation's course catalogue."},
            {"name": "requirements", "description": "Who must take which course, by when."},
            {"name": "completions", "description": "Completed courses: manual, CSV, xAPI."},
            {"name": "policies", "description": "Versioned policies and acknowledgments."},
            {"name": "compliance", "description": "Where everyone stands, and roll-ups."},
            {"name": "people", "description": "The people training knows (from events)."},
            {
                "name": "xapi",
                "description": "An xAPI 1.0.3 Learning Record Store for LMSs: statements in, "
                "completions out; documents (State, Activity and Agent Profile), Agents, "
                "Activities. LMSs may use HTTP Basic with an API client's id and secret (the "
                "gateway turns it into the client's token; docs/xapi.md).",
            },
        ],
    )
    app = create_service_app(settings, spec, transport=transport, clock=clock)
    app.add_middleware(XapiVersionMiddleware)
    return app
