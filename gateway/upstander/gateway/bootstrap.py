"""Start-up data: the platform's service clients (always) and the demo organisation (dev mode,
first start only)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from upstander.gateway.auth.passwords import hash_secret, verify_secret
from upstander.gateway.auth.tokens import SERVICE_SCOPE
from upstander.gateway.identity import service
from upstander.gateway.identity.schemas import ClientCreate, PersonCreate
from upstander.gateway.models import ApiClient, Org, Person
from upstander.gateway.settings import DEV_OPERATOR_SECRET, Settings
from upstander.kit.auth import Principal, PrincipalKind, Role

log = logging.getLogger("upstander.gateway.bootstrap")

SERVICE_NAMES = ("intake", "cases", "training", "notify")
DEMO_ORG_SLUG = "demo"
DEMO_ROLES = (
    Role.ADMIN,
    Role.CASE_MANAGER,
    Role.INVESTIGATOR,
    Role.REVIEWER,
    Role.TRAINER,
    Role.STAFF,
    Role.AUDITOR,
)
DEMO_CLIENT_ID = "demo-integration"
DEMO_CLIENT_SECRET = "demo-integration-secret"  # dev mode only, like the demo password


def service_client_id(name: str) -> str:
    return f"svc-{name}"


async def ensure_service_clients(session: AsyncSession, settings: Settings) -> None:
    """`svc-<name>` for each service, authenticated by `settings.service_secret`; a changed
    secret replaces the stored hash. The caller commits.

    The clients share one secret, so they share one hash: a start checks it once (one Argon2id
    verification rather than one per service, about 0.75 s of CPU less per gateway start)."""
    clients = {
        client.client_id: client
        for client in await session.scalars(
            select(ApiClient).where(
                ApiClient.client_id.in_([service_client_id(name) for name in SERVICE_NAMES])
            )
        )
    }
    stored = {client.secret_hash for client in clients.values()}
    shared: str | None = None
    if len(stored) == 1:
        matches, needs_rehash = await verify_secret(next(iter(stored)), settings.service_secret)
        if matches and not needs_rehash:
            shared = next(iter(stored))
    if shared is None:
        shared = await hash_secret(settings.service_secret)
        if clients:
            log.info("service client secret updated")
    for name in SERVICE_NAMES:
        client_id = service_client_id(name)
        client = clients.get(client_id)
        if client is None:
            session.add(
                ApiClient(
                    org_id=None,
                    client_id=client_id,
                    secret_hash=shared,
                    name=f"{name} service",
                    scopes=[SERVICE_SCOPE],
                    roles=[],
                    kind="service",
                    active=True,
                )
            )
            continue
        client.secret_hash = shared
        client.kind, client.active, client.org_id = "service", True, None
    await session.flush()


@dataclass
class DemoCredentials:
    org_slug: str
    password: str
    emails: list[str] = field(default_factory=list)
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    operator: str = ""

    def banner(self) -> str:
        lines = [
            "Upstander DEV credentials (demo data, dev mode only):",
            f"  org: {self.org_slug}   password for every person: {self.password}",
            *(f"  {email}" for email in self.emails),
            f"  API client: {self.client_id} / {self.client_secret}",
            # The platform operator (identity/orgs.py): creates and suspends organisations.
            *([f"  platform operator: {self.operator}"] if self.operator else []),
        ]
        return "\n".join(lines)


async def bootstrap_demo(session: AsyncSession, settings: Settings) -> DemoCredentials | None:
    """In dev mode, when there is no organisation yet, create the demo campaign. The caller
    commits. Returns the credentials to show, or None when nothing was created."""
    if not (settings.is_dev and settings.bootstrap_demo):
        return None
    if await session.scalar(select(func.count()).select_from(Org)):
        return None
    password = settings.demo_password
    org = await service.create_org(session, slug=DEMO_ORG_SLUG, name="Demo Campaign")
    principal = service.system_principal(org.id)
    leader = await service.create_person(
        session,
        principal,
        PersonCreate(
            email="leader@demo.example",
            name="Lee Leader",
            title="Campaign Manager",
            roles=[Role.STAFF],
            is_leadership=True,
            password=password,
        ),
    )
    supervisor = await service.create_person(
        session,
        principal,
        PersonCreate(
            email="supervisor@demo.example",
            name="Sam Supervisor",
            title="Field Director",
            roles=[Role.STAFF],
            manager_id=leader.id,
            password=password,
        ),
    )
    emails = [leader.email, supervisor.email]
    by_role: dict[str, Person] = {}
    for role in DEMO_ROLES:
        person = await service.create_person(
            session,
            principal,
            PersonCreate(
                email=f"{role}@demo.example",
                name="Demo " + str(role).replace("_", " ").title(),
                roles=[role],
                manager_id=supervisor.id if role == Role.STAFF else None,
                password=password,
            ),
        )
        emails.append(person.email)
        by_role[role] = person
    # Registered by the demo admin: its `cases:read` shows the cases they may see (an ownerless
    # client would see none).
    registrar = Principal(
        kind=PrincipalKind.STAFF,
        subject=str(by_role[Role.ADMIN].id),
        org_id=org.id,
        roles=frozenset({Role.ADMIN}),
    )
    demo_client, _secret = await service.create_client(
        session,
        registrar,
        ClientCreate(name="Demo integration", scopes=["cases:read", "training:write"]),
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
    )
    # The first-party demo tool keeps the password grant (docs/auth.md, "Password grant").
    demo_client.allow_password_grant = True
    log.info("demo organisation created")
    operator = (
        ""
        if settings.operator_client_secret
        else f"{settings.operator_client_id} / {DEV_OPERATOR_SECRET} (scope platform:orgs)"
    )
    return DemoCredentials(org_slug=org.slug, password=password, emails=emails, operator=operator)
