"""Identifiers shared by the runtime, the server and the buses."""

from __future__ import annotations

import secrets
import uuid

__all__ = ["new_id", "short_id"]


def new_id() -> str:
    """A fresh run id: a uuid4, 122 random bits."""
    return str(uuid.uuid4())


def short_id(prefix: str) -> str:
    """A short random id with a prefix, such as `msg_1f2e3d4c5b6a7988`."""
    return f"{prefix}_{secrets.token_hex(8)}"
