"""The rules engine: an event comes in, its rule says who hears about it and how, the directory
says who those people are now, and their preferences say which channels and when. Inbox
messages are written at once; emails are queued for the worker (held back by quiet hours,
or batched into the daily digest for reminders). A notice names a case number or says a
training is due and links to where the work is: never content, never names.

Event data is read through the shared contracts (`upstander.kit.contracts`), never by hand:
`notice_data` parses it with the type's model, so a case event's `case_id`, `number`,
`routed_to` and `restricted_person_ids`, a reminder's `person_id` or a digest's
`supervisor_id` are typed fields. Data that breaks its contract is an `InvalidEvent` (a dead
letter at once, the fields at fault named); a type without a contract tells nobody."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.kit.contracts import (
    CaseEvent,
    CaseMessagePosted,
    EventData,
    contract_for,
    parse_event,
)
from upstander.kit.errors import ProblemError
from upstander.kit.events import CloudEvent
from upstander.notify.directory.service import (
    Recipient,
    active_people,
    manager_of,
    normalise_language,
)
from upstander.notify.mail.sender import Mailer, MailError
from upstander.notify.mail.templates import REPORTER_NOTICE, Rendered, link_for, render
from upstander.notify.models import (
    BODY_MAX,
    SUBJECT_MAX,
    CaseRoute,
    Channel,
    Delivery,
    DeliveryStatus,
    InboxMessage,
)
from upstander.notify.preferences.service import Effective, effective_for, kind_of, mandatory_for
from upstander.notify.restrictions import hidden_from_case
from upstander.notify.rules.defaults import DIGEST_TYPES, ROLE_PREFIX
from upstander.notify.rules.defaults import Recipient as Spec
from upstander.notify.rules.service import rule_for
from upstander.notify.settings import Settings

log = logging.getLogger("upstander.notify.notices")

REVIEWERS = "reviewers"
CASE_MANAGERS = "case_managers"
ROLE_FOR_ROUTE = {REVIEWERS: "reviewer", CASE_MANAGERS: "case_manager"}
NUMBER_MAX = 64
MESSAGE_POSTED = "upstander.case.message_posted"
# Keys of event data a notice may carry as template parameters: identifiers, never content.
_PARAM_SCALARS = frozenset({"number", "due_at", "policy_version"})
DEFAULT_PREFERENCES = Effective()


class MailUnavailable(ProblemError):
    """The reporter's email could not be handed over; the event is not acknowledged, so the
    publisher's relay delivers it again later (it still holds the address; notify does not)."""

    status, slug, title = 503, "service-unavailable", "Service unavailable"


def case_link(app_base_url: str, case_id: uuid.UUID | str) -> str:
    return f"{app_base_url.rstrip('/')}/cases/{case_id}"


def notice_data(event: CloudEvent) -> EventData | None:
    """The event's data as its contract's model (the version its `dataschema` names), or None
    for a type no contract names (nobody is told of it). Data that breaks the contract raises
    `InvalidEvent`: a dead letter at once, never a retry."""
    if contract_for(event.type) is None:
        return None
    return parse_event(event)


def notice_params(data: EventData | Mapping[str, Any]) -> dict[str, str]:
    """Identifiers from the event data (`*_id`, the case number, a due date), and how many
    items a list holds: enough for a template, nothing that could be content. Typed data is
    read as its contract writes it (field aliases included: `from`, `to`)."""
    values = data.model_dump(mode="json", by_alias=True) if isinstance(data, EventData) else data
    params: dict[str, str] = {}
    for key, value in values.items():
        if isinstance(value, list) and key == "overdue":
            params["count"] = str(len(value))
        if not isinstance(value, str | int) or isinstance(value, bool):
            continue
        if (key.endswith("_id") or key in _PARAM_SCALARS) and len(str(value)) <= 128:
            params[key] = str(value)
    if "number" in params:
        params["number"] = params["number"][:NUMBER_MAX]
    return params


def _stated_route(data: EventData) -> str | None:
    """Where a case event says its case is routed (`RoutedCaseEvent.routed_to`), if it says."""
    stated = getattr(data, "routed_to", None)
    return stated if stated in ROLE_FOR_ROUTE else None


async def _route_of(
    session: AsyncSession,
    data: CaseEvent,
    org_id: uuid.UUID,
) -> str:
    """The routing of a case: from the event if it says, else as remembered from its opening.
    Unknown routing goes to case managers (the default route)."""
    case_id, number = data.case_id, data.number[:NUMBER_MAX]
    stated = _stated_route(data)
    route = await session.get(CaseRoute, case_id)
    if route is not None and route.org_id != org_id:
        route = None
    if stated is not None:
        if route is None:
            session.add(CaseRoute(id=case_id, org_id=org_id, number=number, routed_to=stated))
        elif route.routed_to != stated:
            # A rerouted case: later events that do not say (a reporter's message) must reach
            # the new group, and webhook owners are checked against it.
            route.routed_to = stated
        return stated
    return route.routed_to if route is not None else CASE_MANAGERS


