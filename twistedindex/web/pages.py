# -*- test-case-name: tests.test_web_pages -*-
"""
The web pages' HTML, built with L{twisted.web.template}'s tags: every string
put in a page is escaped when it is flattened.

A description's HTML comes from readme_renderer (sanitized there, as on
PyPI) and is parsed back into tags here (L{safe_html}), so that it too is
written out by the flattener rather than pasted in as text.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Sequence
from html.parser import HTMLParser
from typing import Any
from urllib.parse import quote, urlencode

from attrs import frozen
from twisted.internet.defer import Deferred
from twisted.web.template import Tag, flattenString, tags

from ..index import OWNER, ROLES, WebSession
from ..metadata import render_description
from ..storage.rows import Counts, File, RecentRelease, Release, SearchHit, Token

# Elements the flattener writes as <x />, never with content.
_VOID = frozenset(
    ["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]
)


@frozen
class Chrome:
    """
    What every page's frame needs to know.

    :ivar session: the logged-in browser's session, if any.
    :ivar mirror_of: the upstream, when this index is a read-only mirror.
    """

    session: WebSession | None
    mirror_of: str | None
    index_url: str


def render(title: str, chrome: Chrome, *content: Any, stylesheet: str, search: bool = True) -> Deferred[bytes]:
    """
    A whole page, as UTF-8 bytes.

    :param search: whether the top bar has a search box (the start page
        has a bigger one of its own).
    """
    page = tags.html(lang="en")(
        tags.head(
            tags.meta(charset="utf-8"),
            tags.meta(name="viewport", content="width=device-width, initial-scale=1"),
            tags.title(f"{title} · cheeseshop" if title else "cheeseshop"),
            tags.link(rel="stylesheet", href=stylesheet),
        ),
        tags.body(
            _header(chrome, search), Tag("main", attributes={"class": "wrap"}, children=list(content)), _footer(chrome)
        ),
    )
    return flattenString(None, page).addCallback(lambda body: b"<!DOCTYPE html>\n" + body)


def _header(chrome: Chrome, search: bool) -> Tag:
    if chrome.session is not None:
        who = chrome.session.actor.name or ""
        account = tags.nav(class_="account")(
            tags.a(href=user_url(who))(who),
            tags.a(href="/account/")("Account"),
            csrf_form("/account/logout/", chrome.session, tags.button(class_="link")("Log out"), class_="inline"),
        )
    elif chrome.mirror_of is None:
        account = tags.nav(class_="account")(tags.a(href="/account/login/")("Log in"))
    else:
        account = tags.nav(class_="account")
    return tags.header(class_="site")(
        tags.div(class_="wrap bar")(
            tags.a(class_="brand", href="/")(tags.span(class_="logo")("◆"), " cheeseshop"),
            search_box(class_="search compact") if search else "",
            account,
        )
    )


def _footer(chrome: Chrome) -> Tag:
    notes: list[Any] = ["Install from this index with ", tags.code(f"pip install --index-url {chrome.index_url} NAME")]
    if chrome.mirror_of is not None:
        notes += [" · a read-only mirror of ", tags.a(href=chrome.mirror_of)(chrome.mirror_of)]
    return tags.footer(class_="site")(tags.div(class_="wrap")(*notes))


def search_box(query: str = "", class_: str = "search") -> Tag:
    return tags.form(class_=class_, action="/search/", method="get", role="search")(
        tags.input(type="search", name="q", value=query, placeholder="Search projects", **{"aria-label": "Search"}),
        tags.button(type="submit")("Search"),
    )


def csrf_form(action: str, session: WebSession, *children: Any, class_: str = "") -> Tag:
    """
    A POST form carrying the session's CSRF token.
    """
    return tags.form(method="post", action=action, class_=class_)(
        tags.input(type="hidden", name="csrf_token", value=session.csrf_token), *children
    )


def project_url(normalized_name: str, version: str | None = None) -> str:
    url = f"/project/{quote(normalized_name, safe='')}/"
    return url + f"{quote(version, safe='')}/" if version is not None else url


def user_url(name: str) -> str:
    return f"/user/{quote(name, safe='')}/"


def manage_url(normalized_name: str) -> str:
    return f"/manage/project/{quote(normalized_name, safe='')}/"


def when(micros: int | None) -> Tag | str:
    if micros is None:
        return "never"
    moment = datetime.datetime.fromtimestamp(micros / 1_000_000, datetime.UTC)
    return tags.time(datetime=moment.isoformat(timespec="seconds"))(moment.strftime("%Y-%m-%d %H:%M UTC"))


def size(n: int) -> str:
    for unit in ("bytes", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    raise AssertionError("unreachable")


def notice(text: str | None, kind: str = "error") -> Tag | str:
    return tags.p(class_=f"notice {kind}", role="alert" if kind == "error" else "status")(text) if text else ""


# Descriptions


class _TreeBuilder(HTMLParser):
    """
    Tags from HTML: elements, attributes and text, nothing else (comments,
    processing instructions and declarations are dropped).
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = tags.div(class_="description")
        self._stack: list[Tag] = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Tag(tag, attributes={name: value or "" for name, value in attrs})
        self._stack[-1].children.append(element)
        if tag not in _VOID:
            self._stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack[-1].children.append(Tag(tag, attributes={name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._stack) - 1, 0, -1):
            if self._stack[depth].tagName == tag:
                del self._stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].children.append(data)


