"""Case exports: the whole file as one ZIP with a signed manifest, verified online and offline
with only the public key; any tampering found; the exporters' door; refused once shredded;
audited, with an `exported` custody entry on each piece of evidence."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from case_file_support import (
    ATTACHMENT_BYTES,
    MESSAGE_TEXT,
    NOTE_TEXT,
    CaseFile,
    build_case_file,
    flip_one_byte,
    members,
    rezip,
)
from cases_world import Org, auth, problem
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI
from investigation_support import audit_entries, hidden_callers, shred, staff_headers

from upstander.cases.export.bundle import (
    MANIFEST,
    SIGNATURE,
    SigningKey,
    keys_from_jwks,
    sanitise_filename,
    thumbprint,
    verify_bundle,
)
from upstander.cases.settings import DEV_EXPORT_SIGNING_KEY, Settings
from upstander.kit.clock import FrozenClock

REPO = Path(__file__).resolve().parents[2]
DATA_MEMBERS = {
    "case.json",
    "report.json",
    "messages.json",
    "transitions.json",
    "allegations.json",
    "assignments.json",
    "actions.json",
    "checkins.json",
    "notes.json",
    "interviews.json",
    "evidence.json",
    "audit.json",
}


@pytest.fixture
async def org(client: httpx.AsyncClient, mint: Any, service_token: str) -> Org:
    return await Org(client, mint, service_token).build()


def export_url(case_id: uuid.UUID) -> str:
    return f"/cases/v1/cases/{case_id}/export"


async def export(org: Org, case_id: uuid.UUID, who: str = "reviewer") -> bytes:
    response = await org.client.get(export_url(case_id), headers=org.headers(who))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-length"] == str(len(response.content))
    return response.content


async def public_keys(org: Org) -> dict[str, Any]:
    response = await org.client.get("/cases/v1/export-keys")  # no token
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def verify_online(org: Org, bundle: bytes) -> dict[str, Any]:
    response = await org.client.post(
        "/cases/v1/exports/verify",
        files={"bundle": ("bundle.zip", bundle, "application/zip")},
        headers=org.headers("handler"),
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def verify_offline(
    tmp_path: Path, bundle: bytes, jwks: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    """`python -m upstander.cases.verify` in a process of its own, given only the key file."""
    bundle_file, key_file = tmp_path / "bundle.zip", tmp_path / "export-keys.json"
    bundle_file.write_bytes(bundle)
    key_file.write_text(json.dumps(jwks))
    return subprocess.run(
        [sys.executable, "-m", "upstander.cases.verify", str(bundle_file), "--key", str(key_file)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no .env, no settings: the key file is all it has
        check=False,
    )


def codes(bundle: bytes, jwks: dict[str, Any]) -> set[tuple[str, str | None]]:
    result = verify_bundle(io.BytesIO(bundle), keys_from_jwks(jwks))
    assert result.valid is (not result.problems)
    return {(p.code, p.path) for p in result.problems}


@pytest.fixture
async def case_file(app: FastAPI, org: Org, clock: FrozenClock) -> CaseFile:
    return await build_case_file(app, org, clock)


# ----------------------------------------------------------------------------- the bundle


async def test_an_export_holds_the_whole_case_file_and_a_manifest_of_every_member(
    org: Org, case_file: CaseFile, clock: FrozenClock
) -> None:
    bundle = await export(org, case_file.case_id)

    files = members(bundle)
    manifest = json.loads(files[MANIFEST])
    evidence_path = f"evidence/{case_file.evidence_id}/Screen_shot_e.png"
    report_path = f"report/attachments/{case_file.attachment_id}/Note_from_him.pdf"
    assert set(files) == DATA_MEMBERS | {evidence_path, report_path, MANIFEST, SIGNATURE}
    listed = {m["path"]: m for m in manifest["members"]}
    assert set(listed) == set(files) - {MANIFEST, SIGNATURE}
    for path, member in listed.items():
        assert member["size"] == len(files[path])
        assert member["sha256"] == hashlib.sha256(files[path]).hexdigest()
    assert manifest["case_id"] == str(case_file.case_id)
    assert manifest["case_number"] == "DEMO-2026-0001"
    assert manifest["exported_at"] == clock.now().isoformat()
    assert manifest["exporter"] == {
        "kind": "person",
        "id": str(org.reviewer),
        "roles": ["reviewer"],
    }
    assert (manifest["format"], manifest["version"], manifest["algorithm"]) == (
        "upstander-case-export",
        1,
        "Ed25519",
    )
    assert len(files[SIGNATURE]) == 64

    assert json.loads(files["case.json"])["number"] == "DEMO-2026-0001"
    report = json.loads(files["report.json"])["report"]
    assert report["description"] == "What happened"
    assert report["attachments"][0]["file"] == report_path
    assert files[report_path] == ATTACHMENT_BYTES
    bodies = [m["body"] for m in json.loads(files["messages.json"])["items"]]
    assert MESSAGE_TEXT in bodies and "The 20th." in bodies
    [note] = json.loads(files["notes.json"])["items"]
    assert [v["body"] for v in note["versions"]] == [NOTE_TEXT, NOTE_TEXT + " Both evening."]
    [interview] = json.loads(files["interviews.json"])["items"]
    assert interview["interviewee"] == {"person_id": None, "name": "Sam Ortiz"}
    [allegation] = json.loads(files["allegations.json"])["items"]
    assert (allegation["finding"], allegation["rationale"]) == (
        "substantiated",
        "Two witnesses agree",
    )
    actions = json.loads(files["actions.json"])
    assert [m["kind"] for m in actions["interim_measures"]] == ["no_contact"]
    assert [a["status"] for a in actions["corrective_actions"]] == ["done"]
    assert len(json.loads(files["checkins.json"])["items"]) == 1
    assert len(json.loads(files["transitions.json"])["items"]) == 2
    assert len(json.loads(files["assignments.json"])["items"]) == 1
    assert files[evidence_path] == case_file.evidence_bytes
    [item] = json.loads(files["evidence.json"])["items"]
    assert item["file"] == evidence_path
    assert item["sha256"] == hashlib.sha256(case_file.evidence_bytes).hexdigest()
    assert [c["action"] for c in item["custody"]][-1] == "exported"
    assert {"uploaded", "downloaded", "exported"} <= {c["action"] for c in item["custody"]}
    audit = json.loads(files["audit.json"])["items"]
    assert [e["seq"] for e in audit] == sorted(e["seq"] for e in audit)
    assert all({"seq", "prev_hash", "hash"} <= set(e) for e in audit)
    [own] = [e for e in audit if e["action"] == "case.export"]
    assert own["detail"]["export_id"] == manifest["export_id"]


async def test_a_fresh_export_verifies_online_and_offline_with_only_the_public_key(
    org: Org, case_file: CaseFile, tmp_path: Path
) -> None:
    bundle = await export(org, case_file.case_id)
    jwks = await public_keys(org)

    online = await verify_online(org, bundle)
    offline = verify_offline(tmp_path, bundle, jwks)

    assert online["valid"] is True and online["problems"] == []
    assert online["case_number"] == "DEMO-2026-0001"
    assert online["case_id"] == str(case_file.case_id)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert offline.stdout.startswith("valid: case DEMO-2026-0001")


async def test_one_byte_changed_in_any_member_makes_the_bundle_invalid(
    org: Org, case_file: CaseFile
) -> None:
    bundle = await export(org, case_file.case_id)
    jwks = await public_keys(org)
    assert codes(bundle, jwks) == set()

    for name in members(bundle):
        tampered = rezip(bundle, lambda files, n=name: {**files, n: flip_one_byte(files[n])})
        found = codes(tampered, jwks)
        if name in (MANIFEST, SIGNATURE):
            assert ("signature_invalid", SIGNATURE) in found, name
        else:
            assert found == {("member_modified", name)}, name


async def test_a_removed_an_added_or_a_renamed_member_makes_the_bundle_invalid(
    org: Org, case_file: CaseFile, tmp_path: Path
) -> None:
    bundle = await export(org, case_file.case_id)
    jwks = await public_keys(org)

    removed = rezip(bundle, lambda files: {k: v for k, v in files.items() if k != "notes.json"})
    added = rezip(bundle, lambda files: {**files, "extra/readme.txt": b"trust me"})
    renamed = rezip(
        bundle,
        lambda files: {("notes2.json" if k == "notes.json" else k): v for k, v in files.items()},
    )
    no_signature = rezip(bundle, lambda files: {k: v for k, v in files.items() if k != SIGNATURE})

    assert codes(removed, jwks) == {("member_missing", "notes.json")}
    assert codes(added, jwks) == {("member_unlisted", "extra/readme.txt")}
    assert codes(renamed, jwks) == {
        ("member_missing", "notes.json"),
        ("member_unlisted", "notes2.json"),
    }
    assert codes(no_signature, jwks) == {("signature_missing", SIGNATURE)}
    online = await verify_online(org, added)
    assert online["valid"] is False
    assert online["problems"] == [
        {
            "code": "member_unlisted",
            "path": "extra/readme.txt",
            "detail": "In the ZIP but not in the manifest.",
        }
    ]
    offline = verify_offline(tmp_path, removed, jwks)
    assert offline.returncode == 1
    assert "member_missing notes.json" in offline.stdout


async def test_a_forged_signature_makes_the_bundle_invalid_even_with_a_matching_manifest(
    org: Org, case_file: CaseFile, tmp_path: Path
) -> None:
    bundle = await export(org, case_file.case_id)
    jwks = await public_keys(org)
    forger = SigningKey(Ed25519PrivateKey.generate(), jwks["keys"][0]["kid"])

    def forge(files: dict[str, bytes]) -> dict[str, bytes]:
        # Change a member, fix its hash in the manifest, sign with another key under our kid.
        files = {**files, "messages.json": b'{"items": []}\n'}
        manifest = json.loads(files[MANIFEST])
        for member in manifest["members"]:
            if member["path"] == "messages.json":
                member["size"] = len(files["messages.json"])
                member["sha256"] = hashlib.sha256(files["messages.json"]).hexdigest()
        files[MANIFEST] = json.dumps(manifest).encode()
        files[SIGNATURE] = forger.sign(files[MANIFEST])
        return files

    forged = rezip(bundle, forge)

    assert codes(forged, jwks) == {("signature_invalid", SIGNATURE)}
    assert (await verify_online(org, forged))["valid"] is False
    offline = verify_offline(tmp_path, forged, jwks)
    assert offline.returncode == 1
    assert "signature_invalid" in offline.stdout
    # Checked against someone else's key set, even the genuine bundle names an unknown key.
    stranger = {"keys": [SigningKey(Ed25519PrivateKey.generate(), "other").jwk()]}
    assert codes(bundle, stranger) == {("unknown_key", SIGNATURE)}


async def test_what_is_not_a_bundle_is_invalid_never_an_error(org: Org) -> None:
    not_zip = await verify_online(org, b"this is not a zip file")
    no_manifest = await verify_online(org, _zip({"a.txt": b"a"}))
    bad_json = await verify_online(org, _zip({MANIFEST: b"{nope", SIGNATURE: b"x" * 64}))

    assert not_zip["valid"] is False and not_zip["problems"][0]["code"] == "not_a_bundle"
    assert [p["code"] for p in no_manifest["problems"]] == ["manifest_missing"]
    assert {p["code"] for p in bad_json["problems"]} == {"manifest_invalid", "signature_invalid"}


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


async def test_verifying_online_needs_a_token(org: Org) -> None:
    response = await org.client.post(
        "/cases/v1/exports/verify", files={"bundle": ("b.zip", b"PK", "application/zip")}
    )

    problem(response, 401, "unauthorized")


# ----------------------------------------------------------------------------- keys


async def test_the_export_keys_are_a_public_jwk_set_named_by_thumbprint(org: Org) -> None:
    jwks = await public_keys(org)

    [key] = jwks["keys"]
    assert (key["kty"], key["crv"], key["use"], key["alg"]) == ("OKP", "Ed25519", "sig", "EdDSA")
    assert key["kid"] == thumbprint(key["x"])
    assert key == SigningKey.from_seed(DEV_EXPORT_SIGNING_KEY).jwk()


def test_production_refuses_the_development_export_key_and_a_malformed_one() -> None:
    secrets = {"kek": "k1:" + "A" * 43 + "=", "service_secret": "s" * 32}
    with pytest.raises(pydantic.ValidationError, match="UPSTANDER_EXPORT_SIGNING_KEY"):
        Settings(mode="production", **secrets)
    with pytest.raises(pydantic.ValidationError, match="32 bytes"):
        Settings(export_signing_key="c2hvcnQ=")
    own = Settings(mode="production", export_signing_key="B" * 43 + "=", **secrets)
    assert own.export_signing_key != DEV_EXPORT_SIGNING_KEY


def test_file_names_in_a_bundle_are_made_safe() -> None:
    assert sanitise_filename("../../etc/passwd") == "etc_passwd"
    assert sanitise_filename("Zoë's photo (1).JPG") == "Zoe_s_photo_1_.JPG"
    assert sanitise_filename("...") == "file"
    assert sanitise_filename(None, "evidence") == "evidence"
    long = sanitise_filename("x" * 300 + ".pdf")
    assert len(long) == 120 and long.endswith(".pdf")


# ----------------------------------------------------------------------------- who may export


async def test_people_kept_from_the_case_and_staff_get_404(org: Org) -> None:
    _, case_id = await org.report()
    callers = await hidden_callers(org, case_id)
    callers["reviewer_of_other_org"] = auth(org.mint(org=uuid.uuid4(), roles=["reviewer"]))

    for who, headers in callers.items():
        response = await org.client.get(export_url(case_id), headers=headers)
        assert problem(response, 404, "not-found")["detail"] == "No such case.", who
    staff = await org.client.get(export_url(case_id), headers=staff_headers(org))
    problem(staff, 404, "not-found")


async def test_a_case_manager_exports_only_while_assigned_and_an_investigator_never(
    org: Org,
) -> None:
    _, case_id = await org.report()
    url = f"/cases/v1/cases/{case_id}"

    before = await org.client.get(export_url(case_id), headers=org.headers("handler"))
    assigned = await org.client.post(
        f"{url}/assignments",
        json={"person_id": str(org.handler), "role": "case_manager"},
        headers=org.headers("deputy"),
    )
    after = await org.client.get(export_url(case_id), headers=org.headers("handler"))
    investigator = await org.client.post(
        f"{url}/assignments",
        json={"person_id": str(org.investigator), "role": "investigator"},
        headers=org.headers("handler"),
    )
    by_investigator = await org.client.get(export_url(case_id), headers=org.headers("investigator"))
    by_admin = await org.client.get(export_url(case_id), headers=org.admin())

    assert problem(before, 403, "forbidden")["detail"] == (
        "Exporting a case takes the reviewer or admin role, or a case manager assigned to it."
    )
    assert assigned.status_code == 201, assigned.text
    assert after.status_code == 200, after.text
    assert investigator.status_code == 201, investigator.text
    problem(by_investigator, 403, "forbidden")
    assert by_admin.status_code == 200, by_admin.text


# ----------------------------------------------------------------------------- shredding, audit


async def test_an_export_is_refused_once_the_case_is_crypto_shredded(
    app: FastAPI, org: Org, clock: FrozenClock
) -> None:
    _, visible = await org.report()
    _, deleted = await org.report()
    async with app.state.sessionmaker() as session, session.begin():
        await app.state.vault.destroy_key(session, visible)
    await shred(app, clock, deleted)  # the retention pass: key destroyed, a tombstone left

    key_gone = await org.client.get(export_url(visible), headers=org.headers("reviewer"))
    tombstone = await org.client.get(export_url(deleted), headers=org.headers("reviewer"))

    problem(key_gone, 410, "shredded")
    problem(tombstone, 404, "not-found")
    assert await audit_entries(app, visible, "case.export") == []


async def test_the_audit_trail_records_each_export_and_each_refusal(
    app: FastAPI, org: Org, case_file: CaseFile
) -> None:
    bundle = await export(org, case_file.case_id)
    refused = await org.client.get(export_url(case_file.case_id), headers=org.headers("deputy"))

    manifest = json.loads(members(bundle)[MANIFEST])
    [entry] = await audit_entries(app, case_file.case_id, "case.export")
    assert (entry.actor_kind, entry.actor_id) == ("person", str(org.reviewer))
    assert entry.detail == {"export_id": manifest["export_id"], "key_id": manifest["key_id"]}
    problem(refused, 403, "forbidden")
    [refusal] = await audit_entries(app, case_file.case_id, "case.refused")
    assert refusal.actor_id == str(org.deputy)
    assert refusal.detail["status"] == 403 and refusal.detail["route"].endswith("/export")
