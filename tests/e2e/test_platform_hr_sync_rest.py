"""The rest of HR sync through the gateway: an HR system opens a case it took by phone
(idempotent on its reference), the example sync client mirrors it and drops it when its
tombstone arrives, the report needs `cases:content`, and an LMS upserts courses and
completions by reference."""

from __future__ import annotations

import uuid

from harness import Platform, load_example
from sqlalchemy import select

from upstander.cases.models import Case
from upstander.cases.retention.service import delete_case

SCOPES = ["cases:read", "cases:write", "training:read", "training:write"]


async def test_an_hr_system_opens_a_case_syncs_it_and_hears_of_its_deletion(
    platform: Platform,
) -> None:
    hr_sync = load_example("hr_sync")
    ref = f"E-{uuid.uuid4().hex[:8]}"
    body = {
        "external_ref": {"system": "workday", "id": ref},
        "mode": "anonymous",
        "categories": ["sexual_harassment"],
        "description": "Reported by phone to HR.",
    }
    async with await platform.api_client(SCOPES, "Workday") as http:
        state: dict = {"cursor": None, "cases": {}}
        await hr_sync.sync(http, state)

        opened = await http.post("/cases/v1/cases", json=body)
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]
        assert opened.json()["case"]["status"] == "new"
        again = await http.post("/cases/v1/cases", json=body)
        assert again.status_code == 200 and again.json()["id"] == case_id
        invalid = await http.post("/cases/v1/cases", json={**body, "categories": []})
        assert invalid.status_code == 422
        assert invalid.headers["content-type"].startswith("application/problem+json")

        assert await hr_sync.sync(http, state) == 1
        assert state["cases"][case_id]["external_refs"] == [{"system": "workday", "id": ref}]
        content = await http.get("/cases/v1/changes", params={"include": "report"})
        assert content.status_code == 403  # no `cases:content`

        cases_app = platform.apps["cases"]
        async with cases_app.state.sessionmaker() as session:
            case = await session.scalar(select(Case).where(Case.id == uuid.UUID(case_id)))
            assert case is not None
            await delete_case(session, case, vault=cases_app.state.vault, now=platform.clock.now())
            await session.commit()
        feed = await http.get("/cases/v1/changes", params={"cursor": state["cursor"]})
        assert [(i["case_id"], i["change"]) for i in feed.json()["items"]] == [(case_id, "deleted")]
        assert await hr_sync.sync(http, state) == 1
        assert case_id not in state["cases"]


async def test_an_lms_upserts_courses_and_completions_by_reference(platform: Platform) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    course = {
        "title": "Bystander intervention",
        "kind": "bystander_intervention",
        "duration_minutes": 60,
        "external_refs": [{"system": "cornerstone", "id": ref}],
    }
    async with await platform.api_client(SCOPES, "Workday") as http:
        first = await http.post("/training/v1/courses", json=course)
        assert first.status_code == 201, first.text
        second = await http.post("/training/v1/courses", json={**course, "duration_minutes": 90})
        assert second.status_code == 200, second.text
        assert second.json()["id"] == first.json()["id"]
        assert second.json()["duration_minutes"] == 90
        found = await http.get(
            "/training/v1/courses", params={"external_ref": f"cornerstone:{ref}"}
        )
        assert [c["id"] for c in found.json()["items"]] == [first.json()["id"]]
