"""
The web pages over plain HTTP, against running daemons: what they show,
that hostile descriptions are neutralized, sessions (cookies, CSRF, slowed
failed logins, several daemons on one PostgreSQL), project management
through the domain and its journal, and read-only mirrors.
"""

from __future__ import annotations

import functools
import hashlib
import html
import os
import re
import sqlite3
import time
import xmlrpc.client
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.web.template import flattenString

from twistedindex.accounts import LoginThrottle
from twistedindex.config import Settings
from twistedindex.errors import Unauthenticated
from twistedindex.web.pages import description_html, safe_html

from .daemon import RunningIndex
from .distributions import multipart, upload_fields, wheel
from .http import Response, basic, get, post_form, request
from .mirroring import PASSWORD
from .mirroring import upload as upload_as

OTHER_PASSWORD = "other-pages-password"

upload = functools.partial(upload_as, user="alice")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("pages"))).start()
    running.add_user("alice", PASSWORD)
    running.add_user("bob", OTHER_PASSWORD)
    dists = tmp_path_factory.mktemp("dists")
    for version in ("1.0", "2.0"):
        dist = wheel(dists, "Page.Demo", version, summary="Pages for people")
        assert upload(running, dist, "Page.Demo", version).status == 200
    yield running
    running.stop()


class Browser:
    """
    A client that keeps cookies, as a browser does (without following
    redirects, so that tests see them).
    """

    def __init__(self, index: RunningIndex) -> None:
        self.index = index
        self.cookies: dict[str, str] = {}
        self.set_cookie_headers: list[str] = []

    def _headers(self) -> dict[str, str]:
        if not self.cookies:
            return {}
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}

    def _keep(self, response: Response) -> Response:
        for header in response.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response

    def get(self, path: str) -> Response:
        return self._keep(get(self.index.url + path.lstrip("/"), self._headers()))

    def post(self, path: str, fields: dict[str, str]) -> Response:
        body = urlencode(fields).encode()
        headers = {"Content-Type": "application/x-www-form-urlencoded", **self._headers()}
        return self._keep(request("POST", self.index.url + path.lstrip("/"), body, headers))

    def csrf(self, path: str) -> str:
        """
        The CSRF token of the page's forms.
        """
        page = self.get(path)
        assert page.status == 200, page
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match is not None, page.text
        return html.unescape(match.group(1))

    def log_in(self, user: str, password: str) -> Response:
        token = self.csrf("/account/login/")
        return self.post("/account/login/", {"csrf_token": token, "username": user, "password": password})


def database(index: RunningIndex) -> str:
    return Settings(data_dir=index.data_dir).sqlite_path


def set_releases(index: RunningIndex, project: str, **columns: str) -> None:
    """
    Write columns of a project's releases straight into the database,
    standing in for what a mirror copies from its upstream unchecked.
    """
    connection = sqlite3.connect(database(index))
    with connection:
        connection.execute(
            f"UPDATE releases SET {', '.join(f'{name} = ?' for name in columns)} "
            "WHERE project_id = (SELECT id FROM projects WHERE normalized_name = ?)",
            (*columns.values(), project),
        )
    connection.close()


def journal(index: RunningIndex, since: int = 0) -> list[tuple[str, str | None, str]]:
    proxy = xmlrpc.client.ServerProxy(index.url + "pypi")
    return [(name, version, action) for name, version, _, action, _ in proxy.changelog_since_serial(since)]


