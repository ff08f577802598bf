"""GET /openapi.json and /docs: the contract plus marked extensions, valid OpenAPI 3.1,
covering every route the app answers; the reference page needs no CDN."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import httpx
from openapi_spec_validator import validate
from openapi_spec_validator.validation import OpenAPIV31SpecValidator

from ltxserve.api.app import create_app
from ltxserve.config import Settings
from tests.support import CONTRACT, ROOT, Server

EXT = "x-ltxserve-extension"


def strip_extensions(node: Any) -> Any:
    """The document with every marked addition taken out (and widened types unwrapped)."""
    if isinstance(node, list):
        return [
            strip_extensions(x) for x in node if not (isinstance(x, dict) and x.get(EXT) is True)
        ]
    if not isinstance(node, dict):
        return node
    out = {
        k: strip_extensions(v)
        for k, v in node.items()
        if not (isinstance(v, dict) and v.get(EXT) is True) and not k.startswith("x-ltxserve")
    }
    if "anyOf" in out and len(out["anyOf"]) == 1 and len(node["anyOf"]) == 2:
        (base,) = out.pop("anyOf")
        out = {**base, **out}
    if out.get("tags") == [] and "tags" not in CONTRACT_DOC:
        out.pop("tags")
    return out


CONTRACT_DOC = json.loads((CONTRACT / "openapi.json").read_text())


def app_routes(tmp: Path) -> set[tuple[str, str]]:
    """(method, path template with params as {}) for every route of the real app."""
    app = create_app(Settings(data_dir=tmp))

    def walk(routes: list[Any]) -> Any:
        for r in routes:
            if hasattr(r, "original_router"):
                yield from walk(r.original_router.routes)
            elif hasattr(r, "routes") and not hasattr(r, "methods"):
                yield from walk(r.routes)
            else:
                yield r

    out = set()
    for route in walk(app.routes):
        for method in route.methods or ():
            out.add((method, re.sub(r"\{[^}]+\}", "{}", route.path)))
    return out


def doc_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (m.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in doc["paths"].items()
        for m in item
        if m in ("get", "put", "post", "delete", "options", "head", "patch", "trace")
    }


def test_the_package_ships_the_contract_unchanged() -> None:
    shipped = ROOT / "src" / "ltxserve" / "data" / "openapi.json"
    assert shipped.read_bytes() == (CONTRACT / "openapi.json").read_bytes()


def test_served_document_is_the_contract_plus_marked_extensions(
    server: Server, tmp_path: Path
) -> None:
    r = httpx.get(f"{server.base_url}/openapi.json", timeout=30)  # no key needed
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"].startswith("3.1")
    assert strip_extensions(copy.deepcopy(doc)) == CONTRACT_DOC
    # Every route the app answers is described (HEAD is GET without a body, RFC 9110).
    described = doc_routes(doc)
    missing = {
        (m, p)
        for m, p in app_routes(tmp_path)
        if (m, p) not in described and not (m == "HEAD" and ("GET", p) in described)
    }
    assert not missing, missing
    # ... and nothing is described that the app does not answer.
    assert described <= app_routes(tmp_path)
    # The additions a client meets: LTX-2.5 models, automatic duration, status fields.
    t2v = doc["components"]["schemas"]["TextToVideoRequest"]["properties"]
    assert {"ltx-2-5-fast", "ltx-2-5-pro"} <= set(t2v["model"]["anyOf"][1]["enum"])
    assert t2v["duration"]["anyOf"][1] == {**t2v["duration"]["anyOf"][1], "type": "null", EXT: True}
    edit = doc["components"]["schemas"]["EditVideoRequest"]["properties"]["model"]
    assert "anyOf" not in edit  # LTX-2.5 does not retake: the contract's enum stands
    assert doc["servers"][0]["url"] == server.base_url


def test_served_extensions_validate_real_answers(server: Server) -> None:
    """A completed status with its extension fields validates against the served schema."""
    import jsonschema

    doc = httpx.get(f"{server.base_url}/openapi.json", timeout=30).json()
    with server.client() as c:
        job = c.post(
            "/v2/text-to-video",
            json={"prompt": "a cat", "model": "ltx-2-5-fast", "resolution": "1280x720"},
        ).json()
        from tests.support import wait_terminal

        status = wait_terminal(c, "text-to-video", job["id"])
    assert status["status"] == "completed" and status["duration"] == 4
    schema = {"$ref": "#/components/schemas/V2JobStatusResponse", "components": doc["components"]}
    jsonschema.validate(status, schema, cls=jsonschema.Draft202012Validator)
    completed = next(
        v
        for v in doc["components"]["schemas"]["V2JobStatusResponse"]["oneOf"]
        if v["description"] == "completed variant"
    )
    jsonschema.validate(
        status,
        {**completed, "additionalProperties": False, "components": doc["components"]},
        cls=jsonschema.Draft202012Validator,
    )


def test_docs_page_is_served_from_the_package(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=30) as c:
        page = c.get("/docs")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in page.headers["content-security-policy"]
        refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
        assert refs and all(not re.match(r"^[a-z]+:|^//", ref) for ref in refs), refs
        for ref in refs:
            r = c.get(f"/{ref}")
            assert r.status_code == 200, ref
        bundle = c.get("/docs/swagger-ui-bundle.js")
        assert bundle.headers["content-type"].startswith("text/javascript")
        assert len(bundle.content) > 500_000  # the real Swagger UI, not a stub
        assert "openapi.json" in c.get("/docs/init.js").text
        assert "Apache License" in c.get("/docs/LICENSE").text
        assert c.get("/docs/../cli.py").status_code == 404
        assert c.get("/docs/swagger-ui-bundle.js.map").status_code == 404
