"""Fixtures and hooks every test folder shares; helpers live in tests/helpers.py.

The database backend comes from `UPSTANDER_TEST_BACKEND` (`sqlite`, the default, or
`postgresql`, against `UPSTANDER_TEST_PG_URL`); `scripts/test.sh` runs one pass per backend.
A fixture that makes a database depends on `test_backend`, which is how a test says it uses the
backend: the PostgreSQL pass runs only those tests (the others gain nothing from a second run),
the SQLite pass runs everything. See docs/testing.md.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import os
import resource
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import helpers
import pytest
from sqlalchemy.engine import make_url

T = TypeVar("T")

_STARTED = time.monotonic()

MARKERS = {
    "processes": "starts real service processes on localhost ports",
    "backend": "uses the selected database backend without a fixture that says so "
    "(runs in the PostgreSQL pass too)",
}


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine outside pytest-asyncio's loop (session start and end hooks)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


# Argon2id at production cost is about 0.2 CPU second per hash or check, and the suite signs in,
# makes clients and starts gateways (each hashing the demo's passwords and the service clients'
# secrets) by the hundred: every gateway of the run, in this process and in the processes the
# tests start (they inherit the environment), hashes with the cheapest Argon2id parameters
# instead, through the gateway's own settings. The algorithm, the stored format and the code
# paths stay the same (a hash with other parameters still verifies, and is rehashed as in
# production). Production mode refuses these values: a test that builds production settings
# removes them (`production_hash_cost`).
CHEAP_PASSWORD_HASHING = {
    "UPSTANDER_PASSWORD_HASH_TIME_COST": "1",
    "UPSTANDER_PASSWORD_HASH_MEMORY_KIB": "8",
}


def _cheap_password_hashing() -> None:
    for name, value in CHEAP_PASSWORD_HASHING.items():
        os.environ.setdefault(name, value)
    try:
        from upstander.gateway.auth import passwords
    except ImportError:  # a checkout without the gateway
        return
    passwords.configure(time_cost=1, memory_kib=8)


@pytest.fixture
def production_hash_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment without the suite's cheap password hashing, for production settings."""
    for name in CHEAP_PASSWORD_HASHING:
        monkeypatch.delenv(name, raising=False)


def pytest_configure(config: pytest.Config) -> None:
    _cheap_password_hashing()
    registered = {line.split(":", 1)[0].strip() for line in config.getini("markers")}
    for name, description in MARKERS.items():
        if name not in registered:
            config.addinivalue_line("markers", f"{name}: {description}")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """Every async test and fixture runs on uvloop, the loop the apps run on under uvicorn
    (`uvicorn[standard]`): the suite spends much of its CPU in the event loop, and uvloop's
    costs less of it than asyncio's own."""
    import uvloop

    return {"uvloop": uvloop.new_event_loop}


def pytest_report_header(config: pytest.Config) -> str:
    backend = helpers.selected_backend()
    if backend != "postgresql":
        return f"upstander test backend: {backend}"
    shown = make_url(helpers.pg_admin_url()).render_as_string(hide_password=True)
    return f"upstander test backend: {backend} ({shown}; databases upstander_t_{helpers.RUN_ID}_*)"


def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    helpers.sweep_abandoned_template_folders()
    if helpers.selected_backend() != "postgresql":
        return
    if not _run(helpers.pg_reachable()):
        shown = make_url(helpers.pg_admin_url()).render_as_string(hide_password=True)
        raise pytest.UsageError(
            f"UPSTANDER_TEST_BACKEND=postgresql but no PostgreSQL answers at {shown} "
            "(set UPSTANDER_TEST_PG_URL)"
        )
    _run(helpers.sweep_abandoned_databases())


# What makes a database on the selected backend when a test calls it itself (rather than
# through a fixture that depends on `test_backend`).
DATABASE_MAKERS = {
    ("helpers", "fresh_database"),
    ("helpers", "fresh_pg_database"),
    ("harness", "database_url"),
    ("harness", "running_platform"),
}


