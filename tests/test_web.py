"""The browser playground (issue 7), driven in a real headless Chromium by Playwright.

Needs Debian's chromium (``apt-get install -y chromium``) and ``pip install playwright``
(no ``playwright install``: the system browser is used). Browser tests skip with the
reason when either is missing; the static-route test always runs. Screenshots go to
``artifacts/web/`` at the repo root.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.core.test_submit import T2V
from tests.support import ROOT, Server

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

CHROMIUM = os.environ.get("LTXSERVE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts" / "web"
JOB_TIMEOUT_MS = 120_000

# The small job of the issue: fast model, 720p, 2 s, 24 fps.
SMALL = {"model": "ltx-2-3-fast", "resolution": "1280x720", "fps": "24", "duration": "2"}


# ---------------------------------------------------------------- static routes (no browser)


def test_static_routes_need_no_key_and_leave_the_api_alone(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, timeout=10) as c:
        r = c.get("/")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert '<meta name="viewport"' in r.text
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert c.head("/").status_code == 200
        for name, ctype in [
            ("app.js", "text/javascript"),
            ("style.css", "text/css"),
            ("index.html", "text/html"),
        ]:
            r = c.get(f"/web/{name}")
            assert r.status_code == 200, name
            assert r.headers["content-type"].startswith(ctype), r.headers
            assert r.headers["x-content-type-options"] == "nosniff"
        models = c.get("/web/models.json").json()["models"]
        assert "text-to-video" in models["ltx-2-3-fast"]["endpoints"]
        assert "ltx-2-fast" not in models  # removed models are not offered
        for bad in [
            "/web/nope.js",
            "/web/.hidden",
            "/web/..%2Fapi%2Fweb.py",
            "/web/web.py",
            "/web/../api/web.py",
        ]:
            r = c.get(bad)
            assert r.status_code == 404, bad
            assert r.json()["error"]["type"] == "not_found_error"
        # The documented API is untouched: still authenticated, still the envelope.
        r = c.get("/v2/text-to-video/00000000-0000-4000-8000-000000000000")
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"


# ---------------------------------------------------------------- browser fixtures


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.skip("playwright is not installed (pip install playwright)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Tab:
    """One browser context + page on the playground, collecting JS errors."""

    def __init__(self, browser: Browser, server: Server, **context: Any) -> None:
        self.server = server
        # a key of its own: the page lists the key's jobs from the server (GET /v2/jobs),
        # and the session server's key has every other test's jobs
        self.key = server.cli("keys", "create", "--name", "web").split()[-1]
        self.context = browser.new_context(**context)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def open(self) -> Page:
        self.page.goto(f"{self.server.base_url}/")
        self.page.wait_for_selector("body[data-ready='true']")
        return self.page

    def save_key(self, key: str | None = None) -> None:
        p = self.page
        p.fill("#api-key", key or self.key)
        p.click("#save-key")
        # Arrow functions, not bare expressions: the page's CSP forbids eval.
        p.wait_for_function(
            "() => !document.querySelector('#key-status').textContent.startsWith('Checking')"
        )

    def shot(self, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Any]:
    opened: list[Tab] = []

    def make(**context: Any) -> Tab:
        t = Tab(browser, server, **context)
        opened.append(t)
        return t

    yield make
    for t in opened:
        t.close()


def fill_small_text_to_video(page: Page, prompt: str) -> None:
    page.select_option("#endpoint", "text-to-video")
    page.fill("#f-text-to-video-prompt", prompt)
    for name, value in SMALL.items():
        page.select_option(f"#f-text-to-video-{name}", value)


def wait_completed_video(page: Page, job_id: str | None = None) -> dict[str, Any]:
    """Wait for the (newest or given) job to complete and its video to load metadata."""
    sel = f"li.job[data-job-id='{job_id}']" if job_id else "#job-list li.job:first-child"
    page.wait_for_selector(f"{sel}[data-status='completed'] video", timeout=JOB_TIMEOUT_MS)
    page.wait_for_function(
        "sel => { const v = document.querySelector(sel + ' video');"
        " return v && v.readyState >= 1 && isFinite(v.duration); }",
        arg=sel,
        timeout=30_000,
    )
    info: dict[str, Any] = page.eval_on_selector(
        sel,
        """li => {
        const v = li.querySelector('video');
        const a = li.querySelector('a.download');
        return {id: li.dataset.jobId, status: li.dataset.status, duration: v.duration,
                readyState: v.readyState, width: v.videoWidth, height: v.videoHeight,
                controls: v.controls, src: v.currentSrc, href: a && a.href,
                link: a && a.textContent, badge: li.querySelector('.badge').textContent};
    }""",
    )
    return info


# ---------------------------------------------------------------- browser tests


def test_submit_watch_and_play(tab: Any, server: Server) -> None:
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    assert page.text_content("#key-status") == "No key saved yet."
    t.save_key()
    assert "accepts it" in (page.text_content("#key-status") or "")

    fill_small_text_to_video(page, "a red fox trotting through fresh snow")
    page.click("#submit-job")
    page.wait_for_selector("#job-list li.job")
    assert "Submitted text-to-video job" in (page.text_content("#submit-status") or "")
    # The list shows endpoint, status and age while the job runs.
    first = page.locator("#job-list li.job").first
    assert first.locator(".job-endpoint").text_content() == "text-to-video"
    assert first.locator(".badge").text_content() in {"pending", "processing", "completed"}
    assert "ago" in (first.locator(".age").text_content() or "") or "just now" in (
        first.locator(".age").text_content() or ""
    )

    info = wait_completed_video(page)
    assert info["badge"] == "completed"
    assert info["controls"] is True
    assert info["readyState"] >= 1
    assert abs(info["duration"] - 2.0) < 0.15, info
    assert (info["width"], info["height"]) == (1280, 720), info
    assert "/files/" in info["src"] and info["href"] == info["src"]
    assert info["link"] == "Download MP4"
    assert page.eval_on_selector("#job-list li.job:first-child progress", "p => p.value") == 1
    # Screen readers hear the status change.
    assert "completed" in (page.text_content("#announcer") or "")
    # The download link serves the MP4 without the key (signed URL).
    r = httpx.get(info["href"], timeout=30)
    assert r.status_code == 200 and r.headers["content-type"] == "video/mp4"
    t.shot("desktop-completed")

    # Job ids survive a reload: the result is back and plays.
    stored = page.evaluate("JSON.parse(localStorage.getItem('ltxserve.playground.jobs'))")
    assert [j["id"] for j in stored] == [info["id"]]
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    again = wait_completed_video(page, info["id"])
    assert abs(again["duration"] - 2.0) < 0.15
    assert page.input_value("#api-key") == t.key  # key entered once


def test_jobs_of_the_key_from_elsewhere_are_listed(tab: Any, server: Server) -> None:
    """Jobs the key submitted outside this browser (SDK, CLI, another browser) join the
    list from GET /v2/jobs when the key is saved and on reload; other keys' never do."""
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    with server.client(t.key) as c:
        elsewhere = c.post("/v2/text-to-video", json=T2V).json()["id"]
    with server.client() as c:
        theirs = c.post("/v2/text-to-video", json=T2V).json()["id"]
    t.save_key()
    page.wait_for_selector(f"li.job[data-job-id='{elsewhere}']")
    card = page.locator(f"li.job[data-job-id='{elsewhere}']")
    assert card.locator(".job-endpoint").text_content() == "text-to-video"
    assert page.locator(f"li.job[data-job-id='{theirs}']").count() == 0
    # and it is polled like any other
    page.wait_for_selector(
        f"li.job[data-job-id='{elsewhere}'][data-status='completed']", timeout=JOB_TIMEOUT_MS
    )
    page.reload()
    page.wait_for_selector("body[data-ready='true']")
    assert page.locator("#job-list li.job").count() == 1


