"""The xAPI 1.0.3 LRS surface beyond storing statements: documents (State, Activity Profile,
Agent Profile) with their concurrency headers, Agents and Activities, HEAD, the Alternate
Request Syntax, statement queries (related agents and activities, StatementRef targets, formats,
unknown parameters), attachments as multipart/mixed, and strict validation. Every test uses an
org of its own; one test shows another org sees none of it."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import pytest
from training_support import assert_problem

XAPI = "/training/v1/xapi"
STATEMENTS = f"{XAPI}/statements"
STATE = f"{XAPI}/activities/state"
ACTIVITY_PROFILE = f"{XAPI}/activities/profile"
AGENT_PROFILE = f"{XAPI}/agents/profile"
V = {"X-Experience-API-Version": "1.0.3"}
ACTIVITY = "https://lms.example.org/xapi/activities/bystander-101"
EXPERIENCED = "http://adlnet.gov/expapi/verbs/experienced"
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
AGENT = {"objectType": "Agent", "mbox": "mailto:learner@demo.example"}


def statement(**extra: Any) -> dict[str, Any]:
    return {
        "actor": AGENT,
        "verb": {"id": EXPERIENCED, "display": {"en-US": "experienced", "es": "experimentó"}},
        "object": {
            "objectType": "Activity",
            "id": ACTIVITY,
            "definition": {"name": {"en-US": "Bystander 101"}},
        },
        **extra,
    }


@pytest.fixture
def lrs(caller: Any) -> dict[str, str]:
    """Headers of a trainer of a fresh org, with the version header."""
    return {**caller("trainer").headers, **V}


def state_params(**extra: str) -> dict[str, str]:
    return {"activityId": ACTIVITY, "agent": json.dumps(AGENT), **extra}


# ----------------------------------------------------------------------------- documents


async def test_state_documents_store_merge_list_and_delete(client, lrs) -> None:
    params = state_params(stateId="bookmark")
    put = await client.put(STATE, params=params, json={"page": 4}, headers=lrs)
    assert put.status_code == 204, put.text
    got = await client.get(STATE, params=params, headers=lrs)
    assert got.status_code == 200 and got.json() == {"page": 4}
    assert got.headers["ETag"] == f'"{hashlib.sha1(got.content).hexdigest()}"'
    assert "Last-Modified" in got.headers
    merged = await client.post(STATE, params=params, json={"score": 7}, headers=lrs)
    assert merged.status_code == 204, merged.text
    assert (await client.get(STATE, params=params, headers=lrs)).json() == {"page": 4, "score": 7}
    # Merging into a document that is not JSON is a 400.
    text = state_params(stateId="notes")
    await client.put(
        STATE, params=text, content=b"plain", headers={**lrs, "Content-Type": "text/plain"}
    )
    refused = await client.post(STATE, params=text, json={"a": 1}, headers=lrs)
    assert_problem(refused, 400)
    listed = await client.get(STATE, params=state_params(), headers=lrs)
    assert sorted(listed.json()) == ["bookmark", "notes"]
    assert (await client.delete(STATE, params=state_params(), headers=lrs)).status_code == 204
    assert (await client.get(STATE, params=state_params(), headers=lrs)).json() == []
    assert_problem(await client.get(STATE, params=params, headers=lrs), 404)


async def test_documents_of_any_media_type_reach_the_lrs(client, lrs) -> None:
    """Under the LRS's prefix the body guard lets every media type through (documents may be
    anything); a POST merge of a non-JSON body is then the LRS's 400, not a 415. Outside it,
    the service's short list still holds (tests/training/test_courses.py: text is a 415)."""
    params = state_params(stateId="image")
    stored = await client.put(
        STATE, params=params, content=b"\x89PNG...", headers={**lrs, "Content-Type": "image/png"}
    )
    assert stored.status_code == 204, stored.text
    got = await client.get(STATE, params=params, headers=lrs)
    assert got.content == b"\x89PNG..." and got.headers["content-type"].startswith("image/png")
    merged = await client.post(
        STATE, params=params, content=b"{}", headers={**lrs, "Content-Type": "not/json"}
    )
    assert_problem(merged, 400)


