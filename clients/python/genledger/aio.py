"""The asyncio client: every gate op of every task goes over one WebSocket, batched.

Calls made while the event loop is busy are queued; the sender task wakes when the loop next
runs it and sends everything queued as one frame (an array of ops, at most ``max_batch``),
so N concurrent calls cost one frame, one server wake-up and one WAL round rather than N.
Each op carries a ``seq``; replies are matched by it. Reply frames come back in frame order,
which is how a frame-level error (``{"status":503,...}`` in place of a whole frame) is matched
to the ops it stands for.

A lost or stalled connection (no reply for ``timeout`` seconds while replies are due) is
reopened and the ops that had no answer are sent again, charge and reserve with their id (so
never twice); after ``retries`` failed attempts they fail as ``Unavailable`` or, with
``on_unavailable="open"``, succeed as fail-open results. Admin and read calls go over HTTP (the
blocking Client, in the default executor).
"""

import asyncio
import collections
import time

import websockets
import websockets.exceptions

from . import _api, errors, results
from .client import Client, _Policy, _unavailable_from

MAX_FRAME_BYTES = 900_000  # under the server's default --max-body-bytes (1 MiB)


class _Op:
    __slots__ = ("seq", "body", "future", "attempts", "type", "name")

    def __init__(self, seq, name, body, future, result_type):
        self.seq = seq
        self.name = name
        self.body = body
        self.future = future
        self.attempts = 0
        self.type = result_type


class _Stalled(Exception):
    pass