def safe_html(html: str) -> Tag:
    """
    Sanitized HTML (readme_renderer's) as tags, for the flattener to write.
    """
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


def description_html(text: str, content_type: str | None) -> str | None:
    """
    A description rendered by its content type (on a worker thread; the
    pages keep what it gives, see L{twistedindex.web.ui.WebUI}).
    """
    return render_description(text, content_type)


def description(release: Release, rendered: str | None) -> Tag:
    if not release.description:
        return tags.div(class_="description empty")(tags.p("The author has not given a description."))
    if rendered is None:
        # It rendered when it was uploaded; show the text rather than nothing.
        return tags.div(class_="description")(tags.pre(release.description))
    return safe_html(rendered)


# Pages


def home(counts: Counts, recent: Sequence[RecentRelease]) -> list[Tag]:
    stats = tags.ul(class_="stats")(
        *(
            tags.li(tags.strong(f"{n:,}"), " ", label if n != 1 else label[:-1])
            for n, label in ((counts.projects, "projects"), (counts.releases, "releases"), (counts.files, "files"))
        )
    )
    rows = [
        tags.li(
            tags.a(href=project_url(r.normalized_name, r.version))(tags.span(class_="name")(r.name), " ", r.version),
            tags.span(class_="summary")(r.summary or ""),
            tags.span(class_="meta")(when(r.uploaded)),
        )
        for r in recent
    ]
    return [
        tags.section(class_="hero")(
            tags.h1("Find, install and publish Python packages"),
            search_box(),
            stats,
        ),
        tags.section(
            tags.h2("Recent uploads"),
            tags.ul(class_="cards")(*rows) if rows else tags.p(class_="muted")("Nothing has been uploaded yet."),
        ),
    ]


def project(detail: Any, release: Release | None, rendered: str | None, chrome: Chrome, role: str | None) -> list[Tag]:
    """
    A project's page, at one of its releases (the latest when the URL names
    none).
    """
    proj = detail.project
    if release is None:
        return [
            tags.div(class_="banner")(tags.div(class_="wrap-inner")(tags.h1(proj.name))),
            tags.p(class_="muted")("This project has no releases."),
            _maintainers(detail.roles),
        ]
    files = [f for f in detail.files if f.version == release.version]
    requirement = (
        proj.normalized_name if release is _latest(detail.releases) else f"{proj.normalized_name}=={release.version}"
    )
    actions: list[Any] = []
    if role == OWNER and chrome.mirror_of is None:
        actions.append(tags.a(class_="button secondary", href=manage_url(proj.normalized_name))("Manage project"))
    banner = tags.div(class_="banner")(
        tags.h1(proj.name, " ", tags.span(class_="version")(release.version)),
        tags.p(class_="summary")(release.summary or ""),
        tags.div(class_="install")(
            tags.code(class_="pip")(f"pip install --index-url {chrome.index_url} {requirement}"),
        ),
        tags.p(class_="meta")("Released ", when(release.created), *actions),
    )
    yanked = (
        tags.div(class_="notice warning")(
            tags.strong("This release is yanked."),
            " Installers skip it unless it is pinned with ==.",
            tags.br(),
            f"Reason: {release.yanked_reason}" if release.yanked_reason else "No reason was given.",
        )
        if release.yanked
        else ""
    )
    main = tags.div(class_="content")(
        yanked,
        tags.section(id="description")(tags.h2("Description"), description(release, rendered)),
        tags.section(id="history")(
            tags.h2("Release history"), _history(proj.normalized_name, detail.releases, release)
        ),
        tags.section(id="files")(tags.h2("Files"), _files(files)),
    )
    return [banner, tags.div(class_="columns")(main, _sidebar(release, detail.roles))]


