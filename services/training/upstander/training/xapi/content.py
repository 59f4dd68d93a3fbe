"""What the LRS does with statement content beyond validation: normalising (context
activities as lists), attachments (multipart/mixed in and out, the SHA-2 of every part, signed
statements), merging activity definitions, and the `ids` and `canonical` formats."""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import json
import secrets
from email.parser import BytesHeaderParser
from typing import Any

from upstander.training.xapi.validation import InvalidStatement, fail

SIGNATURE = "http://adlnet.gov/expapi/attachments/signature"
SIGNATURE_ALGORITHMS = frozenset({"RS256", "RS384", "RS512"})
# What a statement's signature payload may lack or differ in (the LRS sets or adds these).
UNSIGNED_KEYS = frozenset({"id", "authority", "stored", "version", "attachments", "timestamp"})


# ----------------------------------------------------------------------------- normalising


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """The statement as stored: each context activity list a list (even of one)."""
    body = copy.deepcopy(body)

    def fix(statement: dict[str, Any]) -> None:
        context = statement.get("context")
        if isinstance(context, dict) and isinstance(context.get("contextActivities"), dict):
            activities = context["contextActivities"]
            for key, value in list(activities.items()):
                if isinstance(value, dict):
                    activities[key] = [value]
        target = statement.get("object")
        if isinstance(target, dict) and target.get("objectType") == "SubStatement":
            fix(target)

    fix(body)
    return body


def merge_definition(into: dict[str, Any], definition: dict[str, Any]) -> None:
    """Merge a definition into the one known: language maps by language, the rest replaced."""
    for key, value in definition.items():
        if key in ("name", "description") and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        else:
            into[key] = copy.deepcopy(value)


# ----------------------------------------------------------------------------- attachments


def sha2_of(data: bytes, length: int) -> str:
    return {
        56: hashlib.sha224,
        64: hashlib.sha256,
        96: hashlib.sha384,
        128: hashlib.sha512,
    }.get(length, hashlib.sha256)(data).hexdigest()


def check_attachments(
    statements: list[dict[str, Any]], parts: dict[str, tuple[str, bytes]]
) -> None:
    """Every attachment without a fileUrl has its part; every part belongs to an attachment;
    signatures are JWS over the statement (RS256/384/512)."""
    declared: set[str] = set()
    for index, statement in enumerate(statements):
        where = f"statements[{index}]" if len(statements) > 1 else "statement"
        for number, attachment in enumerate(statement.get("attachments") or []):
            sha2 = attachment["sha2"].lower()
            declared.add(sha2)
            at = f"{where}.attachments[{number}]"
            if sha2 not in parts and "fileUrl" not in attachment:
                raise fail(at, "has no fileUrl and no part with its SHA-2 was sent.")
            if attachment["usageType"] == SIGNATURE:
                if sha2 not in parts:
                    raise fail(at, "a signature must be sent as a part.")
                if attachment["contentType"].split(";")[0].strip() != "application/octet-stream":
                    raise fail(at + ".contentType", "a signature is application/octet-stream.")
                _check_signature(statement, parts[sha2][1], at)
    extra = sorted(set(parts) - declared)
    if extra:
        raise fail("attachments", f"the part with SHA-2 {extra[0]} belongs to no attachment.")


def _b64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _check_signature(statement: dict[str, Any], jws: bytes, where: str) -> None:
    try:
        header_b64, payload_b64, signature_b64 = jws.decode("ascii").strip().split(".")
        header = json.loads(_b64(header_b64))
        payload = json.loads(_b64(payload_b64))
        _b64(signature_b64)
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise fail(where, "the signature is not a JWS (compact serialisation).") from exc
    if not isinstance(header, dict) or header.get("alg") not in SIGNATURE_ALGORITHMS:
        raise fail(where, "the signature's alg must be RS256, RS384 or RS512.")
    if not isinstance(payload, dict):
        raise fail(where, "the signature's payload must be the statement.")

    def essence(value: dict[str, Any]) -> dict[str, Any]:
        return normalised({k: v for k, v in value.items() if k not in UNSIGNED_KEYS})

    if essence(payload) != essence(statement):
        raise fail(where, "the signature's payload differs from the statement.")
    if "id" in payload and str(payload["id"]).lower() != str(statement.get("id", "")).lower():
        raise fail(where, "the signature's payload has another statement id.")


def parse_multipart(content_type: str, body: bytes) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """A multipart/mixed statement request → (the statements' JSON, SHA-2 → part)."""
    boundary = _boundary(content_type)
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].lstrip(b" \t").startswith(b"--"):
        raise InvalidStatement("The multipart body is not well formed.")
    sections = []
    for chunk in chunks[1:-1]:
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n")
        chunk = chunk.removesuffix(b"\r\n").removesuffix(b"\n")
        head, separator, data = chunk.partition(b"\r\n\r\n")
        if not separator:
            head, separator, data = chunk.partition(b"\n\n")
        if not separator:
            # No headers at all: the part starts with its blank line.
            if chunk.startswith(b"\r\n") or chunk.startswith(b"\n"):
                head, data = b"", chunk.lstrip(b"\r\n")
            else:
                raise InvalidStatement("A part of the multipart body has no headers.")
        headers = BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        sections.append((headers, data))
    if not sections:
        raise InvalidStatement("The multipart body has no parts.")
    first_headers, first = sections[0]
    if (first_headers.get("Content-Type") or "").split(";")[
        0
    ].strip().lower() != "application/json":
        raise InvalidStatement("The first part must be the statements as application/json.")
    try:
        statements = json.loads(first)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidStatement("The first part is not valid JSON.") from exc
    parts: dict[str, tuple[str, bytes]] = {}
    for headers, data in sections[1:]:
        declared = (headers.get("X-Experience-API-Hash") or "").strip().lower()
        if not declared:
            raise InvalidStatement("Every attachment part needs an X-Experience-API-Hash header.")
        encoding = (headers.get("Content-Transfer-Encoding") or "binary").strip().lower()
        if encoding != "binary":
            raise InvalidStatement("Attachment parts must use Content-Transfer-Encoding: binary.")
        if sha2_of(data, len(declared)) != declared:
            raise InvalidStatement("An attachment part does not match its X-Experience-API-Hash.")
        parts[declared] = (headers.get("Content-Type") or "application/octet-stream", data)
    return statements, parts


