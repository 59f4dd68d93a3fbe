"""The NATS JetStream event transport (`UPSTANDER_EVENT_TRANSPORT=nats`), for deployments
beyond one machine. docs/events.md explains the choices; in short:

- Publishing: the outbox holds one row per event; the publisher claims due rows like the
  HTTP relay (oldest pending row per subject, short renewed leases, SKIP LOCKED) and
  publishes each to `<type>.<lane>` (`upstander.report.submitted.3`) on the stream
  (`UPSTANDER`, subjects `upstander.>`) with `Nats-Msg-Id` = the event id, so the broker
  drops a repeat inside its de-duplication window. `data` travels sealed under the
  deployment's key (`sealedwith` + `data_base64`): the broker's disk holds no report content
  or personal data in the clear. A broker that is down only delays rows: they stay pending,
  never die of it, and go out once it answers again.
- Lanes: an event's lane is a hash of its subject (`case/…`, `person/…`) modulo
  `nats_partitions`. NATS 2.9 gives a consumer one filter subject and no per-key ordering,
  so order per subject comes from the lanes: each service has one durable pull consumer per
  subscription and lane (`cases-report-3` on `upstander.report.*.3`) with
  `max_ack_pending=1`. The broker hands out the next event of a lane only once the one
  before is acked or terminated, whichever replica holds it; a retry (a nak with a delay)
  keeps the lane waiting, as the HTTP relay keeps a subject waiting. Lanes run in parallel,
  within a process and across replicas.
- Consuming: the kit's `EventConsumer` runs the handler and writes the inbox row in one
  transaction (a redelivery is acknowledged as a duplicate). An event that can never succeed
  is recorded dead in the inbox with its reason and terminated at once; other failures are
  nak'd with an exponential delay (capped by `nats_max_delay_seconds`), and recorded dead
  after `relay_max_attempts` deliveries. A handler that works longer tells the broker it is
  alive; one that crashed gives its event back after `nats_ack_wait_seconds`.
- New consumers start from the first event the stream still holds (`deliver_policy=all`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
import uuid
import zlib
from typing import Any

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription as NatsSubscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from pydantic import ValidationError

from upstander.kit.crypto import DecryptionError
from upstander.kit.events import (
    CloudEvent,
    EventTransport,
    Outcome,
    Subscription,
    _is_coarse,
    failure_reason,
    is_permanent,
)
from upstander.kit.loops import PeriodicTask, failure_summary
from upstander.kit.observability import coarse_timing

log = logging.getLogger("upstander.events.nats")

STREAM_SUBJECTS = "upstander.>"
# How long a background pull waits on the broker for the lane's next event.
PULL_SECONDS = 5.0
# A drain (tests, `run_once`) asks with `no_wait`; a lane with an event in flight may not
# answer at once, so that question expires after this long.
DRAIN_WAIT_SECONDS = 0.05
# Connection attempts to a broker that is down, at most this often.
RECONNECT_SECONDS = 1.0


def lane_of(subject: str, lanes: int) -> int:
    """The lane of an event's subject: stable across processes and versions (CRC-32)."""
    return zlib.crc32(subject.encode()) % lanes


def _wire_aad(event_id: str, event_type: str) -> bytes:
    return b"event:" + uuid.UUID(event_id).bytes + event_type.encode()


