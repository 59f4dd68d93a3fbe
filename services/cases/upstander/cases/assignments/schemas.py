"""Request and response shapes of assignments, recusals and shares."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from upstander.cases.models import AssignmentRole
from upstander.kit.schemas import RequestModel, ResponseModel


class AssignmentIn(RequestModel):
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    role: AssignmentRole = Field(examples=["investigator"])


class AssignmentOut(ResponseModel):
    id: uuid.UUID = Field(examples=["0d9c8f0e-6b1a-4f55-9a3e-2d7c5b4a3f21"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    role: AssignmentRole = Field(examples=["investigator"])
    assigned_by: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    created_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])


class AssignmentList(ResponseModel):
    items: list[AssignmentOut]


class RecusalOut(ResponseModel):
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    recused_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])


class ShareIn(RequestModel):
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])


class ShareOut(ResponseModel):
    id: uuid.UUID = Field(examples=["7d0f5a52-4f0e-4a55-9d43-2b7b3c1c9e10"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    shared_by: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    created_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])
