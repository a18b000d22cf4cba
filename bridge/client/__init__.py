"""Python client of the local protocol."""

from bridge.client.client import BridgeClient, BridgeError, NpcSession

__all__ = ["BridgeClient", "BridgeError", "NpcSession"]
