"""The apps run under `python -OO` (`scripts/launcher.py`, the Dockerfile), and our own modules
keep their docstrings and asserts there (`upstander.kit.own_code`): the installed packages
lose theirs, every app's OpenAPI document is the same as unoptimised, and our bytecode is cached
where an unoptimised interpreter caches it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from helpers import python_output
from launcher import APPS, Platform

_PROBE = textwrap.dedent(
    """
    import importlib, json, sys
    import upstander.kit
    import upstander.kit.errors as errors
    import sqlalchemy.orm

    documents = {{}}
    for name in {apps!r}:
        app = importlib.import_module(f"upstander.{{name}}.app").create_app()
        documents[name] = app.openapi()

    print(json.dumps({{
        "optimize": sys.flags.optimize,
        "own_docstring": errors.__doc__,
        "own_loader": type(errors.__loader__).__name__,
        "own_cached": errors.__spec__.cached,
        "library_docstring": sqlalchemy.orm.Session.__doc__,
        "documents": documents,
    }}))
    """
)


def _start(flags: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONOPTIMIZE", None)
    return subprocess.Popen(
        [sys.executable, *flags, "-c", _PROBE.format(apps=list(APPS))],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _result(process: subprocess.Popen[str]) -> dict[str, object]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err[-3000:]
    return dict(json.loads(out.strip().splitlines()[-1]))


def test_under_oo_our_code_keeps_its_docstrings_and_the_documents_are_unchanged(
    tmp_path: Path,
) -> None:
    # Both at once, on one bytecode cache.
    plain, optimised = (
        _result(process) for process in [_start([], tmp_path), _start(["-OO"], tmp_path)]
    )

    assert plain["optimize"] == 0 and optimised["optimize"] == 2
    # The installed packages lose their docstrings under -OO; ours keep them.
    assert plain["library_docstring"]
    assert optimised["library_docstring"] is None
    assert optimised["own_docstring"] and optimised["own_docstring"] == plain["own_docstring"]
    assert optimised["own_loader"] == "OwnCodeLoader"
    assert plain["own_loader"] == "SourceFileLoader"  # unoptimised, Python's own loader
    # Cached as an unoptimised interpreter caches it: the same file, not an .opt-2.pyc.
    assert str(optimised["own_cached"]).endswith(".pyc")
    assert ".opt-" not in str(optimised["own_cached"])
    assert optimised["own_cached"] == plain["own_cached"]
    # Every app's OpenAPI document (endpoint and model docstrings included) is the same.
    assert optimised["documents"] == plain["documents"]


def test_our_asserts_run_under_oo(tmp_path: Path) -> None:
    """A module of ours compiled under -OO still raises on a failed assert."""
    package = tmp_path / "src" / "upstander" / "ownprobe"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('"""Kept."""\n\ndef check():\n    assert False, "ran"\n')
    script = textwrap.dedent(
        f"""
        import sys
        import upstander.kit
        import upstander
        upstander.__path__.append({str(tmp_path / "src" / "upstander")!r})
        import upstander.ownprobe as probe
        assert probe.__doc__ == "Kept.", probe.__doc__
        try:
            probe.check()
        except AssertionError as exc:
            print("raised", exc)
        else:
            print("skipped")
        """
    )
    cache = {"PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    assert python_output(script, "-OO", timeout=60, env=cache) == ["raised ran"]


def test_the_launcher_runs_the_apps_optimised(tmp_path: Path) -> None:
    platform = Platform(var_dir=tmp_path)
    for name in APPS:
        assert platform.command(name)[1:] == ["-OO", "-m", f"upstander.{name}"]
