"""The whole platform, in process, shared by the end-to-end tests of one session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from harness import Platform, running_platform


@pytest.fixture(scope="session")
async def platform(
    test_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Platform]:
    """All five apps on the selected backend (`test_backend`)."""
    async with running_platform(tmp_path_factory.mktemp("platform")) as running:
        yield running
