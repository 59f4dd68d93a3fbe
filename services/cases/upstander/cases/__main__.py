"""Run the cases service: `python -m upstander.cases`."""

from __future__ import annotations

import os

from upstander.cases.settings import Settings
from upstander.kit.server import serve


def main() -> None:
    serve(
        "upstander.cases.app:create_app",
        settings=Settings(),
        host=os.environ.get("UPSTANDER_CASES_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_CASES_PORT", "8002")),
    )


if __name__ == "__main__":
    main()
