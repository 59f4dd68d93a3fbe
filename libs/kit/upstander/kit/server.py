"""How every app is served: `python -m upstander.<app>` calls `serve`, so that the gateway and
the four services run uvicorn alike and bound their connections the same way.

The request-level bounds (how long a body may take, how many slow requests one source may
hold) live in the app itself (`upstander.kit.http.BodyGuard`), where they answer with
a problem document; these are the server's own backstops under them.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from upstander.kit import documents
from upstander.kit.settings import KitSettings


def serve(app: Any, *, settings: KitSettings, host: str, port: int) -> None:
    """Serve `app` (an app, or the `module:factory` path of one) until stopped. Logging is the
    kit's (configured in the lifespan), not uvicorn's. uvicorn is imported here, after the kit
    has kept what no app process uses out of memory (`upstander.kit`, `import_uvicorn`)."""
    uvicorn = import_uvicorn()
    if isinstance(app, str):
        # The app's OpenAPI document is built by a child from the same factory
        # (`upstander.kit.documents`): the server never holds what building it takes.
        documents.FACTORY = app
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


def _click_stand_in() -> types.ModuleType:
    """Just enough of click for `uvicorn.main` to be defined: its decorators leave the command
    line's function as it is, its parameter types are inert. Nothing in it can run a command."""
    module = types.ModuleType("click", "A stand-in: uvicorn's command line is not served here.")

    def decorator(*_args: Any, **_kwargs: Any) -> Any:
        return lambda function: function

    class ParamType:
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            return None

    def echo(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("uvicorn's command line does not run in an Upstander app process")

    module.command = module.option = module.argument = decorator  # type: ignore[attr-defined]
    module.Choice = module.Path = ParamType  # type: ignore[attr-defined]
    module.Context = module.Parameter = object  # type: ignore[attr-defined]
    module.echo = echo  # type: ignore[attr-defined]
    return module


def import_uvicorn() -> types.ModuleType:
    """uvicorn, without click. uvicorn's package imports its command line (`uvicorn.main`), and
    with it click: 1.4–2.4 MB of every app for a command line no app process runs (`uvicorn.run`
    does not use click). While uvicorn is imported, `click` is a stand-in that lets that module
    be defined; then it is taken away again, so anything else importing click gets click."""
    if "uvicorn" in sys.modules or "click" in sys.modules:
        import uvicorn

        return uvicorn
    stand_in = _click_stand_in()
    sys.modules["click"] = stand_in
    try:
        import uvicorn
    finally:
        if sys.modules.get("click") is stand_in:
            del sys.modules["click"]
    return uvicorn
