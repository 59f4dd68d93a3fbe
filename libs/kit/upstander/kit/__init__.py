"""Upstander kit: what every service shares (settings, database, auth, errors, events, crypto)."""

import sys

# httpx imports its command-line client (`httpx._main`: click, rich, pygments) whenever those
# happen to be installed, as they are in the development environment (schemathesis, typer):
# 4 MB of every app's memory for a tool no app runs. httpx falls back to a stub when the import
# fails, as it does in a production install without them; make it fail here too.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
# uvicorn imports its reloader's file watcher (watchfiles) in every server, reloading or not;
# without it uvicorn falls back to polling, should anyone serve an app with `--reload`.
sys.modules.setdefault("watchfiles", None)  # type: ignore[arg-type]