async def remember_route(session: AsyncSession, event: CloudEvent) -> None:
    """Remember where a case event says its case is routed, whatever the event's rule (a
    `case.rerouted` tells nobody by default): later events that do not say reach the right
    group, and webhook owners are checked against it."""
    if event.org_id is None or not event.type.startswith("upstander.case."):
        return
    data = notice_data(event)
    if not isinstance(data, CaseEvent) or _stated_route(data) is None:
        return
    await _route_of(session, data, event.org_id)
    await session.flush()


def _uuid_field(data: EventData, name: str) -> uuid.UUID | None:
    """A typed id field of the contract, where the contract has it (`person_id` of a
    reminder or an assignment, `supervisor_id` of a digest)."""
    value = getattr(data, name, None)
    return value if isinstance(value, uuid.UUID) else None


async def resolve_recipients(
    session: AsyncSession,
    org_id: uuid.UUID,
    specs: tuple[str, ...],
    data: EventData,
    *,
    route: str | None,
) -> list[Recipient]:
    """The active people a rule's recipients name now, never anyone the case is hidden from
    (the event's `restricted_person_ids`, and every `case.restricted` notify heard since)."""
    roles: set[str] = set()
    ids: set[uuid.UUID] = set()
    subject = _uuid_field(data, "person_id")
    for spec in specs:
        if spec.startswith(ROLE_PREFIX):
            roles.add(spec.removeprefix(ROLE_PREFIX))
        elif spec == Spec.CASE_HANDLERS and route is not None:
            roles.add(ROLE_FOR_ROUTE[route])
        elif spec == Spec.PERSON_SELF and subject is not None:
            ids.add(subject)
        elif spec == Spec.SUPERVISOR_OF_SUBJECT:
            supervisor = _uuid_field(data, "supervisor_id")
            if supervisor is None and subject is not None:
                supervisor = await manager_of(session, org_id, subject)
            if supervisor is not None:
                ids.add(supervisor)
    if roles:
        people = [
            p for p in await active_people(session, org_id) if roles & set(p.roles) or p.id in ids
        ]
    else:
        people = await active_people(session, org_id, ids)
    if isinstance(data, CaseEvent):
        restricted = await hidden_from_case(
            session, org_id, data.case_id, data.restricted_person_ids
        )
    else:
        restricted = set()
    return [p for p in people if p.id not in restricted]


