"""The case-access matrix: every route of every service that takes a case, read from the apps'
route tables, called through the gateway by each kind of caller the conflict rules shut out,
on a real case that holds one record of every kind.

Why generated: a route added under `/cases/v1/cases/{case_id}/...` (or any route with a
`case_id` path or query parameter, in any service) is in the matrix the day it is added,
without anyone remembering to list it. A route whose path holds an id the case world has no
record for (`CaseWorld.records`) fails the matrix until one is added, so it cannot slip
through with a random id that would be refused for the wrong reason.

What a restricted caller must get on every (route, method):
- no content: the answer holds none of the case's markers (its number, id, report id, the
  ids of its records, and the text written into each record);
- no existence signal: the answer for the real case is the answer for a random case id
  (status, content type, and the problem's `type`, `title`, `detail`... everything but the
  echoed `instance` and the `request_id`), and, for a case in the path, it is a 404, or a 403
  when the caller's roles are refused before any lookup (a listing filtered by `?case_id=`
  answers the same page as for a random id: an empty one).

The restricted callers, each given roles that would otherwise open the case (admin, case
manager and reviewer), so only the conflict rules stop them: the respondent, their manager
(the chain above), a person the reporter excluded, a handler who was assigned and then recused,
an API client (same roles) registered by the manager above the respondent, and an admin of
another organisation. Alongside them:
- a plain staff member (no handler role), refused by role the same for the real case and a
  random one (the 403 side of "no existence signal");
- a control: an admin who may see the case gets, on every read, a different answer for the
  real case than for a random id, so the matrix's requests do reach the case (a matrix of
  malformed requests would pass vacuously);
- the organisation-wide reads (every GET route of every service without a path parameter,
  all pages) and the reads of a neighbouring case linked to the hidden one hold none of the
  hidden case's markers;
- `test_the_matrix_flags_a_case_route_that_forgets_the_visibility_check` registers a leaky
  route on the cases app in process and shows the matrix reports it.

Out of scope: the reporter's routes (`/reporter/`, a receipt-code token scoped to one report;
tests/e2e/test_report_to_case.py) and the services' internal routes (`/internal/`, never
routed by the gateway, service tokens only; tests/e2e/test_report_read.py).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from harness import DEMO_PASSWORD, Platform, running_platform
from jsonschema_rs import Draft202012Validator

from upstander.cases.access import CaseCtx
from upstander.cases.models import Case
from upstander.kit.routing import dependants

PASSWORD = "a-long-password-1"
# Roles that open a case routed to case managers (and, for reviewers, every case): only the
# conflict rules may stop a caller holding them.
OPENING_ROLES = ["admin", "case_manager", "reviewer"]
# What an API client needs to reach every case route (clients pass routes by scope).
CASE_SCOPES = [
    "cases:read",
    "cases:content",
    "cases:write",
    "cases:export",
    "cases:admin",
    "audit:read",
    "stats:read",
]
RESTRICTED = ("respondent", "chain_above", "excluded", "recused", "api_client", "other_org")
# A plain staff member: no handler role; the same answer for the real case as for any id.
REFUSED_BY_ROLE = "staff"
PRINCIPALS = (*RESTRICTED, REFUSED_BY_ROLE)
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# Parts of a problem answer that echo the request rather than the case.
ECHOED = ("instance", "request_id")
# How many pages of an organisation-wide listing to read.
MAX_PAGES = 20
_PATH_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def marker(label: str) -> str:
    """A unique string to look for in answers."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


# ----------------------------------------------------------------------------- route table


@dataclass(frozen=True)
class Route:
    """One (route, method) of one app's route table, with its OpenAPI operation if any."""

    app: str
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    operation: Mapping[str, Any] | None
    components: Mapping[str, Any] = field(repr=False)

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def takes_case(self) -> bool:
        """The route names a case: by path (`/cases/{case_id}/...`) or by query (`?case_id=`)."""
        return "case_id" in self.path_params or "case_id" in self.query_params


