"""Response models of compliance views."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from upstander.kit.schemas import ResponseModel
from upstander.training.compliance.engine import Status


class ComplianceItem(ResponseModel):
    kind: Literal["course", "policy"] = Field(examples=["course"])
    title: str = Field(examples=["California SB 1343: supervisors"])
    status: Status = Field(examples=["due"])
    due_at: datetime | None = Field(
        examples=["2026-09-01T00:00:00Z"],
        description="Deadline (due, overdue) or when the completion lapses (compliant, expired).",
    )
    completed_at: datetime | None = Field(examples=[None])
    expires_at: datetime | None = Field(examples=[None])
    requirement_id: uuid.UUID | None = None
    course_id: uuid.UUID | None = None
    policy_id: uuid.UUID | None = None
    policy_version: int | None = None


class PersonSummary(ResponseModel):
    id: uuid.UUID
    name: str = Field(examples=["Dana Field"])
    email: str = Field(examples=["dana@demo.example"])
    roles: list[str] = Field(examples=[["staff"]])
    location: str | None = Field(examples=["CA"])
    manager_id: uuid.UUID | None = None
    is_leadership: bool
    is_supervisor: bool


class PersonCompliance(ResponseModel):
    person: PersonSummary
    status: Status = Field(examples=["overdue"], description="The worst of the items.")
    items: list[ComplianceItem]


class CompliancePage(ResponseModel):
    items: list[PersonCompliance]
    next_cursor: str | None = None


class ComplianceGroup(ResponseModel):
    key: str = Field(examples=["CA"])
    label: str = Field(examples=["CA"])
    people: int = Field(examples=[12])
    people_compliant: int = Field(examples=[9], description="People with nothing due.")
    items: dict[str, int] = Field(
        examples=[{"compliant": 20, "due": 3, "overdue": 1, "expired": 0, "exempt": 0}]
    )


class ComplianceSummary(ResponseModel):
    as_of: datetime
    org: list[ComplianceGroup]
    role: list[ComplianceGroup]
    location: list[ComplianceGroup]
    team: list[ComplianceGroup] = Field(description="Grouped by direct manager.")
