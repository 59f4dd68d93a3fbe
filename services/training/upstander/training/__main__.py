"""Run the training service: `python -m upstander.training`."""

from __future__ import annotations

import os

import uvicorn

from upstander.kit.server import server_options
from upstander.training.settings import Settings


def main() -> None:
    uvicorn.run(
        "upstander.training.app:create_app",
        factory=True,
        host=os.environ.get("UPSTANDER_TRAINING_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_TRAINING_PORT", "8003")),
        log_config=None,  # the kit configures logging in the lifespan
        # Connection bounds and keep-alive from the settings, the same for every app.
        **server_options(Settings()),
    )


if __name__ == "__main__":
    main()