def _route_contexts(app: FastAPI) -> list[Any]:
    """Every route of the app, included routers flattened (FastAPI ≥ 0.160 keeps an included
    router as one `_IncludedRouter` entry of `app.routes`; `iter_route_contexts` walks it)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: included routes are plain entries of app.routes
        return list(app.routes)
    return list(iter_route_contexts(app.routes))


def _parameter_names(dependant: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(path, query) parameter names of a route, its dependencies' included: the case door
    takes `case_id` in a dependency, not in the endpoint's own signature."""
    path: list[str] = []
    query: list[str] = []
    for current in dependants(dependant):
        path += [p.alias for p in current.path_params]
        query += [p.alias for p in current.query_params]
    return tuple(dict.fromkeys(path)), tuple(dict.fromkeys(query))


def platform_routes(apps: Mapping[str, FastAPI]) -> list[Route]:
    """Every (route, method) of every app, read from the route tables (not from a list kept
    here), minus the reporter's and the internal routes (out of scope, see the docstring)."""
    routes: list[Route] = []
    for name, app in apps.items():
        spec = app.openapi()
        components = spec.get("components", {})
        for context in _route_contexts(app):
            if not isinstance(getattr(context, "original_route", context), APIRoute):
                continue  # docs, the OpenAPI document, the gateway's proxy mounts
            path: str = context.path
            if "/internal/" in path or "/reporter/" in path:
                continue
            path_params, query_params = _parameter_names(context.dependant)
            for method in sorted(set(context.methods or ()) & set(METHODS)):
                operation = spec.get("paths", {}).get(path, {}).get(method.lower())
                routes.append(
                    Route(name, method, path, path_params, query_params, operation, components)
                )
    return routes


# ----------------------------------------------------------------------------- the case world


@dataclass
class CaseWorld:
    """The platform, one case with a record of every kind, and the callers of the matrix."""

    platform: Platform
    case_id: str
    number: str
    neighbour_id: str  # a case linked to the hidden one, visible to the org's restricted
    records: dict[str, str]  # path parameter name → id of the case's record of that kind
    markers: dict[str, str]  # what must never reach a restricted caller → its label
    headers: dict[str, dict[str, str]]  # caller → Authorization header
    opened: dict[str, str]  # caller → a case their roles open
    calls: int = 0

    async def send(self, kwargs: dict[str, Any]) -> httpx.Response:
        self.calls += 1
        return await self.platform.gateway.request(**kwargs)


def _created(response: httpx.Response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


async def _person(
    platform: Platform, name: str, roles: list[str], manager: str | None = None
) -> tuple[str, str]:
    """(id, email) of a new person of the demo organisation, with a password."""
    email = f"{name}-{uuid.uuid4().hex[:6]}@demo.example"
    body = {"email": email, "name": name.title(), "roles": roles, "password": PASSWORD}
    if manager is not None:
        body["manager_id"] = manager
    response = await platform.gateway.post(
        "/identity/v1/people", json=body, headers=await platform.auth("admin@demo.example")
    )
    return str((_created(response))["id"]), email


async def _other_org_admin(platform: Platform) -> tuple[dict[str, str], str]:
    """An admin (with every opening role) of a second organisation, signed in there, and a
    case of that organisation (which their roles open)."""
    from upstander.gateway.identity import service
    from upstander.gateway.identity.schemas import PersonCreate

    slug = f"org-b-{uuid.uuid4().hex[:6]}"
    email = f"admin@{slug}.example"
    async with platform.apps["gateway"].state.sessionmaker() as session:
        org = await service.create_org(session, slug=slug, name="Organisation B")
        await service.create_person(
            session,
            service.system_principal(org.id),
            PersonCreate(email=email, name="B Admin", roles=OPENING_ROLES, password=PASSWORD),
        )
        await session.commit()
    await platform.drain()
    headers = await platform.auth(email, password=PASSWORD, org=slug)
    report = {"org": slug, "mode": "anonymous", "description": "In B", "categories": ["other"]}
    _created(await platform.gateway.post("/intake/v1/reports", json=report))
    await platform.drain()
    listing = await platform.gateway.get("/cases/v1/cases", headers=headers)
    [case] = _created(listing, 200)["items"]
    return headers, str(case["id"])


async def _client_of(platform: Platform, owner_email: str) -> dict[str, str]:
    """A client_credentials token of an API client the given admin registers, with the roles
    and scopes that would open the case to it."""
    owner = await platform.auth(owner_email, password=PASSWORD)
    created = _created(
        await platform.gateway.post(
            "/identity/v1/clients",
            json={"name": "HR sync of the chain", "roles": OPENING_ROLES, "scopes": CASE_SCOPES},
            headers=owner,
        )
    )
    token = await platform.gateway.post(
        "/auth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
        },
    )
    assert token.status_code == 200, token.text
    return auth(token.json()["access_token"])


