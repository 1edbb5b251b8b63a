#!/usr/bin/python3
"""docs/openapi.yaml against the real server (issue 16, section 1).

1. The server's route table (`genledger --routes`) and the spec's paths are the same set of
   "METHOD PATTERN": a route the spec lacks, or a path the server does not serve, fails.
2. Every schema of the spec is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
3. A scenario of real requests against a real server: each request body is validated against
   the operation's request schema, and each response body against the schema of its status
   (or `default`), with Debian's python3-jsonschema.
4. A real WebSocket session (/v1/ws, Debian's python3-websockets): every frame sent and received
   is validated against the frame schemas the /v1/ws path names (`x-websocket-frames`) and
   against the schema of its kind (op, reply, pushed event); every kind those schemas tie
   together must be seen in the session, and every kind seen must have a schema.

Usage: openapi_test.py GENLEDGER_BINARY SPEC
"""
import asyncio
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import jsonschema
import yaml

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def spec_routes(spec):
    routes = set()
    for path, item in spec["paths"].items():
        for method in ("get", "put", "post", "delete", "head", "patch", "options"):
            if method in item:
                routes.add(f"{method.upper()} {path}")
    return routes


def check_schemas(spec):
    for name, schema in spec["components"]["schemas"].items():
        try:
            jsonschema.Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            fail(f"schema {name} is not valid JSON Schema: {e.message}")


def check_refs(spec):
    """Every $ref of the spec points at something (a dangling one would only show as a crash
    when a frame or body reaches it)."""
    resolver = jsonschema.RefResolver.from_schema(spec)
    stack = [spec]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            target = node.get("$ref")
            if isinstance(target, str):
                try:
                    resolver.resolve(target)
                except jsonschema.RefResolutionError:
                    fail(f"$ref {target}: points at nothing")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


