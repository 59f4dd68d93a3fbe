"""The in-app inbox: a person sees, counts and reads their own messages, nobody else's."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from upstander.notify.inbox.service import deliver_inbox_message

PATH = "/notify/v1/inbox"
START = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


async def deliver(app: Any, org_id: uuid.UUID, person_id: uuid.UUID, count: int = 1, **kw: Any):
    """Seed messages the way event handlers will: through the service function."""
    ids = []
    async with app.state.sessionmaker() as session:
        for number in range(count):
            message = await deliver_inbox_message(
                session,
                org_id,
                person_id,
                kw.get("kind", "case.assigned"),
                f"Message {number}",
                "A case was assigned to you.",
                f"/cases/v1/cases/{uuid.uuid4()}",
                now=START + timedelta(minutes=number),
            )
            ids.append(str(message.id))
        await session.commit()
    return ids


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()


async def test_a_person_lists_only_their_own_messages_newest_first(app, client, caller):
    me = caller("staff")
    colleague = caller("staff", org=me.org_id)
    stranger = caller("staff")
    mine = await deliver(app, me.org_id, me.person_id, 3)
    await deliver(app, me.org_id, colleague.person_id, 2)
    await deliver(app, stranger.org_id, me.person_id, 2)  # same person id, another org

    response = await client.get(PATH, headers=me.headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert [m["id"] for m in page["items"]] == list(reversed(mine))
    assert page["items"][0]["subject"] == "Message 2"
    assert page["items"][0]["read_at"] is None
    assert page["items"][0]["created_at"].startswith("2025-01-15T09:02:00")
    assert page["next_cursor"] is None


async def test_the_inbox_pages_with_a_cursor(app, client, caller):
    me = caller("staff")
    mine = await deliver(app, me.org_id, me.person_id, 5)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await client.get(PATH, params=params, headers=me.headers)).json()
        seen += [m["id"] for m in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert seen == list(reversed(mine))


async def test_unread_count_and_mark_read(app, client, caller):
    me = caller("investigator")
    first, second, third = await deliver(app, me.org_id, me.person_id, 3)
    await deliver(app, me.org_id, uuid.uuid4(), 4)  # someone else's

    count = await client.get(f"{PATH}/unread-count", headers=me.headers)
    assert count.status_code == 200
    assert count.json() == {"unread": 3}

    read = await client.post(f"{PATH}/{second}/read", headers=me.headers)
    assert read.status_code == 200, read.text
    read_at = read.json()["read_at"]
    assert read_at is not None
    again = await client.post(f"{PATH}/{second}/read", headers=me.headers)
    assert again.json()["read_at"] == read_at  # idempotent: the first read stands

    assert (await client.get(f"{PATH}/unread-count", headers=me.headers)).json() == {"unread": 2}
    unread = (await client.get(PATH, params={"unread_only": True}, headers=me.headers)).json()
    assert [m["id"] for m in unread["items"]] == [third, first]


async def test_read_all_marks_only_the_callers_messages(app, client, caller):
    me = caller("staff")
    colleague = caller("staff", org=me.org_id)
    await deliver(app, me.org_id, me.person_id, 3)
    await deliver(app, me.org_id, colleague.person_id, 2)

    response = await client.post(f"{PATH}/read-all", headers=me.headers)
    assert response.status_code == 200, response.text
    assert response.json() == {"marked_read": 3}
    assert (await client.post(f"{PATH}/read-all", headers=me.headers)).json() == {"marked_read": 0}
    assert (await client.get(f"{PATH}/unread-count", headers=me.headers)).json() == {"unread": 0}
    colleague_count = await client.get(f"{PATH}/unread-count", headers=colleague.headers)
    assert colleague_count.json() == {"unread": 2}


async def test_another_persons_message_is_not_found(app, client, caller):
    me = caller("admin")
    colleague = caller("staff", org=me.org_id)
    stranger = caller("admin")
    (theirs,) = await deliver(app, me.org_id, colleague.person_id)

    assert_problem(await client.post(f"{PATH}/{theirs}/read", headers=me.headers), 404)
    assert_problem(await client.post(f"{PATH}/{theirs}/read", headers=stranger.headers), 404)
    assert_problem(await client.post(f"{PATH}/{uuid.uuid4()}/read", headers=me.headers), 404)
    count = await client.get(f"{PATH}/unread-count", headers=colleague.headers)
    assert count.json() == {"unread": 1}


@pytest.mark.parametrize("typ", ["client", "reporter"])
async def test_only_a_person_has_an_inbox(client, minter, typ):
    token = minter.mint(org=uuid.uuid4(), roles=["admin"], typ=typ, report=str(uuid.uuid4()))
    response = await client.get(PATH, headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 403)


async def test_a_missing_token_is_401(client):
    assert_problem(await client.get(PATH), 401)
    assert_problem(await client.post(f"{PATH}/read-all"), 401)


async def test_deliver_refuses_an_oversized_subject(app):
    async with app.state.sessionmaker() as session:
        with pytest.raises(ValueError, match="subject"):
            await deliver_inbox_message(
                session, uuid.uuid4(), uuid.uuid4(), "case.opened", "x" * 201, "", None
            )


async def test_every_route_is_documented(app):
    schema = app.openapi()
    operations = {
        op["operationId"]: op
        for path, methods in schema["paths"].items()
        if path.startswith("/notify/v1/inbox")
        for op in methods.values()
    }
    assert set(operations) == {
        "list_inbox_messages",
        "count_unread_inbox_messages",
        "mark_inbox_message_read",
        "mark_all_inbox_messages_read",
    }
    for operation in operations.values():
        assert operation["tags"] == ["inbox"]
        assert "401" in operation["responses"] and "403" in operation["responses"]
