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


EXTENSION_PATHS: dict[str, dict[str, Any]] = {
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
        if status == "V2JobProcessingStatus":
            variant["properties"]["progress"] = {
                EXT: True,
                "type": "number",
                "minimum": 0,
                "maximum": 1,
                "description": "Fraction done, when the engine reports it.",
            }
        elif status == "V2JobCompletedStatus":
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
    for name, schema in schemas.items():  # webhooks (docs/webhooks.md)
        if name.endswith("Request") and "properties" in schema:
            schema["properties"][CALLBACK_FIELD] = {EXT: True, **copy.deepcopy(CALLBACK_URL)}
    for name, schema in WEBHOOK_SCHEMAS.items():
        schemas[name] = {EXT: True, **copy.deepcopy(schema)}
    for path, item in EXTENSION_PATHS.items():
        doc["paths"][path] = {EXT: True, **copy.deepcopy(item)}
    doc.setdefault("tags", []).append(
        {"name": "ltxserve", EXT: True, "description": "Additions of this server"}
    )
    return doc