async def _report(
    platform: Platform, report: dict[str, Any], file: tuple[str, bytes] | None = None
) -> tuple[str, dict[str, Any]]:
    """File a report at intake and let it become a case: (case id, intake's answer)."""
    if file is None:
        response = await platform.gateway.post("/intake/v1/reports", json=report)
    else:
        response = await platform.gateway.post(
            "/intake/v1/reports",
            files=[
                ("report", (None, json.dumps(report), "application/json")),
                ("files", (file[0], file[1], "image/png")),
            ],
        )
    filed = _created(response)
    await platform.drain()
    if file is not None:
        # The file moves from intake into the case file (the fetcher's work in the background).
        assert await platform.apps["cases"].state.attachment_fetcher.run_once() == 1
    listing = await platform.gateway.get(
        "/cases/v1/cases?limit=200", headers=await platform.auth("admin@demo.example")
    )
    assert listing.status_code == 200, listing.text
    [case] = [c for c in listing.json()["items"] if c["report_id"] == filed["report_id"]]
    return str(case["id"]), filed


def _subject(headers: dict[str, str]) -> str:
    """The person id a staff token is for."""
    token = headers["authorization"].removeprefix("Bearer ")
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


async def build_world(platform: Platform) -> CaseWorld:
    """One case of the demo organisation with a record of every kind, hidden by a conflict
    rule from each restricted caller; every id and text that goes in is a marker."""
    text = {label: marker(label) for label in LABELS}
    chief, chief_email = await _person(platform, "chief", OPENING_ROLES)
    respondent, respondent_email = await _person(platform, "respondent", OPENING_ROLES, chief)
    excluded, excluded_email = await _person(platform, "excluded", OPENING_ROLES)
    recused, recused_email = await _person(platform, "recused", OPENING_ROLES)
    await platform.drain()

    png = b"\x89PNG\r\n\x1a\n" + text["attachment"].encode() + bytes(range(256))
    report = {
        "org": "demo",
        "mode": "confidential",
        "description": text["description"],
        "categories": ["sexual_harassment"],
        "location": text["location"],
        "people_involved": [{"person_id": respondent, "role": "subject"}],
        "witnesses": [{"name": text["witness"]}],
        "excluded_person_ids": [excluded],
        "reporter": {"name": text["reporter_name"], "contact": f"{text['contact']}@example.net"},
    }
    case_id, filed = await _report(platform, report, (f"{text['attachment_name']}.png", png))
    admin = await platform.auth("admin@demo.example")
    manager = await platform.auth("case_manager@demo.example")
    case = (await platform.gateway.get(f"/cases/v1/cases/{case_id}", headers=admin)).json()
    number = str(case["number"])
    url = f"/cases/v1/cases/{case_id}"
    now = platform.clock.now()
    records: dict[str, str] = {}

    async def post(path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        return _created(await platform.gateway.post(url + path, json=body, headers=headers))

    await post("/transitions", {"to": "triage"}, manager)
    await post("/messages", {"body": text["message"]}, manager)
    assigned = await post("/assignments", {"person_id": recused, "role": "case_manager"}, admin)
    records["assignment_id"] = str(assigned["id"])
    recusal = await platform.gateway.post(
        url + "/recusal", headers=await platform.auth(recused_email, password=PASSWORD)
    )
    assert recusal.status_code == 201, recusal.text
    investigator = await platform.auth("investigator@demo.example")
    await post("/assignments", {"person_id": _subject(investigator), "role": "investigator"}, admin)
    await post("/transitions", {"to": "investigating"}, investigator)
    await post(
        "/interim-measures",
        {
            "kind": "no_contact",
            "starts_on": now.date().isoformat(),
            "approved_by": _subject(admin),
            "notes": text["measure"],
        },
        admin,
    )
    allegation = await post(
        "/allegations",
        {"category": "sexual_harassment", "description": text["allegation"]},
        manager,
    )
    records["allegation_id"] = str(allegation["id"])
    finding = await platform.gateway.put(
        f"{url}/allegations/{allegation['id']}/finding",
        json={"finding": "substantiated", "rationale": text["finding"]},
        headers=manager,
    )
    _created(finding, 200)
    action = await post(
        "/corrective-actions",
        {"description": text["action"], "due_at": (now + timedelta(days=30)).isoformat()},
        manager,
    )
    records["action_id"] = str(action["id"])
    note = await post("/notes", {"body": text["note"]}, manager)
    records["note_id"] = str(note["id"])
    await post(f"/notes/{note['id']}/versions", {"body": text["note_version"]}, manager)
    interview = await post(
        "/interviews",
        {
            "interviewee": {"name": text["interviewee"]},
            "role": "witness",
            "held_at": (now - timedelta(hours=1)).isoformat(),
            "summary": text["interview"],
        },
        manager,
    )
    records["interview_id"] = str(interview["id"])
    evidence = await platform.gateway.post(
        f"{url}/evidence",
        files={"file": ("messages.png", png, "image/png")},
        data={
            "description": text["evidence"],
            "source": text["evidence_source"],
            "collected_at": (now - timedelta(days=1)).isoformat(),
        },
        headers=manager,
    )
    records["evidence_id"] = str((_created(evidence))["id"])
    attachments = await platform.gateway.get(f"{url}/attachments", headers=manager)
    [attachment] = attachments.json()["items"]
    records["attachment_id"] = str(attachment["id"])
    receipt = await platform.gateway.post(
        "/auth/receipt", json={"org": "demo", "receipt_code": filed["receipt_code"]}
    )
    reply = await platform.gateway.post(
        "/cases/v1/reporter/messages",
        json={"body": text["reply"]},
        headers=auth((_created(receipt, 200))["access_token"]),
    )
    _created(reply)

    # A neighbouring case, visible to the org's restricted callers, linked to the hidden one.
    neighbour, _ = await _report(
        platform,
        {
            "org": "demo",
            "mode": "anonymous",
            "description": "A neighbouring report",
            "categories": ["sexual_harassment"],
        },
    )
    link = await platform.gateway.post(
        f"/cases/v1/cases/{neighbour}/links",
        json={"case_id": case_id, "kind": "same_subject"},
        headers=admin,
    )
    _created(link)
    await platform.drain()

    other_org, other_org_case = await _other_org_admin(platform)
    headers = {
        "respondent": await platform.auth(respondent_email, password=PASSWORD),
        "chain_above": await platform.auth(chief_email, password=PASSWORD),
        "excluded": await platform.auth(excluded_email, password=PASSWORD),
        "recused": await platform.auth(recused_email, password=PASSWORD),
        "api_client": await _client_of(platform, chief_email),
        "other_org": other_org,
        "staff": await platform.auth("staff@demo.example", password=DEMO_PASSWORD),
        "control": admin,
    }
    markers = {value: label for label, value in text.items()}
    markers |= {case_id: "case id", number: "case number", str(filed["report_id"]): "report id"}
    markers |= {value: name for name, value in records.items()}
    # A case each caller's roles open (so the matrix's 404s come from the conflict rules).
    opened = {caller: neighbour for caller in headers} | {"other_org": other_org_case}
    return CaseWorld(platform, case_id, number, neighbour, records, markers, headers, opened)


LABELS = (
    "description",
    "measure",
    "location",
    "witness",
    "reporter_name",
    "contact",
    "attachment",
    "attachment_name",
    "message",
    "reply",
    "allegation",
    "finding",
    "action",
    "note",
    "note_version",
    "interviewee",
    "interview",
    "evidence",
    "evidence_source",
)


# ----------------------------------------------------------------------------- requests


class MissingRecord(LookupError):
    """A route's path names an id the case world has no record for."""


def _resolve(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        schema = {
            **components.get("schemas", {}).get(name, {}),
            **{k: v for k, v in schema.items() if k != "$ref"},
        }
    return schema


def sample(schema: Mapping[str, Any], components: Mapping[str, Any]) -> Any:
    """A minimal valid value for a JSON schema: its own example if it has one, else one built
    from its required properties (requests only need to get past validation)."""
    schema = _resolve(schema, components)
    for key in ("examples", "example"):
        if key in schema:
            value = schema[key]
            return value[0] if key == "examples" and isinstance(value, list) and value else value
    if "default" in schema:
        return schema["default"]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, components).get("type") != "null"]
            return sample(options[0] if options else schema[key][0], components)
    if "allOf" in schema:
        return sample(schema["allOf"][0], components)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {
            name: sample(properties[name], components)
            for name in schema.get("required", [])
            if name in properties
        }
    if kind == "array":
        return [sample(schema.get("items", {}), components)] * int(schema.get("minItems", 0))
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    formats = {
        "uuid": str(uuid.uuid4()),
        "date-time": "2026-01-05T10:00:00Z",
        "date": "2026-01-05",
        "email": "someone@example.org",
        "uri": "https://example.org/",
    }
    return formats.get(schema.get("format", ""), "x" * max(1, int(schema.get("minLength", 1))))


