"""
The domain's exceptions.  Each carries a message meant for the client.

The web layer maps them to HTTP statuses in one place
(L{twistedindex.web.errors}); the XML-RPC layer maps them to Faults in one
place; the admin tool prints them.
"""

from __future__ import annotations


class CheeseshopError(Exception):
    """
    Base of every error the index reports to a client.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(CheeseshopError):
    """
    Something is wrong with the request or its content (HTTP 400).
    """


class FileExists(InvalidRequest):
    """
    A different file was already stored under this name, or these bytes under
    another name.  The message starts with C{File already exists}, which
    C{twine upload --skip-existing} looks for.
    """


class TooLarge(InvalidRequest):
    """
    An upload is over the size limit.  Refused as soon as that is known, with
    a 400 as on PyPI.
    """


class Unauthenticated(CheeseshopError):
    """
    No credentials, or credentials that identify nobody.

    :ivar challenge: answer with 401 and a Basic challenge rather than 403.
        distutils C{register} sends its login only after such a challenge.
    """

    def __init__(self, message: str, challenge: bool = False) -> None:
        super().__init__(message)
        self.challenge = challenge


class Forbidden(CheeseshopError):
    """
    The caller is known but may not do this (HTTP 403).
    """


class NotFound(CheeseshopError):
    """
    No such user, project, release, file or token (HTTP 404).
    """


class Gone(CheeseshopError):
    """
    An action PyPI has retired (HTTP 410).
    """
