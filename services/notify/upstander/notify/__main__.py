"""Run the notify service: `python -m upstander.notify`."""

from __future__ import annotations

import os

from upstander.kit.server import serve
from upstander.notify.settings import Settings


def main() -> None:
    serve(
        "upstander.notify.app:create_app",
        settings=Settings(),
        host=os.environ.get("UPSTANDER_NOTIFY_HOST", "127.0.0.1"),
        port=int(os.environ.get("UPSTANDER_NOTIFY_PORT", "8004")),
    )


if __name__ == "__main__":
    main()
