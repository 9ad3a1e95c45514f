"""
What only the SQLite backend has to say: its transaction bodies run on its
own thread, in one go.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred

from twistedindex.storage import Transaction
from twistedindex.storage.sqlite import TransactionBodyError
from twistedindex.storage.transaction import to_qmark


@pytest.mark.parametrize("backend", ["sqlite"])
@pytest_twisted.ensureDeferred
async def test_body_awaiting_something_else_is_stopped_and_rolled_back(store: Any) -> None:
    """
    A transaction body that awaits anything but its own queries is stopped
    with L{TransactionBodyError}, and what it wrote is rolled back.
    """

    async def body(tx: Transaction) -> None:
        await tx.insert_user("frank", None, None, 1)
        await Deferred()

    with pytest.raises(TransactionBodyError):
        await store.write(body)

    async def read(tx: Transaction) -> Any:
        return await tx.get_user("frank")

    assert await store.read(read) is None


def test_placeholders_are_translated() -> None:
    """
    C{%s} becomes C{?} and C{%%} becomes a literal C{%}.
    """
    assert to_qmark("SELECT %s, '%%' WHERE a LIKE %s") == "SELECT ?, '%' WHERE a LIKE ?"
