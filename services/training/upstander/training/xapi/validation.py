"""The xAPI 1.0.3 data rules (spec part two, "Statements"), checked strictly: every object takes
only the properties the spec defines, no value is null (outside extensions), IRIs are IRIs,
language maps are keyed by RFC 5646 tags, UUIDs, timestamps (RFC 3339, never `-00:00`) and
durations are well formed, agents carry exactly one identifier, groups are groups, and the
parts of an activity definition fit its interaction type.

`check_statement(raw)` raises `InvalidStatement` (400) naming the offending field, e.g.
`context.instructor: must be an object.`"""

from __future__ import annotations

import math
import re
from typing import Any

from upstander.kit.errors import BadRequest


class InvalidStatement(BadRequest):
    """A statement the LRS refuses (xAPI: 400 Bad Request)."""

    slug = "xapi-invalid-statement"
    title = "Invalid xAPI statement"


def fail(where: str, message: str) -> InvalidStatement:
    return InvalidStatement(f"{where}: {message}", errors=[{"field": where, "message": message}])


# scheme ":" then something without whitespace (RFC 3987, loosely).
IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
MBOX = re.compile(r"^mailto:[^@\s]+@[^@\s]+$", re.IGNORECASE)
VERSION = re.compile(r"^1\.0(\.\d+)?$")
# RFC 3339 date-time (ISO 8601 profile); seconds and the zone may be left out (ISO allows it).
TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)
_N = r"(\d+(?:[.,]\d+)?)"
# ISO 8601 durations: weeks stand alone (`P4W`), never beside other units.
DURATION = re.compile(
    rf"^P(?:{_N}W|(?!$)(?:{_N}Y)?(?:{_N}M)?(?:{_N}D)?"
    rf"(?:T(?=\d)(?:{_N}H)?(?:{_N}M)?(?:{_N}S)?)?)$"
)
# RFC 5646 language tags (the shapes the registry allows; not the registry itself).
LANGUAGE = re.compile(
    r"^(?:(?:[A-Za-z]{2,3}(?:-[A-Za-z]{3}){0,3}|[A-Za-z]{4,8})(?:-[A-Za-z]{4})?"
    r"(?:-(?:[A-Za-z]{2}|\d{3}))?(?:-(?:[A-Za-z0-9]{5,8}|\d[A-Za-z0-9]{3}))*"
    r"(?:-[0-9A-WY-Za-wy-z](?:-[A-Za-z0-9]{2,8})+)*(?:-[xX](?:-[A-Za-z0-9]{1,8})+)?"
    r"|[xX](?:-[A-Za-z0-9]{1,8})+|[iI]-[A-Za-z]+)$"
)
MIME = re.compile(r"^[A-Za-z0-9!#$&^_.+\-]+/[A-Za-z0-9!#$&^_.+\-]+(\s*;.*)?$")

INTERACTION_TYPES = frozenset(
    {
        "true-false",
        "choice",
        "fill-in",
        "long-fill-in",
        "matching",
        "performance",
        "sequencing",
        "likert",
        "numeric",
        "other",
    }
)
COMPONENTS = {
    "choices": ("choice", "sequencing"),
    "scale": ("likert",),
    "source": ("matching",),
    "target": ("matching",),
    "steps": ("performance",),
}
STATEMENT_KEYS = frozenset(
    {
        "id",
        "actor",
        "verb",
        "object",
        "result",
        "context",
        "timestamp",
        "stored",
        "authority",
        "version",
        "attachments",
        "objectType",
    }
)
SUBSTATEMENT_KEYS = frozenset(
    {"objectType", "actor", "verb", "object", "result", "context", "timestamp", "attachments"}
)
AGENT_KEYS = frozenset({"objectType", "name", "mbox", "mbox_sha1sum", "openid", "account"})
GROUP_KEYS = AGENT_KEYS | {"member"}
DEFINITION_KEYS = frozenset(
    {
        "name",
        "description",
        "type",
        "moreInfo",
        "extensions",
        "interactionType",
        "correctResponsesPattern",
        *COMPONENTS,
    }
)
RESULT_KEYS = frozenset({"score", "success", "completion", "response", "duration", "extensions"})
SCORE_KEYS = frozenset({"scaled", "raw", "min", "max"})
CONTEXT_KEYS = frozenset(
    {
        "registration",
        "instructor",
        "team",
        "contextActivities",
        "revision",
        "platform",
        "language",
        "statement",
        "extensions",
    }
)
CONTEXT_ACTIVITY_KEYS = frozenset({"parent", "grouping", "category", "other"})
ATTACHMENT_KEYS = frozenset(
    {"usageType", "display", "description", "contentType", "length", "sha2", "fileUrl"}
)
IDENTIFIERS = ("mbox", "mbox_sha1sum", "openid", "account")


