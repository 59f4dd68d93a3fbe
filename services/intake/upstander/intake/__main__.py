"""Run the intake service: `python -m upstander.intake`."""

from __future__ import annotations

import os

import uvicorn

from upstander.intake.settings import Settings
from upstander.kit.server import server_options


def main() -> None:
    uvicorn.run(
        "upstander.intake.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_INTAKE_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_INTAKE_PORT", "8001")),
        log_config=None,  # the kit configures logging in the lifespan
        # Connection bounds and keep-alive from the settings, the same for every app.
        **server_options(Settings()),
    )


if __name__ == "__main__":
    main()
