"""Settings: file, environment, precedence and the errors a person sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from voxd.config import Settings, find_config, load_settings
from voxd.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    import os

    for key in list(os.environ):
        if key.startswith("VOXD_") or key in ("STATE_DIRECTORY", "XDG_STATE_HOME"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_is_valid_and_documents_every_key():
    text = (REPO / "config" / "voxd.toml").read_text()
    settings = load_settings(REPO / "config" / "voxd.toml")
    assert settings == load_settings()  # the example shows the defaults
    for key, field in Settings.model_fields.items():
        assert f"{key} =" in text or f"[{key}]" in text, f"config/voxd.toml does not document {key}"
        sub = getattr(field.annotation, "model_fields", None)
        if sub:
            for subkey in sub:
                assert f"{subkey} =" in text, f"config/voxd.toml does not document {key}.{subkey}"


def test_relative_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "conf").mkdir()
    cfg = write(tmp_path / "conf" / "voxd.toml", 'inbox = "in"\noutbox = "/abs/out"\n')
    s = load_settings(cfg)
    assert s.inbox_dir == tmp_path / "conf" / "in"
    assert s.outbox_dir == Path("/abs/out")


def test_environment_overrides_file(tmp_path, monkeypatch):
    cfg = write(tmp_path / "voxd.toml", 'engine = "espeak"\nsettle_seconds = 2\n[espeak]\nrate_wpm = 150\n')
    monkeypatch.setenv("VOXD_SETTLE_SECONDS", "9")
    monkeypatch.setenv("VOXD_ESPEAK__RATE_WPM", "200")
    s = load_settings(cfg)
    assert s.settle_seconds == 9
    assert s.espeak.rate_wpm == 200


def test_nested_env_for_qwen(monkeypatch):
    monkeypatch.setenv("VOXD_QWEN__CUSTOM_VOICE_MODEL", "/models/cv")
    assert load_settings().qwen.custom_voice_model == "/models/cv"


def test_config_search_order(tmp_path, monkeypatch):
    home_cfg = tmp_path / "home" / ".config" / "voxd" / "voxd.toml"
    home_cfg.parent.mkdir(parents=True)
    write(home_cfg, "bitrate = 96000\n")
    assert find_config() == home_cfg
    env_cfg = write(tmp_path / "env.toml", "bitrate = 48000\n")
    monkeypatch.setenv("VOXD_CONFIG", str(env_cfg))
    assert find_config() == env_cfg
    explicit = write(tmp_path / "explicit.toml", "bitrate = 32000\n")
    assert load_settings(explicit).bitrate == 32000


def test_state_directory_from_systemd(monkeypatch, tmp_path):
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    s = load_settings()
    assert s.db_path == tmp_path / "state" / "voxd.sqlite3"
    assert s.cache_path == tmp_path / "state" / "cache"


def test_unknown_key_is_named(tmp_path):
    cfg = write(tmp_path / "voxd.toml", "inbxo = '/x'\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    assert "inbxo" in str(info.value) and "unknown key" in str(info.value)
    assert str(cfg) in str(info.value)


def test_bad_value_names_key_and_value(tmp_path):
    cfg = write(tmp_path / "voxd.toml", "engine = 'festival'\n[espeak]\nrate_wpm = 5\n")
    with pytest.raises(ConfigError) as info:
        load_settings(cfg)
    message = str(info.value)
    assert "engine" in message and "'festival'" in message
    assert "espeak.rate_wpm" in message


def test_bad_env_value(monkeypatch):
    monkeypatch.setenv("VOXD_MAX_ATTEMPTS", "lots")
    with pytest.raises(ConfigError, match="max_attempts"):
        load_settings()


def test_a_list_in_the_environment_that_is_not_json_names_the_variable(monkeypatch):
    monkeypatch.setenv("VOXD_REMOTE__URLS", "http://gpu-box:8000/v1")  # as a person first writes it
    with pytest.raises(ConfigError, match=r"VOXD_REMOTE__URLS cannot be read: .* written as JSON"):
        load_settings()
    monkeypatch.setenv("VOXD_REMOTE__URLS", '["http://gpu-box:8000/v1"]')
    assert load_settings().remote.urls == ["http://gpu-box:8000/v1"]


def test_invalid_toml_names_file(tmp_path):
    cfg = write(tmp_path / "voxd.toml", "engine = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_chunk_limits_checked_together(tmp_path):
    cfg = write(tmp_path / "voxd.toml", "chunk_target_chars = 400\nchunk_max_chars = 300\n")
    with pytest.raises(ConfigError, match="chunk_max_chars"):
        load_settings(cfg)


def test_notify_urls_are_secret(tmp_path):
    cfg = write(tmp_path / "voxd.toml", 'notify_urls = ["pover://user@token"]\n')
    s = load_settings(cfg)
    assert "token" not in repr(s)
    assert s.notify_urls[0].get_secret_value() == "pover://user@token"
