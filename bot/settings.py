"""Every setting chatlab has, read once at start from the environment and an optional `.env`.

Nothing here runs at import time: `load_settings()` is called by the composition root. A wrong or
missing value becomes one `SettingsError` line naming the variable, never echoing the value.

Secrets: the token and the API key are `SecretStr`; a URL-valued setting (`OPENAI_BASE_URL`) may
carry credentials too (`http://user:pass@proxy/v1`, `?api-key=...`), so its repr is redacted and
`Settings.secret_values()` lists every secret string, for the log filter to replace with `***`.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IdList = Annotated[frozenset[int], NoDecode]
ShardList = Annotated[tuple[int, ...], NoDecode]
FamilyList = Annotated[tuple[tuple[str, str], ...], NoDecode]
FAMILY_NAMES = ("reasoning", "chat")
NameList = Annotated[tuple[str, ...], NoDecode]

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."
DAY = 86_400.0  # the longest pause or timeout any setting may ask for
MAX_MODEL_NAME = 100  # Discord offers no longer choice in /model's autocomplete

# Secrets shorter than this are not redacted from logs. Replacing every "ab" or "key" in every log
# line would make the logs unreadable, and a secret of 1-3 characters protects nothing (it can be
# guessed in a few thousand tries): an Ollama key set to "x" is a placeholder, not a credential.
MIN_SECRET_LENGTH = 4

# Query parameters of a URL-valued setting whose values are credentials (`?api-key=`, `?token=`).
_SECRET_QUERY_NAME = re.compile(r"key|token|secret|pass|pwd|sig|auth|credential", re.IGNORECASE)
_ID_HINT = (
    "a whole number from 1 to 2**64-1 (in Discord: Developer Mode, then right-click, Copy ID)"
)


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line fit to print."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
        allow_inf_nan=False,  # `inf`/`nan` parse as floats; no setting means either
    )

    # Secrets and endpoints
    discord_token: SecretStr = Field(min_length=1)
    openai_api_key: SecretStr = Field(min_length=1)
    openai_base_url: str | None = Field(default=None, repr=False)  # redacted in __repr_args__

    # The model and how it answers
    model: str = Field(default="gpt-4o-mini", min_length=1, max_length=MAX_MODEL_NAME)
    models: NameList = ()
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    # A reasoning model's budget includes its thinking: 1,024 tokens would often be spent before
    # it wrote a word. An answer is only as long as the model makes it, so a roomy cap costs
    # nothing for chat models.
    max_tokens: int = Field(default=4096, ge=16)
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | None = None
    model_families: FamilyList = ()
    context_window: int = Field(default=128_000, ge=256)
    max_rounds: int = Field(default=5, ge=0, le=1000)
    system_prompt: str = Field(default=DEFAULT_SYSTEM_PROMPT, max_length=6000)
    tokenizer: str | None = None
    request_timeout: float = Field(default=60.0, gt=0, le=DAY)
    answer_deadline: float = Field(default=300.0, gt=0, le=DAY)
    max_retries: int = Field(default=2, ge=0, le=10)

    # Storage, logging, Discord
    database_path: Path = Path("chatlab.db")
    # postgresql://user:pass@host:5432/db selects PostgreSQL (the `postgres` extra) instead of the
    # SQLite file; its password is a secret like the token (redacted in repr and in logs).
    database_url: str | None = Field(default=None, repr=False)
    log_level: str = "INFO"
    dev_guild_id: int | None = None
    # Sharding: SHARD_COUNT shards in all, this process running SHARD_IDS of them (`0-3`, `0,2`);
    # unset, one process lets Discord choose. Several processes need DATABASE_URL.
    shard_count: int | None = Field(default=None, ge=1, le=100_000)
    shard_ids: ShardList = ()
    # Touched while the gateway is connected; `python -m bot health` reads its age.
    heartbeat_file: Path = Path("chatlab.heartbeat")
    heartbeat_max_age: float = Field(default=90.0, ge=5, le=DAY)
    # The model client's HTTP stack: aiohttp (the SDK's documented `DefaultAioHttpClient`; about
    # half the CPU per streamed event, see benchmarks/README.md) or the SDK's own httpx.
    http_backend: Literal["httpx", "aiohttp"] = "aiohttp"

    # Ways of talking (chat channels, threads) and attachments
    # The privileged Message Content intent: `auto` asks for it only when a channel is a chat
    # or thread channel at start (or becomes one), `on` always, `off` never (modes then refused).
    message_content: Literal["auto", "on", "off"] = "auto"
    chat_ignore_prefix: str = Field(default="//", max_length=20)
    attachment_max_bytes: int = Field(default=8 * 2**20, ge=1024, le=100 * 2**20)
    turn_attachment_max_bytes: int = Field(default=20 * 2**20, ge=1024, le=500 * 2**20)
    text_file_max_chars: int = Field(default=60_000, ge=100, le=2_000_000)
    # Models that take no images (globs, comma-separated); others are tried, and a model whose
    # server refuses images is remembered as text-only.
    text_only_models: NameList = ()

    # Access and limits
    allow_dms: bool = True
    allowed_channel_ids: IdList = frozenset()
    allowed_role_ids: IdList = frozenset()
    user_cooldown_seconds: float = Field(default=3.0, ge=0, le=DAY)
    max_waiting_per_channel: int = Field(default=10, ge=1, le=1000)
    max_waiting_per_member: int = Field(default=2, ge=1, le=100)
    export_cooldown_seconds: float = Field(default=60.0, ge=0, le=DAY)
    notice_interval_seconds: float = Field(default=30.0, ge=1, le=DAY)
    # Fits Heroku's 30 s between SIGTERM and SIGKILL; Docker waits 10 s unless told (compose: 40 s).
    shutdown_grace_seconds: float = Field(default=25.0, ge=0, le=DAY)

    @field_validator("openai_base_url", "tokenizer", "database_url", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("openai_base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = _split_url(value, "expected a URL like http://localhost:11434/v1")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL like http://localhost:11434/v1")
        if parts.query or parts.fragment:
            # The SDK appends the endpoint's path after it: `/v1/?api-key=Kchat/completions`.
            raise ValueError(
                "the openai client cannot use a URL with a query string or a fragment "
                "(?... or #...); put the key in OPENAI_API_KEY"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        parts = _split_url(value, "expected a URL like postgresql://user:pass@host:5432/chatlab")
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "expected a postgresql:// URL like postgresql://user:pass@host:5432/chatlab"
                " (leave it unset to keep the SQLite file DATABASE_PATH)"
            )
        return value

    @field_validator("shard_ids", mode="before")
    @classmethod
    def _shard_ranges(cls, value: object) -> object:
        """`0-3`, `0,2,5` or `0-3,8-11`: the shards this process runs."""
        if not isinstance(value, str):
            return value
        ids: list[int] = []
        for number, part in enumerate((p.strip() for p in value.split(",") if p.strip()), 1):
            first, dash, last = part.partition("-")
            try:
                low = int(first.strip()) if first.strip().isdecimal() else -1
                high = int(last.strip()) if dash and last.strip().isdecimal() else low
            except ValueError:
                low = high = -1
            if low < 0 or high < low or high - low > 100_000:
                raise ValueError(f"entry {number} should be a shard number or a range like 0-3")
            ids.extend(range(low, high + 1))
        if len(set(ids)) != len(ids):
            raise ValueError("a shard is listed twice")
        return tuple(sorted(ids))

    @field_validator("model", mode="before")
    @classmethod
    def _stripped(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value

    @field_validator("database_path", mode="before")
    @classmethod
    def _a_database_file(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is empty; give the SQLite file, e.g. chatlab.db or /data/chatlab.db")
        return value

    @field_validator("system_prompt", mode="before")
    @classmethod
    def _empty_prompt_is_default(cls, value: object) -> object:
        # `SYSTEM_PROMPT=` (a blanked line of .env.example) means "no special prompt": the default,
        # like every other empty setting; an empty system message is no instruction at all.
        return DEFAULT_SYSTEM_PROMPT if isinstance(value, str) and not value.strip() else value

    @field_validator("shard_count", mode="before")
    @classmethod
    def _empty_count_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("dev_guild_id", mode="before")
    @classmethod
    def _one_id(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None  # empty: no dev guild
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return _discord_id(str(value).strip(), f"expected a Discord server id: {_ID_HINT}")
        return value

    @field_validator("allowed_channel_ids", "allowed_role_ids", mode="before")
    @classmethod
    def _comma_separated_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part.strip() for part in value.split(",") if part.strip()]
            return frozenset(
                _discord_id(
                    part,
                    f"entry {n} is not a Discord id; expected comma-separated ids, each {_ID_HINT}",
                )
                for n, part in enumerate(parts, 1)
            )
        if isinstance(value, (set, frozenset, list, tuple)):
            return frozenset(
                _discord_id(str(part), f"expected Discord ids, each {_ID_HINT}") for part in value
            )
        return value

    @field_validator("models", "text_only_models", mode="before")
    @classmethod
    def _comma_separated_names(cls, value: object) -> object:
        if isinstance(value, str):
            if not value.strip():
                return ()
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, (list, tuple)):
            names = tuple(str(part).strip() for part in value)
            for number, name in enumerate(names, 1):
                if not name:
                    raise ValueError(
                        f"entry {number} is empty; separate model names with single commas"
                    )
                if len(name) > MAX_MODEL_NAME:
                    raise ValueError(f"entry {number} is longer than {MAX_MODEL_NAME} characters")
            if len(set(names)) != len(names):
                raise ValueError("a model is listed twice")
            return names
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _effort(cls, value: object) -> object:
        if isinstance(value, str):
            return value.strip().lower() or None
        return value

    @field_validator("model_families", mode="before")
    @classmethod
    def _families(cls, value: object) -> object:
        """`name=family` pairs, comma-separated; a name may be a glob (`my-proxy-*`)."""
        if not isinstance(value, str):
            return value
        pairs = []
        for number, part in enumerate((p for p in value.split(",") if p.strip()), 1):
            name, _, family = part.partition("=")
            name, family = name.strip(), family.strip().lower()
            if not name or family not in FAMILY_NAMES:
                raise ValueError(
                    f"entry {number} should be model=family, the family one of "
                    f"{', '.join(FAMILY_NAMES)} (e.g. my-proxy-*=reasoning)"
                )
            pairs.append((name, family))
        return tuple(pairs)

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.max_tokens >= self.context_window:
            raise ValueError("MAX_TOKENS must be smaller than CONTEXT_WINDOW")
        if self.models and self.model not in self.models:
            raise ValueError("MODEL must be one of MODELS when MODELS is set")
        if self.shard_ids and self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT (how many shards there are in all)")
        if self.shard_count is not None and any(i >= self.shard_count for i in self.shard_ids):
            raise ValueError(
                f"SHARD_IDS must be below SHARD_COUNT ({self.shard_count}): shards are numbered"
                f" from 0 to {self.shard_count - 1}"
            )
        if self.attachment_max_bytes > self.turn_attachment_max_bytes:
            raise ValueError("ATTACHMENT_MAX_BYTES must not exceed TURN_ATTACHMENT_MAX_BYTES")
        return self

    @property
    def process_shards(self) -> tuple[int, ...] | None:
        """The shards this process runs (None: Discord chooses, one process)."""
        if self.shard_count is None:
            return None
        return self.shard_ids or tuple(range(self.shard_count))

    @property
    def selectable_models(self) -> tuple[str, ...]:
        """The models a moderator may choose for a channel (the default first)."""
        return self.models or (self.model,)

    def secret_values(self) -> tuple[str, ...]:
        """Every secret string in the settings, longest first, for redacting logs.

        The token and the API key; of every URL-valued setting, the password (or a username with
        no password, a token in disguise), as written and percent-decoded, the Basic credentials
        an HTTP client derives from them, and the values of query parameters named like keys.
        Strings shorter than `MIN_SECRET_LENGTH` are left out (see there).
        """
        found = {self.discord_token.get_secret_value(), self.openai_api_key.get_secret_value()}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("_url") and isinstance(value, str):
                found.update(_url_secrets(value))
        kept = {secret for secret in found if len(secret) >= MIN_SECRET_LENGTH}
        return tuple(sorted(kept, key=lambda secret: (-len(secret), secret)))

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield from super().__repr_args__()
        yield "openai_base_url", redact_url(self.openai_base_url)
        yield "database_url", redact_url(self.database_url)


def _split_url(value: str, problem: str) -> SplitResult:
    """The URL's parts; `problem` (a ValueError) if it is not a URL or its port not a number."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        raise ValueError(problem) from None
    return parts


