"""Run the intake service: `python -m upstander.intake`."""

from __future__ import annotations

import os

from upstander.intake.settings import Settings
from upstander.kit.server import serve


def main() -> None:
    serve(
        "upstander.intake.app:create_app",
        settings=Settings(),
        host=os.environ.get("UPSTANDER_INTAKE_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_INTAKE_PORT", "8001")),
    )


if __name__ == "__main__":
    main()
