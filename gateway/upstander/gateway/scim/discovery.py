"""The SCIM discovery documents (RFC 7643 5-7): ServiceProviderConfig, ResourceTypes and
Schemas, built once: what this endpoint supports and the attributes of Users and Groups."""

from __future__ import annotations

from typing import Any

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# Our own extension: outside the `urn:ietf` namespace, as RFC 7643 10.3 asks.
UPSTANDER = "urn:upstander:params:scim:schemas:extension:2.0:User"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
RESOURCE_TYPE_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ResourceType"
SCHEMA_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Schema"

MAX_RESULTS = 200
DOCS = "https://upstander.dev/docs/scim"


def attribute(
    name: str,
    kind: str = "string",
    *,
    multi: bool = False,
    required: bool = False,
    mutability: str = "readWrite",
    returned: str = "default",
    uniqueness: str = "none",
    case_exact: bool = False,
    description: str = "",
    sub: list[dict[str, Any]] | None = None,
    canonical: list[str] | None = None,
    references: list[str] | None = None,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": name,
        "type": kind,
        "multiValued": multi,
        "description": description or name,
        "required": required,
        "mutability": mutability,
        "returned": returned,
    }
    if kind in ("string", "reference", "binary"):
        found["caseExact"] = case_exact
        found["uniqueness"] = uniqueness
    if sub is not None:
        found["subAttributes"] = sub
    if canonical is not None:
        found["canonicalValues"] = canonical
    if references is not None:
        found["referenceTypes"] = references
    return found


def _meta(resource_type: str, location: str) -> dict[str, Any]:
    return {"resourceType": resource_type, "location": location}


USER_ATTRIBUTES = [
    attribute(
        "userName",
        required=True,
        uniqueness="server",
        description="Unique in the organisation; usually the sign-in email.",
    ),
    attribute(
        "name",
        "complex",
        sub=[
            attribute(
                "formatted",
                mutability="readOnly",
                description="The displayName (a `formatted` sent is used when there is none).",
            ),
            attribute("familyName"),
            attribute("givenName"),
        ],
    ),
    attribute("displayName", description="The name shown to colleagues."),
    attribute("title"),
    attribute(
        "preferredLanguage",
        canonical=["en", "es"],
        description="`en` or `es` (others, and `locale`, read as `en` unless Spanish).",
    ),
    attribute("active", "boolean", description="False: deprovisioned (sign-in stops at once)."),
    attribute(
        "emails",
        "complex",
        multi=True,
        description="Kept as provisioned. The person signs in with the userName when it is "
        "an email address, else with the primary (or work) email.",
        sub=[
            attribute("value"),
            attribute("type", canonical=["work"]),
            attribute("primary", "boolean"),
        ],
    ),
    attribute(
        "groups",
        "complex",
        multi=True,
        mutability="readOnly",
        description="The role groups, then the teams, the person belongs to.",
        sub=[
            attribute("value", mutability="readOnly"),
            attribute("display", mutability="readOnly"),
            attribute("$ref", "reference", mutability="readOnly", references=["Group"]),
        ],
    ),
    attribute(
        "password",
        mutability="writeOnly",
        returned="never",
        description="Accepted and ignored: people sign in with their identity provider.",
    ),
]

ENTERPRISE_ATTRIBUTES = [
    attribute("employeeNumber"),
    attribute("department"),
    attribute(
        "manager",
        "complex",
        description="Whom the person reports to: the reporting line every conflict rule uses.",
        sub=[
            attribute("value", case_exact=True, description="The manager's SCIM id."),
            attribute("$ref", "reference", references=["User"]),
            attribute("displayName", mutability="readOnly"),
        ],
    ),
]

UPSTANDER_ATTRIBUTES = [
    attribute(
        "roles",
        multi=True,
        canonical=[
            "admin",
            "case_manager",
            "investigator",
            "reviewer",
            "trainer",
            "staff",
            "hr_integration",
            "auditor",
        ],
        description="Upstander roles (docs/auth.md): the person's whole set of roles, so a "
        "PATCH `add` sets them; to add one role, add the person to the role's Group.",
    ),
    attribute(
        "isLeadership",
        "boolean",
        description="Leadership: a case involving them goes to independent reviewers.",
    ),
    attribute("location", description="Work location, e.g. a US state code."),
]

GROUP_ATTRIBUTES = [
    attribute(
        "displayName",
        required=True,
        uniqueness="server",
        description="A role's name (`case_manager`, ...: a role group) or a team's name, "
        "unique in the organisation (case-insensitive).",
    ),
    attribute(
        "members",
        "complex",
        multi=True,
        sub=[
            attribute("value", case_exact=True, mutability="immutable"),
            attribute("$ref", "reference", mutability="immutable", references=["User"]),
            attribute("display", mutability="readOnly"),
            attribute("type", canonical=["User"], mutability="immutable"),
        ],
    ),
]


def schemas(base: str) -> list[dict[str, Any]]:
    found = []
    for urn, name, description, attributes in (
        (CORE_USER, "User", "A person of the organisation's directory.", USER_ATTRIBUTES),
        (
            ENTERPRISE,
            "EnterpriseUser",
            "Enterprise attributes: employee number, department, manager.",
            ENTERPRISE_ATTRIBUTES,
        ),
        (UPSTANDER, "UpstanderUser", "Upstander roles and leadership.", UPSTANDER_ATTRIBUTES),
        (
            CORE_GROUP,
            "Group",
            "An Upstander role (its members hold it), or a team (it grants nothing).",
            GROUP_ATTRIBUTES,
        ),
    ):
        found.append(
            {
                "schemas": [SCHEMA_SCHEMA],
                "id": urn,
                "name": name,
                "description": description,
                "attributes": attributes,
                "meta": _meta("Schema", f"{base}/Schemas/{urn}"),
            }
        )
    return found


def resource_types(base: str) -> list[dict[str, Any]]:
    return [
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "People of the organisation's directory.",
            "schema": CORE_USER,
            "schemaExtensions": [
                {"schema": ENTERPRISE, "required": False},
                {"schema": UPSTANDER, "required": False},
            ],
            "meta": _meta("ResourceType", f"{base}/ResourceTypes/User"),
        },
        {
            "schemas": [RESOURCE_TYPE_SCHEMA],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "One group per Upstander role, and the organisation's teams.",
            "schema": CORE_GROUP,
            "schemaExtensions": [],
            "meta": _meta("ResourceType", f"{base}/ResourceTypes/Group"),
        },
    ]


def service_provider_config(base: str) -> dict[str, Any]:
    return {
        "schemas": [SPC_SCHEMA],
        "documentationUri": DOCS,
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_RESULTS},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": True},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": (
                    "The access token of an API client granted the `scim` scope "
                    "(client_credentials at /auth/token)."
                ),
                "specUri": "https://www.rfc-editor.org/rfc/rfc6750",
                "documentationUri": DOCS,
                "primary": True,
            }
        ],
        "meta": _meta("ServiceProviderConfig", f"{base}/ServiceProviderConfig"),
    }
