"""The bot's ears: an utterance's microphone audio, with pre-roll, fed to speech recognition off the loop.

The VAD decides when an utterance starts and ends; this collects its audio (plus the pre-roll that
preceded the onset, so the first syllable is not lost), resamples it to 16 kHz and feeds a
:class:`~convai_emulator.stt.RecognitionStream` in a worker thread. Jobs of one utterance are chained,
so the stream and the streaming resampler are only ever used by one thread at a time and the
event loop never decodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import soxr

from convai_emulator.stt import SAMPLE_RATE, RecognitionStream, SpeechRecognizer

# Shared by every bot in the process: recognition is bursty and short (about 0.1 s per utterance).
_EXECUTOR = ThreadPoolExecutor(max_workers=2, thread_name_prefix="emulator-stt")
MAX_UTTERANCE_S = 30.0  # audio kept per utterance; longer speech is recognised up to here


class Listener:
    def __init__(self, recognizer: SpeechRecognizer, pre_roll_s: float) -> None:
        self._recognizer = recognizer
        self._pre_roll_s = pre_roll_s
        self._preroll: deque[tuple[np.ndarray, float]] = deque()
        self._preroll_held = 0.0
        self._pending: list[np.ndarray] = []
        self._heard_s = 0.0
        self._rate = 48_000
        self._stream: RecognitionStream | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._chain: asyncio.Future[str] | None = None

    @property
    def listening(self) -> bool:
        return self._stream is not None

    def frame(self, mono: np.ndarray, rate: int, seconds: float) -> None:
        """Every mic frame (mono int16): kept as pre-roll, or as the utterance's audio once started."""
        if rate != self._rate and not self.listening:
            self._preroll.clear()
            self._preroll_held = 0.0
            self._rate = rate
        if self.listening:
            if self._heard_s < MAX_UTTERANCE_S:
                self._pending.append(mono.copy())
                self._heard_s += seconds
            return
        self._preroll.append((mono.copy(), seconds))
        self._preroll_held += seconds
        while self._preroll and self._preroll_held - self._preroll[0][1] >= self._pre_roll_s:
            self._preroll_held -= self._preroll.popleft()[1]

    def start(self) -> None:
        """The VAD opened an utterance: its audio starts with the pre-roll."""
        self.abandon()
        self._stream = self._recognizer.stream()
        self._resampler = soxr.ResampleStream(self._rate, SAMPLE_RATE, 1, dtype="int16")
        self._pending = [chunk for chunk, _ in self._preroll]
        self._heard_s = self._preroll_held
        self._preroll.clear()
        self._preroll_held = 0.0

    def _submit(self, last: bool) -> asyncio.Future[str]:
        stream, resampler = self._stream, self._resampler
        assert stream is not None and resampler is not None
        audio = np.concatenate(self._pending) if self._pending else np.zeros(0, np.int16)
        self._pending = []
        previous = self._chain
        loop = asyncio.get_running_loop()

        def work() -> str:
            pcm = np.ascontiguousarray(resampler.resample_chunk(audio, last=last), dtype=np.int16).tobytes()
            if last:
                stream._audio += pcm  # the final pass decodes everything once
                return stream.finish()
            return stream.feed(pcm)

        async def run() -> str:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            return await loop.run_in_executor(_EXECUTOR, work)

        future: asyncio.Future[str] = asyncio.ensure_future(run())
        self._chain = future
        return future

    def partial(self) -> asyncio.Future[str] | None:
        """Recognise what has been said so far; None when not listening or the last pass is still running
        (partials re-decode the utterance so far, so under load some are skipped rather than queued)."""
        if not self.listening or (self._chain is not None and not self._chain.done()):
            return None
        return self._submit(last=False)

    def finish(self) -> asyncio.Future[str] | None:
        """The utterance ended: the final transcript ("" when nothing was recognised)."""
        if not self.listening:
            return None
        future = self._submit(last=True)
        self._stream = self._resampler = None
        self._chain = None
        return future

    def abandon(self) -> None:
        """Noise or muted: drop the utterance and give its decoder back (in the worker, after pending jobs)."""
        if not self.listening:
            return
        stream = self._stream
        previous = self._chain
        self._stream = self._resampler = None
        self._chain = None
        self._pending = []
        assert stream is not None
        loop = asyncio.get_running_loop()

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous
            await loop.run_in_executor(_EXECUTOR, stream.abandon)

        asyncio.ensure_future(run())
