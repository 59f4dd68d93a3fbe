"""`Idempotency-Key`: a retried write is answered from the first response, never done twice."""

from __future__ import annotations

import uuid

from harness import Platform


async def test_a_retried_person_create_is_replayed_not_repeated(platform: Platform) -> None:
    admin = await platform.auth("admin@demo.example")
    key = {"idempotency-key": uuid.uuid4().hex}
    body = {"email": f"retry-{uuid.uuid4().hex[:8]}@demo.example", "name": "Retry Person"}

    first = await platform.gateway.post("/identity/v1/people", json=body, headers={**admin, **key})
    again = await platform.gateway.post("/identity/v1/people", json=body, headers={**admin, **key})

    assert first.status_code == 201, first.text
    assert again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    listing = await platform.gateway.get(
        f"/identity/v1/people?email={body['email']}", headers=admin
    )
    assert len(listing.json()["items"]) == 1


async def test_the_same_key_with_another_request_is_refused(platform: Platform) -> None:
    admin = await platform.auth("admin@demo.example")
    key = {"idempotency-key": uuid.uuid4().hex}
    first = await platform.gateway.post(
        "/identity/v1/people",
        json={"email": f"a-{uuid.uuid4().hex[:8]}@demo.example", "name": "A"},
        headers={**admin, **key},
    )
    other = await platform.gateway.post(
        "/identity/v1/people",
        json={"email": f"b-{uuid.uuid4().hex[:8]}@demo.example", "name": "B"},
        headers={**admin, **key},
    )
    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")


async def test_keys_belong_to_their_caller(platform: Platform) -> None:
    """Another caller's key is a new key: nobody reads someone else's stored response."""
    manager = await platform.auth("case_manager@demo.example")
    trainer = await platform.auth("trainer@demo.example")
    key = {"idempotency-key": uuid.uuid4().hex}
    course = {"title": f"Course {uuid.uuid4().hex[:6]}", "kind": "other", "duration_minutes": 30}
    as_trainer = await platform.gateway.post(
        "/training/v1/courses", json=course, headers={**trainer, **key}
    )
    as_manager = await platform.gateway.post(
        "/training/v1/courses", json=course, headers={**manager, **key}
    )
    assert as_trainer.status_code == 201
    assert as_manager.status_code == 403  # judged afresh, not replayed
    assert "idempotent-replayed" not in as_manager.headers