def redact_url(url: str | None) -> str | None:
    """The URL with its password (or lone username) and key-like query values replaced by ***."""
    if url is None:
        return None
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:***@{host}" if has_password else f"***@{host}"
    query = "&".join(
        f"{name}=***" if _SECRET_QUERY_NAME.search(name) and value else field
        for field in parts.query.split("&")
        for name, _, value in [field.partition("=")]
    )
    return parts._replace(netloc=netloc, query=query).geturl()


def _url_secrets(url: str) -> set[str]:
    parts = urlsplit(url)
    found: set[str] = set()
    if "@" in parts.netloc:
        userinfo = parts.netloc.rpartition("@")[0]
        user, has_password, password = userinfo.partition(":")
        secret = password if has_password else user
        found |= {secret, unquote(secret)}
        basic = f"{unquote(user)}:{unquote(password)}".encode()
        found.add(base64.b64encode(basic).decode("ascii"))
    for field in parts.query.split("&"):
        name, _, value = field.partition("=")
        if value and _SECRET_QUERY_NAME.search(unquote(name)):
            found |= {value, unquote(value), unquote(value.replace("+", " "))}
    return {secret for secret in found if secret}


def _discord_id(text: str, problem: str) -> int:
    # isdecimal alone accepts "١٢" and int() accepts "1_000"; a snowflake is plain ASCII digits.
    if not (text.isascii() and text.isdecimal()) or len(text) > 20:
        raise ValueError(problem)
    value = int(text)
    if not 0 < value < 2**64:
        raise ValueError(problem)
    return value


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Read and validate the settings, or raise `SettingsError` with one readable line.

    `overrides` are field values of any type: pydantic validates them, as it does the environment.
    """
    try:
        return Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None


def describe_errors(exc: ValidationError) -> str:
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
