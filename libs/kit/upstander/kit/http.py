"""Guards on the raw HTTP exchange: body size (413) and content type (415), as problem+json."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from upstander.kit.errors import PROBLEM_BASE

DEFAULT_CONTENT_TYPES = (
    "application/json",
    "application/problem+json",
    "multipart/form-data",
    "application/x-www-form-urlencoded",
)


async def _send_problem(send: Send, status: int, slug: str, title: str, detail: str) -> None:
    body = json.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyGuardMiddleware:
    """Refuse bodies over `max_bytes` (declared or streamed) and unexpected content types."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        content_types: tuple[str, ...] = DEFAULT_CONTENT_TYPES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.content_types = content_types

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_large = int(declared) > self.max_bytes
            except ValueError:
                await _send_problem(send, 400, "bad-request", "Bad request", "Bad Content-Length.")
                return
            if too_large:
                await _send_problem(
                    send,
                    413,
                    "payload-too-large",
                    "Payload too large",
                    f"The body exceeds {self.max_bytes} bytes.",
                )
                return
        content_type = headers.get(b"content-type", b"").decode("latin-1").split(";")[0]
        content_type = content_type.strip().lower()
        has_body = declared not in (None, b"0") or b"transfer-encoding" in headers
        if has_body and content_type and not self._accepts(content_type):
            await _send_problem(
                send,
                415,
                "unsupported-media-type",
                "Unsupported media type",
                f"Content type {content_type!r} is not accepted here.",
            )
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the app, so the problem handlers render it as a 413.
                    raise HTTPException(413, f"The body exceeds {self.max_bytes} bytes.")
            return message

        await self.app(scope, counting_receive, send)

    def _accepts(self, content_type: str) -> bool:
        if content_type.endswith("+json"):
            return True
        return content_type in self.content_types
