"""Shared fixtures for runstream's tests; helpers live in the `_support` package."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