def _module_makes_databases(module: Any) -> bool:
    for value in vars(module).values():
        if getattr(value, "__name__", None) in {"helpers", "harness"} and not callable(value):
            return True  # `import helpers` / `import harness`: may call any of them
        if (getattr(value, "__module__", None), getattr(value, "__name__", None)) in (
            DATABASE_MAKERS
        ):
            return True
    return False


def _uses_backend(item: pytest.Item) -> bool:
    """Whether a test touches the selected backend: through a fixture that depends on
    `test_backend`, a `backend` marker, or a module that makes databases itself."""
    if "test_backend" in getattr(item, "fixturenames", ()) or item.get_closest_marker("backend"):
        return True
    module = getattr(item, "module", None)
    return module is not None and _module_makes_databases(module)


# Set by scripts/test.sh: a folder every test process of the run shares. Each module is then
# run by exactly one process: a backend's modules by one of that backend's workers, the
# modules that never touch a database by whichever process of either backend is free first.
SHARE_VARIABLE = "UPSTANDER_TEST_SHARE_DIR"
_PLAN = pytest.StashKey[list[tuple[str, list[pytest.Item]]]]()
_SHARED_MODULES = pytest.StashKey[set[str]]()
_SHARE_TALLY = pytest.StashKey[dict[str, int]]()

# Modules that start processes or a whole platform take the longest: they are claimed first,
# so the workers end together instead of one starting a long module when the others are done.
_HEAVY_FOLDERS = ("tests/e2e/", "tests/contract/")


def _share_dir() -> Path | None:
    folder = os.environ.get(SHARE_VARIABLE, "").strip()
    return Path(folder) if folder else None


