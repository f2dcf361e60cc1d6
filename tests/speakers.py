"""What the model is sent for a member's message, spelled out for tests' expectations."""

from __future__ import annotations

import json


def said(name: str, member_id: int | None, text: str) -> str:
    """A member's message as the model receives it: one compact JSON object."""
    framed = {"from": name} | ({} if member_id is None else {"id": str(member_id)})
    return json.dumps(framed | {"message": text}, ensure_ascii=False, separators=(",", ":"))
