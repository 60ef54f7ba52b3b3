"""Parsers of one setting's value each: a ``ValueError`` (or a line in ``problems``) says what is wrong.

The line names the variable, so :func:`bot.settings.load_settings` can report every problem at once.
"""

from __future__ import annotations

import ipaddress
import math
from urllib.parse import urlsplit

from bot.media.fetch_guard import HOSTNAME
from bot.settings.values import HttpListen


def http_url(name: str, value: str, problems: list[str], schemes: tuple[str, ...]) -> str:
    """``value`` without its trailing slash; a URL that is malformed or not of ``schemes`` is reported."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        problems.append(f"{name}: is not a valid URL: {value!r}")
        return value
    if parts.scheme not in schemes or not parts.netloc:
        problems.append(f"{name}: must be an {'/'.join(schemes)} URL, got {value!r}")
    return value.rstrip("/")


def whole_number(name: str, value: str, problems: list[str], *, minimum: int) -> int:
    """``value`` as a whole number of at least ``minimum``; anything else is reported."""
    try:
        number = int(value.strip())
    except ValueError:
        problems.append(f"{name}: must be a whole number, got {value!r}")
        return minimum
    if number < minimum:
        problems.append(f"{name}: must be at least {minimum}, got {number}")
    return number


def seconds(name: str, value: str | None, default: float, problems: list[str]) -> float:
    """``value`` as a number of seconds above 0 (``default`` when unset); anything else is reported."""
    if value is None:
        return default
    try:
        seconds = float(value)
    except ValueError:
        problems.append(f"{name}: must be a number of seconds, got {value!r}")
        return default
    if not math.isfinite(seconds) or seconds <= 0:
        problems.append(f"{name}: must be more than 0 seconds, got {value!r}")
    return seconds


def strength(name: str, value: str | None, default: float, problems: list[str]) -> float:
    """``value`` as a strength from 0 to 1 (``default`` when unset); anything else is reported."""
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        problems.append(f"{name}: must be a number from 0 to 1, got {value!r}")
        return default
    if not 0 <= number <= 1:  # NaN fails this too
        problems.append(f"{name}: must be from 0 to 1, got {value!r}")
        return default
    return number


def parse_listen(value: str) -> HttpListen:
    """``host:port``, ``[ipv6]:port`` or ``:port`` (every interface); ``ValueError`` says what is wrong."""
    if value.startswith("["):
        host, sep, port_text = value[1:].partition("]:")
        if not sep:
            raise ValueError(f"must look like host:port or [ipv6]:port, got {value!r}")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address (expected e.g. [::1]:8080)") from None
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            raise ValueError(f"must look like host:port (e.g. 127.0.0.1:8080), got {value!r}")
        if ":" in host:
            raise ValueError(f"put an IPv6 address in brackets, like [::1]:8080, got {value!r}")
        if host and not HOSTNAME.match(host):
            raise ValueError(f"{host!r} is not a host name or address")
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port_text!r}")
    return HttpListen(host or None, int(port_text))


_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def parse_webhook_url(value: str) -> str:
    """An ``https://`` URL, or ``http://`` on this machine (for tests and a local TLS proxy); ``ValueError`` if not."""
    parts = urlsplit(value.strip())
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and host:
        return value.strip()
    if parts.scheme == "http" and host in _LOCAL_HOSTS:
        return value.strip()
    if parts.scheme == "http":
        raise ValueError(
            f"must be https:// (the API refuses plain http), or http:// on 127.0.0.1/localhost; got {value!r}"
        )
    raise ValueError(f"must be an https:// URL that reaches POST /webhooks/replicate; got {value!r}")


def parse_shard_ids(value: str, count: int) -> tuple[int, ...]:
    """``0-3``, ``0,2,5`` or a mix, sorted; every id must exist among ``count`` shards (``ValueError`` if not)."""
    ids: set[int] = set()
    for item in (part.strip() for part in value.split(",")):
        first, dash, last = item.partition("-")
        if not first.strip().isdigit() or (dash and not last.strip().isdigit()):
            raise ValueError(f"{item!r} is not a shard id or a range like 0-3")
        low, high = int(first), int(last) if dash else int(first)
        if high < low:
            raise ValueError(f"the range {item!r} runs backwards")
        ids.update(range(low, high + 1))
    outside = sorted(i for i in ids if i >= count)
    if outside:
        raise ValueError(
            f"shard {outside[0]} does not exist with DISCORD_SHARD_COUNT={count} (ids are 0 to {count - 1})"
        )
    return tuple(sorted(ids))
