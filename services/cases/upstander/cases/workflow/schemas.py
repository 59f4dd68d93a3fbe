"""Request and response shapes of the workflow: transitions, updates, allegations, links."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field, model_validator

from upstander.cases.models import (
    CaseStatus,
    Finding,
    LinkKind,
    Outcome,
    Priority,
    ReferralTarget,
    Severity,
)
from upstander.kit.schemas import RequestModel, ResponseModel

TEXT_MAX = 10_000


class TransitionIn(RequestModel):
    """Move a case. `reason` is required to dismiss or reopen; `referred_to` to refer;
    `outcome` (and feedback sent to the reporter) to close."""

    to: CaseStatus = Field(examples=["triage"])
    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=TEXT_MAX,
        description="Why; sealed under the case's key.",
        examples=["Credible report, within scope."],
    )
    referred_to: ReferralTarget | None = Field(default=None, examples=[None])
    outcome: Outcome | None = Field(default=None, examples=[None])
    feedback_sent_at: datetime | None = Field(
        default=None,
        description=(
            "When feedback was given to the reporter outside the platform (in person, by "
            "phone); otherwise a message marked `is_feedback` counts."
        ),
        examples=[None],
    )

    @model_validator(mode="after")
    def _fields_match_the_target(self) -> TransitionIn:
        if self.referred_to is not None and self.to != CaseStatus.REFERRED:
            raise ValueError("referred_to is only for `to: referred`")
        if self.outcome is not None and self.to != CaseStatus.CLOSED:
            raise ValueError("outcome is only for `to: closed`")
        return self


class TransitionOut(ResponseModel):
    id: uuid.UUID = Field(examples=["3e1f0a52-8d0e-4b2c-a1f3-6c9f2f7e3d10"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    position: int = Field(description="1 for the case's first transition.", examples=[1])
    from_status: CaseStatus = Field(examples=["new"])
    to_status: CaseStatus = Field(examples=["triage"])
    actor_kind: str = Field(description="`person` or `client`.", examples=["person"])
    actor_id: str = Field(examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"])
    reason: str | None = Field(default=None, examples=["Credible report, within scope."])
    referred_to: ReferralTarget | None = Field(default=None, examples=[None])
    outcome: Outcome | None = Field(default=None, examples=[None])
    feedback_sent_at: datetime | None = Field(default=None, examples=[None])
    created_at: datetime = Field(examples=["2026-11-25T10:00:00Z"])


class TransitionList(ResponseModel):
    items: list[TransitionOut]


class CaseUpdate(RequestModel):
    """Severity and priority; send `If-Match` with the case's ETag."""

    severity: Severity | None = Field(default=None, examples=["high"])
    priority: Priority | None = Field(default=None, examples=["urgent"])

    @model_validator(mode="after")
    def _something(self) -> CaseUpdate:
        if not self.model_fields_set:
            raise ValueError("give severity and/or priority")
        if "priority" in self.model_fields_set and self.priority is None:
            raise ValueError("priority cannot be null")
        return self


class AllegationIn(RequestModel):
    category: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", examples=["sexual_harassment"]
    )
    description: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description="Sealed under the case's key.",
        examples=["Unwelcome comments at the field office on 20 November."],
    )
    subject_person_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=50,
        description=(
            "Directory ids of the people the allegation is about. They (and the people "
            "above them) can never see the case from then on. A person of another "
            "organisation is refused (422, naming the position in `errors`)."
        ),
        examples=[["9a1e2b7e-4c1e-4a59-8f5d-3c2e1a775f0c"]],
    )


class AllegationOut(ResponseModel):
    id: uuid.UUID = Field(examples=["c2d1e0a5-8d0e-4b2c-a1f3-6c9f2f7e3d10"])
    case_id: uuid.UUID = Field(examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"])
    category: str = Field(examples=["sexual_harassment"])
    description: str | None = Field(
        description="Null once the case's data was destroyed.",
        examples=["Comments about appearance at the field office."],
    )
    subject_person_ids: list[uuid.UUID]
    finding: Finding | None = Field(default=None, examples=[None])
    rationale: str | None = Field(default=None, examples=[None])
    finding_by_kind: str | None = Field(default=None, examples=[None])
    finding_by_id: str | None = Field(default=None, examples=[None])
    finding_at: datetime | None = Field(default=None, examples=[None])
    created_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])


class AllegationList(ResponseModel):
    items: list[AllegationOut]


class FindingIn(RequestModel):
    finding: Finding = Field(examples=["substantiated"])
    rationale: str = Field(
        min_length=1,
        max_length=TEXT_MAX,
        description="Sealed under the case's key.",
        examples=["Two witnesses corroborate the account."],
    )


class LinkIn(RequestModel):
    case_id: uuid.UUID = Field(
        description="The other case.", examples=["7a2b6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"]
    )
    kind: LinkKind = Field(examples=["same_subject"])


class LinkOut(ResponseModel):
    id: uuid.UUID = Field(examples=["7d0f5a52-4f0e-4a55-9d43-2b7b3c1c9e10"])
    kind: LinkKind = Field(examples=["same_subject"])
    case_id: uuid.UUID = Field(
        description="The other case.", examples=["5f0c6a8e-2b7e-4c1e-9a59-0f5d3c2e1a77"]
    )
    number: str = Field(description="The other case's number.", examples=["DEMO-2026-0007"])
    created_at: datetime = Field(examples=["2026-11-24T10:00:00Z"])


class LinkList(ResponseModel):
    items: list[LinkOut]
