"""`python -m upstander.gateway`: serve the gateway with uvicorn."""

from __future__ import annotations

import os

from upstander.gateway.settings import Settings
from upstander.kit.server import serve


def main() -> None:
    settings = Settings()
    serve(
        "upstander.gateway.app:create_app",
        settings=settings,
        host=os.environ.get("UPSTANDER_GATEWAY_HOST", "127.0.0.1"),
        port=settings.port,
    )


if __name__ == "__main__":
    main()
