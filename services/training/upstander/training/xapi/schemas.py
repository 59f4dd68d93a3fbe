"""xAPI 1.0.3 statement validation: minimal but real, and the values the LRS lifts out of a
statement (identifiers, verb, activity, registration, timestamp, result) for filters and
completions. Errors are `BadRequest`s whose detail reads like an LRS's."""

from __future__ import annotations

import hashlib
import math
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from upstander.training.xapi.validation import TIMESTAMP as TIMESTAMP_PATTERN
from upstander.training.xapi.validation import UUID as UUID_PATTERN
from upstander.training.xapi.validation import InvalidStatement, check_statement

__all__ = ["InvalidStatement"]

VERSIONS = ("1.0.3", "1.0.0")
VOIDED = "http://adlnet.gov/expapi/verbs/voided"
COMPLETED = "http://adlnet.gov/expapi/verbs/completed"
PASSED = "http://adlnet.gov/expapi/verbs/passed"
COMPLETION_VERBS = frozenset({COMPLETED, PASSED})

# scheme ":" then something without whitespace (RFC 3987, loosely).
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")
_SHA1 = re.compile(r"^[0-9a-fA-F]{40}$")
_NUMBER = r"(\d+(?:[.,]\d+)?)"
_DURATION = re.compile(
    rf"^P(?!$)(?:{_NUMBER}Y)?(?:{_NUMBER}M)?(?:{_NUMBER}W)?(?:{_NUMBER}D)?"
    rf"(?:T(?=\d)(?:{_NUMBER}H)?(?:{_NUMBER}M)?(?:{_NUMBER}S)?)?$"
)
_DURATION_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)

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
# What the LRS sets: ignored when deciding whether a re-sent statement is the same one.
LRS_KEYS = frozenset({"stored", "authority", "version"})


@dataclass(frozen=True)
class ParsedStatement:
    statement_id: uuid.UUID
    body: dict[str, Any]
    actor: str | None
    object_agent: str | None
    verb_id: str
    activity_id: str | None
    registration: uuid.UUID | None
    timestamp: datetime | None
    voids: uuid.UUID | None
    # For completions: the actor's identifiers, and the result.
    actor_ifi: tuple[str, str] | None
    duration_minutes: int | None
    score: float | None


def _fail(where: str, message: str) -> InvalidStatement:
    return InvalidStatement(f"{where}: {message}", errors=[{"field": where, "message": message}])


def is_iri(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= 500 and bool(_IRI.match(value))


def parse_uuid(value: Any, where: str) -> uuid.UUID:
    if not isinstance(value, str) or not UUID_PATTERN.match(value):
        raise _fail(where, "must be a UUID.")
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise _fail(where, "must be a UUID.") from exc


def parse_timestamp(value: Any, where: str) -> datetime:
    """ISO 8601 date-time (RFC 3339 shapes); without a zone it is taken as UTC."""
    match = TIMESTAMP_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(where, "must be an ISO 8601 date-time.")
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = min(int(match.group(6) or 0), 59)
    micro = int((match.group(7) or "0")[:6].ljust(6, "0"))
    zone = match.group(8) or "Z"
    try:
        moment = datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)
    except ValueError as exc:
        raise _fail(where, "must be an ISO 8601 date-time.") from exc
    if zone.upper() != "Z":
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
        moment = moment - offset if zone[0] == "+" else moment + offset
    return moment


