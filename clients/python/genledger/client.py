"""The blocking client: HTTP/1.1 keep-alive over a thread-safe connection pool."""

import random
import threading
import time

from . import _api, _http, errors, results
from ._api import seg, query

ON_UNAVAILABLE = ("closed", "open")


class _Policy:
    """Retries, backoff and the fail-open decision, shared by Client and AsyncClient."""

    def __init__(self, timeout, retries, backoff, on_unavailable, on_fail_open):
        if on_unavailable not in ON_UNAVAILABLE:
            raise ValueError("on_unavailable must be 'closed' or 'open'")
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.on_unavailable = on_unavailable
        self.on_fail_open = on_fail_open
        self.fail_open_count = 0
        self._count_lock = threading.Lock()

    def delay(self, attempt):
        """Seconds to wait before retry number ``attempt`` (1-based): exponential with
        jitter, so clients that failed together do not come back together."""
        base = self.backoff * (2 ** (attempt - 1))
        return min(base, 2.0) * (0.5 + random.random() / 2)

    def unavailable(self, op, body, err, result_type):
        """What a gate op answers when genledger could not give a usable answer after every
        retry: a fail-open result, or the Unavailable error."""
        if self.on_unavailable != "open":
            raise err
        with self._count_lock:
            self.fail_open_count += 1
        if self.on_fail_open is not None:
            self.on_fail_open(op, body, err)
        # A fail-open quote says "affordable": letting the call through is the point.
        return result_type({"affordable": True} if result_type is results.Quote else None,
                           fail_open=True)


def _unavailable_from(e):
    if isinstance(e, errors.Error):
        return e
    return errors.Unavailable(str(e), code="unavailable", status=None)


