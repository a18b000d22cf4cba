"""Codec cost and bridge-added latency, measured on the real daemon, emulator and sockets.

Bridge latency is `received_us - ts` for non-audio events: `ts` is when the daemon received the
upstream data (emulator reply chunk), `received_us` when the engine client took the bytes off its
DEALER socket; both are the same machine's clock. Audio is excluded because it is paced on purpose.
"""

from __future__ import annotations

import asyncio
import statistics
import time

import numpy as np

from bridge.wire.codec import Codec

CHARACTERS = [f"c0ffee00-0000-4000-8000-00000000000{i}" for i in (1, 2, 3)]
TEXTS = ["Hello! My name is Ada.", "Could you grab the cube?", "What is my name?", "Tell me about the town."]


def codec_us_per_message(rounds: int = 3000) -> dict[str, float]:
    codec = Codec()
    pcm = (np.sin(np.arange(960) / 7) * 9000).astype("<i2").tobytes()
    samples = [
        (
            "audio_out",
            {
                "sid": "s-1",
                "turn": 3,
                "seq": 17,
                "offset": 14112,
                "sample_rate": 48000,
                "channels": 1,
                "samples": 960,
                "ts": 1763771400510000,
            },
            (pcm,),
        ),
        ("bot_text", {"sid": "s-1", "turn": 3, "text": "Sure, on my way.", "ts": 1763771400510000}, ()),
        ("actions", {"sid": "s-1", "turn": 3, "actions": [{"name": "Move To", "target": "cube"}]}, ()),
        ("visemes", {"sid": "s-1", "turn": 3, "offset": 4800, "weights": [0.0] * 14 + [0.5]}, ()),
    ]
    per_message = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            for msg_type, fields, frames in samples:
                codec.decode(codec.encode(msg_type, fields, frames))
        per_message.append((time.perf_counter() - start) / (rounds * len(samples)) * 1e6)
    return {"codec_us_per_message": statistics.median(per_message)}


async def _latency(endpoint: str, token: str, npcs: int, turns: int, backend: str) -> tuple[list[float], list[float]]:
    from bridge.client import BridgeClient

    samples: list[float] = []
    opens: list[float] = []
    client = await BridgeClient.connect(endpoint, token)

    async def one(i: int) -> None:
        await asyncio.sleep(0.5 * i)  # staggered, so connect times do not queue behind each other
        start = time.perf_counter()
        npc = await client.open_session(CHARACTERS[i % len(CHARACTERS)], backend=backend)
        opens.append((time.perf_counter() - start) * 1000)
        for t in range(turns):
            turn = await npc.text(TEXTS[t % len(TEXTS)])
            for msg in await npc.collect_turn(turn, timeout=60):
                if msg.type in ("bot_text", "emotion", "actions", "user_transcript") and "ts" in msg.header:
                    samples.append((msg.received_us - msg["ts"]) / 1000)
        await npc.close()

    try:
        await asyncio.gather(*(one(i) for i in range(npcs)))
    finally:
        await client.close()
    return samples, opens


def bridge_latency(npcs: int = 4, turns: int = 4, backend: str = "live") -> dict[str, float]:
    from bench.processes import stack

    with stack(("--workers", "0")) as st:
        samples, opens = asyncio.run(_latency(st.endpoint, st.token, npcs, turns, backend))
    qs = np.percentile(samples, [50, 99])
    return {
        "bridge_latency_p50_ms": float(qs[0]),
        "bridge_latency_p99_ms": float(qs[1]),
        "bridge_latency_samples": float(len(samples)),
        # session_open sent → session_opened received: /connect, WebRTC (ICE, DTLS), client-ready → bot-ready
        "live_connect_ms": float(statistics.median(opens)),
    }


def run(quick: bool = False) -> dict[str, float]:
    out = codec_us_per_message(500 if quick else 3000)
    out.update(bridge_latency(npcs=2 if quick else 4, turns=2 if quick else 4))
    return out