def _latest(releases: Sequence[Release]) -> Release | None:
    from ..names import latest_release

    return latest_release(releases) if releases else None


def _history(normalized_name: str, releases: Sequence[Release], current: Release) -> Tag:
    from ..names import version_key

    items = []
    for r in sorted(releases, key=lambda r: version_key(r.version), reverse=True):
        badges: list[Any] = []
        if r.yanked:
            badges.append(tags.span(class_="badge yanked")("yanked"))
        if r.id == current.id:
            badges.append(tags.span(class_="badge")("this version"))
        items.append(
            tags.li(class_="yanked" if r.yanked else "")(
                tags.a(href=project_url(normalized_name, r.version))(r.version),
                " ",
                *badges,
                tags.span(class_="meta")(when(r.created)),
                tags.span(class_="reason")(f"Yanked: {r.yanked_reason}") if r.yanked and r.yanked_reason else "",
            )
        )
    return tags.ol(class_="history")(*items)


def _files(files: Sequence[File]) -> Tag:
    if not files:
        return tags.p(class_="muted")("This release has no files.")
    return tags.ul(class_="files")(
        *(
            tags.li(
                tags.a(class_="filename", href=file_url(f))(f.filename),
                tags.span(class_="meta")(
                    "Source" if f.packagetype == "sdist" else f"Wheel · {f.python_version}",
                    " · ",
                    size(f.size),
                    " · uploaded ",
                    when(f.upload_time),
                    f" by {f.uploaded_by}" if f.uploaded_by else "",
                ),
                tags.span(class_="hash")("sha256 ", tags.code(f.sha256)),
            )
            for f in files
        )
    )


def file_url(f: File) -> str:
    b2 = f.blake2b_256
    return f"/packages/{b2[:2]}/{b2[2:4]}/{b2[4:]}/{quote(f.filename)}"


def _text_of(meta: dict[str, Any], key: str) -> str | None:
    """
    A metadata field that should be text, or C{None}: a mirror keeps what
    its upstream's JSON said, whatever its type.
    """
    value = meta.get(key)
    return value if isinstance(value, str) and value else None


def _sidebar(release: Release, roles: Sequence[tuple[str, str]]) -> Tag:
    meta = release.metadata if isinstance(release.metadata, dict) else {}
    links: list[tuple[str, str]] = []
    home_page = _text_of(meta, "home_page")
    if home_page:
        links.append(("Homepage", home_page))
    project_urls = meta.get("project_urls")
    if isinstance(project_urls, dict):
        links += [(str(label), url) for label, url in project_urls.items() if isinstance(url, str) and url]
    download_url = _text_of(meta, "download_url")
    if download_url:
        links.append(("Download", download_url))
    facts: list[tuple[str, Any]] = []
    license_text = _text_of(meta, "license_expression") or _text_of(meta, "license")
    if license_text:
        facts.append(("License", license_text if len(license_text) < 80 else license_text[:77] + "…"))
    if release.requires_python:
        facts.append(("Requires Python", tags.code(release.requires_python)))
    author = _text_of(meta, "author") or _text_of(meta, "author_email")
    if author:
        facts.append(("Author", author))
    keywords = meta.get("keywords")
    if isinstance(keywords, list):
        keywords = ", ".join(str(k) for k in keywords)
    if isinstance(keywords, str) and keywords:
        facts.append(("Keywords", keywords))
    classifiers = meta.get("classifiers")
    classifiers = [c for c in classifiers if isinstance(c, str)] if isinstance(classifiers, list) else []
    return tags.aside(class_="sidebar")(
        tags.section(
            tags.h3("Project links"), tags.ul(class_="links")(*(tags.li(_link(label, url)) for label, url in links))
        )
        if links
        else "",
        tags.section(tags.h3("Meta"), tags.dl(*(part for k, v in facts for part in (tags.dt(k), tags.dd(v)))))
        if facts
        else "",
        _maintainers(roles),
        _classifiers(classifiers),
    )


