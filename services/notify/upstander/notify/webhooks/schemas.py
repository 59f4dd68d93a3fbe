"""Request and response models of the webhook admin API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, AwareDatetime, Field, StringConstraints, field_validator

from upstander.kit.schemas import RequestModel, ResponseModel

# Tries shown per delivery in the delivery log (ten make a full retry schedule).
ATTEMPTS_SHOWN = 50

EventPattern = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=r"^[a-z0-9_.*?\[\]-]+$")
]


# Event kinds that never leave the platform (notify forwards only case, training, policy and
# person events: webhooks.service.FORWARDED_PREFIXES).
NEVER_FORWARDED_PREFIXES = ("upstander.org.", "upstander.report.", "upstander.access.")


class _EventTypes(RequestModel):
    @field_validator("event_types", check_fields=False)
    @classmethod
    def _forwardable(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        for pattern in value:
            # People's events are forwarded (ids only: HR systems sync on them); an
            # organisation's and reports' never are.
            if pattern.startswith(NEVER_FORWARDED_PREFIXES):
                raise ValueError(f"{pattern!r}: organisation, report and access events stay in")
            if pattern == "upstander.case.restricted":
                # It names the people a case is hidden from; it never leaves the platform.
                raise ValueError(f"{pattern!r} is not forwarded")
        return sorted(set(value))


class WebhookCreate(_EventTypes):
    url: AnyHttpUrl = Field(examples=["https://hr.example.com/hooks/upstander"])
    event_types: list[EventPattern] = Field(
        min_length=1,
        max_length=50,
        examples=[["upstander.case.*", "upstander.training.completed", "upstander.person.*"]],
        description="Event types to receive; `*` and `?` match like shell patterns.",
    )
    description: str = Field("", max_length=500, examples=["HR case system"])


class WebhookUpdate(_EventTypes):
    url: AnyHttpUrl | None = None
    event_types: list[EventPattern] | None = Field(None, min_length=1, max_length=50)
    description: str | None = Field(None, max_length=500)
    active: bool | None = Field(
        None, description="Re-enable (true) or pause (false); re-enabling clears the failure."
    )


class WebhookOut(ResponseModel):
    id: uuid.UUID
    owner_person_id: uuid.UUID | None = Field(
        None,
        description=(
            "Who the endpoint acts for: the person who registered or last changed it (for an "
            "API client, the client's owner). Case events reach it only for cases this person "
            "may see; without an owner it gets no case events (update it to claim it)."
        ),
        examples=["6f1c2d1e-8a7b-4c3d-9e0f-1a2b3c4d5e6f"],
    )
    url: str = Field(examples=["https://hr.example.com/hooks/upstander"])
    description: str
    event_types: list[str]
    active: bool
    disabled_reason: str | None = Field(examples=[None])
    failure_since: datetime | None = Field(examples=[None])
    previous_secret_expires_at: datetime | None = Field(
        None, description="While set and in the future, messages are signed with both secrets."
    )
    created_at: datetime
    updated_at: datetime


class WebhookWithSecret(WebhookOut):
    secret: str = Field(
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        description="Shown once; verify signatures with it.",
    )


class SecretRotated(ResponseModel):
    secret: str = Field(description="The new secret; shown once.")
    previous_secret_expires_at: datetime = Field(
        description="Until then messages carry signatures under both secrets."
    )


class WebhookDeliveryAttemptOut(ResponseModel):
    """One try of a delivery."""

    number: int = Field(
        examples=[1], description="1 for the first try; replays go on counting from the last."
    )
    attempted_at: datetime = Field(
        examples=["2026-11-27T16:00:00Z"],
        description="When the request left; its `webhook-timestamp`.",
    )
    response_code: int | None = Field(examples=[500], description="None when nothing answered.")
    latency_ms: int | None = Field(examples=[231])
    error: str | None = Field(
        examples=["HTTP 500"],
        description=(
            "None for a 2xx; else `HTTP <code>`, the kind of network error (`ConnectTimeout`, "
            "`ReadTimeout`...), or `target not allowed`."
        ),
    )


class WebhookDeliveryOut(ResponseModel):
    id: uuid.UUID
    message_id: str = Field(examples=["msg_2f1c..."], description="The `webhook-id` header.")
    event_id: uuid.UUID
    event_type: str = Field(examples=["upstander.case.opened"])
    status: str = Field(examples=["sent"], description="pending, failed (will retry), sent, dead")
    attempts: int
    response_code: int | None
    latency_ms: int | None
    error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    attempts_log: list[WebhookDeliveryAttemptOut] = Field(
        default_factory=list,
        max_length=ATTEMPTS_SHOWN,
        description=(
            f"Its tries, oldest first (the latest {ATTEMPTS_SHOWN}); the fields above are the "
            "latest state. `attempts` counts the tries since the delivery was last replayed."
        ),
    )


class ReplayRequest(RequestModel):
    since: AwareDatetime = Field(examples=["2026-11-27T00:00:00Z"])
    include_sent: bool = Field(
        False,
        description=(
            "Also resend deliveries that succeeded (default: dead letters and deliveries "
            "waiting for their next retry)."
        ),
    )


class ReplayResult(ResponseModel):
    replayed: int = Field(examples=[3])
