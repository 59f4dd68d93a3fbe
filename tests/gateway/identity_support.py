"""Helpers for the gateway's identity and token tests (imported by them and their conftest)."""

from __future__ import annotations

import httpx

DEMO_PASSWORD = "upstander-demo"


async def password_token(
    client: httpx.AsyncClient, email: str, password: str = DEMO_PASSWORD, org: str | None = None
) -> dict[str, object]:
    form = {"grant_type": "password", "username": email, "password": password}
    if org:
        form["org"] = org
    response = await client.post("/auth/token", data=form)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