def duration_minutes(value: Any, where: str) -> int:
    """Minutes in an ISO 8601 duration (`PT1H30M` → 90); years are 365 days, months 30."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise _fail(where, "must be an ISO 8601 duration such as PT1H30M.")
    seconds = sum(
        float(part.replace(",", ".")) * unit
        for part, unit in zip(match.groups(), _DURATION_SECONDS, strict=True)
        if part is not None
    )
    return round(seconds / 60)


def agent_identifier(agent: Any, where: str) -> tuple[str, str] | None:
    """Validate an Agent or Group; return its inverse functional identifier (kind, value),
    or None for an anonymous Group."""
    if not isinstance(agent, dict):
        raise _fail(where, "must be an object.")
    kind = agent.get("objectType", "Agent")
    if kind not in ("Agent", "Group"):
        raise _fail(where + ".objectType", "must be Agent or Group.")
    found: list[tuple[str, str]] = []
    if "mbox" in agent:
        mbox = agent["mbox"]
        if not (isinstance(mbox, str) and mbox.lower().startswith("mailto:") and "@" in mbox):
            raise _fail(where + ".mbox", "must be a mailto: IRI.")
        found.append(("mbox", mbox.lower()))
    if "mbox_sha1sum" in agent:
        digest = agent["mbox_sha1sum"]
        if not (isinstance(digest, str) and _SHA1.match(digest)):
            raise _fail(where + ".mbox_sha1sum", "must be 40 hexadecimal digits.")
        found.append(("mbox_sha1sum", digest.lower()))
    if "openid" in agent:
        if not is_iri(agent["openid"]):
            raise _fail(where + ".openid", "must be an IRI.")
        found.append(("openid", agent["openid"]))
    if "account" in agent:
        account = agent["account"]
        if not isinstance(account, dict) or not is_iri(account.get("homePage")):
            raise _fail(where + ".account.homePage", "must be an IRL.")
        name = account.get("name")
        if not isinstance(name, str) or not name:
            raise _fail(where + ".account.name", "must be a non-empty string.")
        found.append(("account", f"{account['homePage']}|{name}"))
    if len(found) > 1:
        raise _fail(where, "must have exactly one of mbox, mbox_sha1sum, openid, account.")
    if kind == "Group":
        members = agent.get("member")
        if members is not None:
            if not isinstance(members, list):
                raise _fail(where + ".member", "must be a list of Agents.")
            for index, member in enumerate(members):
                if isinstance(member, dict) and member.get("objectType") == "Group":
                    raise _fail(f"{where}.member[{index}]", "must be an Agent.")
                if agent_identifier(member, f"{where}.member[{index}]") is None:
                    raise _fail(f"{where}.member[{index}]", "needs an identifier.")
        if not found and not members:
            raise _fail(where, "an anonymous Group must list its members.")
    elif not found:
        raise _fail(where, "must have one of mbox, mbox_sha1sum, openid, account.")
    return found[0] if found else None


def canonical(identifier: tuple[str, str] | None) -> str | None:
    return None if identifier is None else f"{identifier[0]}:{identifier[1]}"[:600]


def mbox_sha1(email: str) -> str:
    return hashlib.sha1(f"mailto:{email}".encode(), usedforsecurity=False).hexdigest()


def _verb(verb: Any, where: str) -> str:
    if not isinstance(verb, dict) or not is_iri(verb.get("id")):
        raise _fail(where + ".id", "must be an IRI.")
    display = verb.get("display")
    if display is not None and not isinstance(display, dict):
        raise _fail(where + ".display", "must be a language map.")
    return str(verb["id"])


def _object(
    target: Any, where: str, *, nested: bool
) -> tuple[str, str | None, tuple[str, str] | None, uuid.UUID | None]:
    """Validate a statement's object; return (objectType, activity id, agent id, ref id)."""
    if not isinstance(target, dict):
        raise _fail(where, "must be an object.")
    kind = target.get("objectType", "Activity")
    if kind == "Activity":
        if not is_iri(target.get("id")):
            raise _fail(where + ".id", "must be an IRI.")
        definition = target.get("definition")
        if definition is not None and not isinstance(definition, dict):
            raise _fail(where + ".definition", "must be an object.")
        return kind, str(target["id"]), None, None
    if kind in ("Agent", "Group"):
        return kind, None, agent_identifier(target, where), None
    if kind == "StatementRef":
        return kind, None, None, parse_uuid(target.get("id"), where + ".id")
    if kind == "SubStatement" and not nested:
        unknown = set(target) - SUBSTATEMENT_KEYS
        if unknown:
            raise _fail(where, f"unknown properties {sorted(unknown)}.")
        agent_identifier(target.get("actor"), where + ".actor")
        _verb(target.get("verb"), where + ".verb")
        _object(target.get("object"), where + ".object", nested=True)
        if "timestamp" in target:
            parse_timestamp(target["timestamp"], where + ".timestamp")
        return kind, None, None, None
    raise _fail(where + ".objectType", f"{kind!r} is not allowed here.")


