"""The xAPI Learning Record Store: a real xAPI client (TinCan) against the service on a real
port, then the LRS rules one by one over httpx: version header, credentials, 409 on a changed
statement, all-or-nothing batches, reads by id and by filters, voiding, and completions."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from tincan import Activity, Agent, RemoteLRS, Result, Score, Statement, Verb
from training_support import assert_problem, make_course

from upstander.kit.clock import Clock
from upstander.training.app import create_app
from upstander.training.settings import Settings

XAPI = "/training/v1/xapi"
STATEMENTS = f"{XAPI}/statements"
V = {"X-Experience-API-Version": "1.0.3"}
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
ACTIVITY = "https://lms.example.org/xapi/activities/bystander-101"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def statement(
    email: str = "learner@demo.example",
    verb: str = EXPERIENCED,
    activity: str = ACTIVITY,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "actor": {"objectType": "Agent", "mbox": f"mailto:{email}"},
        "verb": {"id": verb, "display": {"en-US": verb.rsplit("/", 1)[-1]}},
        "object": {"objectType": "Activity", "id": activity},
        **extra,
    }


def xapi(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, **V}


# ----------------------------------------------------------------------------- a real client


@pytest.fixture(scope="module")
def live_lrs(tmp_path_factory: pytest.TempPathFactory, minter: Any) -> Iterator[str]:
    """The training service under uvicorn on a free localhost port (TinCan speaks plain
    http.client on a socket); its JWKS comes from the conftest's mock transport."""
    directory: Path = tmp_path_factory.mktemp("xapi-live")
    application = create_app(
        Settings(
            database_url=f"sqlite+aiosqlite:///{directory}/training.db",
            log_json=False,
            log_level="WARNING",
            relay_background=False,
            reminders_background=False,
        ),
        transport=minter.transport(),
        clock=Clock(),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(application, log_config=None, access_log=False, lifespan="on")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the training service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_tincan_client_stores_reads_and_queries_statements(live_lrs: str, minter: Any) -> None:
    org = uuid.uuid4()
    trainer = minter.mint(org=org, roles=["trainer"])
    headers = {"Authorization": f"Bearer {trainer}"}
    with httpx.Client(base_url=live_lrs, headers=headers, timeout=10) as http:
        course = http.post(
            "/training/v1/courses",
            json={
                "title": "Bystander intervention",
                "kind": "bystander_intervention",
                "duration_minutes": 60,
                "activity_ids": [ACTIVITY],
            },
        )
        assert course.status_code == 201, course.text
        person_id = uuid.uuid4()
        service_token = minter.mint(org=org, roles=[], typ="service", sub="svc-gateway")
        event = {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/gateway",
            "type": "upstander.person.created",
            "subject": f"person/{person_id}",
            "time": datetime.now(UTC).isoformat(),
            "orgid": str(org),
            "data": {
                "person_id": str(person_id),
                "org_id": str(org),
                "email": "dana@demo.example",
                "name": "Dana",
                "roles": ["staff"],
                "active": True,
            },
        }
        delivered = http.post(
            "/training/internal/events",
            content=json.dumps(event),
            headers={
                "Authorization": f"Bearer {service_token}",
                "Content-Type": "application/cloudevents+json",
            },
        )
        assert delivered.status_code == 200, delivered.text

        lrs = RemoteLRS(endpoint=f"{live_lrs}{XAPI}/", version="1.0.3", auth=f"Bearer {trainer}")
        about = lrs.about()
        assert about.success and "1.0.3" in about.content.version

        actor = Agent(name="Dana", mbox="mailto:dana@demo.example")
        activity = Activity(id=ACTIVITY)
        put = Statement(
            id=str(uuid.uuid4()),
            actor=actor,
            verb=Verb(id=EXPERIENCED, display={"en-US": "experienced"}),
            object=activity,
        )
        saved = lrs.save_statement(put)  # an id: PUT ?statementId=
        assert saved.success, saved.data
        assert saved.response.status == 204
        assert saved.response.getheader("X-Experience-API-Version") == "1.0.3"

        posted = Statement(
            actor=actor,
            verb=Verb(id=COMPLETED, display={"en-US": "completed"}),
            object=activity,
            result=Result(duration="PT1H30M", score=Score(scaled=0.9), completion=True),
        )
        saved = lrs.save_statement(posted)  # no id: POST, the LRS assigns one
        assert saved.success, saved.data
        assert uuid.UUID(str(saved.content.id))

        read = lrs.retrieve_statement(str(put.id))
        assert read.success, read.data
        assert read.content.verb.id == EXPERIENCED
        assert read.content.actor.mbox == "mailto:dana@demo.example"
        assert read.content.stored is not None
        assert read.response.getheader("X-Experience-API-Consistent-Through")

        found = lrs.query_statements({"verb": Verb(id=COMPLETED), "agent": actor, "limit": 10})
        assert found.success, found.data
        assert [str(s.id) for s in found.content.statements] == [str(saved.content.id)]

        completions = http.get(
            "/training/v1/completions", params={"person_id": str(person_id)}
        ).json()["items"]
        assert [(c["source"], c["duration_minutes"], c["score"]) for c in completions] == [
            ("xapi", 90, 90.0)
        ]

        refused = RemoteLRS(
            endpoint=f"{live_lrs}{XAPI}/", version="1.0.3", auth="Basic Zm9vOmJhcg=="
        )
        assert refused.retrieve_statement(str(put.id)).response.status == 401


# ----------------------------------------------------------------------------- the LRS rules


async def test_about_needs_neither_version_header_nor_credentials(client) -> None:
    response = await client.get(f"{XAPI}/about")
    assert response.status_code == 200
    assert response.json() == {"version": ["1.0.3", "1.0.0"]}
    assert response.headers["X-Experience-API-Version"] == "1.0.3"


async def test_a_request_without_the_version_header_is_400(client, caller) -> None:
    trainer = caller("trainer")
    response = await client.get(STATEMENTS, headers=trainer.headers)
    assert_problem(response, 400)
    assert response.headers["X-Experience-API-Version"] == "1.0.3"
    posted = await client.post(STATEMENTS, json=statement(), headers=trainer.headers)
    assert_problem(posted, 400)


async def test_credentials_are_a_bearer_token_of_a_trainer_admin_or_scoped_client(
    client, caller, minter
) -> None:
    missing = await client.get(STATEMENTS, headers={**V, "Authorization": "Basic Zm9vOmJhcg=="})
    assert_problem(missing, 401)
    assert missing.headers["X-Experience-API-Version"] == "1.0.3"
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    assert_problem(await client.get(STATEMENTS, headers=xapi(caller("staff").headers)), 403)
    org = uuid.uuid4()
    lms = minter.mint(org=org, roles=[], typ="client", sub="client-lms", scope="xapi:write")
    posted = await client.post(
        STATEMENTS, json=statement(), headers={**V, "Authorization": f"Bearer {lms}"}
    )
    assert posted.status_code == 200, posted.text


async def test_put_stores_under_the_id_and_a_changed_statement_is_a_conflict(
    client, caller
) -> None:
    trainer = caller("trainer")
    statement_id = str(uuid.uuid4())
    body = statement(timestamp="2026-01-02T10:00:00Z")
    url = f"{STATEMENTS}?statementId={statement_id}"
    first = await client.put(url, json=body, headers=xapi(trainer.headers))
    assert first.status_code == 204, first.text
    assert first.headers["X-Experience-API-Version"] == "1.0.3"
    again = await client.put(url, json=body, headers=xapi(trainer.headers))
    assert again.status_code == 204, again.text
    changed = await client.put(
        url,
        json=statement(verb=COMPLETED, timestamp="2026-01-02T10:00:00Z"),
        headers=xapi(trainer.headers),
    )
    assert_problem(changed, 409)
    posted_changed = await client.post(
        STATEMENTS,
        json={**statement(email="other@demo.example"), "id": statement_id},
        headers=xapi(trainer.headers),
    )
    assert_problem(posted_changed, 409)
    assert_problem(await client.put(STATEMENTS, json=body, headers=xapi(trainer.headers)), 400)
    # Statement ids are per organisation: another org's LMS cannot see or collide with it.
    stranger = caller("trainer")
    other = await client.put(url, json=statement(verb=PASSED), headers=xapi(stranger.headers))
    assert other.status_code == 204
    read = await client.get(
        STATEMENTS, params={"statementId": statement_id}, headers=xapi(trainer.headers)
    )
    assert read.json()["verb"]["id"] == EXPERIENCED


async def test_post_returns_ids_in_order_and_assigns_missing_ones(client, caller) -> None:
    trainer = caller("trainer")
    given = str(uuid.uuid4())
    response = await client.post(
        STATEMENTS,
        json=[{**statement(), "id": given}, statement(email="b@demo.example")],
        headers=xapi(trainer.headers),
    )
    assert response.status_code == 200, response.text
    ids = response.json()
    assert ids[0] == given and uuid.UUID(ids[1])
    single = await client.post(STATEMENTS, json=statement(), headers=xapi(trainer.headers))
    assert single.status_code == 200 and len(single.json()) == 1


async def test_a_batch_with_one_bad_statement_stores_nothing(client, caller) -> None:
    trainer = caller("trainer")
    good = {**statement(), "id": str(uuid.uuid4())}
    bad = statement(verb="not an iri")
    response = await client.post(STATEMENTS, json=[good, bad], headers=xapi(trainer.headers))
    problem = assert_problem(response, 400)
    assert "statements[1].verb.id" in problem["detail"]
    read = await client.get(
        STATEMENTS, params={"statementId": good["id"]}, headers=xapi(trainer.headers)
    )
    assert_problem(read, 404)
    listed = await client.get(STATEMENTS, headers=xapi(trainer.headers))
    assert listed.json()["statements"] == []


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"actor": {"name": "No identifier"}}, "actor"),
        ({"actor": {"mbox": "dana@demo.example"}}, "actor.mbox"),
        ({"actor": {"mbox": "mailto:a@b.example", "openid": "https://id.example/a"}}, "actor"),
        ({"actor": {"account": {"homePage": "https://lms.example", "name": ""}}}, "actor.account"),
        ({"verb": {"id": "completed"}}, "verb.id"),
        ({"object": {"id": "bystander-101"}}, "object.id"),
        ({"id": "not-a-uuid"}, "id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"result": {"duration": "90 minutes"}}, "result.duration"),
        ({"result": {"score": {"scaled": 1.5}}}, "result.score.scaled"),
        ({"context": {"registration": "nope"}}, "context.registration"),
        ({"colour": "blue"}, "unknown properties"),
        ({"verb": {"id": VOIDED}}, "StatementRef"),
    ],
)
async def test_invalid_statements_are_400(client, caller, change, where) -> None:
    trainer = caller("trainer")
    response = await client.post(
        STATEMENTS, json={**statement(), **change}, headers=xapi(trainer.headers)
    )
    assert where in assert_problem(response, 400)["detail"]


