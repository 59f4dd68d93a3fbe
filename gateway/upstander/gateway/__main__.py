"""`python -m upstander.gateway`: serve the gateway with uvicorn."""

from __future__ import annotations

import os

import uvicorn

from upstander.gateway.app import create_app
from upstander.gateway.settings import Settings
from upstander.kit.server import server_options


def main() -> None:
    settings = Settings()
    host = os.environ.get("UPSTANDER_GATEWAY_HOST", "127.0.0.1")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=settings.port,
        # No access log, no proxy headers, connection bounds: the same for every app.
        **server_options(settings),
    )


if __name__ == "__main__":
    main()