class Client:
    """A genledger client for threads and scripts.

    url: ``http://host:port`` (a path prefix is kept). token: bearer token, or None for an
    open server. timeout: seconds per attempt (connect, then each socket read). retries: how
    many times a call is sent again after a connection failure, a timeout or a 503 (with
    exponential backoff from ``backoff`` seconds); charge and reserve are retried with the same
    idempotency id, so a retry never debits twice. on_unavailable: what gate ops (charge, quote,
    reserve, commit, release, refund) do when no answer came after every retry: ``"closed"``
    raises ``Unavailable``, ``"open"`` returns a result with ``fail_open=True`` (counted in
    ``fail_open_count``, and ``on_fail_open(op, body, error)`` is called). Admin and read calls
    always raise. Safe to share between threads.
    """

    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=5.0, retries=3,
                 on_unavailable="closed", on_fail_open=None, backoff=0.05, pool_size=32,
                 ssl_context=None):
        self.url = url
        self._policy = _Policy(timeout, retries, backoff, on_unavailable, on_fail_open)
        self._pool = _http.Pool(url, token, timeout, pool_size, ssl_context)

    @property
    def fail_open_count(self):
        """Gate calls answered with a fail-open result since this client was made."""
        return self._policy.fail_open_count

    def close(self):
        self._pool.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- transport -------------------------------------------------------------------
    def _send(self, method, path, body=None, safe=True, accept=None):
        """Sends with retries; returns (status, content type, bytes) of a non-503 answer.

        safe: the request may be sent again whatever happened to the last attempt (reads,
        PUTs, gate ops: charge/reserve carry their id). An unsafe one (top-up, minting a
        token) is retried only when the connection could not even be made.
        """
        payload = None if body is None else _api.dumps(body)
        policy = self._policy
        attempt = 0
        while True:
            try:
                status, ctype, data = self._pool.request(method, path, payload, accept)
                if status != 503:
                    return status, ctype, data
                err = errors.from_body(status, _parse(data))
                if not isinstance(err, errors.Unavailable):
                    err = errors.Unavailable(err.message, code=err.code or "unavailable",
                                             status=503, raw=err.raw)
                retryable = safe or err.code == "overloaded"
            except _http.ConnectFailed as e:
                err, retryable = e, True
            except _http.Broken as e:
                err, retryable = e, safe
            if not retryable or attempt >= policy.retries:
                raise _unavailable_from(err)
            attempt += 1
            time.sleep(policy.delay(attempt))

    def _json(self, method, path, body=None, safe=True):
        status, _, data = self._send(method, path, body, safe)
        obj = _parse(data)
        if status >= 400:
            raise errors.from_body(status, obj)
        return obj

    def _gate(self, op, body):
        path, result_type, _ = _api.GATE_OPS[op]
        try:
            obj = self._json("POST", path, body)
        except errors.Unavailable as e:
            return self._policy.unavailable(op, body, e, result_type)
        return result_type(obj)

    # ---- gate operations ---------------------------------------------------------------
    def charge(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
               id=None, formats=None):
        """Checks and debits in one step. Returns Charge (``charge``, ``cost``, ``remaining``,
        ``user_used``, ``rev``; ``replayed`` on an idempotent retry). Raises
        InsufficientGenerations / UserLimitExceeded (with ``cost``, ``remaining``), ..."""
        return self._gate("charge", _api.gate_body(
            "charge", workspace, user, model, quantity, seconds, outputs, formats, id))

    def quote(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
              formats=None):
        """Cost, whether it fits now, and the largest usage that does (``max_quantity`` /
        ``max_seconds``). Leave out quantity and seconds to ask only for the maximum."""
        return self._gate("quote", _api.gate_body(
            "quote", workspace, user, model, quantity, seconds, outputs, formats))

    def reserve(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
                id=None, ttl_ms=None, formats=None):
        """Holds the cost until commit, release or the TTL. Returns Reservation."""
        return self._gate("reserve", _api.gate_body(
            "reserve", workspace, user, model, quantity, seconds, outputs, formats, id, ttl_ms))

    def commit(self, reservation, quantity=None, seconds=None, outputs=None, formats=None):
        """Charges the actual usage (no usage: the whole hold) and frees the rest."""
        return self._gate("commit", _api.gate_body(
            "commit", quantity=quantity, seconds=seconds, outputs=outputs, formats=formats,
            reservation=reservation))

    def release(self, reservation):
        """Frees a hold: nothing is charged."""
        return self._gate("release", _api.gate_body("release", reservation=reservation))

    def refund(self, charge):
        """Gives a charge's cost back (once)."""
        return self._gate("refund", _api.gate_body("refund", charge=charge))

    def gate(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
             id=None, ttl_ms=None, formats=None):
        """``with client.gate(ws, user, model, seconds=8) as hold: ...``: reserves on entry;
        if the block raises, the hold is released (a failed generation is free) and the
        exception goes on; if the block ends without ``hold.commit(...)``, the whole hold is
        committed."""
        return Hold(self, dict(workspace=workspace, user=user, model=model, quantity=quantity,
                               seconds=seconds, outputs=outputs, id=id, ttl_ms=ttl_ms,
                               formats=formats))

    # ---- workspaces, users, grants -------------------------------------------------------
    def get_workspace(self, workspace):
        return results.Workspace(self._json("GET", "/v1/workspaces/" + seg(workspace)))

    def put_workspace(self, workspace, **fields):
        """Creates or updates: ``limit`` (None: unlimited), ``region``, ``period``
        (``{"interval": "month", "anchor": ...}`` or just ``"month"``), ``plan_priority``,
        ``rollover``, ``overage_mode``, ``overage_limit``, ``limit_change="now"``."""
        return results.Workspace(self._json("PUT", "/v1/workspaces/" + seg(workspace),
                                            _api.workspace_body(**fields)))

    def list_workspaces(self, prefix=None, limit=None, cursor=None):
        """One page of workspaces by id (``GET /v1/workspaces``, issue 16)."""
        obj = self._json("GET", "/v1/workspaces" + query(prefix=prefix, limit=limit,
                                                         cursor=cursor))
        return results.Page([results.Workspace(w) for w in obj.get("workspaces", [])],
                            obj.get("next_cursor"), obj)

    def iter_workspaces(self, prefix=None, page_size=None):
        return _pages(lambda c: self.list_workspaces(prefix, page_size, c))

    def topup(self, workspace, amount):
        """Adds ``amount`` to this period (a grant that ends with it). Not retried once sent."""
        return results.Workspace(self._json("POST", "/v1/workspaces/%s/topup" % seg(workspace),
                                            {"amount": amount}, safe=False))

    def reset(self, workspace):
        """Starts a new period now. Not retried once sent."""
        return results.Workspace(self._json("POST", "/v1/workspaces/%s/reset" % seg(workspace),
                                            {}, safe=False))

    def list_users(self, workspace, limit=None, cursor=None):
        """One page of users, by usage descending."""
        obj = self._json("GET", "/v1/workspaces/%s/users" % seg(workspace)
                         + query(limit=limit, cursor=cursor))
        return results.Page([results.User(u, workspace=workspace) for u in obj["users"]],
                            obj.get("next_cursor"), obj)

    def iter_users(self, workspace, page_size=None):
        return _pages(lambda c: self.list_users(workspace, page_size, c))

    def put_user(self, workspace, user, limit):
        """Sets (or with None clears) a user's cap."""
        return results.User(self._json("PUT", "/v1/workspaces/%s/users/%s" % (
            seg(workspace), seg(user)), {"limit": limit}))

    def list_grants(self, workspace):
        obj = self._json("GET", "/v1/workspaces/%s/grants" % seg(workspace))
        return [results.Grant(g) for g in obj["grants"]]

    def add_grant(self, workspace, amount, priority=None, expires_at=None, source=None, id=None):
        """Adds a grant (a pack, a promotion). Sent with an idempotency id (a fresh one unless
        given), so retries never add it twice."""
        body = {"amount": amount, "id": id if id is not None else _api.new_id()}
        if priority is not None:
            body["priority"] = priority
        if expires_at is not None:
            body["expires_at"] = _api.time_value(expires_at)
        if source is not None:
            body["source"] = source
        return results.Grant(self._json("POST", "/v1/workspaces/%s/grants" % seg(workspace), body))

    def void_grant(self, workspace, grant):
        return results.Grant(self._json("DELETE", "/v1/workspaces/%s/grants/%s" % (
            seg(workspace), seg(grant))))

    # ---- usage, alerts, tokens, webhooks (issue 15) ---------------------------------------
    def usage(self, workspace, period=None, group_by="user"):
        """Usage history: ``period`` ``"current"`` (default), ``"previous"`` or a number;
        ``group_by`` one or two of user, model, category, day (a list or ``"user,model"``)."""
        return results.Usage(self._json("GET", self._usage_path(workspace, period, group_by)))

    def usage_csv(self, workspace, period=None, group_by="user"):
        """The same as CSV text (with a header row)."""
        status, _, data = self._send("GET", self._usage_path(workspace, period, group_by, "csv"),
                                     accept="text/csv")
        if status >= 400:
            raise errors.from_body(status, _parse(data))
        return data.decode()

    @staticmethod
    def _usage_path(workspace, period, group_by, fmt=None):
        if group_by is not None and not isinstance(group_by, str):
            group_by = ",".join(group_by)
        return "/v1/workspaces/%s/usage" % seg(workspace) + query(
            period=period, group_by=group_by, format=fmt)

    def get_alerts(self, workspace):
        obj = self._json("GET", "/v1/workspaces/%s/alerts" % seg(workspace))
        return [results.Alert(a) for a in obj.get("alerts", [])]

    def put_alerts(self, workspace, alerts):
        """Replaces the set: ``[{"name": "80pct", "when": "used_percent", "at": 80}, ...]``."""
        body = {"alerts": [a.to_dict() if isinstance(a, results.Result) else a for a in alerts]}
        obj = self._json("PUT", "/v1/workspaces/%s/alerts" % seg(workspace), body)
        return [results.Alert(a) for a in obj.get("alerts", [])]

    def create_token(self, role, workspaces=None, expires_at=None, name=None):
        """Mints a token; its secret (``.token``) is in this answer only. Not retried once
        sent (a retry would mint a second token)."""
        body = {"role": role, "workspaces": workspaces,
                "expires_at": _api.time_value(expires_at)}
        if name is not None:
            body["name"] = name
        return results.Token(self._json("POST", "/v1/tokens", body, safe=False))

    def list_tokens(self):
        return [results.Token(t) for t in self._json("GET", "/v1/tokens").get("tokens", [])]

    def delete_token(self, token_id):
        return self._json("DELETE", "/v1/tokens/" + seg(token_id))

    def create_webhook(self, url, events, secret, workspaces=None):
        body = {"url": url, "events": list(events), "workspaces": workspaces, "secret": secret}
        return results.Webhook(self._json("POST", "/v1/webhooks", body, safe=False))

    def list_webhooks(self):
        return [results.Webhook(w) for w in self._json("GET", "/v1/webhooks").get("webhooks", [])]

    def delete_webhook(self, webhook_id):
        return self._json("DELETE", "/v1/webhooks/" + seg(webhook_id))

    def webhook_deliveries(self, webhook_id):
        return self._json("GET", "/v1/webhooks/%s/deliveries" % seg(webhook_id))

    def events(self, workspace, timeout=60.0):
        """The workspace's live stream over Server-Sent Events
        (``GET /v1/workspaces/{ws}/events``): yields Event objects, the current state first,
        until the server ends the stream (then simply call again: the first record is always
        the current state). Blocks between records; ``timeout`` bounds the wait for one (the
        server sends a keep-alive comment every 15 s). Uses its own connection."""
        conn = self._pool._new()
        conn.sock.settimeout(timeout)
        try:
            conn.request("GET", self._pool.base + "/v1/workspaces/%s/events" % seg(workspace),
                         headers=dict(self._pool._headers, Accept="text/event-stream"))
            resp = conn.getresponse()
            if resp.status != 200:
                raise errors.from_body(resp.status, _parse(resp.read()))
            data = []
            for line in resp:
                line = line.decode("utf-8").rstrip("\r\n")
                if line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
                elif not line and data:
                    yield results.Event(_api.loads("\n".join(data)))
                    data = []
        except OSError as e:
            raise errors.Unavailable("event stream failed: %s" % e, status=None) from e
        finally:
            conn.close()

    # ---- service ----------------------------------------------------------------------
    def catalog(self):
        return self._json("GET", "/v1/catalog")

    def health(self):
        """``/healthz`` as a dict (``{"status": "ok", ...}``); a 503 answer is returned too."""
        status, _, data = self._send("GET", "/healthz")
        return _parse(data)


