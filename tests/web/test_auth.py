"""Who gets in: the bearer token, the login form's session, the CSRF token, the wrong-password throttle."""

from __future__ import annotations

import logging

from tests.web.conftest import BEARER, csrf_of
from voxd.web.auth import FREE_TRIES, Sessions, Throttle, from_elsewhere, safe_next


def login(client) -> str:
    r = client.post("/login", data={"password": "secret", "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(client.get("/").text)


def test_the_api_answers_401_without_the_password(page):
    with page.client() as c:
        r = c.get("/api/jobs")
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "password" in r.json()["error"]
        assert c.get("/api/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/api/jobs", headers=BEARER).json() == []


def test_a_browser_is_sent_to_the_login_form_and_gets_a_strict_httponly_cookie(page):
    with page.client() as c:
        r = c.get("/jobs/1", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/jobs/1"
        r = c.post("/login", data={"password": "secret", "next": "/jobs/1"}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/jobs/1"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert c.get("/").status_code == 200


def test_after_login_next_never_leads_off_the_site():
    assert safe_next("//evil.example/") == "/"
    assert safe_next("https://evil.example/") == "/"
    assert safe_next("/\\evil.example") == "/"
    assert safe_next("/jobs/3") == "/jobs/3"


def test_a_session_must_send_its_csrf_token_to_change_anything(page):
    page.store.put("a" * 64, page.settings.inbox_dir / "a.epub")
    with page.client() as c:
        token = login(c)
        r = c.post("/api/jobs/1/cancel")
        assert r.status_code == 403 and "reload the page" in r.json()["error"]
        assert page.store.get(1).status.value == "queued"
        r = c.post("/jobs/1", data={"action": "cancel", "csrf": "not-it"}, follow_redirects=False)
        assert r.status_code == 403
        assert page.store.get(1).status.value == "queued"
        r = c.post("/api/jobs/1/cancel", headers={"X-CSRF-Token": token})
        assert r.status_code == 200, r.text
        assert page.store.get(1).status.value == "cancelled"


def test_a_request_from_another_site_is_refused_even_with_the_token(page):
    page.store.put("a" * 64, page.settings.inbox_dir / "a.epub")
    with page.client() as c:
        token = login(c)
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
            r = c.post("/api/jobs/1/cancel", headers={"X-CSRF-Token": token, **headers})
            assert r.status_code == 403, headers
        assert page.store.get(1).status.value == "queued"


def test_without_a_password_scripts_may_act_but_browsers_need_the_page_and_hosts_must_be_its_own(open_page):
    open_page.store.put("a" * 64, open_page.settings.inbox_dir / "a.epub")
    open_page.store.put("b" * 64, open_page.settings.inbox_dir / "b.epub")
    with open_page.client() as c:
        # a page elsewhere posting from the browser: it has no token
        r = c.post("/api/jobs/1/cancel", headers={"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
        assert r.status_code == 403
        # DNS rebinding: the browser calls the attacker's name, which now points here
        r = c.get("/api/jobs", headers={"Host": "evil.example:8765"})
        assert r.status_code == 403
        assert open_page.store.get(1).status.value == "queued"
        # curl on this machine
        assert c.post("/api/jobs/1/cancel").status_code == 200
        # the page itself: its session's token
        token = csrf_of(c.get("/").text)
        r = c.post("/api/jobs/2/cancel", headers={"X-CSRF-Token": token, "Sec-Fetch-Site": "same-origin",
                                                  "Origin": open_page.url})
        assert r.status_code == 200, r.text


def test_wrong_passwords_are_throttled_and_logged_with_the_address(page, caplog):
    caplog.set_level(logging.WARNING, logger="voxd.web.auth")
    with page.client() as c:
        codes = [c.post("/login", data={"password": f"guess{n}"}).status_code for n in range(FREE_TRIES + 1)]
        assert codes[:FREE_TRIES] == [401] * FREE_TRIES
        assert codes[FREE_TRIES] == 429
        # while it waits, even the right password is not compared
        r = c.post("/login", data={"password": "secret"}, follow_redirects=False)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # the bearer header counts too
        assert c.get("/api/jobs", headers={"Authorization": "Bearer nope"}).status_code == 429
    assert "wrong password from 127.0.0.1" in caplog.text


def test_wrong_bearer_tokens_are_throttled_and_the_right_one_waits_too(page):
    """Guessing through the API is no cheaper than through the form: while a client waits, even
    the right token is not compared, so a 200 never tells a guesser it was right."""
    with page.client() as c:
        codes = [c.get("/api/jobs", headers={"Authorization": f"Bearer guess{n}"}).status_code
                 for n in range(FREE_TRIES + 2)]
        assert codes[:FREE_TRIES] == [401] * FREE_TRIES and set(codes[FREE_TRIES:]) == {429}
        r = c.get("/api/jobs", headers=BEARER)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        # and a forged X-Forwarded-For is no way out: the address is the socket's
        r = c.get("/api/jobs", headers={**BEARER, "X-Forwarded-For": "10.9.8.7"})
        assert r.status_code == 429


def test_an_urlencoded_post_to_the_api_needs_the_token_too(page):
    """What a forged HTML form sends: a session cookie, urlencoded, no token."""
    page.store.put("a" * 64, page.settings.inbox_dir / "a.epub")
    with page.client() as c:
        login(c)
        r = c.post("/api/jobs/1/cancel?purge=1", content=b"x=1",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 403
    assert page.store.get(1).status.value == "queued"


def test_another_site_may_link_to_the_page_but_not_fetch_from_it(open_page):
    with open_page.client() as c:
        embedded = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
        assert c.get("/doctor", headers=embedded).status_code == 403
        assert c.get("/api/jobs/1/chapters/1/audio", headers=embedded).status_code == 403
        linked = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
        assert c.get("/", headers=linked).status_code == 200


def test_behind_a_proxy_that_rewrites_host_the_browsers_same_origin_is_believed(page):
    page.store.put("a" * 64, page.settings.inbox_dir / "a.epub")
    with page.client() as c:
        token = login(c)
        r = c.post("/api/jobs/1/cancel", headers={"X-CSRF-Token": token, "Origin": "https://voxd.example",
                                                  "Sec-Fetch-Site": "same-origin"})
        assert r.status_code == 200, r.text


def test_the_throttle_doubles_the_wait_and_forgets_after_a_success():
    now = [0.0]
    t = Throttle(clock=lambda: now[0])
    for _ in range(FREE_TRIES - 1):
        t.failed("10.0.0.1")
    assert t.wait("10.0.0.1") == 0
    t.failed("10.0.0.1")
    first = t.wait("10.0.0.1")
    t.failed("10.0.0.1")
    assert t.wait("10.0.0.1") == 2 * first
    assert t.wait("10.0.0.2") == 0
    t.succeeded("10.0.0.1")
    assert t.wait("10.0.0.1") == 0


def test_sessions_expire():
    now = [0.0]
    sessions = Sessions(clock=lambda: now[0])
    token, session = sessions.new()
    assert sessions.get(token) is session
    now[0] += 15 * 86400
    assert sessions.get(token) is None


def test_what_a_browser_says_of_where_a_request_comes_from():
    same = {"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8765"}
    assert from_elsewhere(same, "127.0.0.1:8765") is None
    assert from_elsewhere({}, "127.0.0.1:8765") is None
    assert from_elsewhere({"origin": "http://127.0.0.1:9999"}, "127.0.0.1:8765")
    assert from_elsewhere({"origin": "null"}, "127.0.0.1:8765")
    assert from_elsewhere({"sec-fetch-site": "same-site"}, "127.0.0.1:8765")
