"""Response models of the people projection."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import Field

from upstander.kit.schemas import ResponseModel


class PersonOut(ResponseModel):
    id: uuid.UUID = Field(examples=["2c1d0e9f-8a7b-4c3d-9e0f-1a2b3c4d5e6f"])
    org_id: uuid.UUID
    email: str = Field(examples=["field.organiser@demo.example"])
    name: str = Field(examples=["Dana Field"])
    roles: list[str] = Field(examples=[["staff"]])
    manager_id: uuid.UUID | None = None
    is_leadership: bool = Field(examples=[False])
    is_supervisor: bool = Field(
        examples=[True], description="Someone reports to them, or their role says so."
    )
    supervisor_since: datetime | None = None
    start_date: date | None = Field(default=None, examples=["2026-03-01"])
    location: str | None = Field(default=None, examples=["CA"])
    active: bool = Field(examples=[True])
