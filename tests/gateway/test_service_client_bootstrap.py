"""The platform's own service clients (`svc-intake`, ...) at each gateway start: one shared hash
of the service secret, checked once; a changed secret replaces it for every client, and each
client then signs in with the new secret only."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select

from upstander.gateway.auth.passwords import verify_secret
from upstander.gateway.bootstrap import SERVICE_NAMES, ensure_service_clients, service_client_id
from upstander.gateway.models import ApiClient


async def _hashes(gateway_app: FastAPI) -> dict[str, str]:
    async with gateway_app.state.sessionmaker() as session:
        rows = await session.scalars(
            select(ApiClient).where(
                ApiClient.client_id.in_([service_client_id(name) for name in SERVICE_NAMES])
            )
        )
        return {row.client_id: row.secret_hash for row in rows}


async def _ensure(gateway_app: FastAPI, secret: str) -> None:
    settings = gateway_app.state.settings.model_copy(update={"service_secret": secret})
    async with gateway_app.state.sessionmaker() as session:
        await ensure_service_clients(session, settings)
        await session.commit()


async def test_every_service_client_shares_one_hash_that_a_new_secret_replaces(
    gateway_app: FastAPI,
) -> None:
    original = gateway_app.state.settings.service_secret
    started = await _hashes(gateway_app)
    assert set(started) == {service_client_id(name) for name in SERVICE_NAMES}
    assert len(set(started.values())) == 1

    await _ensure(gateway_app, original)  # a restart with the same secret changes nothing
    assert await _hashes(gateway_app) == started

    rotated = "rotated-service-secret-" + "x" * 20
    try:
        await _ensure(gateway_app, rotated)
        after = await _hashes(gateway_app)
        assert set(after) == set(started) and len(set(after.values())) == 1
        stored = next(iter(after.values()))
        assert (await verify_secret(stored, rotated))[0]
        assert not (await verify_secret(stored, original))[0]
    finally:
        await _ensure(gateway_app, original)
    assert (await verify_secret(next(iter((await _hashes(gateway_app)).values())), original))[0]
