"""
The web pages in a real browser: headless Chromium (Debian's), driven by
Playwright, against a running daemon, together with twine and pip.

Screenshots of the main pages, at desktop and phone widths, are saved under
C{test-artifacts/} for people to look at.

Without Chromium or Playwright these tests skip, with the reason, except
under C{CI=true}, where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import in_ci
from .daemon import ROOT, RunningIndex, run, tool
from .distributions import sdist, wheel
from .test_install import pip, versions_in

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium waits on services it
# cannot reach from a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(ROOT) / "test-artifacts"
PASSWORD = "alice-browser-password"

README = """\
# Browser Demo

A project uploaded **from a browser test**.

```python
import browser_demo
```

- one
- two
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install playwright)"
    if reason is None and not os.path.exists(CHROMIUM):
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium chromium-driver)"
    if reason is not None:
        if in_ci():
            pytest.fail(f"the browser tests must run under CI=true: {reason}")
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIndex]:
    running = RunningIndex(str(tmp_path_factory.mktemp("browser"))).start()
    running.add_user("alice", PASSWORD)
    running.add_user("bob", "bob-browser-password")
    yield running
    running.stop()


class Session:
    """
    One browser context on the index, recording every URL it requests.
    """

    def __init__(self, browser: Any, index: RunningIndex, width: int = 1280, height: int = 900) -> None:
        self.index = index
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.requested: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.suffix = "" if width > 700 else "-phone"

    def go(self, path: str) -> Any:
        response = self.page.goto(self.index.url + path.lstrip("/"))
        assert response is not None
        return response

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}{self.suffix}.png"), full_page=True)

    def log_in(self, user: str, password: str) -> None:
        self.go("/account/login/")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", password)
        self.page.click("form.stacked button[type=submit]")
        self.page.wait_for_url("**/account/")

    def close(self) -> None:
        self.context.close()


