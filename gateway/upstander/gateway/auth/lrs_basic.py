"""HTTP Basic credentials for the Learning Record Store (xAPI 1.0.3 §4.0): an LMS sends an API
client's `client_id` and `client_secret` as the Basic user and password, and the gateway turns
them into the client's bearer token before proxying to `/training/v1/xapi/...`.

Decision (docs/xapi.md, "Credentials"): the gateway validates the credentials — it owns the
clients and their Argon2 secret hashes — and the training service keeps verifying JWTs only,
so the LRS's routes, scopes and org scoping are the same for Basic and bearer callers. The
token is narrowed to the client's xAPI scopes (`xapi:read`, `xapi:write`); a client holding
neither is refused (401, like bad credentials: no oracle). A verified pair is remembered in
memory (keyed by a SHA-256 of the pair, never the secret itself) until shortly before its token
expires, so an LMS's steady traffic costs one Argon2 verification per token lifetime; the
services still refuse the token at once when the client's access changes (access ledger).
Every verification (not the remembered ones) counts against the client id's budget of the
token endpoint (`auth_account_limits`): past it, 429 with Retry-After."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Scope

from upstander.gateway.auth.oauth import OAuthError
from upstander.gateway.auth.tokens import authenticate_client
from upstander.kit.edge import Answer, EdgeMiddleware, Exchange, edge_of
from upstander.kit.errors import PROBLEM_BASE, PROBLEM_JSON

LRS_PREFIX = "/training/v1/xapi"
XAPI_SCOPES = ("xapi:read", "xapi:write")
REALM = b'Basic realm="upstander-lrs", charset="UTF-8"'
CACHE_LIMIT = 10_000
MAX_FORM_BYTES = 1024 * 1024


def basic_credentials(value: str) -> tuple[str, str] | None:
    """`Basic base64(id:secret)` → (id, secret); None when it is not Basic or malformed."""
    kind, _, encoded = value.strip().partition(" ")
    if kind.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        return None
    return client_id, secret


class Throttled(Exception):
    """Too many verifications of one client id: answer 429 with Retry-After."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(retry_after)
        self.retry_after = max(1, retry_after)


