"""Offline speech recognition for voice turns (pocketsphinx, CMU's English acoustic model).

Convai transcribes the player's speech; the emulator does too, so what a client says by voice
reaches the character's brain ("my name is Ada" is remembered like the same sentence typed).

The acoustic model is the one in pocketsphinx's wheel. Its general English language model does
poorly on espeak-ng's formant voice, so the decoder uses a small bigram model built here from the
emulator's own domain: every phrase in the roster (greetings, replies, keywords, trigger and
character names), a list of demo sentences and "my name is <first name>" for common names. That
restricts the vocabulary, not the outcome: the decoder still picks words from the audio, and a
different name said is a different name heard. Words the pronunciation dictionary lacks are
left out. ``name`` gets extra pronunciations matching espeak-ng's (its final /m/ runs into "is").

Decoding is blocking CPU work (about 0.05 s per second of speech; a decoder loads in about 10 ms
since it reads the domain's dictionary, not all of cmudict): a :class:`RecognitionStream` is
fed from a thread pool (``feed`` per half second of speech for partial results, ``finish`` at the
end of the utterance), never on the event loop. Without pocketsphinx :func:`make_recognizer`
returns None and voice turns fall back to the measured placeholder ``(voice input, N.N seconds)``.
Transcripts are cased like a cloud STT's: sentence start, "I" and known names capitalised.
"""

from __future__ import annotations

import collections
import functools
import logging
import math
import re
import tempfile
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MAX_IDLE_DECODERS = 4

DEMO_SENTENCES: tuple[str, ...] = (
    "what is my name", "who am i", "do you remember my name", "call me", "remember that",
    "what did i ask you to remember", "hello there", "good morning", "how are you", "how are you today",
    "please wave", "wave at me", "can you wave", "follow me", "come with me", "tell me about the dragon",
    "what do you sell", "how much is a sword", "show me your work", "thank you", "goodbye", "yes", "no",
    "hello there blacksmith how are you", "good morning to you smith", "could you wave at me",
    # the voice lines of `convai-bridge demo` (bridge/demo.py)
    "thank you that is wonderful", "where can i find the inn",
)
FIRST_NAMES: tuple[str, ...] = (
    "ada", "alice", "anna", "ben", "bob", "carl", "clara", "david", "emma", "eve", "frank", "grace",
    "henry", "jack", "jane", "john", "kate", "leo", "lucy", "mary", "max", "nina", "oscar", "paul",
    "peter", "rose", "sam", "sara", "tom", "victor",
)
EXTRA_PRONUNCIATIONS: dict[str, tuple[str, ...]] = {"name": ("N EH M", "N AE M", "N IY M", "N EY")}

_WORD = re.compile(r"[a-z][a-z']*")


def _words(text: str) -> list[str]:
    return _WORD.findall(re.sub(r"\{[^}]*\}", " ", text.lower()))


BACKOFF_LOG10 = -1.5  # unseen word pairs cost this much: keeps the decoder on the domain's phrases


def _arpa_bigrams(sentences: Iterable[list[str]]) -> str:
    """A bigram ARPA model with maximum-likelihood bigrams and a fixed back-off (small and domain-bound)."""
    tokens = [["<s>", *s, "</s>"] for s in sentences if s]
    unigrams = collections.Counter(w for t in tokens for w in t)
    bigrams = collections.Counter((a, b) for t in tokens for a, b in zip(t, t[1:], strict=False))
    total = sum(unigrams.values())
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    for word, count in sorted(unigrams.items()):
        prob = -99.0 if word == "<s>" else math.log10(count / total)
        lines.append(f"{prob:.4f} {word} {BACKOFF_LOG10:.4f}")
    lines += ["", "\\2-grams:"]
    for (a, b), count in sorted(bigrams.items()):
        lines.append(f"{math.log10(count / unigrams[a]):.4f} {a} {b}")
    lines += ["", "\\end\\", ""]
    return "\n".join(lines)


