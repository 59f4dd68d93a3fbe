"""The delivery worker: two background loops (the kit's `PeriodicTask`) that send queued
emails and webhook messages, woken when an event's transaction commits and polling as a
fallback. Webhooks have their own loop, so a slow SMTP server never holds them up; it starts
attempts without waiting for them and claims more as each ends (webhooks/dispatcher.py).
Tests call `run_once()` and move the app's clock instead of sleeping."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import FastAPI

from upstander.kit.loops import PeriodicTask
from upstander.notify.mail.sender import Mailer
from upstander.notify.mail.service import send_due_digests, send_due_emails
from upstander.notify.settings import Settings
from upstander.notify.webhooks.dispatcher import WebhookDispatcher
from upstander.notify.webhooks.targets import TargetPolicy, own_origins, webhook_client

PLATFORM_APPS = ("gateway", "intake", "cases", "training", "notify")


class Worker:
    def __init__(self, app: FastAPI) -> None:
        settings: Settings = app.state.settings
        self.app = app
        self.settings = settings
        self.mailer = Mailer(settings)
        poll = settings.notify_worker_poll_seconds
        self.mail_loop = PeriodicTask("notify-mail", self.send_mail_once, interval=poll)
        self.webhook_loop = PeriodicTask("notify-webhooks", self._dispatch_webhooks, interval=poll)
        self.webhooks = WebhookDispatcher(
            app.state.sessionmaker,
            app.state.webhook_http,
            clock=app.state.clock,
            timeout=settings.webhook_timeout_seconds,
            app_base_url=settings.app_base_url,
            concurrency=settings.webhook_concurrency,
            per_endpoint=settings.webhook_per_endpoint,
            # An attempt that ends frees a slot: claim again (its endpoint may have more).
            on_finish=self.webhook_loop.wake,
        )
        self._lock = asyncio.Lock()

    def wake(self) -> None:
        self.mail_loop.wake()
        self.webhook_loop.wake()

    async def run_once(self) -> int:
        """One pass over due emails and webhook messages, waiting for the webhook attempts it
        starts; returns how many were attempted."""
        mail = await self.send_mail_once()
        hooks = await self.webhooks.run_once()
        return mail + hooks

    async def send_mail_once(self) -> int:
        """One pass over due emails and digests; returns how many were attempted."""
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
            return emails + digests

    async def _dispatch_webhooks(self) -> int:
        # Starts attempts without waiting for them; more at once while it started some.
        return len(await self.webhooks.dispatch())

    def start(self) -> None:
        self.mail_loop.start()
        self.webhook_loop.start()

    async def stop(self) -> None:
        await self.mail_loop.stop()
        await self.webhook_loop.stop()
        await self.webhooks.close()


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