class LrsBasicAuth:
    """Edge step (kit/edge.py): replace `Authorization: Basic` on LRS paths by the client's
    bearer token (or answer 401). Any other path costs one prefix check."""

    name = "lrs_basic"

    def __init__(self, *, gateway: FastAPI) -> None:
        self.gateway = gateway
        self.tokens: dict[str, tuple[str, float]] = {}

    def enter(self, exchange: Exchange) -> Any:
        path = exchange.scope["path"]
        if not (path == LRS_PREFIX or path.startswith(LRS_PREFIX + "/")):
            return None
        return self._enter(exchange)

    async def _enter(self, exchange: Exchange) -> Answer | None:
        scope = exchange.scope
        headers: list[tuple[bytes, bytes]] = list(scope["headers"])
        position = next((i for i, (k, _) in enumerate(headers) if k == b"authorization"), None)
        if position is None:
            if _alternate_syntax(scope, headers):
                return await self._form(exchange, headers)
            return None
        raw = headers[position][1].decode("latin-1")
        if not raw.strip().lower().startswith("basic"):
            return None
        credentials = basic_credentials(raw)
        try:
            token = await self._token(credentials) if credentials is not None else None
        except Throttled as throttled:
            return self._refuse(scope, retry_after=throttled.retry_after)
        if token is None:
            return self._refuse(scope)
        headers[position] = (b"authorization", b"Bearer " + token.encode())
        scope["headers"] = headers
        exchange.headers_changed()
        return None

    async def _form(self, exchange: Exchange, headers: list[tuple[bytes, bytes]]) -> Answer | None:
        """The Alternate Request Syntax (xAPI §1.3) may carry Authorization as a form field:
        a Basic one there is replaced by the bearer token, in the form itself."""
        scope, receive = exchange.scope, exchange.receive
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = bool(message.get("more_body", False))
            if size > MAX_FORM_BYTES:
                break
        body = b"".join(chunks)
        if not more:
            try:
                form = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
            except UnicodeDecodeError:
                form = []
            for index, (name, value) in enumerate(form):
                if name.lower() != "authorization" or not value.lower().startswith("basic"):
                    continue
                credentials = basic_credentials(value)
                try:
                    token = await self._token(credentials) if credentials is not None else None
                except Throttled as throttled:
                    return self._refuse(scope, retry_after=throttled.retry_after)
                if token is None:
                    return self._refuse(scope)
                form[index] = (name, f"Bearer {token}")
                body = urlencode(form).encode()
                headers = [(k, v) for k, v in headers if k != b"content-length"]
                headers.append((b"content-length", str(len(body)).encode()))
                break
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": more}

        scope["headers"] = headers
        exchange.headers_changed()
        exchange.receive = replay
        return None

    async def _token(self, credentials: tuple[str, str]) -> str | None:
        client_id, secret = credentials
        key = hashlib.sha256(f"{client_id}\x00{secret}".encode()).hexdigest()
        cached = self.tokens.get(key)
        now = time.monotonic()
        if cached is not None and cached[1] > now:
            return cached[0]
        self.tokens.pop(key, None)
        state = self.gateway.state
        limits = getattr(state, "auth_account_limits", None)
        if limits is not None:
            # The token endpoint's budget for this client id (shared: one limit per client).
            retry_after = await limits.hit("client:" + limits.key(client_id))
            if retry_after:
                raise Throttled(int(retry_after))
        async with state.sessionmaker() as session:
            try:
                client = await authenticate_client(
                    session, client_id=client_id, client_secret=secret
                )
            except OAuthError:
                return None
            scopes = [s for s in XAPI_SCOPES if s in (client.scopes or [])]
            if client.org_id is None or not scopes:
                return None
            token, ttl = await state.token_issuer.issue_client_token(client, " ".join(scopes))
            await session.commit()  # a rehashed secret, if Argon2's parameters changed
        if len(self.tokens) >= CACHE_LIMIT:
            self.tokens.clear()
        self.tokens[key] = (token, now + max(1.0, min(ttl - 60.0, 600.0)))
        return token

    @staticmethod
    def _refuse(scope: Scope, *, retry_after: int | None = None) -> Answer:
        status = 401 if retry_after is None else 429
        problem: dict[str, Any] = {
            "type": PROBLEM_BASE + ("unauthenticated" if status == 401 else "rate-limited"),
            "title": "Unauthenticated" if status == 401 else "Too many requests",
            "status": status,
            "detail": "The LRS key and secret (an API client's id and secret with an xAPI "
            "scope) were not accepted."
            if status == 401
            else "Too many attempts with this LRS key; retry later.",
            "instance": scope["path"],
        }
        request_id = (scope.get("state") or {}).get("request_id")
        if request_id:
            problem["request_id"] = request_id
        body = json.dumps(problem).encode()
        headers = [
            (b"content-type", PROBLEM_JSON.encode()),
            (b"content-length", str(len(body)).encode()),
            (b"x-experience-api-version", b"1.0.3"),
            (b"cache-control", b"no-store"),
        ]
        if retry_after is None:
            headers.append((b"www-authenticate", REALM))
        else:
            headers.append((b"retry-after", str(retry_after).encode()))
        return Answer(status, headers, body)


class LrsBasicAuthMiddleware(EdgeMiddleware):
    """`LrsBasicAuth` on its own, as a middleware (apps built without the kit's edge)."""

    def __init__(self, app: ASGIApp, *, gateway: FastAPI) -> None:
        super().__init__(app, steps=[LrsBasicAuth(gateway=gateway)])


def _alternate_syntax(scope: Scope, headers: list[tuple[bytes, bytes]]) -> bool:
    """A form POST with `?method=` (the xAPI Alternate Request Syntax)."""
    if scope["method"] != "POST":
        return False
    query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
    content_type = dict(headers).get(b"content-type", b"").decode("latin-1")
    return (
        any(name == "method" for name, _ in query)
        and content_type.split(";")[0].strip().lower() == "application/x-www-form-urlencoded"
    )


def install_lrs_basic(app: FastAPI) -> None:
    """Add the LRS Basic step to the app's edge just inside the request id and the access log,
    so that the revocation check, the rate limits and the proxy see a bearer token."""
    edge_of(app).add_inside(LrsBasicAuth(gateway=app), "request_id", "access_log")
