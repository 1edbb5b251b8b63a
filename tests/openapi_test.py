#!/usr/bin/python3
"""docs/openapi.yaml against the real server (issue 16, section 1).

1. The server's route table (`genledger --routes`) and the spec's paths are the same set of
   "METHOD PATTERN": a route the spec lacks, or a path the server does not serve, fails.
2. Every schema of the spec is a valid JSON Schema (2020-12, OpenAPI 3.1's dialect).
3. A scenario of real requests against a real server: each request body is validated against
   the operation's request schema, and each response body against the schema of its status
   (or `default`), with Debian's python3-jsonschema.

Usage: openapi_test.py GENLEDGER_BINARY SPEC
"""
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

    def validate(self, schema, value, what):
        try:
            jsonschema.Draft202012Validator(schema, resolver=self.resolver).validate(value)
        except jsonschema.ValidationError as e:
            fail(f"{what}: {e.message} at {list(e.absolute_path)}")

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
        if op is not None and body is not None and not bad_request:
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if schema is None:
                fail(f"{method} {pattern}: a body was sent but the spec has no request schema")
            else:
                self.validate(schema, body, f"request of {method} {pattern}")
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
    server = Server(binary)
    try:
        c = Checker(spec, server)
        scenario(c)
        print(f"checked {len(c.checked)} of {len(documented)} operations against real traffic")
    finally:
        server.stop()
    if failures:
        print(f"{len(failures)} failure(s)")
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
