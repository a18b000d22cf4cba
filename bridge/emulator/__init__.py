"""A Convai-compatible emulator: the REST gateway, the Live API's HTTP side and SSE, on one local port.

Entry points: ``Emulator`` / ``EmulatorConfig`` (``bridge.emulator.server``), ``create_app``
(``bridge.emulator.http``), and the ``convai-bridge emulator`` verb (``bridge.emulator.cli``).
"""