class Server:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="genledger-openapi-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc = subprocess.Popen(
            [binary, "--listen", f"127.0.0.1:{self.port}", "--data-dir", self.dir + "/data", "--threads", "1",
             "--log-level", "warn"],
            env=dict(os.environ, GENLEDGER_ADMIN_TOKEN="admin-token-openapi"))
        deadline = time.monotonic() + 60
        while True:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                c.request("GET", "/healthz")
                if c.getresponse().status == 200:
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, target, body=None, token="admin-token-openapi"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        data = None if body is None else json.dumps(body)
        self.conn.request(method, target, body=data, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.getheader("Content-Type", ""), r.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class Checker:
    def __init__(self, spec, server):
        self.spec = spec
        self.server = server
        self.resolver = jsonschema.RefResolver.from_schema(spec)
        self.patterns = []
        for path in spec["paths"]:
            rx = "^" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$"
            self.patterns.append((re.compile(rx), path))
        self.checked = set()

    def errors(self, schema, value):
        """The most relevant validation error of `value` (None when it is valid)."""
        v = jsonschema.Draft202012Validator(schema, resolver=self.resolver)
        return jsonschema.exceptions.best_match(v.iter_errors(value))

    def validate(self, schema, value, what):
        e = self.errors(schema, value)
        if e is not None:
            msg = e.message if len(e.message) <= 200 else e.message[:197] + "..."
            fail(f"{what}: {msg} at {list(e.absolute_path)}")
        return e is None

    def operation(self, method, target):
        path = target.split("?", 1)[0]
        for rx, pattern in self.patterns:
            if rx.match(path):
                op = self.spec["paths"][pattern].get(method.lower())
                if op is None:
                    fail(f"{method} {pattern}: not in the spec")
                return pattern, op
        fail(f"{method} {path}: no path of the spec matches")
        return None, None

    def call(self, method, target, body=None, expect=None, token="admin-token-openapi", bad_request=False):
        """bad_request: the body is meant to break the spec (the server must refuse it)."""
        pattern, op = self.operation(method, target)
        if op is not None and body is not None:
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                fail(f"{method} {pattern}: a body was sent but the spec has no request schema")
            elif not bad_request:
                self.validate(schema, body, f"request of {method} {pattern}")
            elif self.errors(schema, body) is None:
                fail(f"request of {method} {pattern}: the server must refuse {body}, but the spec accepts it")
        status, ctype, raw = self.server.request(method, target, body, token)
        if expect is not None and status != expect:
            fail(f"{method} {target}: status {status}, expected {expect}: {raw[:200]!r}")
        value = None
        if ctype.startswith("application/json"):
            value = json.loads(raw)
        if op is not None:
            responses = op.get("responses", {})
            resp = responses.get(str(status)) or responses.get("default")
            if resp is None:
                fail(f"{method} {pattern}: status {status} is not in the spec")
            else:
                if "$ref" in resp:
                    resp = self.resolver.resolve(resp["$ref"])[1]
                schema = resp.get("content", {}).get("application/json", {}).get("schema")
                if schema is not None and value is not None:
                    self.validate(schema, value, f"response {status} of {method} {pattern}")
            self.checked.add(f"{method} {pattern}")
        return status, value


def scenario(c):
    c.call("GET", "/healthz", expect=200, token=None)
    c.call("GET", "/v1/catalog", expect=200)
    c.call("GET", "/v1/workspaces/acme", expect=404)
    c.call("PUT", "/v1/workspaces/acme", {"limit": 100, "region": "global"}, expect=200)
    c.call("PUT", "/v1/workspaces/acme",
           {"period": {"interval": "month", "anchor": "2026-01-31T00:00:00Z"}, "rollover": {"max": 10, "periods": 1},
            "overage_mode": "soft", "overage_limit": 5}, expect=200)
    c.call("PUT", "/v1/workspaces/acme", {"limit": 50}, expect=200)   # pending_limit
    c.call("PUT", "/v1/workspaces/free", {}, expect=200)              # unlimited: nulls
    c.call("GET", "/v1/workspaces/acme", expect=200)
    c.call("GET", "/v1/workspaces?prefix=a&limit=1", expect=200)
    _, ch = c.call("POST", "/v1/charge",
                   {"workspace": "acme", "user": "alice", "model": "gpt-4o", "quantity": 3, "id": "k1"}, expect=200)
    c.call("POST", "/v1/charge", {"workspace": "acme", "user": "alice", "model": "gpt-4o", "quantity": 3, "id": "k1"},
           expect=200)   # replayed
    c.call("POST", "/v1/charge", {"workspace": "acme", "user": "alice", "model": "gpt-4o", "quantity": 10000},
           expect=402)
    c.call("POST", "/v1/charge", {"workspace": "nope", "user": "alice", "model": "gpt-4o", "quantity": 1}, expect=404)
    c.call("POST", "/v1/charge", {"workspace": "acme", "user": "alice", "model": "no-such-model", "quantity": 1},
           expect=400)
    c.call("POST", "/v1/quote", {"workspace": "acme", "user": "alice", "model": "gpt-4o", "quantity": 2}, expect=200)
    c.call("POST", "/v1/quote", {"workspace": "acme", "user": "alice", "model": "runway-gen4-alpha-turbo",
                                 "outputs": 2}, expect=200)
    _, rs = c.call("POST", "/v1/reserve", {"workspace": "acme", "user": "bob", "model": "gpt-4o", "quantity": 5,
                                           "ttl_ms": 60000}, expect=200)
    c.call("POST", "/v1/commit", {"reservation": rs["reservation"], "quantity": 2}, expect=200)
    c.call("POST", "/v1/commit", {"reservation": rs["reservation"]}, expect=409)
    _, rs2 = c.call("POST", "/v1/reserve", {"workspace": "acme", "user": "bob", "model": "gpt-4o", "quantity": 1},
                    expect=200)
    c.call("POST", "/v1/release", {"reservation": rs2["reservation"]}, expect=200)
    c.call("POST", "/v1/refund", {"charge": ch["charge"]}, expect=200)
    c.call("POST", "/v1/refund", {"charge": ch["charge"]}, expect=409)
    c.call("POST", "/v1/batch", {"ops": [
        {"op": "charge", "workspace": "acme", "user": "carol", "model": "gpt-4o", "quantity": 1, "seq": 1},
        {"op": "quote", "workspace": "acme", "user": "carol", "model": "gpt-4o", "quantity": 1},
        {"op": "refund", "charge": "ch_999999"}]}, expect=200)
    c.call("GET", "/v1/workspaces/acme/users?limit=1", expect=200)
    c.call("PUT", "/v1/workspaces/acme/users/dave", {"limit": 7}, expect=200)
    c.call("POST", "/v1/workspaces/acme/topup", {"amount": 5}, expect=200)
    _, g = c.call("POST", "/v1/workspaces/acme/grants",
                  {"amount": 20, "priority": 50, "source": "promo", "expires_at": "2999-01-01T00:00:00Z", "id": "g1"},
                  expect=200)
    c.call("GET", "/v1/workspaces/acme/grants", expect=200)
    c.call("GET", "/v1/workspaces/free/grants", expect=200)
    c.call("DELETE", "/v1/workspaces/acme/grants/" + g["grant"], expect=200)
    c.call("DELETE", "/v1/workspaces/acme/grants/gr_999", expect=404)
    c.call("POST", "/v1/workspaces/acme/reset", {}, expect=200)
    c.call("PUT", "/v1/workspaces/acme/alerts", {"alerts": [{"name": "80pct", "when": "used_percent", "at": 80},
                                                             {"name": "low", "when": "remaining", "at": 5}]},
           expect=200)
    c.call("GET", "/v1/workspaces/acme/alerts", expect=200)
    c.call("PUT", "/v1/workspaces/acme/alerts", {"alerts": [{"name": "x", "when": "sometimes", "at": 1}]}, expect=400,
           bad_request=True)
    c.call("GET", "/v1/workspaces/acme/usage?group_by=user", expect=200)
    c.call("GET", "/v1/workspaces/acme/usage?group_by=model,day&period=previous", expect=200)
    c.call("GET", "/v1/workspaces/acme/usage?group_by=category&format=csv", expect=200)
    c.call("GET", "/v1/workspaces/acme/usage?group_by=nope", expect=400)
    c.call("GET", "/v1/workspaces/acme/usage?group_by=user&period=99", expect=404)
    _, wh = c.call("POST", "/v1/webhooks", {"url": "http://127.0.0.1:9/hook", "events": ["alert", "depleted"],
                                          "workspaces": ["acme"], "secret": "0123456789abcdef0123"}, expect=201)
    c.call("GET", "/v1/webhooks", expect=200)
    c.call("GET", "/v1/webhooks/" + wh["webhook"] + "/deliveries", expect=200)
    c.call("DELETE", "/v1/webhooks/" + wh["webhook"], expect=200)
    _, tok = c.call("POST", "/v1/tokens", {"role": "read", "workspaces": ["acme"], "name": "page",
                                          "expires_at": "2999-01-01T00:00:00Z"}, expect=201)
    c.call("GET", "/v1/tokens", expect=200)
    c.call("GET", "/v1/workspaces/free", expect=403, token=tok["token"])   # scoped to acme
    c.call("DELETE", "/v1/tokens/" + tok["id"], expect=200)
    c.call("DELETE", "/v1/tokens/tok_999", expect=404)
    c.call("GET", "/ui", expect=308, token=None)
    c.call("GET", "/ui/index.html", expect=200, token=None)
    c.call("GET", "/v1/workspaces/acme", expect=401, token="wrong")
    c.call("GET", "/v1/ws", expect=None)                               # no upgrade: an error


# --- The WebSocket session (section 4) ---

# The schema of each kind of frame element: by "op", the op's own and that of its 200 result; by
# "event", the pushed frame's; any other status is an OpError. A kind the session meets that has
# no schema here or in the spec fails, and so does a schema of the frame schemas no frame met.
OP_SCHEMAS = {
    "charge": ("ChargeOp", "ChargeReply"),
    "quote": ("QuoteOp", "QuoteReply"),
    "reserve": ("ReserveOp", "ReserveReply"),
    "commit": ("CommitOp", "CommitReply"),
    "release": ("ReleaseOp", "ReleaseReply"),
    "refund": ("RefundOp", "RefundReply"),
    "subscribe": ("SubscribeOp", "SubscribeReply"),
    "unsubscribe": ("UnsubscribeOp", "UnsubscribeReply"),
}
EVENT_SCHEMAS = {"balance": "BalanceEvent", "alert": "AlertEvent", "depleted": "DepletedEvent",
                 "period_reset": "PeriodResetEvent"}
ERROR_SCHEMA = "OpError"
RECV_TIMEOUT_S = 10   # a liveness bound (events come within a few 100 ms polls), not a speed claim


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def short(value):
    text = json.dumps(value)
    return text if len(text) <= 120 else text[:117] + "..."


def frame_leaves(spec, schema, out):
    """Adds to `out` the named schemas that `schema` ties together through $ref, oneOf and array
    items, down to the first one that is not a oneOf: the schema of one kind of op, result or
    event."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        target = spec["components"]["schemas"].get(name)
        if target is None:
            fail(f"{schema['$ref']}: no such schema")
        elif "oneOf" in target:
            frame_leaves(spec, target, out)
        else:
            out.add(name)
        return
    for sub in schema.get("oneOf", []):
        frame_leaves(spec, sub, out)
    if "items" in schema:
        frame_leaves(spec, schema["items"], out)


def require(cond, msg):
    if not cond:
        fail(msg)
    return cond


class WsSession:
    """One WebSocket connection: every frame sent and received is validated; pushed frames
    (with "event") are kept apart from replies (with "status")."""

    def __init__(self, checker, ws, frames):
        self.c = checker
        self.ws = ws
        self.frames = frames            # {"client": schema, "server": schema}
        self.schemas = checker.spec["components"]["schemas"]
        self.events = []                # pushed frames, in order of arrival
        self.seen = set()               # kind schemas a real frame was validated against

    def kind(self, name, value, what):
        if name not in self.schemas:
            fail(f"{what}: no schema {name} in the spec")
        elif self.c.validate(ref(name), value, f"{what} against {name}"):
            self.seen.add(name)

    def check_sent(self, frame, valid):
        client = self.frames["client"]
        if not valid:
            if self.c.errors(client, frame) is None:
                fail(f"client frame {short(frame)}: the server refuses it, but WsClientFrame accepts it")
            return
        self.c.validate(client, frame, f"client frame {short(frame)}")
        for op in frame if isinstance(frame, list) else [frame]:
            names = OP_SCHEMAS.get(op.get("op"))
            if names is None:
                fail(f"op {op.get('op')!r}: a kind of op with no schema in the test")
            else:
                self.kind(names[0], op, f"op {short(op)}")

    def on_event(self, ev):
        name = EVENT_SCHEMAS.get(ev.get("event"))
        if name is None:
            fail(f"pushed frame of kind {ev.get('event')!r} has no schema: {short(ev)}")
        else:
            self.kind(name, ev, f"pushed frame {short(ev)}")
        self.events.append(ev)

    async def recv(self):
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), RECV_TIMEOUT_S))
        self.c.validate(self.frames["server"], frame, f"server frame {short(frame)}")
        return frame

    def check_result(self, op, res, status):
        what = f"result {short(res)} of {short(op)}"
        if not isinstance(res, dict):
            return fail(f"{what}: not an object")
        if isinstance(op.get("seq"), int):
            require(res.get("seq") == op["seq"], f"{what}: seq not echoed")
        else:
            require("seq" not in res, f"{what}: a seq the op did not send")
        require(res.get("status") == status, f"{what}: status {res.get('status')}, expected {status}")
        names = OP_SCHEMAS.get(op.get("op"))
        if res.get("status") != 200:
            self.kind(ERROR_SCHEMA, res, what)
        elif names is not None:
            self.kind(names[1], res, what)

    async def exchange(self, frame, statuses, valid=True, raw=None):
        """Sends `frame` (or the text `raw`) and returns the reply, checked against the ops sent:
        `statuses` is the status of each op (a list for an array frame), or None for a frame
        the server cannot run at all (one OpError without seq, whatever the frame's shape)."""
        if raw is None:
            self.check_sent(frame, valid)
            raw = json.dumps(frame)
        await self.ws.send(raw)
        while True:
            reply = await self.recv()
            if isinstance(reply, dict) and "event" in reply:
                self.on_event(reply)
                continue
            break
        what = f"reply {short(reply)} to {raw[:80]}"
        if statuses is None:
            if require(isinstance(reply, dict) and "seq" not in reply and reply.get("status", 200) >= 400,
                       f"{what}: expected a frame-level error"):
                self.kind(ERROR_SCHEMA, reply, what)
        elif isinstance(frame, list):
            if require(isinstance(reply, list) and len(reply) == len(frame), f"{what}: not one result per op"):
                for op, res, st in zip(frame, reply, statuses):
                    self.check_result(op, res, st)
        else:
            self.check_result(frame, reply, statuses)
        return reply

    async def wait_event(self, pred, what):
        for ev in self.events:
            if pred(ev):
                return ev
        try:
            while True:
                got = await self.recv()
                if not require(isinstance(got, dict) and "event" in got, f"unexpected reply {short(got)}"):
                    continue
                self.on_event(got)
                if pred(got):
                    return got
        except asyncio.TimeoutError:
            fail(f"no pushed frame: {what} (within {RECV_TIMEOUT_S} s)")
            return None


def ws_connect(url, headers):
    """A client connection with Debian's python3-websockets (10.x: extra_headers; 13 and later
    name it additional_headers in their asyncio client)."""
    try:
        from websockets.asyncio.client import connect
        return connect(url, additional_headers=headers, compression=None, max_size=None)
    except ImportError:
        import websockets
        return websockets.connect(url, extra_headers=headers, compression=None, max_size=None)


async def ws_scenario(c, port, token):
    frames = c.spec["paths"]["/v1/ws"]["get"].get("x-websocket-frames") or {}
    if not require({"client", "server"} <= frames.keys(), "GET /v1/ws: no x-websocket-frames client/server"):
        return
    c.call("PUT", "/v1/workspaces/live", {"limit": 20}, expect=200)
    c.call("PUT", "/v1/workspaces/live/alerts", {"alerts": [{"name": "half", "when": "used_percent", "at": 50}]},
           expect=200)
    _, b = c.call("POST", "/v1/batch", {"ops": [{"op": "subscribe", "workspace": "live", "seq": 1}]}, expect=200,
                  bad_request=True)
    require((b or {}).get("results", [{}])[0].get("status") == 400, f"subscribe in /v1/batch: {b}")   # WebSocket only
    async with ws_connect(f"ws://127.0.0.1:{port}/v1/ws", {"Authorization": f"Bearer {token}"}) as ws:
        s = WsSession(c, ws, frames)
        who = {"workspace": "live", "user": "alice", "model": "gpt-4o"}
        r = await s.exchange({"op": "subscribe", "workspace": "live", "seq": 1}, 200)
        require(r.get("state", {}).get("remaining") == 20, f"subscribe: {r}")
        # The stream's first poll after the server starts skips the events before it: a balance of
        # a change made now proves a poll came after it, so the crossings below are streamed.
        r = await s.exchange({"op": "charge", **who, "quantity": 1, "id": "ws-1", "seq": 2}, 200)
        first_charge = r.get("charge")
        await s.wait_event(lambda e: e.get("event") == "balance" and e.get("rev", -1) >= r.get("rev", 0),
                           "balance after a charge")
        r = await s.exchange([{"op": "quote", **who, "quantity": 2, "seq": 3},
                              {"op": "quote", **who},                  # no seq: matched by position
                              {"op": "reserve", **who, "quantity": 1, "ttl_ms": 60000, "seq": 4},
                              {"op": "reserve", **who, "quantity": 1, "seq": 5}], [200, 200, 200, 200])
        await s.exchange({"op": "commit", "reservation": r[2].get("reservation"), "quantity": 1, "seq": 6}, 200)
        await s.exchange({"op": "release", "reservation": r[3].get("reservation"), "seq": 7}, 200)
        await s.exchange({"op": "charge", **who, "quantity": 10, "seq": 8}, 200)   # used 12 of 20: 60 %
        await s.wait_event(lambda e: (e.get("event"), e.get("alert"), e.get("state")) == ("alert", "half", "fired"),
                           "alert 'half' fired")
        r = await s.exchange({"op": "refund", "charge": first_charge, "seq": 9}, 200)   # used 11
        left = r.get("remaining")
        r = await s.exchange({"op": "charge", **who, "quantity": 100, "seq": 10}, 402)
        err = r.get("error", {})
        require((err.get("code"), err.get("cost"), err.get("remaining")) == ("insufficient_generations", 100, left),
                f"402: {r}")
        await s.exchange({"op": "charge", **dict(who, model="no-such-model"), "quantity": 1, "seq": 11}, 400)
        await s.exchange({"op": "charge", "workspace": "live", "seq": 12}, 400, valid=False)   # no user, model
        await s.exchange({"op": "transfer", "seq": 13}, 400, valid=False)
        await s.exchange([{"op": "refund", "charge": "ch_1", "ttl_ms": 5, "seq": 14}], [400], valid=False)
        await s.exchange(None, None, raw="{")
        await s.exchange([1], None, valid=False)
        await s.exchange([], [])
        await s.exchange({"op": "subscribe", "workspace": "nobody", "seq": 15}, 404)
        await s.exchange({"op": "charge", **who, "quantity": left, "seq": 16}, 200)   # remaining 0
        await s.wait_event(lambda e: (e.get("event"), e.get("state"), e.get("remaining")) == ("depleted", "fired", 0),
                           "depleted fired")
        c.call("POST", "/v1/workspaces/live/reset", {}, expect=200)
        await s.wait_event(lambda e: e.get("event") == "period_reset", "period_reset")
        await s.wait_event(lambda e: (e.get("event"), e.get("state")) == ("depleted", "recovered"),
                           "depleted recovered")
        await s.exchange({"op": "unsubscribe", "workspace": "live", "seq": 17}, 200)
    balances = [e.get("rev") for e in s.events if e.get("event") == "balance"]
    require(balances == sorted(set(balances)), f"balance revs not increasing: {balances}")
    client, server = set(), set()
    frame_leaves(c.spec, frames["client"], client)
    frame_leaves(c.spec, frames["server"], server)
    expected_client = {ops for ops, _ in OP_SCHEMAS.values()}
    expected_server = {res for _, res in OP_SCHEMAS.values()} | set(EVENT_SCHEMAS.values()) | {ERROR_SCHEMA}
    for n in sorted(expected_client - client):
        fail(f"{n}: a kind of client frame element the server accepts, not in {frames['client']}")
    for n in sorted(expected_server - server):
        fail(f"{n}: a kind of server frame element the server sends, not in {frames['server']}")
    for n in sorted((client | server) - s.seen):
        fail(f"{n}: a kind of frame element of the spec that no frame of the session was validated against")
    print(f"WebSocket: {len(s.seen)} kinds of frame elements validated, {len(s.events)} pushed frames")


def main():
    binary, spec_path = sys.argv[1], sys.argv[2]
    with open(spec_path) as f:
        spec = yaml.safe_load(f)
    if not str(spec.get("openapi", "")).startswith("3.1"):
        fail("the spec is not OpenAPI 3.1")
    served = set(subprocess.run([binary, "--routes"], check=True, capture_output=True, text=True).stdout.split("\n"))
    served.discard("")
    documented = spec_routes(spec)
    for r in sorted(served - documented):
        fail(f"served but not in docs/openapi.yaml: {r}")
    for r in sorted(documented - served):
        fail(f"in docs/openapi.yaml but not served: {r}")
    check_schemas(spec)
    before = len(failures)
    check_refs(spec)
    if len(failures) > before:   # the scenarios would crash on a dangling $ref
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    server = Server(binary)
    try:
        c = Checker(spec, server)
        scenario(c)
        asyncio.run(ws_scenario(c, server.port, "admin-token-openapi"))
        print(f"checked {len(c.checked)} of {len(documented)} operations against real traffic")
    finally:
        server.stop()
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
