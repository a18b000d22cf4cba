"""Configuration precedence (defaults < TOML < environment < flags) and the redacting Secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import Secret, load_config


def test_precedence(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text(
        '[daemon]\nrest_url = "http://file"\nlive_url = "http://file-live"\nmax_sessions = 5\n'
        'api_key = "from-file-key"\n'
    )
    env = {"CONVAI_LIVE_URL": "http://env-live", "CONVAI_API_KEY": "from-env-key"}
    cfg = load_config({"max_sessions": 9, "rest_url": None}, file=toml, env=env)
    assert cfg.rest_url == "http://file"  # file beats default; a None flag does not override
    assert cfg.live_url == "http://env-live"  # env beats file
    assert cfg.max_sessions == 9  # flags beat everything
    assert cfg.api_key.reveal() == "from-env-key"


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text("[daemon]\nmax_sesions = 3\n")
    with pytest.raises(ValueError, match="max_sesions"):
        load_config(file=toml, env={})


def test_secret_never_prints() -> None:
    s = Secret("sk-123456789")
    assert "sk-" not in repr(s) and "sk-" not in str(s) and "sk-" not in f"{s}"
    cfg = load_config({"api_key": "sk-abcdefgh"}, env={})
    assert "sk-abcdefgh" not in repr(cfg)
    assert not Secret(None) and Secret("x")
