"""The kit's reading of external references, shared by the gateway (people), cases and training
(courses, completions)."""

from __future__ import annotations

import pytest

from upstander.kit.errors import BadRequest, Conflict
from upstander.kit.external_refs import one_per_system, parse_external_ref


def test_a_reference_is_a_lower_case_system_and_an_id() -> None:
    assert parse_external_ref("Workday:E-1042") == ("workday", "E-1042")
    assert parse_external_ref(" workday : E:1 ") == ("workday", "E:1")


@pytest.mark.parametrize("value", ["", "workday", "workday:", ":E-1042", " :E-1042", "workday: "])
def test_anything_else_is_a_400(value: str) -> None:
    with pytest.raises(BadRequest):
        parse_external_ref(value)


def test_two_references_in_one_system_are_a_409() -> None:
    one_per_system(["workday", "greenhouse"])
    with pytest.raises(Conflict):
        one_per_system(iter(["workday", "workday"]))
