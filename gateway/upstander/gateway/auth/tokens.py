"""Token issuing: signed access tokens (EdDSA JWTs) for each kind of caller, opaque rotating
refresh tokens, and the OAuth 2.0 grants that exchange credentials for them."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.keys import KeyStore
from upstander.gateway.auth.oauth import OAuthError
from upstander.gateway.auth.passwords import hash_secret, verify_secret
from upstander.gateway.models import ApiClient, Org, Person, RefreshToken, RevokedToken
from upstander.gateway.settings import Settings
from upstander.kit.auth import ALGORITHM, PrincipalKind
from upstander.kit.clock import Clock
from upstander.kit.db import upsert_insert
from upstander.kit.revocation import ACCESS_VERSION_CLAIM
from upstander.kit.scopes import CATALOGUE, OPERATOR_SCOPES, PLATFORM_SCOPES, scopes_for_roles

SERVICE_SCOPE = "events:publish"
REPORTER_SCOPE = "reporter"
# The claim naming a person's sign-in (their refresh-token family): logging out with an access
# token ends the sign-in it came from.
SESSION_CLAIM = "sid"
SESSION_PREFIX = "sid:"
# People's access tokens live at most 15 minutes (settings), so a sign-in's entry among the
# revoked tokens can go once that long has passed after it ended.
MAX_PERSON_TOKEN_SECONDS = 900

__all__ = [
    "INVALID_CREDENTIALS",
    "REPORTER_SCOPE",
    "SERVICE_SCOPE",
    "SESSION_CLAIM",
    "SESSION_PREFIX",
    "IssuedToken",
    "OAuthError",
    "TokenIssuer",
    "authenticate_client",
    "client_credentials_grant",
    "password_grant",
    "record_revoked",
    "refresh_token_grant",
    "requested_scopes",
    "revoke_family",
    "revoke_person_tokens",
]


INVALID_CREDENTIALS = "The username, password or organisation is not valid."


@dataclass(frozen=True)
class IssuedToken:
    access_token: str
    expires_in: int
    scope: str
    refresh_token: str | None = None
    token_type: str = "Bearer"


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class TokenIssuer:
    """Signs access tokens with the KeyStore's current key. One per app:
    `request.app.state.token_issuer`."""

    def __init__(self, keys: KeyStore, settings: Settings, clock: Clock) -> None:
        self.keys = keys
        self.settings = settings
        self.clock = clock

    async def sign(
        self,
        *,
        subject: str,
        kind: PrincipalKind,
        ttl_seconds: int,
        org_id: uuid.UUID | None,
        roles: list[str],
        scope: str,
        extra: dict[str, Any] | None = None,
    ) -> str:
        kid, private_key = await self.keys.signing_key()
        now = self.clock.now()
        claims: dict[str, Any] = {
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": subject,
            "typ": str(kind),
            "roles": list(roles),
            "scope": scope,
            "iat": int(now.timestamp()),
            "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        if org_id is not None:
            claims["org"] = str(org_id)
        claims.update(extra or {})
        return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid})

    async def issue_person_token(
        self, person: Person, scope: str = "", session_id: uuid.UUID | None = None
    ) -> tuple[str, int]:
        """`scope`: what the person narrowed the sign-in to, or "" for every scope their roles
        hold (signed as such, so that standard clients read what the token allows)."""
        ttl = self.settings.access_token_ttl_seconds
        # The count of the person's access changes: services refuse the token once the
        # count moves on (upstander.kit.revocation).
        extra: dict[str, Any] = {ACCESS_VERSION_CLAIM: person.access_version or 0}
        if session_id is not None:
            extra[SESSION_CLAIM] = str(session_id)
        token = await self.sign(
            subject=str(person.id),
            kind=PrincipalKind.STAFF,
            ttl_seconds=ttl,
            org_id=person.org_id,
            roles=list(person.roles or []),
            scope=scope or " ".join(sorted(scopes_for_roles(person.roles or []))),
            extra=extra,
        )
        return token, ttl

    async def issue_client_token(self, client: ApiClient, scope: str) -> tuple[str, int]:
        ttl = self.settings.client_token_ttl_seconds
        if client.kind == "service":
            token = await self.sign(
                subject=client.client_id,
                kind=PrincipalKind.SERVICE,
                ttl_seconds=ttl,
                org_id=None,
                roles=[],
                scope=scope,
            )
        else:
            # `owner`: the person who registered the client. Services bound what the client
            # sees by what this person may see, live (see docs/threat-model.md).
            owner = {"owner": str(client.created_by)} if client.created_by is not None else {}
            token = await self.sign(
                subject=client.client_id,
                kind=PrincipalKind.CLIENT,
                ttl_seconds=ttl,
                org_id=client.org_id,
                roles=list(client.roles or []),
                scope=scope,
                extra={**owner, ACCESS_VERSION_CLAIM: client.access_version or 0},
            )
        return token, ttl

    async def issue_gateway_service_token(self, ttl_seconds: int = 300) -> str:
        """The gateway's own service token (it signs it, rather than asking itself over HTTP):
        for delivering its events and asking intake to check a receipt."""
        return await self.sign(
            subject="svc-gateway",
            kind=PrincipalKind.SERVICE,
            ttl_seconds=ttl_seconds,
            org_id=None,
            roles=[],
            scope="events:publish receipts:verify",
        )

    async def issue_reporter_token(
        self, org_id: uuid.UUID, report_id: uuid.UUID
    ) -> tuple[str, int]:
        """A token scoped to one report (for `/auth/receipt`): typ "reporter", no roles."""
        ttl = self.settings.reporter_token_ttl_seconds
        token = await self.sign(
            subject=f"reporter:{report_id}",
            kind=PrincipalKind.REPORTER,
            ttl_seconds=ttl,
            org_id=org_id,
            roles=[],
            scope=REPORTER_SCOPE,
            extra={"report": str(report_id)},
        )
        return token, ttl


# --- refresh tokens ---------------------------------------------------------------------------


async def _new_refresh_token(
    session: AsyncSession,
    settings: Settings,
    clock: Clock,
    person: Person,
    family_id: uuid.UUID | None = None,
    scope: str | None = None,
) -> tuple[str, RefreshToken]:
    token = secrets.token_urlsafe(32)
    now = clock.now()
    row = RefreshToken(
        id=uuid.uuid4(),
        token_hash=hash_refresh_token(token),
        person_id=person.id,
        org_id=person.org_id,
        family_id=family_id or uuid.uuid4(),
        created_at=now,
        expires_at=now + timedelta(seconds=settings.refresh_token_ttl_seconds),
        scope=scope or None,
    )
    session.add(row)
    await session.flush()
    return token, row


async def record_revoked(
    session: AsyncSession,
    key: str,
    *,
    org_id: uuid.UUID | None,
    now: datetime,
    expires_at: datetime,
) -> None:
    """Record an access token's `jti` (or a sign-in's `sid:<family>`) as revoked until
    `expires_at`, unless it is already (revoking twice is revoking)."""
    values = {"jti": key, "org_id": org_id, "revoked_at": now, "expires_at": expires_at}
    if session.get_bind().dialect.name in ("postgresql", "sqlite"):
        await session.execute(
            upsert_insert(session, RevokedToken)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["jti"])
        )
    elif await session.get(RevokedToken, key) is None:
        session.add(RevokedToken(**values))
        await session.flush()


async def revoke_family(
    session: AsyncSession, family_id: uuid.UUID, clock: Clock, org_id: uuid.UUID | None = None
) -> None:
    """End a sign-in: every refresh token of the family, and (by their `sid` claim) every
    access token issued from it that has not expired yet."""
    now = clock.now()
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    await record_revoked(
        session,
        SESSION_PREFIX + str(family_id),
        org_id=org_id,
        now=now,
        expires_at=now + timedelta(seconds=MAX_PERSON_TOKEN_SECONDS),
    )


async def revoke_person_tokens(session: AsyncSession, person_id: uuid.UUID, clock: Clock) -> None:
    await session.execute(
        update(RefreshToken)
        .where(RefreshToken.person_id == person_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )


# --- grants -----------------------------------------------------------------------------------


def requested_scopes(requested: str | None) -> list[str] | None:
    """The scopes a token request names (`scope=`, space-separated), in order and once each;
    None when it names none. A name outside the catalogue is `invalid_scope`."""
    if requested is None or not requested.strip():
        return None
    names = list(dict.fromkeys(requested.split()))
    unknown = [name for name in names if name not in CATALOGUE and name not in PLATFORM_SCOPES]
    if unknown:
        raise OAuthError("invalid_scope", f"Unknown scope: {' '.join(unknown)[:200]}.")
    return names


def _narrowed(requested: str | None, held: frozenset[str], whose: str) -> str:
    """The scope a token gets: `requested` when it is within `held`, else `invalid_scope`;
    "" when nothing was requested (every scope held)."""
    names = requested_scopes(requested)
    if names is None:
        return ""
    beyond = [name for name in names if name not in held]
    if beyond:
        raise OAuthError(
            "invalid_scope", f"The requested scope exceeds {whose}: {' '.join(beyond)[:200]}."
        )
    return " ".join(names)


# How many accounts of one email (in as many organisations) a sign-in without `org` tries.
MAX_ACCOUNTS_PER_EMAIL = 5
AMBIGUOUS_ACCOUNT = (
    "This email has an account in several organisations: send `org`, the slug of the "
    "organisation to sign in to."
)


async def _refuse_ambiguous_account(people: list[Person], password: str) -> None:
    """The same email in several organisations and no `org`. Told plainly (problem type
    `org-required`, `error=invalid_request`) only to whoever knows the password of one of
    those accounts; anyone else gets the usual `invalid_grant`, so the answer names no
    organisation and tells a stranger nothing it would not otherwise."""
    for candidate in people:
        matches, _ = await verify_secret(candidate.password_hash, password)
        if matches:
            error = OAuthError("invalid_request", AMBIGUOUS_ACCOUNT)
            error.slug, error.title = "org-required", "Organisation required"
            error.extra["parameter"] = "org"
            raise error
    raise OAuthError("invalid_grant", INVALID_CREDENTIALS)


async def password_grant(
    session: AsyncSession,
    issuer: TokenIssuer,
    *,
    username: str,
    password: str,
    org_slug: str | None,
    scope: str | None = None,
) -> IssuedToken:
    statement = (
        select(Person)
        .join(Org, Org.id == Person.org_id)
        .where(Person.email == username.strip().lower(), Person.active.is_(True))
        .where(Org.active.is_(True))
        .limit(MAX_ACCOUNTS_PER_EMAIL)
    )
    if org_slug:
        statement = statement.where(Org.slug == org_slug.strip().lower())
    # An unknown scope is refused before any password is checked (it says nothing of anyone).
    requested_scopes(scope)
    people = list((await session.scalars(statement)).all())
    if len(people) > 1:
        await _refuse_ambiguous_account(people, password)
    person = people[0] if len(people) == 1 else None
    # Always one Argon2 verification, so an unknown account takes as long as a wrong
    # password, and the answer is the same: no oracle for who has an account. (An email in
    # several organisations without `org` was answered above, told only to its password.)
    matches, needs_rehash = await verify_secret(
        person.password_hash if person is not None else None, password
    )
    if person is None or not matches:
        raise OAuthError("invalid_grant", INVALID_CREDENTIALS)
    if needs_rehash:
        person.password_hash = await hash_secret(password)
    narrowed = _narrowed(scope, scopes_for_roles(person.roles or []), "your roles' scopes")
    refresh, row = await _new_refresh_token(
        session, issuer.settings, issuer.clock, person, scope=narrowed
    )
    access, expires_in = await issuer.issue_person_token(person, narrowed, row.family_id)
    granted = narrowed or " ".join(sorted(scopes_for_roles(person.roles or [])))
    return IssuedToken(access, expires_in, granted, refresh)


def _client_scopes(client: ApiClient) -> frozenset[str]:
    """What a client may be issued: its granted catalogue scopes (a name outside the
    catalogue, from before it existed, grants nothing); a platform service its own."""
    if client.kind == "service":
        return frozenset({SERVICE_SCOPE})
    if client.kind == "operator":  # the platform operator (identity/orgs.py): its own scopes
        return frozenset(s for s in client.scopes or [] if s in OPERATOR_SCOPES)
    return frozenset(s for s in client.scopes or [] if s in CATALOGUE)


def _granted_scope(client: ApiClient, requested: str | None) -> str:
    allowed = _client_scopes(client)
    narrowed = _narrowed(requested, allowed, "the client's scopes")
    if narrowed:
        return narrowed
    # Every scope held, in the order granted.
    return " ".join(s for s in dict.fromkeys(client.scopes or []) if s in allowed) or (
        SERVICE_SCOPE if client.kind == "service" else ""
    )


async def authenticate_client(
    session: AsyncSession, *, client_id: str, client_secret: str
) -> ApiClient:
    """The active client these credentials name, of an active organisation (or a platform
    service), else 401 `invalid_client`; always one Argon2 verification."""
    client = await session.scalar(
        select(ApiClient).where(ApiClient.client_id == client_id, ApiClient.active.is_(True))
    )
    matches, needs_rehash = await verify_secret(
        client.secret_hash if client is not None else None, client_secret
    )
    # A public client (a browser or mobile app) keeps no secret: none authenticates it.
    if client is None or not matches or client.public:
        raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if client.org_id is not None:
        org = await session.get(Org, client.org_id)
        if org is None or not org.active:
            raise OAuthError("invalid_client", "Client authentication failed.", status=401)
    if needs_rehash:
        client.secret_hash = await hash_secret(client_secret)
    return client


async def client_credentials_grant(
    session: AsyncSession,
    issuer: TokenIssuer,
    *,
    client_id: str,
    client_secret: str,
    scope: str | None,
) -> IssuedToken:
    client = await authenticate_client(session, client_id=client_id, client_secret=client_secret)
    granted = _granted_scope(client, scope)
    access, expires_in = await issuer.issue_client_token(client, granted)
    return IssuedToken(access, expires_in, granted)


async def refresh_token_grant(
    session: AsyncSession, issuer: TokenIssuer, *, refresh_token: str, scope: str | None = None
) -> IssuedToken:
    """Rotate: the presented token is revoked and replaced. A token presented again after it
    was rotated (stolen, or replayed) revokes its whole family. `scope` may narrow the sign-in
    further (RFC 6749 §6), never widen it."""
    clock = issuer.clock
    invalid = OAuthError("invalid_grant", "The refresh token is not valid.")
    requested_scopes(scope)
    row = await session.scalar(
        select(RefreshToken).where(RefreshToken.token_hash == hash_refresh_token(refresh_token))
    )
    if row is None:
        raise invalid
    now = clock.now()
    if row.revoked_at is not None:
        await revoke_family(session, row.family_id, clock, row.org_id)
        # Committed here, not by the route: the error response would roll it back.
        await session.commit()
        raise invalid
    if row.expires_at <= now or row.person_id is None:
        raise invalid
    person = await session.get(Person, row.person_id)
    org = await session.get(Org, person.org_id) if person is not None else None
    held = scopes_for_roles(person.roles or []) if person is not None else frozenset()
    if row.scope:
        held = held & frozenset(row.scope.split())
    # Checked before the token is spent: a refused narrowing leaves the sign-in as it was.
    narrowed = _narrowed(scope, held, "the sign-in's scopes") or (row.scope or "")
    # Conditional update: of two concurrent refreshes with one token, only one wins.
    claimed = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        await revoke_family(session, row.family_id, clock, row.org_id)
        await session.commit()
        raise invalid
    if person is None or org is None or not person.active or not org.active:
        await revoke_family(session, row.family_id, clock, row.org_id)
        await session.commit()
        raise invalid
    refresh, new_row = await _new_refresh_token(
        session, issuer.settings, clock, person, family_id=row.family_id, scope=narrowed
    )
    access, expires_in = await issuer.issue_person_token(person, narrowed, row.family_id)
    await session.execute(
        update(RefreshToken).where(RefreshToken.id == row.id).values(replaced_by=new_row.id)
    )
    granted = narrowed or " ".join(sorted(scopes_for_roles(person.roles or [])))
    return IssuedToken(access, expires_in, granted, refresh)
