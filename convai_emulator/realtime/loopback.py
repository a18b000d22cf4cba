"""Make aiortc (aioice) offer loopback host candidates.

aioice leaves ``127.0.0.1`` out of its host candidates, so two aiortc peers on one machine with no
network (CI, sandboxes) never connect. The emulator and the daemon both call
:func:`enable_loopback_candidates` before creating peer connections. The patch is process-wide and
idempotent; :func:`disable_loopback_candidates` undoes it (tests).
"""

from __future__ import annotations

from collections.abc import Callable

import aioice.ice

_original: Callable[[bool, bool], list[str]] | None = None


def enable_loopback_candidates(only: bool = True) -> None:
    """Offer 127.0.0.1 as a host candidate; with ``only`` it is the sole IPv4 candidate.

    ``only=True`` keeps ICE fast and deterministic for same-machine peers (no checks against NIC
    addresses that may be firewalled); ``only=False`` adds loopback to the normal interface list
    so remote peers still work.
    """
    global _original
    original = _original or aioice.ice.get_host_addresses

    def get_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if only:
            return ["127.0.0.1"] if use_ipv4 else []
        addresses = original(use_ipv4, use_ipv6)
        if use_ipv4 and "127.0.0.1" not in addresses:
            addresses.insert(0, "127.0.0.1")
        return addresses

    _original = original
    aioice.ice.get_host_addresses = get_host_addresses


def disable_loopback_candidates() -> None:
    """Restore aioice's own interface enumeration."""
    global _original
    if _original is not None:
        aioice.ice.get_host_addresses = _original
        _original = None


def loopback_candidates_enabled() -> bool:
    return _original is not None