def twine(index: RunningIndex, token: str, *files: Path) -> Any:
    return run(
        [
            tool("twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--repository-url",
            index.upload_url,
            "-u",
            "__token__",
            "-p",
            token,
            *map(str, files),
        ]
    )


def test_publish_yank_and_delete_from_the_browser(browser: Any, index: RunningIndex, tmp_path: Path) -> None:
    """
    In the browser: log in, create a token, upload with twine using it, see
    the rendered README, yank a release (pip then skips it) and delete a
    file (its re-upload is then refused); the pages ask nothing of any other
    site.
    """
    session = Session(browser, index)
    session.go("/")
    session.shot("home-empty")
    session.go("/account/login/")
    session.shot("login")
    session.log_in("alice", PASSWORD)

    # A token, shown once.
    session.page.fill("input[name=description]", "twine from the browser test")
    session.page.click("text=Create token")
    token = session.page.inner_text("#new-token").strip()
    assert token.startswith("cheeseshop-")
    session.shot("account-tokens")
    session.go("/account/")
    assert token not in session.page.content()
    assert "twine from the browser test" in session.page.inner_text("table")

    options: dict[str, Any] = {
        "description": README,
        "description_content_type": "text/markdown",
        "requires_python": ">=3.9",
        "extra_headers": [
            "Author: Alice Example",
            "License: MIT",
            "Keywords: demo,browser",
            "Project-URL: Source, https://example.org/browser-demo",
            "Project-URL: Documentation, https://example.org/browser-demo/docs",
            "Classifier: Framework :: Twisted",
            "Classifier: Programming Language :: Python :: 3",
            "Classifier: Programming Language :: Python :: 3.11",
        ],
    }
    files = [
        wheel(tmp_path, "browser-demo", "1.0", **options),
        sdist(tmp_path, "browser-demo", "1.0", **options),
        wheel(tmp_path, "browser-demo", "2.0", **options),
    ]
    result = twine(index, token, *files)
    assert result.returncode == 0, result.stdout + result.stderr

    # The README, rendered from Markdown.
    session.go("/project/Browser_Demo/")
    assert session.page.url == index.url + "project/browser-demo/"
    assert session.page.inner_text(".description h1") == "Browser Demo"
    assert session.page.inner_text(".description strong") == "from a browser test"
    assert "import browser_demo" in session.page.inner_text(".description pre")
    assert "pip install" in session.page.inner_text("code.pip")
    sidebar = session.page.inner_text("aside.sidebar")
    for shown in ("Documentation", ">=3.9", "Alice Example", "MIT", "Framework", "Twisted", "alice"):
        assert shown in sidebar
    session.shot("project")
    session.go("/project/browser-demo/1.0/")
    assert "browser_demo-1.0.tar.gz" in session.page.inner_text("#files")
    session.shot("release")

    # Yank 2.0; pip takes 1.0.
    session.go("/project/browser-demo/")
    session.page.click("text=Manage project")
    release = session.page.locator("li.release", has_text="2.0")
    release.locator("input[name=reason]").fill("broken build")
    release.locator("text=Yank").click()
    session.page.wait_for_selector("li.release .badge.yanked")
    session.shot("manage")
    session.go("/project/browser-demo/2.0/")
    assert "This release is yanked." in session.page.inner_text(".notice.warning")
    assert "broken build" in session.page.inner_text(".notice.warning")
    pip("install", "--index-url", index.simple_url, "--target", str(tmp_path / "target"), "browser-demo")
    assert versions_in(tmp_path / "target") == {"browser_demo": "1.0"}

    # Delete the 1.0 sdist; its filename can never be used again.
    session.go("/manage/project/browser-demo/")
    sdist_row = session.page.locator("ul.manage-files li", has_text="browser_demo-1.0.tar.gz")
    sdist_row.locator("input[name=confirm]").fill("browser_demo-1.0.tar.gz")
    with session.page.expect_navigation():
        sdist_row.locator("text=Delete file").click()
    assert "browser_demo-1.0.tar.gz" not in session.page.inner_text("ol.manage-releases")
    again = twine(index, token, files[1])
    assert again.returncode != 0
    # twine wraps the message to the terminal's width.
    assert "previously used by a file that has since been deleted" in " ".join((again.stdout + again.stderr).split())

    # A Maintainer, added on the manage page.
    session.page.fill("input[name=username]:not([type=hidden])", "bob")
    session.page.select_option("select[name=role]", "Maintainer")
    session.page.click('button:text-is("Add")')
    session.page.wait_for_selector("ul.people li:has-text('bob')")
    assert "Maintainer" in session.page.inner_text("ul.people li:has-text('bob')")

    session.go("/search/?q=browser")
    assert "browser-demo" in session.page.inner_text("ol.results")
    session.shot("search")
    session.go("/user/alice/")
    assert "browser-demo" in session.page.inner_text("ul.cards")
    session.shot("user")
    session.go("/")
    assert "browser-demo" in session.page.inner_text("ul.cards")
    session.shot("home")

    # Nothing but this index was asked for anything.
    assert session.requested and all(url.startswith(index.url) for url in session.requested), session.requested
    session.close()


def test_pages_fit_a_phone(browser: Any, index: RunningIndex) -> None:
    """
    At a phone's width (390 px), no page is wider than the screen.
    """
    session = Session(browser, index, 390, 844)
    pages = {
        "home": "/",
        "login": "/account/login/",
        "search": "/search/?q=demo",
        "project": "/project/browser-demo/",
        "release": "/project/browser-demo/1.0/",
        "user": "/user/alice/",
    }
    for name, path in pages.items():
        session.go(path)
        session.shot(name)
        assert session.page.evaluate("document.documentElement.scrollWidth") <= 390, name
    session.log_in("alice", PASSWORD)
    for name, path in {"account-tokens": "/account/", "manage": "/manage/project/browser-demo/"}.items():
        session.go(path)
        session.shot(name)
        assert session.page.evaluate("document.documentElement.scrollWidth") <= 390, name
    session.close()
