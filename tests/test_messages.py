"""The message catalogue: every sentence in every language, and the commands' translations."""

from __future__ import annotations

import ast
import inspect
import re
import string
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest
from discord import app_commands

from bot import errors, messages
from bot.access import AccessPolicy
from bot.client import EXTENSIONS, ChatBot
from cogs._locale import CatalogueTranslator, interaction_locale, message_locale
from tests.test_command_tree import walk

CATALOGUE = Path(messages.__file__).parent
TRANSLATIONS = [locale for locale in messages.LOCALES if locale != messages.DEFAULT_LOCALE]
ENGLISH = messages.keys(messages.DEFAULT_LOCALE)
SENTENCES = sorted(ENGLISH)
COMMAND_NAMES = sorted(k for k in ENGLISH if k.startswith("command.") and k.endswith(".name"))


def sample(key: str) -> dict[str, object]:
    """Parameters for every placeholder a key uses in any language (numbers format anyhow)."""
    names = set().union(
        *(messages.placeholders(messages.template(locale, key)) for locale in messages.LOCALES)
    )
    return {name: 1234 for name in names}


def discord_name(name: str) -> bool:
    """Discord's rule for command and option names, lowercase where the script has case:
    ^[-_\\p{L}\\p{N}\\p{sc=Deva}\\p{sc=Thai}]{1,32}$"""
    if not 1 <= len(name) <= 32 or name != name.lower():
        return False
    for char in name:
        deva_or_thai = "\u0900" <= char <= "\u097f" or "\u0e00" <= char <= "\u0e7f"
        letter_or_number = unicodedata.category(char)[0] in "LN"
        if not (char in "-_" or letter_or_number or deva_or_thai):
            return False
    return True


# -- every key in every language --------------------------------------------------------------


def missing_and_extra(locale: str) -> tuple[set[str], set[str]]:
    own = messages.keys(locale)
    return ENGLISH - own, own - ENGLISH


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_every_key_has_every_language(locale):
    assert missing_and_extra(locale) == (set(), set())


def test_a_key_missing_from_one_language_is_caught(monkeypatch):
    monkeypatch.delitem(messages._catalogue("zh-TW"), "reply.cut_off")
    assert missing_and_extra("zh-TW") == ({"reply.cut_off"}, set())


def test_the_files_are_the_languages_and_no_more():
    assert sorted(p.stem for p in CATALOGUE.glob("*.toml")) == sorted(messages.LOCALES)


@pytest.mark.parametrize("locale", TRANSLATIONS)
@pytest.mark.parametrize("key", SENTENCES)
def test_a_translation_keeps_the_placeholders_of_english(locale, key):
    english = messages.placeholders(messages.template("en-US", key))
    translated = messages.translated(locale, key)
    assert translated is not None
    assert messages.placeholders(translated) == english, (locale, key)


@pytest.mark.parametrize("locale", messages.LOCALES)
def test_every_sentence_formats_with_its_parameters(locale):
    for key in SENTENCES:
        for count in (1, 2):
            sentence = messages.text(locale, key, **(sample(key) | {"count": count}))
            assert sentence.strip(), (locale, key)
            assert "{" not in sentence.replace("{{", ""), (locale, key)


def test_every_plural_has_an_other_form_and_counts_with_it():
    plurals = [k for k in SENTENCES if not isinstance(messages.template("en-US", k), str)]
    assert "ask.queue_notice" in plurals
    for key in plurals:
        assert "count" in messages.placeholders(messages.template("en-US", key)), key


# -- choosing the language and the form ---------------------------------------------------------


def test_other_locales_read_english():
    english = messages.text("en-US", "error.refused")
    for locale in ("en-GB", "fr", "de", "ja", None, "", "xx-YY"):
        assert messages.text(locale, "error.refused") == english, locale