async def test_get_by_id_returns_the_statement_with_what_the_lrs_adds(
    client, caller, clock
) -> None:
    clock.set(START)
    trainer = caller("trainer")
    statement_id = str(uuid.uuid4())
    body = {**statement(), "id": statement_id}
    await client.post(STATEMENTS, json=body, headers=xapi(trainer.headers))
    response = await client.get(
        STATEMENTS, params={"statementId": statement_id}, headers=xapi(trainer.headers)
    )
    assert response.status_code == 200, response.text
    found = response.json()
    assert {k: found[k] for k in body} == body
    assert found["stored"].startswith("2026-01-05T09:00:00")
    assert found["timestamp"] == found["stored"]
    assert found["authority"]["account"]["name"].startswith("staff:")
    assert response.headers["X-Experience-API-Consistent-Through"].startswith("2026-01-05")
    assert_problem(
        await client.get(
            STATEMENTS,
            params={"statementId": statement_id, "verb": EXPERIENCED},
            headers=xapi(trainer.headers),
        ),
        400,
    )
    assert_problem(
        await client.get(
            STATEMENTS, params={"statementId": str(uuid.uuid4())}, headers=xapi(trainer.headers)
        ),
        404,
    )


async def test_filters_page_through_matching_statements(client, caller, clock) -> None:
    trainer = caller("trainer")
    headers = xapi(trainer.headers)
    registration = str(uuid.uuid4())
    clock.set(START)
    first = (
        await client.post(
            STATEMENTS,
            json=[
                statement(verb=COMPLETED, context={"registration": registration}),
                statement(email="other@demo.example", verb=COMPLETED),
            ],
            headers=headers,
        )
    ).json()
    clock.set(START + timedelta(hours=1))
    later = (
        await client.post(
            STATEMENTS,
            json=[
                statement(verb=COMPLETED),
                statement(activity="https://lms.example.org/xapi/activities/other"),
            ],
            headers=headers,
        )
    ).json()

    async def ids(**params: Any) -> list[str]:
        response = await client.get(STATEMENTS, params=params, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["X-Experience-API-Consistent-Through"]
        return [s["id"] for s in response.json()["statements"]]

    learner = json.dumps({"mbox": "mailto:learner@demo.example"})
    assert await ids(agent=learner, verb=COMPLETED, ascending="true") == [first[0], later[0]]
    assert await ids(agent=learner, verb=COMPLETED) == [later[0], first[0]]
    assert await ids(registration=registration) == [first[0]]
    assert set(await ids(activity=ACTIVITY)) == {*first, later[0]}
    assert set(await ids(since=(START + timedelta(minutes=30)).isoformat())) == set(later)
    assert set(await ids(until=START.isoformat())) == set(first)

    seen: list[str] = []
    url: str | None = f"{STATEMENTS}?limit=3&ascending=true"
    while url:
        page = (await client.get(url, headers=headers)).json()
        assert len(page["statements"]) <= 3
        seen += [s["id"] for s in page["statements"]]
        url = page["more"] or None
    assert len(seen) == 4 and set(seen) == {*first, *later}
    for bad in ({"agent": "{not json"}, {"since": "soon"}, {"limit": "-1"}, {"verb": "x"}):
        assert_problem(await client.get(STATEMENTS, params=bad, headers=headers), 400)


async def test_voiding_hides_a_statement_except_by_voided_statement_id(client, caller) -> None:
    trainer = caller("trainer")
    headers = xapi(trainer.headers)
    target = str(uuid.uuid4())
    await client.put(f"{STATEMENTS}?statementId={target}", json=statement(), headers=headers)
    voiding = await client.post(
        STATEMENTS,
        json=statement(verb=VOIDED) | {"object": {"objectType": "StatementRef", "id": target}},
        headers=headers,
    )
    assert voiding.status_code == 200, voiding.text
    assert_problem(
        await client.get(STATEMENTS, params={"statementId": target}, headers=headers), 404
    )
    voided = await client.get(STATEMENTS, params={"voidedStatementId": target}, headers=headers)
    assert voided.status_code == 200 and voided.json()["id"] == target
    listed = [s["id"] for s in (await client.get(STATEMENTS, headers=headers)).json()["statements"]]
    assert listed == voiding.json()
    # A voiding statement cannot itself be voided.
    again = statement(verb=VOIDED) | {
        "object": {"objectType": "StatementRef", "id": voiding.json()[0]}
    }
    assert_problem(await client.post(STATEMENTS, json=again, headers=headers), 400)


async def test_completed_statement_becomes_a_completion_and_voiding_removes_it(
    client, caller, directory, clock
) -> None:
    clock.set(START)
    trainer = caller("trainer")
    headers = xapi(trainer.headers)
    course = await make_course(client, trainer.headers)
    person = await directory.hire(trainer.org_id, email="dana@demo.example")
    by_account = await directory.hire(trainer.org_id, email="sam@demo.example")
    completed = statement(
        email="dana@demo.example",
        verb=COMPLETED,
        timestamp="2026-01-04T15:30:00+01:00",
        result={"duration": "PT45M", "score": {"scaled": 0.875}, "completion": True},
    )
    passed = {
        "actor": {"account": {"homePage": "https://lms.example.org", "name": "sam@demo.example"}},
        "verb": {"id": PASSED},
        "object": {"id": ACTIVITY},
    }
    unknown = statement(email="nobody@demo.example", verb=COMPLETED)
    other_activity = statement(
        email="dana@demo.example", verb=COMPLETED, activity="https://lms.example.org/other"
    )
    ids = (
        await client.post(
            STATEMENTS, json=[completed, passed, unknown, other_activity], headers=headers
        )
    ).json()

    async def completions() -> dict[str, dict]:
        response = await client.get(
            "/training/v1/completions", params={"course_id": course["id"]}, headers=trainer.headers
        )
        return {c["person_id"]: c for c in response.json()["items"]}

    recorded = await completions()
    assert set(recorded) == {person["person_id"], by_account["person_id"]}
    dana = recorded[person["person_id"]]
    assert (dana["source"], dana["duration_minutes"], dana["score"]) == ("xapi", 45, 87.5)
    assert dana["completed_at"].startswith("2026-01-04T14:30:00")
    assert recorded[by_account["person_id"]]["completed_at"].startswith("2026-01-05T09:00:00")

    void = statement(verb=VOIDED) | {"object": {"objectType": "StatementRef", "id": ids[0]}}
    assert (await client.post(STATEMENTS, json=void, headers=headers)).status_code == 200
    assert set(await completions()) == {by_account["person_id"]}
