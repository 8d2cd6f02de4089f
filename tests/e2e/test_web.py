"""The web page in a real browser (Debian's Chromium, headless) against a real daemon.

A person logs in, uploads one book with the file picker and drops another on the page,
watches the first finish through the live progress (no reload), plays its first chapter
(the audio element must reach a playable state), cancels the second, and axe-core finds
no serious or critical accessibility violations on the pages they used.
"""

from __future__ import annotations

import base64
import os
import shutil

import pytest

from tests.servers import free_port
from tests.support import long_book
from voxd.samples import build_sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no system Chromium (Debian: apt-get install chromium); .ci/run installs it", allow_module_level=True)

from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

#: A screenshot of the queue for the README is written here when this is set.
SCREENSHOT = os.environ.get("VOXD_SCREENSHOT")


def serious(page) -> list[str]:
    result = Axe().run(page)
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def test_log_in_upload_watch_play_cancel_in_a_real_browser(daemon_factory, browser, tmp_path):
    port = free_port()
    daemon = daemon_factory(VOXD_WEB__LISTEN=f"127.0.0.1:{port}", VOXD_WEB__PASSWORD="correct horse")
    daemon.start()
    url = f"http://127.0.0.1:{port}"
    alice = build_sample(tmp_path / "alice.epub")
    long = long_book(tmp_path / "long.epub")

    page = browser.new_page()
    page.goto(url + "/")
    assert page.url.startswith(url + "/login")
    assert serious(page) == []
    page.fill("#password", "not it")
    page.click("button[type=submit]")
    assert "not the password" in page.inner_text("main")
    page.fill("#password", "correct horse")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.wait_for_selector("body[data-live=yes]")  # the event stream is open

    # record every status the first row shows, as the live updates set it
    page.evaluate("""() => { window.seen = []; new MutationObserver(() => {
        const s = document.querySelector('tr[data-job="1"] .status'); if (s) window.seen.push(s.textContent);
    }).observe(document.getElementById('jobs'), {subtree: true, childList: true, characterData: true}); }""")
    page.set_input_files("#file", str(alice))
    page.click("#upload button[type=submit]")
    page.wait_for_selector("#upload-said:has-text('queued as job 1')")

    # the second book is dropped on the page
    page.evaluate("""([name, data]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type: 'application/epub+zip'}));
        document.getElementById('drop').dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true}));
    }""", ["long.epub", base64.b64encode(long.read_bytes()).decode()])
    page.wait_for_selector("#upload-said:has-text('queued as job 2')")

    page.wait_for_function("""() => Array.from(document.querySelectorAll('tr[data-job="1"] .status'))
        .some((s) => s.textContent === 'done')""", timeout=180_000)
    seen = page.evaluate("window.seen")
    assert "done" in seen and seen.index("done") > 0, seen  # it changed under our eyes: no reload
    assert serious(page) == []
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    # the second book: cancelled from its page (queued behind the first, or started)
    page.goto(url + "/jobs/2")
    page.click("form:has(input[value=cancel]) button")
    assert "job 2 cancelled" in page.inner_text("main")
    assert daemon.store().get(2).status.value == "cancelled"

    # the first book's first chapter plays
    page.goto(url + "/jobs/1")
    assert serious(page) == []
    audio = page.locator(".chapters audio").first
    state = audio.evaluate("""(a) => new Promise((done) => {
        a.addEventListener('canplay', () => done(a.readyState), {once: true});
        a.addEventListener('error', () => done('error ' + (a.error && a.error.code)), {once: true});
        a.load();
    })""")
    assert state in (3, 4), state  # HAVE_FUTURE_DATA or HAVE_ENOUGH_DATA
    duration = audio.evaluate("(a) => a.duration")
    assert duration > 1.0
    # the keyboard reaches it
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"

    # a script without the password is refused
    import httpx

    assert httpx.get(url + "/api/jobs").status_code == 401
    assert daemon.stop() == 0


def test_the_daemon_refuses_a_page_open_to_the_network_without_a_password(daemon_factory):
    daemon = daemon_factory(VOXD_WEB__LISTEN=f"0.0.0.0:{free_port()}")
    out = daemon.cli("run")
    assert out.returncode != 0
    assert "[web] listen = '0.0.0.0:" in out.stderr and "no password is set" in out.stderr
    assert not (daemon.state / "voxd.lock").exists() or "voxd ready" not in daemon.log()


def test_a_port_in_use_leaves_the_daemon_serving_the_inbox(daemon_factory, tmp_path):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = daemon_factory(VOXD_WEB__LISTEN=f"127.0.0.1:{port}").start()
        assert "the web page cannot listen on 127.0.0.1" in daemon.log()
        shutil.copy(build_sample(tmp_path / "alice.epub"), daemon.inbox / "alice.epub")
        daemon.wait_for(lambda: daemon.outputs(), 120, "the book")
        assert daemon.stop() == 0

