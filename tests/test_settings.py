"""Settings: read once, validated, secrets hidden."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.settings import DEFAULT_SYSTEM_PROMPT, Settings, SettingsError, load_settings

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


def required(monkeypatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


def one_line_error(env_file: Path | None = None, **overrides: object) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(env_file, **overrides)
    message = str(caught.value)
    assert "\n" not in message
    return message


FLOAT_SETTINGS = [
    name.upper() for name, field in Settings.model_fields.items() if field.annotation is float
]


def test_every_float_setting_is_checked_here():
    assert "USER_COOLDOWN_SECONDS" in FLOAT_SETTINGS and len(FLOAT_SETTINGS) >= 7


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity"])
@pytest.mark.parametrize("name", FLOAT_SETTINGS)
def test_no_float_setting_may_be_infinite_or_nan(monkeypatch, name, value):
    # USER_COOLDOWN_SECONDS=inf used to crash on a member's second question (round(inf)).
    required(monkeypatch)
    monkeypatch.setenv(name, value)

    assert one_line_error() == f"{name} is invalid: Input should be a finite number"


def test_the_cooldown_is_capped_at_a_day(monkeypatch):
    required(monkeypatch)
    monkeypatch.setenv("USER_COOLDOWN_SECONDS", "86401")

    assert one_line_error().startswith("USER_COOLDOWN_SECONDS is invalid: Input should be less")
    monkeypatch.setenv("USER_COOLDOWN_SECONDS", "86400")
    assert load_settings(None).user_cooldown_seconds == 86400


@pytest.mark.parametrize(
    "value",
    [
        "my-server",
        "12 # dev",  # a comment is part of the value in the environment
        "0",
        "-5",
        "1234567890123456789012345",  # 25 digits: discord.Object raised on it
        str(2**64),
        "1_000",
        "12.0",
        "1e5",
        "١٢٣",  # digits int() accepts, Discord does not
        "9" * 5000,
    ],
)
def test_a_dev_guild_id_that_is_not_a_discord_id_is_one_line(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("DEV_GUILD_ID", value)

    message = one_line_error()

    assert message.startswith("DEV_GUILD_ID is invalid: expected a Discord server id")
    assert value not in message and len(message) < 200


def test_dev_guild_ids_from_the_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=t\nOPENAI_API_KEY=k\nDEV_GUILD_ID= 42 # my test server\n")
    assert load_settings(env_file).dev_guild_id == 42  # python-dotenv drops the comment
    env_file.write_text("DISCORD_TOKEN=t\nOPENAI_API_KEY=k\nDEV_GUILD_ID=my test server\n")
    assert one_line_error(env_file).startswith("DEV_GUILD_ID is invalid")
    env_file.write_text(f"DISCORD_TOKEN=t\nOPENAI_API_KEY=k\nDEV_GUILD_ID={2**64 - 1}\n")
    assert load_settings(env_file).dev_guild_id == 2**64 - 1


@pytest.mark.parametrize("value", ["1,0", "1,-2", f"1,{2**64}", "1,١٢", "1,²"])
def test_id_lists_hold_only_discord_ids(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("ALLOWED_CHANNEL_IDS", value)

    assert one_line_error().startswith(
        "ALLOWED_CHANNEL_IDS is invalid: entry 2 is not a Discord id"
    )


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_database_path_is_refused(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("DATABASE_PATH", value)

    assert one_line_error().startswith("DATABASE_PATH is invalid: is empty; give the SQLite file")


@pytest.mark.parametrize("value", ["", "   "])
def test_an_empty_model_is_refused(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("MODEL", value)

    assert one_line_error().startswith("MODEL is invalid: String should have at least 1 character")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("gpt-4o-mini,,gpt-4.1", "entry 2 is empty"),
        ("gpt-4o-mini, ,gpt-4.1", "entry 2 is empty"),
        ("gpt-4o-mini,gpt-4.1,", "entry 3 is empty"),
        ("gpt-4o-mini,gpt-4o-mini", "a model is listed twice"),
        ("gpt-4o-mini," + "m" * 101, "entry 2 is longer than 100 characters"),
    ],
)
def test_bad_model_lists_are_refused(monkeypatch, value, problem):
    required(monkeypatch)
    monkeypatch.setenv("MODELS", value)

    assert one_line_error() == f"MODELS is invalid: {problem}" + (
        "; separate model names with single commas" if "empty" in problem else ""
    )


def test_model_names_are_trimmed(monkeypatch):
    required(monkeypatch)
    monkeypatch.setenv("MODEL", " gpt-4.1 ")
    monkeypatch.setenv("MODELS", " gpt-4o-mini , gpt-4.1 ")

    settings = load_settings(None)

    assert settings.model == "gpt-4.1" and settings.models == ("gpt-4o-mini", "gpt-4.1")


@pytest.mark.parametrize("value", ["", "  \n "])
def test_an_empty_system_prompt_means_the_default(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("SYSTEM_PROMPT", value)

    assert load_settings(None).system_prompt == DEFAULT_SYSTEM_PROMPT


def test_the_base_url_password_is_in_no_repr_and_no_error(monkeypatch):
    required(monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://proxy-user:pa55-w0rd@proxy.local:8080/v1")

    settings = load_settings(None)

    assert settings.openai_base_url == "http://proxy-user:pa55-w0rd@proxy.local:8080/v1"
    for text in (repr(settings), str(settings)):
        assert "pa55-w0rd" not in text
        assert "openai_base_url='http://proxy-user:***@proxy.local:8080/v1'" in text
    assert "pa55-w0rd" in settings.secret_values()
    monkeypatch.setenv("MAX_ROUNDS", "lots")
    assert "pa55-w0rd" not in one_line_error()


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pa55-w0rd@proxy.local:port/v1",
        "ftp://user:pa55-w0rd@proxy.local/v1",
        "http://proxy.local/v1?api-key=pa55-w0rd",
        "http://[user:pa55-w0rd@proxy.local/v1",
    ],
)
def test_a_bad_base_url_is_refused_without_echoing_it(monkeypatch, url):
    required(monkeypatch)
    monkeypatch.setenv("OPENAI_BASE_URL", url)

    message = one_line_error()

    assert message.startswith("OPENAI_BASE_URL is invalid") and "pa55-w0rd" not in message


def test_the_limits_have_safe_defaults():
    settings = load_settings(None, **{k.lower(): v for k, v in REQUIRED.items()})

    assert settings.user_cooldown_seconds == 3
    assert settings.max_waiting_per_channel == 10 and settings.max_waiting_per_member == 2
    assert settings.export_cooldown_seconds == 60 and settings.notice_interval_seconds == 30


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_WAITING_PER_CHANNEL", "0"),
        ("MAX_WAITING_PER_CHANNEL", "1001"),
        ("MAX_WAITING_PER_MEMBER", "0"),
        ("MAX_WAITING_PER_MEMBER", "101"),
        ("EXPORT_COOLDOWN_SECONDS", "-1"),
        ("EXPORT_COOLDOWN_SECONDS", "86401"),
        ("NOTICE_INTERVAL_SECONDS", "0"),
        ("USER_COOLDOWN_SECONDS", "-1"),
    ],
)
def test_limits_out_of_range_are_refused(monkeypatch, name, value):
    required(monkeypatch)
    monkeypatch.setenv(name, value)

    assert one_line_error().startswith(f"{name} is invalid")


def test_the_example_file_lists_every_setting_with_a_valid_default(tmp_path):
    example = Path(__file__).resolve().parent.parent / ".env.example"
    names = {
        line.split("=", 1)[0]
        for line in example.read_text().splitlines()
        if line and not line.startswith("#")
    }

    assert names == {name.upper() for name in Settings.model_fields}
    filled = example.read_text().replace("DISCORD_TOKEN=\n", "DISCORD_TOKEN=t\n")
    env_file = tmp_path / ".env"
    env_file.write_text(filled.replace("OPENAI_API_KEY=\n", "OPENAI_API_KEY=k\n"))
    assert load_settings(env_file) == load_settings(None, discord_token="t", openai_api_key="k")


def test_model_families_map_names_and_globs_to_a_family(monkeypatch):
    required(monkeypatch)
    monkeypatch.setenv("MODEL_FAMILIES", " my-proxy-* = Reasoning , llama3=chat")

    assert load_settings(None).model_families == (("my-proxy-*", "reasoning"), ("llama3", "chat"))


@pytest.mark.parametrize("value", ["x=fast", "=reasoning", "gpt-5"])
def test_a_model_family_entry_that_is_not_name_equals_family_is_one_line(monkeypatch, value):
    required(monkeypatch)
    monkeypatch.setenv("MODEL_FAMILIES", value)

    assert one_line_error().startswith("MODEL_FAMILIES is invalid: entry 1 should be model=family")


def test_reasoning_effort_is_one_of_the_api_levels_or_unset(monkeypatch):
    required(monkeypatch)
    monkeypatch.setenv("REASONING_EFFORT", " High ")
    assert load_settings(None).reasoning_effort == "high"
    monkeypatch.setenv("REASONING_EFFORT", "")
    assert load_settings(None).reasoning_effort is None
    monkeypatch.setenv("REASONING_EFFORT", "extreme")
    assert one_line_error().startswith("REASONING_EFFORT is invalid")


def test_the_reply_budget_leaves_a_reasoning_model_room_to_think(monkeypatch):
    required(monkeypatch)

    assert load_settings(None).max_tokens == 4096
