"""A Convai-compatible emulator: the REST gateway, the Live API's HTTP side and SSE, on one local port.

Entry points: ``Emulator`` / ``EmulatorConfig`` (``convai_emulator.server``), ``create_app``
(``convai_emulator.http``), and the ``convai-bridge emulator`` verb (``convai_emulator.cli``).
"""
