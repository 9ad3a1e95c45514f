# -*- test-case-name: tests.test_upload -*-
"""
The Klein app: every page and API that is not on the hot path (the simple
pages, files and JSON API are plain twisted.web resources in
L{twistedindex.web.root}).
"""

from __future__ import annotations

from typing import Any

from klein import Klein
from twisted.web.server import Request

from ..accounts import LoginThrottle
from ..config import Settings
from ..index import PackageIndex
from .cache import not_found
from .legacy import LegacyAPI
from .ui import WebUI


class IndexApp:
    """
    Routes to the legacy upload API, and to the start page (the other web
    pages are L{WebUI}'s own app, which L{twistedindex.web.root} mounts).
    """

    app = Klein()

    def __init__(self, index: PackageIndex, settings: Settings) -> None:
        self.index = index
        self.settings = settings
        # One throttle of failed passwords for the login form and uploads.
        throttle = LoginThrottle()
        self.legacy = LegacyAPI(index, settings, throttle)
        self.ui = WebUI(index, settings, throttle)

    # The legacy API answers where each client posts: twine and uv at
    # /legacy/ (PyPI's upload URL), distutils at /pypi (its default), and /.
    @app.route("/", methods=["POST"])
    @app.route("/legacy/", methods=["POST", "GET"], strict_slashes=False)
    @app.route("/pypi", methods=["POST"], strict_slashes=False)
    def legacy_api(self, request: Request) -> Any:
        return self.legacy.handle(request)

    @app.route("/", methods=["GET", "HEAD"])
    @app.route("/pypi", methods=["GET", "HEAD"], strict_slashes=False)
    def home(self, request: Request) -> Any:
        if request.args.get(b":action"):
            return self.legacy.handle(request)
        if request.path == b"/":
            return self.ui.home(request)
        return not_found(request)
