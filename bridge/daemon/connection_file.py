"""The connection file: where engine clients find the daemon and the token that proves they may use it.

Modelled on Jupyter's kernel connection files: written 0600 before the socket accepts anyone,
removed on clean exit. It never holds the Convai API key.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


def new_token() -> str:
    return secrets.token_hex(16)


def write_connection_file(path: Path, endpoint: str, token: str, instance_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"endpoint": endpoint, "token": token, "pid": os.getpid(), "instance_id": instance_id}, fh)
        fh.write("\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def read_connection_file(path: Path) -> dict[str, str]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("endpoint"), str)
        or not isinstance(data.get("token"), str)
    ):
        raise ValueError(f"{path} is not a convai-bridge connection file")
    return data


def remove_connection_file(path: Path, instance_id: str) -> None:
    """Remove the file only if it is still ours (a newer daemon may have replaced it)."""
    try:
        if read_connection_file(path).get("instance_id") == instance_id:
            path.unlink()
    except (OSError, ValueError):
        pass