def test_pages_show_the_index(index: RunningIndex) -> None:
    """
    The start page counts what the index holds; a project's page shows its
    latest release, its history and its files; a release's page its own;
    non-normalized names redirect; unknown ones are a 404 page.
    """
    home = get(index.url)
    assert home.status == 200 and home.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<strong>1</strong> project" in home.text and "<strong>2</strong> releases" in home.text
    assert 'href="/project/page-demo/2.0/"' in home.text
    assert "script-src" not in home.headers["Content-Security-Policy"]  # so no script at all
    assert "default-src 'none'" in home.headers["Content-Security-Policy"]
    stylesheet = re.search(r'<link rel="stylesheet" href="([^"]+)"', home.text)
    assert stylesheet is not None
    css = get(index.url + stylesheet.group(1).lstrip("/"))
    assert css.status == 200 and css.headers["Content-Type"].startswith("text/css") and b"--brand" in css.body

    page = get(index.url + "project/page-demo/")
    assert page.status == 200
    assert "<h1>Page.Demo <span" in page.text and "Pages for people" in page.text
    assert "pip install --index-url " + index.simple_url + " page-demo" in page.text
    assert "page_demo-2.0-py3-none-any.whl" in page.text and "page_demo-1.0-py3-none-any.whl" not in page.text
    assert 'href="/project/page-demo/1.0/"' in page.text and 'href="/user/alice/"' in page.text

    release = get(index.url + "project/page-demo/1.0/")
    assert release.status == 200 and "page_demo-1.0-py3-none-any.whl" in release.text
    assert "page-demo==1.0" in release.text

    for path, location in [
        ("project/Page.Demo/", "/project/page-demo/"),
        ("project/PAGE_demo/1.0/", "/project/page-demo/1.0/"),
        ("project/page-demo/1.0.0/", "/project/page-demo/1.0/"),
    ]:
        moved = get(index.url + path)
        assert (moved.status, moved.headers["Location"]) == (301, location), path
    for path in ("project/nothing-here/", "project/page-demo/9.9/", "user/nobody/"):
        missing = get(index.url + path)
        assert missing.status == 404 and "<!DOCTYPE html>" in missing.text, path

    user = get(index.url + "user/alice/")
    assert user.status == 200 and 'href="/project/page-demo/"' in user.text


def test_pages_show_changes_made_elsewhere_at_once(index: RunningIndex, tmp_path: Path) -> None:
    """
    The project and start pages keep what they read, yet a change made by
    another process (cheeseshop-admin) shows on the next view.
    """
    for version in ("1.0", "2.0"):
        assert upload(index, wheel(tmp_path, "kept-pages", version), "kept-pages", version).status == 200
    assert "broken by admin" not in get(index.url + "project/kept-pages/1.0/").text
    before = get(index.url).text
    index.admin("yank", "kept-pages", "1.0", "--reason", "broken by admin")
    assert "broken by admin" in get(index.url + "project/kept-pages/1.0/").text
    assert "broken by admin" in get(index.url + "project/kept-pages/").text  # the release history
    index.admin("remove", "kept-pages", "2.0")
    assert get(index.url + "project/kept-pages/2.0/").status == 404
    assert get(index.url).text != before  # one release fewer


def test_search_ranks_and_pages(index: RunningIndex, tmp_path: Path) -> None:
    """
    The search page finds projects by the same index as XML-RPC search, an
    exact name first, twenty to a page.
    """
    for n in range(22):
        name = f"findme-{n:02d}"
        assert upload(index, wheel(tmp_path, name, "1.0", summary="Something to findme by"), name, "1.0").status == 200
    first = get(index.url + "search/?q=findme")
    assert first.status == 200
    assert len(re.findall(r'<li><a href="/project/findme-', first.text)) == 20
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = get(index.url + "search/?q=findme&page=2")
    assert len(re.findall(r'<li><a href="/project/findme-', second.text)) == 2
    assert 'rel="prev"' in second.text and 'rel="next"' not in second.text
    exact = get(index.url + "search/?q=findme-07")
    assert re.search(r'<li><a href="/project/([^/]+)/"', exact.text).group(1) == "findme-07"  # type: ignore[union-attr]
    rpc = xmlrpc.client.ServerProxy(index.url + "pypi").search({"name": "findme-07"})
    assert rpc[0]["name"] == "findme-07"
    assert "No projects match" in get(index.url + "search/?q=nothingmatchesthis").text


HOSTILE_MARKDOWN = """\
# Hostile

<script>alert("script")</script>

[click me](javascript:alert('link'))

<img src="x.png" onerror="alert('img')">

<a href="https://example.org" onclick="alert('click')">a link</a>

<iframe src="https://example.org"></iframe>
"""