def _result(result: Any) -> tuple[int | None, float | None]:
    if result is None:
        return None, None
    if not isinstance(result, dict):
        raise _fail("result", "must be an object.")
    for flag in ("success", "completion"):
        if flag in result and not isinstance(result[flag], bool):
            raise _fail(f"result.{flag}", "must be true or false.")
    minutes = (
        duration_minutes(result["duration"], "result.duration") if "duration" in result else None
    )
    score: float | None = None
    if "score" in result:
        if not isinstance(result["score"], dict):
            raise _fail("result.score", "must be an object.")
        scaled = result["score"].get("scaled")
        if scaled is not None:
            if (
                isinstance(scaled, bool)
                or not isinstance(scaled, int | float)
                or not math.isfinite(scaled)
                or not -1 <= scaled <= 1
            ):
                raise _fail("result.score.scaled", "must be a number from -1 to 1.")
            score = round(max(0.0, float(scaled)) * 100, 4)
    return minutes, score


def parse_statement(raw: Any, *, where: str | None = None) -> ParsedStatement:
    """Validate one statement; assign an id when it has none (the returned body carries it).
    `where` names it in error messages (`statements[3]`) when it came in a batch."""
    try:
        return _parse_statement(raw)
    except InvalidStatement as error:
        if where is None:
            raise
        detail = f"{where}.{error.detail}"
        errors = [
            {"field": f"{where}.{e['field']}", "message": e["message"]}
            for e in error.extra.get("errors", [])
        ]
        raise InvalidStatement(detail, errors=errors) from error


def _parse_statement(raw: Any) -> ParsedStatement:
    check_statement(raw)
    unknown = set(raw) - STATEMENT_KEYS
    if unknown:
        raise _fail("statement", f"unknown properties {sorted(unknown)}.")
    body = dict(raw)
    if "id" in body:
        statement_id = parse_uuid(body["id"], "id")
    else:
        statement_id = uuid.uuid4()
    body["id"] = str(statement_id)
    version = body.get("version")
    if version is not None and not (isinstance(version, str) and version.startswith("1.0")):
        raise _fail("version", "must be a 1.0.x version.")
    actor = agent_identifier(body.get("actor"), "actor")
    verb_id = _verb(body.get("verb"), "verb")
    kind, activity_id, object_agent, ref = _object(body.get("object"), "object", nested=False)
    if verb_id == VOIDED and kind != "StatementRef":
        raise _fail("object", "a voiding statement's object must be a StatementRef.")
    timestamp = parse_timestamp(body["timestamp"], "timestamp") if "timestamp" in body else None
    if "stored" in body:
        parse_timestamp(body["stored"], "stored")
    if "authority" in body:
        agent_identifier(body["authority"], "authority")
    registration = None
    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise _fail("context", "must be an object.")
        if "registration" in context:
            registration = parse_uuid(context["registration"], "context.registration")
    attachments = body.get("attachments")
    if attachments is not None and not isinstance(attachments, list):
        raise _fail("attachments", "must be a list.")
    minutes, score = _result(body.get("result"))
    return ParsedStatement(
        statement_id=statement_id,
        body=body,
        actor=canonical(actor),
        object_agent=canonical(object_agent),
        verb_id=verb_id,
        activity_id=activity_id,
        registration=registration,
        timestamp=timestamp,
        voids=ref if verb_id == VOIDED else None,
        actor_ifi=actor,
        duration_minutes=minutes,
        score=score,
    )


def same_statement(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two statements are the same, ignoring what the LRS sets."""

    def essence(statement: dict[str, Any]) -> dict[str, Any]:
        kept = {k: v for k, v in statement.items() if k not in LRS_KEYS}
        kept["id"] = str(kept.get("id", "")).lower()
        return kept

    return essence(first) == essence(second)
