"""The reporter page's templates are loaded, with jinja2, at the first page the gateway renders:
a gateway that serves only the API never holds them (docs/performance.md)."""

from __future__ import annotations

from helpers import python_output

_SCRIPT = """
import sys
from upstander.gateway.app import create_app
from upstander.gateway.settings import Settings
from upstander.gateway.web import pages

create_app(Settings())
print("jinja2" in sys.modules)
template = pages.templates().get_template("message.html")
print("jinja2" in sys.modules, pages.templates() is pages.templates(), template.name)
"""


def test_jinja2_is_loaded_with_the_first_page_not_with_the_gateway() -> None:
    assert python_output(_SCRIPT)[-2:] == ["False", "True True message.html"]
