"""
The storage contract: the only view of the database that the domain has.
"""

from __future__ import annotations

from zope.interface import Attribute, Interface


class IStore(Interface):
    """
    A database holding the index.  Transactions are async functions: a body
    receives a L{twistedindex.storage.transaction.Transaction} (and the extra
    arguments), awaits its query methods and nothing else, and returns a
    value.  The store runs the body in one database transaction, commits when
    it returns and rolls back when it raises.
    """

    dialect = Attribute("C{'sqlite'} or C{'postgres'}.")

    def start():
        """
        Open connections.  A coroutine; call once before any transaction.
        """

    def stop():
        """
        Close connections.  A coroutine.
        """

    def read(body, *args):
        """
        Run C{body} in a read-only transaction that sees one consistent
        snapshot.  Returns a Deferred firing with the body's result.
        """

    def write(body, *args):
        """
        Run C{body} in a write transaction.  Write transactions run one at a
        time across every process sharing the database, so a body may read,
        decide and write without racing another writer, and journal serials
        are handed out in commit order.  Returns a Deferred firing with the
        body's result.
        """

    def watch(callback):
        """
        Call C{callback()} (no arguments) after another connection or process
        may have committed a change, once the store is started.  Calls may be
        spurious; the receiver reads the journal to learn what changed.
        """

    def may_have_changed():
        """
        A cheap, synchronous check for the request path: C{True} if another
        writer may have committed since the last call.  Backends that deliver
        changes through L{watch} promptly return C{False}.
        """