def _body(route: Route) -> dict[str, Any]:
    """httpx keyword arguments for the operation's request body (JSON or multipart)."""
    body = (route.operation or {}).get("requestBody")
    if not body:
        return {}
    content: Mapping[str, Any] = body.get("content", {})
    if "application/json" in content:
        media = content["application/json"]
        if "example" in media:
            return {"json": media["example"]}
        return {"json": sample({**media.get("schema", {})}, route.components)}
    if "multipart/form-data" in content:
        media = content["multipart/form-data"]
        schema = _resolve(media.get("schema", {}), route.components)
        given = dict(media.get("example", {}))
        files: dict[str, Any] = {}
        data: dict[str, Any] = {}
        for name, prop in schema.get("properties", {}).items():
            if name not in schema.get("required", []) and name not in given:
                continue
            if _resolve(prop, route.components).get("format") == "binary":
                files[name] = ("matrix.txt", b"a plain text file", "text/plain")
            else:
                data[name] = given.get(name, sample(prop, route.components))
        return {"files": files, "data": data}
    return {"content": b"", "headers": {"content-type": next(iter(content))}}


def request_for(
    route: Route, world: CaseWorld, case_id: str, headers: Mapping[str, str]
) -> dict[str, Any]:
    """The httpx request for a (route, method) on `case_id`, with the case's real record ids
    in the path, the required query parameters and headers, and a valid body."""
    ids = {**world.records, "case_id": case_id}
    unknown = [name for name in route.path_params if name not in ids]
    if unknown:
        raise MissingRecord(
            f"{route.label}: no record of the case for {unknown}; give the case world one "
            "(CaseWorld.records) so the matrix calls this route with a real id"
        )
    url = _PATH_PARAM.sub(lambda m: ids[m.group(1)], route.path)
    params: dict[str, Any] = {}
    extra_headers: dict[str, str] = {}
    for parameter in (route.operation or {}).get("parameters", []):
        name, where = parameter["name"], parameter["in"]
        if where == "query" and parameter.get("required") and name != "case_id":
            params[name] = sample(parameter.get("schema", {}), route.components)
        elif where == "header" and name.lower() == "if-match":
            extra_headers["if-match"] = '"1"'
    if "case_id" in route.query_params:
        params["case_id"] = case_id
    request: dict[str, Any] = {"method": route.method, "url": url, "params": params}
    request |= _body(route)
    request["headers"] = {**request.get("headers", {}), **extra_headers, **headers}
    return request


