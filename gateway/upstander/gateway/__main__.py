"""`python -m upstander.gateway`: serve the gateway with uvicorn."""

from __future__ import annotations

import os

import uvicorn

from upstander.gateway.app import create_app
from upstander.gateway.settings import Settings


def main() -> None:
    settings = Settings()
    host = os.environ.get("UPSTANDER_GATEWAY_HOST", "127.0.0.1")
    uvicorn.run(
        create_app(settings),
        host=host,
        port=settings.port,
        access_log=False,  # the kit logs requests itself, without personal data
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
