"""Load testing the bridge: simulated engine clients speaking protocol v1 to a daemon over ZeroMQ.

`convai-bridge loadtest` (``cli``) runs many scripted NPCs from one process; ``locustfile`` does the
same as Locust users so Locust's master/worker mode can spread NPCs over machines. Both measure with
the same sans-IO pieces: ``probe`` (per-session turn tracking), ``playout`` (client jitter-buffer
model) and ``stats`` (histograms, per-turn records).
"""