# ----------------------------------------------------------------------------- primitives


def _object(value: Any, where: str, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise fail(where, "must be an object.")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise fail(where, f"unknown properties {unknown}.")
    for key, item in value.items():
        if item is None:
            raise fail(f"{where}.{key}", "must not be null.")
    return value


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise fail(where, "must be a string.")
    return value


def iri(value: Any, where: str) -> str:
    if not isinstance(value, str) or not IRI.match(value):
        raise fail(where, "must be an IRI.")
    return value


def uuid_string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not UUID.match(value):
        raise fail(where, "must be a UUID.")
    return value


def timestamp(value: Any, where: str) -> str:
    match = TIMESTAMP.match(value) if isinstance(value, str) else None
    if match is None:
        raise fail(where, "must be an ISO 8601 date-time.")
    zone = match.group(8)
    if zone is not None and zone.startswith("-") and not zone.strip("-:0"):
        raise fail(where, "must not use the -00:00 offset (RFC 3339).")
    month, day, hour, minute = (int(match.group(i)) for i in (2, 3, 4, 5))
    second = int(match.group(6) or 0)
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        raise fail(where, "must be an ISO 8601 date-time.")
    return value


def language_map(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise fail(where, "must be a language map.")
    for key, text in value.items():
        if not isinstance(key, str) or not LANGUAGE.match(key):
            raise fail(where, f"{key!r} is not an RFC 5646 language tag.")
        if not isinstance(text, str):
            raise fail(f"{where}.{key}", "must be a string.")


def extensions(value: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise fail(where, "must be an object.")
    for key in value:
        iri(key, f"{where} key")


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise fail(where, "must be a number.")
    return float(value)


def _boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise fail(where, "must be true or false.")


# ----------------------------------------------------------------------------- agents


def agent(
    value: Any, where: str, *, group: bool = True, object_type_required: bool = False
) -> None:
    """An Agent, or (when `group`) a Group."""
    if not isinstance(value, dict):
        raise fail(where, "must be an object.")
    kind = value.get("objectType", "Agent" if not object_type_required else None)
    if kind == "Group" and group:
        _group(value, where)
        return
    if kind != "Agent":
        raise fail(where + ".objectType", "must be Agent or Group." if group else "must be Agent.")
    _object(value, where, AGENT_KEYS)
    if "name" in value:
        _string(value["name"], where + ".name")
    if _identifiers(value, where) != 1:
        raise fail(where, "must have exactly one of mbox, mbox_sha1sum, openid, account.")


def _group(value: dict[str, Any], where: str) -> None:
    _object(value, where, GROUP_KEYS)
    if "name" in value:
        _string(value["name"], where + ".name")
    found = _identifiers(value, where)
    if found > 1:
        raise fail(where, "must have at most one of mbox, mbox_sha1sum, openid, account.")
    if "member" in value:
        members = value["member"]
        if not isinstance(members, list):
            raise fail(where + ".member", "must be a list of Agents.")
        for index, member in enumerate(members):
            agent(member, f"{where}.member[{index}]", group=False)
    if not found and not value.get("member"):
        raise fail(where, "an anonymous Group must list its members.")


def _identifiers(value: dict[str, Any], where: str) -> int:
    found = 0
    if "mbox" in value:
        if not isinstance(value["mbox"], str) or not MBOX.match(value["mbox"]):
            raise fail(where + ".mbox", "must be a mailto: IRI.")
        found += 1
    if "mbox_sha1sum" in value:
        if not isinstance(value["mbox_sha1sum"], str) or not SHA1.match(value["mbox_sha1sum"]):
            raise fail(where + ".mbox_sha1sum", "must be 40 hexadecimal digits.")
        found += 1
    if "openid" in value:
        iri(value["openid"], where + ".openid")
        found += 1
    if "account" in value:
        account = _object(value["account"], where + ".account", frozenset({"homePage", "name"}))
        iri(account.get("homePage"), where + ".account.homePage")
        name = account.get("name")
        if not isinstance(name, str) or not name:
            raise fail(where + ".account.name", "must be a non-empty string.")
        found += 1
    return found


# ----------------------------------------------------------------------------- verb, object


def verb(value: Any, where: str) -> None:
    _object(value, where, frozenset({"id", "display"}))
    iri(value.get("id"), where + ".id")
    if "display" in value:
        language_map(value["display"], where + ".display")


def activity(value: Any, where: str) -> None:
    _object(value, where, frozenset({"objectType", "id", "definition"}))
    if value.get("objectType", "Activity") != "Activity":
        raise fail(where + ".objectType", "must be Activity.")
    iri(value.get("id"), where + ".id")
    if "definition" in value:
        definition(value["definition"], where + ".definition")


def definition(value: Any, where: str) -> None:
    _object(value, where, DEFINITION_KEYS)
    for key in ("name", "description"):
        if key in value:
            language_map(value[key], f"{where}.{key}")
    for key in ("type", "moreInfo"):
        if key in value:
            iri(value[key], f"{where}.{key}")
    if "extensions" in value:
        extensions(value["extensions"], where + ".extensions")
    interaction = value.get("interactionType")
    if interaction is not None and (
        not isinstance(interaction, str) or interaction not in INTERACTION_TYPES
    ):
        raise fail(where + ".interactionType", "is not an interaction type of the spec.")
    if "correctResponsesPattern" in value:
        pattern = value["correctResponsesPattern"]
        if interaction is None:
            raise fail(where + ".correctResponsesPattern", "needs an interactionType.")
        if not isinstance(pattern, list) or not all(isinstance(p, str) for p in pattern):
            raise fail(where + ".correctResponsesPattern", "must be a list of strings.")
    for key, types in COMPONENTS.items():
        if key not in value:
            continue
        if interaction not in types:
            raise fail(f"{where}.{key}", f"is only for interactionType {' or '.join(types)}.")
        components = value[key]
        if not isinstance(components, list):
            raise fail(f"{where}.{key}", "must be a list of interaction components.")
        seen: set[str] = set()
        for index, component in enumerate(components):
            at = f"{where}.{key}[{index}]"
            _object(component, at, frozenset({"id", "description"}))
            ident = component.get("id")
            if not isinstance(ident, str) or not ident.strip():
                raise fail(at + ".id", "must be a non-empty string.")
            if ident in seen:
                raise fail(at + ".id", "must be unique within the list.")
            seen.add(ident)
            if "description" in component:
                language_map(component["description"], at + ".description")


def statement_ref(value: Any, where: str) -> None:
    _object(value, where, frozenset({"objectType", "id"}))
    if value.get("objectType") != "StatementRef":
        raise fail(where + ".objectType", "must be StatementRef.")
    uuid_string(value.get("id"), where + ".id")


def target(value: Any, where: str, *, nested: bool) -> str:
    """A statement's object; returns its objectType."""
    if not isinstance(value, dict):
        raise fail(where, "must be an object.")
    kind = value.get("objectType", "Activity")
    if kind == "Activity":
        activity(value, where)
    elif kind in ("Agent", "Group"):
        agent(value, where, object_type_required=True)
    elif kind == "StatementRef":
        statement_ref(value, where)
    elif kind == "SubStatement" and not nested:
        _object(value, where, SUBSTATEMENT_KEYS)
        _body(value, where, nested=True)
    else:
        raise fail(where + ".objectType", f"{kind!r} is not allowed here.")
    return str(kind)


# ----------------------------------------------------------------------------- result, context


def result(value: Any, where: str) -> None:
    _object(value, where, RESULT_KEYS)
    for flag in ("success", "completion"):
        if flag in value:
            _boolean(value[flag], f"{where}.{flag}")
    if "response" in value:
        _string(value["response"], where + ".response")
    if "duration" in value:
        if not isinstance(value["duration"], str) or not DURATION.match(value["duration"]):
            raise fail(where + ".duration", "must be an ISO 8601 duration such as PT1H30M.")
    if "extensions" in value:
        extensions(value["extensions"], where + ".extensions")
    if "score" in value:
        score = _object(value["score"], where + ".score", SCORE_KEYS)
        numbers = {k: _number(v, f"{where}.score.{k}") for k, v in score.items()}
        scaled = numbers.get("scaled")
        if scaled is not None and not -1 <= scaled <= 1:
            raise fail(where + ".score.scaled", "must be a number from -1 to 1.")
        low, high, raw = numbers.get("min"), numbers.get("max"), numbers.get("raw")
        if low is not None and high is not None and not low < high:
            raise fail(where + ".score", "min must be less than max.")
        if raw is not None and (
            (low is not None and raw < low) or (high is not None and raw > high)
        ):
            raise fail(where + ".score.raw", "must lie between min and max.")


def context(value: Any, where: str, object_type: str) -> None:
    _object(value, where, CONTEXT_KEYS)
    if "registration" in value:
        uuid_string(value["registration"], where + ".registration")
    if "instructor" in value:
        agent(value["instructor"], where + ".instructor")
    if "team" in value:
        team = value["team"]
        if not isinstance(team, dict) or team.get("objectType") != "Group":
            raise fail(where + ".team", "must be a Group.")
        agent(team, where + ".team")
    if "contextActivities" in value:
        activities = _object(
            value["contextActivities"], where + ".contextActivities", CONTEXT_ACTIVITY_KEYS
        )
        for key, item in activities.items():
            at = f"{where}.contextActivities.{key}"
            for index, one in enumerate(item if isinstance(item, list) else [item]):
                activity(one, f"{at}[{index}]" if isinstance(item, list) else at)
    for key in ("revision", "platform"):
        if key in value:
            _string(value[key], f"{where}.{key}")
            if object_type != "Activity":
                raise fail(f"{where}.{key}", "is only allowed when the object is an Activity.")
    if "language" in value:
        if not isinstance(value["language"], str) or not LANGUAGE.match(value["language"]):
            raise fail(where + ".language", "must be an RFC 5646 language tag.")
    if "statement" in value:
        statement_ref(value["statement"], where + ".statement")
    if "extensions" in value:
        extensions(value["extensions"], where + ".extensions")


def attachments(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise fail(where, "must be a list.")
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        _object(item, at, ATTACHMENT_KEYS)
        for key in ("usageType", "display", "contentType", "length", "sha2"):
            if key not in item:
                raise fail(f"{at}.{key}", "is required.")
        iri(item["usageType"], at + ".usageType")
        language_map(item["display"], at + ".display")
        if "description" in item:
            language_map(item["description"], at + ".description")
        if not isinstance(item["contentType"], str) or not MIME.match(item["contentType"]):
            raise fail(at + ".contentType", "must be an Internet media type.")
        length = item["length"]
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise fail(at + ".length", "must be a whole number of octets.")
        if not isinstance(item["sha2"], str) or not re.match(
            r"^[0-9a-fA-F]{56,128}$", item["sha2"]
        ):
            raise fail(at + ".sha2", "must be a SHA-2 hash in hexadecimal.")
        if "fileUrl" in item:
            iri(item["fileUrl"], at + ".fileUrl")


# ----------------------------------------------------------------------------- statements


def _body(value: dict[str, Any], where: str, *, nested: bool) -> None:
    prefix = f"{where}." if where else ""
    for key in ("actor", "verb", "object"):
        if key not in value:
            raise fail(prefix + key, "is required.")
    agent(value["actor"], prefix + "actor")
    verb(value["verb"], prefix + "verb")
    kind = target(value["object"], prefix + "object", nested=nested)
    if "result" in value:
        result(value["result"], prefix + "result")
    if "context" in value:
        context(value["context"], prefix + "context", kind)
    if "timestamp" in value:
        timestamp(value["timestamp"], prefix + "timestamp")
    if "attachments" in value:
        attachments(value["attachments"], prefix + "attachments")


def check_statement(raw: Any) -> None:
    """Raise `InvalidStatement` unless `raw` is a valid xAPI 1.0.3 statement."""
    if not isinstance(raw, dict):
        raise fail("statement", "must be a JSON object.")
    unknown = sorted(set(raw) - STATEMENT_KEYS)
    if unknown:
        raise fail("statement", f"unknown properties {unknown}.")
    for key, item in raw.items():
        if item is None:
            raise fail(key, "must not be null.")
    if "objectType" in raw and raw["objectType"] != "Statement":
        raise fail("objectType", "must be Statement.")
    if "id" in raw:
        uuid_string(raw["id"], "id")
    if "version" in raw and (
        not isinstance(raw["version"], str) or not VERSION.match(raw["version"])
    ):
        raise fail("version", "must be a 1.0.x version.")
    _body(raw, "", nested=False)
    if "stored" in raw:
        timestamp(raw["stored"], "stored")
    if "authority" in raw:
        authority = raw["authority"]
        agent(authority, "authority")
        if isinstance(authority, dict) and authority.get("objectType") == "Group":
            members = authority.get("member") or []
            if len(members) != 2 or any(k in authority for k in IDENTIFIERS):
                raise fail("authority", "a Group authority is an anonymous pair (OAuth).")
