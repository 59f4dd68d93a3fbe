"""The OpenAPI document an app serves, built in a child process when the app runs as a server.

Building the document is the most memory an app ever spends at once: FastAPI builds every
route's full state (its fields and their pydantic adapters) and pydantic its JSON schemas, and
the process keeps 6–11 MB of it for the rest of its life (docs/performance.md) for a document
that does not change while it runs. So an app served from its factory path
(`upstander.kit.server.serve("upstander.cases.app:create_app", ...)`, how every app runs) has
its document built by a child, `python -m upstander.kit.documents <factory>`, with the same
environment and so the same settings, and keeps only the document's bytes, compressed
(`Packed`: 31 KB for cases' 260 KB). An app built in-process (tests, tools) builds it itself,
as FastAPI does. Either way the bytes served are the ones FastAPI's own route would have sent
(`render`).

A document may expire (`Built.max_age`: the gateway's merged document, which takes in the
services' documents, is rebuilt after a minute); an app's own never does. A child that fails
or takes too long is logged (its exit status, never its output) and the document is built
in-process instead: the reader gets the document either way."""

from __future__ import annotations

import asyncio
import importlib
import logging
import math
import sys
import time
import zlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse

log = logging.getLogger("upstander.kit.documents")

# The `module:factory` path the process serves its app from (set by `kit.server.serve`);
# None when the app was built in-process.
FACTORY: str | None = None
CHILD_TIMEOUT_SECONDS = 60.0
ZLIB_LEVEL = 6


@dataclass(frozen=True)
class Built:
    body: bytes
    max_age: float = math.inf


@dataclass(frozen=True)
class Packed:
    """A built document as it is kept: compressed (zlib), a tenth of its size."""

    data: bytes
    max_age: float

    @classmethod
    def of(cls, built: Built) -> Packed:
        return cls(zlib.compress(built.body, ZLIB_LEVEL), built.max_age)

    def body(self) -> bytes:
        return zlib.decompress(self.data)


def render(document: Any) -> bytes:
    """`document` as FastAPI's document route sends it."""
    return bytes(JSONResponse(document).body)


class DocumentError(RuntimeError):
    pass


class ServedDocument:
    """A document route's body: built on first request (in a child when the app is served
    from its factory), kept compressed for its `max_age`, built once at a time. Each request
    for it decompresses it (under a millisecond for the largest service's 260 KB)."""

    def __init__(
        self,
        build_in_process: Callable[[], Coroutine[Any, Any, Built]],
        *,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.build_in_process = build_in_process
        self._now = now
        self._packed: Packed | None = None
        self._expires = 0.0
        self._lock: asyncio.Lock | None = None

    async def body(self) -> bytes:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._packed is None or self._now() >= self._expires:
                self._packed = None  # the expired one need not outlive the next one's build
                packed = await self._build()
                self._packed, self._expires = packed, self._now() + packed.max_age
            return self._packed.body()

    def invalidate(self) -> None:
        self._packed = None

    async def _build(self) -> Packed:
        if FACTORY is not None:
            try:
                return await build_in_child(FACTORY)
            except DocumentError as exc:
                log.warning("document built in-process: %s", exc)
        return Packed.of(await self.build_in_process())


def serve_openapi(app: Any) -> ServedDocument:
    """`app`'s own OpenAPI document (`app.openapi()`, as the app's code shaped it), never
    expiring: `app.state.served_document`, which the child builds too."""

    async def build() -> Built:
        return Built(render(app.openapi()))

    served = ServedDocument(build)
    app.state.served_document = served
    return served


async def build_in_child(factory: str, *, seconds: float = CHILD_TIMEOUT_SECONDS) -> Packed:
    flags = ["-OO"] if sys.flags.optimize >= 2 else ["-O"] if sys.flags.optimize else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *flags,
        "-m",
        "upstander.kit.documents",
        factory,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,  # the document; the child logs as the app does, to stderr
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(seconds):
            # The first line (its max age), then the document, compressed (`Packed`).
            head = await process.stdout.readline()
            data = await process.stdout.read()
            await process.wait()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DocumentError(f"the child took more than {seconds:.0f} s") from None
    if process.returncode != 0:
        raise DocumentError(f"the child exited with status {process.returncode}")
    try:
        max_age = float(head)
        zlib.decompress(data)  # whole, or it is not kept (each request would fail on it)
    except (ValueError, zlib.error):
        raise DocumentError("the child's answer is not a document") from None
    return Packed(data, max_age)


def load_factory(path: str) -> Callable[[], Any]:
    module, _, name = path.partition(":")
    factory = getattr(importlib.import_module(module), name or "create_app")
    if not callable(factory):
        raise TypeError(f"{path} is not an app factory")
    return factory  # type: ignore[no-any-return]


def main(argv: list[str]) -> int:
    """The child: build the document of the app `argv[0]` makes, and write its max age (a
    line) and then its bytes, compressed, to standard output."""
    if len(argv) != 1:
        print("usage: python -m upstander.kit.documents <module:factory>", file=sys.stderr)
        return 2
    from upstander.kit.observability import configure_child_logging

    module = argv[0].split(":")[0].split(".")
    configure_child_logging(module[1] if len(module) > 2 else module[0])
    app = load_factory(argv[0])()
    served: ServedDocument = app.state.served_document
    packed = Packed.of(asyncio.run(served.build_in_process()))
    sys.stdout.buffer.write(f"{packed.max_age}\n".encode() + packed.data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
