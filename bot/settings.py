"""Every setting chatlab has, read once at start from the environment and an optional `.env`.

Nothing here runs at import time: `load_settings()` is called by the composition root. A wrong or
missing value becomes one `SettingsError` line naming the variable; secrets are `SecretStr`, so
they never appear in a repr, a log line or an error message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int], NoDecode]
NameList = Annotated[tuple[str, ...], NoDecode]


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line fit to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    # Secrets and endpoints
    discord_token: SecretStr = Field(min_length=1)
    openai_api_key: SecretStr = Field(min_length=1)
    openai_base_url: str | None = None

    # The model and how it answers
    model: str = "gpt-4o-mini"
    models: NameList = ()
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(default=1024, ge=16)
    context_window: int = Field(default=128_000, ge=256)
    max_rounds: int = Field(default=5, ge=0, le=1000)
    system_prompt: str = Field(default="You are a helpful assistant.", max_length=6000)
    tokenizer: str | None = None
    request_timeout: float = Field(default=60.0, gt=0)
    answer_deadline: float = Field(default=300.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)

    # Storage, logging, Discord
    database_path: Path = Path("chatlab.db")
    log_level: str = "INFO"
    dev_guild_id: int | None = None

    # Access and limits
    allow_dms: bool = True
    allowed_channel_ids: IdList = frozenset()
    allowed_role_ids: IdList = frozenset()
    user_cooldown_seconds: float = Field(default=0.0, ge=0)
    shutdown_grace_seconds: float = Field(default=30.0, ge=0)

    @field_validator("openai_base_url", "tokenizer", "dev_guild_id", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_channel_ids", "allowed_role_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            if not all(part.isdigit() for part in parts):
                raise ValueError("expected comma-separated numeric Discord ids")
            return frozenset(int(part) for part in parts)
        return value

    @field_validator("models", mode="before")
    @classmethod
    def _comma_separated_names(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_tokens >= self.context_window:
            raise ValueError("MAX_TOKENS must be smaller than CONTEXT_WINDOW")
        if self.models and self.model not in self.models:
            raise ValueError("MODEL must be one of MODELS when MODELS is set")
        return self

    @property
    def selectable_models(self) -> tuple[str, ...]:
        """The models a moderator may choose for a channel (the default first)."""
        return self.models or (self.model,)


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Read and validate the settings, or raise `SettingsError` with one readable line."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        name = "_".join(str(part) for part in error["loc"]).upper() or "settings"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            message = "is required but not set (put it in the environment or in .env)"
        elif name != "settings":
            message = f"is invalid: {message}"
        problems.append(f"{name} {message}" if name != "settings" else message)
    return "; ".join(problems)
