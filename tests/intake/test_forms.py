"""Reporting forms: the public read, the admin's replace, and the org registry behind them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from upstander.intake.forms.service import ensure_org
from upstander.intake.models import ReportingForm
from upstander.kit.errors import Conflict

PROBLEM_JSON = "application/problem+json"
DEFAULT_CATEGORIES = [
    "sexual_harassment",
    "harassment",
    "discrimination",
    "retaliation",
    "assault",
    "misconduct",
    "other",
]

FORM: dict[str, Any] = {
    "categories": [
        {"key": "harassment", "label": {"en": "Harassment", "es": "Acoso"}},
        {"key": "other", "label": {"en": "Something else", "es": "Otra cosa"}},
    ],
    "questions": [
        {
            "key": "where",
            "label": {"en": "Where did it happen?", "es": "¿Dónde ocurrió?"},
            "kind": "choice",
            "required": True,
            "choices": [
                {"key": "office", "label": {"en": "At the office", "es": "En la oficina"}},
                {"key": "event", "label": {"en": "At an event", "es": "En un evento"}},
            ],
        }
    ],
    "resources": {
        "who_to_call": [
            {
                "name": "Maria Lopez",
                "description": {"en": "Case manager", "es": "Gestora de casos"},
                "email": "maria@example.org",
            }
        ],
        "outside_reviewer": {
            "name": "Fair Review LLP",
            "description": {"en": "Independent reviewer", "es": "Revisor independiente"},
            "phone": "+1 202 555 0100",
        },
        "hotlines": [
            {
                "key": "rainn",
                "name": {"en": "RAINN hotline", "es": "Línea de RAINN"},
                "phone": "1-800-656-4673",
            }
        ],
        "policy": {
            "url": "https://example.org/policy",
            "title": {"en": "Our policy", "es": "Nuestra política"},
        },
    },
    "languages": ["en", "es"],
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body = response.json()
    assert body["status"] == status
    assert body["type"] == f"https://upstander.dev/problems/{slug}"
    return body


async def register(app: FastAPI, org_id: uuid.UUID, slug: str, name: str | None) -> None:
    async with app.state.sessionmaker() as session:
        await ensure_org(session, org_id, slug, name)
        await session.commit()


async def test_registered_org_without_a_form_gets_the_default(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await register(app, uuid.uuid4(), "demo", "Demo Campaign")

    response = await client.get("/intake/v1/forms/demo")

    assert response.status_code == 200
    assert response.headers["etag"] == '"1"'
    form = response.json()
    assert form["org"] == "demo"
    assert form["org_name"] == "Demo Campaign"
    assert form["customised"] is False
    assert form["lang"] is None
    assert form["languages"] == ["en", "es"]
    assert [c["key"] for c in form["categories"]] == DEFAULT_CATEGORIES
    assert form["categories"][0]["label"] == {"en": "Sexual harassment", "es": "Acoso sexual"}
    phones = {h["key"]: h["phone"] for h in form["resources"]["hotlines"]}
    assert phones == {"rainn": "1-800-656-4673", "eeoc": "1-800-669-4000"}


async def test_ensure_org_is_idempotent_and_follows_renames(app: FastAPI) -> None:
    org_id = uuid.uuid4()
    await register(app, org_id, "demo", "Demo")
    await register(app, org_id, "demo", "Demo")
    await register(app, org_id, "demo-2026", "Demo 2026")

    async with app.state.sessionmaker() as session:
        forms = (await session.scalars(select(ReportingForm))).all()
    assert [(f.org_id, f.org_slug, f.org_name) for f in forms] == [
        (org_id, "demo-2026", "Demo 2026")
    ]


async def test_ensure_org_refuses_a_slug_held_by_another_org(app: FastAPI) -> None:
    await register(app, uuid.uuid4(), "demo", None)

    async with app.state.sessionmaker() as session:
        with pytest.raises(Conflict):
            await ensure_org(session, uuid.uuid4(), "demo", None)


async def test_unknown_org_is_a_404_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/intake/v1/forms/nobody-here")

    assert_problem(response, 404, "not-found")


async def test_malformed_slug_is_a_422_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/intake/v1/forms/Not_A_Slug")

    assert_problem(response, 422, "validation-error")


async def test_admin_puts_a_form_and_anyone_reads_it(client: httpx.AsyncClient, mint: Any) -> None:
    org_id = uuid.uuid4()
    token = mint(org=org_id, roles=["admin"])

    created = await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(token))
    read = await client.get("/intake/v1/forms/acme")

    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    assert read.status_code == 200
    form = read.json()
    assert form["customised"] is True
    assert form["version"] == 1
    assert form["categories"] == FORM["categories"]
    assert form["questions"][0]["choices"] == FORM["questions"][0]["choices"]
    assert form["resources"]["outside_reviewer"]["name"] == "Fair Review LLP"
    assert form["resources"]["policy"]["url"] == "https://example.org/policy"


async def test_putting_again_replaces_the_form_and_bumps_the_version(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = uuid.uuid4()
    await register(app, org_id, "acme", "Acme")
    token = mint(org=org_id, roles=["admin"])
    changed = copy.deepcopy(FORM)
    changed["categories"] = changed["categories"][:1]

    replaced = await client.put(
        "/intake/v1/forms/acme", json=changed, headers={**auth(token), "If-Match": '"1"'}
    )

    assert replaced.status_code == 200, replaced.text
    assert replaced.headers["etag"] == '"2"'
    assert replaced.json()["org_name"] == "Acme"
    assert [c["key"] for c in replaced.json()["categories"]] == ["harassment"]


async def test_put_with_a_stale_if_match_is_412(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    org_id = uuid.uuid4()
    await register(app, org_id, "acme", None)
    token = mint(org=org_id, roles=["admin"])

    response = await client.put(
        "/intake/v1/forms/acme", json=FORM, headers={**auth(token), "If-Match": '"7"'}
    )

    assert_problem(response, 412, "precondition-failed")


async def test_lang_es_flattens_every_label_to_spanish(
    client: httpx.AsyncClient, mint: Any
) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(token))

    response = await client.get("/intake/v1/forms/acme", params={"lang": "es"})

    assert response.status_code == 200
    form = response.json()
    assert form["lang"] == "es"
    assert form["categories"] == [
        {"key": "harassment", "label": "Acoso"},
        {"key": "other", "label": "Otra cosa"},
    ]
    question = form["questions"][0]
    assert question["label"] == "¿Dónde ocurrió?"
    assert question["choices"][0] == {"key": "office", "label": "En la oficina"}
    resources = form["resources"]
    assert resources["hotlines"][0]["name"] == "Línea de RAINN"
    assert resources["outside_reviewer"]["description"] == "Revisor independiente"
    assert resources["who_to_call"][0]["description"] == "Gestora de casos"
    assert resources["policy"]["title"] == "Nuestra política"


async def test_unsupported_lang_is_422(client: httpx.AsyncClient, app: FastAPI) -> None:
    await register(app, uuid.uuid4(), "demo", None)

    response = await client.get("/intake/v1/forms/demo", params={"lang": "fr"})

    assert_problem(response, 422, "validation-error")


@pytest.mark.parametrize("roles", [["case_manager"], ["staff"], []])
async def test_only_admins_put_forms(
    client: httpx.AsyncClient, mint: Any, roles: list[str]
) -> None:
    token = mint(org=uuid.uuid4(), roles=roles)

    response = await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(token))

    assert_problem(response, 403, "forbidden")


async def test_put_without_a_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.put("/intake/v1/forms/acme", json=FORM)

    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_another_orgs_admin_cannot_take_a_slug(client: httpx.AsyncClient, mint: Any) -> None:
    owner = mint(org=uuid.uuid4(), roles=["admin"])
    intruder = mint(org=uuid.uuid4(), roles=["admin"])
    await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(owner))

    response = await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(intruder))

    assert_problem(response, 404, "not-found")
    assert (await client.get("/intake/v1/forms/acme")).json()["version"] == 1


async def test_an_org_cannot_publish_under_a_second_slug(
    client: httpx.AsyncClient, mint: Any
) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    await client.put("/intake/v1/forms/acme", json=FORM, headers=auth(token))

    response = await client.put("/intake/v1/forms/acme-2", json=FORM, headers=auth(token))

    assert_problem(response, 404, "not-found")
    assert_problem(await client.get("/intake/v1/forms/acme-2"), 404, "not-found")


async def test_unknown_fields_are_a_422_problem(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    body = {**FORM, "org": "someone-else"}

    response = await client.put("/intake/v1/forms/acme", json=body, headers=auth(token))

    problem = assert_problem(response, 422, "validation-error")
    assert {"field": "body.org", "message": "Unknown field."} in problem["errors"]


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])

    response = await client.put(
        "/intake/v1/forms/acme",
        content=b'{"categories": [',
        headers={**auth(token), "Content-Type": "application/json"},
    )

    assert_problem(response, 400, "malformed-json")


async def test_text_plain_is_a_415_problem(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])

    response = await client.put(
        "/intake/v1/forms/acme",
        content=b"categories: harassment",
        headers={**auth(token), "Content-Type": "text/plain"},
    )

    assert_problem(response, 415, "unsupported-media-type")


async def test_an_oversized_label_is_a_422_problem(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    body = copy.deepcopy(FORM)
    body["categories"][0]["label"]["en"] = "x" * 501

    response = await client.put("/intake/v1/forms/acme", json=body, headers=auth(token))

    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["field"] == "body.categories.0.label.en"


async def test_too_many_categories_is_a_422_problem(client: httpx.AsyncClient, mint: Any) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    category = FORM["categories"][0]
    body = {
        **FORM,
        "categories": [{**category, "key": f"c{i}"} for i in range(51)],
    }

    response = await client.put("/intake/v1/forms/acme", json=body, headers=auth(token))

    assert_problem(response, 422, "validation-error")


async def test_a_choice_question_without_choices_is_a_422_problem(
    client: httpx.AsyncClient, mint: Any
) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    body = copy.deepcopy(FORM)
    del body["questions"][0]["choices"]

    response = await client.put("/intake/v1/forms/acme", json=body, headers=auth(token))

    assert_problem(response, 422, "validation-error")


async def test_a_failed_put_leaves_nothing_behind(
    app: FastAPI, client: httpx.AsyncClient, mint: Any
) -> None:
    token = mint(org=uuid.uuid4(), roles=["admin"])
    await client.put("/intake/v1/forms/acme", json={"categories": []}, headers=auth(token))

    async with app.state.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(ReportingForm)) == 0
