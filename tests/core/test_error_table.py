"""One error tree, one status table (issue 16, item 7).

- Every error type the contract documents (API-NOTES.md's table) has one class and
  answers exactly the documented status; nothing in the tree has an undocumented type.
- No module under ``ltxserve.api`` writes an HTTP status itself: routes raise domain
  errors and ``ltxserve.api.errors.STATUS`` decides. A source scan, with an explicit
  allow-list for the answers that are not errors or that map Starlette's own.
- The SDK's type -> class table has the server's types and the server's shape. The
  SDK must not import the server, so only this test imports both.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from ltxserve import errors as server
from ltxserve.api.errors import STATUS, TYPE_STATUS, status_of
from ltxserve.client import _exceptions as sdk
from tests.support import Server, assert_error

ROOT = Path(__file__).resolve().parents[2]
NOTES = ROOT / "tests" / "contract" / "API-NOTES.md"
API_DIR = ROOT / "src" / "ltxserve" / "api"
ROW = re.compile(r"^\|\s*(\d{3})\s*\|\s*([a-z_]+)\s*\|")

# (module, what is written, why it is not a hand-built error status)
ALLOWED = {
    ("routes.py", "status_code=202"),  # the submit's documented success, not an error
    ("app.py", "404"),  # recognising Starlette's own 404 to raise NotFoundError
    ("app.py", "405"),  # recognising Starlette's own 405 to raise MethodNotAllowedError
}


def documented() -> dict[str, int]:
    """error type -> status, from the contract's error table (each type once)."""
    rows = [ROW.match(line) for line in NOTES.read_text().splitlines()]
    pairs = [(m.group(2), int(m.group(1))) for m in rows if m]
    types = [t for t, _ in pairs]
    assert len(types) == len(set(types)), f"a type is documented twice: {types}"
    assert pairs, "the error table was not found in API-NOTES.md"
    return dict(pairs)


def all_errors(root: type[server.LtxError] = server.LtxError) -> list[type[server.LtxError]]:
    out = [root]
    for sub in root.__subclasses__():
        out.extend(all_errors(sub))
    return out


def test_every_documented_type_has_one_class_and_its_status() -> None:
    doc = documented()
    assert set(server.ERROR_TYPES) == set(doc)
    for type_, status in doc.items():
        cls = server.ERROR_TYPES[type_]
        assert cls.type == type_
        assert STATUS[cls] == status, (type_, STATUS[cls], status)
        assert TYPE_STATUS[type_] == status
    # exactly one status per type: no second class answers a type's default status
    # differently while claiming to be that type's class
    assert len(set(server.ERROR_TYPES.values())) == len(doc)


def test_every_error_class_has_a_documented_type_and_a_status() -> None:
    doc = documented()
    for cls in all_errors()[1:]:  # LtxError itself is only the root
        assert cls.type in doc, f"{cls.__name__} has the undocumented type {cls.type!r}"
        assert 400 <= status_of(cls) < 600
        if cls in server.ERROR_TYPES.values():
            continue
        # a refinement: it keeps its parent's wire type
        parent = next(k for k in cls.__mro__[1:] if k in server.ERROR_TYPES.values())
        assert cls.type == parent.type, cls
    assert set(STATUS) <= set(all_errors()), "the table names a class outside the tree"


def test_refinements_answer_their_own_status_with_the_parent_type() -> None:
    expected = {
        server.SignatureError: (403, "authentication_error"),
        server.UploadUsedError: (409, "invalid_request_error"),
        server.JobEndedError: (409, "invalid_request_error"),
        server.ClientClosedError: (499, "invalid_request_error"),
        server.SyncTimeoutError: (504, "api_error"),
        server.MethodNotAllowedError: (405, "invalid_request_error"),
        server.RequestTimeoutError: (408, "invalid_request_error"),
        server.StoreBusyError: (503, "service_unavailable"),
    }
    for cls, (status, type_) in expected.items():
        assert (status_of(cls), cls.type) == (status, type_), cls.__name__


