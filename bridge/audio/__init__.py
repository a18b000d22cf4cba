"""Audio plumbing between Convai and engine clients: resampling, framing, pacing, WAV, lip-sync timing.

Submodules are imported directly (``from bridge.audio.resample import StreamResampler``) so that the
cheap ones do not pull in scipy.
"""
