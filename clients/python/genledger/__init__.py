"""genledger: Python client for the genledger metering server.

    import genledger
    gl = genledger.Client("http://127.0.0.1:8080", token="...")
    with gl.gate("acme", "alice", "runway-gen4-alpha-turbo", seconds=8) as hold:
        video = generate(...)          # raises: the hold is released, nothing is charged
        hold.commit(seconds=5)         # the actual usage; without it the whole hold is charged

``AsyncClient`` does the same over one auto-batching WebSocket. Errors are subclasses of
``genledger.Error`` named after the API's codes (``InsufficientGenerations``, ...).
"""

from .errors import *  # noqa: F401,F403  (one class per error code)
from .errors import Error, CODES
from .results import (Result, Charge, Quote, Reservation, Commit, Release, Refund, Workspace,
                      User, Grant, Usage, Alert, Token, Webhook, Event, Page)
from .client import Client, Hold
from ._api import new_id

__version__ = "0.1.0"


def __getattr__(name):
    # AsyncClient needs Debian's python3-websockets; import it only when asked for, so the
    # blocking client and the CLI work without it.
    if name in ("AsyncClient", "AsyncHold"):
        from . import aio
        return getattr(aio, name)
    raise AttributeError("module 'genledger' has no attribute %r" % name)