def _module_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _weight(module: str, members: list[pytest.Item]) -> tuple[int, int]:
    heavy = module.startswith(_HEAVY_FOLDERS) or "/" not in module.removeprefix("tests/")
    heavy = heavy or any(member.get_closest_marker("processes") for member in members)
    return (0 if heavy else 1, -len(members))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On the PostgreSQL pass keep only the tests that use the backend. When a selection has
    none (say `tests/kit` alone), it runs as selected rather than as nothing.

    With UPSTANDER_TEST_SHARE_DIR (scripts/test.sh), the tests are grouped by module into a
    plan: this backend's modules, heaviest first, then the modules none of whose tests use the
    backend (which either backend may run). `pytest_runtestloop` claims each module just before
    running it, so the workers of a run split the modules between them and end together."""
    uses = {id(item): _uses_backend(item) for item in items}
    share = _share_dir()
    if share is not None:
        modules: dict[str, list[pytest.Item]] = {}
        for item in items:
            modules.setdefault(_module_of(item), []).append(item)
        shared = {
            module
            for module, members in modules.items()
            if not any(uses[id(member)] for member in members)
        }
        postgresql = helpers.selected_backend() == "postgresql"
        own: dict[str, list[pytest.Item]] = {}
        dropped: list[pytest.Item] = []
        for module, members in modules.items():
            if module in shared:
                continue
            for item in members:
                # A module that uses the backend keeps its other tests in the SQLite pass.
                if postgresql and not uses[id(item)]:
                    dropped.append(item)
                else:
                    own.setdefault(module, []).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
        plan = sorted(own.items(), key=lambda entry: _weight(*entry))
        plan += [(module, modules[module]) for module in modules if module in shared]
        config.stash[_PLAN] = plan
        config.stash[_SHARED_MODULES] = shared
        items[:] = [item for _, members in plan for item in members]
        return
    if helpers.selected_backend() != "postgresql":
        return
    kept = [item for item in items if uses[id(item)]]
    if kept and len(kept) < len(items):
        config.hook.pytest_deselected(items=[item for item in items if not uses[id(item)]])
        items[:] = kept


def _claim(share: Path, key: str) -> bool:
    """Take `key` (a module) for this process, unless another has (an exclusive file create)."""
    share.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:32]
    try:
        descriptor = os.open(share / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as claim:
        claim.write(f"{os.getpid()} {key}\n")
    return True


def _items_to_run(session: pytest.Session, share: Path) -> Iterator[pytest.Item]:
    shared = session.config.stash.get(_SHARED_MODULES, set())
    tally = session.config.stash.setdefault(
        _SHARE_TALLY, {"modules": 0, "tests": 0, "shared_modules": 0, "shared_tests": 0}
    )
    backend = helpers.selected_backend()
    # The plan as it stands once every hook has deselected what it would (`-m`, `-k`).
    selected = {id(item) for item in session.items}
    plan = [
        (module, kept)
        for module, members in session.config.stash.get(_PLAN, [])
        if (kept := [item for item in members if id(item) in selected])
    ]
    session.config.stash[_PLAN] = plan
    for module, members in plan:
        is_shared = module in shared
        if _claim(share, f"{'any' if is_shared else backend} {module}"):
            tally["modules"] += 1
            tally["tests"] += len(members)
            if is_shared:
                tally["shared_modules"] += 1
                tally["shared_tests"] += len(members)
            yield from members
        else:
            session.config.hook.pytest_deselected(items=members)


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> bool | None:
    """pytest's own loop, except that with a share folder a module runs only if this process
    claims it first (each is claimed just before the test ahead of it runs, so `nextitem` is
    always the test that really runs next)."""
    share = _share_dir()
    if share is None or session.config.option.collectonly:
        return None  # pytest's loop
    if session.testsfailed and not session.config.option.continue_on_collection_errors:
        return None  # pytest's loop reports the collection errors
    upcoming = _items_to_run(session, share)
    item = next(upcoming, None)
    while item is not None:
        nextitem = next(upcoming, None)
        item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        if session.shouldfail:
            raise session.Failed(session.shouldfail)
        if session.shouldstop:
            raise session.Interrupted(session.shouldstop)
        item = nextitem
    return True


def pytest_terminal_summary(terminalreporter: Any) -> None:
    # CPU seconds as well as wall time: other work on the machine stretches the wall time only.
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    terminalreporter.write_line(
        f"{helpers.selected_backend()} pass CPU: {own.ru_utime + own.ru_stime:.1f}s in pytest, "
        f"{children.ru_utime + children.ru_stime:.1f}s in the processes it started "
        f"(and waited for); wall {time.monotonic() - _STARTED:.1f}s"
    )
    plan = terminalreporter.config.stash.get(_PLAN, None)
    if plan is None:
        return
    shared = terminalreporter.config.stash.get(_SHARED_MODULES, set())
    tally = terminalreporter.config.stash.get(
        _SHARE_TALLY, {"modules": 0, "tests": 0, "shared_modules": 0, "shared_tests": 0}
    )
    terminalreporter.write_line(
        f"this worker ran {tally['modules']} of the {len(plan)} modules it could "
        f"({tally['tests']} tests), {tally['shared_modules']} of them of the "
        f"{len(shared)} that touch no database ({tally['shared_tests']} tests)"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    helpers.remove_template_folder()
    if helpers.selected_backend() == "postgresql":
        helpers.finish_run()
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


# Set by scripts/test.sh: once pytest has reported and cleaned up (databases dropped, template
# folders removed), the process ends at once with pytest's exit status. Tearing down the
# interpreter of a whole pass (the objects of hundreds of started apps, thread joins, the
# garbage collector over them) took 5 to 15 s at the end of each run and served nothing.
FAST_EXIT_VARIABLE = "UPSTANDER_TEST_FAST_EXIT"
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_unconfigure(config: pytest.Config) -> None:
    if os.environ.get(FAST_EXIT_VARIABLE) != "1" or _EXIT_STATUS not in config.stash:
        return
    status = config.stash[_EXIT_STATUS]

    def end_now() -> None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    # atexit runs its callbacks last-registered first: this one, before any other's.
    atexit.register(end_now)


@pytest.fixture(scope="session")
def test_backend() -> str:
    """`sqlite` or `postgresql`, from UPSTANDER_TEST_BACKEND. Every fixture that makes a
    database depends on it (that is what puts its tests in the PostgreSQL pass)."""
    return helpers.selected_backend()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The PostgreSQL admin URL (plain `postgresql://`, for asyncpg or psql)."""
    return helpers.pg_admin_url()


@pytest.fixture(scope="session")
def minter() -> helpers.TokenMinter:
    """Signs tokens as the gateway does and serves its JWKS (`minter.transport()`)."""
    return helpers.TokenMinter()
