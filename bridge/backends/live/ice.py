"""ICE configuration for the daemon's aiortc peer connections.

Two aiortc/aioice defaults are wrong for us:

* ``RTCConfiguration()`` without ``iceServers`` makes aiortc query Google's public STUN server.
  :func:`rtc_configuration` always passes an explicit list: ``[]`` unless the signalling server
  handed out servers (LiveKit's ``JoinResponse.ice_servers``).
* aioice never offers ``127.0.0.1`` as a host candidate, so a peer that only listens on loopback
  (the emulator, offline tests) is unreachable. :func:`enable_loopback_candidates` (process-wide) and
  :func:`loopback_candidates` (only for the code running inside the ``with`` block, via a
  context variable) make aioice offer exactly ``127.0.0.1`` instead. Both work by wrapping
  ``aioice.ice.get_host_addresses`` once; the wrapper falls through to aioice's own function unless
  loopback mode is on, so connections to real servers are unaffected. Use them only when the peer
  is itself on a loopback address (:func:`is_loopback_url`).
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import logging
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import urlsplit

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.rtcicetransport import parse_stun_turn_uri

log = logging.getLogger(__name__)

LOOPBACK_HOST = "127.0.0.1"

_loopback_scope: contextvars.ContextVar[bool] = contextvars.ContextVar("bridge_ice_loopback", default=False)
_loopback_everywhere = False
_original_get_host_addresses: Callable[[bool, bool], list[str]] | None = None


def _get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    if _loopback_everywhere or _loopback_scope.get():
        return [LOOPBACK_HOST] if use_ipv4 else []
    assert _original_get_host_addresses is not None
    return _original_get_host_addresses(use_ipv4, use_ipv6)


def _install_hook() -> None:
    global _original_get_host_addresses
    current = aioice.ice.get_host_addresses
    if current is _get_host_addresses:
        return
    if not callable(current):  # pragma: no cover - aioice changed shape
        raise RuntimeError("aioice.ice.get_host_addresses is not a function; loopback ICE unsupported")
    _original_get_host_addresses = current
    aioice.ice.get_host_addresses = _get_host_addresses


def enable_loopback_candidates(enabled: bool = True) -> None:
    """Offer only 127.0.0.1 host candidates in every connection this process makes from now on.

    For an offline daemon whose live URL is a loopback address. Reversible with ``False``.
    """
    global _loopback_everywhere
    _install_hook()
    _loopback_everywhere = enabled
    log.info("ICE loopback-only host candidates %s", "enabled" if enabled else "disabled")


@contextlib.contextmanager
def loopback_candidates(enabled: bool = True) -> Iterator[None]:
    """Offer only 127.0.0.1 for candidate gathering done inside this block (and tasks it starts)."""
    _install_hook()
    token = _loopback_scope.set(enabled)
    try:
        yield
    finally:
        _loopback_scope.reset(token)


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is ``localhost`` or a loopback IP address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def select_ice_servers(servers: Iterable[RTCIceServer], *, prefer_tcp_turn: bool = False) -> list[RTCIceServer]:
    """Pick the one STUN and the one TURN URL aiortc will really use, in a deliberate order.

    aiortc takes only the first STUN URL and the first usable TURN URL. LiveKit Cloud lists several;
    plain UDP TURN is preferred, ``turns:`` over TCP (port 443, restrictive networks) when asked.
    Malformed URLs are dropped.
    """
    stun: RTCIceServer | None = None
    turns: list[tuple[int, RTCIceServer]] = []
    for server in servers:
        for url in [server.urls] if isinstance(server.urls, str) else list(server.urls):
            try:
                parsed = parse_stun_turn_uri(url)
            except ValueError:
                log.warning("ignoring malformed ICE server URL")
                continue
            one = RTCIceServer(urls=url, username=server.username, credential=server.credential)
            if parsed["scheme"] in ("stun", "stuns"):
                stun = stun or one
                continue
            if parsed["scheme"] == "turn" and parsed["transport"] == "udp":
                rank = 2 if prefer_tcp_turn else 0
            elif parsed["scheme"] == "turns" and parsed["transport"] == "tcp":
                rank = 0 if prefer_tcp_turn else 1
            elif parsed["scheme"] == "turn" and parsed["transport"] == "tcp":
                rank = 1 if prefer_tcp_turn else 2
            else:
                continue  # aiortc cannot use it
            turns.append((rank, one))
    chosen = [stun] if stun else []
    if turns:
        chosen.append(min(turns, key=lambda item: item[0])[1])
    return chosen


def rtc_configuration(ice_servers: Iterable[RTCIceServer] = (), *, relay_only: bool = False) -> RTCConfiguration:
    """An ``RTCConfiguration`` that never falls back to aiortc's default public STUN server."""
    return RTCConfiguration(
        iceServers=list(ice_servers),
        iceTransportPolicy=RTCIceTransportPolicy.RELAY if relay_only else RTCIceTransportPolicy.ALL,
    )
