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
    case_id: uuid.UUID
    person_id: uuid.UUID
    role: AssignmentRole = Field(examples=["investigator"])
    assigned_by: str
    created_at: datetime


class AssignmentList(ResponseModel):
    items: list[AssignmentOut]


class RecusalOut(ResponseModel):
    case_id: uuid.UUID
    person_id: uuid.UUID
    recused_at: datetime


class ShareIn(RequestModel):
    person_id: uuid.UUID = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])


class ShareOut(ResponseModel):
    id: uuid.UUID
    case_id: uuid.UUID
    person_id: uuid.UUID
    shared_by: str
    created_at: datetime
