"""Upstander kit: what every service shares (settings, database, auth, errors, events, crypto)."""

import sys

from upstander.kit import deferred, own_code

# Under `python -OO` (how the apps run), our own modules keep their docstrings and asserts
# (`upstander.kit.own_code`); everything else loses them.
own_code.install()
# httpx imports its command-line client (`httpx._main`: click, rich, pygments) whenever those
# happen to be installed, as they are in the development environment (schemathesis, typer):
# 4 MB of every app's memory for a tool no app runs. httpx falls back to a stub when the import
# fails, as it does in a production install without them; make it fail here too.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
# uvicorn imports its reloader's file watcher (watchfiles) in every server, reloading or not;
# without it uvicorn falls back to polling, should anyone serve an app with `--reload`.
sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
# FastAPI imports pydantic's v1 package (0.8 MB) to check that no route uses a v1 model, and
# takes a failed import as the answer: none can be, as none of our code uses pydantic v1.
sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
# FastAPI's OpenAPI models build their pydantic validators on first use, not on import
# (1.3 MB of every app; `upstander.kit.deferred`).
deferred.install()
