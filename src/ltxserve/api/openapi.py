"""GET /openapi.json: the contract, plus what this server adds, each addition marked.

The base is the contract itself (``data/openapi.json``, a byte-identical copy of
``tests/contract/openapi.json``; a test keeps them equal). Everything ltxserve adds
carries ``x-ltxserve-extension: true`` at the point where it is added: a new path
or operation, a new property, a parameter, or an ``anyOf`` branch that widens a
contract type (models from this server's model table, ``duration: null``, more
audio-to-video resolutions). A client generated from the document without the
extensions still speaks the hosted API.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from importlib import resources
from typing import Any

from ltxserve import __version__
from ltxserve.api.webhooks import CALLBACK_URL, WEBHOOK_SCHEMAS
from ltxserve.jobs.contract.catalog import Catalog
from ltxserve.webhooks.callback import FIELD as CALLBACK_FIELD

EXT = "x-ltxserve-extension"
SIMULATE_HEADER = "X-Ltxserve-Simulate"

# request schema -> (endpoint, model enum schema)
_MODEL_SCHEMAS = {
    "TextToVideoRequest": ("text-to-video", "TextToVideoRequestModel"),
    "ImageToVideoRequest": ("image-to-video", "ImageToVideoRequestModel"),
    "AudioToVideoRequest": ("audio-to-video", "AudioToVideoRequestModel"),
    "EditVideoRequest": ("retake", "EditVideoRequestModel"),
    "ExtendVideoRequest": ("extend", "ExtendVideoRequestModel"),
    "VideoToVideoReframeRequest": ("video-to-video-reframe", "VideoToVideoReframeRequestModel"),
}


@cache
def contract() -> dict[str, Any]:
    text = resources.files("ltxserve").joinpath("data/openapi.json").read_text()
    doc: dict[str, Any] = json.loads(text)
    return doc


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _op(summary: str, description: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        EXT: True,
        "summary": summary,
        "description": description,
        "tags": ["ltxserve"],
        "responses": responses,
        **extra,
    }


def _ok(description: str, media: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"description": description, "content": {media: {"schema": schema or {}}}}


def _path_param(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


_ENDPOINT_NAMES = [
    "text-to-video",
    "image-to-video",
    "audio-to-video",
    "retake",
    "extend",
    "video-to-video-hdr",
    "video-to-video-reframe",
]
_LISTED_JOB: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/V2JobStatusResponse"},
        {
            "type": "object",
            "required": ["endpoint"],
            "properties": {
                "endpoint": {
                    "type": "string",
                    "description": "The operation that made the job (its path after /v2/).",
                }
            },
        },
    ]
}

EXTENSION_PATHS: dict[str, dict[str, Any]] = {
    # A new operation on a documented path: only the operation is added (and marked).
    "/v2/{endpoint}/{id}": {
        "delete": _op(
            "Cancel a job",
            "Ends a pending or processing job of this API key as `failed` with error type "
            "`cancelled_error` and answers its status object. A pending job never starts; a "
            "running one is stopped at the engine's next progress report (the worker keeps its "
            "model loaded). Cancelling a cancelled job answers the same object again; a job "
            "that completed, or failed for another reason, answers 409 "
            "`invalid_request_error`. Same 404 rules as the status poll (unknown id, another "
            "key's job, another endpoint, past retention).",
            {
                "200": {
                    "description": "The cancelled job's status object",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/V2JobStatusResponse"}
                        }
                    },
                },
                "401": _error("Authentication failed (authentication_error)"),
                "404": _error("No such job for this key and endpoint (not_found_error)"),
                "409": _error("The job already completed or failed (invalid_request_error)"),
                "503": _error("Database unavailable (service_unavailable)"),
            },
            operationId="cancel-job",
            parameters=[
                _path_param("id", "Job ID returned from the submit endpoint."),
                {
                    **_path_param("endpoint", "The endpoint the job was submitted to."),
                    "schema": {"$ref": "#/components/schemas/V2EndpointIdGetParametersEndpoint"},
                },
                {
                    "name": "Authorization",
                    "in": "header",
                    "required": True,
                    "description": "API key authentication",
                    "schema": {"type": "string"},
                },
            ],
        )
    },
    "/v2/jobs": {
        "get": _op(
            "List jobs",
            "The calling key's jobs, newest first, a page at a time (docs/api.md, \"Listing "
            "jobs\"). Each item is the job's status object, as `GET /v2/{endpoint}/{id}` "
            "answers it, plus its `endpoint`. Jobs of other keys and jobs past retention are "
            "never listed. Pass `next_cursor` back as `cursor` (with the same filters) for the "
            "next page; jobs submitted meanwhile never make a page repeat or skip a job.",
            {
                "200": _ok(
                    "A page of jobs",
                    "application/json",
                    {
                        "type": "object",
                        "required": ["data", "has_more", "next_cursor"],
                        "properties": {
                            "data": {"type": "array", "items": _LISTED_JOB},
                            "has_more": {"type": "boolean"},
                            "next_cursor": {
                                "type": ["string", "null"],
                                "description": "Opaque; null on the last page.",
                            },
                        },
                    },
                ),
                "400": _error("A malformed parameter or cursor (invalid_request_error)"),
                "401": _error("Missing or invalid key (authentication_error)"),
            },
            parameters=[
                _query(
                    "endpoint",
                    "Only jobs of these operations (repeat it, or separate with commas).",
                    {"type": "string", "enum": _ENDPOINT_NAMES},
                ),
                _query(
                    "status",
                    "Only jobs in these states (repeat it, or separate with commas).",
                    {"type": "string", "enum": ["pending", "processing", "completed", "failed"]},
                ),
                _query(
                    "created_after",
                    "Only jobs created after this time (ISO 8601; UTC without an offset).",
                    {"type": "string", "format": "date-time"},
                ),
                _query(
                    "created_before",
                    "Only jobs created before this time (ISO 8601; UTC without an offset).",
                    {"type": "string", "format": "date-time"},
                ),
                _query(
                    "limit",
                    "Jobs per page (default 20).",
                    {"type": "integer", "minimum": 1, "maximum": 100},
                ),
                _query("cursor", "The previous page's `next_cursor`.", {"type": "string"}),
            ],
        )
    },
    "/healthz": {
        "get": _op(
            "Liveness",
            "Answers without an API key, for load balancers and tests.",
            {
                "200": _ok(
                    "The server is up",
                    "application/json",
                    {"type": "object", "properties": {"status": {"const": "ok"}}},
                )
            },
        )
    },
    "/readyz": {
        "get": _op(
            "Readiness",
            "Answers 200 when this API process reaches its database (a trivial query) and its "
            "blob store (a trivial check), each within 5 s; else 503 `service_unavailable` "
            "naming what is unreachable (the server log says why). No API key. For load "
            "balancers and readiness probes (docs/operations.md).",
            {
                "200": _ok(
                    "Ready",
                    "application/json",
                    {
                        "type": "object",
                        "properties": {
                            "status": {"const": "ready"},
                            "checks": {
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                ),
                "503": _error("Database or storage unreachable (service_unavailable)"),
            },
        )
    },
    "/v2/{endpoint}/{job_id}/events": {
        "get": _op(
            "Live events of a job",
            "The job's status as Server-Sent Events (`text/event-stream`): one `status` event "
            "with the state at connect, one per change of status or progress, the terminal "
            "status object last, then the stream ends. Each event's `data` is the object "
            "`GET /v2/{endpoint}/{job_id}` answers; its `id` is the job's version, which grows "
            "with every change, so a client reconnecting with `Last-Event-ID` is sent the "
            "current state only if it moved, never a repeat. A comment line (`: keep-alive`) "
            "is sent while nothing changes. Works across API processes (PostgreSQL "
            "LISTEN/NOTIFY). Same key, endpoint and retention rules as the status poll. The "
            "hosted API has no such route: clients fall back to polling on 404 (docs/api.md).",
            {
                "200": _ok(
                    "The event stream",
                    "text/event-stream",
                    {"type": "string"},
                ),
                "401": _error("Missing or invalid key (authentication_error)"),
                "404": _error("No such job for this key and endpoint (not_found_error)"),
            },
            parameters=[
                _path_param("endpoint", "The endpoint the job was submitted to"),
                _path_param("job_id", "The job's id"),
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "description": "The id of the last event received: only newer state is sent.",
                    "schema": {"type": "string"},
                },
            ],
        )
    },
    "/metrics": {
        "get": _op(
            "Prometheus metrics",
            "Prometheus text exposition format: jobs by state and endpoint and queue depth "
            "(read from the database), job duration and queue wait per endpoint and engine, "
            "HTTP latency by route, webhook deliveries, summed over this machine's ltxserve "
            "processes. No API key; keep it on the operator's network (docs/operations.md).",
            {"200": _ok("The metrics", "text/plain", {"type": "string"})},
        )
    },
    "/files/{key}": {
        "get": _op(
            "Download a result",
            "The `result` URLs of a completed job point here. Signed (`expires`, `signature`), so "
            "no API key is needed, like a pre-signed S3 URL; valid until the job's retention ends. "
            "`key` may contain `/`. Honours `Range` (206). HEAD answers the same headers.",
            {
                "200": _ok(
                    "The file (video/mp4, or application/zip for HDR frames)",
                    "application/octet-stream",
                    {"type": "string", "format": "binary"},
                ),
                "206": {"description": "The requested range"},
                "403": _error("Bad or expired signature (authentication_error)"),
                "404": _error("No such file (not_found_error)"),
            },
            parameters=[
                _path_param("key", "Blob key, e.g. jobs/<id>/video.mp4"),
                {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "signature",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
        )
    },
    "/uploads/{upload_id}": {
        "put": _op(
            "Upload target",
            "The `upload_url` that POST /v1/upload answers: PUT the raw bytes with the "
            "`required_headers`. Signed; no API key.",
            {
                "200": {"description": "Stored"},
                "403": _error("Bad or expired signature (authentication_error)"),
                "409": _error("A file was already uploaded to this URL (invalid_request_error)"),
                "413": _error("Over the upload limit (request_too_large)"),
            },
            parameters=[
                _path_param("upload_id", "From upload_url"),
                {"name": "expires", "in": "query", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "signature",
                    "in": "query",
                    "required": True,
                    "schema": {"type": "string"},
                },
            ],
            requestBody={
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                }
            },
        )
    },
    "/": {
        "get": _op(
            "Web playground",
            "The browser playground (docs/web.md).",
            {"200": _ok("HTML page", "text/html")},
        )
    },
    "/web/models.json": {
        "get": _op(
            "Model table",
            "What this server's models accept, as the playground's forms use it.",
            {"200": _ok("The model table", "application/json", {"type": "object"})},
        )
    },
    "/web/server.json": {
        "get": _op(
            "Engine of this server",
            "Which engine `serve` runs its workers with (`auto` resolved; null on an "
            "API-only process), so the playground can say when it is not a model.",
            {"200": _ok("Engine and version", "application/json", {"type": "object"})},
        )
    },
    "/web/key": {
        "get": _op(
            "Key check",
            "200 with the key's id for an accepted `Authorization: Bearer` key, else the "
            "documented 401; touches no job.",
            {
                "200": _ok("The key is accepted", "application/json", {"type": "object"}),
                "401": _error("Missing or invalid key"),
            },
        )
    },
    "/web/{name}": {
        "get": _op(
            "Playground assets",
            "Static files of the playground.",
            {"200": {"description": "The file"}, "404": _error("No such file")},
            parameters=[_path_param("name", "File name")],
        )
    },
    "/v2/credits": {
        "get": _op(
            "Credits of the calling key",
            "The key's `balance` (credits it may still spend) and `held` (set aside by its "
            "pending and processing jobs), whole credits; `enabled` says whether this server "
            "holds submits to the balance (`LTXSERVE_CREDITS`). With credits on, a submit "
            "holds its estimated cost and answers 402 `insufficient_funds_error` when it "
            "does not fit; the hold is charged on `completed`, released on `failed` "
            "(docs/credits.md).",
            {
                "200": _ok(
                    "The key's credits",
                    "application/json",
                    {
                        "type": "object",
                        "properties": {
                            "enabled": {"type": "boolean"},
                            "balance": {"type": "integer"},
                            "held": {"type": "integer"},
                        },
                        "required": ["enabled", "balance", "held"],
                    },
                ),
                "401": _error("Missing or invalid key"),
            },
        )
    },
    "/openapi.json": {
        "get": _op(
            "This document",
            f"The contract plus ltxserve's extensions, each marked `{EXT}: true`.",
            {"200": _ok("OpenAPI 3.1 document", "application/json")},
        )
    },
    "/docs": {
        "get": _op(
            "API reference",
            "This document rendered by Swagger UI, served from this server (no CDN).",
            {"200": _ok("HTML page", "text/html")},
        )
    },
    "/v2/{endpoint}/{job_id}/webhooks": {
        "get": _op(
            "Webhook deliveries of a job",
            "The job's webhook messages (docs/webhooks.md) and every attempt to deliver them: "
            "when, how long, the receiver's HTTP status or the error. Only for the key that "
            "submitted the job, while the job is within retention (else 404).",
            {
                "200": _ok(
                    "The deliveries, oldest first",
                    "application/json",
                    {"$ref": "#/components/schemas/WebhookDeliveries"},
                ),
                "401": _error("Missing or invalid key"),
                "404": _error("No such job for this key (not_found_error)"),
            },
            parameters=[
                _path_param("endpoint", "The job's endpoint, e.g. text-to-video"),
                _path_param("job_id", "The job's id"),
            ],
        )
    },
    "/docs/{asset}": {
        "get": _op(
            "API reference assets",
            "Swagger UI's script and style sheet, shipped in the package.",
            {"200": {"description": "The file"}, "404": _error("No such file")},
            parameters=[_path_param("asset", "File name")],
        )
    },
}

SIMULATE_PARAMETER: dict[str, Any] = {
    EXT: True,
    "name": SIMULATE_HEADER,
    "in": "header",
    "required": False,
    "description": "Client-testing mode (docs/simulate.md). Honoured only for API keys created "
    "with `ltxserve keys create --simulate`; a 400 for any other key. "
    "Comma-separated directives: `submit=<429|500|503|error type>`, "
    "`retry_after=<s>`, `processing=<s>`, `fail=<error type>`, `message=<text>`.",
    "schema": {"type": "string"},
    "example": "processing=3, fail=content_filtered_error",
}

PROGRESS_TEXT = {
    "V2JobPendingStatus": "Always 0.",
    "V2JobProcessingStatus": "Fraction done, when the engine reports it.",
    "V2JobCompletedStatus": "Always 1.",
    "V2JobFailedStatus": "The fraction reached before the job failed (a cancelled job: "
    "where it stopped), when the engine had reported any.",
}


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    EXT: True,
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": 'Makes a retried submit safe (docs/api.md, "Idempotency"): the same key '
    "and the same request (path and JSON body) within 24 h answer the job the first one made "
    "(same id, 202, with the response header `Idempotent-Replayed: true`) and make no "
    "other; the same key with another request answers 409 `invalid_request_error`. Per API "
    "key; 1 to 255 printable ASCII characters without spaces (else 400). Only an accepted "
    "submit is remembered. On /v1, a retry with the key waits for the same job, which a "
    "dropped connection does not fail.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "example": "5f0c1b8e-3d2a-4b6c-9e1f-7a8b9c0d1e2f",
}
IDEMPOTENCY_CONFLICT: dict[str, Any] = {
    **_error("Idempotency-Key already used with another request (invalid_request_error)"),
    EXT: True,
}


def _widen(prop: dict[str, Any], branch: dict[str, Any]) -> dict[str, Any]:
    """A contract property that also takes ``branch`` (marked as the extension)."""
    base = {k: v for k, v in prop.items() if k != "description"}
    out: dict[str, Any] = {"anyOf": [base, {**branch, EXT: True}]}
    if "description" in prop:
        out["description"] = prop["description"]
    return out


def build(catalog: Catalog, base_url: str) -> dict[str, Any]:
    """The served document for this server's model table and address."""
    doc = copy.deepcopy(contract())
    schemas = doc["components"]["schemas"]
    doc["info"]["x-ltxserve-version"] = __version__
    doc["servers"] = [
        {"url": base_url, "description": "This ltxserve server", EXT: True},
        *doc.get("servers", []),
    ]
    for name, (endpoint, enum_name) in _MODEL_SCHEMAS.items():
        known = set(schemas[enum_name].get("enum", []))
        extra = [m for m in catalog.able(endpoint) if m not in known]
        if extra:
            props = schemas[name]["properties"]
            props["model"] = _widen(
                props["model"],
                {
                    "type": "string",
                    "enum": extra,
                    "description": "Also served by this server's model table (LTX-2.5 models are "
                    "hosted since 2026-08-11 but not in the contract's document).",
                },
            )
    for name in ("TextToVideoRequest", "ImageToVideoRequest"):
        props = schemas[name]["properties"]
        auto = [
            m.name for m in catalog.models.values() if m.auto_duration and m.status != "removed"
        ]
        props["duration"] = _widen(
            props["duration"],
            {
                "type": "null",
                "description": f"Automatic duration, for {', '.join(auto) or 'no model'}: null or "
                "no duration at all; the length is chosen at submit (3 s plus 1 s "
                "per 60 prompt characters, rounded up to a duration the model "
                "offers) and reported as `duration` in the completed status.",
            },
        )
    a2v = schemas["AudioToVideoRequest"]["properties"]
    known_res = set(schemas["AudioToVideoRequestResolution"]["enum"])
    more = sorted(
        {r for m in catalog.models.values() for rule in m.audio_rules for r in rule.resolutions}
        - known_res
    )
    if more:
        a2v["resolution"] = _widen(
            a2v["resolution"],
            {
                "type": "string",
                "enum": more,
                "description": "More resolutions, as the model's table offers them (audio up to "
                "20 s at 720p/1080p and 10 s at 1440p/4K).",
            },
        )
    variants = schemas["V2JobStatusResponse"]["oneOf"]
    for variant in variants:
        status = variant["properties"]["status"]["$ref"].rsplit("/", 1)[1]
        variant["properties"]["progress"] = {
            EXT: True,
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": PROGRESS_TEXT[status],
        }
        if status in ("V2JobCompletedStatus", "V2JobFailedStatus"):
            variant["properties"]["expires_at"] = {
                EXT: True,
                "type": "string",
                "format": "date-time",
                "description": "When this status object and any result URLs stop being "
                "served (the job's retention ends; afterwards the poll answers 404).",
            }
        if status == "V2JobCompletedStatus":
            variant["properties"]["engine"] = {
                EXT: True,
                "type": "string",
                "description": "The engine that made the result: `ltx` (the model), or "
                "`preview` / `minimal` (stand-ins that are not a generative model).",
            }
            variant["properties"]["duration"] = {
                EXT: True,
                "type": "number",
                "minimum": 0,
                "description": "Length of the result video in seconds, as its file says "
                "(the chosen length when the request asked for automatic "
                "duration).",
            }
    for path, item in doc["paths"].items():
        op = item.get("post")
        if op and "requestBody" in op and (path.startswith("/v2/") or path.startswith("/v1/")):
            op.setdefault("parameters", []).append(SIMULATE_PARAMETER)
            op["parameters"].append(IDEMPOTENCY_PARAMETER)
            op["responses"]["409"] = IDEMPOTENCY_CONFLICT
    for name, schema in schemas.items():  # webhooks (docs/webhooks.md)
        if name.endswith("Request") and "properties" in schema:
            schema["properties"][CALLBACK_FIELD] = {EXT: True, **copy.deepcopy(CALLBACK_URL)}
    for name, schema in WEBHOOK_SCHEMAS.items():
        schemas[name] = {EXT: True, **copy.deepcopy(schema)}
    for path, item in EXTENSION_PATHS.items():
        if path in doc["paths"]:  # operations added to a documented path, each marked
            doc["paths"][path].update(copy.deepcopy(item))
        else:
            doc["paths"][path] = {EXT: True, **copy.deepcopy(item)}
    doc.setdefault("tags", []).append(
        {"name": "ltxserve", EXT: True, "description": "Additions of this server"}
    )
    return doc
