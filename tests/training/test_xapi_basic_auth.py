"""LRS credentials through the gateway: an API client's id and secret, granted the xAPI scopes,
work as the HTTP Basic key and secret of the LRS (the gateway turns them into the client's
token); TinCan's RemoteLRS speaks to it over a real socket; completions still flow from
statements; bearer tokens keep working."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import uvicorn
from harness import Platform, running_platform
from tincan import Activity, Agent, RemoteLRS, Statement, Verb

ADMIN = "admin@demo.example"
XAPI = "/training/v1/xapi"
STATEMENTS = f"{XAPI}/statements"
V = {"X-Experience-API-Version": "1.0.3"}
ACTIVITY = "https://lms.example.org/xapi/activities/basic-auth-101"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"


def basic(key: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()


@pytest.fixture(scope="module")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    async with running_platform(tmp_path_factory.mktemp("lrs-basic")) as running:
        yield running


async def make_client(platform: Platform, scopes: list[str]) -> tuple[str, str]:
    created = await platform.gateway.post(
        "/identity/v1/clients",
        json={"name": f"LMS {uuid.uuid4().hex[:6]}", "scopes": scopes},
        headers=await platform.auth(ADMIN),
    )
    assert created.status_code == 201, created.text
    return created.json()["client_id"], created.json()["client_secret"]


def statement(email: str = "learner@demo.example", verb: str = COMPLETED) -> dict[str, Any]:
    return {
        "actor": {"mbox": f"mailto:{email}"},
        "verb": {"id": verb, "display": {"en-US": "completed"}},
        "object": {"id": ACTIVITY},
    }


async def test_basic_credentials_of_an_xapi_client_open_the_lrs(platform: Platform) -> None:
    key, secret = await make_client(platform, ["xapi:read", "xapi:write"])
    headers = {**V, "Authorization": basic(key, secret)}
    posted = await platform.gateway.post(STATEMENTS, json=statement(), headers=headers)
    assert posted.status_code == 200, posted.text
    read = await platform.gateway.get(
        STATEMENTS, params={"statementId": posted.json()[0]}, headers=headers
    )
    assert read.status_code == 200 and read.json()["id"] == posted.json()[0]
    assert read.json()["authority"]["account"]["name"] == f"client:{key}"
    # The same client's bearer token (client_credentials) reads the same org's statements.
    token = await platform.gateway.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": key, "client_secret": secret},
    )
    bearer = {**V, "Authorization": f"Bearer {token.json()['access_token']}"}
    again = await platform.gateway.get(
        STATEMENTS, params={"statementId": posted.json()[0]}, headers=bearer
    )
    assert again.status_code == 200


async def test_wrong_or_unscoped_credentials_are_401(platform: Platform) -> None:
    key, secret = await make_client(platform, ["xapi:read", "xapi:write"])
    for authorization in (
        basic(key, secret + "x"),
        basic("no-such-client", secret),
        "Basic !!!not-base64",
        basic(*(await make_client(platform, ["training:read"]))),
    ):
        refused = await platform.gateway.get(
            STATEMENTS, headers={**V, "Authorization": authorization}
        )
        assert refused.status_code == 401, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.headers["www-authenticate"].startswith("Basic")
        assert refused.headers["x-experience-api-version"] == "1.0.3"
    # A read-only client reads but cannot write.
    reader = basic(*(await make_client(platform, ["xapi:read"])))
    assert (
        await platform.gateway.get(STATEMENTS, headers={**V, "Authorization": reader})
    ).status_code == 200
    written = await platform.gateway.post(
        STATEMENTS, json=statement(), headers={**V, "Authorization": reader}
    )
    assert written.status_code == 403


async def test_guessing_a_secret_is_throttled_per_client_id(platform: Platform) -> None:
    from upstander.gateway.edge.limitstore import WindowLimit
    from upstander.gateway.edge.ratelimit import SlidingWindowLimiter

    key, secret = await make_client(platform, ["xapi:read"])
    state = platform.apps["gateway"].state
    held = state.auth_account_limits
    state.auth_account_limits = WindowLimit(
        "test", SlidingWindowLimiter(2, 60, clock=platform.clock), None
    )
    try:
        answers = [
            await platform.gateway.get(
                STATEMENTS, headers={**V, "Authorization": basic(key, f"guess-{n}")}
            )
            for n in range(3)
        ]
    finally:
        state.auth_account_limits = held
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    # The right secret works again once the budget is back.
    ok = await platform.gateway.get(STATEMENTS, headers={**V, "Authorization": basic(key, secret)})
    assert ok.status_code == 200


async def test_basic_credentials_in_an_alternate_syntax_form(platform: Platform) -> None:
    key, secret = await make_client(platform, ["xapi:read", "xapi:write"])
    statement_id = str(uuid.uuid4())
    form = {
        "statementId": statement_id,
        "content": json.dumps(statement()),
        "X-Experience-API-Version": "1.0.3",
        "Authorization": basic(key, secret),
    }
    put = await platform.gateway.post(
        f"{STATEMENTS}?method=PUT",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert put.status_code == 204, put.text
    form["Authorization"] = basic(key, "wrong")
    refused = await platform.gateway.post(
        f"{STATEMENTS}?method=PUT",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 401


async def test_completions_still_come_from_statements_sent_with_basic(platform: Platform) -> None:
    admin = await platform.auth(ADMIN)
    course = await platform.gateway.post(
        "/training/v1/courses",
        json={
            "title": "LRS course",
            "kind": "bystander_intervention",
            "duration_minutes": 30,
            "interactive": True,
            "activity_ids": [ACTIVITY],
        },
        headers=admin,
    )
    assert course.status_code == 201, course.text
    key, secret = await make_client(platform, ["xapi:write"])
    posted = await platform.gateway.post(
        STATEMENTS,
        json=statement("staff@demo.example"),
        headers={**V, "Authorization": basic(key, secret)},
    )
    assert posted.status_code == 200, posted.text
    completions = await platform.gateway.get(
        "/training/v1/completions",
        params={"course_id": course.json()["id"], "source": "xapi"},
        headers=admin,
    )
    assert completions.status_code == 200, completions.text
    assert [c["statement_id"] for c in completions.json()["items"]] == posted.json()


async def test_tincan_remote_lrs_with_basic_credentials(platform: Platform) -> None:
    key, secret = await make_client(platform, ["xapi:read", "xapi:write"])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(platform.apps["gateway"], log_config=None, access_log=False, lifespan="off")
    )
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        lrs = RemoteLRS(
            version="1.0.3",
            endpoint=f"http://127.0.0.1:{port}{XAPI}/",
            username=key,
            password=secret,
        )
        tincan_statement = Statement(
            actor=Agent(name="Learner", mbox="mailto:learner@demo.example"),
            verb=Verb(id="http://adlnet.gov/expapi/verbs/experienced"),
            object=Activity(id=ACTIVITY),
        )
        saved = await asyncio.to_thread(lrs.save_statement, tincan_statement)
        assert saved.success, saved.response.data
        fetched = await asyncio.to_thread(lrs.retrieve_statement, saved.content.id)
        assert fetched.success and str(fetched.content.id) == str(saved.content.id)
        state = await asyncio.to_thread(
            lrs.save_state,
            _state_document(tincan_statement),
        )
        assert state.success, state.response.data
        stored = await asyncio.to_thread(
            lrs.retrieve_state,
            tincan_statement.object,
            tincan_statement.actor,
            "bookmark",
        )
        assert stored.success and json.loads(bytes(stored.content.content)) == {"page": 3}
        about = await asyncio.to_thread(lrs.about)
        assert about.success and "1.0.3" in about.content.version
        wrong = RemoteLRS(
            version="1.0.3",
            endpoint=f"http://127.0.0.1:{port}{XAPI}/",
            username=key,
            password="wrong",
        )
        refused = await asyncio.to_thread(wrong.save_statement, tincan_statement)
        assert not refused.success and refused.response.status == 401
    finally:
        server.should_exit = True
        await serving
        sock.close()


def _state_document(statement: Statement) -> Any:
    from tincan import StateDocument

    return StateDocument(
        id="bookmark",
        activity=statement.object,
        agent=statement.actor,
        content='{"page": 3}',
        content_type="application/json",
    )