class Lane:
    """One durable pull consumer: a subscription's events of one lane, one at a time."""

    def __init__(self, transport: NatsTransport, subscription: Subscription, lane: int) -> None:
        self.transport = transport
        self.durable = f"{transport.bus.service}-{subscription.name}-{lane}"
        self.filter_subject = f"{subscription.types}.{lane}"
        self._inbox: NatsSubscription | None = None

    def config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.durable,
            filter_subject=self.filter_subject,
            ack_policy=AckPolicy.EXPLICIT,
            # A new consumer replays everything the stream holds.
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.transport.settings.nats_ack_wait_seconds,
            # The lane's order: nothing more until this one is acked or terminated.
            max_ack_pending=1,
            # Never dropped by the broker: the kit decides when an event is dead.
            max_deliver=-1,
        )

    async def declare(self, nc: NatsClient) -> None:
        js = nc.jetstream()
        stream = self.transport.settings.nats_stream
        try:
            await js.add_consumer(stream, self.config())
        except nats.js.errors.BadRequestError:
            # Exists with another configuration (changed by hand, or by another version):
            # use it as it is.
            await js.consumer_info(stream, self.durable)
        if self._inbox is None:
            self._inbox = await nc.subscribe(nc.new_inbox())

    def forget_inbox(self) -> None:
        self._inbox = None

    async def pull(self, *, wait: float | None, no_wait: bool = False) -> list[Msg]:
        """Ask for the lane's next event: wait up to `wait` seconds for one, or with
        `no_wait` answer at once (still bounded by `wait` when given)."""
        nc, inbox = self.transport.nc, self._inbox
        if nc is None or inbox is None:
            return []
        queued = self._queued()
        if queued:  # delivered for an earlier question that gave up waiting
            return queued
        request: dict[str, Any] = {"batch": 1}
        if no_wait:
            request["no_wait"] = True
        if wait is not None:
            request["expires"] = int(wait * 1e9)
        stream = self.transport.settings.nats_stream
        await nc.publish(
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{self.durable}",
            json.dumps(request).encode(),
            reply=inbox.subject,
        )
        deadline = time.monotonic() + (wait or 0.0) + 1.0
        while True:
            try:
                msg = await inbox.next_msg(timeout=max(0.001, deadline - time.monotonic()))
            except (TimeoutError, nats.errors.TimeoutError):
                return []
            status = (msg.headers or {}).get("Status")
            if not status:
                return [msg]
            if status == "100":  # an idle heartbeat
                continue
            if status == "503":  # nobody answers for the consumer: declare it again
                self.transport.declared = False
            return []

    def _queued(self) -> list[Msg]:
        assert self._inbox is not None
        queue = self._inbox._pending_queue
        found: list[Msg] = []
        while not queue.empty():
            msg = queue.get_nowait()
            self._inbox._pending_size -= len(msg.data)
            if not (msg.headers or {}).get("Status"):
                found.append(msg)
        return found

    async def poll(self) -> bool:
        """The background step: wait for the next event and handle it."""
        if not await self.transport.connect():
            return False
        for msg in await self.pull(wait=PULL_SECONDS):
            await self.transport.handle_message(msg)
        return True

    async def drain(self, limit: int = 10_000) -> int:
        """Handle every event the lane can give now (tests' `drain`)."""
        js = self.transport.js
        if js is None:
            return 0
        handled = 0
        for _ in range(limit):
            info = await js.consumer_info(self.transport.settings.nats_stream, self.durable)
            if not info.num_pending and not info.num_ack_pending:
                break
            # With an event in flight (or waiting out a retry delay) the broker may hold the
            # question until that one is settled: bound it.
            wait = DRAIN_WAIT_SECONDS if info.num_ack_pending else None
            messages = await self.pull(wait=wait, no_wait=True)
            if not messages:
                break
            for msg in messages:
                await self.transport.handle_message(msg)
                handled += 1
        return handled