def test_errors_are_shown_readably(tab: Any) -> None:
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    # No key yet: the page asks for one instead of sending a request.
    page.fill("#f-text-to-video-prompt", "anything")
    page.click("#submit-job")
    assert "API key" in page.text_content("#form-error")  # type: ignore[operator]

    t.save_key("ltxsk_not-a-real-key")
    assert "Invalid API key" in (page.text_content("#key-status") or "")
    fill_small_text_to_video(page, "a lighthouse at dusk")
    page.click("#submit-job")
    page.wait_for_selector("#form-error:not([hidden])")
    msg = page.text_content("#form-error") or ""
    assert "Invalid API key" in msg and "401" in msg, msg
    assert page.get_attribute("#form-error", "role") == "alert"
    assert page.locator("#job-list li.job").count() == 0

    # A request the server rejects (400): its error.message is shown as is.
    t.save_key()
    page.select_option("#endpoint", "video-to-video-hdr")
    page.fill("#f-video-to-video-hdr-video_uri", "not a uri")
    page.click("#submit-job")
    page.wait_for_function(
        "() => document.querySelector('#form-error').textContent.includes('400')"
    )
    msg = page.text_content("#form-error") or ""
    assert "video_uri" in msg and "invalid_request_error" in msg, msg
    t.shot("desktop-error")


