"""How every app is served: `python -m upstander.<app>` calls `serve`, so that the gateway and
the four services run uvicorn alike and bound their connections the same way.

The request-level bounds (how long a body may take, how many slow requests one source may
hold) live in the app itself (`upstander.kit.http.BodyGuard`), where they answer with
a problem document; these are the server's own backstops under them.
"""

from __future__ import annotations

from typing import Any

from upstander.kit.settings import KitSettings


def serve(app: Any, *, settings: KitSettings, host: str, port: int) -> None:
    """Serve `app` (an app, or the `module:factory` path of one) until stopped. Logging is the
    kit's (configured in the lifespan), not uvicorn's. uvicorn is imported here, after the kit
    has kept what no app process uses out of memory (`upstander.kit`)."""
    import uvicorn

    uvicorn.run(
        app,
        factory=isinstance(app, str),
        host=host,
        port=port,
        log_config=None,
        **server_options(settings),
    )


def server_options(settings: KitSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` besides the app, host and port."""
    return {
        # uvicorn logs client addresses; the kit logs requests itself, without them.
        "access_log": False,
        # The socket peer is the client: forwarded headers are never believed, and anonymous
        # routes see no address but the peer's (which the kit never logs or stores).
        "proxy_headers": False,
        # Connections plus running requests at once before uvicorn answers 503: a backstop on
        # memory and file descriptors, far above what the per-source caps let one source hold.
        "limit_concurrency": settings.server_limit_concurrency or None,
        # An idle keep-alive connection is closed after this many seconds.
        "timeout_keep_alive": settings.server_timeout_keep_alive_seconds,
        "backlog": settings.server_backlog,
        # No app serves WebSockets: don't load a WebSocket implementation into every process.
        "ws": "none",
    }
