"""Commands are synced deliberately: globally only when the tree changed, or to a dev guild."""

from __future__ import annotations

import logging

import pytest

from bot.access import AccessPolicy
from bot.chat import ChatService
from bot.client import TREE_FINGERPRINT_KEY, ChatBot
from tests.conftest import make_config


def global_syncs(env):
    return [
        r
        for r in env.http_requests
        if r.method == "PUT" and r.path.endswith("/commands") and "/guilds/" not in r.path
    ]


async def test_first_start_syncs_globally_and_a_restart_with_the_same_tree_does_not(
    world, store, chat_model
):
    assert len(global_syncs(world.env)) == 1
    assert await store.get_meta(TREE_FINGERPRINT_KEY)

    same = ChatBot(
        service=ChatService(store, chat_model, make_config()), store=store, access=AccessPolicy()
    )
    await world.env.restart_bot(same)

    assert len(global_syncs(world.env)) == 1
    assert "ask" in world.alice.available_commands(world.channel)  # still there


async def test_a_changed_tree_is_synced_again(world, store, chat_model):
    await store.set_meta(TREE_FINGERPRINT_KEY, "an older tree")
    again = ChatBot(
        service=ChatService(store, chat_model, make_config()), store=store, access=AccessPolicy()
    )

    await world.env.restart_bot(again)

    assert len(global_syncs(world.env)) == 2


async def test_a_dev_guild_gets_its_commands_at_every_start(world, store, chat_model):
    dev = ChatBot(
        service=ChatService(store, chat_model, make_config()),
        store=store,
        access=AccessPolicy(),
        dev_guild_id=world.guild.id,
    )

    await world.env.restart_bot(dev)

    guild_syncs = [
        r
        for r in world.env.http_requests
        if r.method == "PUT" and r.path.endswith(f"/guilds/{world.guild.id}/commands")
    ]
    assert len(guild_syncs) == 1
    assert len(global_syncs(world.env)) == 1  # only the first start's global sync


@pytest.fixture
def info_logs(caplog):
    caplog.set_level(logging.INFO, logger="bot")
    return caplog


async def test_the_invite_url_asks_for_both_scopes_and_only_the_needed_permissions(
    info_logs, simcord_env
):
    caplog = info_logs
    from urllib.parse import parse_qs, urlparse

    import discord

    logged = caplog.get_records("setup")  # the bot connected while the fixture set it up
    (line,) = [r.getMessage() for r in logged if "Invite URL" in r.getMessage()]
    query = parse_qs(urlparse(line.split("Invite URL: ")[1]).query)

    assert query["scope"] == ["bot applications.commands"]
    granted = discord.Permissions(int(query["permissions"][0]))
    assert not granted.administrator and not granted.mention_everyone
    assert not granted.manage_messages and not granted.manage_channels
    assert granted.send_messages and granted.send_messages_in_threads and granted.add_reactions


async def test_asking_for_a_sync_pushes_the_tree_globally_even_if_unchanged(world):
    # What `python -m bot sync` does once logged in.
    await world.env.bot.sync_commands(force_global=True)

    assert len(global_syncs(world.env)) == 2