# ----------------------------------------------------------------------------- judging


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    shown: str  # the body, less what a problem echoes of the request

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        content_type = response.headers.get("content-type", "").split(";")[0]
        try:
            body = response.json()
        except ValueError:
            return cls(response.status_code, content_type, response.text)
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in ECHOED}
        return cls(response.status_code, content_type, json.dumps(body, sort_keys=True))


def shown_markers(world: CaseWorld, text: str) -> list[str]:
    """The labels of the case's markers found in an answer."""
    found = [label for value, label in world.markers.items() if value in text]
    return sorted(set(found))


async def probe_case_routes(
    world: CaseWorld, caller: str, routes: list[Route]
) -> tuple[list[str], int]:
    """Call every route that takes a case as `caller`, with the real case and with a random
    id: the violations of "no content, no existence signal", and how many routes were probed."""
    headers = world.headers[caller]
    violations: list[str] = []
    probed = 0
    for route in routes:
        if not route.takes_case:
            continue
        try:
            real_request = request_for(route, world, world.case_id, headers)
            random_request = request_for(route, world, str(uuid.uuid4()), headers)
        except MissingRecord as error:
            violations.append(str(error))
            continue
        probed += 1
        real = Answer.of(await world.send(real_request))
        random = Answer.of(await world.send(random_request))
        # A route that filters a listing by `?case_id=` answers a page; for a hidden case it
        # must be the page a random id gets (compared below), not necessarily a 404.
        if real.status not in (403, 404) and "case_id" in route.path_params:
            violations.append(f"{route.label}: {real.status} for the real case {real.shown[:300]}")
        if real != random:
            violations.append(
                f"{route.label}: the real case answers {real.status} {real.shown[:200]}, "
                f"a random id {random.status} {random.shown[:200]}"
            )
        if shown := shown_markers(world, real.shown):
            violations.append(f"{route.label}: the answer shows {shown}")
    return violations, probed


