"""Run the intake service: `python -m upstander.intake`."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "upstander.intake.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_INTAKE_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_INTAKE_PORT", "8001")),
        access_log=False,
        log_config=None,  # the kit configures logging in the lifespan
        proxy_headers=False,  # anonymous routes keep no client address
    )


if __name__ == "__main__":
    main()
