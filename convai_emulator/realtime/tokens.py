"""LiveKit access tokens for the emulator's rooms (HS256 JWTs, as LiveKit Cloud issues them)."""

from __future__ import annotations

import datetime
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from livekit.api import AccessToken, TokenVerifier, VideoGrants


class TokenError(Exception):
    """The token is missing, malformed, expired, or not signed with this emulator's secret."""


@dataclass(frozen=True)
class Grant:
    identity: str
    name: str
    room: str
    metadata: str
    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool

    def metadata_json(self) -> Mapping[str, Any]:
        try:
            parsed = json.loads(self.metadata) if self.metadata else {}
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


class TokenAuthority:
    """Mints participant tokens for ``/connect`` and verifies them on ``/rtc``."""

    def __init__(self, api_key: str, api_secret: str, ttl: datetime.timedelta | None = None) -> None:
        self.api_key = api_key
        self._secret = api_secret
        self.ttl = ttl or datetime.timedelta(hours=6)
        self._verifier = TokenVerifier(api_key, api_secret)

    def mint(self, identity: str, room: str, *, name: str = "", metadata: Mapping[str, Any] | None = None,
             ttl: datetime.timedelta | None = None) -> str:
        token = (
            AccessToken(self.api_key, self._secret)
            .with_identity(identity)
            .with_ttl(ttl or self.ttl)
            .with_grants(VideoGrants(room_join=True, room=room, can_publish=True, can_subscribe=True,
                                     can_publish_data=True))
        )
        if name:
            token = token.with_name(name)
        if metadata:
            token = token.with_metadata(json.dumps(metadata, separators=(",", ":")))
        return token.to_jwt()

    def verify(self, token: str) -> Grant:
        if not token:
            raise TokenError("no access token")
        try:
            claims = self._verifier.verify(token)
        except (jwt.PyJWTError, ValueError) as exc:
            raise TokenError(f"invalid token: {exc}") from exc
        video = claims.video
        if video is None or not video.room or not video.room_join:
            raise TokenError("token does not grant joining a room")
        if not claims.identity:
            raise TokenError("token has no identity")
        return Grant(
            identity=claims.identity,
            name=claims.name or claims.identity,
            room=video.room,
            metadata=claims.metadata or "",
            can_publish=video.can_publish,
            can_subscribe=video.can_subscribe,
            can_publish_data=video.can_publish_data,
        )

    def refresh(self, grant: Grant) -> str:
        return self.mint(grant.identity, grant.room, name=grant.name,
                         metadata=grant.metadata_json() or None)