def test_phone_width(tab: Any) -> None:
    t = tab(
        viewport={"width": 375, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
    page = t.open()
    t.save_key()
    width = page.evaluate("window.innerWidth")
    assert width == 375

    def overflow() -> list[str]:
        return page.evaluate(
            """w => {
            const out = [];
            if (document.documentElement.scrollWidth > w) out.push('page ' +
                document.documentElement.scrollWidth);
            for (const e of document.querySelectorAll('input, select, textarea, button, video, a'))
            {
                const r = e.getBoundingClientRect();
                if (r.width && (r.right > w + 0.5 || r.left < -0.5) &&
                    !e.classList.contains('skip-link'))
                    out.push((e.id || e.tagName) + ' ' + r.left + '..' + r.right);
            }
            return out; }""",
            width,
        )

    for endpoint in [
        "text-to-video",
        "image-to-video",
        "audio-to-video",
        "retake",
        "extend",
        "video-to-video-hdr",
        "video-to-video-reframe",
    ]:
        page.select_option("#endpoint", endpoint)
        assert overflow() == [], endpoint
        # Touch targets of the main controls stay usable.
        assert page.eval_on_selector("#submit-job", "b => b.getBoundingClientRect().height") >= 36

    fill_small_text_to_video(page, "waves on a pebble beach, phone test")
    page.click("#submit-job")
    info = wait_completed_video(page)
    assert abs(info["duration"] - 2.0) < 0.15
    assert overflow() == []
    # One column: the job list sits below the form.
    form_box = page.locator("#job-form").bounding_box()
    list_box = page.locator("#job-list").bounding_box()
    assert form_box and list_box and list_box["y"] > form_box["y"] + form_box["height"] - 1
    t.shot("phone-completed")


def test_keyboard_only_submission(tab: Any) -> None:
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    kb = page.keyboard

    def focused() -> str:
        return page.evaluate("""() => { const e = document.activeElement;
            return e.id || e.className || e.tagName; }""")

    def tab_to(target: str, limit: int = 20) -> list[str]:
        seen = []
        for _ in range(limit):
            kb.press("Tab")
            seen.append(focused())
            if seen[-1] == target:
                return seen
        raise AssertionError(f"Tab never reached {target}: {seen}")

    # Focus order follows the page: skip link, key, then the form top to bottom.
    assert tab_to("api-key") == ["skip-link", "api-key"]
    kb.type(server_key := t.key)
    kb.press("Enter")  # submits the key form
    page.wait_for_function(
        "() => document.querySelector('#key-status').textContent.includes('accepts')"
    )
    assert page.evaluate("localStorage.getItem('ltxserve.playground.apiKey')") == server_key

    order = tab_to("f-text-to-video-prompt")
    assert order == ["save-key", "forget-key", "endpoint", "f-text-to-video-prompt"], order
    # Focus is visible (outline drawn by :focus-visible).
    outline = page.evaluate("""() => { const s = getComputedStyle(document.activeElement);
        return [s.outlineStyle, parseFloat(s.outlineWidth)]; }""")
    assert outline[0] != "none" and outline[1] >= 2, outline
    kb.type("a paper boat on a rain puddle, keyboard only")

    expected = [
        "f-text-to-video-model",
        "f-text-to-video-resolution",
        "f-text-to-video-fps",
        "f-text-to-video-duration",
        "f-text-to-video-generate_audio",
        "f-text-to-video-camera_motion",
        "submit-job",
    ]
    seen = []
    for want in expected:
        kb.press("Tab")
        seen.append(focused())
        if want == "f-text-to-video-duration":
            # Closed <select>: arrow keys change the value without a mouse.
            kb.press("Home")
            if page.input_value("#f-text-to-video-duration") != "2":
                for _ in range(10):
                    kb.press("ArrowUp")
    assert seen == expected, seen
    values = {n: page.input_value(f"#f-text-to-video-{n}") for n in SMALL}
    assert values == SMALL, values
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    t.shot("keyboard-focus-submit")
    kb.press("Enter")  # the focused "Submit job" button

    info = wait_completed_video(page)
    assert abs(info["duration"] - 2.0) < 0.15
    # The result is reachable by keyboard: Tab from the form into the job's controls.
    order = tab_to("download", limit=40)
    assert "clear-finished" in order
    # Every visible form control has a label.
    unlabeled = page.evaluate("""() => [...document.querySelectorAll(
        'input, select, textarea')].filter(e => e.offsetParent && !e.labels.length)
        .map(e => e.id)""")
    assert unlabeled == []
    t.shot("keyboard-completed")


def _png(width: int = 1280, height: int = 720) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (40, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


def test_file_picker_uses_the_upload_contract(tab: Any) -> None:
    """The file input asks /v1/upload for a slot, PUTs the bytes with required_headers
    and fills image_uri with storage_uri (server side intercepted: the contract only)."""
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    t.save_key()
    storage_uri = "ltx://uploads/" + "ab" * 16
    seen: dict[str, Any] = {}

    def slot(route: Any) -> None:
        seen["slot"] = (route.request.method, route.request.headers.get("authorization"))
        route.fulfill(
            status=200,
            content_type="application/json",
            json={
                "upload_url": f"{t.server.base_url}/uploads/fake?signature=x",
                "storage_uri": storage_uri,
                "expires_at": "2030-01-01T00:00:00.000Z",
                "required_headers": {"Content-Type": "image/png", "x-upload-check": "yes"},
            },
        )

    def put(route: Any) -> None:
        req = route.request
        seen["put"] = (
            req.method,
            req.headers.get("content-type"),
            req.headers.get("x-upload-check"),
            len(req.post_data_buffer or b""),
            req.headers.get("authorization"),
        )
        route.fulfill(status=200, body="")

    page.route("**/v1/upload", slot)
    page.route("**/uploads/fake*", put)
    page.select_option("#endpoint", "image-to-video")
    png = _png(64, 36)
    page.set_input_files(
        "#f-image-to-video-image_uri-file",
        files=[{"name": "frame.png", "mimeType": "image/png", "buffer": png}],
    )
    page.wait_for_function(
        "uri => document.querySelector('#f-image-to-video-image_uri').value === uri",
        arg=storage_uri,
    )
    assert seen["slot"] == ("POST", f"Bearer {t.key}")
    # Bytes and required headers sent; the API key is not sent to the upload URL.
    assert seen["put"] == ("PUT", "image/png", "yes", len(png), None)
    assert "Uploaded frame.png" in (
        page.text_content("#f-image-to-video-image_uri-upload-status") or ""
    )


def test_image_to_video_with_a_real_upload(tab: Any, server: Server) -> None:
    with server.client() as c:
        if c.post("/v1/upload").status_code == 404:
            pytest.skip("POST /v1/upload is not served by this build yet")
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    t.save_key()
    page.select_option("#endpoint", "image-to-video")
    page.set_input_files(
        "#f-image-to-video-image_uri-file",
        files=[{"name": "first.png", "mimeType": "image/png", "buffer": _png()}],
    )
    page.wait_for_function(
        "() => document.querySelector('#f-image-to-video-image_uri').value.startsWith('ltx://')",
        timeout=30_000,
    )
    page.fill("#f-image-to-video-prompt", "the blue slowly turns to dusk")
    for name, value in SMALL.items():
        page.select_option(f"#f-image-to-video-{name}", value)
    page.click("#submit-job")
    info = wait_completed_video(page)
    assert abs(info["duration"] - 2.0) < 0.15
    t.shot("image-to-video-upload")


def test_hdr_result_is_a_zip_link(tab: Any, server: Server) -> None:
    """Upload a video through the page, run video-to-video-hdr: the EXR ZIP is a link."""
    from tests.support import wait_terminal

    with server.client() as c:
        if c.post("/v1/upload").status_code == 404:
            pytest.skip("POST /v1/upload is not served by this build yet")
        body = {
            "prompt": "source clip",
            "model": "ltx-2-3-fast",
            "duration": 2,
            "resolution": "1280x720",
            "fps": 24,
        }
        job = c.post("/v2/text-to-video", json=body).json()
        done = wait_terminal(c, "text-to-video", job["id"])
        mp4 = httpx.get(done["result"]["video_url"], timeout=30).content

    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    t.save_key()
    page.select_option("#endpoint", "video-to-video-hdr")
    page.set_input_files(
        "#f-video-to-video-hdr-video_uri-file",
        files=[{"name": "clip.mp4", "mimeType": "video/mp4", "buffer": mp4}],
    )
    page.wait_for_function(
        "() => document.querySelector('#f-video-to-video-hdr-video_uri').value"
        ".startsWith('ltx://')",
        timeout=30_000,
    )
    page.click("#submit-job")
    sel = "#job-list li.job:first-child[data-status='completed']"
    page.wait_for_selector(f"{sel} a.download", timeout=JOB_TIMEOUT_MS)
    assert page.locator(f"{sel} video").count() == 0
    link = page.locator(f"{sel} a.download")
    assert link.get_attribute("data-label") == "exr_frames_url"
    assert link.text_content() == "Download EXR frames (ZIP)"
    r = httpx.get(link.get_attribute("href") or "", timeout=60)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    assert r.content[:2] == b"PK"
    t.shot("hdr-zip-link")


def test_failed_job_shows_its_error_message(tab: Any) -> None:
    """A failed status object's error.message appears on the job card (status intercepted)."""
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    t.save_key()
    job_id = "11111111-2222-4333-8444-555555555555"
    page.route(
        f"**/v2/extend/{job_id}",
        lambda route: route.fulfill(
            status=200,
            content_type="application/json",
            json={
                "status": "failed",
                "id": job_id,
                "created_at": "2026-01-15T10:00:00.000Z",
                "completed_at": "2026-01-15T10:00:05.000Z",
                "error": {
                    "type": "invalid_request_error",
                    "message": "video has 40 frames; extend needs at least 73",
                },
            },
        ),
    )
    page.evaluate(
        """id => localStorage.setItem('ltxserve.playground.jobs', JSON.stringify([
        {id, endpoint: 'extend', created_at: '2026-01-15T10:00:00.000Z', status: 'pending'}]))""",
        job_id,
    )
    page.reload()
    page.wait_for_selector(f"li.job[data-job-id='{job_id}'][data-status='failed']")
    card = page.locator(f"li.job[data-job-id='{job_id}']")
    assert card.locator(".badge").text_content() == "failed"
    err = card.locator(".job-error").text_content() or ""
    assert "extend needs at least 73" in err and "invalid_request_error" in err
    # Removing it by keyboard moves focus somewhere sensible.
    card.locator("button", has_text="Remove").focus()
    page.keyboard.press("Enter")
    assert page.locator("li.job").count() == 0
    assert page.evaluate("document.activeElement.id") == "jobs-heading"


def test_preview_engine_banner_key_check_and_progress_every_second(
    browser: Browser, make_server: Any
) -> None:
    """A preview server says so on the page and on each result; the key check uses its
    own route (no red 404 in the console); a running job's progress arrives live, on
    its event stream (no status polls), and moves at least every second or so."""
    srv = make_server(engine="preview")
    t = Tab(browser, srv, viewport={"width": 1280, "height": 900})
    try:
        page = t.open()
        failed: list[str] = []
        console: list[str] = []
        page.on(
            "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
        banner = page.locator("#engine-banner")
        assert banner.is_visible()
        assert "preview engine, not a generative model" in " ".join(
            (banner.text_content() or "").split()
        )
        t.save_key()
        assert "accepts it" in (page.text_content("#key-status") or "")
        assert not failed and not console, (failed, console)

        asked: list[str] = []
        page.on(
            "request",
            lambda r: asked.append(r.url.split("?")[0]) if "/v2/text-to-video/" in r.url else None,
        )
        page.select_option("#endpoint", "text-to-video")
        page.fill("#f-text-to-video-prompt", "a slow pan over a calm sea at dawn")
        for name, value in {**SMALL, "resolution": "1920x1080", "duration": "16"}.items():
            page.select_option(f"#f-text-to-video-{name}", value)
        page.click("#submit-job")
        page.wait_for_selector("#job-list li.job")
        moves: list[tuple[float, float]] = []  # (ms, progress) at each change on the card
        deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            badge, value = page.evaluate(
                "() => { const li = document.querySelector('#job-list li.job');"
                " return [li.querySelector('.badge').textContent,"
                " li.querySelector('progress').getAttribute('value')]; }"
            )
            if badge in ("completed", "failed"):
                break
            if badge == "processing" and value is not None:
                if not moves or moves[-1][1] != float(value):
                    moves.append((time.monotonic() * 1000, float(value)))
            time.sleep(0.05)
        info = wait_completed_video(page)
        card = page.locator(f"li.job[data-job-id='{info['id']}']")
        assert card.locator(".engine-tag").text_content() == "preview engine"
        gaps = [b[0] - a[0] for a, b in zip(moves, moves[1:], strict=False)]
        assert len(moves) >= 3 and max(gaps) < 1600, moves  # 0.5 s writes; slack for load
        status_url = f"{srv.base_url}/v2/text-to-video/{info['id']}"
        assert asked.count(f"{status_url}/events") >= 1, asked
        assert status_url not in asked, asked  # streamed, not polled
        t.shot("preview-banner")
    finally:
        t.close()


def test_no_banner_for_the_model_engine(tab: Any) -> None:
    t = tab(viewport={"width": 1280, "height": 900})
    t.page.route(
        "**/web/server.json",
        lambda route: route.fulfill(
            status=200, content_type="application/json", json={"engine": "ltx"}
        ),
    )
    page = t.open()
    assert page.locator("#engine-banner").is_hidden()


def test_ltx25_models_and_automatic_duration_are_offered(tab: Any, server: Server) -> None:
    """The forms follow the server's model table: LTX-2.5 with automatic duration, camera
    motion only where the model takes it, audio-to-video resolutions per model."""
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.open()
    t.save_key()
    page.select_option("#endpoint", "text-to-video")
    options = page.eval_on_selector(
        "#f-text-to-video-model", "s => [...s.options].map(o => o.value)"
    )
    assert {"ltx-2-5-fast", "ltx-2-5-pro"} <= set(options), options
    page.select_option("#f-text-to-video-model", "ltx-2-5-fast")
    assert page.is_disabled("#f-text-to-video-camera_motion")
    page.select_option("#f-text-to-video-model", "ltx-2-5-pro")
    assert not page.is_disabled("#f-text-to-video-camera_motion")
    fps = page.eval_on_selector("#f-text-to-video-fps", "s => [...s.options].map(o => o.value)")
    assert fps == ["24", "25", "50"], fps  # LTX-2.5 Pro: no 48
    page.fill("#f-text-to-video-prompt", "a paper boat on a puddle")
    page.select_option("#f-text-to-video-resolution", "1280x720")
    page.select_option("#f-text-to-video-duration", "auto")
    page.click("#submit-job")
    info = wait_completed_video(page)
    assert abs(info["duration"] - 4.0) < 0.15, info  # 3 s + 24/60 s -> 4 s
    page.select_option("#endpoint", "audio-to-video")
    for model, has_1440 in (("ltx-2-5-fast", True), ("ltx-2-5-pro", False)):
        page.select_option("#f-audio-to-video-model", model)
        res = page.eval_on_selector(
            "#f-audio-to-video-resolution", "s => [...s.options].map(o => o.value)"
        )
        assert ("2560x1440" in res) == has_1440 and "1280x720" in res, (model, res)


def test_api_reference_renders_offline(tab: Any, server: Server) -> None:
    """/docs draws the served OpenAPI document with assets from this server only: every
    request to another host is blocked and recorded, and none may be made."""
    t = tab(viewport={"width": 1280, "height": 900})
    page = t.page
    elsewhere: list[str] = []
    local = server.base_url + "/"

    def guard(route: Any) -> None:
        if route.request.url.startswith(local) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    csp: list[str] = []
    page.on(
        "console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None
    )
    page.goto(f"{server.base_url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.eval_on_selector_all(
        ".opblock-summary-path", "els => els.map(e => e.textContent.trim())"
    )
    assert "/v2/text-to-video" in paths and "/openapi.json" in paths, paths
    assert page.locator(".information-container .title").first.is_visible()
    assert not elsewhere, elsewhere
    assert not csp, csp
    t.shot("api-reference")


def test_cancel_button_cancels_a_running_job(tab: Any, server: Server) -> None:
    """The card of an unfinished job has a Cancel button: DELETE /v2/{endpoint}/{id}, and
    the card (and the server) show the job failed with cancelled_error; a finished
    job's card has none."""
    t = tab(viewport={"width": 1280, "height": 900})
    key = server.cli("keys", "create", "--name", "slow", "--simulate", "processing=60")
    key = key.split()[-1]
    page = t.open()
    with server.client(key) as c:
        job_id = c.post("/v2/text-to-video", json=T2V).json()["id"]
    t.save_key(key)
    sel = f"li.job[data-job-id='{job_id}']"
    page.wait_for_selector(f"{sel}[data-status='processing']", timeout=JOB_TIMEOUT_MS)
    card = page.locator(sel)
    card.locator("button", has_text="Cancel").click()
    page.wait_for_selector(f"{sel}[data-status='failed']")
    assert "cancelled_error" in (card.locator(".job-error").text_content() or "")
    assert card.locator("button", has_text="Cancel").is_hidden()
    with server.client(key) as c:
        body = c.get(f"/v2/text-to-video/{job_id}").json()
    assert body["status"] == "failed" and body["error"]["type"] == "cancelled_error"