async def test_state_needs_its_parameters_and_refuses_unknown_ones(client, lrs) -> None:
    for bad in (
        {"agent": json.dumps(AGENT), "stateId": "x"},  # no activityId
        state_params(stateId="x", agent="{not json"),
        state_params(stateId="x", agent=json.dumps({"name": "nobody"})),
        state_params(stateId="x", registration="not-a-uuid"),
        state_params(stateId="x", StateId="y"),
    ):
        assert_problem(await client.put(STATE, params=bad, json={}, headers=lrs), 400)


@pytest.mark.parametrize(
    "path,params",
    [
        (ACTIVITY_PROFILE, {"activityId": ACTIVITY, "profileId": "settings"}),
        (AGENT_PROFILE, {"agent": json.dumps(AGENT), "profileId": "settings"}),
    ],
)
async def test_profiles_use_etags_for_concurrency(client, lrs, path, params) -> None:
    created = await client.put(
        path, params=params, json={"v": 1}, headers={**lrs, "If-None-Match": "*"}
    )
    assert created.status_code == 204, created.text
    etag = (await client.get(path, params=params, headers=lrs)).headers["ETag"]
    # Overwriting without a precondition: 409; with a stale one: 412; with the ETag: fine.
    assert_problem(await client.put(path, params=params, json={"v": 2}, headers=lrs), 409)
    stale = {**lrs, "If-Match": '"' + "0" * 40 + '"'}
    assert_problem(await client.put(path, params=params, json={"v": 2}, headers=stale), 412)
    exists = {**lrs, "If-None-Match": "*"}
    assert_problem(await client.put(path, params=params, json={"v": 2}, headers=exists), 412)
    fresh = {**lrs, "If-Match": etag}
    assert (await client.put(path, params=params, json={"v": 2}, headers=fresh)).status_code == 204
    assert (await client.get(path, params=params, headers=lrs)).json() == {"v": 2}
    listed = await client.get(
        path, params={k: v for k, v in params.items() if k != "profileId"}, headers=lrs
    )
    assert listed.json() == ["settings"]
    assert (await client.delete(path, params=params, headers=lrs)).status_code == 204
    assert_problem(await client.get(path, params=params, headers=lrs), 404)


async def test_documents_and_statements_belong_to_one_org(client, caller) -> None:
    mine = {**caller("trainer").headers, **V}
    theirs = {**caller("trainer").headers, **V}
    params = state_params(stateId="bookmark")
    await client.put(STATE, params=params, json={"page": 1}, headers=mine)
    posted = await client.post(STATEMENTS, json=statement(), headers=mine)
    assert_problem(await client.get(STATE, params=params, headers=theirs), 404)
    assert (await client.get(STATE, params=state_params(), headers=theirs)).json() == []
    found = await client.get(STATEMENTS, params={"statementId": posted.json()[0]}, headers=theirs)
    assert_problem(found, 404)
    assert_problem(
        await client.get(f"{XAPI}/activities", params={"activityId": ACTIVITY}, headers=theirs), 404
    )


# ----------------------------------------------------------------------------- agents, activities


async def test_agents_and_activities_resources(client, lrs) -> None:
    await client.post(STATEMENTS, json=statement(), headers=lrs)
    second = statement()
    second["object"]["definition"] = {
        "name": {"es": "Testigo 101"},
        "type": "http://adlnet.gov/expapi/activities/course",
    }
    await client.post(STATEMENTS, json=second, headers=lrs)
    activity = await client.get(f"{XAPI}/activities", params={"activityId": ACTIVITY}, headers=lrs)
    assert activity.status_code == 200
    assert activity.json()["definition"]["name"] == {"en-US": "Bystander 101", "es": "Testigo 101"}
    person = await client.get(f"{XAPI}/agents", params={"agent": json.dumps(AGENT)}, headers=lrs)
    assert person.json()["objectType"] == "Person"
    assert person.json()["mbox"] == [AGENT["mbox"]]


