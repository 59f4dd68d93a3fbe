"""The one helper module of the test suite: the backend switch, databases unique to this run,
and a token minter that stands in for the gateway.

Every test folder imports it as `import helpers` (`tests/` is on pytest's `pythonpath`).

Backend switch: `UPSTANDER_TEST_BACKEND` is `sqlite` (the default) or `postgresql`; every
fixture that makes a database asks `selected_backend()` (or the `test_backend` fixture), so a
pass runs each test on one backend only. `scripts/test.sh` runs one pass per backend.

PostgreSQL: `UPSTANDER_TEST_PG_URL` is the server's admin URL (the only PostgreSQL setting;
default `postgresql://postgres@127.0.0.1:5432/postgres`). Every database this run makes is
called `upstander_t_<run>_<name>`, where `<run>` is unique to the pytest process
(`<pid>_<random>`, or `UPSTANDER_TEST_RUN_ID`), so two runs on one machine never touch each
other's databases; the run drops its own at the end, and drops what a killed run left behind.

Speed: each app is migrated once per run into a template (a PostgreSQL database, or a SQLite
file). A test's fresh SQLite database is a copy of the file. A test's fresh PostgreSQL database
is a copy of the template (`CREATE DATABASE ... TEMPLATE`) that, once the test is done, is
emptied (rows deleted, sequences restarted) and handed to the next test of the same app:
making and dropping a database costs the server a disk sync each time, emptying one does not.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import importlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine
from concurrent.futures import Future, wait
from datetime import datetime
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm
from sqlalchemy.engine import URL, make_url

T = TypeVar("T")

BACKENDS = ("sqlite", "postgresql")
BACKEND_VARIABLE = "UPSTANDER_TEST_BACKEND"
PG_URL_VARIABLE = "UPSTANDER_TEST_PG_URL"
RUN_ID_VARIABLE = "UPSTANDER_TEST_RUN_ID"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# Where the services look for the gateway's public keys (their default `gateway_url`).
JWKS_URL = "http://127.0.0.1:8000/.well-known/jwks.json"

_SAFE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_MAX_NAME = 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)
DATABASE_PREFIX = "upstander_t_"
# `upstander_t_<pid>_<6 hex>_...`: what `sweep_abandoned_databases` recognises as a run's.
_RUN_DATABASE = re.compile(rf"^{DATABASE_PREFIX}(\d+)_[0-9a-f]{{6}}_")


# ----------------------------------------------------------------------------- the switch


def selected_backend() -> str:
    """`sqlite` or `postgresql`, from UPSTANDER_TEST_BACKEND (default sqlite)."""
    backend = os.environ.get(BACKEND_VARIABLE, "sqlite").strip().lower() or "sqlite"
    if backend not in BACKENDS:
        raise ValueError(f"{BACKEND_VARIABLE} must be one of {BACKENDS}, not {backend!r}")
    return backend


def _run_id() -> str:
    given = os.environ.get(RUN_ID_VARIABLE, "").strip().lower()
    if given:
        cleaned = re.sub(r"[^a-z0-9_]", "_", given)[:20]
        return cleaned
    return f"{os.getpid()}_{secrets.token_hex(3)}"


# Unique to this pytest process: in every database name this run makes.
RUN_ID = _run_id()


# ----------------------------------------------------------------------------- PostgreSQL


def pg_admin_url() -> str:
    """The admin URL as plain libpq/asyncpg understands it (`postgresql://...`)."""
    url = make_url(os.environ.get(PG_URL_VARIABLE, DEFAULT_PG_URL))
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def pg_database_url(name: str) -> str:
    """The SQLAlchemy (asyncpg) URL of database `name` on the test server."""
    url: URL = make_url(pg_admin_url()).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def _checked(name: str) -> str:
    if not _SAFE_NAME.match(name):
        raise ValueError(f"not a safe database name: {name!r} (lower case, digits, _)")
    return name


_handed_out: set[str] = set()


def database_name(name: str) -> str:
    """`upstander_t_<run>_<name>`, unique within this run (a name asked for twice gets `_2`,
    `_3`...), and short enough for PostgreSQL (a long name is cut and given a hash)."""
    label = re.sub(r"[^a-z0-9_]", "_", name.lower()).strip("_") or "db"
    room = _MAX_NAME - len(DATABASE_PREFIX) - len(RUN_ID) - 1
    number = 1
    while True:
        text = label if number == 1 else f"{label}_{number}"
        if len(text) > room:
            digest = hashlib.sha256(text.encode()).hexdigest()[:6]
            text = f"{text[: room - 7]}_{digest}"
        candidate = f"{DATABASE_PREFIX}{RUN_ID}_{text}"
        if candidate not in _handed_out:
            _handed_out.add(candidate)
            return _checked(candidate)
        number += 1


async def _admin() -> Any:
    import asyncpg

    return await asyncpg.connect(pg_admin_url(), timeout=5)


class _Housekeeper:
    """This run's `CREATE DATABASE` and `DROP DATABASE`, on a thread of its own (its own event
    loop and admin connection). A drop is slow (the server syncs to disk), so it happens in the
    background while the tests go on. It records every database it creates; `finish` drops
    whatever is left."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self._one_at_a_time = asyncio.Lock()  # one admin connection: one statement at a time
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()
        self.created: list[str] = []  # changed on the housekeeper's loop only

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._one_at_a_time = asyncio.Lock()
                self._thread = threading.Thread(
                    target=self._loop.run_forever, name="upstander-test-databases", daemon=True
                )
                self._thread.start()
            return self._loop

    def _submit(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._running_loop())
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    async def _execute(self, statement: str) -> None:
        async with self._one_at_a_time:
            if self._connection is None or self._connection.is_closed():
                self._connection = await _admin()
            await self._connection.execute(statement)

    async def _create(self, database: str, template: str | None) -> str:
        copy = f' TEMPLATE "{_checked(template)}"' if template else ""
        await self._execute(f'CREATE DATABASE "{database}"{copy}')
        self.created.append(database)
        return database

    async def _drop(self, database: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        with contextlib.suppress(ValueError):
            self.created.remove(database)

    async def _drop_all(self, databases: list[str]) -> None:
        # Side by side, each on its own connection: most of a drop is the server's disk sync.
        async def drop(database: str) -> None:
            connection = await _admin()
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            finally:
                await connection.close()

        await asyncio.gather(*(drop(database) for database in databases), return_exceptions=True)
        if self._connection is not None and not self._connection.is_closed():
            await self._connection.close()

    def create(self, name: str, template: str | None) -> Future[str]:
        return self._submit(self._create(database_name(name), template))

    def drop(self, database: str) -> Future[None]:
        return self._submit(self._drop(database))

    def finish(self) -> list[str]:
        """Wait for what is under way, drop what is left, stop the thread; the names dropped."""
        if self._loop is None or self._thread is None:
            return []
        with self._lock:
            pending = list(self._pending)
        wait(pending, timeout=120)
        leftovers = list(reversed(self.created))
        with contextlib.suppress(Exception):
            self._submit(self._drop_all(leftovers)).result(timeout=120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop, self._thread, self._connection = None, None, None
        self.created.clear()
        return leftovers


_housekeeper = _Housekeeper()


async def fresh_pg_database(name: str, *, template: str | None = None) -> str:
    """Create the empty database `upstander_t_<run>_<name>` (or a copy of `template`, a
    database name), to be dropped when the session ends, and return its
    `postgresql+asyncpg://` URL."""
    database = await asyncio.wrap_future(_housekeeper.create(name, template))
    return pg_database_url(database)


def _name_of(name_or_url: str) -> str:
    if "://" in name_or_url:
        return _checked(make_url(name_or_url).database or "")
    return _checked(name_or_url)


async def drop_pg_database(name_or_url: str) -> None:
    """Drop a database (by URL, or by its full name), disconnecting whoever still uses it. The
    drop happens in the background: the caller does not wait for it."""
    _housekeeper.drop(_name_of(name_or_url))


async def pg_reachable(timeout: float = 3.0) -> bool:
    import asyncpg

    try:
        connection = await asyncpg.connect(pg_admin_url(), timeout=timeout)
    except Exception:
        return False
    await connection.close()
    return True


def finish_run() -> list[str]:
    """The session's last step: drop every database this run made and still has, and forget
    the templates and the pool. Returns the names dropped."""
    _pg_templates.clear()
    _pg_pool.clear()
    _pg_pooled.clear()
    return _housekeeper.finish()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _server_is_local() -> bool:
    host = make_url(pg_admin_url()).host
    return host in (None, "", "localhost", "127.0.0.1", "::1") or str(host).startswith("/")


async def sweep_abandoned_databases() -> list[str]:
    """Drop the databases of runs that were killed before they could clean up: those named
    `upstander_t_<pid>_...` whose process is gone and that nobody is connected to. Only on a
    server on this machine (a pid means nothing on another one)."""
    if not _server_is_local():
        return []
    connection = await _admin()
    swept: list[str] = []
    try:
        rows = await connection.fetch(
            "SELECT d.datname FROM pg_database d WHERE d.datname LIKE 'upstander\\_t\\_%' "
            "AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname)"
        )
        for row in rows:
            match = _RUN_DATABASE.match(row["datname"])
            if match is None or int(match.group(1)) == os.getpid():
                continue
            if _pid_alive(int(match.group(1))):
                continue
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
            swept.append(row["datname"])
    finally:
        await connection.close()
    return swept


# ----------------------------------------------------------------------------- fresh databases


def migrations_dir(app: str) -> Path:
    """An app's Alembic folder (`gateway` or a service name)."""
    module = importlib.import_module(f"upstander.{app}.app")
    return Path(module.MIGRATIONS_DIR)


async def _migrate(database_url: str, app: str) -> None:
    from upstander.kit.migrations import upgrade_to_head

    await upgrade_to_head(database_url, migrations_dir(app))


_pg_templates: dict[str, str] = {}
_sqlite_templates: dict[str, Path] = {}
_template_locks: dict[str, asyncio.Lock] = {}
_template_folder: Path | None = None


def _lock(key: str) -> asyncio.Lock:
    return _template_locks.setdefault(key, asyncio.Lock())


async def pg_template(app: str) -> str:
    """The name of a database migrated to `app`'s head, made once per run."""
    async with _lock(f"pg:{app}"):
        if app not in _pg_templates:
            url = await fresh_pg_database(f"template_{app}")
            await _migrate(url, app)
            _pg_templates[app] = _name_of(url)
    return _pg_templates[app]


# A test's PostgreSQL database is a copy of its app's template. Copies are slow to make and
# slower to drop (the server syncs to disk each time), so a copy a test has finished with is
# emptied (every row deleted, sequences restarted: tens of milliseconds) and handed to the next
# test that asks for one of the same app. Nothing else survives: migrations insert no rows.
_pg_pool: dict[str, list[str]] = {}  # app -> emptied copies ready for a test
_pg_pooled: dict[str, str] = {}  # copy -> its app


async def _connect(database: str) -> Any:
    import asyncpg

    url = make_url(pg_admin_url()).set(database=database)
    return await asyncpg.connect(url.render_as_string(hide_password=False), timeout=5)


async def _reset_script(connection: Any) -> str:
    """Delete every row (children before parents, per the foreign keys) and restart every
    sequence; `alembic_version` stays. With a cycle of foreign keys, TRUNCATE ... CASCADE."""
    tables = [
        row["tablename"]
        for row in await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version'"
        )
    ]
    references = await connection.fetch(
        "SELECT child.relname AS child, parent.relname AS parent FROM pg_constraint c "
        "JOIN pg_class child ON child.oid = c.conrelid "
        "JOIN pg_class parent ON parent.oid = c.confrelid "
        "WHERE c.contype = 'f' AND c.conrelid <> c.confrelid "
        "AND c.connamespace = current_schema()::regnamespace"
    )
    sequences = await connection.fetch(
        "SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = current_schema()"
    )
    children: dict[str, set[str]] = {table: set() for table in tables}
    for row in references:
        children.setdefault(row["parent"], set()).add(row["child"])
    try:
        # A parent comes after all its children: delete in this order.
        order = [table for table in TopologicalSorter(children).static_order() if table in tables]
        statements = [f'DELETE FROM "{table}"' for table in order]
    except CycleError:
        listed = ", ".join(f'"{table}"' for table in tables)
        statements = [f"TRUNCATE {listed} CASCADE"] if tables else []
    statements += [
        f"SELECT setval('\"{row['sequencename']}\"', {int(row['start_value'])}, false)"
        for row in sequences
    ]
    return ";\n".join(statements)


async def _take_pg_copy(app: str) -> str:
    """An empty copy of `app`'s template: one a test gave back, or a new one."""
    free = _pg_pool.setdefault(app, [])
    if free:
        return free.pop()
    template = await pg_template(app)
    database = _name_of(await fresh_pg_database(app, template=template))
    _pg_pooled[database] = app
    return database


async def _give_back_pg_copy(database: str) -> None:
    """Empty a copy a test is done with and put it back in its app's pool (or, if emptying it
    fails, drop it)."""
    app = _pg_pooled[database]
    try:
        connection = await _connect(database)
        try:
            # Whatever a test left connected (its own engine, say) would hold locks.
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            # Read from the catalog each time: a test may have added a table of its own.
            script = await _reset_script(connection)
            if script:
                await connection.execute(script)
        finally:
            await connection.close()
    except Exception:
        del _pg_pooled[database]
        await drop_pg_database(database)
        return
    _pg_pool.setdefault(app, []).append(database)


def template_folder() -> Path:
    """A folder for this run's SQLite templates (removed by `remove_template_folder`)."""
    global _template_folder
    if _template_folder is None:
        _template_folder = Path(tempfile.mkdtemp(prefix=f"upstander-t-{RUN_ID}-"))
    return _template_folder


def sweep_abandoned_template_folders() -> list[Path]:
    """Remove the SQLite template folders of runs that were killed before they could clean up
    (`upstander-t-<pid>_<hex>-*` in the temporary directory, whose process is gone)."""
    swept: list[Path] = []
    for folder in Path(tempfile.gettempdir()).glob("upstander-t-*"):
        match = re.match(r"^upstander-t-(\d+)_[0-9a-f]{6}-", folder.name)
        if match is None or int(match.group(1)) == os.getpid() or _pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        swept.append(folder)
    return swept


def remove_template_folder() -> None:
    global _template_folder
    if _template_folder is not None:
        shutil.rmtree(_template_folder, ignore_errors=True)
        _template_folder = None
        _sqlite_templates.clear()


async def sqlite_template(app: str) -> Path:
    """A SQLite file migrated to `app`'s head, made once per run."""
    async with _lock(f"sqlite:{app}"):
        if app not in _sqlite_templates:
            path = template_folder() / f"{app}.db"
            await _migrate(f"sqlite+aiosqlite:///{path}", app)
            _sqlite_templates[app] = path
    return _sqlite_templates[app]


async def fresh_database(
    app: str,
    directory: Path,
    *,
    name: str | None = None,
    migrated: bool = True,
    backend: str | None = None,
) -> str:
    """A fresh database for `app` on the selected backend (or `backend`), and its URL.

    With `migrated` (the default) it is at the app's head, so the app's own migration on start
    finds nothing to do: SQLite, a copy of the template as `directory/<name or app>.db`;
    PostgreSQL, an empty copy of the template (`upstander_t_<run>_<app>[_<n>]`). Without, it
    is empty: `directory/<name or app>.db`, or `upstander_t_<run>_<name or app>[_<n>]`.
    Give it back with `drop_database` once the app has stopped; what is left is dropped when
    the session ends."""
    label = name or app
    if (backend or selected_backend()) == "postgresql":
        if migrated:
            return pg_database_url(await _take_pg_copy(app))
        return await fresh_pg_database(label)
    path = Path(directory) / f"{label}.db"
    if migrated:
        source = await sqlite_template(app)
        shutil.copyfile(source, path)
        # The template's engine was disposed, so its WAL is checkpointed away; copy one anyway.
        if Path(f"{source}-wal").exists():
            shutil.copyfile(f"{source}-wal", f"{path}-wal")
    return f"sqlite+aiosqlite:///{path}"


async def drop_database(url: str) -> None:
    """Give back a database from `fresh_database` once its app has stopped: a copy of a
    template is emptied for the next test, another PostgreSQL database is dropped (a SQLite
    file goes with its temporary folder)."""
    if not url.startswith("postgresql"):
        return
    database = _name_of(url)
    if database in _pg_pooled:
        await _give_back_pg_copy(database)
    else:
        await drop_pg_database(database)


# ----------------------------------------------------------------------------- reused apps


class ReusedApp:
    """One FastAPI app object reused by many tests, each with its own lifespan and database.

    Building a service app and, above all, the first requests to it cost a few tenths of a CPU
    second (FastAPI fills each route's state lazily, per app object), several times what a
    typical test does. So a folder's `app` fixture builds the app once per module and, for
    each test, points its settings at the test's fresh database, gives it the test's clock and
    runs its lifespan (`running`): the engine, HTTP client, token verifier, event bus, vault
    and workers are new for every test, exactly as with a new app. After each test the app is
    put back as it was built: its settings (a test may change one), `app.state` (a test may
    add or replace something), dependency overrides and request metrics."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._settings = app.state.settings
        self._settings_values = copy.deepcopy(dict(self._settings.__dict__))
        self._state = dict(app.state._state)

    def _reset(self) -> None:
        app = self.app
        self._settings.__dict__.update(copy.deepcopy(self._settings_values))
        app.state._state.clear()
        app.state._state.update(self._state)
        app.dependency_overrides.clear()
        metrics = self._state.get("metrics")
        for name in ("requests", "latency"):
            with contextlib.suppress(Exception):
                getattr(metrics, name).clear()

    @contextlib.asynccontextmanager
    async def running(self, *, database_url: str, clock: Any) -> Any:
        """The app, started on `database_url` with `clock`, for one test."""
        from asgi_lifespan import LifespanManager

        self._reset()
        self._settings.database_url = database_url
        self.app.state.clock = clock
        try:
            async with LifespanManager(self.app):
                yield self.app
        finally:
            self._reset()


# ----------------------------------------------------------------------------- TLS


def self_signed_certificate(
    folder: Path,
    host: str = "127.0.0.1",
    *,
    cert_name: str = "cert.pem",
    key_name: str = "key.pem",
) -> tuple[Path, Path]:
    """A throw-away certificate for `host` (an IP address or a DNS name) and its key, written
    into `folder`: valid for a day, signed by its own key as a CA of itself, so that a client
    given it as its only trusted certificate accepts the server serving it."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / cert_name, folder / key_name
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


# ----------------------------------------------------------------------------- tokens

# Services check a token's time window against the app's (frozen) clock, which tests move
# freely: unless a test gives `issued_at`, a token is valid for decades either side of now.
TEST_TOKEN_SPAN = 20 * 365 * 24 * 3600


class TokenMinter:
    """Signs tokens as the gateway does (EdDSA, with a `kid`), and stands in for the gateway's
    JWKS endpoint (`transport()`), so the services verify them exactly as the gateway's."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = f"test-{uuid.uuid4().hex[:8]}"

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(OKPAlgorithm.to_jwk(self.key.public_key()))
        return {**public, "kid": self.kid, "alg": "EdDSA", "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def transport(self) -> httpx.MockTransport:
        """Answers `GET JWKS_URL` with the public key; anything else is a 404."""

        def handler(request: httpx.Request) -> httpx.Response:
            if request.method == "GET" and str(request.url) == JWKS_URL:
                return httpx.Response(200, json=self.jwks())
            return httpx.Response(404)

        return httpx.MockTransport(handler)

    def mint(
        self,
        *,
        org: uuid.UUID | str | None,
        roles: list[str],
        sub: uuid.UUID | str | None = None,
        typ: str = "staff",
        ttl: int = 300,
        scope: str = "",
        report: uuid.UUID | str | None = None,
        issued_at: datetime | None = None,
        **extra: Any,
    ) -> str:
        """A token as the gateway would sign it: `mint(org=uuid, roles=["admin"])`; a
        reporter's with `typ="reporter", report=report_id`.

        With `issued_at` (a test clock's now) it is issued then and expires `ttl` seconds later;
        without, it is valid for decades either side of now, and a negative `ttl` makes it
        expired whatever the clock says."""
        if issued_at is not None:
            now = int(issued_at.timestamp())
        else:
            now = int(time.time())
            if ttl > 0:
                now, ttl = now - TEST_TOKEN_SPAN, ttl + 2 * TEST_TOKEN_SPAN
            else:
                now = 0
        claims: dict[str, Any] = {
            "iss": "upstander",
            "aud": "upstander",
            "sub": str(sub or uuid.uuid4()),
            "org": str(org) if org else None,
            "roles": roles,
            "scope": scope,
            "typ": typ,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        if report is not None:
            claims["report"] = str(report)
        claims.update(extra)
        return jwt.encode(claims, self.key, algorithm="EdDSA", headers={"kid": self.kid})


def python_output(
    script: str, *flags: str, timeout: float = 120, env: dict[str, str] | None = None
) -> list[str]:
    """The lines a fresh interpreter (this one, with `flags`) prints running `script` in dev
    mode (`env` on top): what a module loads or leaves out is only seen in a process of its
    own."""
    done = subprocess.run(
        [sys.executable, *flags, "-c", script],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "UPSTANDER_MODE": "dev", **(env or {})},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()