async def _read_all_pages(world: CaseWorld, request: dict[str, Any]) -> list[str]:
    """The answers of a GET, following `next_cursor` for a few pages."""
    texts: list[str] = []
    for _ in range(MAX_PAGES):
        response = await world.send(request)
        texts.append(Answer.of(response).shown)
        try:
            cursor = response.json().get("next_cursor") if response.status_code == 200 else None
        except (ValueError, AttributeError):
            cursor = None
        if not cursor:
            break
        request = {**request, "params": {**request["params"], "cursor": cursor}}
    return texts


async def probe_other_reads(
    world: CaseWorld, caller: str, routes: list[Route]
) -> tuple[list[str], int]:
    """The organisation-wide reads (GET routes without a path parameter) and the reads of the
    neighbouring case: none may hold the hidden case's markers."""
    headers = world.headers[caller]
    violations: list[str] = []
    probed = 0
    for route in routes:
        if route.method != "GET":
            continue
        if not route.path_params:
            request = request_for(route, world, world.case_id, headers)
            request["params"].pop("case_id", None)  # the org-wide listing, not one case's
        elif route.path_params == ("case_id",):
            request = request_for(route, world, world.neighbour_id, headers)
        else:
            continue  # other objects' ids (a webhook, a person): nothing of the case is named
        probed += 1
        for text in await _read_all_pages(world, request):
            if shown := shown_markers(world, text):
                violations.append(f"{route.label} ({request['url']}): shows {shown}")
    return violations, probed


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CaseWorld]:
    directory: Path = tmp_path_factory.mktemp("matrix")
    async with running_platform(directory) as platform:
        yield await build_world(platform)


@pytest.fixture(scope="module")
def routes(world: CaseWorld) -> list[Route]:
    return platform_routes(world.platform.apps)


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("caller", RESTRICTED)
async def test_a_restricted_caller_holds_roles_that_open_other_cases(
    world: CaseWorld, caller: str
) -> None:
    """Only the conflict rules keep them out of the hidden case: another case opens to them."""
    response = await world.platform.gateway.get(
        f"/cases/v1/cases/{world.opened[caller]}", headers=world.headers[caller]
    )
    assert response.status_code == 200, response.text


def test_the_matrix_covers_every_case_route_of_every_service(routes: list[Route]) -> None:
    case_routes = [r for r in routes if r.takes_case]
    services = {r.path.split("/")[1] for r in routes}
    # What the route tables held when this was written; the matrix grows with them.
    assert len(case_routes) >= 40, [r.label for r in case_routes]
    assert {"identity", "intake", "cases", "training", "notify"} <= services
    for expected in (
        "GET /cases/v1/cases/{case_id}",
        "GET /cases/v1/cases/{case_id}/notes/{note_id}",
        "GET /cases/v1/cases/{case_id}/attachments/{attachment_id}/content",
        "GET /cases/v1/cases/{case_id}/export",
        "GET /cases/v1/audit",
        "PUT /cases/v1/cases/{case_id}/allegations/{allegation_id}/finding",
    ):
        assert expected in {r.label for r in case_routes}, expected