def test_chinese_locales_read_their_script():
    assert messages.text("zh-CN", "access.dms_off") == "我不接受私信提问，请到服务器里问我。"
    assert messages.text("zh-TW", "access.dms_off") == "我不接受私訊提問，請到伺服器裡問我。"
    for locale, expected in [
        ("zh-HK", "zh-TW"),
        ("zh_TW", "zh-TW"),
        ("zh-Hant", "zh-TW"),
        ("ZH-cn", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-SG", "zh-CN"),
        ("zh-Hans-CN", "zh-CN"),
        (discord.Locale.taiwan_chinese, "zh-TW"),
        (discord.Locale.british_english, "en-US"),
    ]:
        assert messages.resolve_locale(locale) == expected, locale


def test_a_key_a_translation_lacks_falls_back_to_english(monkeypatch):
    catalogue = messages._catalogue("zh-CN")
    monkeypatch.delitem(catalogue, "error.refused")
    assert messages.text("zh-CN", "error.refused") == messages.text("en-US", "error.refused")
    assert messages.text("zh-TW", "error.refused") != messages.text("en-US", "error.refused")


def test_a_key_english_lacks_is_a_programming_error():
    with pytest.raises(KeyError, match=r"error\.no_such_thing"):
        messages.text("zh-CN", "error.no_such_thing")


def test_plural_forms_follow_the_count():
    assert messages.text("en-US", "ask.queue_notice", count=1) == (
        "⏳ Waiting for 1 earlier question in this channel to be answered…"
    )
    assert messages.text("en-US", "ask.queue_notice", count=3) == (
        "⏳ Waiting for 3 earlier questions in this channel to be answered…"
    )
    assert messages.text("en-US", "reset.forgot", count=0) == "forgot 0 rounds"
    assert messages.text("en-US", "reset.forgot", count=1200) == "forgot 1,200 rounds"
    assert messages.text("zh-CN", "reply.rounds_dropped", count=1) == (
        "为了放进模型的上下文，我省略了最早的 1 轮对话。"
    )


# -- the errors' keys ---------------------------------------------------------------------------


def error_instances():
    """One instance of every error in bot/errors.py, in every variant that changes its key."""
    for _, cls in inspect.getmembers(errors, inspect.isclass):
        if not issubclass(cls, errors.ChatlabError):
            continue
        if cls is errors.QueueFull:
            yield cls(3, per_member=True)
            yield cls(3, per_member=False)
        elif cls in (errors.Stopped, errors.Dropped):
            yield from (cls(reason) for reason in errors.Reason)
        elif cls is errors.PromptTooLong:
            yield cls(4000)
            yield cls(4000, tokens=5000, room=3000)
        elif cls is errors.QuestionTooLong:
            yield cls(5000, 3000)
        elif cls is errors.InvalidModel:
            yield cls("gpt-9", ("gpt-4o", "gpt-4.1"))
        elif cls is errors.RateLimited:
            yield cls("slow down", retry_after=30)
            yield cls("slow down")
        elif cls is errors.ModelNotFound:
            yield cls("missing", model="gpt-9")
        elif cls is errors.InvalidSetting:
            yield cls("temperature", "9", low=0, high=2)
            yield cls("mode", "x", choices=("mention", "chat", "threads"))
        elif cls is errors.ModeUnavailable:
            yield from (cls(reason) for reason in ("off", "dm", "thread"))
        elif cls is errors.ImagesNotSupported:
            yield cls("no images", "gpt-3.5-turbo")
        else:
            yield cls("why")


@pytest.mark.parametrize("locale", messages.LOCALES)
def test_every_error_has_a_sentence_with_its_arguments(locale):
    seen = set()
    for error in error_instances():
        sentence = messages.text(locale, error.message_key, **error.params)
        assert sentence and "{" not in sentence, error.message_key
        seen.add(error.message_key)
    assert {"error.stopped_stop", "error.dropped_reset", "error.prompt_too_many_tokens"} <= seen
    assert {
        "channel_setting.invalid.temperature",
        "channel_setting.invalid.mode",
        "channel_setting.unavailable.thread",
        "attachment.images_not_supported",
    } <= seen
    assert "error.unexpected" in ENGLISH


def test_the_two_new_error_sentences():
    assert messages.text("en-US", "error.empty_prompt") == (
        "The system prompt is empty; use /system clear to go back to the default."
    )
    too_long = errors.PromptTooLong(4000, tokens=3900, room=3000)
    assert messages.text("en-US", too_long.message_key, **too_long.params) == (
        "That system prompt is 3900 tokens; this model has room for 3000."
    )


# -- the written Chinese ------------------------------------------------------------------------

# Words that differ between mainland and Taiwan usage, not only in script (Simplified, Traditional).
REGIONAL = [
    ("服务器", "伺服器"),
    ("频道", "頻道"),
    ("默认", "預設"),
    ("文件", "檔案"),
    ("设置", "設定"),
    ("数据库", "資料庫"),
    ("超时", "逾時"),
    ("私信", "私訊"),
    ("字符", "字元"),
    ("导出", "匯出"),
    ("信息", "資訊"),
    ("消息", "訊息"),
]


def test_each_chinese_uses_its_own_words():
    simplified = "".join(messages.text("zh-CN", k, **sample(k)) for k in SENTENCES)
    traditional = "".join(messages.text("zh-TW", k, **sample(k)) for k in SENTENCES)
    for mainland, taiwan in REGIONAL:
        assert mainland in simplified and taiwan in traditional, (mainland, taiwan)
        assert mainland not in traditional and taiwan not in simplified, (mainland, taiwan)


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_chinese_keeps_markdown_emoji_and_slash_commands_consistent(locale):
    names = {
        messages.text(locale, k): messages.text("en-US", k)
        for k in COMMAND_NAMES
        if ".option." not in k
    }
    for key in SENTENCES:
        english = messages.text("en-US", key, **sample(key))
        translated = messages.text(locale, key, **sample(key))
        for mark in ("⏳", "✂️", "⏹️", "**", "`", "→", "\n"):
            assert english.count(mark) == translated.count(mark), (locale, key, mark)
        # A command named in a sentence is named as the member's client shows it.
        for name in re.findall(r"/([\w-]+)", translated):
            assert name in names, (locale, key, name)


# -- slash commands -----------------------------------------------------------------------------


@pytest.mark.parametrize("locale", messages.LOCALES)
def test_command_names_and_descriptions_fit_discord(locale):
    for key in ENGLISH:
        if not key.startswith("command."):
            continue
        value = messages.text(locale, key)
        if key.endswith(".name"):
            assert discord_name(value), (locale, key, value)
        elif key.endswith(".description"):
            assert 1 <= len(value) <= 100, (locale, key, value)
        else:  # a choice's name
            assert 1 <= len(value) <= 100, (locale, key, value)


@pytest.mark.parametrize("locale", TRANSLATIONS)
def test_names_are_unique_where_discord_needs_them(locale):
    """Top-level commands, a group's subcommands, a command's options: no two alike."""
    siblings: dict[str, list[str]] = {}
    for key in COMMAND_NAMES:
        owner, option, _ = key.partition(".option.")
        level = owner + "#options" if option else key.removesuffix(".name").rsplit(".", 1)[0]
        siblings.setdefault(level, []).append(messages.text(locale, key))
    assert len(siblings) > 5
    for level, names in siblings.items():
        assert len(names) == len(set(names)), (locale, level, names)


def test_the_name_rule_is_discords():
    assert discord_name("提问") and discord_name("system") and discord_name("a-b_c2")
    assert not discord_name("Ask") and not discord_name("two words") and not discord_name("")
    assert not discord_name("x" * 33) and not discord_name("问？")


@pytest.fixture
async def tree(service, store):
    bot = ChatBot(service=service, store=store, access=AccessPolicy(), sync_on_start=False)
    for extension in EXTENSIONS:
        await bot.load_extension(extension)
    await bot.tree.set_translator(CatalogueTranslator())
    try:
        yield bot.tree
    finally:
        await bot.close()


def test_english_command_strings_are_the_commands_own(tree):
    """en-US is the default Discord shows: the catalogue must say what the commands say."""
    for command in walk(tree.get_commands()):
        key = "command." + command.qualified_name.replace(" ", ".")
        assert messages.text("en-US", f"{key}.name") == command.name
        assert messages.text("en-US", f"{key}.description") == command.description
        for parameter in getattr(command, "parameters", []):
            option = f"{key}.option.{parameter.name}"
            assert messages.text("en-US", f"{option}.name") == parameter.display_name
            assert messages.text("en-US", f"{option}.description") == parameter.description
    commands = {c.qualified_name.replace(" ", ".") for c in walk(tree.get_commands())}
    catalogued = {
        key.removeprefix("command.").removesuffix(".name")
        for key in COMMAND_NAMES
        if ".option." not in key
    }
    assert catalogued == commands
    (menu,) = tree.get_commands(type=discord.AppCommandType.message)
    assert messages.text("en-US", "context.ask.name") == menu.name


async def test_the_synced_payload_carries_chinese_names_and_descriptions(tree):
    translator = tree.translator
    assert translator is not None
    payloads = {
        c.name: await c.get_translated_payload(tree, translator)
        for c in tree.get_commands(type=discord.AppCommandType.chat_input)
    }

    ask = payloads["ask"]
    assert ask["name_localizations"] == {"zh-CN": "提问", "zh-TW": "提問"}
    assert ask["description_localizations"]["zh-TW"] == "在這個頻道的對話中向模型提問。"
    question, file = ask["options"]
    assert question["name_localizations"] == {"zh-CN": "问题", "zh-TW": "問題"}
    assert (file["name_localizations"], file["required"]) == (
        {"zh-CN": "文件", "zh-TW": "檔案"},
        False,
    )
    assert question["description_localizations"]["zh-CN"] == "你想在本频道的对话中问的问题"

    system = payloads["system"]
    assert system["name_localizations"] == {"zh-CN": "提示词", "zh-TW": "提示詞"}
    subcommands = {o["name"]: o for o in system["options"]}
    assert subcommands["set"]["name_localizations"] == {"zh-CN": "设置", "zh-TW": "設定"}
    (prompt,) = subcommands["set"]["options"]
    assert prompt["name_localizations"] == {"zh-CN": "内容", "zh-TW": "內容"}
    assert subcommands["clear"]["description_localizations"]["zh-TW"].startswith("清除這個頻道")

    assert payloads["export"]["name_localizations"] == {"zh-CN": "导出", "zh-TW": "匯出"}
    for payload in payloads.values():
        assert set(payload["name_localizations"]) == {"zh-CN", "zh-TW"}, payload["name"]
        assert set(payload["description_localizations"]) == {"zh-CN", "zh-TW"}, payload["name"]


async def test_the_translator_answers_only_for_chinese(tree):
    translator = tree.translator
    ask = tree.get_command("ask")
    context = app_commands.TranslationContext(
        app_commands.TranslationContextLocation.command_name, ask
    )
    name = app_commands.locale_str("ask")
    assert await translator.translate(name, discord.Locale.chinese, context) == "提问"
    assert await translator.translate(name, discord.Locale.taiwan_chinese, context) == "提問"
    for other in (discord.Locale.american_english, discord.Locale.british_english, "ja"):
        locale = discord.Locale(other) if isinstance(other, str) else other
        assert await translator.translate(name, locale, context) is None


async def test_choices_are_translated_by_value_or_by_their_key(tree):
    translator = tree.translator
    choice_name = app_commands.TranslationContextLocation.choice_name
    # A value only one command's choices use is found by its value...
    minimal = app_commands.Choice(name=app_commands.locale_str("minimal"), value="minimal")
    context = app_commands.TranslationContext(choice_name, minimal)
    assert await translator.translate(minimal._locale_name, discord.Locale.chinese, context) == (
        "最低"
    )
    # ... one several commands use ("default") names its key.
    key = "command.model.choice.default"
    default = app_commands.Choice(name=app_commands.locale_str("default", key=key), value="default")
    payload = await default.get_translated_payload_for_locale(
        translator, discord.Locale.taiwan_chinese
    )
    assert payload == {"name": "預設", "value": "default"}
    model = app_commands.Choice(name="gpt-4o", value="gpt-4o")  # a model's name stays as it is
    context = app_commands.TranslationContext(choice_name, model)
    assert (
        await translator.translate(
            app_commands.locale_str("gpt-4o"), discord.Locale.chinese, context
        )
        is None
    )
    keyed = app_commands.locale_str("whatever", key="command.reset.name")
    other = app_commands.TranslationContext(app_commands.TranslationContextLocation.other, None)
    assert await translator.translate(keyed, discord.Locale.chinese, other) == "重置"


# -- the member's locale ------------------------------------------------------------------------


def test_a_commands_language_is_the_members_client():
    interaction = SimpleNamespace(locale=discord.Locale.taiwan_chinese)
    assert interaction_locale(interaction) == "zh-TW"  # type: ignore[arg-type]


def test_a_mention_is_answered_in_the_servers_language_and_a_dm_in_english():
    in_guild = SimpleNamespace(guild=SimpleNamespace(preferred_locale=discord.Locale.chinese))
    in_dm = SimpleNamespace(guild=None)
    assert message_locale(in_guild) == "zh-CN"  # type: ignore[arg-type]
    assert message_locale(in_dm) == "en-US"  # type: ignore[arg-type]
    assert messages.text(message_locale(in_guild), "history.empty") == "还没有对话。"  # type: ignore[arg-type]


def test_placeholders_are_read_like_str_format():
    assert messages.placeholders("{a} {b:,} {{c}} {d!r}") == {"a", "b", "d"}
    assert [f for _, f, _, _ in string.Formatter().parse("{count:,}") if f] == ["count"]


def test_every_key_the_code_names_is_in_the_catalogue():
    """A sentence key written as a literal anywhere in bot/ or cogs/ exists in English."""
    families = "|".join(sorted({key.split(".")[0] for key in ENGLISH}))
    looks_like_a_key = re.compile(rf"^({families})(\.[a-z_]*[a-z])+$")  # not an f-string part
    root = Path(__file__).parent.parent
    named = {
        node.value
        for source in [*root.glob("bot/**/*.py"), *root.glob("cogs/*.py")]
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8")))
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and looks_like_a_key.match(node.value)
    }
    assert len(named) > 20
    assert named - ENGLISH == set()
