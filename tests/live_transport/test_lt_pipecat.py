"""The daemon against a stock pipecat 1.14 bot: SmallWebRTC + pipecat's own RTVI processor, as a subprocess.

The bot (`pipecat_bot.py`) runs in `.venv-pipecat` (`make pipecat-venv`; `make test` builds it), so
pipecat's pins never meet the daemon's. Only its LLM and TTS are stand-ins (echo text, a tone).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from bridge.client import BridgeClient, BridgeError
from tests.conftest import CHARACTER
from tests.live_transport.lt_daemon import daemon_client

ROOT = Path(__file__).resolve().parents[2]
PIPECAT_PYTHON = ROOT / ".venv-pipecat" / "bin" / "python"
AUDIO = {"sample_rate": 24000, "channels": 1, "frame_ms": 20}

pytestmark = pytest.mark.skipif(
    not PIPECAT_PYTHON.exists() and not os.environ.get("CI"),
    reason="no .venv-pipecat: run `make pipecat-venv` (make test does)",
)


@pytest.fixture
async def pipecat_url() -> AsyncIterator[str]:
    proc = await asyncio.create_subprocess_exec(
        str(PIPECAT_PYTHON), str(Path(__file__).with_name("pipecat_bot.py")),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 120)
        assert line.startswith(b"READY "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}/api/offer"
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[BridgeClient]:
    async with daemon_client(tmp_path) as c:
        yield c


async def test_full_text_turns_and_clear_refusals(client: BridgeClient, pipecat_url: str) -> None:
    npc = await client.open_session(CHARACTER, backend="live", transport="sdp", url=pipecat_url, audio=AUDIO,
                                    lipsync={"provider": "visemes"}, open_timeout=60.0)
    caps = set(npc.opened["capabilities"])
    assert {"audio_in", "audio_out", "text_stream"} <= caps, caps
    assert not caps & {"triggers", "context", "tts_toggle", "stt_toggle"}, caps
    for text in ("Hello there my friend", "How are you today"):
        turn = await npc.text(text)
        events = await npc.collect_turn(turn, timeout=40)
        seq = [m.type for m in events]
        assert "error" not in seq, [m.header for m in events if m.type == "error"]
        assert seq.index("bot_text") < seq.index("audio_out") < seq.index("turn_completed")
        assert seq.index("bot_started_speaking") < seq.index("audio_out") < seq.index("bot_stopped_speaking")
        assert seq.count("turn_completed") == 1 and events[-1]["interrupted"] is False
        assert next(m for m in events if m.type == "bot_reply")["text"] == f"You said: {text}."
        assert all(m["turn"] == turn for m in events if m.type in ("bot_text", "audio_out", "bot_reply", "visemes"))
        pcm = np.frombuffer(b"".join(m.frames[0] for m in events if m.type == "audio_out"), dtype="<i2")
        assert len(pcm) / 24000 > 0.5 and np.sqrt(np.mean(pcm.astype(float) ** 2)) > 500
        assert any(m.type == "visemes" for m in events)  # the daemon's own lip sync from the audio
    for request, fields in (("trigger", {"name": "greeting"}), ("context_update", {"text": "x"}),
                            ("tts_toggle", {"enabled": True})):
        started = time.monotonic()
        with pytest.raises(BridgeError) as info:
            await npc.request(request, **fields)
        assert info.value.code == "unsupported", request
        assert time.monotonic() - started < 1.0, "refused at once, not after an ack timeout"