# ----------------------------------------------------------------------------- HEAD, alternate


async def test_head_answers_like_get_without_a_body(client, lrs) -> None:
    await client.put(STATE, params=state_params(stateId="s"), json={"a": 1}, headers=lrs)
    for path, params in (
        (STATEMENTS, {}),
        (STATE, state_params(stateId="s")),
        (f"{XAPI}/agents", {"agent": json.dumps(AGENT)}),
        (f"{XAPI}/about", {}),
    ):
        head = await client.head(path, params=params, headers=lrs)
        assert head.status_code == 200, (path, head.text)
        assert head.content == b""
        assert head.headers["X-Experience-API-Version"] == "1.0.3"
    head = await client.head(STATEMENTS, headers=lrs)
    assert "X-Experience-API-Consistent-Through" in head.headers
    assert "Last-Modified" in head.headers


async def test_alternate_request_syntax(client, lrs) -> None:
    statement_id = str(uuid.uuid4())
    form = {
        "statementId": statement_id,
        "content": json.dumps(statement()),
        "Authorization": lrs["Authorization"],
        "X-Experience-API-Version": "1.0.3",
        "Content-Type": "application/json",
    }
    put = await client.post(
        f"{STATEMENTS}?method=PUT",
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert put.status_code == 204, put.text
    got = await client.post(
        f"{STATEMENTS}?method=GET",
        data={"statementId": statement_id},
        headers=lrs,
    )
    assert got.status_code == 200 and got.json()["id"] == statement_id
    # Anything else in the query string, or a method that is not POST: 400.
    extra = await client.post(f"{STATEMENTS}?method=GET&limit=1", data={}, headers=lrs)
    assert_problem(extra, 400)
    assert_problem(
        await client.put(f"{STATEMENTS}?method=POST", json=statement(), headers=lrs), 400
    )
    old = {**form, "X-Experience-API-Version": "0.9", "statementId": str(uuid.uuid4())}
    refused = await client.post(
        f"{STATEMENTS}?method=PUT",
        content=urlencode(old),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(refused, 400)


# ----------------------------------------------------------------------------- statements


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"context": {"instructor": "Dana"}}, "context.instructor"),
        ({"object": {"id": ACTIVITY, "definition": {"name": None}}}, "object.definition.name"),
        ({"context": {"team": {"mbox": "mailto:t@x.example"}}}, "context.team"),
        (
            {"object": {"id": ACTIVITY, "definition": {"interactionType": "Choice"}}},
            "interactionType",
        ),
        ({"context": {"language": "not a tag!"}}, "context.language"),
        ({"object": AGENT, "context": {"platform": "web"}}, "context.platform"),
        ({"timestamp": "2026-01-05T09:00:00-00:00"}, "timestamp"),
        ({"result": {"score": {"raw": 11, "min": 0, "max": 10}}}, "result.score.raw"),
        ({"verb": {"id": EXPERIENCED, "display": {"en-US": 3}}}, "verb.display"),
        ({"actor": {**AGENT, "mbox_sha1sum": "a" * 40}}, "actor"),
        (
            {
                "attachments": [
                    {
                        "usageType": "http://x.example/u",
                        "display": {"en": "a"},
                        "contentType": "text/plain",
                        "length": 1,
                        "sha2": "ab" * 32,
                    }
                ]
            },
            "attachments",
        ),
    ],
)
async def test_the_spec_validation_rules(client, lrs, change, where) -> None:
    response = await client.post(STATEMENTS, json={**statement(), **change}, headers=lrs)
    assert where in assert_problem(response, 400)["detail"]


async def test_unknown_or_miscased_parameters_are_400(client, lrs) -> None:
    for params in ({"StatementId": str(uuid.uuid4())}, {"colour": "blue"}, {"format": "short"}):
        assert_problem(await client.get(STATEMENTS, params=params, headers=lrs), 400)


