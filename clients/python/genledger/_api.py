"""What each call sends: shared by Client (HTTP) and AsyncClient (WebSocket for gate ops).

Gate ops are described as JSON bodies with their route; the WebSocket client sends the same
body with ``"op"`` added. Nothing here does I/O.
"""

import datetime
import decimal
import itertools
import json
import os
import urllib.parse
import uuid

from . import results

# Gate operations: op name -> (HTTP path, result type, sends an idempotency id).
GATE_OPS = {
    "charge": ("/v1/charge", results.Charge, True),
    "quote": ("/v1/quote", results.Quote, False),
    "reserve": ("/v1/reserve", results.Reservation, True),
    "commit": ("/v1/commit", results.Commit, False),
    "release": ("/v1/release", results.Release, False),
    "refund": ("/v1/refund", results.Refund, False),
}


_id_pid = None
_id_prefix = None
_id_counter = None


def new_id():
    """A fresh idempotency id of the id alphabet [A-Za-z0-9._:@-]: ``py-<uuid4 hex>-<n>``,
    a random uuid4 per process (made again in a forked child, which would otherwise repeat
    its parent's ids) and a counter, so ids are unique without a uuid4 per call."""
    global _id_pid, _id_prefix, _id_counter
    pid = os.getpid()
    if pid != _id_pid:
        _id_prefix = "py-%s-" % uuid.uuid4().hex
        _id_counter = itertools.count(1)
        _id_pid = pid
    return _id_prefix + str(next(_id_counter))


def seconds_value(seconds):
    """``seconds`` as JSON will carry it. The server reads the decimal text exactly; Python's
    float repr is the shortest text that reads back as the same float, so 1.65 is sent as
    ``1.65``. Decimal and str are accepted as well (``Decimal("3.03")``, ``"3.03"``)."""
    if isinstance(seconds, bool):
        raise TypeError("seconds must be a number")
    if isinstance(seconds, int):
        return seconds
    if isinstance(seconds, str):
        seconds = decimal.Decimal(seconds)
    if isinstance(seconds, decimal.Decimal):
        return int(seconds) if seconds == seconds.to_integral_value() else float(seconds)
    if isinstance(seconds, float):
        return int(seconds) if seconds.is_integer() else seconds
    raise TypeError("seconds must be int, float, Decimal or str, not %s" % type(seconds).__name__)


def time_value(t):
    """A time for ``expires_at`` / ``period.anchor``: ms since the epoch (int), an RFC 3339
    string, or an aware ``datetime``."""
    if isinstance(t, datetime.datetime):
        if t.tzinfo is None:
            raise ValueError("datetime must be timezone-aware")
        return int(t.timestamp() * 1000)
    return t


def usage_fields(body, quantity=None, seconds=None, outputs=None, formats=None):
    if quantity is not None:
        body["quantity"] = quantity
    if seconds is not None:
        body["seconds"] = seconds_value(seconds)
    if outputs is not None:
        body["outputs"] = outputs
    if formats is not None:
        body["formats"] = formats
    return body


def gate_body(op, workspace=None, user=None, model=None, quantity=None, seconds=None,
              outputs=None, formats=None, id=None, ttl_ms=None, reservation=None, charge=None):
    """The JSON body of a gate op. Charge and reserve get a fresh id unless one is given, so a
    retry of this body is never a second debit."""
    if op in ("charge", "quote", "reserve"):
        body = {"workspace": workspace, "user": user, "model": model}
        usage_fields(body, quantity, seconds, outputs, formats)
        if op == "reserve" and ttl_ms is not None:
            body["ttl_ms"] = ttl_ms
        if GATE_OPS[op][2]:
            body["id"] = id if id is not None else new_id()
    elif op == "commit":
        body = usage_fields({"reservation": reservation}, quantity, seconds, outputs, formats)
    elif op == "release":
        body = {"reservation": reservation}
    elif op == "refund":
        body = {"charge": charge}
    else:
        raise ValueError("unknown gate op %r" % op)
    return body


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def loads(data):
    """Parses an answer. Non-integers (``max_seconds``) become ``Decimal``: exact, like the
    server's own arithmetic."""
    return json.loads(data, parse_float=decimal.Decimal)


def seg(s):
    """One path segment. Ids are of an alphabet that needs no escaping; anything else is
    escaped so a bad id reaches the server (and is refused there) instead of another route."""
    return urllib.parse.quote(str(s), safe="._:@-")


def query(**params):
    q = [(k, str(v).lower() if isinstance(v, bool) else str(v))
         for k, v in params.items() if v is not None]
    return "?" + urllib.parse.urlencode(q, safe=":,") if q else ""


def workspace_body(limit=..., region=None, period=None, plan_priority=None, rollover=...,
                   overage_mode=None, overage_limit=..., limit_change=None):
    """The PUT /v1/workspaces/{ws} body; ``...`` means "leave out" where ``None`` is a value
    (unlimited, no rollover, no overage bound)."""
    body = {}
    if limit is not ...:
        body["limit"] = limit
    if limit_change is not None:
        body["limit_change"] = limit_change
    if region is not None:
        body["region"] = region
    if period is not None:
        if isinstance(period, str):
            period = {"interval": period}
        else:
            period = dict(period)
            if "anchor" in period:
                period["anchor"] = time_value(period["anchor"])
        body["period"] = period
    if plan_priority is not None:
        body["plan_priority"] = plan_priority
    if rollover is not ...:
        body["rollover"] = rollover
    if overage_mode is not None:
        body["overage_mode"] = overage_mode
    if overage_limit is not ...:
        body["overage_limit"] = overage_limit
    return body
