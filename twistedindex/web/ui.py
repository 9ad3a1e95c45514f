# -*- test-case-name: tests.test_web_pages -*-
"""
The web pages people use in a browser: the start page, projects, search,
users, accounts (login, password, API tokens) and project management.

Each route parses the request, calls the domain (L{PackageIndex}), and
renders a page from L{twistedindex.web.pages}.  A browser logs in with a
session cookie (HttpOnly, SameSite=Lax, Secure over https) whose id is
stored hashed in the database, so every daemon on a shared database knows
it.  Every form carries a CSRF token: the session's own, or, on the login
form, one that must match a cookie of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from importlib import resources
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from klein import Klein
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.server import Request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.exceptions import NotFound as RouteNotFound

from ..accounts import LoginThrottle, client_host
from ..config import Settings
from ..errors import CheeseshopError, Forbidden, InvalidRequest, NotFound, Unauthenticated
from ..index import OWNER, SESSION_SECONDS, PackageIndex, ProjectDetail, WebSession
from ..names import find_release, latest_release, normalize
from ..storage.search import Query
from . import pages
from .errors import status_of

log = Logger()

# How many rendered descriptions, and projects read whole, the project
# pages keep.
RENDERED_DESCRIPTIONS = 256
KEPT_PROJECTS = 256

SESSION_COOKIE = b"cheeseshop_session"
LOGIN_COOKIE = b"cheeseshop_login"

STYLESHEET = (resources.files(__package__) / "static" / "style.css").read_bytes()
STYLESHEET_VERSION = hashlib.sha256(STYLESHEET).hexdigest()[:12]

# Pages may show images from the web (a README's badges), nothing else from
# elsewhere; no script runs at all, even if a description's sanitizing failed.
_SECURITY_HEADERS = (
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
)


def _form(request: Request) -> dict[str, str]:
    """
    A form's fields (the first value of each), as text.
    """
    form = {
        key.decode("utf-8", "replace"): values[0].decode("utf-8", "replace").strip()
        for key, values in (request.args or {}).items()
        if values
    }
    # NUL belongs in no field, and PostgreSQL refuses it in text.
    if any("\x00" in key or "\x00" in value for key, value in form.items()):
        raise InvalidRequest("A form field holds a NUL character.")
    return form


def _local(url: str) -> str:
    """
    C{url} if it is a path on this site, else C{/}: a login never sends the
    browser elsewhere.  Browsers drop tabs and line breaks from a URL and
    read a backslash as a slash, so C{/<tab>/host} would be C{//host}: any
    such character refuses it.
    """
    if any(c <= " " or c in "\\\x7f" for c in url):
        return "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not url.startswith("/") or url.startswith("//"):
        return "/"
    return url


K = TypeVar("K")
V = TypeVar("V")


class _Recent(Generic[K, V]):
    """
    The C{size} values most recently used.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def __contains__(self, key: K) -> bool:
        return key in self._items

    def __getitem__(self, key: K) -> V:
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)