async def test_queries_follow_related_agents_activities_and_statement_refs(client, lrs) -> None:
    instructor = {"mbox": "mailto:coach@demo.example"}
    parent = "https://lms.example.org/xapi/activities/program"
    taught = statement(
        context={
            "instructor": instructor,
            "contextActivities": {"parent": {"id": parent}},
        }
    )
    ids = (await client.post(STATEMENTS, json=taught, headers=lrs)).json()
    agent = json.dumps(instructor)
    plain = await client.get(STATEMENTS, params={"agent": agent}, headers=lrs)
    assert plain.json()["statements"] == []
    broad = await client.get(
        STATEMENTS, params={"agent": agent, "related_agents": "true"}, headers=lrs
    )
    assert [s["id"] for s in broad.json()["statements"]] == ids
    # A single context activity comes back as a list.
    assert broad.json()["statements"][0]["context"]["contextActivities"]["parent"] == [
        {"id": parent}
    ]
    assert (await client.get(STATEMENTS, params={"activity": parent}, headers=lrs)).json()[
        "statements"
    ] == []
    related = await client.get(
        STATEMENTS, params={"activity": parent, "related_activities": "true"}, headers=lrs
    )
    assert [s["id"] for s in related.json()["statements"]] == ids
    # A statement that points at a match is returned with it, by the match's filter.
    other_verb = "http://adlnet.gov/expapi/verbs/attended"
    target = (
        await client.post(STATEMENTS, json=statement(verb={"id": other_verb}), headers=lrs)
    ).json()[0]
    ref = statement(object={"objectType": "StatementRef", "id": target})
    ref_id = (await client.post(STATEMENTS, json=ref, headers=lrs)).json()[0]
    by_verb = await client.get(STATEMENTS, params={"verb": other_verb}, headers=lrs)
    assert sorted(s["id"] for s in by_verb.json()["statements"]) == sorted([target, ref_id])
    # format=ids keeps identifiers only; canonical keeps one language.
    ids_only = await client.get(
        STATEMENTS, params={"statementId": ids[0], "format": "ids"}, headers=lrs
    )
    assert ids_only.json()["verb"] == {"id": EXPERIENCED}
    assert ids_only.json()["object"] == {"id": ACTIVITY}
    canonical = await client.get(
        STATEMENTS,
        params={"statementId": ids[0], "format": "canonical"},
        headers={**lrs, "Accept-Language": "es"},
    )
    assert canonical.json()["verb"]["display"] == {"es": "experimentó"}


def multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = "b0undary") -> bytes:
    out = b""
    for headers, body in parts:
        out += f"--{boundary}\r\n".encode()
        out += "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode() + b"\r\n"
        out += body + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


async def test_attachments_travel_as_multipart_mixed(client, lrs) -> None:
    data = b"certificate of completion"
    sha2 = hashlib.sha256(data).hexdigest()
    attached = statement(
        attachments=[
            {
                "usageType": "http://id.tincanapi.com/attachment/certificate-of-completion",
                "display": {"en-US": "Certificate"},
                "contentType": "text/plain",
                "length": len(data),
                "sha2": sha2,
            }
        ]
    )
    body = multipart(
        [
            ({"Content-Type": "application/json"}, json.dumps(attached).encode()),
            (
                {
                    "Content-Type": "text/plain",
                    "Content-Transfer-Encoding": "binary",
                    "X-Experience-API-Hash": sha2,
                },
                data,
            ),
        ]
    )
    headers = {**lrs, "Content-Type": 'multipart/mixed; boundary="b0undary"'}
    posted = await client.post(STATEMENTS, content=body, headers=headers)
    assert posted.status_code == 200, posted.text
    # Without the part (and no fileUrl): 400; a part with a wrong hash: 400.
    assert_problem(await client.post(STATEMENTS, json=attached, headers=lrs), 400)
    wrong = body.replace(data, b"something else entirely!!")
    assert_problem(await client.post(STATEMENTS, content=wrong, headers=headers), 400)
    read = await client.get(
        STATEMENTS, params={"statementId": posted.json()[0], "attachments": "true"}, headers=lrs
    )
    assert read.headers["content-type"].startswith("multipart/mixed")
    assert data in read.content and sha2.encode() in read.content
