"""`make migrate`: upgrade every app's database to the head of its Alembic history.

The database URLs come from each app's own `Settings` (so `UPSTANDER_<APP>_DATABASE_URL` and
`.env` apply, and the default is a SQLite file under var/). `python scripts/migrate.py cases`
migrates only the apps named.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys

from launcher import APPS, REPO_ROOT, migrations_dir


async def migrate(names: list[str]) -> int:
    from upstander.kit.migrations import upgrade_to_head

    os.chdir(REPO_ROOT)  # the default SQLite URLs are relative: var/<app>.db
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    failures = 0
    for name in names:
        try:
            settings = importlib.import_module(f"upstander.{name}.settings").Settings()
        except ModuleNotFoundError as error:
            print(f"{name:>8}: skipped ({error})")
            continue
        folder = migrations_dir(name)
        if not (folder / "env.py").exists():
            print(f"{name:>8}: skipped (no {folder.relative_to(REPO_ROOT)}/env.py)")
            continue
        url = settings.database_url
        try:
            await upgrade_to_head(url, folder)
        except Exception as error:
            failures += 1
            print(f"{name:>8}: FAILED on {_redact(url)}: {type(error).__name__}: {error}")
            continue
        print(f"{name:>8}: at head ({_redact(url)})")
    return 1 if failures else 0


def _redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in APPS]
    if unknown:
        print(f"unknown app(s): {', '.join(unknown)}; choose from {', '.join(APPS)}")
        return 2
    # The gateway first: it is the one the others depend on at run time.
    names = argv or ["gateway", *[n for n in APPS if n != "gateway"]]
    return asyncio.run(migrate(names))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