class NatsTransport(EventTransport):
    """Publishes the outbox to JetStream and runs the service's durable consumers."""

    name = "nats"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.nc: NatsClient | None = None
        self.js: Any = None
        self.declared = False
        self._connecting = asyncio.Lock()
        self._last_attempt = 0.0
        subscriptions = self.consumer.subscriptions if self.consumer is not None else ()
        self.lanes = [
            Lane(self, subscription, lane)
            for subscription in subscriptions
            for lane in range(self.settings.nats_partitions)
        ]

    # -- connection

    async def connect(self) -> bool:
        """Connected, with the stream and this service's consumers declared. Never raises:
        a broker that is down is tried again at most every `RECONNECT_SECONDS`, and the
        client reconnects by itself once it had a connection."""
        if self.nc is not None and self.nc.is_connected and self.declared:
            return True
        async with self._connecting:
            if self.nc is not None and self.nc.is_closed:
                self.nc, self.js = None, None
            if self.nc is None:
                if time.monotonic() - self._last_attempt < RECONNECT_SECONDS:
                    return False
                self._last_attempt = time.monotonic()
                try:
                    self.nc = await nats.connect(
                        self.settings.nats_url,
                        name=f"upstander-{self.bus.service}",
                        connect_timeout=2,
                        allow_reconnect=True,
                        max_reconnect_attempts=-1,
                        reconnect_time_wait=0.5,
                        error_cb=self._on_error,
                        reconnected_cb=self._on_reconnected,
                    )
                except Exception as error:
                    log.warning("NATS unreachable", extra=failure_summary(error))
                    return False
                self.js = self.nc.jetstream(timeout=5)
                self.declared = False
                for lane in self.lanes:  # their inboxes belonged to the closed connection
                    lane.forget_inbox()
            if not self.nc.is_connected:
                return False
            if not self.declared:
                try:
                    await self._declare()
                except Exception as error:
                    log.warning("NATS declarations failed", extra=failure_summary(error))
                    return False
                self.declared = True
            return True

    async def _declare(self) -> None:
        assert self.nc is not None
        js = self.nc.jetstream(timeout=5)
        settings = self.settings
        try:
            await js.stream_info(settings.nats_stream)
        except nats.js.errors.NotFoundError:
            try:
                await js.add_stream(
                    StreamConfig(
                        name=settings.nats_stream,
                        subjects=[STREAM_SUBJECTS],
                        retention=RetentionPolicy.LIMITS,
                        storage=StorageType.FILE,
                        discard=DiscardPolicy.OLD,
                        max_age=settings.nats_stream_max_age_days * 86400,
                        duplicate_window=settings.nats_duplicate_window_seconds,
                    )
                )
            except nats.js.errors.BadRequestError:
                await js.stream_info(settings.nats_stream)  # another service made it first
        for lane in self.lanes:
            await lane.declare(self.nc)

    async def _on_error(self, error: Exception) -> None:
        log.warning("NATS connection error", extra=failure_summary(error))

    async def _on_reconnected(self) -> None:
        # A broker restarted without its storage has lost the stream: declare again; and
        # whatever waited in the outbox can go now.
        self.declared = False
        self.wake()

    async def _ready(self) -> bool:
        return await self.connect()

    async def close(self) -> None:
        nc, self.nc, self.js, self.declared = self.nc, None, None, False
        if nc is not None and not nc.is_closed:
            with contextlib.suppress(Exception):
                await nc.close()

    # -- loops

    def _loops(self) -> list[PeriodicTask]:
        lanes = [
            PeriodicTask(f"nats-{lane.durable}", lane.poll, interval=RECONNECT_SECONDS)
            for lane in self.lanes
        ]
        return [*super()._loops(), *lanes]

    async def run_once(self) -> int:
        """Publish a batch of due rows, then handle every event this service's lanes can
        give now; return how much happened (tests drain every app until nothing does)."""
        published = await self.publish_once()
        if not await self.connect():
            return published
        handled = 0
        for lane in self.lanes:
            handled += await lane.drain()
        return published + handled

    # -- publishing

    def encode(self, row: Any) -> tuple[str, bytes, dict[str, str]]:
        """The wire form of an outbox row: subject, CloudEvent JSON with `data` sealed,
        and the headers (the broker de-duplicates on `Nats-Msg-Id`)."""
        envelope = self.bus.envelope(row)
        data = json.dumps(envelope.pop("data"), separators=(",", ":")).encode()
        kid, sealed = self.bus.keyring.wrap(data, _wire_aad(envelope["id"], row.type))
        envelope["sealedwith"] = kid
        envelope["data_base64"] = base64.b64encode(sealed).decode("ascii")
        subject = f"{row.type}.{lane_of(row.subject, self.settings.nats_partitions)}"
        headers = {
            "Nats-Msg-Id": str(row.event_id),
            "Content-Type": "application/cloudevents+json",
        }
        return subject, json.dumps(envelope, separators=(",", ":")).encode(), headers

    async def _deliver_rows(self, rows: list[Any]) -> list[Outcome]:
        # In parallel: a batch holds one row per subject, so their order does not matter.
        return list(await asyncio.gather(*(self._publish(row) for row in rows)))

    async def _publish(self, row: Any) -> Outcome:
        outage = Outcome(counts=False, cap_seconds=RECONNECT_SECONDS * 5)
        try:
            subject, payload, headers = self.encode(row)
        except Exception as error:
            return Outcome(error=type(error).__name__)
        try:
            await self.js.publish(subject, payload, timeout=5, headers=headers)
        except nats.js.errors.NoStreamResponseError:
            self.declared = False  # the stream is gone (a broker without its storage)
            outage.error = "no stream answers"
            return outage
        except nats.js.errors.APIError as error:
            return Outcome(error=f"broker refused: {error.code} {error.description}"[:300])
        except (nats.errors.Error, OSError, TimeoutError) as error:
            outage.error = type(error).__name__
            return outage
        return Outcome()

    # -- consuming

    def decode(self, msg: Msg) -> CloudEvent:
        """The event of a message; `ValueError` (or `ValidationError`) if it is malformed,
        `DecryptionError` if this deployment cannot unseal it (its key missing here)."""
        body = json.loads(msg.data)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        kid, sealed = body.pop("sealedwith", None), body.pop("data_base64", None)
        if kid is not None:
            if not isinstance(kid, str) or not isinstance(sealed, str):
                raise ValueError("malformed sealed data")
            raw = self.bus.keyring.unwrap(
                kid,
                base64.b64decode(sealed, validate=True),
                _wire_aad(str(body.get("id")), str(body.get("type"))),
            )
            body["data"] = json.loads(raw)
        event = CloudEvent.model_validate(body)
        _ = event.event_id  # a UUID, or ValueError
        return event

    async def handle_message(self, msg: Msg) -> None:
        """Handle one delivery and settle it with the broker: ack, nak with a delay, or
        terminate (a dead letter, recorded first)."""
        assert self.consumer is not None
        delivered = msg.metadata.num_delivered or 1
        try:
            event = self.decode(msg)
        except DecryptionError as error:
            # This replica lacks the key (a configuration fault another may not have).
            await self._retry(msg, delivered, None, error)
            return
        except (ValueError, ValidationError, UnicodeDecodeError) as error:
            await self._malformed(msg, error)
            return
        coarse_event = _is_coarse(event.time)
        with coarse_timing(coarse_event):
            alive = asyncio.create_task(self._keep_alive(msg))
            try:
                await self.consumer.handle(event)
            except Exception as error:
                if is_permanent(error) or delivered >= self.policy.max_attempts:
                    await self._dead(msg, event, failure_reason(error), coarse_event)
                else:
                    await self._retry(msg, delivered, event, error)
            else:
                await msg.ack()
            finally:
                alive.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await alive

    async def _keep_alive(self, msg: Msg) -> None:
        """Tell the broker a slow handler is still working, so its event stays with it."""
        while True:
            await asyncio.sleep(self.settings.nats_ack_wait_seconds / 3)
            with contextlib.suppress(Exception):
                await msg.in_progress()

    async def _retry(
        self, msg: Msg, delivered: int, event: CloudEvent | None, error: Exception
    ) -> None:
        delay = self.policy.delay(delivered, self.settings.nats_max_delay_seconds)
        log.warning(
            "event handler failed; retrying",
            extra={
                "event_type": event.type if event is not None else None,
                "delivered": delivered,
                "retry_in_seconds": round(delay.total_seconds(), 1),
                **failure_summary(error),
            },
        )
        await msg.nak(delay=delay.total_seconds())

    async def _dead(self, msg: Msg, event: CloudEvent, reason: str, coarse_event: bool) -> None:
        assert self.consumer is not None
        try:
            await self.consumer.record_dead(
                event.event_id, event.type, event.source, reason, coarse_event
            )
        except Exception as error:
            # Not recorded (the database is away): the broker keeps it until it can be.
            await self._retry(msg, msg.metadata.num_delivered or 1, event, error)
            return
        log.warning("event is a dead letter", extra={"event_type": event.type, "reason": reason})
        await msg.term()

    async def _malformed(self, msg: Msg, error: Exception) -> None:
        """A message that is not an event of ours: recorded dead under its `Nats-Msg-Id`
        when that is an event id, and terminated."""
        assert self.consumer is not None
        reason = failure_reason(error) if isinstance(error, ValidationError) else "malformed"
        raw_id = (msg.headers or {}).get("Nats-Msg-Id", "")
        try:
            event_id = uuid.UUID(raw_id)
        except ValueError:
            event_id = None
        if event_id is not None:
            try:
                await self.consumer.record_dead(event_id, "", msg.subject, reason, False)
            except Exception as failure:
                await self._retry(msg, msg.metadata.num_delivered or 1, None, failure)
                return
        log.warning("malformed event is a dead letter", extra={"reason": reason})
        await msg.term()
