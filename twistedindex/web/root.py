# -*- test-case-name: tests.test_simple -*-
"""
The resource tree under the daemon's HTTP listeners.

The hot paths (simple pages and files) are plain twisted.web resources; the
rest of the site is a Klein app.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import Request

from ..config import Settings
from ..index import PackageIndex
from ..pep381 import Pep381
from ..rpc import IndexXMLRPC, wants_xmlrpc
from .app import IndexApp
from .cache import PageCache
from .files import FilesResource
from .jsonapi import JsonApiResource
from .pep381 import LastModifiedResource, LocalStatsResource, MirrorsResource, ServerKeyResource, ServerSigResource
from .replica import ReplicaResource
from .simple import SimpleResource

# The first path segments of the web pages (L{twistedindex.web.ui}).
_PAGES = frozenset([b"project", b"search", b"user", b"account", b"manage", b"static"])


class Root(Resource):
    """
    Dispatches on the first path segment.
    """

    def __init__(self, index: PackageIndex, settings: Settings, pep381: Pep381) -> None:
        super().__init__()
        self.index = index
        self.settings = settings
        self.cache = PageCache()
        index.observe_changes(self.cache.changed)
        self.simple = SimpleResource(index, self.cache)
        self.xmlrpc = IndexXMLRPC(index, settings)
        self._children: dict[bytes, Resource] = {
            b"simple": self.simple,
            b"packages": FilesResource(index, pep381.downloads),
            b"RPC2": self.xmlrpc,
            b"serverkey": ServerKeyResource(index, pep381),
            b"serversig": ServerSigResource(index, pep381, self.simple),
            b"last-modified": LastModifiedResource(index),
            b"mirrors": MirrorsResource(pep381),
            b"local-stats": LocalStatsResource(index, pep381),
            b"+replica": ReplicaResource(index, pep381),
        }
        self._json_api = JsonApiResource(index, self.cache, settings)
        self.app = IndexApp(index, settings)
        self._app_resource = self.app.app.resource()
        self._pages_resource = self.app.ui.app.resource()

    def getChildWithDefault(self, path: bytes, request: Request) -> Resource:
        child = self._children.get(path)
        if child is not None:
            return child
        if path == b"pypi":
            if request.method in (b"GET", b"HEAD") and b"json" in request.postpath[-2:]:
                return self._json_api
            # PyPI's rule: a POST of text/xml to /pypi is XML-RPC (pip
            # search, bandersnatch); the rest goes to the upload API.
            if wants_xmlrpc(request) and request.postpath in ([], [b""]):
                return self.xmlrpc
        # Everything else is a Klein app's, which routes on the whole path.
        request.postpath = request.prepath + request.postpath
        request.prepath = []
        if path in _PAGES:
            if b"\x00" in unquote_to_bytes(request.path):
                # No name holds NUL, and PostgreSQL refuses it in text.
                return notFound()
            return self._pages_resource
        return self._app_resource


def build_root(index: PackageIndex, settings: Settings, pep381: Pep381) -> Root:
    return Root(index, settings, pep381)
