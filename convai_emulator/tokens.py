"""LiveKit-style access tokens, so official LiveKit clients accept what ``/connect`` returns.

Claims follow ``livekit-api``'s ``AccessToken.to_jwt``: ``iss`` = API key name, ``sub`` = identity,
``nbf``/``exp``, ``name``, and a camelCase ``video`` grant; HS256 with the API secret.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import jwt

LEEWAY_S = 60


@dataclass(frozen=True)
class LiveKitCredentials:
    api_key: str
    api_secret: str = field(repr=False)

    @classmethod
    def generate(cls, api_key: str) -> LiveKitCredentials:
        return cls(api_key, secrets.token_urlsafe(32))


def mint_token(credentials: LiveKitCredentials, identity: str, room: str, *, name: str | None = None,
               metadata: str | None = None, ttl_s: int = 6 * 3600, can_publish: bool = True,
               can_subscribe: bool = True, can_publish_data: bool = True, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "video": {"roomJoin": True, "room": room, "canPublish": can_publish, "canSubscribe": can_subscribe,
                  "canPublishData": can_publish_data},
        "sub": identity,
        "iss": credentials.api_key,
        "nbf": issued,
        "exp": issued + ttl_s,
    }
    if name:
        claims["name"] = name
    if metadata:
        claims["metadata"] = metadata
    return jwt.encode(claims, credentials.api_secret, algorithm="HS256")


def verify_token(credentials: LiveKitCredentials, token: str) -> dict[str, Any]:
    """Decoded claims; raises ``jwt.InvalidTokenError`` for a bad signature, issuer or expiry."""
    return jwt.decode(token, credentials.api_secret, algorithms=["HS256"], issuer=credentials.api_key,
                      leeway=LEEWAY_S, options={"require": ["exp", "sub", "iss"]})
