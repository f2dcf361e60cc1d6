"""Streaming cadence, on simcord's virtual clock: deterministic, no real waiting.

The model writes a token every 0.6 s (virtual) for about 7 s. The first words must be sent as
soon as the first token arrives; after that each message is edited at most once a second while
the answer grows, and once more, at the end, without the in-progress marker.
"""

from __future__ import annotations

import itertools

import pytest

from tests.scripted_model import ScriptedModel

TOKENS = [f"word{n} " for n in range(12)]
PACE = 0.6


# Sleeps longer than the settle timeout park at once, so advance_time alone moves them: each
# step below is exactly 0.1 virtual seconds, however busy the machine is.
@pytest.mark.simcord(settle_timeout=0.5)
@pytest.mark.parametrize("chat_model", [ScriptedModel(TOKENS, pace=PACE, first_delay=PACE)])
async def test_edits_at_most_once_a_second_and_first_words_at_once(world):
    env = world.env
    start = env.now()
    env.backend.create_message(world.channel.id, world.alice.id, f"{world.bot_mention} talk")

    seen = 0
    writes: list[tuple[float, str, str]] = []  # (virtual seconds, method, content)
    for _ in range(100):  # 10 virtual seconds in steps of 0.1
        await env.advance_time(0.1)
        requests = [
            r
            for r in env.http_requests
            if r.method in ("POST", "PATCH") and r.path.startswith("/channels/") and r.json
        ]
        for request in requests[seen:]:
            elapsed = (env.now() - start).total_seconds()
            writes.append((elapsed, request.method, request.json.get("content", "")))
        seen = len(requests)

    first_token_at = PACE
    (sent_at, method, content) = writes[0]
    assert method == "POST" and content == "word0 ⏳"
    assert sent_at - first_token_at <= 0.1 + 1e-9  # within the step the first token arrived in

    edits = [(t, c) for t, m, c in writes if m == "PATCH"]
    progress = [t for t, c in edits if c.endswith("⏳")]
    assert len(progress) >= 2
    moments = [sent_at, *progress]
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    assert all(gap >= 1.0 - 1e-9 for gap in gaps), gaps
    final_at, final = edits[-1]
    last_token_at = first_token_at + PACE * (len(TOKENS) - 1)
    assert final == "".join(TOKENS).strip() and final_at <= last_token_at + 0.1 + 1e-9
    assert all(not c.endswith("⏳") for t, c in edits if t >= final_at)
