"""Reconnect benchmark: how long a network blip interrupts a live session.

* ``signal_resume_ms``: LiveKitTransport against the transport tests' fake LiveKit with resume on;
  the server drops the signalling socket, the clock stops at the transport's ``resumed`` (same
  participant, peer connections untouched).
* ``daemon_blip_resumed_ms``: the real daemon against the emulator, its signalling through a TCP
  relay that is cut; from the cut to the client's ``session_state resumed`` (the emulator resumes
  the signalling in place; without that it would be the in-room re-join, still no ``/connect``).

Medians of a few repetitions; run with ``python -m bench --only reconnect``.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path


async def _signal_resume_ms(repeats: int) -> list[float]:
    from bridge.backends.live.livekit import LiveKitTransport
    from tests.live_transport.lt_fake_livekit import FakeLiveKit

    server = FakeLiveKit(keep_mic_frames=0)
    server.resume = True
    await server.start()
    out: list[float] = []
    try:
        for _ in range(repeats):
            transport = LiveKitTransport(server.url, server.token())
            resumed = asyncio.Event()
            transport.on_state = lambda state, _reason, done=resumed: done.set() if state == "resumed" else None
            await transport.connect(timeout=10)
            start = time.perf_counter()
            server.sessions[-1].drop_socket()
            await asyncio.wait_for(resumed.wait(), 15)
            out.append((time.perf_counter() - start) * 1000)
            await transport.close()
    finally:
        await server.stop()
    return out


async def _daemon_blip_ms(repeats: int) -> list[float]:
    from bridge.client import BridgeClient
    from bridge.daemon.router import Daemon
    from convai_emulator.config import EmulatorConfig
    from convai_emulator.server import Emulator
    from tests.conftest import CHARACTER, daemon_config
    from tests.live_transport.lt_proxy import ConnectProxy

    out: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        async with Emulator(EmulatorConfig(host="127.0.0.1", port=0)) as emu:
            proxy = ConnectProxy(emu.live_url)
            await proxy.start(relay_signalling=True)
            daemon = Daemon(daemon_config(Path(tmp), emu, live_url=proxy.url))
            await daemon.start()
            client = await BridgeClient.connect(daemon.endpoint, daemon.token)
            try:
                npc = await client.open_session(CHARACTER, backend="live")
                assert proxy.relay is not None
                for _ in range(repeats):
                    start = time.perf_counter()
                    proxy.relay.cut()
                    while (await npc.wait_for("session_state", timeout=30))["state"] != "resumed":
                        pass
                    out.append((time.perf_counter() - start) * 1000)
                    await asyncio.sleep(0.5)
            finally:
                await client.close()
                await daemon.stop()
                await proxy.close()
    return out


def run(quick: bool = False) -> dict[str, float]:
    repeats = 2 if quick else 5
    signal = asyncio.run(_signal_resume_ms(repeats))
    rejoin = asyncio.run(_daemon_blip_ms(repeats))
    return {"signal_resume_ms": statistics.median(signal), "daemon_blip_resumed_ms": statistics.median(rejoin)}


if __name__ == "__main__":
    print(run())
