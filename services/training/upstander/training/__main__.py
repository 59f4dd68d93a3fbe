"""Run the training service: `python -m upstander.training`."""

from __future__ import annotations

import os

from upstander.kit.server import serve
from upstander.training.settings import Settings


def main() -> None:
    serve(
        "upstander.training.app:create_app",
        settings=Settings(),
        host=os.environ.get("UPSTANDER_TRAINING_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_TRAINING_PORT", "8003")),
    )


if __name__ == "__main__":
    main()