@functools.lru_cache(maxsize=2)
def _dictionary_lines(path: str) -> dict[str, tuple[str, ...]]:
    """cmudict as word -> its lines (a word with variants, "word(2)", has several)."""
    lines: dict[str, list[str]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            word = line.split(" ", 1)[0].split("(", 1)[0]
            lines.setdefault(word, []).append(line if line.endswith("\n") else line + "\n")
    return {word: tuple(entries) for word, entries in lines.items()}


def roster_phrases(roster: Any) -> list[str]:
    """Phrases of every character: what players are likely to say to them, and their names."""
    phrases: list[str] = []
    for character in roster:
        phrases += [character.name, character.greeting, f"hello {character.name}"]
        for rule in (*character.actions, *character.emotions, *character.topics, *character.triggers):
            phrases += list(getattr(rule, "keywords", ()))
        phrases += [t.trigger_name.replace("_", " ") for t in character.triggers]
        phrases += [topic.reply for topic in character.topics]
    return phrases


class SpeechRecognizer:
    """Owns the domain language model and a pool of pocketsphinx decoders (one per open stream)."""

    def __init__(self, phrases: Iterable[str] = (), proper_names: Iterable[str] = ()) -> None:
        from pocketsphinx import Decoder, get_model_path

        self._decoder_class = Decoder
        dictionary = _dictionary_lines(str(Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"))
        sentences = [_words(s) for s in (*DEMO_SENTENCES, *phrases)]
        sentences += [["my", "name", "is", n] for n in FIRST_NAMES] + [["call", "me", n] for n in FIRST_NAMES]
        kept = [[w for w in s if w in dictionary] for s in sentences]
        self.vocabulary = frozenset(w for s in kept for w in s)
        self._dir = tempfile.TemporaryDirectory(prefix="emulator-stt-")
        self._lm = Path(self._dir.name) / "domain.lm"
        self._lm.write_text(_arpa_bigrams(kept), encoding="utf-8")
        # only the domain's words: a decoder loading all of cmudict holds the GIL for seconds, which
        # stalls every room of the emulator (and anything else in its process) at the first utterance
        self.dictionary_path = Path(self._dir.name) / "domain.dict"
        entries = "".join(line for word in sorted(self.vocabulary) for line in dictionary[word])
        self.dictionary_path.write_text(entries, encoding="utf-8")
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._proper = frozenset(FIRST_NAMES) | frozenset(
            w for n in proper_names for w in _words(n) if w not in ("the", "a", "an", "of", "and"))

    def cased(self, text: str) -> str:
        """Decoder output ("my name is ada") as a transcript ("My name is Ada")."""
        words = [w for w in text.split() if not w.startswith(("<", "["))]
        words = [re.sub(r"\(\d+\)$", "", w) for w in words]
        words = [w.capitalize() if w in self._proper or w == "i" else w for w in words]
        if words:
            words[0] = words[0][:1].upper() + words[0][1:]
        return " ".join(words)

    def _decoder(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        decoder = self._decoder_class(samprate=SAMPLE_RATE, lm=str(self._lm), dict=str(self.dictionary_path),
                                      loglevel="FATAL")
        variants = [(w, p) for w, ps in EXTRA_PRONUNCIATIONS.items() if w in self.vocabulary for p in ps]
        for i, (word, phones) in enumerate(variants):
            decoder.add_word(f"{word}({i + 2})", phones, i == len(variants) - 1)
        return decoder

    def _release(self, decoder: Any) -> None:
        with self._lock:
            if len(self._idle) < MAX_IDLE_DECODERS:
                self._idle.append(decoder)

    def prewarm(self) -> None:
        """Load one decoder (about 0.7 s of CPU) so the first utterance does not wait for it."""
        self._release(self._decoder())

    def stream(self) -> RecognitionStream:
        return RecognitionStream(self)

    def recognize(self, pcm16k: bytes) -> str:
        """A whole utterance (16 kHz mono int16) at once; blocking."""
        stream = self.stream()
        stream._audio += pcm16k
        return stream.finish()


class RecognitionStream:
    """One utterance. Blocking methods, to be called from a worker thread, one at a time.

    Each result decodes the whole utterance so far in one pass: pocketsphinx's live cepstral mean
    normalisation, used when audio is fed in pieces, has too little audio to settle on in a short
    utterance and gets it wrong ("my name is ada" → "my you to"); a whole-utterance pass does not.
    Partial results are therefore only computed for the first ``PARTIAL_LIMIT_S`` of an utterance.
    """

    PARTIAL_LIMIT_S = 5.0

    def __init__(self, recognizer: SpeechRecognizer) -> None:
        self._recognizer = recognizer
        self._audio = bytearray()
        self._done = False

    def _decode(self) -> str:
        if not self._audio:
            return ""
        decoder = self._recognizer._decoder()
        try:
            decoder.start_utt()
            decoder.process_raw(bytes(self._audio), False, True)
            decoder.end_utt()
            hyp = decoder.hyp()
            return self._recognizer.cased(hyp.hypstr) if hyp is not None else ""
        finally:
            self._recognizer._release(decoder)

    def feed(self, pcm16k: bytes) -> str:
        """More audio (16 kHz mono int16); returns the hypothesis so far ("" when nothing yet)."""
        if self._done:
            return ""
        self._audio += pcm16k
        if len(self._audio) > self.PARTIAL_LIMIT_S * SAMPLE_RATE * 2:
            return ""
        return self._decode()

    def finish(self) -> str:
        """The final transcript of everything fed."""
        if self._done:
            return ""
        self._done = True
        return self._decode()

    def abandon(self) -> None:
        """The utterance was noise: drop it without decoding."""
        self._done = True
        self._audio = bytearray()


def make_recognizer(phrases: Iterable[str] = (), proper_names: Iterable[str] = ()) -> SpeechRecognizer | None:
    """The recognizer, or None when pocketsphinx (the ``emulator`` extra) is not installed.

    One per vocabulary and process: decoders take about 0.7 s of CPU to load, so emulators with the
    same roster (tests start many) share them.
    """
    try:
        return _cached_recognizer(tuple(phrases), tuple(proper_names))
    except ImportError:
        log.info("pocketsphinx is not installed: voice turns are transcribed as a measurement")
        return None


@functools.lru_cache(maxsize=8)
def _cached_recognizer(phrases: tuple[str, ...], proper_names: tuple[str, ...]) -> SpeechRecognizer:
    return SpeechRecognizer(phrases, proper_names)