def _boundary(content_type: str) -> bytes:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "boundary" and value.strip().strip('"'):
            return value.strip().strip('"').encode("latin-1")
    raise InvalidStatement("A multipart/mixed request needs a boundary.")


def build_multipart(document: Any, parts: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    """(content type, body) of a multipart/mixed answer: the JSON, then each attachment."""
    boundary = "xapi-" + secrets.token_hex(16)
    out = [
        f"--{boundary}\r\nContent-Type: application/json\r\n\r\n".encode(),
        json.dumps(document).encode(),
        b"\r\n",
    ]
    for sha2, content_type, data in parts:
        out.append(
            (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                "Content-Transfer-Encoding: binary\r\n"
                f"X-Experience-API-Hash: {sha2}\r\n\r\n"
            ).encode()
        )
        out.append(data)
        out.append(b"\r\n")
    out.append(f"--{boundary}--\r\n".encode())
    return f'multipart/mixed; boundary="{boundary}"', b"".join(out)


# ----------------------------------------------------------------------------- formats

IDENTIFIER_KEYS = ("mbox", "mbox_sha1sum", "openid", "account")


def _agent_ids(agent: Any) -> Any:
    if not isinstance(agent, dict):
        return agent
    kept: dict[str, Any] = {k: agent[k] for k in ("objectType", *IDENTIFIER_KEYS) if k in agent}
    anonymous = not any(k in agent for k in IDENTIFIER_KEYS)
    if agent.get("objectType") == "Group" and anonymous and "member" in agent:
        kept["member"] = [_agent_ids(member) for member in agent["member"]]
    return kept


def _activity_ids(activity: Any) -> Any:
    if isinstance(activity, dict) and activity.get("objectType", "Activity") == "Activity":
        return {"id": activity["id"]}
    return activity


def ids_format(statement: dict[str, Any]) -> dict[str, Any]:
    """Agents, activities and verbs reduced to their identifiers (`format=ids`)."""
    out = copy.deepcopy(statement)

    def reduce(body: dict[str, Any]) -> None:
        if "actor" in body:
            body["actor"] = _agent_ids(body["actor"])
        if isinstance(body.get("verb"), dict):
            body["verb"] = {"id": body["verb"]["id"]}
        target = body.get("object")
        if isinstance(target, dict):
            kind = target.get("objectType", "Activity")
            if kind in ("Agent", "Group"):
                body["object"] = _agent_ids(target)
            elif kind == "Activity":
                body["object"] = _activity_ids(target)
            elif kind == "SubStatement":
                reduce(target)
        context = body.get("context")
        if isinstance(context, dict):
            for key in ("instructor", "team"):
                if key in context:
                    context[key] = _agent_ids(context[key])
            for name, items in (context.get("contextActivities") or {}).items():
                context["contextActivities"][name] = [_activity_ids(item) for item in items]
        if "authority" in body:
            body["authority"] = _agent_ids(body["authority"])

    reduce(out)
    return out


LANGUAGE_MAP_KEYS = frozenset({"display", "name", "description"})


def canonical_format(statement: Any, languages: list[str]) -> Any:
    """Every language map reduced to the one language the caller prefers (`format=canonical`)."""

    def pick(mapping: dict[str, Any]) -> dict[str, Any]:
        if not mapping:
            return mapping
        lowered = {key.lower(): key for key in mapping}
        for language in languages:
            language = language.lower()
            if language in lowered:
                key = lowered[language]
                return {key: mapping[key]}
            for candidate, key in lowered.items():
                if candidate.split("-")[0] == language.split("-")[0]:
                    return {key: mapping[key]}
        first = next(iter(mapping))
        return {first: mapping[first]}

    def walk(value: Any, parent: str | None) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key == "extensions":
                    out[key] = item
                elif key in LANGUAGE_MAP_KEYS and isinstance(item, dict) and parent != "score":
                    out[key] = pick(item)
                else:
                    out[key] = walk(item, key)
            return out
        if isinstance(value, list):
            return [walk(item, parent) for item in value]
        return value

    return walk(statement, None)


def accepted_languages(header: str | None) -> list[str]:
    """Accept-Language → languages, most preferred first."""
    if not header:
        return []
    weighted = []
    for index, item in enumerate(header.split(",")):
        language, _, parameters = item.strip().partition(";")
        weight = 1.0
        if parameters.strip().startswith("q="):
            try:
                weight = float(parameters.strip()[2:])
            except ValueError:
                weight = 0.0
        if language and language != "*":
            weighted.append((-weight, index, language))
    return [language for _, _, language in sorted(weighted)]


# What the LRS takes besides JSON and forms: statements with attachments (multipart/mixed) and
# documents of any media type (xAPI 1.0.3 §2.2 Documents), so under its prefix the kit's body
# guard lets every type through and the LRS answers for it (a POST merge of a non-JSON
# document is its 400, not a 415). Everywhere else the service keeps its short list.
XAPI_PREFIX = "/training/v1/xapi"
XAPI_CONTENT_TYPES_UNDER: dict[str, tuple[str, ...]] = {XAPI_PREFIX: ("*/*",)}
