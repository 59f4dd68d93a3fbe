"""notify's notice engine reads events through the shared contracts
(`upstander.kit.contracts`): a notice event whose data breaks its contract is refused as a
dead letter naming the fields at fault (never their values) and tells nobody, a typed field
drives who is told, and data the contract does not name is ignored, never copied into a
notice."""

from __future__ import annotations

import json
import uuid
from typing import Any

from test_notices import case_opened, deliveries_for, inbox_of, person

from upstander.kit.contracts import CaseOpened, parse_event
from upstander.kit.events import CloudEvent
from upstander.notify.notices import notice_data, notice_params

DUE = "2026-03-16T10:00:00+00:00"
SERVICE = "notify"


async def _post(client: Any, events: Any, envelope: dict[str, Any]) -> Any:
    return await client.post(
        f"/{SERVICE}/internal/events", content=json.dumps(envelope), headers=events.headers
    )


async def test_a_case_event_that_breaks_its_contract_is_refused_and_tells_nobody(
    app, client, events
):
    org = uuid.uuid4()
    manager = await person(events, org, ["case_manager"])
    broken = case_opened(org, routed_to="everyone", number="Secret-words-7781")
    del broken["case_id"]

    response = await _post(
        client, events, events.envelope("upstander.case.opened", broken, org_id=org)
    )

    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["fields"] == ["case_id", "routed_to"]
    assert "Secret-words" not in response.text and "everyone" not in response.text
    assert await inbox_of(app, manager) == []
    assert await deliveries_for(app, manager) == []


async def test_a_reminder_reaches_the_person_its_typed_person_id_names(app, events):
    org = uuid.uuid4()
    learner = await person(events, org, ["staff"])
    bystander = await person(events, org, ["staff"])

    await events.publish(
        "upstander.training.due_soon",
        {
            "person_id": learner["person_id"],
            "course_id": str(uuid.uuid4()),
            "requirement_id": str(uuid.uuid4()),
            "due_at": DUE,
            # A field a newer training might add: ignored, never a template parameter.
            "course_title": "Secret-title-1234",
        },
        org_id=org,
        source="/training",
    )

    (message,) = await inbox_of(app, learner)
    assert message.kind == "training.due_soon"
    assert "Secret-title" not in message.subject + message.body
    (delivery, *_) = await deliveries_for(app, learner)
    assert "course_title" not in delivery.params
    assert await inbox_of(app, bystander) == []


async def test_a_reminder_without_its_person_is_a_dead_letter_not_a_silent_drop(client, events):
    org = uuid.uuid4()
    envelope = events.envelope(
        "upstander.training.overdue",
        {"course_id": str(uuid.uuid4()), "requirement_id": str(uuid.uuid4()), "due_at": DUE},
        org_id=org,
        source="/training",
    )

    response = await _post(client, events, envelope)

    assert response.status_code == 400, response.text
    assert response.json()["fields"] == ["person_id"]


def test_notice_data_is_the_contract_model_and_its_params_come_from_it() -> None:
    org = uuid.uuid4()
    data = CaseOpened(
        case_id=uuid.uuid4(), number="DEMO-2026-0042", routed_to="reviewers"
    ).model_dump(mode="json")
    event = CloudEvent.model_validate(
        {
            "id": str(uuid.uuid4()),
            "source": "/cases",
            "type": "upstander.case.opened",
            "time": "2026-11-27T16:00:00+00:00",
            "orgid": str(org),
            "data": {**data, "unknown_field": "Secret-5512"},
        }
    )

    parsed = notice_data(event)

    assert isinstance(parsed, CaseOpened) and parsed == parse_event(event, CaseOpened)
    params = notice_params(parsed)
    assert params == {"case_id": data["case_id"], "number": "DEMO-2026-0042"}
    # A type without a contract: nothing to tell anyone.
    other = event.model_copy(update={"type": "upstander.case.unheard_of"})
    assert notice_data(other) is None