class WebUI:
    """
    The pages, as a Klein app of their own.
    """

    app = Klein()

    def __init__(self, index: PackageIndex, settings: Settings, throttle: LoginThrottle | None = None) -> None:
        self.index = index
        self.settings = settings
        self.throttle = throttle or LoginThrottle()
        # The start page's counts and recent uploads scan whole tables: kept
        # until the index changes.
        self._home: tuple[Any, Any] | None = None
        # Project pages read a project whole (every release and file); kept
        # for the most recently shown until the project changes.
        self._details: _Recent[str, ProjectDetail] = _Recent(KEPT_PROJECTS)
        self._descriptions: _Recent[tuple[str, str | None], str | None] = _Recent(RENDERED_DESCRIPTIONS)
        self._changes = 0
        index.observe_changes(self._forget)

    def _forget(self, project: str, serial: int) -> None:
        self._home = None
        self._details.pop(project)
        self._changes += 1

    async def _caught_up(self) -> None:
        """
        Wait until changes other processes committed have reached
        L{_forget}, as the simple pages do, before trusting what is kept.
        """
        pending = self.index.pending_changes()
        if pending is not None:
            try:
                await pending
            except Exception:
                # The database is out of reach (the index logged it): what
                # is kept is the best answer there is.
                pass

    async def _detail(self, normalized: str) -> ProjectDetail | None:
        await self._caught_up()
        if normalized in self._details:
            return self._details[normalized]
        changes = self._changes
        detail = await self.index.project_detail(normalized)
        if detail is not None and changes == self._changes:  # else a change came in meanwhile
            self._details.put(normalized, detail)
        return detail

    # Plumbing

    async def _rendered(self, text: str, content_type: str | None) -> str | None:
        """
        A description's HTML: rendered once (docutils is slow, so off the
        reactor thread) and then kept for the most recently shown.
        """
        key = (text, content_type)
        if key in self._descriptions:
            return self._descriptions[key]
        rendered = await self.index.blocking(pages.description_html, text, content_type)
        self._descriptions.put(key, rendered)
        return rendered

    def _secure(self, request: Request) -> bool:
        if self.settings.base_url:
            return self.settings.base_url.startswith("https:")
        return bool(request.isSecure())

    def _index_url(self, request: Request) -> str:
        if self.settings.base_url:
            return self.settings.base_url.rstrip("/") + "/simple/"
        host = (request.getHeader(b"host") or b"localhost").decode("ascii", "replace")
        return f"{'https' if request.isSecure() else 'http'}://{host}/simple/"

    def _set_cookie(self, request: Request, name: bytes, value: str, max_age: int | None, same_site: str) -> None:
        request.addCookie(
            name,
            value.encode("ascii"),
            path=b"/",
            max_age=None if max_age is None else str(max_age).encode("ascii"),
            secure=self._secure(request) or None,
            httpOnly=True,
            sameSite=same_site,
        )

    async def _session(self, request: Request) -> WebSession | None:
        cached = getattr(request, "_cheeseshop_session", False)
        if cached is not False:
            return cached  # type: ignore[no-any-return]
        cookie = request.getCookie(SESSION_COOKIE)
        session = None
        if cookie:
            session = await self.index.find_session(cookie.decode("ascii", "replace"))
        request._cheeseshop_session = session  # type: ignore[attr-defined]
        return session

    async def _chrome(self, request: Request) -> pages.Chrome:
        return pages.Chrome(await self._session(request), await self.index.mirror_of(), self._index_url(request))

    async def _page(
        self, request: Request, title: str, content: list[Any], status: int = 200, search: bool = True
    ) -> bytes:
        chrome = await self._chrome(request)
        stylesheet = f"/static/style.css?v={STYLESHEET_VERSION}"
        body = await pages.render(title, chrome, *content, stylesheet=stylesheet, search=search)
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        for name, value in _SECURITY_HEADERS:
            request.setHeader(name, value)
        # Pages show who is logged in and carry their CSRF token: never
        # stored by a shared cache, and checked again by the browser.
        request.setHeader(b"cache-control", b"private, no-cache" if chrome.session is None else b"no-store")
        request.setHeader(b"vary", b"Cookie")
        return b"" if request.method == b"HEAD" else body

    def _see_other(self, request: Request, location: str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"location", location.encode("utf-8"))
        return b""

    def _moved(self, request: Request, location: str) -> bytes:
        request.setResponseCode(301)
        request.setHeader(b"location", location.encode("utf-8"))
        return b""

    async def _changing(self, request: Request) -> tuple[WebSession, dict[str, str]]:
        """
        The session and form of a POST that changes something: refused on a
        mirror, without a session, or without the session's CSRF token.
        """
        await self.index.check_writable()
        session = await self._session(request)
        if session is None:
            raise Forbidden("Log in first: your session has ended.")
        form = _form(request)
        if not hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf_token.encode()):
            raise Forbidden("This form has expired. Reload the page and try again.")
        return session, form

    @app.handle_errors(CheeseshopError)
    async def error(self, request: Request, failure: Failure) -> bytes:
        error: CheeseshopError = failure.value
        return await self._page(request, "Error", pages.error_page(status_of(error), error.message), status_of(error))

    @app.handle_errors(RouteNotFound)
    async def not_found(self, request: Request, failure: Failure) -> bytes:
        return await self._page(request, "Not found", pages.error_page(404, "There is no page here."), 404)

    @app.handle_errors(MethodNotAllowed)
    async def not_allowed(self, request: Request, failure: Failure) -> bytes:
        return await self._page(request, "Error", pages.error_page(405, "That page takes no such request."), 405)

    # Reading

    @app.route("/static/style.css", methods=["GET", "HEAD"])
    def stylesheet(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/css; charset=utf-8")
        # Linked with its digest in the URL: a new stylesheet is a new URL.
        request.setHeader(b"cache-control", b"public, max-age=31536000, immutable")
        request.setHeader(b"x-content-type-options", b"nosniff")
        return b"" if request.method == b"HEAD" else STYLESHEET

    async def home(self, request: Request) -> bytes:
        await self._caught_up()
        home = self._home
        if home is None:
            changes = self._changes
            home = (await self.index.counts(), await self.index.recent_releases(12))
            if changes == self._changes:  # else a change came in meanwhile
                self._home = home
        return await self._page(request, "", pages.home(*home), search=False)

    @app.route("/project/<name>/", methods=["GET", "HEAD"])
    @app.route("/project/<name>/<version>/", methods=["GET", "HEAD"])
    async def project(self, request: Request, name: str, version: str | None = None) -> bytes:
        normalized = normalize(name)
        if name != normalized:
            return self._moved(request, pages.project_url(normalized, version))
        detail = await self._detail(normalized)
        if detail is None:
            raise NotFound(f"There is no project called {name!r} here.")
        release = None
        if version is not None:
            release = find_release(detail.releases, version)
            if release is None:
                raise NotFound(f"{detail.project.name} has no release {version}.")
            if release.version != version:
                return self._moved(request, pages.project_url(normalized, release.version))
        elif detail.releases:
            release = latest_release(detail.releases)
        rendered = None
        if release is not None and release.description:
            rendered = await self._rendered(release.description, release.description_content_type)
        session = await self._session(request)
        role = await self.index.role_of(normalized, session.actor) if session is not None else None
        chrome = await self._chrome(request)
        title = detail.project.name + (f" {release.version}" if release is not None else "")
        content = pages.project(detail, release, rendered, chrome, role)
        return await self._page(request, title, content)

    @app.route("/search/", methods=["GET", "HEAD"])
    async def search(self, request: Request) -> bytes:
        form = _form(request)
        query = form.get("q", "")[:200]
        try:
            page = max(1, min(int(form.get("page", "1")), 500))
        except ValueError:
            page = 1
        hits: list[Any] = []
        more = False
        if query:
            # One more than a page: is there a next one?
            offset = (page - 1) * pages.SEARCH_PAGE
            found = await self.index.search(Query.of_text(query), pages.SEARCH_PAGE + 1, offset)
            hits, more = found[: pages.SEARCH_PAGE], len(found) > pages.SEARCH_PAGE
        return await self._page(
            request, f"Search: {query}" if query else "Search", pages.search(query, hits, page, more)
        )

    @app.route("/user/<name>/", methods=["GET", "HEAD"])
    async def user(self, request: Request, name: str) -> bytes:
        user = await self.index.get_user(name)
        projects = await self.index.user_projects(user.name)
        return await self._page(request, user.name, pages.user(user.name, projects))

    # Logging in and out

    def _login_token(self, request: Request) -> str:
        token = request.getCookie(LOGIN_COOKIE)
        if token and len(token) >= 32:
            return token.decode("ascii", "replace")
        fresh = secrets.token_urlsafe(32)
        # Strict: the login form's token only ever comes back from this site.
        self._set_cookie(request, LOGIN_COOKIE, fresh, None, "strict")
        return fresh

    @app.route("/account/login/", methods=["GET", "HEAD"])
    async def login_form(self, request: Request) -> bytes:
        await self.index.check_writable()
        next_url = _local(_form(request).get("next", "/account/"))
        if await self._session(request) is not None:
            return self._see_other(request, next_url)
        return await self._page(request, "Log in", pages.login(self._login_token(request), next_url=next_url))

    @app.route("/account/login/", methods=["POST"])
    async def login(self, request: Request) -> bytes:
        await self.index.check_writable()
        form = _form(request)
        cookie = request.getCookie(LOGIN_COOKIE) or b""
        if not cookie or not hmac.compare_digest(form.get("csrf_token", "").encode(), cookie):
            raise Forbidden("This login form has expired. Reload the page and try again.")
        username = form.get("username", "")
        next_url = _local(form.get("next", "/account/"))
        # (A daemon listening on a UNIX socket has no peer host.)
        try:
            actor = await self.throttle.check(
                self.index.reactor,
                (username.lower(), client_host(request)),
                lambda: self.index.authenticate_password(username, form.get("password", "")),
            )
        except Unauthenticated:
            content = pages.login(cookie.decode("ascii"), username, "Wrong username or password.", next_url)
            return await self._page(request, "Log in", content, 401)
        session_id, _ = await self.index.start_session(actor)
        self._set_cookie(request, SESSION_COOKIE, session_id, SESSION_SECONDS, "lax")
        self._set_cookie(request, LOGIN_COOKIE, "", 0, "strict")
        return self._see_other(request, next_url)

    @app.route("/account/logout/", methods=["POST"])
    async def logout(self, request: Request) -> bytes:
        session = await self._session(request)
        if session is not None:
            form = _form(request)
            if not hmac.compare_digest(form.get("csrf_token", "").encode(), session.csrf_token.encode()):
                raise Forbidden("This form has expired. Reload the page and try again.")
            await self.index.end_session(session)
        self._set_cookie(request, SESSION_COOKIE, "", 0, "lax")
        return self._see_other(request, "/")

    # The account page: API tokens and the password

    async def _account_page(self, request: Request, session: WebSession, status: int = 200, **shown: Any) -> bytes:
        name = session.actor.name
        assert name is not None
        tokens = await self.index.list_tokens(name)
        projects = await self.index.user_projects(name)
        return await self._page(request, "Your account", pages.account(session, tokens, projects, **shown), status)

    @app.route("/account/", methods=["GET", "HEAD"])
    async def account(self, request: Request) -> bytes:
        session = await self._session(request)
        if session is None:
            return self._see_other(request, "/account/login/?next=/account/")
        return await self._account_page(request, session)

    @app.route("/account/tokens/", methods=["POST"])
    async def create_token(self, request: Request) -> bytes:
        session, form = await self._changing(request)
        name = session.actor.name
        assert name is not None
        try:
            _, secret = await self.index.create_token(name, form.get("project") or None, form.get("description", ""))
        except CheeseshopError as error:
            return await self._account_page(request, session, status_of(error), error=error.message)
        return await self._account_page(request, session, new_token=secret)

    @app.route("/account/tokens/<int:token_id>/revoke/", methods=["POST"])
    async def revoke_token(self, request: Request, token_id: int) -> bytes:
        session, _ = await self._changing(request)
        await self.index.revoke_token(token_id, session.actor)
        return self._see_other(request, "/account/")

    @app.route("/account/password/", methods=["POST"])
    async def change_password(self, request: Request) -> bytes:
        session, form = await self._changing(request)
        if form.get("new_password") != form.get("confirm_password"):
            return await self._account_page(request, session, 400, error="The new passwords do not match.")
        try:
            await self.index.change_password(session, form.get("old_password", ""), form.get("new_password", ""))
        except Unauthenticated:
            return await self._account_page(request, session, 400, error="Your current password is not right.")
        except CheeseshopError as error:
            return await self._account_page(request, session, status_of(error), error=error.message)
        return await self._account_page(request, session, message="Your password is changed.")

    # Managing a project (its Owners)

    async def _manage_page(
        self, request: Request, name: str, session: WebSession, error: str | None = None, status: int = 200
    ) -> bytes:
        detail = await self.index.project_detail(name)
        if detail is None:
            raise NotFound(f"There is no project called {name!r} here.")
        content = pages.manage(detail, session, error)
        return await self._page(request, f"Manage {detail.project.name}", content, status)

    @app.route("/manage/project/<name>/", methods=["GET", "HEAD"])
    async def manage(self, request: Request, name: str) -> bytes:
        await self.index.check_writable()
        session = await self._session(request)
        if session is None:
            return self._see_other(request, f"/account/login/?next={pages.manage_url(normalize(name))}")
        if name != normalize(name):
            return self._moved(request, pages.manage_url(normalize(name)))
        await self._require_owner(name, session)
        return await self._manage_page(request, name, session)

    async def _require_owner(self, normalized: str, session: WebSession) -> None:
        if await self.index.role_of(normalized, session.actor) != OWNER:
            if await self.index.project_detail(normalized) is None:
                raise NotFound(f"There is no project called {normalized!r} here.")
            raise Forbidden("Only the project's Owners manage it (Maintainers may upload).")

    async def _manage_change(
        self, request: Request, name: str, change: Callable[[WebSession, dict[str, str]], Any]
    ) -> bytes:
        session, form = await self._changing(request)
        # Only Owners see the page again with an error; the domain checks
        # each change too.
        await self._require_owner(normalize(name), session)
        try:
            await change(session, form)
        except (InvalidRequest, NotFound) as error:
            return await self._manage_page(request, normalize(name), session, error.message, status_of(error))
        return self._see_other(request, pages.manage_url(normalize(name)))

    @app.route("/manage/project/<name>/yank/", methods=["POST"])
    async def yank(self, request: Request, name: str) -> bytes:
        async def change(session: WebSession, form: dict[str, str]) -> None:
            yanked = form.get("action") != "unyank"
            await self.index.set_yanked(name, form.get("version", ""), yanked, form.get("reason"), session.actor)

        return await self._manage_change(request, name, change)

    @app.route("/manage/project/<name>/delete/", methods=["POST"])
    async def delete(self, request: Request, name: str) -> bytes:
        async def change(session: WebSession, form: dict[str, str]) -> None:
            version, filename = form.get("version", ""), form.get("filename") or None
            if form.get("confirm") != (filename or version):
                raise InvalidRequest(f"Type {filename or version} to confirm the deletion.")
            await self.index.remove(name, version, filename, session.actor)

        return await self._manage_change(request, name, change)

    @app.route("/manage/project/<name>/roles/", methods=["POST"])
    async def roles(self, request: Request, name: str) -> bytes:
        async def change(session: WebSession, form: dict[str, str]) -> None:
            username = form.get("username", "")
            if form.get("action") == "remove":
                await self.index.remove_role(name, username, session.actor)
            else:
                await self.index.add_role(name, username, form.get("role", ""), session.actor)

        return await self._manage_change(request, name, change)
