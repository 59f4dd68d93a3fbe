"""Run the cases service: `python -m upstander.cases`."""

from __future__ import annotations

import os

import uvicorn

from upstander.cases.settings import Settings
from upstander.kit.server import server_options


def main() -> None:
    uvicorn.run(
        "upstander.cases.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_CASES_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_CASES_PORT", "8002")),
        log_config=None,  # the kit configures logging in the lifespan
        # Connection bounds and keep-alive from the settings, the same for every app.
        **server_options(Settings()),
    )


if __name__ == "__main__":
    main()
