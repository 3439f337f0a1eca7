"""`open_bus(url)`: a bus from a URL."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from ._memory import MemoryBus
from ._protocol import WorkBus

__all__ = ["open_bus"]

_SCHEMES = "memory://, redis://, rediss://, nats://, tls://"


def open_bus(url: str) -> WorkBus:
    """The bus a URL names; nothing is connected until it is used.

    - `memory://` (options as query: `memory://?max_events=1000&retention=60`):
      a new `MemoryBus`.
    - `redis://host:port/db` or `rediss://...` (`?prefix=` and `?retention=`
      are taken out, the rest goes to redis-py): a `RedisBus`.
    - `nats://host:port` (several servers separated by commas; `?stream=`,
      `?prefix=`, `?retention=`): a `NatsBus`.

    Raises:
        ValueError: not a URL of those schemes, or a bad option; the message
            says what was expected.
        ImportError: the bus's extra (`redis`, `nats`) is not installed.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"bus URL must look like scheme://...; got {url!r} ({_SCHEMES})")
    scheme = url.partition("://")[0].lower()
    try:
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, strict_parsing=bool(parts.query)))
    except ValueError as exc:
        raise ValueError(f"bad bus URL {url!r}: {exc}") from None
    if scheme == "memory":
        if parts.netloc or parts.path not in ("", "/"):
            raise ValueError(f"a memory:// URL takes no host or path; got {url!r}")
        return MemoryBus(
            max_events=int(_number(options, "max_events", 1_000_000, url)),
            retention=_number(options, "retention", 3600.0, url),
            max_runs=int(_number(options, "max_runs", 10_000, url)),
        )
    if scheme in ("redis", "rediss", "unix"):
        from ._redis import RedisBus

        if not parts.hostname and scheme != "unix":
            raise ValueError(f"a redis:// URL needs a host: redis://host:port/db; got {url!r}")
        prefix = options.pop("prefix", "runstream")
        retention = _number(options, "retention", 3600.0, url)
        query = "&".join(f"{k}={v}" for k, v in options.items())
        base = parts._replace(query=query).geturl()
        return RedisBus(base, prefix=prefix, retention=retention)
    if scheme in ("nats", "tls"):
        from ._nats import NatsBus

        if not parts.hostname:
            raise ValueError(f"a nats:// URL needs a host: nats://host:port; got {url!r}")
        base = parts._replace(query="").geturl()
        return NatsBus(
            base,
            stream=options.get("stream", "RUNSTREAM"),
            prefix=options.get("prefix", "runstream"),
            retention=_number(options, "retention", 3600.0, url),
        )
    raise ValueError(f"unknown bus URL scheme {scheme!r} in {url!r}; expected one of {_SCHEMES}")


def _number(options: dict[str, str], name: str, default: float, url: str) -> float:
    raw = options.pop(name, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"bus URL {url!r}: {name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ValueError(f"bus URL {url!r}: {name} must be positive, got {raw!r}")
    return value
