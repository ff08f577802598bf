"""GET /v2/{endpoint}/{job_id}/webhooks: a job's webhook deliveries and their attempts.

Only for the key that owns the job, under the job's endpoint, while the job is
within retention (the status poll's rule: anything else is 404).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ltxserve.api.deps import Keys, Manager, run_store
from ltxserve.api.errors import JSONBytes
from ltxserve.api.status import iso_ms
from ltxserve.errors import NotFoundError
from ltxserve.jobs.contract.requests import ENDPOINTS
from ltxserve.jobs.store.base import Delivery

router = APIRouter()

# The request extension and the answer, as /openapi.json serves them (api/openapi.py)
CALLBACK_URL: dict[str, Any] = {
    "type": "string",
    "format": "uri",
    "maxLength": 2048,
    "description": "Webhook target for this job (docs/webhooks.md): a signed POST (Standard "
    "Webhooks) with the status object when the job completes or fails, retried for 24 h. "
    "Overrides the API key's default. https:// (http:// where the server allows it); "
    "addresses that are loopback, private or reserved are refused.",
}
_ISO: dict[str, Any] = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
WEBHOOK_SCHEMAS: dict[str, dict[str, Any]] = {
    "WebhookDeliveries": {
        "type": "object",
        "required": ["job_id", "deliveries"],
        "properties": {
            "job_id": {"type": "string"},
            "deliveries": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/WebhookDelivery"},
            },
        },
    },
    "WebhookDelivery": {
        "type": "object",
        "required": ["id", "event", "url", "status", "created_at", "attempts"],
        "properties": {
            "id": {"type": "string", "description": "The webhook-id header of every attempt"},
            "event": {
                "type": "string",
                "enum": ["job.completed", "job.failed"],
                "description": "The message's `type`",
            },
            "url": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "succeeded", "failed"]},
            "created_at": {"type": "string", "format": "date-time"},
            "next_attempt_at": _ISO,
            "completed_at": _ISO,
            "attempts": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["at", "duration_ms", "status_code", "error"],
                    "properties": {
                        "at": {"type": "string", "format": "date-time"},
                        "duration_ms": {"type": "integer", "minimum": 0},
                        "status_code": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                        "error": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    },
                },
            },
        },
    },
}


def _iso(ms: int | None) -> str | None:
    return iso_ms(ms) if ms is not None else None


def delivery_body(d: Delivery) -> dict[str, Any]:
    """A delivery as the endpoint shows it (schema WebhookDelivery, docs/webhooks.md)."""
    return {
        "id": d.id,
        "event": d.event,
        "url": d.url,
        "status": d.state,
        "created_at": iso_ms(d.created_at),
        "next_attempt_at": _iso(d.next_attempt_at),
        "completed_at": _iso(d.completed_at),
        "attempts": [
            {
                "at": iso_ms(a["at"]),
                "duration_ms": a["duration_ms"],
                "status_code": a["status_code"],
                "error": a["error"],
            }
            for a in d.log
        ],
    }


@router.get("/v2/{endpoint}/{job_id}/webhooks", include_in_schema=False)
async def list_deliveries(
    endpoint: str, job_id: str, request: Request, manager: Manager, keys: Keys
) -> Response:
    key_id = await keys.key_id(request.headers.get("authorization"))
    if endpoint not in ENDPOINTS:
        raise NotFoundError(f"Job {job_id} not found")
    await run_store(manager, manager.get, key_id, endpoint, job_id)  # owner, endpoint, retention
    found = await run_store(manager, manager.deliveries.of_job, job_id)
    return JSONBytes({"job_id": job_id, "deliveries": [delivery_body(d) for d in found]})
