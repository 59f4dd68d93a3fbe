"""Request and response bodies of the identity API (orgs, people, API clients)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from upstander.kit.auth import Role
from upstander.kit.external_refs import SYSTEM_PATTERN
from upstander.kit.schemas import RequestModel, ResponseModel
from upstander.kit.scopes import Scope

EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class Language(StrEnum):
    EN = "en"
    ES = "es"


class ClientKind(StrEnum):
    CLIENT = "client"
    SERVICE = "service"


# --- orgs -------------------------------------------------------------------------------------


class OrgOut(ResponseModel):
    id: uuid.UUID = Field(examples=["7b0c3f0e-6a53-4b55-9a55-3f5f0c8f2a10"])
    slug: str = Field(examples=["demo"])
    name: str = Field(examples=["Demo Campaign"])
    active: bool = Field(examples=[True])
    created_at: datetime
    updated_at: datetime


class OrgUpdate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["Smith for Senate"])


# --- people -----------------------------------------------------------------------------------

REFS_DESCRIPTION = (
    "What other systems (an HR system, a payroll) call the person, unique per organisation "
    "and system, one per system."
)


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
        description="What the other system calls the person.",
        examples=["E-1042"],
    )


class ExternalRefOut(ResponseModel):
    system: str = Field(examples=["workday"])
    id: str = Field(validation_alias="external_id", examples=["E-1042"])


def _by_system(refs: list[ExternalRefOut]) -> list[ExternalRefOut]:
    return sorted(refs, key=lambda ref: ref.system)


# What responses carry, ordered by system.
RefsOut = Annotated[list[ExternalRefOut], AfterValidator(_by_system)]
REFS_EXAMPLE = [{"system": "workday", "id": "E-1042"}]


class PersonCreate(RequestModel):
    email: str = Field(max_length=320, pattern=EMAIL_PATTERN, examples=["ana@campaign.example"])
    name: str = Field(min_length=1, max_length=200, examples=["Ana Ruiz"])
    title: str | None = Field(default=None, max_length=200, examples=["Field Organizer"])
    roles: list[Role] = Field(
        default_factory=lambda: [Role.STAFF], max_length=8, examples=[["staff"]]
    )
    manager_id: uuid.UUID | None = Field(
        default=None, description="The person's manager, in the same organisation."
    )
    is_leadership: bool = Field(default=False, examples=[False])
    start_date: date | None = Field(default=None, examples=["2026-03-01"])
    location: str | None = Field(
        default=None,
        max_length=64,
        description="Work location, e.g. a US state code.",
        examples=["CA"],
    )
    language: Language = Field(default=Language.EN, examples=["en"])
    password: str | None = Field(
        default=None,
        min_length=8,
        max_length=256,
        description="Optional; without one the person cannot use the password grant.",
        examples=["a long passphrase"],
    )
    external_refs: list[ExternalRefIn] = Field(
        default_factory=list,
        max_length=10,
        description=REFS_DESCRIPTION
        + " Sending a reference that already names one of your people updates that person "
        "with the fields sent (as a PATCH would; never the password) instead of adding "
        "another (200 instead of 201): an HR sync can be re-run without duplicates. "
        "References naming two different people: 409.",
        examples=[REFS_EXAMPLE],
    )


_NOT_NULLABLE = (
    "email",
    "name",
    "roles",
    "is_leadership",
    "language",
    "active",
    "external_refs",
)


class PersonUpdate(RequestModel):
    """Only the fields sent are changed. Send `If-Match` with the ETag to avoid lost updates."""

    email: str | None = Field(
        default=None, max_length=320, pattern=EMAIL_PATTERN, examples=["ana@campaign.example"]
    )
    name: str | None = Field(default=None, min_length=1, max_length=200, examples=["Ana Ruiz"])
    title: str | None = Field(default=None, max_length=200, examples=["Regional Director"])
    roles: list[Role] | None = Field(default=None, max_length=8, examples=[["staff", "trainer"]])
    manager_id: uuid.UUID | None = None
    is_leadership: bool | None = Field(default=None, examples=[True])
    start_date: date | None = None
    location: str | None = Field(default=None, max_length=64, examples=["NY"])
    language: Language | None = Field(default=None, examples=["es"])
    active: bool | None = Field(default=None, examples=[True])
    password: str | None = Field(default=None, min_length=8, max_length=256)
    external_refs: list[ExternalRefIn] | None = Field(
        default=None,
        max_length=10,
        description=REFS_DESCRIPTION
        + " The list sent replaces the person's (a system left out loses its reference; "
        "`[]` removes them all). A reference naming another person: 409.",
        examples=[REFS_EXAMPLE],
    )

    @model_validator(mode="before")
    @classmethod
    def _no_null_for_required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in _NOT_NULLABLE:
                if name in data and data[name] is None:
                    raise ValueError(f"'{name}' cannot be null")
        return data


class PersonOut(ResponseModel):
    id: uuid.UUID = Field(examples=["0d6b6f43-2c0e-4b8f-8f0e-2a3c6bb1a9a1"])
    org_id: uuid.UUID
    email: str = Field(examples=["ana@campaign.example"])
    name: str = Field(examples=["Ana Ruiz"])
    title: str | None = Field(default=None, examples=["Field Organizer"])
    roles: list[str] = Field(examples=[["staff"]])
    manager_id: uuid.UUID | None = None
    is_leadership: bool = Field(examples=[False])
    start_date: date | None = None
    location: str | None = Field(default=None, examples=["CA"])
    language: str = Field(examples=["en"])
    active: bool = Field(examples=[True])
    has_password: bool = Field(examples=[True])
    external_refs: RefsOut = Field(
        default_factory=list,
        description="What other systems call the person (SCIM's `externalId` is apart).",
        examples=[REFS_EXAMPLE],
    )
    version: int = Field(description="Also the ETag.", examples=[1])
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _from_row(cls, data: Any) -> Any:
        if hasattr(data, "password_hash"):
            return {
                **{name: getattr(data, name) for name in cls.model_fields if hasattr(data, name)},
                "has_password": data.password_hash is not None,
            }
        return data


# --- API clients ------------------------------------------------------------------------------


class ClientCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200, examples=["HR system sync"])
    scopes: list[Scope] = Field(
        default_factory=list,
        max_length=32,
        description="What the client may do: scopes of the catalogue (docs/auth.md), never "
        "more than the registering admin holds (403 otherwise).",
        examples=[["people:read", "people:write"]],
    )
    roles: list[Role] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"deprecated": True},
        description="Deprecated: grant `scopes`. Each role adds the scopes it maps to "
        "(docs/auth.md); a client with roles also sees only the cases those roles open.",
        examples=[[]],
    )


class ClientOut(ResponseModel):
    id: uuid.UUID
    org_id: uuid.UUID | None
    client_id: str = Field(examples=["cl_5Yk2m9QeT0x1"])
    name: str = Field(examples=["HR system sync"])
    scopes: list[str] = Field(examples=[["cases:read", "training:write"]])
    roles: list[str] = Field(examples=[["hr_integration"]])
    kind: ClientKind = Field(examples=["client"])
    active: bool = Field(examples=[True])
    created_by: uuid.UUID | None = Field(
        default=None,
        description=(
            "The person who registered the client. Its tokens act within what this person may "
            "see: a case hidden from them is hidden from the client. Null for clients "
            "registered by the platform, which see no case content."
        ),
        examples=["2b7e4c1e-9a59-4f5d-8c2e-1a775f0c6a8e"],
    )
    created_at: datetime
    updated_at: datetime


class ClientCreated(ClientOut):
    client_secret: str = Field(
        description="Shown once; only its hash is stored.",
        examples=["p0Y1mK3c...kept-secret"],
    )


# --- the organisations API (platform operators; identity/orgs.py) ------------------------------

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"


class AdminInvite(RequestModel):
    """The person invited to administer an organisation: they set their own password by the
    one-time link."""

    email: str = Field(max_length=320, pattern=EMAIL_PATTERN, examples=["chair@smith2026.example"])
    name: str = Field(min_length=1, max_length=200, examples=["Robin Chair"])
    language: Language = Field(default=Language.EN, examples=["en"])


class OrgCreate(RequestModel):
    slug: str = Field(
        min_length=1,
        max_length=64,
        pattern=SLUG_PATTERN,
        description="Lowercase letters, digits and dashes; names the organisation at sign-in "
        "(`org`) and in the reporter's page (`/r/{slug}`). Never changes.",
        examples=["smith-2026"],
    )
    name: str = Field(min_length=1, max_length=200, examples=["Smith for Senate 2026"])
    admin: AdminInvite = Field(description="The organisation's first admin.")


class InvitationOut(ResponseModel):
    person_id: uuid.UUID = Field(examples=["5f0a3c1e-2b7d-4e8f-9a6b-1c2d3e4f5a6b"])
    email: str = Field(examples=["chair@smith2026.example"])
    url: str = Field(
        description="The one-time link to send the person: it sets their password once, then "
        "stops working; it expires at `expires_at`. Shown once, only its hash is stored.",
        examples=["https://api.upstander.example/invite#token=q3J5...Xw"],
    )
    expires_at: datetime


class OrgCreated(OrgOut):
    invitation: InvitationOut = Field(description="The first admin's one-time link.")


class InvitationAccept(RequestModel):
    token: str = Field(
        min_length=16,
        max_length=200,
        description="The `token` of the invitation link (after `#token=`).",
        examples=["q3J5k0vQ...Xw"],
    )
    password: str = Field(min_length=8, max_length=256, examples=["a long passphrase"])


class InvitationAccepted(ResponseModel):
    org: str = Field(
        description="The organisation's slug, for `org` at sign-in.", examples=["smith-2026"]
    )
    email: str = Field(examples=["chair@smith2026.example"])
    person_id: uuid.UUID