def _link(label: str, url: str) -> Tag:
    # Only web and mail links become links: a javascript: URL in metadata
    # stays text.
    if url.lower().startswith(("https://", "http://", "mailto:")):
        return tags.a(href=url, rel="nofollow noopener")(label)
    return tags.span(f"{label}: {url}")


def _maintainers(roles: Sequence[tuple[str, str]]) -> Tag:
    return tags.section(class_="maintainers")(
        tags.h3("Maintainers"),
        tags.ul(
            *(tags.li(tags.a(href=user_url(name))(name), " ", tags.span(class_="badge")(role)) for role, name in roles)
        ),
    )


def _classifiers(classifiers: Iterable[str]) -> Tag | str:
    groups: dict[str, list[str]] = {}
    for classifier in classifiers:
        head, _, rest = classifier.partition(" :: ")
        groups.setdefault(head, []).append(rest or head)
    if not groups:
        return ""
    return tags.section(
        tags.h3("Classifiers"),
        tags.dl(class_="classifiers")(
            *(part for head, items in groups.items() for part in (tags.dt(head), *(tags.dd(i) for i in items)))
        ),
    )


def search(query: str, hits: Sequence[SearchHit], page: int, more: bool) -> list[Tag]:
    results: list[Any]
    if not query.strip():
        results = [
            tags.p(class_="muted")("Type a word or two: names, summaries, keywords and descriptions are searched.")
        ]
    elif not hits:
        results = [tags.p(class_="muted")(f"No projects match “{query}”.")]
    else:
        results = [
            tags.ol(class_="cards results", start=str((page - 1) * SEARCH_PAGE + 1))(
                *(
                    tags.li(
                        tags.a(href=project_url(h.normalized_name))(tags.span(class_="name")(h.name), " ", h.version),
                        tags.span(class_="summary")(h.summary or ""),
                    )
                    for h in hits
                )
            )
        ]
        pager = []
        if page > 1:
            pager.append(tags.a(class_="button secondary", rel="prev", href=_search_url(query, page - 1))("← Previous"))
        pager.append(tags.span(class_="muted")(f"Page {page}"))
        if more:
            pager.append(tags.a(class_="button secondary", rel="next", href=_search_url(query, page + 1))("Next →"))
        if page > 1 or more:
            results.append(tags.nav(class_="pager")(*pager))
    return [tags.h1("Search"), search_box(query), *results]


SEARCH_PAGE = 20


def _search_url(query: str, page: int) -> str:
    return "/search/?" + urlencode({"q": query, "page": page})


def user(name: str, projects: Sequence[tuple[str, str]]) -> list[Tag]:
    from ..names import normalize

    return [
        tags.h1(tags.span(class_="avatar")(name[:1].upper()), " ", name),
        tags.h2(f"{len(projects)} project{'s' if len(projects) != 1 else ''}"),
        tags.ul(class_="cards")(
            *(
                tags.li(
                    tags.a(href=project_url(normalize(p)))(tags.span(class_="name")(p)), tags.span(class_="badge")(role)
                )
                for role, p in projects
            )
        )
        if projects
        else tags.p(class_="muted")("No projects yet."),
    ]


