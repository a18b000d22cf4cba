"""Facts read straight from SDP text that aiortc does not expose reliably."""

from __future__ import annotations


def media_msids(sdp: str) -> dict[str, tuple[str, str]]:
    """``mid`` → (msid stream id, msid track id) for every m-section that has an ``a=msid``.

    aiortc names a remote track after its msid only when ``a=msid-semantic`` lists the stream, so
    LiveKit's ``PA_<participant>|TR_<track>`` stream ids are read here instead.
    """
    result: dict[str, tuple[str, str]] = {}
    mid: str | None = None
    msid: tuple[str, str] | None = None

    def flush() -> None:
        if mid is not None and msid is not None:
            result[mid] = msid

    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            flush()
            mid, msid = None, None
        elif line.startswith("a=mid:"):
            mid = line[len("a=mid:") :].strip()
        elif line.startswith("a=msid:") and msid is None:
            parts = line[len("a=msid:") :].split()
            if parts:
                msid = (parts[0], parts[1] if len(parts) > 1 else "")
        elif line.startswith("a=ssrc:") and " msid:" in line and msid is None:
            parts = line.split(" msid:", 1)[1].split()
            if parts:
                msid = (parts[0], parts[1] if len(parts) > 1 else "")
    flush()
    return result