async def notify(
    session: AsyncSession, event: CloudEvent, *, settings: Settings, now: datetime
) -> int:
    """Apply the event's rule. Returns how many people were told. Repeats of the same event
    tell nobody twice (the deliveries' unique key, checked up front)."""
    org_id = event.org_id
    if org_id is None:
        return 0
    data = notice_data(event)
    if data is None:
        return 0
    if isinstance(data, CaseMessagePosted) and data.author != "reporter":
        return 0
    rule = await rule_for(session, org_id, event.type)
    if rule is None or not rule.recipients or not rule.channels:
        return 0
    kind = event.type.removeprefix("upstander.")
    params = notice_params(data)
    route = None
    case_id: uuid.UUID | None = None
    if kind.startswith("case."):
        if not isinstance(data, CaseEvent) or not data.number:
            return 0  # `case.restricted` (not a notice) has no number
        case_id = data.case_id
        route = await _route_of(session, data, org_id)
    people = await resolve_recipients(session, org_id, rule.recipients, data, route=route)
    if not people:
        return 0
    event_id = uuid.UUID(event.id)
    already = {
        (row.person_id, row.channel)
        for row in await session.execute(
            select(Delivery.person_id, Delivery.channel).where(Delivery.event_id == event_id)
        )
    }
    preferences = await effective_for(session, org_id, [p.id for p in people])
    preference_kind = kind_of(event.type)
    digest = event.type in DIGEST_TYPES
    batches = await _open_batches(session, org_id) if digest else {}
    window = timedelta(hours=settings.notify_digest_window_hours)
    link = link_for(kind, params, settings.app_base_url)
    rendered: dict[str, Rendered] = {}
    inbox_rows: list[dict[str, Any]] = []
    delivery_rows: list[dict[str, Any]] = []
    told: set[uuid.UUID] = set()

    def record(person: Recipient, channel: str, **values: Any) -> None:
        delivery_rows.append(
            {
                "id": uuid.uuid4(),
                "org_id": org_id,
                "event_id": event_id,
                "case_id": case_id,
                "person_id": person.id,
                "channel": channel,
                "kind": kind,
                "params": params,
                "digest": False,
                "attempts": 0,
                "sent_at": None,
                "next_attempt_at": None,
                "webhook_id": None,
                "recipient_hash": None,
                "error": None,
                "created_at": now,
                "updated_at": now,
                **values,
            }
        )

    for person in people:
        preference = preferences.get(person.id, DEFAULT_PREFERENCES)
        required = mandatory_for(person.roles).get(preference_kind or "", [])
        language = normalise_language(preference.language or person.language)
        for channel in rule.channels:
            if (person.id, channel) in already:
                continue
            if not (preference.wants(preference_kind, channel) or channel in required):
                continue
            if channel == Channel.INBOX:
                if language not in rendered:
                    rendered[language] = render(kind, language, params, link)
                message = rendered[language]
                inbox_rows.append(
                    {
                        "id": uuid.uuid4(),
                        "org_id": org_id,
                        "person_id": person.id,
                        "case_id": case_id,
                        "kind": kind,
                        "subject": message.subject[:SUBJECT_MAX],
                        "body": message.inbox_body[:BODY_MAX],
                        "link": link,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                record(person, channel, status=DeliveryStatus.SENT, attempts=1, sent_at=now)
                told.add(person.id)
            elif channel == Channel.EMAIL and person.has_email:
                if digest:
                    send_at = batches.get(person.id) or min(
                        preference.next_local(now, settings.notify_digest_hour), now + window
                    )
                    send_at = preference.quiet_until(send_at) or send_at
                    record(
                        person,
                        channel,
                        status=DeliveryStatus.BATCHED,
                        digest=True,
                        next_attempt_at=send_at,
                    )
                else:
                    quiet_end = None if rule.urgent else preference.quiet_until(now)
                    record(
                        person,
                        channel,
                        status=DeliveryStatus.PENDING,
                        next_attempt_at=quiet_end or now,
                    )
                told.add(person.id)
    if inbox_rows:
        await session.execute(insert(_table(InboxMessage)), inbox_rows)
    if delivery_rows:
        await session.execute(insert(_table(Delivery)), delivery_rows)
    await session.flush()
    return len(told)


def _table(model: type[Any]) -> Table:
    """The Core table: executemany without the ORM's per-row bookkeeping (the fan-out's
    hot path; every value is given, so no ORM defaults are missed)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


async def _open_batches(session: AsyncSession, org_id: uuid.UUID) -> dict[uuid.UUID, datetime]:
    """When each person's pending digest goes out: a new reminder joins it, so each person
    gets one digest a day however the reminders trickle in."""
    rows = await session.execute(
        select(Delivery.person_id, func.min(Delivery.next_attempt_at))
        .where(
            Delivery.org_id == org_id,
            Delivery.channel == Channel.EMAIL,
            Delivery.status == DeliveryStatus.BATCHED,
        )
        .group_by(Delivery.person_id)
    )
    return {person_id: at for person_id, at in rows if person_id is not None and at is not None}


# ----------------------------------------------------------------------------- reporters


def recipient_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


async def notify_reporter(
    session: AsyncSession, event: CloudEvent, *, mailer: Mailer, now: datetime
) -> bool:
    """A handler wrote to a confidential reporter who gave an email: send them the one fixed
    sentence, now, and keep no address (the log row holds its sha256 only). Anonymous
    reporters (no `reporter_notice`) hear nothing. Returns whether an email went out."""
    org_id = event.org_id
    if event.type != MESSAGE_POSTED or org_id is None:
        return False
    # The message as cases builds it (the shared contract): a malformed one is an InvalidEvent.
    posted = parse_event(event, CaseMessagePosted)
    notice = posted.reporter_notice
    if posted.author != "handler" or notice is None or notice.channel != "email":
        return False
    address = notice.address.strip()
    if "@" not in address or len(address) > 320 or any(c in address for c in "\r\n<>,;"):
        log.warning("reporter notice ignored: unusable address", extra={"event_id": event.id})
        return False
    hashed = recipient_hash(address)
    event_id = uuid.UUID(event.id)
    done = await session.scalar(
        select(Delivery.id).where(
            Delivery.event_id == event_id,
            Delivery.channel == Channel.EMAIL,
            Delivery.recipient_hash == hashed,
            Delivery.status == DeliveryStatus.SENT,
        )
    )
    if done is not None:
        return False
    language = normalise_language(notice.language)
    subject, sentence = REPORTER_NOTICE[language]
    delivery_id = uuid.uuid4()
    try:
        message = mailer.composer.compose(
            address, subject, sentence + "\n", None, f"{now:%Y%m%dT%H%M%S}-{delivery_id.hex}"
        )
        await mailer.send(message)
    except MailError as exc:
        log.warning(
            "reporter notice not sent; the event will be delivered again",
            extra={"event_id": event.id, "error": str(exc)},
        )
        raise MailUnavailable("The mail server is unavailable; try again later.") from None
    session.add(
        Delivery(
            id=delivery_id,
            org_id=org_id,
            event_id=event_id,
            person_id=None,
            recipient_hash=hashed,
            channel=Channel.EMAIL,
            kind="case.reporter_notice",
            params={},
            digest=False,
            status=DeliveryStatus.SENT,
            attempts=1,
            sent_at=now,
            created_at=now,
            updated_at=now,
        )
    )
    await session.flush()
    return True
