"""Settings: read once, validated, secrets hidden."""

from __future__ import annotations

import logging

import pytest

from bot.settings import SettingsError, load_settings

REQUIRED = {"DISCORD_TOKEN": "discord-secret-123", "OPENAI_API_KEY": "sk-secret-456"}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.isupper() and not name.startswith(("PATH", "HOME", "TMP", "PYTEST", "LANG")):
            monkeypatch.delenv(name, raising=False)


def test_missing_required_settings_name_the_variables():
    with pytest.raises(SettingsError) as caught:
        load_settings(None)

    message = str(caught.value)
    assert "DISCORD_TOKEN is required" in message and "OPENAI_API_KEY is required" in message
    assert "\n" not in message


def test_an_invalid_value_names_the_variable_and_hides_the_input(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TEMPERATURE", "hot")

    with pytest.raises(SettingsError) as caught:
        load_settings(None)

    assert str(caught.value).startswith("TEMPERATURE is invalid")
    assert "hot" not in str(caught.value)


def test_values_that_contradict_each_other_are_refused(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MAX_TOKENS", "9000")
    monkeypatch.setenv("CONTEXT_WINDOW", "8000")

    with pytest.raises(SettingsError, match="MAX_TOKENS must be smaller than CONTEXT_WINDOW"):
        load_settings(None)


def test_secrets_never_show_in_repr_or_logs(monkeypatch, caplog):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)

    settings = load_settings(None)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("test").info("settings: %s %r", settings, settings)

    assert settings.discord_token.get_secret_value() == "discord-secret-123"
    for text in (repr(settings), str(settings), caplog.text):
        assert "discord-secret-123" not in text and "sk-secret-456" not in text


def test_dotenv_file_and_list_settings(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DISCORD_TOKEN=t\nOPENAI_API_KEY=k\nALLOWED_CHANNEL_IDS=1, 2 ,3\n"
        "MODELS=gpt-4o-mini,gpt-4.1\nMODEL=gpt-4.1\nDEV_GUILD_ID=\nALLOW_DMS=false\n"
    )

    settings = load_settings(env_file)

    assert settings.allowed_channel_ids == frozenset({1, 2, 3})
    assert settings.selectable_models == ("gpt-4o-mini", "gpt-4.1")
    assert settings.dev_guild_id is None
    assert settings.allow_dms is False
    assert settings.max_rounds == 5  # the original app kept five rounds


def test_bad_id_lists_are_refused(monkeypatch):
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALLOWED_ROLE_IDS", "123,moderators")

    with pytest.raises(SettingsError, match="ALLOWED_ROLE_IDS is invalid"):
        load_settings(None)
