"""`upstander.kit.server.import_uvicorn`: an app process imports uvicorn without click (uvicorn's
command line, which no app process runs), `uvicorn.run` serves as before, and click stays
importable for anything else in the process."""

from __future__ import annotations

from helpers import python_output

_SCRIPT = """
import socket, sys, threading, time
from upstander.kit.server import import_uvicorn  # the kit first, as in an app process
import httpx

uvicorn = import_uvicorn()
print("click" in sys.modules)

async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"served"})

with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None)
server = uvicorn.Server(config)
thread = threading.Thread(target=server.run, daemon=True)
thread.start()
for _ in range(200):
    if server.started:
        break
    time.sleep(0.02)
print(httpx.get(f"http://127.0.0.1:{port}/").text)
server.should_exit = True
thread.join(10)
import click
print(hasattr(click, "style"))
"""


def test_uvicorn_is_imported_without_click_and_serves() -> None:
    assert python_output(_SCRIPT, "-OO", timeout=60) == ["False", "served", "True"]
