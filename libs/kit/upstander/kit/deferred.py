"""FastAPI's OpenAPI models, with their pydantic validators built when first used.

FastAPI defines some forty pydantic models for the OpenAPI document (`fastapi.openapi.models`)
and pydantic builds each one's validator and serializer as the class is made, on import: about
1.3 MB of every app (docs/performance.md) for models only the document uses, which a served
app builds in a child process (`upstander.kit.documents`). Pydantic can build them on first use
instead (`defer_build`); FastAPI's models do not ask for it, so while that one module is
imported, pydantic's default says so. The models then behave as before (the document is the
same, byte for byte: tests/kit/test_documents.py); only when their validators are built
changes. Models made by any other module keep pydantic's defaults."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any, cast

MODULE = "fastapi.openapi.models"


class _Deferring(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        module: ModuleType | None = self.loader.create_module(spec)
        return module

    def exec_module(self, module: ModuleType) -> None:
        defaults = _pydantic_defaults()
        if defaults is None:
            self.loader.exec_module(module)
            return
        before = defaults.get("defer_build", False)
        defaults["defer_build"] = True
        try:
            self.loader.exec_module(module)
        finally:
            defaults["defer_build"] = before


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != MODULE:
            return None
        sys.meta_path.remove(self)  # once: the module is imported once
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None or spec.loader is None:
            return spec
        spec.loader = _Deferring(spec.loader)
        return spec


def _pydantic_defaults() -> dict[str, Any] | None:
    """Pydantic's configuration defaults, where pydantic keeps them (None if it no longer
    does: the models are then built on import, as without this module)."""
    try:
        from pydantic._internal._config import config_defaults
    except ImportError:
        return None
    return cast(dict[str, Any], config_defaults) if isinstance(config_defaults, dict) else None


def install() -> None:
    """Defer the validators of FastAPI's OpenAPI models, if FastAPI is not imported yet."""
    if MODULE in sys.modules or any(isinstance(f, _Finder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _Finder())
