"""Our own code compiled as written when the interpreter runs optimised (`python -OO`).

The apps run with `-OO` (`scripts/launcher.py`, the Dockerfile): Python then compiles every
module without its docstrings and asserts. For the standard library and the installed packages
that is 5 MB less of every app's memory (SQLAlchemy's docstrings alone are megabytes; see
docs/performance.md), and nothing they do at run time needs them. Our own modules are another
matter: FastAPI turns an endpoint's docstring into its operation's OpenAPI description, pydantic
a model's docstring into its schema's, and our asserts are checks we mean.

So, under `-OO` only, `upstander.*` modules are loaded by `OwnCodeLoader`, which compiles them at
optimisation level 0 and caches them where an unoptimised interpreter does (`__pycache__/*.pyc`,
or `PYTHONPYCACHEPREFIX`): the same bytecode as `pytest` runs. The finder is installed when the
kit's package is first imported (`upstander/kit/__init__.py`), which each app's package does
first of all, so only the app package's own `__init__` and `__main__` are compiled before it.
"""

from __future__ import annotations

import importlib.util
import marshal
import sys
from collections.abc import Mapping, Sequence
from importlib.machinery import ModuleSpec, PathFinder, SourceFileLoader
from types import CodeType, ModuleType
from typing import Any

PACKAGE = "upstander."
# A timestamp-based .pyc: magic, flags (0), the source's mtime and size (PEP 552).
_HEADER_SIZE = 16


def _header(stats: Mapping[str, Any]) -> bytes:
    mtime = int(stats["mtime"]) & 0xFFFFFFFF
    size = int(stats["size"]) & 0xFFFFFFFF
    return (
        importlib.util.MAGIC_NUMBER
        + (0).to_bytes(4, "little")
        + mtime.to_bytes(4, "little")
        + size.to_bytes(4, "little")
    )


class OwnCodeLoader(SourceFileLoader):
    """A source module compiled at optimisation level 0, whatever the interpreter's flag."""

    def get_code(self, fullname: str) -> CodeType:
        source_path = self.get_filename(fullname)
        cache = importlib.util.cache_from_source(source_path, optimization="")
        header = _header(self.path_stats(source_path))
        try:
            data = self.get_data(cache)
        except OSError:
            data = b""
        if data[:_HEADER_SIZE] == header:
            try:
                # The bytecode cache, trusted as Python's own import system trusts it.
                code = marshal.loads(memoryview(data)[_HEADER_SIZE:])  # noqa: S302
            except (EOFError, ValueError, TypeError):  # a damaged cache: compile again
                pass
            else:
                if isinstance(code, CodeType):
                    return code
        source = self.get_data(source_path)
        code = compile(source, source_path, "exec", dont_inherit=True, optimize=0)
        if not sys.dont_write_bytecode:
            try:
                self.set_data(cache, header + marshal.dumps(code))
            except (OSError, NotImplementedError):  # a read-only tree: no cache, as Python does
                pass
        return code


class OwnCodeFinder:
    """Finds `upstander.*` modules as Python does and loads the source ones with
    `OwnCodeLoader`; every other module is left to the finders after it."""

    @staticmethod
    def find_spec(
        fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if not fullname.startswith(PACKAGE):
            return None
        spec = PathFinder.find_spec(fullname, path, target)
        if spec is None or type(spec.loader) is not SourceFileLoader or spec.origin is None:
            return None
        spec.loader = OwnCodeLoader(fullname, spec.origin)
        spec.cached = importlib.util.cache_from_source(spec.origin, optimization="")
        return spec

    @staticmethod
    def invalidate_caches() -> None:
        return None  # PathFinder, further down `sys.meta_path`, is told itself


def install() -> None:
    """Put the finder first, once, when the interpreter runs optimised; a no-op otherwise."""
    if sys.flags.optimize and OwnCodeFinder not in sys.meta_path:
        sys.meta_path.insert(0, OwnCodeFinder)  # type: ignore[arg-type]