def login(csrf_token: str, username: str = "", error: str | None = None, next_url: str = "/") -> list[Tag]:
    return [
        tags.div(class_="panel narrow")(
            tags.h1("Log in"),
            notice(error),
            tags.form(method="post", action="/account/login/", class_="stacked")(
                tags.input(type="hidden", name="csrf_token", value=csrf_token),
                tags.input(type="hidden", name="next", value=next_url),
                tags.label(
                    "Username", tags.input(name="username", value=username, autocomplete="username", required="")
                ),
                tags.label(
                    "Password",
                    tags.input(type="password", name="password", autocomplete="current-password", required=""),
                ),
                tags.button(type="submit")("Log in"),
            ),
        )
    ]


def account(
    session: WebSession,
    tokens: Sequence[Token],
    projects: Sequence[tuple[str, str]],
    new_token: str | None = None,
    message: str | None = None,
    error: str | None = None,
) -> list[Tag]:
    shown: list[Any] = []
    if new_token is not None:
        shown = [
            tags.div(class_="notice success token-once")(
                tags.strong("Your new API token. Copy it now: it will not be shown again."),
                tags.code(class_="token", id="new-token")(new_token),
                tags.span("Use it as the password of the user ", tags.code("__token__"), "."),
            )
        ]
    rows = [
        tags.tr(class_="revoked" if t.revoked else "")(
            tags.td(t.description or tags.span(class_="muted")("(no description)")),
            tags.td(f"Project {t.project_name}" if t.project_name else "All projects"),
            tags.td(when(t.created)),
            tags.td(when(t.last_used)),
            tags.td(
                tags.span(class_="badge")("revoked")
                if t.revoked
                else csrf_form(
                    f"/account/tokens/{t.id}/revoke/",
                    session,
                    tags.button(class_="danger small")("Revoke"),
                    class_="inline",
                )
            ),
        )
        for t in tokens
    ]
    return [
        tags.h1("Your account"),
        notice(error),
        notice(message, "success"),
        *shown,
        tags.section(class_="panel")(
            tags.h2("API tokens"),
            tags.p(class_="muted")(
                "Upload with a token instead of your password; give each one only the scope it needs."
            ),
            tags.div(class_="table")(
                tags.table(
                    tags.thead(tags.tr(*(tags.th(h) for h in ("Description", "Scope", "Created", "Last used", "")))),
                    tags.tbody(*rows),
                )
            )
            if rows
            else tags.p(class_="muted")("You have no API tokens."),
            tags.h3("Create a token"),
            csrf_form(
                "/account/tokens/",
                session,
                tags.label("Description", tags.input(name="description", placeholder="e.g. CI uploads")),
                tags.label(
                    "Scope",
                    tags.select(name="project")(
                        tags.option(value="")("All my projects"),
                        *(tags.option(value=name)(f"Project: {name}") for _, name in projects),
                    ),
                ),
                tags.button(type="submit")("Create token"),
                class_="stacked",
            ),
        ),
        tags.section(class_="panel")(
            tags.h2("Change password"),
            csrf_form(
                "/account/password/",
                session,
                tags.label(
                    "Current password",
                    tags.input(type="password", name="old_password", autocomplete="current-password", required=""),
                ),
                tags.label(
                    "New password",
                    tags.input(type="password", name="new_password", autocomplete="new-password", required=""),
                ),
                tags.label(
                    "New password again",
                    tags.input(type="password", name="confirm_password", autocomplete="new-password", required=""),
                ),
                tags.button(type="submit")("Change password"),
                class_="stacked",
            ),
        ),
    ]