def _parse(data):
    if not data:
        return {}
    try:
        return _api.loads(data)
    except ValueError:
        return {"error": {"code": None, "message": data[:200].decode("utf-8", "replace")}}


def _pages(fetch):
    cursor = None
    while True:
        page = fetch(cursor)
        yield from page
        cursor = page.next_cursor
        if cursor is None:
            return


class Hold:
    """A reservation used as a context manager (see Client.gate)."""

    def __init__(self, client, params):
        self._client = client
        self._params = params
        self.reservation = None  # the Reservation result
        self.result = None       # the Commit or Release result once settled

    @property
    def id(self):
        return self.reservation.reservation if self.reservation else None

    @property
    def settled(self):
        return self.result is not None

    def __enter__(self):
        self.reservation = self._client.reserve(**self._params)
        return self

    def commit(self, quantity=None, seconds=None, outputs=None, formats=None):
        """Charges the actual usage (at most the hold); no usage: the whole hold."""
        if self.result is not None:
            raise RuntimeError("this hold is already settled")
        if self.reservation.fail_open:
            self.result = results.Commit(fail_open=True)
        else:
            self.result = self._client.commit(self.id, quantity, seconds, outputs, formats)
        return self.result

    def release(self):
        """Frees the hold now: nothing is charged."""
        if self.result is not None:
            raise RuntimeError("this hold is already settled")
        if self.reservation.fail_open:
            self.result = results.Release(fail_open=True)
        else:
            self.result = self._client.release(self.id)
        return self.result

    def __exit__(self, exc_type, exc, tb):
        if self.result is not None:
            return False
        if exc_type is None:
            self.commit()
            return False
        try:
            self.release()
        except errors.Error:
            pass  # the hold expires by its TTL; the block's own exception matters more
        return False
