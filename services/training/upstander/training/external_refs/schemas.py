"""External references in request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from upstander.kit.external_refs import SYSTEM_PATTERN
from upstander.kit.schemas import RequestModel, ResponseModel


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
        description="What the other system calls it.",
        examples=["C-17"],
    )


class ExternalRefOut(ResponseModel):
    system: str = Field(examples=["workday"])
    id: str = Field(validation_alias="external_id", examples=["C-17"])


def _by_system(refs: list[ExternalRefOut]) -> list[ExternalRefOut]:
    return sorted(refs, key=lambda ref: ref.system)


# What responses carry, ordered by system.
RefsOut = Annotated[list[ExternalRefOut], AfterValidator(_by_system)]


def refs_field() -> list[ExternalRefIn]:
    return Field(  # type: ignore[no-any-return]
        default_factory=list,
        max_length=10,
        description=(
            "What other systems call it, unique per organisation and system. Sending a "
            "reference that already names one of yours updates that one instead of adding "
            "another (200 instead of 201): a sync can be re-run without duplicates."
        ),
        examples=[[{"system": "workday", "id": "C-17"}]],
    )
