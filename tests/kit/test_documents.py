"""An app's OpenAPI document (`upstander.kit.documents`): served as FastAPI would send it, built
by a child process when the app is served from its factory (so that the server never holds
what building it takes), built in-process when the child cannot; and FastAPI's OpenAPI models
build their validators on first use (`upstander.kit.deferred`) with the document unchanged."""

from __future__ import annotations

import json
import logging
import textwrap
import types
from typing import Any

import httpx
import pytest
from helpers import python_output

from upstander.kit import documents, server
from upstander.kit.documents import Built, ServedDocument, build_in_child, render
from upstander.training.app import create_app as create_training
from upstander.training.settings import Settings as TrainingSettings

TRAINING = "upstander.training.app:create_app"


async def _served(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path)


async def test_the_served_document_is_the_bytes_fastapi_would_send() -> None:
    app = create_training(TrainingSettings())

    response = await _served(app, "/training/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == render(app.openapi())
    assert json.loads(response.content)["info"]["title"] == "Upstander training"


async def test_a_child_builds_the_same_document_from_the_factory() -> None:
    packed = await build_in_child(TRAINING)

    assert packed.max_age == float("inf")
    assert len(packed.data) < len(packed.body()) / 5  # kept compressed
    assert packed.body() == render(create_training().openapi())


async def test_a_served_app_has_its_document_built_by_the_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = create_training(TrainingSettings())
    in_process = app.state.served_document.build_in_process

    async def refuse() -> Built:
        raise AssertionError("built in the server's process")

    monkeypatch.setattr(documents, "FACTORY", TRAINING)
    monkeypatch.setattr(app.state.served_document, "build_in_process", refuse)
    response = await _served(app, "/training/openapi.json")

    assert response.status_code == 200
    assert response.content == (await in_process()).body


async def test_a_failed_child_leaves_the_document_to_the_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_training(TrainingSettings())
    monkeypatch.setattr(documents, "FACTORY", "upstander.no_such_app:create_app")

    with caplog.at_level(logging.WARNING, logger="upstander.kit.documents"):
        response = await _served(app, "/training/openapi.json")

    assert response.status_code == 200
    assert response.content == render(app.openapi())
    assert "document built in-process: the child exited with status 1" in caplog.text


async def test_a_child_whose_answer_is_not_a_whole_document_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stand-in for `upstander.kit.documents` that answers a max age and cut-off bytes.
    (tmp_path / "upstander_cut_document.py").write_text(
        "import sys, zlib\n"
        "sys.stdout.buffer.write(b'inf\\n' + zlib.compress(b'{\"openapi\": 1}')[:-4])\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(
        documents.asyncio,
        "create_subprocess_exec",
        _replacing_module(documents.asyncio.create_subprocess_exec, "upstander_cut_document"),
    )

    with pytest.raises(documents.DocumentError, match="not a document"):
        await build_in_child(TRAINING)


def _replacing_module(spawn: Any, module: str) -> Any:
    async def spawn_instead(*args: Any, **kwargs: Any) -> Any:
        args = tuple(module if a == "upstander.kit.documents" else a for a in args)
        return await spawn(*args, **kwargs)

    return spawn_instead


async def test_a_document_is_kept_for_its_max_age_and_built_once_at_a_time() -> None:
    now = [0.0]
    builds: list[float] = []

    async def build() -> Built:
        builds.append(now[0])
        return Built(f"document {len(builds)}".encode(), max_age=60)

    served = ServedDocument(build, now=lambda: now[0])
    first = await served.body()
    now[0] = 59.0
    kept = await served.body()
    now[0] = 60.0
    rebuilt = await served.body()
    served.invalidate()
    again = await served.body()

    assert (first, kept, rebuilt, again) == (
        b"document 1",
        b"document 1",
        b"document 2",
        b"document 3",
    )
    assert builds == [0.0, 60.0, 60.0]


def test_serve_names_the_factory_the_child_builds_from(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[Any] = []
    stub = types.SimpleNamespace(run=lambda app, **options: ran.append(app))
    monkeypatch.setattr(server, "import_uvicorn", lambda: stub)
    monkeypatch.setattr(documents, "FACTORY", None)

    server.serve(TRAINING, settings=TrainingSettings(), host="127.0.0.1", port=1)

    assert ran == [TRAINING]
    assert documents.FACTORY == TRAINING


_DEFERRED = textwrap.dedent(
    """
    import json, sys
    if sys.argv[1:] == ["fastapi first"]:
        import fastapi.openapi.models  # before the kit: built on import, as FastAPI does
    import upstander.kit
    import fastapi.openapi.models as models
    from pydantic import BaseModel

    class Other(BaseModel):
        number: int

    before = type(models.OpenAPI.__pydantic_validator__).__name__
    from upstander.cases.app import create_app
    document = create_app().openapi()
    print(json.dumps({
        "openapi_before": before,
        "openapi_after": type(models.OpenAPI.__pydantic_validator__).__name__,
        "other": type(Other.__pydantic_validator__).__name__,
        "document": document,
    }))
    """
)


def test_fastapis_openapi_models_build_on_first_use_and_the_document_is_unchanged() -> None:
    deferred = json.loads(python_output(_DEFERRED, "-OO")[-1])
    eager = json.loads(
        python_output(_DEFERRED.replace("sys.argv[1:]", '["fastapi first"]'), "-OO")[-1]
    )

    assert deferred["openapi_before"] == "MockValSer"
    assert deferred["openapi_after"] == "SchemaValidator"
    assert deferred["other"] == "SchemaValidator"  # only FastAPI's module is deferred
    assert eager["openapi_before"] == "SchemaValidator"
    assert deferred["document"] == eager["document"]
