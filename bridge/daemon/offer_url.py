"""Which hosts a client may send the daemon to with `session_open.url` (live + sdp offer URL).

The daemon POSTs the offer with its own network position (and to the configured Convai hosts, with
its credentials), so a client-chosen URL could make it reach hosts the client cannot. Allowed:
loopback, the hosts of the configured Convai URLs, and `allowed_url_hosts`; `allow_any_url` lifts the
restriction for deployments that need it.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from bridge.config import Config
from bridge.wire.errors import ProtocolError


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(config: Config) -> set[str]:
    hosts = {h.strip().lower() for h in config.allowed_url_hosts.split(",") if h.strip()}
    for url in (config.live_url, config.rest_url):
        host = urlsplit(url).hostname
        if host:
            hosts.add(host.lower())
    return hosts


def check_offer_url(url: str | None, config: Config) -> None:
    """Raise `forbidden_url` unless the daemon may POST to `url`."""
    if url is None or config.allow_any_url:
        return
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except ValueError:
        host, parts = "", None
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise ProtocolError("forbidden_url", "session_open.url must be an http(s) URL with a host")
    if _is_loopback(host) or host in allowed_hosts(config):
        return
    raise ProtocolError(
        "forbidden_url", f"session_open.url host {host!r} is not loopback or in the daemon's allowed_url_hosts"
    )
