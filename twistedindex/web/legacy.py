# -*- test-case-name: tests.test_upload -*-
"""
PyPI's legacy API, dispatched on C{:action}: uploads (twine, uv, distutils),
registration (distutils C{register}), and the older odds and ends.
"""

from __future__ import annotations

import base64
import binascii

from trove_classifiers import sorted_classifiers
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.web.server import Request

from ..accounts import LoginThrottle, client_host
from ..config import Settings
from ..errors import CheeseshopError, Forbidden, Gone, InvalidRequest, Unauthenticated
from ..index import INVALID_AUTH, Actor, PackageIndex, shielded
from ..upload import UploadForm
from .errors import error_response
from .request import upload_form

log = Logger()

_CLASSIFIERS = ("\n".join(sorted_classifiers) + "\n").encode("utf-8")


# The actions that would change the index.
_CHANGES = frozenset(["file_upload", "submit", "user"])


def _ok(request: Request) -> bytes:
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return b"OK\n"


class LegacyAPI:
    """
    C{POST /}, C{/legacy/} and C{/pypi}, and C{GET ...?:action=list_classifiers}.
    """

    def __init__(self, index: PackageIndex, settings: Settings, throttle: LoginThrottle) -> None:
        self._index = index
        self._settings = settings
        self._throttle = throttle

    async def handle(self, request: Request) -> bytes:
        form: UploadForm | None = None
        try:
            form = upload_form(request)
            # A client that hangs up cancels this; its change still runs to
            # the end rather than stopping in the middle of a transaction.
            return await shielded(Deferred.fromCoroutine(self._dispatch(request, form)))
        except CheeseshopError as error:
            log.info(
                "{method} {path} refused: {message}",
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
                message=error.message,
            )
            return error_response(request, error)
        finally:
            if form is not None:
                form.discard()

    async def _dispatch(self, request: Request, form: UploadForm) -> bytes:
        action = form.action
        if action == "list_classifiers":
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return _CLASSIFIERS
        if request.method != b"POST":
            raise InvalidRequest(f"The {action or 'missing'} action needs a POST request.")
        if action in _CHANGES:
            # Said first, whoever asks: a mirror takes no changes at all.
            await self._index.check_writable()
        if action == "file_upload":
            actor = await self.identify(request, challenge=False)
            await self._index.upload(actor, form)
            return _ok(request)
        if action == "submit":
            actor = await self.identify(request, challenge=True)
            await self._index.register(actor, form)
            return _ok(request)
        if action == "verify":
            await self._index.verify(form)
            return _ok(request)
        if action == "user":
            await self._create_account(form)
            return _ok(request)
        if action == "password_reset":
            raise Forbidden(
                "This index sends no e-mail, so passwords cannot be reset this way; "
                "ask the index's administrator (cheeseshop-admin passwd)."
            )
        if action == "doc_upload":
            raise Gone("Uploading documentation is no longer supported, we recommend using https://readthedocs.org/.")
        if action is None:
            raise InvalidRequest("The request has no :action.")
        raise InvalidRequest(f"Unknown action {action!r}.")

    async def identify(self, request: Request, challenge: bool) -> Actor:
        """
        Who is asking: HTTP Basic with a user's password, or an API token
        (Basic with the user name C{__token__}, or C{Bearer}/C{token}).

        :param challenge: answer a missing or failed login with 401 and a
            Basic challenge (distutils C{register} waits for one).
        """
        header = request.getHeader(b"authorization")
        if not header:
            raise Unauthenticated(INVALID_AUTH, challenge)
        scheme, _, value = header.strip().partition(b" ")
        scheme = scheme.lower()
        credentials = value.strip().decode("utf-8", "replace")
        if scheme == b"basic":
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated(INVALID_AUTH, challenge) from None
            username, _, password = decoded.partition(":")
            if username == "__token__":
                return await self._index.authenticate_token(password, challenge)
            # Wrong passwords are slowed down here as on the login form.
            return await self._throttle.check(
                self._index.reactor,
                (username.lower(), client_host(request)),
                lambda: self._index.authenticate_password(username, password, challenge),
            )
        if scheme in (b"bearer", b"token"):
            return await self._index.authenticate_token(credentials, challenge)
        raise Unauthenticated(INVALID_AUTH, challenge)

    async def _create_account(self, form: UploadForm) -> None:
        """
        distutils C{register}'s "register as a new user", when the index
        allows it (C{--registration open}).
        """
        if self._settings.registration != "open":
            raise Forbidden("Account registration is closed on this index; ask its administrator for an account.")
        for field in ("name", "password", "email"):
            if not form.get(field):
                raise InvalidRequest(f"'{field}' is required")
        password = form.get("password") or ""
        if form.get("confirm") is not None and form.get("confirm") != password:
            raise InvalidRequest("The passwords do not match.")
        await self._index.add_user(form.get("name") or "", form.get("email"), password)
