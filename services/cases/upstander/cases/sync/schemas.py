"""Request and response bodies of HR sync: external references and the change feed."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from upstander.cases.models import CaseStatus
from upstander.kit.schemas import RequestModel, ResponseModel

SYSTEM_PATTERN = r"^[a-z0-9][a-z0-9_.\-]{0,63}$"


class ExternalRefIn(RequestModel):
    system: str = Field(
        pattern=SYSTEM_PATTERN,
        description="The other system's name (lower case), e.g. `workday`.",
        examples=["workday"],
    )
    id: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\s]+$",
        description="What the other system calls the case.",
        examples=["E-1042"],
    )


class ExternalRefOut(ResponseModel):
    system: str = Field(examples=["workday"])
    id: str = Field(examples=["E-1042"])


class ChangeOut(ResponseModel):
    """One committed change to a case: ids and metadata only, never content. Fetch the case
    (`GET /cases/v1/cases/{case_id}`) for the rest."""

    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    number: str = Field(examples=["DEMO-2026-0001"])
    change: Literal["created", "updated"] = Field(
        description="`created`: the case opened; `updated`: its state, assignments or "
        "external references changed.",
        examples=["updated"],
    )
    changed_at: datetime | None = Field(
        default=None,
        description="When it changed; null for `created` (an anonymous reporter's timing "
        "is never given out).",
        examples=["2026-11-30T10:00:00Z"],
    )
    status: CaseStatus = Field(description="The case's status now.", examples=["triage"])
    version: int = Field(description="The case's version now (its ETag).", examples=[3])
    external_refs: list[ExternalRefOut] = Field(default_factory=list)


class ChangePage(ResponseModel):
    items: list[ChangeOut]
    next_cursor: str = Field(
        description="Pass back as `cursor` to read on from here; keep it between syncs (it "
        "never expires). Equal to the one sent when there was nothing new.",
        examples=["WyJjYXNlLWNoYW5nZXMiLCA0Ml0"],
    )
    has_more: bool = Field(
        description="More changes are ready now: call again at once.", examples=[False]
    )