def assert_neutralized(page: str) -> None:
    """
    No element of C{page} runs script: no script or iframe element, no
    javascript: URL in an attribute, no event-handler attribute.  (Text that
    merely mentions them, escaped, is harmless.)
    """
    lowered = page.lower()
    assert "<script" not in lowered and "<iframe" not in lowered
    for tag in re.findall(r"<[a-z][^>]*>", lowered):
        assert not re.search(r"""\son[a-z]+\s*=""", tag), tag
        assert not re.search(r"""=\s*["']?\s*javascript:""", tag), tag


def test_hostile_markdown_is_neutralized(index: RunningIndex, tmp_path: Path) -> None:
    """
    A Markdown description with a script, a javascript: link and event
    handlers is shown without any of them, its harmless parts kept.
    """
    dist = wheel(tmp_path, "hostile-md", "1.0", description=HOSTILE_MARKDOWN, description_content_type="text/markdown")
    assert upload(index, dist, "hostile-md", "1.0").status == 200
    page = get(index.url + "project/hostile-md/")
    assert page.status == 200
    description = page.text.split('<div class="description">', 1)[1].split('<section id="history">', 1)[0]
    assert_neutralized(page.text)
    assert 'href="https://example.org"' in description and "a link" in description
    assert ">Hostile<" in description


def secret_file(tmp_path: Path) -> tuple[Path, str]:
    secret = "TOP-SECRET-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    path = tmp_path / "secret.txt"
    path.write_text(secret + "\n")
    return path, secret


def hostile_rst(secret_path: Path) -> str:
    return (
        "Hostile\n=======\n\n"
        ".. raw:: html\n\n   <script>alert('raw')</script>\n\n"
        f".. include:: {secret_path}\n\n"
        f".. include:: {secret_path}\n   :literal:\n\n"
        f".. csv-table:: Leak\n   :file: {secret_path}\n\n"
        "`click <javascript:alert('rst')>`_\n"
    )


def test_hostile_rst_is_refused_and_neutralized(index: RunningIndex, tmp_path: Path) -> None:
    """
    A reST description using raw, include or file insertion is refused at
    upload (it does not render with the safe settings); one that got in some
    other way (a mirror copies its upstream's as they are) is shown as text,
    with no script and none of the included file.
    """
    secret_path, secret = secret_file(tmp_path)
    hostile = hostile_rst(secret_path)
    dist = wheel(tmp_path, "hostile-rst", "1.0", description=hostile)
    refused = upload(index, dist, "hostile-rst", "1.0")
    assert refused.status == 400 and "failed to render" in refused.reason

    assert upload(index, wheel(tmp_path, "hostile-rst", "1.0"), "hostile-rst", "1.0").status == 200
    set_releases(index, "hostile-rst", description=hostile, description_content_type="text/x-rst")
    page = get(index.url + "project/hostile-rst/")
    assert page.status == 200
    assert_neutralized(page.text)
    assert secret not in page.text
    assert "&lt;script&gt;" in page.text  # shown, as text


@pytest.mark.parametrize(
    "text, content_type",
    [
        (HOSTILE_MARKDOWN, "text/markdown"),
        ("<script>alert(1)</script> <a href='javascript:x'>x</a>", "text/plain"),
        ("Fine\n====\n\n`click <javascript:alert(1)>`_ and <script>x</script>\n", "text/x-rst"),
    ],
)
def test_rendered_descriptions_carry_no_script(text: str, content_type: str | None, tmp_path: Path) -> None:
    """
    Whatever the content type, a description's HTML as the page writes it
    carries no script, javascript: URL or event handler.
    """
    rendered = description_html(text, content_type)
    assert rendered is not None
    written = flattenString(None, safe_html(rendered))
    assert_neutralized(written.result.decode())


def test_rst_raw_does_not_render() -> None:
    """
    reST's raw directive is off: such a description does not render (the
    page then shows its text, escaped).
    """
    assert description_html("Fine\n====\n\n.. raw:: html\n\n   <script>alert(1)</script>\n", None) is None


def test_rst_include_reads_no_file(tmp_path: Path) -> None:
    """
    reST include and file-inserting directives do not read the server's
    files: the description does not render at all.
    """
    secret_path, secret = secret_file(tmp_path)
    for directive in (f".. include:: {secret_path}\n", f".. csv-table:: x\n   :file: {secret_path}\n"):
        rendered = description_html("Title\n=====\n\n" + directive, "text/x-rst")
        assert rendered is None or secret not in rendered


