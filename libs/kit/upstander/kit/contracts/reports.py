"""Contracts of intake's report events (published by intake, consumed by cases). Both are
sealed in the outbox (`upstander.kit.catalogue.SENSITIVE_TYPES`): they carry what a reporter
wrote. Bounds are intake's form limits with room to spare: a report refused here is a report
dead-lettered, so they only stop absurd payloads."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any, Literal

from pydantic import Field, model_serializer
from pydantic.functional_serializers import SerializerFunctionWrapHandler

from upstander.kit.contracts.base import EventData, EventTime, Part
from upstander.kit.contracts.registry import contract

ReportMode = Literal["anonymous", "confidential", "identified"]


class PersonInvolved(Part):
    """Someone the report names as involved: a directory person, a free-text name, or both."""

    person_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=2000)
    role: str | None = Field(default=None, max_length=200, examples=["subject"])


class Witness(Part):
    person_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=2000)


class Reporter(Part):
    """Who reported: `{name, contact}` for a confidential report, `{person_id}` for an
    identified one (anonymous reports have none). Only the keys given are written."""

    person_id: uuid.UUID | None = None
    name: str | None = Field(default=None, max_length=2000)
    contact: str | None = Field(default=None, max_length=2000)

    @model_serializer(mode="wrap")
    def _without_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return {key: value for key, value in handler(self).items() if value is not None}


class AttachmentMeta(Part):
    """A file's metadata; its bytes stay in intake (cases fetches them)."""

    attachment_id: uuid.UUID
    filename: str | None = Field(default=None, max_length=2000)
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, ge=0)


@contract("upstander.report.submitted", 1)
class ReportSubmitted(EventData):
    """A report was submitted: everything the reporter wrote and gave. Cases opens its case."""

    model_config = EventData.model_config | {"str_max_length": 200_000}

    report_id: uuid.UUID
    org_id: uuid.UUID | None = None
    org_slug: str | None = Field(default=None, max_length=200)
    mode: ReportMode = "anonymous"
    submitted_at: EventTime | None = Field(
        default=None, description="The hour only for anonymous and confidential reports."
    )
    language: str | None = Field(default=None, max_length=35)
    categories: list[str] = Field(default_factory=list, max_length=100)
    description: str | None = None
    occurred_at: date | None = None
    location: str | None = Field(default=None, max_length=2000)
    people_involved: list[PersonInvolved] = Field(default_factory=list, max_length=1000)
    witnesses: list[Witness] = Field(default_factory=list, max_length=1000)
    desired_outcome: str | None = None
    excluded_person_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    reporter: Reporter | None = None
    attachments: list[AttachmentMeta] = Field(default_factory=list, max_length=1000)
    linked_report_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=100,
        description=(
            "Reports released from the same escrow match before this one (docs/escrow.md): "
            "cases links their cases to this one (`same_subject`)."
        ),
    )
    recorded_at: EventTime | None = Field(
        default=None,
        description=(
            "For a report made from a private record: the signed time of the record's first "
            "entry (the reporter holds its proof)."
        ),
    )

    @model_serializer(mode="wrap")
    def _without_unused(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Only reports from the escrow or a private record carry these: other reports'
        # data stays as it always was.
        data: dict[str, Any] = handler(self)
        if not data.get("linked_report_ids"):
            data.pop("linked_report_ids", None)
        if data.get("recorded_at") is None:
            data.pop("recorded_at", None)
        return data


@contract("upstander.report.attachment_added", 1)
class AttachmentAdded(EventData):
    """The reporter added a file after submitting: its metadata, never its bytes."""

    report_id: uuid.UUID
    org_id: uuid.UUID | None = None
    attachment_id: uuid.UUID
    filename: str | None = Field(default=None, max_length=2000)
    content_type: str | None = Field(default=None, max_length=200)
    size: int | None = Field(default=None, ge=0)

    @property
    def attachment(self) -> AttachmentMeta:
        return AttachmentMeta(
            attachment_id=self.attachment_id,
            filename=self.filename,
            content_type=self.content_type,
            size=self.size,
        )
