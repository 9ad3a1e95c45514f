# -*- test-case-name: tests.test_simple -*-
"""
The resource tree under the daemon's HTTP listeners.

The hot paths (simple pages and files) are plain twisted.web resources; the
rest of the site is a Klein app.
"""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from ..config import Settings
from ..index import PackageIndex
from .app import IndexApp
from .cache import PageCache
from .files import FilesResource
from .jsonapi import JsonApiResource
from .simple import SimpleResource


class Root(Resource):
    """
    Dispatches on the first path segment.
    """

    def __init__(self, index: PackageIndex, settings: Settings) -> None:
        super().__init__()
        self.index = index
        self.settings = settings
        self.cache = PageCache()
        index.observe_changes(self.cache.changed)
        self.simple = SimpleResource(index, self.cache)
        self._children: dict[bytes, Resource] = {
            b"simple": self.simple,
            b"packages": FilesResource(index),
        }
        self._json_api = JsonApiResource(index, self.cache, settings)
        self.app = IndexApp(index, settings)
        self._app_resource = self.app.app.resource()

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        child = self._children.get(path)
        if child is not None:
            return child
        if path == b"pypi" and request.method in (b"GET", b"HEAD") and b"json" in request.postpath[-2:]:
            return self._json_api
        # Everything else is the Klein app's, which routes on the whole path.
        request.postpath = request.prepath + request.postpath
        request.prepath = []
        return self._app_resource


def build_root(index: PackageIndex, settings: Settings) -> Root:
    return Root(index, settings)
