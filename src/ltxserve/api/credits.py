"""``GET /v2/credits``: the calling key's credits (an extension; docs/credits.md).

So a client can show what it may still spend before it submits, rather than
learn it from a 402. Answers whatever the setting: with credits off,
``enabled`` is false and no submit is held to the balance.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve.api.deps import Config, Keys, Manager, run_store
from ltxserve.api.errors import JSONBytes

router = APIRouter()


@router.get("/v2/credits", include_in_schema=False)
async def get_credits(request: Request, manager: Manager, keys: Keys, settings: Config) -> Response:
    key_id = await keys.key_id(request.headers.get("authorization"))
    credits = await run_store(manager, manager.credits, key_id)
    return JSONBytes(
        {"enabled": settings.credits, "balance": credits.balance, "held": credits.held}
    )
