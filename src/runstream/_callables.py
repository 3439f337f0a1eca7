"""What the graph builder and the tool decorator need to know about a callable."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["is_async_callable"]


def is_async_callable(fn: Callable[..., Any]) -> bool:
    """True for an `async def` function, or an object whose `__call__` is one."""
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004 - callable objects
    return call is not None and inspect.iscoroutinefunction(call)
