"""Run the cases service: `python -m upstander.cases`."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "upstander.cases.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_CASES_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_CASES_PORT", "8002")),
        access_log=False,
        log_config=None,  # the kit configures logging in the lifespan
        proxy_headers=False,  # no client addresses in logs or rows
    )


if __name__ == "__main__":
    main()
