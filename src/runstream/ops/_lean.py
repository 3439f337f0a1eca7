"""The observable every runstream operator returns (see `runstream._observable`)."""

from __future__ import annotations

from .._observable import LeanObservable

__all__ = ["LeanObservable"]