def hand_built_statuses(path: Path) -> list[str]:
    """What ``path`` writes as an HTTP status itself, except from ``status_of(...)``."""
    found: list[str] = []
    tree = ast.parse(path.read_text())

    def from_table(value: ast.expr) -> bool:
        return (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "status_of"
        )

    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg in ("status", "status_code"):
            if not from_table(node.value):
                found.append(f"{node.arg}={ast.unparse(node.value)}")
        elif isinstance(node, ast.Dict):  # an ASGI "http.response.start" message
            keys = {
                k.value: v
                for k, v in zip(node.keys, node.values, strict=True)
                if isinstance(k, ast.Constant)
            }
            if "type" in keys and "status" in keys and not from_table(keys["status"]):
                found.append(f"status: {ast.unparse(keys['status'])}")
        elif isinstance(node, ast.Constant):
            value = node.value
            if type(value) is int and 400 <= value < 600:
                found.append(str(value))
            elif isinstance(value, (str, bytes)):
                text = value if isinstance(value, str) else value.decode("latin-1")
                if re.search(r"HTTP/\d\.\d \d{3}", text):
                    found.append(f"status line {text[:20]!r}")
    return found


def test_no_api_module_builds_a_status_by_hand() -> None:
    modules = sorted(p for p in API_DIR.glob("*.py") if p.name != "errors.py")
    assert len(modules) > 5
    found = {(p.name, what) for p in modules for what in hand_built_statuses(p)}
    assert found - ALLOWED == set(), "raise a domain error mapped in api/errors.py instead"
    assert ALLOWED <= found, f"stale allow-list entries: {ALLOWED - found}"


def test_the_scan_sees_a_hand_built_status(tmp_path: Path) -> None:
    sample = tmp_path / "route.py"
    sample.write_text(
        "def f():\n"
        "    a = error_response('authentication_error', 'no', status=403)\n"
        "    b = Response(status_code=499)\n"
        "    c = {'type': 'http.response.start', 'status': 413}\n"
        "    d = b'HTTP/1.1 408 Request Timeout'\n"
        "    e = {'type': 'http.response.start', 'status': status_of(x)}\n"
    )
    assert sorted(hand_built_statuses(sample)) == sorted(
        [
            "status=403",
            "403",
            "status_code=499",
            "499",
            "status: 413",
            "413",
            "status line 'HTTP/1.1 408 Request'",
        ]
    )


def typed_parent(cls: type, typed: set[type]) -> type | None:
    """The nearest ancestor of ``cls`` that is one wire type's class, if any."""
    return next((k for k in cls.__mro__[1:] if k in typed), None)


def test_sdk_types_are_the_servers() -> None:
    assert set(sdk.ERRORS_BY_TYPE) == set(server.ERROR_TYPES)
    for type_, cls in sdk.ERRORS_BY_TYPE.items():
        assert cls.type == type_


@pytest.mark.parametrize("type_", sorted(server.ERROR_TYPES))
def test_sdk_tree_has_the_servers_shape(type_: str) -> None:
    """Each type's class sits under the same type's class on both sides (or under none)."""
    server_typed = set(server.ERROR_TYPES.values())
    sdk_typed = set(sdk.ERRORS_BY_TYPE.values())
    s_parent = typed_parent(server.ERROR_TYPES[type_], server_typed)
    c_parent = typed_parent(sdk.ERRORS_BY_TYPE[type_], sdk_typed)
    assert (s_parent and s_parent.type) == (c_parent and c_parent.type), type_


def test_sdk_status_guess_agrees_with_the_table() -> None:
    """A bare status (a proxy's page) is classified as the server would have typed it."""
    for status, cls in sdk.ERRORS_BY_STATUS.items():
        assert TYPE_STATUS[cls.type] == status, (status, cls.__name__)


def test_answers_from_the_table_keep_their_headers(server: Server) -> None:
    """The 405 keeps Starlette's Allow header; the 404s of the static routes the envelope."""
    with server.client() as c:
        r = c.delete("/v2/text-to-video")
        assert_error(r, 405, "invalid_request_error", "not allowed")
        assert r.headers["allow"] == "POST"
        r = c.put("/files/jobs/x/video.mp4")
        assert_error(r, 405, "invalid_request_error", "not allowed")
        assert set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
        assert_error(c.get("/web/nothing.js"), 404, "not_found_error", "/web/nothing.js")
        assert_error(c.get("/docs/nothing.js"), 404, "not_found_error", "/docs/nothing.js")
        assert_error(c.get("/files/jobs/x/video.mp4"), 403, "authentication_error", "signature")
