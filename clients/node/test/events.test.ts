// Issue 15's and 16's routes through the client. Each test first probes the server: a route it
// does not serve (404 not_found, or an unknown WebSocket op) skips the test, saying so.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, ForbiddenError, GenledgerError, type LedgerEvent } from "../src/index.js";
import { probe, startServer, wsId, type TestServer } from "./server.js";

let srv: TestServer;
let admin: Client;
let ws: string;

before(async () => {
  srv = await startServer();
  admin = new Client({ url: srv.url, token: srv.adminToken });
  ws = wsId();
  await admin.workspaces.put(ws, { limit: 1000 });
});
after(async () => {
  await admin?.close();
  await srv?.stop();
});

async function served(method: string, path: string, body?: unknown): Promise<boolean> {
  const r = await probe(srv.url, srv.adminToken, method, path, body);
  return !(r.status === 404 && r.code === "not_found");
}

test("rev on results (issue 15)", async (t) => {
  const c = await admin.charge({ workspace: ws, user: "rev", model: "gpt-4o", quantity: 1 });
  if (c.rev === undefined) return t.skip("this server's charge results carry no rev");
  const w = await admin.workspaces.get(ws);
  assert.equal(typeof w.rev, "number");
  const c2 = await admin.charge({ workspace: ws, user: "rev", model: "gpt-4o", quantity: 1 });
  assert.equal(c2.rev, c.rev + 1);
});

test("subscribe yields the state, then pushed balance events (issue 15)", async (t) => {
  const client = new Client({ url: srv.url, token: srv.gateToken });
  try {
    const it = client.subscribe(ws);
    let first: IteratorResult<LedgerEvent>;
    try {
      first = await it.next();
    } catch (e) {
      if (e instanceof GenledgerError && e.status === 400) return t.skip(`server has no WebSocket subscribe (${e.message})`);
      throw e;
    }
    assert.equal(first.value.event, "subscribed");
    assert.equal(first.value.workspace, ws);
    const before = (first.value.state as { used: number }).used;
    await client.charge({ workspace: ws, user: "sub", model: "gpt-4o", quantity: 3 });
    // Events are coalesced; read until one shows the charge.
    for (;;) {
      const ev = await it.next();
      assert.equal(ev.done, false);
      if (ev.value.event !== "balance") continue;
      assert.equal(ev.value.workspace, ws);
      if (ev.value.used === before + 3) break;
      assert.ok(ev.value.used! < before + 3);
    }
    await it.return!();
  } finally {
    await client.close();
  }
});

test("workspaces.list (issue 16)", async (t) => {
  if (!(await served("GET", "/v1/workspaces"))) return t.skip("server has no GET /v1/workspaces");
  const page = await admin.workspaces.list({ prefix: ws, limit: 10 });
  assert.deepEqual(page.workspaces.map((w) => w.workspace), [ws]);
});

test("usage (issue 15)", async (t) => {
  if (!(await served("GET", `/v1/workspaces/${ws}/usage?group_by=user`))) return t.skip("server has no usage route");
  const u = wsId();
  await admin.workspaces.put(u, { limit: 100 });
  await admin.charge({ workspace: u, user: "alice", model: "gpt-4o", quantity: 5 });
  await admin.charge({ workspace: u, user: "bob", model: "gpt-4o", quantity: 2 });
  await admin.charge({ workspace: u, user: "alice", model: "gpt-4o", quantity: 1 });
  const r = await admin.usage(u, { group_by: "user" });
  assert.deepEqual(r.rows.map((x) => [x.user, x.used, x.charges]), [["alice", 6, 2], ["bob", 2, 1]]);
  assert.deepEqual(r.total, { used: 8, charges: 3 });
  const csv = await admin.usageCsv(u, { group_by: ["user"] });
  assert.match(csv.split("\n")[0]!, /user/);
});

test("alerts (issue 15)", async (t) => {
  if (!(await served("GET", `/v1/workspaces/${ws}/alerts`))) return t.skip("server has no alerts route");
  await admin.alerts.put(ws, [{ name: "80pct", when: "used_percent", at: 80 }]);
  const a = await admin.alerts.get(ws);
  assert.equal(a.length, 1);
  assert.equal(a[0]!.name, "80pct");
  assert.equal(a[0]!.state, "armed");
});

test("tokens (issue 15)", async (t) => {
  if (!(await served("GET", "/v1/tokens"))) return t.skip("server has no tokens route");
  const other = wsId();
  await admin.workspaces.put(other, { limit: 10 });
  const tok = await admin.tokens.create({ role: "read", workspaces: [ws], name: "browser" });
  assert.match(tok.token!, /^glt_/);
  const scoped = new Client({ url: srv.url, token: tok.token! });
  try {
    assert.equal((await scoped.workspaces.get(ws)).workspace, ws);
    await assert.rejects(scoped.workspaces.get(other), ForbiddenError);
    assert.ok((await admin.tokens.list()).some((x) => x.id === tok.id && x.token === undefined));
    await admin.tokens.revoke(tok.id);
    await assert.rejects(scoped.workspaces.get(ws), (e: unknown) => e instanceof GenledgerError && e.status === 401);
  } finally {
    await scoped.close();
  }
});

test("webhooks (issue 15)", async (t) => {
  if (!(await served("GET", "/v1/webhooks"))) return t.skip("server has no webhooks route");
  const h = await admin.webhooks.create({ url: "http://127.0.0.1:9/hook", events: ["alert"], secret: "s3cret-0123456789abcdef" });   // 16-128 bytes (docs/webhooks.md)
  assert.match(h.webhook, /^wh_/);
  assert.ok((await admin.webhooks.list()).some((x) => x.webhook === h.webhook));
  await admin.webhooks.delete(h.webhook);
  assert.ok(!(await admin.webhooks.list()).some((x) => x.webhook === h.webhook));
});
