"""The content policy over real HTTP (docs/limits.md#content-policy): a term list
refuses a prompt at submit with 422 and makes no job; a classifier installed as an
entry point (a temporary dist-info on PYTHONPATH, as pip would leave it) or named
by module:attribute checks prompts in the API and inputs in the worker, where a
filtered job ends failed with content_filtered_error."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.core.media import data_uri, png_bytes
from tests.core.test_submit import T2V
from tests.support import Server, assert_error, wait_terminal

MESSAGE = "Content is filtered due to policy restrictions"

CLASSIFIER = '''
"""A tiny classifier: prompts naming it, and images 66 pixels wide, are filtered."""
from PIL import Image


class Policy:
    def __init__(self, settings):
        self.data_dir = settings.data_dir  # it is given the settings

    def check_prompt(self, endpoint, prompt):
        return "classifier-says-no" in prompt.lower()

    def check_inputs(self, endpoint, request, inputs):
        image = inputs.get("image_uri")
        if image is None:
            return False
        with Image.open(image) as im:  # a local file in the worker's job cache
            return im.width == 66
'''


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """The classifier as an installed distribution would leave it on sys.path."""
    root = tmp_path / "site"
    root.mkdir()
    (root / "tinypolicy.py").write_text(CLASSIFIER)
    meta = root / "tinypolicy-0.1.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text("Metadata-Version: 2.1\nName: tinypolicy\nVersion: 0.1\n")
    (meta / "entry_points.txt").write_text("[ltxserve.content_policy]\ntiny = tinypolicy:Policy\n")
    return root


def _pythonpath(extra: Path) -> str:
    return os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(extra)) if p)


def test_term_list_refuses_a_prompt_at_submit(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    terms = tmp_path / "terms.txt"
    terms.write_text("# the operator's list\nkraken\n", encoding="utf-8")
    srv = make_server(
        env={"LTXSERVE_CONTENT_TERMS": "wyvern,暴力", "LTXSERVE_CONTENT_TERMS_FILE": str(terms)},
        workers=0,
    )
    with srv.client() as c:
        for prompt in ("A WYVERN over hills", "the Kraken rises", "一个暴力的场面"):
            for path in ("/v2/text-to-video", "/v1/text-to-video"):
                r = c.post(path, json={**T2V, "prompt": prompt})
                assert_error(r, 422, "content_filtered_error", MESSAGE)
                assert r.json()["error"]["message"] == MESSAGE
        image = data_uri("image/png", png_bytes())
        r = c.post("/v2/image-to-video", json={**T2V, "image_uri": image, "prompt": "wyvern"})
        assert_error(r, 422, "content_filtered_error")
        ok = c.post("/v2/text-to-video", json={**T2V, "prompt": "a wyverns' nest"})
        assert ok.status_code == 202, ok.text  # a longer word is not the term
    assert "Traceback" not in srv.log()


@pytest.mark.parametrize("name", ["tiny", "tinypolicy:Policy"])
def test_classifier_checks_prompts_in_the_api_and_inputs_in_the_worker(
    make_server: Callable[..., Server], plugin_dir: Path, name: str
) -> None:
    srv = make_server(env={"LTXSERVE_CONTENT_POLICY": name, "PYTHONPATH": _pythonpath(plugin_dir)})
    with srv.client() as c:
        r = c.post("/v2/text-to-video", json={**T2V, "prompt": "CLASSIFIER-SAYS-NO please"})
        assert_error(r, 422, "content_filtered_error", MESSAGE)

        flagged = data_uri("image/png", png_bytes(width=66, height=36))
        r = c.post("/v2/image-to-video", json={**T2V, "image_uri": flagged})
        assert r.status_code == 202, r.text  # the prompt passes; the image is the worker's
        done = wait_terminal(c, "image-to-video", r.json()["id"])
        assert done["status"] == "failed", done
        assert done["error"] == {"type": "content_filtered_error", "message": MESSAGE}

        fine = data_uri("image/png", png_bytes(width=64, height=36))
        r = c.post("/v2/image-to-video", json={**T2V, "image_uri": fine})
        assert wait_terminal(c, "image-to-video", r.json()["id"])["status"] == "completed"


def test_a_policy_that_cannot_load_stops_serve_with_one_line(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    srv = Server(tmp_path / "bad", env={"LTXSERVE_CONTENT_POLICY": "no-such-policy"})
    with pytest.raises(RuntimeError, match="server exited"):
        srv.start(timeout=60)
    assert srv.proc is not None and srv.proc.wait(10) == 78
    lines = [ln for ln in srv.log().splitlines() if "configuration error" in ln]
    assert len(lines) == 1 and "LTXSERVE_CONTENT_POLICY" in lines[0], srv.log()