class AsyncClient:
    """A genledger client for asyncio: the same calls as Client, awaited.

    Parameters as for Client, plus ``max_batch`` (ops per frame, at most the server's
    ``--max-batch-ops``, 1000 by default). Use ``async with AsyncClient(...) as gl`` or call
    ``await gl.close()``. One instance belongs to one event loop.
    """

    def __init__(self, url="http://127.0.0.1:8080", token=None, timeout=5.0, retries=3,
                 on_unavailable="closed", on_fail_open=None, backoff=0.05, max_batch=1000,
                 ssl_context=None):
        self._policy = _Policy(timeout, retries, backoff, on_unavailable, on_fail_open)
        self._http = Client(url, token, timeout, retries, "closed", None, backoff,
                            ssl_context=ssl_context)
        self._ws_url = _ws_url(url)
        self._headers = {"Authorization": "Bearer " + token} if token else {}
        self._ssl = ssl_context
        self._max_batch = max_batch
        self._seq = 0
        self._pending = collections.deque()  # ops waiting to be sent
        self._inflight = {}                   # seq -> op sent on the current connection
        self._frames = collections.deque()    # (time sent, [seq, ...]) per frame, in order
        self._ws = None
        self._wakeup = None
        self._runner = None
        self._loop = None
        self._closed = False
        self.connects = 0     # WebSocket connections opened (for tests and monitoring)
        self.frames_sent = 0  # frames sent: calls / frames_sent is the batching achieved
        self._subs = {}   # workspace -> set of asyncio.Queue
        self._state = {}  # workspace -> latest state seen (subscribe reply or balance event)

    @property
    def fail_open_count(self):
        return self._policy.fail_open_count

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def close(self):
        """Closes the WebSocket; calls still waiting fail with Unavailable."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            try:
                await self._runner
            except (asyncio.CancelledError, Exception):
                pass
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        err = errors.Unavailable("the client was closed", code="unavailable", status=None)
        for op in list(self._pending) + list(self._inflight.values()):
            if not op.future.done():
                op.future.set_exception(err)
        self._pending.clear()
        self._inflight.clear()
        self._http.close()

    # ---- the machinery -------------------------------------------------------------------
    def _call(self, name, body, result_type):
        if self._closed:
            raise errors.Error("the client is closed")
        if self._runner is None:
            self._loop = asyncio.get_running_loop()
            self._wakeup = asyncio.Event()
            self._runner = self._loop.create_task(self._run())
        self._seq += 1
        body["op"] = name
        body["seq"] = self._seq
        fut = self._loop.create_future()
        self._pending.append(_Op(self._seq, name, body, fut, result_type))
        self._wakeup.set()
        return fut

    async def _run(self):
        """Connects when there is something to send (or a subscription) and sends whatever is
        queued, one frame per ``max_batch`` ops."""
        failures = 0
        while True:
            if not self._pending and (self._ws is not None or not self._subs):
                await self._wakeup.wait()
            self._wakeup.clear()
            if self._ws is None:
                try:
                    ws = await self._connect()
                except errors.Error as e:  # refused at the handshake: no retry helps
                    self._fail_all(e)
                    continue
                except Exception as e:
                    failures += 1
                    if failures > self._policy.retries:
                        failures = 0
                        self._fail_all(_unavailable_from(errors.Unavailable(
                            "cannot connect to %s: %s" % (self._ws_url, e), status=None)))
                    else:
                        await asyncio.sleep(self._policy.delay(failures))
                    continue
                failures = 0
                self.connects += 1
                self._ws = ws
                asyncio.get_running_loop().create_task(self._read(ws))
                # The server forgot this connection's subscriptions: renew them (but not twice
                # for one whose subscribe is still waiting to be sent).
                queued = {op.body["workspace"] for op in self._pending if op.name == "subscribe"}
                for workspace in self._subs:
                    if workspace not in queued:
                        self._send_subscribe(workspace)
            await self._send_pending(self._ws)

    async def _connect(self):
        try:
            extra = {"ssl": self._ssl} if self._ssl is not None else {}
            return await websockets.connect(
                self._ws_url, extra_headers=self._headers, compression=None, max_size=None,
                ping_interval=None, open_timeout=self._policy.timeout, close_timeout=1, **extra)
        except websockets.exceptions.InvalidStatusCode as e:
            if e.status_code in (401, 403):
                cls = errors.Unauthorized if e.status_code == 401 else errors.Forbidden
                raise cls("WebSocket upgrade refused with %d" % e.status_code,
                          status=e.status_code) from e
            raise

    async def _send_pending(self, ws):
        while self._pending and self._ws is ws:
            batch = []
            while self._pending and len(batch) < self._max_batch:
                op = self._pending.popleft()
                if not op.future.done():  # a caller cancelled before it was sent
                    batch.append(op)
            if not batch:
                continue
            data = _api.dumps([op.body for op in batch])
            while len(data) > MAX_FRAME_BYTES and len(batch) > 1:
                half = len(batch) // 2
                self._pending.extendleft(reversed(batch[half:]))
                batch = batch[:half]
                data = _api.dumps([op.body for op in batch])
            for op in batch:
                self._inflight[op.seq] = op
            self._frames.append((time.monotonic(), [op.seq for op in batch]))
            self.frames_sent += 1
            try:
                await ws.send(data)
            except websockets.exceptions.ConnectionClosed:
                return  # the reader sees it too and puts the frame's ops back
            except Exception:
                # Any other failure to send: drop the connection, so that the reader puts the
                # ops back and the runner opens a new one, rather than leave them waiting.
                await ws.close(code=1011)
                return

    async def _read(self, ws):
        timeout = self._policy.timeout
        try:
            while True:
                try:
                    msg = await asyncio.wait_for(ws.recv(), timeout)
                except asyncio.TimeoutError:
                    if self._frames and time.monotonic() - self._frames[0][0] > timeout:
                        raise _Stalled("no reply for %.1f s" % timeout)
                    continue
                data = _api.loads(msg)
                if isinstance(data, list):
                    self._frames.popleft()
                    for r in data:
                        self._resolve(r)
                elif "event" in data:
                    self._on_event(data)
                else:  # one error object in place of a whole frame
                    _, seqs = self._frames.popleft()
                    for seq in seqs:
                        self._resolve(dict(data, seq=seq))
        except (websockets.exceptions.ConnectionClosed, _Stalled, OSError, ValueError,
                IndexError) as e:
            self._lost(ws, e)
        except asyncio.CancelledError:
            raise

    def _resolve(self, r):
        op = self._inflight.pop(r.pop("seq", None), None)
        if op is None or op.future.done():
            return
        status = r.pop("status", 200)
        if status == 200:
            op.future.set_result(op.type(r))
        elif status == 503 and op.attempts < self._policy.retries:
            op.attempts += 1
            asyncio.get_running_loop().call_later(self._policy.delay(op.attempts),
                                                  self._requeue, op)
        elif status == 503:
            self._unavailable(op, errors.from_body(status, r))
        else:
            op.future.set_exception(errors.from_body(status, r))

    def _requeue(self, op):
        if not op.future.done() and not self._closed:
            self._pending.append(op)
            self._wakeup.set()

    def _unavailable(self, op, err):
        if not isinstance(err, errors.Unavailable):
            err = errors.Unavailable(err.message, status=err.status, raw=err.raw)
        if op.name not in _api.GATE_OPS:  # subscribe, unsubscribe: nothing to let through
            op.future.set_exception(err)
            return
        try:
            op.future.set_result(self._policy.unavailable(op.name, op.body, err, op.type))
        except errors.Error as e:
            op.future.set_exception(e)

    def _lost(self, ws, cause):
        """The connection is gone: ops without an answer go back to the front of the queue
        (same body, same id), or fail once they have used their retries."""
        if self._ws is ws:
            self._ws = None
        asyncio.get_running_loop().create_task(ws.close())
        ops = sorted(self._inflight.values(), key=lambda o: o.seq)
        self._inflight.clear()
        self._frames.clear()
        err = errors.Unavailable("connection to genledger lost: %s" % (cause or
                                 type(cause).__name__), status=None)
        retry = []
        for op in ops:
            if op.future.done():
                continue
            op.attempts += 1
            if op.attempts > self._policy.retries:
                self._unavailable(op, err)
            else:
                retry.append(op)
        self._pending.extendleft(reversed(retry))
        if not self._closed:
            self._wakeup.set()

    def _fail_all(self, err):
        ops = list(self._pending)
        self._pending.clear()
        for op in ops:
            if op.future.done():
                continue
            if isinstance(err, errors.Unavailable):
                self._unavailable(op, err)
            else:
                op.future.set_exception(err)
        for queues in self._subs.values():
            for q in queues:
                _put_latest(q, err)
        self._subs.clear()

    # ---- gate operations -----------------------------------------------------------------
    async def charge(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
                     id=None, formats=None):
        return await self._call("charge", _api.gate_body(
            "charge", workspace, user, model, quantity, seconds, outputs, formats, id),
            results.Charge)

    async def quote(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
                    formats=None):
        return await self._call("quote", _api.gate_body(
            "quote", workspace, user, model, quantity, seconds, outputs, formats), results.Quote)

    async def reserve(self, workspace, user, model, quantity=None, seconds=None, outputs=None,
                      id=None, ttl_ms=None, formats=None):
        return await self._call("reserve", _api.gate_body(
            "reserve", workspace, user, model, quantity, seconds, outputs, formats, id, ttl_ms),
            results.Reservation)

    async def commit(self, reservation, quantity=None, seconds=None, outputs=None, formats=None):
        return await self._call("commit", _api.gate_body(
            "commit", quantity=quantity, seconds=seconds, outputs=outputs, formats=formats,
            reservation=reservation), results.Commit)

    async def release(self, reservation):
        return await self._call("release", _api.gate_body("release", reservation=reservation),
                                results.Release)

    async def refund(self, charge):
        return await self._call("refund", _api.gate_body("refund", charge=charge),
                                results.Refund)

    def gate(self, workspace, user, model, quantity=None, seconds=None, outputs=None, id=None,
             ttl_ms=None, formats=None):
        """``async with gl.gate(...) as hold:``: as Client.gate."""
        return AsyncHold(self, dict(workspace=workspace, user=user, model=model,
                                    quantity=quantity, seconds=seconds, outputs=outputs, id=id,
                                    ttl_ms=ttl_ms, formats=formats))

    # ---- live events ----------------------------------------------------------------------
    async def subscribe(self, workspace, initial=True, max_queue=1000):
        """``async for event in gl.subscribe("acme")``: the workspace's pushed events
        (``balance``, ``alert``, ``depleted``, ``period_reset``) as Event objects, the
        current state first (as a ``balance`` event) unless ``initial=False``. After a
        reconnect the fresh state comes again. If a consumer falls ``max_queue`` events
        behind, the oldest are dropped (balances are states: the latest one suffices)."""
        q = asyncio.Queue(max_queue)
        first = workspace not in self._subs
        self._subs.setdefault(workspace, set()).add(q)
        try:
            if first:
                await self._subscribe_op(workspace)
            if initial and workspace in self._state:
                yield results.Event(self._state[workspace], event="balance", workspace=workspace)
            while True:
                item = await q.get()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            subs = self._subs.get(workspace)
            if subs is not None:
                subs.discard(q)
                if not subs:
                    del self._subs[workspace]
                    self._state.pop(workspace, None)
                    if self._ws is not None and not self._closed:
                        self._call("unsubscribe", {"workspace": workspace},
                                   results.Result).add_done_callback(_ignore)

    def _send_subscribe(self, workspace):
        fut = self._call("subscribe", {"workspace": workspace}, results.Result)

        def done(f):
            if f.cancelled() or f.exception() is not None:
                err = f.exception()
                for q in self._subs.pop(workspace, ()):
                    _put_latest(q, err or errors.Unavailable("subscribe cancelled", status=None))
                return
            reply = f.result().raw
            state = dict(reply.get("state") or {})
            if "rev" in reply:
                state["rev"] = reply["rev"]
            resubscribed = workspace in self._state
            self._state[workspace] = state
            if resubscribed:  # a re-subscription after a reconnect: tell consumers the state now
                for q in self._subs.get(workspace, ()):
                    _put_latest(q, results.Event(state, event="balance", workspace=workspace))
        fut.add_done_callback(done)
        return fut

    async def _subscribe_op(self, workspace):
        fut = self._send_subscribe(workspace)
        await asyncio.shield(fut)  # raises the op's error (e.g. unknown op on an old server)

    def _on_event(self, data):
        workspace = data.get("workspace")
        if data.get("event") == "balance" and workspace in self._state:
            self._state[workspace] = data
        ev = results.Event(data)
        for q in self._subs.get(workspace, ()):
            _put_latest(q, ev)


# Admin and read calls: the blocking client's, over HTTP, run in the default executor so the
# event loop never waits on a socket.
HTTP_METHODS = ("get_workspace", "put_workspace", "list_workspaces", "topup", "reset",
                "list_users", "put_user", "list_grants", "add_grant", "void_grant", "usage",
                "usage_csv", "get_alerts", "put_alerts", "create_token", "list_tokens",
                "delete_token", "create_webhook", "list_webhooks", "delete_webhook",
                "webhook_deliveries", "catalog", "health")


def _in_thread(name):
    async def method(self, *args, **kwargs):
        fn = getattr(self._http, name)
        return await asyncio.get_running_loop().run_in_executor(None, lambda: fn(*args, **kwargs))
    method.__name__ = name
    method.__doc__ = "Awaitable Client.%s (over HTTP)." % name
    return method


for _name in HTTP_METHODS:
    setattr(AsyncClient, _name, _in_thread(_name))
del _name


def _put_latest(q, item):
    if q.full():
        q.get_nowait()
    q.put_nowait(item)


def _ignore(f):
    if not f.cancelled():
        f.exception()


def _ws_url(url):
    from ._http import parse_url
    scheme, host, port, base = parse_url(url)
    host = "[%s]" % host if ":" in host else host
    return "%s://%s:%d%s/v1/ws" % ("wss" if scheme == "https" else "ws", host, port, base)


class AsyncHold:
    """A reservation used as an async context manager (see AsyncClient.gate)."""

    def __init__(self, client, params):
        self._client = client
        self._params = params
        self.reservation = None
        self.result = None

    @property
    def id(self):
        return self.reservation.reservation if self.reservation else None

    async def __aenter__(self):
        self.reservation = await self._client.reserve(**self._params)
        return self

    async def commit(self, quantity=None, seconds=None, outputs=None, formats=None):
        if self.result is not None:
            raise RuntimeError("this hold is already settled")
        if self.reservation.fail_open:
            self.result = results.Commit(fail_open=True)
        else:
            self.result = await self._client.commit(self.id, quantity, seconds, outputs, formats)
        return self.result

    async def release(self):
        if self.result is not None:
            raise RuntimeError("this hold is already settled")
        if self.reservation.fail_open:
            self.result = results.Release(fail_open=True)
        else:
            self.result = await self._client.release(self.id)
        return self.result

    async def __aexit__(self, exc_type, exc, tb):
        if self.result is not None:
            return False
        if exc_type is None:
            await self.commit()
            return False
        try:
            await self.release()
        except errors.Error:
            pass
        return False
