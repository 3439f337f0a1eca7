"""The chat page served at `GET /`: one self-contained HTML document.

The page is the package file `static/chat.html`. Everything is inline in it
(CSS, JavaScript, icons), so the page works offline and behind any proxy: no
CDN, no web fonts, no build step, and no second route to serve under a prefix.
It talks to the app with relative URLs (`graphs`, `runs`, `runs/{id}/cancel`)
and follows a run with the browser's `EventSource` on the `events_url` that
`POST /runs` returns.

Resuming: the browser reconnects by itself with `Last-Event-ID`; when an
`EventSource` gives up (a non-200 answer closes it), the page opens a new one
with `?after=<last seq seen>`. Events with a seq at or below the last one seen
are ignored, so nothing is rendered twice. All event text goes into the page
through `textContent` and text nodes, never as HTML.
"""

from __future__ import annotations

import functools
from importlib.resources import files

__all__ = ["chat_page"]


@functools.cache
def chat_page() -> str:
    """The page's HTML, read from the package once and kept."""
    return (files("runstream.server") / "static" / "chat.html").read_text(encoding="utf-8")
