"""Run the training service: `python -m upstander.training`."""

from __future__ import annotations

import os

import uvicorn


def main() -> None:
    uvicorn.run(
        "upstander.training.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_TRAINING_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_TRAINING_PORT", "8003")),
        access_log=False,
        log_config=None,  # the kit configures logging in the lifespan
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
