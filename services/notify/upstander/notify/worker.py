"""The delivery worker: one background task that sends queued emails and webhook messages,
woken when an event's transaction commits and polling as a fallback. Tests call
`run_once()` and move the app's clock instead of sleeping."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import httpx
from fastapi import FastAPI

from upstander.notify.mail.sender import Mailer
from upstander.notify.mail.service import send_due_digests, send_due_emails
from upstander.notify.settings import Settings
from upstander.notify.webhooks.dispatcher import WebhookDispatcher
from upstander.notify.webhooks.targets import TargetPolicy, own_origins, webhook_client

PLATFORM_APPS = ("gateway", "intake", "cases", "training", "notify")

log = logging.getLogger("upstander.notify.worker")


class Worker:
    def __init__(self, app: FastAPI) -> None:
        settings: Settings = app.state.settings
        self.app = app
        self.settings = settings
        self.mailer = Mailer(settings)
        self.webhooks = WebhookDispatcher(
            app.state.sessionmaker,
            app.state.webhook_http,
            timeout=settings.webhook_timeout_seconds,
            app_base_url=settings.app_base_url,
        )
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """One pass over due emails and webhook messages; returns how many were attempted."""
        async with self._lock:
            now = self.app.state.clock.now()
            emails = await send_due_emails(
                self.app.state.sessionmaker,
                self.mailer,
                app_base_url=self.settings.app_base_url,
                now=now,
            )
            digests = await send_due_digests(
                self.app.state.sessionmaker,
                self.mailer,
                app_base_url=self.settings.app_base_url,
                now=now,
            )
            hooks = await self.webhooks.run_once(now)
            return emails + digests + hooks

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="notify-worker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                while await self.run_once():
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._wake.wait(), timeout=self.settings.notify_worker_poll_seconds
                )
            self._wake.clear()


async def start_worker(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.webhook_policy = TargetPolicy(
        allow_loopback=settings.allows_loopback_webhooks,
        own_origins=own_origins(settings.service_url(name) for name in PLATFORM_APPS),
    )
    # Deliveries go through their own client: guarded connections, no redirects, no proxy.
    app.state.webhook_http = webhook_client(
        app.state.webhook_policy,
        timeout=settings.webhook_timeout_seconds,
        transport=getattr(app.state, "webhook_transport", None),
    )
    worker = Worker(app)
    app.state.worker = worker
    if app.state.settings.notify_worker_background:
        worker.start()


async def stop_worker(app: FastAPI) -> None:
    worker: Worker | None = getattr(app.state, "worker", None)
    if worker is not None:
        await worker.stop()
    client: httpx.AsyncClient | None = getattr(app.state, "webhook_http", None)
    if client is not None:
        await client.aclose()
