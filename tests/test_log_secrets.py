"""No credential of any setting reaches a log line, at any level, in a message or a traceback.

Logging is configured exactly as `python -m bot` does (`configure_logging`, LOG_LEVEL=DEBUG), real
requests go through the real openai client to the loopback server at a base URL that carries a
password, and the handler's own stream (what an admin's log drain receives) is searched.
"""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator

import discord
import openai
import pytest
from pydantic import SecretStr

from bot.__main__ import QUIET_LOGGERS, RedactSecrets, configure_logging
from bot.errors import LLMError
from bot.llm import OpenAIChatModel
from bot.settings import Settings, load_settings
from tests.fake_openai import FakeOpenAI, Reply, unauthorized

TOKEN = "MTAx.FAKE-DISCORD-TOKEN.secret"
API_KEY = "sk-FAKE-API-KEY-0123456789"
PASSWORD = "s3cr3t-pa55"
BASIC = base64.b64encode(f"user:{PASSWORD}".encode()).decode()  # what the client sends for it
SECRETS = (TOKEN, API_KEY, PASSWORD, BASIC)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """Undo what configure_logging does to the process-wide logging state."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LOGGERS}
    yield
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
        for kept in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(kept)
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def configure_into(settings: Settings, stream: io.StringIO) -> None:
    """`configure_logging` as main() calls it, its handler writing to `stream`."""
    before = list(logging.getLogger().handlers)
    configure_logging(settings)
    (added,) = [h for h in logging.getLogger().handlers if h not in before]
    assert isinstance(added, logging.StreamHandler)
    added.setStream(stream)


async def ask(model: OpenAIChatModel) -> None:
    messages = [{"role": "user", "content": "hi"}]
    try:
        async for _ in model.stream(messages, model="m", max_tokens=20, temperature=0, top_p=1):
            pass
    except LLMError:
        logging.getLogger("bot.test").exception("the model failed")


@pytest.mark.parametrize("colour", [True, False], ids=["terminal", "log-drain"])
async def test_no_secret_reaches_any_log_line_at_debug(
    root_logging, llm_server: FakeOpenAI, monkeypatch, colour: bool
):
    # discord.py formats in colour on a terminal, and its colour formatter re-renders tracebacks.
    monkeypatch.setattr(discord.utils, "stream_supports_colour", lambda stream: colour)
    base_url = llm_server.base_url.replace("http://", f"http://user:{PASSWORD}@")
    settings = load_settings(
        None,
        discord_token=TOKEN,
        openai_api_key=API_KEY,
        openai_base_url=base_url,
        log_level="DEBUG",
    )
    output = io.StringIO()
    configure_into(settings, output)
    retry_now = Reply(status=500, error_type="server_error", headers={"retry-after-ms": "1"})
    llm_server.then(Reply(text="fine"), retry_now, Reply(text="again"), unauthorized())

    async with openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=1,
        timeout=5,
    ) as client:
        model = OpenAIChatModel(client, answer_deadline=5)
        await ask(model)  # answered
        await ask(model)  # a 500, retried by the SDK, answered
        await ask(model)  # a 401: logged with its traceback
    log = logging.getLogger("bot.test")
    log.debug("settings at start: %r; url %s", settings, settings.openai_base_url)
    try:
        raise RuntimeError(f"cannot reach {base_url} with {API_KEY} as {TOKEN}")
    except RuntimeError:
        log.exception("failed with key %s", API_KEY, stack_info=True)

    text = output.getvalue()
    assert len(llm_server.requests) == 4  # the credentials really were used
    assert "HTTP Response: POST 200" in text  # the SDK's own debug lines are in the output
    assert "Traceback" in text and "RuntimeError: cannot reach" in text and "***" in text
    leaked = [line for line in text.splitlines() if any(s in line for s in SECRETS)]
    assert leaked == []


def test_a_url_setting_with_a_key_in_its_query_is_redacted_too(root_logging):
    # OPENAI_BASE_URL refuses a query string (the SDK cannot use one), so build the settings as a
    # future URL-valued setting would hold them.
    settings = Settings.model_construct(
        discord_token=SecretStr(TOKEN),
        openai_api_key=SecretStr(API_KEY),
        openai_base_url="https://proxy.example/v1?api-version=2024&api-key=QUERY-KEY-42",
    )
    redactor = RedactSecrets(settings.secret_values())

    line = redactor.redact("GET https://proxy.example/v1?api-version=2024&api-key=QUERY-KEY-42")

    assert line == "GET https://proxy.example/v1?api-version=2024&api-key=***"


def test_short_values_are_not_secrets_and_longer_ones_are_redacted_first():
    settings = Settings.model_construct(
        discord_token=SecretStr("abc"),  # a placeholder, not a credential: left alone
        openai_api_key=SecretStr("sk-LONG-KEY"),
        openai_base_url="http://LONG:sk-LONG-KEY-EXTRA@host/v1",
    )

    secrets = settings.secret_values()
    assert "abc" not in secrets and {"sk-LONG-KEY", "sk-LONG-KEY-EXTRA"} <= set(secrets)
    assert [len(s) for s in secrets] == sorted((len(s) for s in secrets), reverse=True)
    redactor = RedactSecrets(settings.secret_values())
    assert redactor.redact("abc sk-LONG-KEY-EXTRA sk-LONG-KEY") == "abc *** ***"