def test_login_sets_a_hashed_session_with_safe_cookies(index: RunningIndex) -> None:
    """
    Logging in needs the login form's CSRF token; it sets an HttpOnly,
    SameSite=Lax session cookie (not Secure over http) whose id is stored
    only as a hash; logging out ends the session in the database.
    """
    browser = Browser(index)
    token = browser.csrf("/account/login/")
    assert any("cheeseshop_login=" in h and "SameSite=strict" in h for h in browser.set_cookie_headers)
    forged = browser.post("/account/login/", {"username": "alice", "password": PASSWORD, "csrf_token": "forged"})
    assert forged.status == 403 and "cheeseshop_session" not in browser.cookies
    wrong = browser.post("/account/login/", {"username": "alice", "password": "wrong-password", "csrf_token": token})
    assert wrong.status == 401 and "Wrong username or password." in wrong.text
    done = browser.post("/account/login/", {"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert (done.status, done.headers["Location"]) == (303, "/account/")
    cookie = next(h for h in done.headers.get_all("Set-Cookie") if h.startswith("cheeseshop_session="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie and "Secure" not in cookie
    session_id = browser.cookies["cheeseshop_session"]

    connection = sqlite3.connect(database(index))
    digests = [row[0] for row in connection.execute("SELECT digest FROM sessions")]
    connection.close()
    assert hashlib.sha256(session_id.encode()).hexdigest() in digests and session_id not in digests

    account = browser.get("/account/")
    assert account.status == 200 and account.headers["Cache-Control"] == "no-store" and "Your account" in account.text
    logout = browser.post("/account/logout/", {"csrf_token": browser.csrf("/account/")})
    assert logout.status == 303 and "cheeseshop_session" not in browser.cookies
    connection = sqlite3.connect(database(index))
    assert hashlib.sha256(session_id.encode()).hexdigest() not in [
        row[0] for row in connection.execute("SELECT digest FROM sessions")
    ]
    connection.close()
    # The old cookie is worth nothing now.
    stale = get(index.url + "account/", {"Cookie": f"cheeseshop_session={session_id}"})
    assert stale.status == 303 and stale.headers["Location"].startswith("/account/login/")


def test_session_cookie_is_secure_behind_https(tmp_path: Path) -> None:
    """
    With an https base URL, the session and login cookies are Secure.
    """
    running = RunningIndex(str(tmp_path), "--base-url", "https://pypi.example.org").start()
    try:
        running.add_user("alice", PASSWORD)
        browser = Browser(running)
        done = browser.log_in("alice", PASSWORD)
        assert done.status == 303
        assert all("Secure" in header for header in browser.set_cookie_headers)
    finally:
        running.stop()


def test_forms_need_the_sessions_csrf_token(index: RunningIndex, tmp_path: Path) -> None:
    """
    A form posted without its session's CSRF token changes nothing (403);
    with it, an API token is made and shown once.
    """
    browser = Browser(index)
    assert browser.log_in("alice", PASSWORD).status == 303
    before = browser.get("/account/").text.count("<tr")
    for fields in ({}, {"csrf_token": "forged"}):
        refused = browser.post("/account/tokens/", {"description": "forged", **fields})
        assert refused.status == 403
    assert browser.get("/account/").text.count("<tr") == before
    created = browser.post("/account/tokens/", {"description": "mine", "csrf_token": browser.csrf("/account/")})
    assert created.status == 200
    token = re.search(r'<code class="token" id="new-token">([^<]+)</code>', created.text).group(1)  # type: ignore[union-attr]
    assert token.startswith("cheeseshop-") and token not in browser.get("/account/").text
    # Scoped to a project alice has no role on: refused by the domain.
    bobs = wheel(tmp_path, "bobs-own", "1.0")
    content_type, body = multipart(
        upload_fields(bobs, "bobs-own", "1.0"), [("content", bobs.name, bobs.read_bytes(), None)]
    )
    assert post_form(index.upload_url, content_type, body, basic("bob", OTHER_PASSWORD)).status == 200
    other = browser.post(
        "/account/tokens/", {"description": "x", "project": "bobs-own", "csrf_token": browser.csrf("/account/")}
    )
    assert other.status == 403
    # Scoped to no such project: 404.
    missing = browser.post(
        "/account/tokens/", {"description": "x", "project": "findme-00x", "csrf_token": browser.csrf("/account/")}
    )
    assert missing.status == 404
    # Without a session at all: 403, nothing made.
    assert Browser(index).post("/account/tokens/", {"description": "x", "csrf_token": "x"}).status == 403


@pytest.mark.parametrize(
    "next_url",
    ["//evil.example/", "/\t/evil.example/", "/\\evil.example/", "https://evil.example/", "/\n/evil.example"],
)
def test_login_never_sends_the_browser_elsewhere(index: RunningIndex, next_url: str) -> None:
    """
    The page a login goes back to (C{next}) is a path on this site, or the
    start page: never another site, however the URL is spelled.
    """
    browser = Browser(index)
    token = browser.csrf("/account/login/?" + urlencode({"next": next_url}))
    fields = {"csrf_token": token, "username": "alice", "password": PASSWORD, "next": next_url}
    logged_in = browser.post("/account/login/", fields)
    assert logged_in.status == 303 and logged_in.headers["Location"] == "/"
    again = browser.get("/account/login/?" + urlencode({"next": next_url}))
    assert again.status == 303 and again.headers["Location"] == "/"
    assert browser.get("/account/login/?next=/project/page-demo/").headers["Location"] == "/project/page-demo/"


def test_a_new_password_ends_the_users_sessions(index: RunningIndex) -> None:
    """
    A password set with cheeseshop-admin (a reset after a compromise) ends
    every web session of that user.
    """
    index.add_user("carol", "carol-first-password")
    browser = Browser(index)
    assert browser.log_in("carol", "carol-first-password").status == 303
    assert browser.get("/account/").status == 200
    index.admin("passwd", "carol", "--password-stdin", password="carol-second-password")
    assert browser.get("/account/").status == 303  # back to the login form


def test_guesses_in_parallel_wait_longer_each() -> None:
    """
    Guesses for one name from one address are checked one at a time, each
    after a wait twice the last: sent together, they do not all get the
    same short wait.  A success forgets the failures; only the names most
    recently tried are kept.
    """
    clock = Clock()
    throttle = LoginThrottle()
    key = ("bob", "192.0.2.1")
    checked: list[float] = []

    async def wrong() -> None:
        checked.append(clock.seconds())
        raise Unauthenticated("wrong")

    guesses = [Deferred.fromCoroutine(throttle.check(clock, key, wrong)) for _ in range(4)]
    for _ in range(10):
        clock.advance(0.25)
    assert checked == [0.0, 0.25, 0.75, 1.75]
    for guess in guesses:
        assert isinstance(guess.result.value, Unauthenticated)
        guess.addErrback(lambda _: None)

    async def right() -> str:
        return "ok"

    late = Deferred.fromCoroutine(throttle.check(clock, key, right))
    clock.advance(8)
    assert late.result == "ok"
    assert throttle.delay(key, clock.seconds()) == 0.0
    small = LoginThrottle(size=2)
    for name in ("a", "b", "c"):
        small.failed((name, ""), 0.0)
    assert small.delay(("c", ""), 0.0) == 0.25
    assert small.delay(("a", ""), 0.0) == 0.0  # forgotten


def test_only_owners_get_the_manage_page(index: RunningIndex) -> None:
    """
    A logged-in user who is not an Owner gets 403 from every management
    form, even one that is wrongly filled in, and never the page's forms.
    """
    browser = Browser(index)
    assert browser.log_in("bob", OTHER_PASSWORD).status == 303
    token = browser.csrf("/account/")
    for path, fields in (
        ("delete/", {"version": "1.0", "confirm": "wrong"}),
        ("roles/", {"username": "bob", "role": "Nobody"}),
        ("yank/", {"version": "1.0", "reason": "x"}),
    ):
        refused = browser.post(f"/manage/project/page-demo/{path}", {"csrf_token": token, **fields})
        assert refused.status == 403, path
        assert "Delete file" not in refused.text


def test_metadata_of_any_shape_shows(index: RunningIndex, tmp_path: Path) -> None:
    """
    Metadata fields of unexpected types (a mirror keeps its upstream's JSON
    as it came) leave the page showing what makes sense, not failing.
    """
    assert upload(index, wheel(tmp_path, "odd-shapes", "1.0"), "odd-shapes", "1.0").status == 200
    set_releases(
        index,
        "odd-shapes",
        metadata='{"project_urls": ["x"], "home_page": 5, "license": 7, "author": ["a"], "keywords": 3, '
        '"classifiers": [1, "Framework :: Twisted"], "download_url": "https://example.org/dl"}',
    )
    page = get(index.url + "project/odd-shapes/")
    assert page.status == 200
    assert "Twisted" in page.text and "https://example.org/dl" in page.text


def test_failed_logins_are_slowed_down(index: RunningIndex) -> None:
    """
    Each failed login for a user from one address doubles the wait before
    the next is checked; another user name is not slowed.
    """
    browser = Browser(index)
    token = browser.csrf("/account/login/")
    timings = []
    for _ in range(5):
        started = time.monotonic()
        response = browser.post("/account/login/", {"username": "bob", "password": "nope-nope", "csrf_token": token})
        timings.append(time.monotonic() - started)
        assert response.status == 401
    # Waits of 0, 0.25, 0.5, 1 and 2 seconds before each check.
    assert timings[4] >= 2.0 and timings[3] >= 1.0, timings
    started = time.monotonic()
    assert browser.post("/account/login/", {"username": "alice", "password": "x", "csrf_token": token}).status == 401
    assert time.monotonic() - started < 1.0


def test_wrong_upload_passwords_are_slowed_down_too(index: RunningIndex, tmp_path: Path) -> None:
    """
    The upload API's passwords share the login form's throttle: failures
    there slow the next login for that name from that address.
    """
    dist = wheel(tmp_path, "page-demo", "9.0", dist_name="page_demo")
    content_type, body = multipart(
        upload_fields(dist, "page-demo", "9.0"), [("content", dist.name, dist.read_bytes(), None)]
    )
    for _ in range(3):
        assert post_form(index.upload_url, content_type, body, basic("alice", "wrong-password")).status == 403
    browser = Browser(index)
    token = browser.csrf("/account/login/")
    started = time.monotonic()
    logged_in = browser.post("/account/login/", {"username": "alice", "password": PASSWORD, "csrf_token": token})
    assert logged_in.status == 303
    assert time.monotonic() - started >= 1.0  # waits of 0, 0.25 and 0.5 s before, 1 s now


def test_owners_manage_roles_through_the_journal(index: RunningIndex, tmp_path: Path) -> None:
    """
    An Owner adds a Maintainer and removes them again on the manage page,
    each written to the journal in PyPI's words; a Maintainer can neither
    see the manage page nor yank; the last Owner cannot be removed.
    """
    assert upload(index, wheel(tmp_path, "roles-demo", "1.0"), "roles-demo", "1.0").status == 200
    serial = max(s for *_, s in xmlrpc.client.ServerProxy(index.url + "pypi").changelog_since_serial(0))
    alice = Browser(index)
    alice.log_in("alice", PASSWORD)
    token = alice.csrf("/manage/project/roles-demo/")
    added = alice.post(
        "/manage/project/roles-demo/roles/",
        {"csrf_token": token, "action": "add", "username": "bob", "role": "Maintainer"},
    )
    assert (added.status, added.headers["Location"]) == (303, "/manage/project/roles-demo/")
    page = get(index.url + "project/roles-demo/").text
    assert 'href="/user/bob/">bob</a> <span class="badge">Maintainer</span>' in page

    bob = Browser(index)
    bob.log_in("bob", OTHER_PASSWORD)
    assert "Manage project" not in bob.get("/project/roles-demo/").text
    assert bob.get("/manage/project/roles-demo/").status == 403
    bob_token = bob.csrf("/account/")
    refused = bob.post("/manage/project/roles-demo/yank/", {"csrf_token": bob_token, "version": "1.0"})
    assert refused.status == 403
    last_owner = alice.post(
        "/manage/project/roles-demo/roles/", {"csrf_token": token, "action": "remove", "username": "alice"}
    )
    assert last_owner.status == 400 and "must keep at least one Owner" in last_owner.text
    # The page offers to remove the Maintainer, not the last Owner.
    managed = alice.get("/manage/project/roles-demo/").text
    assert 'name="username" value="bob"' in managed and 'name="username" value="alice"' not in managed
    removed = alice.post(
        "/manage/project/roles-demo/roles/", {"csrf_token": token, "action": "remove", "username": "bob"}
    )
    assert removed.status == 303
    yanked = alice.post("/manage/project/roles-demo/yank/", {"csrf_token": token, "version": "1.0", "reason": "oops"})
    assert yanked.status == 303
    assert journal(index, serial) == [
        ("roles-demo", None, "add Maintainer bob"),
        ("roles-demo", None, "remove Maintainer bob"),
        ("roles-demo", "1.0", "yank release"),
    ]
    unconfirmed = alice.post(
        "/manage/project/roles-demo/delete/", {"csrf_token": token, "version": "1.0", "confirm": "no"}
    )
    assert unconfirmed.status == 400 and "to confirm" in unconfirmed.text
    assert get(index.url + "project/roles-demo/1.0/").status == 200


def test_a_mirror_shows_pages_without_forms(index: RunningIndex, tmp_path: Path) -> None:
    """
    A read-only mirror serves the same project pages with no login and no
    management, and refuses the forms' requests with 403.
    """
    mirror = RunningIndex(str(tmp_path), "--mirror-of", index.url.rstrip("/"), "--mirror-interval", "0.3").start()
    try:
        deadline = time.monotonic() + 30
        while get(mirror.url + "project/page-demo/").status != 200:
            assert time.monotonic() < deadline, mirror.daemon.log
            time.sleep(0.1)
        page = get(mirror.url + "project/page-demo/").text
        assert "Pages for people" in page and "page_demo-2.0-py3-none-any.whl" in page
        assert '<form method="post"' not in page and "Log in" not in page and "read-only mirror" in page
        assert get(mirror.url + "account/login/").status == 403
        assert get(mirror.url + "manage/project/page-demo/").status == 403
        for path in ("account/login/", "manage/project/page-demo/yank/", "account/tokens/"):
            response = request(
                "POST", mirror.url + path, b"csrf_token=x", {"Content-Type": "application/x-www-form-urlencoded"}
            )
            assert response.status == 403 and "read-only mirror" in response.text, path
    finally:
        mirror.stop()


@pytest.mark.postgres
def test_sessions_work_across_daemons_on_one_database(tmp_path: Path, pg_dsn: str) -> None:
    """
    Several daemons on one PostgreSQL database share sessions: a login made
    on one is good on the other, and a logout on either ends it on both.
    """
    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    first = RunningIndex(data_dir, database=pg_dsn).start()
    second = RunningIndex(data_dir, database=pg_dsn).start()
    try:
        first.add_user("alice", PASSWORD)
        on_first = Browser(first)
        assert on_first.log_in("alice", PASSWORD).status == 303
        on_second = Browser(second)
        on_second.cookies = dict(on_first.cookies)
        account = on_second.get("/account/")
        assert account.status == 200 and "Your account" in account.text
        assert on_second.post("/account/logout/", {"csrf_token": on_second.csrf("/account/")}).status == 303
        assert on_first.get("/account/").status == 303
        # NUL, which PostgreSQL refuses in text, finds nothing and is refused in forms.
        for path in ("/user/ali%00ce/", "/project/a%00b/", "/manage/project/a%00b/"):
            assert on_first.get(path).status == 404, path
        login = on_first.post(
            "/account/login/",
            {"csrf_token": on_first.csrf("/account/login/"), "username": "ali\x00ce", "password": PASSWORD},
        )
        assert login.status == 400 and "NUL" in login.text
    finally:
        first.stop()
        second.stop()
