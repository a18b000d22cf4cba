"""``python -m bridge_loadtest.emulator_proc --url-file F``: the emulator in its own process for load runs.

Separate from the daemon so that on a small machine the two share the cores instead of one Python
process (one GIL) carrying both; the URL is written to ``F`` once the emulator accepts connections.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from convai_emulator.config import EmulatorConfig
from convai_emulator.server import Emulator, run_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bridge_loadtest.emulator_proc")
    parser.add_argument("--url-file", type=Path, required=True)
    parser.add_argument("--max-sessions", type=int, default=100_000, help="live sessions per key before 429")
    args = parser.parse_args(argv)

    def ready(emu: Emulator) -> None:
        tmp = args.url_file.with_name(args.url_file.name + ".tmp")
        tmp.write_text(emu.base_url + "\n", encoding="utf-8")
        os.replace(tmp, args.url_file)

    config = EmulatorConfig(host="127.0.0.1", port=0, max_sessions_per_key=args.max_sessions, prewarm_audio=True)
    run_forever(config, ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
