"""Completions: trainers record them one by one or by CSV; a person reads their own."""

from __future__ import annotations

from training_support import assert_problem, collect, make_course

COMPLETIONS = "/training/v1/completions"
IMPORTS = f"{COMPLETIONS}/imports"


def csv_headers(caller) -> dict[str, str]:
    return {**caller.headers, "Content-Type": "text/csv"}


async def test_trainer_records_a_completion_and_the_person_reads_it(client, caller, directory):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    person = await directory.hire(trainer.org_id)
    body = {
        "person_id": person["person_id"],
        "course_id": course["id"],
        "completed_at": "2025-12-01T10:00:00Z",
        "score": 95,
        "duration_minutes": 60,
        "certificate_id": "CERT-1",
    }
    created = await client.post(COMPLETIONS, json=body, headers=trainer.headers)
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "manual"
    assert_problem(await client.post(COMPLETIONS, json=body, headers=trainer.headers), 409)

    me = caller("staff", org=trainer.org_id, person=person["person_id"])
    mine = await collect(client, COMPLETIONS, me.headers)
    assert [c["id"] for c in mine] == [created.json()["id"]]
    colleague = caller("staff", org=trainer.org_id)
    assert await collect(client, COMPLETIONS, colleague.headers) == []
    assert_problem(
        await client.get(f"{COMPLETIONS}/{created.json()['id']}", headers=colleague.headers), 404
    )
    assert_problem(await client.post(COMPLETIONS, json=body, headers=me.headers), 403)


async def test_unknown_person_or_course_is_422(client, caller, directory):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers)
    stranger = await directory.hire(caller("trainer").org_id)
    body = {
        "person_id": stranger["person_id"],
        "course_id": course["id"],
        "completed_at": "2025-12-01T10:00:00Z",
    }
    problem = assert_problem(
        await client.post(COMPLETIONS, json=body, headers=trainer.headers), 422
    )
    assert problem["errors"][0]["field"] == "body.person_id"
    naive = {**body, "completed_at": "2025-12-01T10:00:00"}
    assert_problem(await client.post(COMPLETIONS, json=naive, headers=trainer.headers), 422)


async def test_import_validates_each_row_and_is_idempotent(client, caller, directory):
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers, title="Bystander 101")
    other = await make_course(
        client,
        trainer.headers,
        title="Supervisors",
        kind="supervisor_response",
        activity_ids=["https://lms.example.org/act/sup"],
    )
    alice = await directory.hire(trainer.org_id, email="alice@demo.example")
    bob = await directory.hire(trainer.org_id, email="bob@demo.example")
    text = (
        "Email,Course,Completed_At,Score,Duration_Minutes,Certificate_Id\n"
        f"alice@demo.example,{course['id']},2025-11-01,90,60,C-1\n"  # 2 by id
        "BOB@demo.example,bystander 101,2025-11-02T09:30:00Z,,,\n"  # 3 by title
        "bob@demo.example,https://lms.example.org/act/sup,2025-11-03,,,\n"  # 4 by activity
        "nobody@demo.example,Bystander 101,2025-11-01,,,\n"  # 5 unknown person
        "alice@demo.example,Pottery,2025-11-01,,,\n"  # 6 unknown course
        "alice@demo.example,Bystander 101,01/11/2025,,,\n"  # 7 bad date
        f"alice@demo.example,{course['id']},2025-11-01T00:00:00Z,,,\n"  # 8 duplicate of 2
        "alice@demo.example,Bystander 101,2025-11-05,250,,\n"  # 9 bad score
        "alice@demo.example,Bystander 101,2999-01-01,,,\n"  # 10 future
    )
    response = await client.post(IMPORTS, content=text, headers=csv_headers(trainer))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["accepted"] == 3
    assert [(r["row"], r["reason"]) for r in result["rejected"]] == [
        (5, "unknown_person"),
        (6, "unknown_course"),
        (7, "bad_date"),
        (8, "duplicate"),
        (9, "bad_value"),
        (10, "bad_date"),
    ]
    recorded = await collect(client, COMPLETIONS, trainer.headers, source="csv")
    assert len(recorded) == 3
    assert {c["person_id"] for c in recorded} == {alice["person_id"], bob["person_id"]}
    assert other["id"] in {c["course_id"] for c in recorded}

    again = (await client.post(IMPORTS, content=text, headers=csv_headers(trainer))).json()
    assert again["accepted"] == 0
    assert [r["row"] for r in again["rejected"] if r["reason"] == "duplicate"] == [2, 3, 4, 8]
    assert len(await collect(client, COMPLETIONS, trainer.headers, source="csv")) == 3


async def test_import_refuses_a_file_without_required_columns_and_staff(client, caller):
    trainer = caller("trainer")
    response = await client.post(
        IMPORTS, content="email,score\nx@y,1\n", headers=csv_headers(trainer)
    )
    problem = assert_problem(response, 400)
    assert {e["field"] for e in problem["errors"]} == {"csv.course", "csv.completed_at"}
    assert_problem(await client.post(IMPORTS, json={"a": 1}, headers=trainer.headers), 415)
    staff = caller("staff", org=trainer.org_id)
    assert_problem(await client.post(IMPORTS, content="email\n", headers=csv_headers(staff)), 403)


async def test_an_import_of_two_thousand_rows_accepts_every_row(client, caller, directory):
    """Every row of a large import is taken. How fast is the bench's to say
    (bench/training_compliance.py, the CSV import row): a wall-clock bound here failed
    whenever the machine was loaded (7.6 s against 3 s in CI)."""
    trainer = caller("trainer")
    course = await make_course(client, trainer.headers, title="Bulk course")
    people = [await directory.hire(trainer.org_id) for _ in range(20)]
    lines = ["email,course,completed_at"]
    for day in range(100):
        for person in people:
            lines.append(
                f"{person['email']},Bulk course,2025-{1 + day // 28:02d}-{1 + day % 28:02d}"
            )
    response = await client.post(
        IMPORTS, content="\n".join(lines) + "\n", headers=csv_headers(trainer)
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 2000, "rejected": []}
    assert course["id"]