@pytest.mark.parametrize("caller", PRINCIPALS)
async def test_a_caller_the_case_is_hidden_from_gets_no_content_and_no_existence_signal(
    world: CaseWorld, routes: list[Route], caller: str
) -> None:
    violations, probed = await probe_case_routes(world, caller, routes)
    assert probed >= 40
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("caller", PRINCIPALS)
async def test_organisation_wide_reads_and_a_linked_case_show_nothing_of_a_hidden_case(
    world: CaseWorld, routes: list[Route], caller: str
) -> None:
    violations, probed = await probe_other_reads(world, caller, routes)
    assert probed >= 30
    assert not violations, "\n".join(violations)


def test_the_matrix_sends_bodies_that_validate_against_the_documented_schema(
    world: CaseWorld, routes: list[Route]
) -> None:
    """So a restricted caller's 404 is the case door's, not a validation error's."""
    invalid: list[str] = []
    for route in routes:
        if not route.takes_case:
            continue
        request = request_for(route, world, world.case_id, {})
        content = (route.operation or {}).get("requestBody", {}).get("content", {})
        if "json" in request:
            schema = {**content["application/json"]["schema"], "components": route.components}
            errors = [e.message for e in Draft202012Validator(schema).iter_errors(request["json"])]
            if errors:
                invalid.append(f"{route.label}: {errors}")
        elif "files" in request:
            schema = content["multipart/form-data"]["schema"]
            missing = set(schema.get("required", [])) - set(request["files"]) - set(request["data"])
            if missing:
                invalid.append(f"{route.label}: missing {sorted(missing)}")
    assert not invalid, "\n".join(invalid)


async def test_an_admin_who_may_see_the_case_tells_it_from_a_random_id_on_every_read(
    world: CaseWorld, routes: list[Route]
) -> None:
    """The control: the matrix's requests reach the case (real ids, a routed path)."""
    headers = world.headers["control"]
    same: list[str] = []
    for route in routes:
        if not route.takes_case or route.method != "GET":
            continue
        real = Answer.of(await world.send(request_for(route, world, world.case_id, headers)))
        random = Answer.of(await world.send(request_for(route, world, str(uuid.uuid4()), headers)))
        if real == random or real.status >= 500:
            same.append(f"{route.label}: {real.status} {real.shown[:200]}")
    assert not same, "\n".join(same)


async def test_the_matrix_flags_a_case_route_that_forgets_the_visibility_check(
    world: CaseWorld,
) -> None:
    cases: FastAPI = world.platform.apps["cases"]

    async def leaky_case_summary(case_id: uuid.UUID, ctx: CaseCtx) -> dict[str, Any]:
        # The mistake the matrix is for: the handler roles are checked, the case is not.
        case = await ctx.session.get(Case, case_id)
        if case is None:
            return {"number": None}
        return {"number": case.number}

    path = "/cases/v1/cases/{case_id}/matrix-leak"
    cases.add_api_route(path, leaky_case_summary, methods=["GET"], operation_id="leak")
    added = cases.router.routes[-1]
    cases.openapi_schema = None
    try:
        leaky = [r for r in platform_routes(world.platform.apps) if r.path == path]
        violations, probed = await probe_case_routes(world, "chain_above", leaky)
    finally:
        cases.router.routes.remove(added)
        cases.openapi_schema = None
    gone = await world.platform.gateway.get(
        path.format(case_id=world.case_id), headers=world.headers["chain_above"]
    )
    assert gone.status_code == 404  # the leak is removed again
    assert [r.label for r in leaky] == [f"GET {path}"]
    assert probed == 1
    assert any("200 for the real case" in v for v in violations), violations
    assert any("shows ['case number']" in v for v in violations), violations
    assert any("a random id 200" in v for v in violations), violations