def manage(detail: Any, session: WebSession, error: str | None = None) -> list[Tag]:
    from ..names import version_key

    proj = detail.project
    base = manage_url(proj.normalized_name)
    releases = []
    for r in sorted(detail.releases, key=lambda r: version_key(r.version), reverse=True):
        files = [f for f in detail.files if f.version == r.version]
        if r.yanked:
            yank = csrf_form(
                base + "yank/",
                session,
                tags.input(type="hidden", name="version", value=r.version),
                tags.input(type="hidden", name="action", value="unyank"),
                tags.button(class_="secondary small")("Unyank"),
                class_="inline",
            )
        else:
            yank = csrf_form(
                base + "yank/",
                session,
                tags.input(type="hidden", name="version", value=r.version),
                tags.input(type="hidden", name="action", value="yank"),
                tags.input(name="reason", placeholder="Reason (shown to users)", **{"aria-label": "Reason"}),
                tags.button(class_="warning small")("Yank"),
                class_="inline",
            )
        file_rows = [
            tags.li(
                tags.span(class_="filename")(f.filename),
                csrf_form(
                    base + "delete/",
                    session,
                    tags.input(type="hidden", name="version", value=r.version),
                    tags.input(type="hidden", name="filename", value=f.filename),
                    tags.input(
                        name="confirm",
                        placeholder="Type the filename to confirm",
                        required="",
                        **{"aria-label": "Confirm"},
                    ),
                    tags.button(class_="danger small")("Delete file"),
                    class_="inline",
                ),
            )
            for f in files
        ]
        releases.append(
            tags.li(class_="release")(
                tags.div(class_="release-head")(
                    tags.a(class_="version", href=project_url(proj.normalized_name, r.version))(r.version),
                    tags.span(class_="badge yanked")("yanked") if r.yanked else "",
                    tags.span(class_="reason")(r.yanked_reason or "") if r.yanked else "",
                ),
                yank,
                tags.ul(class_="manage-files")(*file_rows) if file_rows else "",
                tags.details(
                    tags.summary("Delete this release"),
                    tags.p(class_="muted")("Its files go too, and their filenames can never be uploaded again."),
                    csrf_form(
                        base + "delete/",
                        session,
                        tags.input(type="hidden", name="version", value=r.version),
                        tags.input(
                            name="confirm",
                            placeholder=f"Type {r.version} to confirm",
                            required="",
                            **{"aria-label": "Confirm"},
                        ),
                        tags.button(class_="danger small")("Delete release"),
                        class_="inline",
                    ),
                ),
            )
        )
    owners = sum(1 for role, _ in detail.roles if role == OWNER)
    people = [
        tags.li(
            tags.a(href=user_url(name))(name),
            " ",
            tags.span(class_="badge")(role),
            # The last Owner cannot be removed: no button for it.
            ""
            if role == OWNER and owners == 1
            else csrf_form(
                base + "roles/",
                session,
                tags.input(type="hidden", name="action", value="remove"),
                tags.input(type="hidden", name="username", value=name),
                tags.button(class_="danger small")("Remove"),
                class_="inline",
            ),
        )
        for role, name in detail.roles
    ]
    return [
        tags.h1("Manage ", tags.a(href=project_url(proj.normalized_name))(proj.name)),
        notice(error),
        tags.section(class_="panel")(
            tags.h2("Releases"),
            tags.p(class_="muted")(
                "Yanked releases stay installable when pinned with ==; deleted files and releases are gone for good."
            ),
            tags.ol(class_="manage-releases")(*releases) if releases else tags.p(class_="muted")("No releases."),
        ),
        tags.section(class_="panel")(
            tags.h2("Collaborators"),
            tags.p(class_="muted")("Owners manage the project; Maintainers may upload."),
            tags.ul(class_="people")(*people),
            csrf_form(
                base + "roles/",
                session,
                tags.input(type="hidden", name="action", value="add"),
                tags.input(name="username", placeholder="Username", required="", **{"aria-label": "Username"}),
                tags.select(name="role", **{"aria-label": "Role"})(*(tags.option(value=r)(r) for r in reversed(ROLES))),
                tags.button(class_="small")("Add"),
                class_="inline",
            ),
        ),
    ]


def error_page(status: int, message: str) -> list[Tag]:
    titles = {400: "That did not work", 403: "Not allowed", 404: "Not found"}
    return [
        tags.div(class_="panel narrow center")(
            tags.p(class_="status")(str(status)),
            tags.h1(titles.get(status, "Something went wrong")),
            tags.p(message),
            tags.p(tags.a(href="/")("Back to the start page")),
        )
    ]
