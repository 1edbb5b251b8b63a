// Fail-open / fail-closed against a port with nothing listening, over HTTP and WebSocket.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Client, UnavailableError, WsClient, type FailOpenInfo } from "../src/index.js";
import { deadPort } from "./server.js";

const params = { workspace: "acme", user: "alice", model: "gpt-4o", quantity: 1 };

test("closed (the default): an unreachable server throws UnavailableError with status 0", async () => {
  const c = new Client({ url: `http://127.0.0.1:${await deadPort()}`, retries: 1, backoff: 1 });
  try {
    await assert.rejects(c.charge(params), (e: unknown) => {
      assert.ok(e instanceof UnavailableError);
      assert.equal(e.status, 0);
      assert.equal(e.code, "unavailable");
      assert.equal((e.cause as NodeJS.ErrnoException).code, "ECONNREFUSED");
      return true;
    });
    await assert.rejects(c.withHold(params, async () => assert.fail("callback ran")), UnavailableError);
    assert.equal(c.failOpenCount, 0);
  } finally {
    await c.close();
  }
});

test("open: gate calls go through, counted and reported; admin calls still throw", async () => {
  const seen: FailOpenInfo[] = [];
  const c = new Client({
    url: `http://127.0.0.1:${await deadPort()}`, retries: 1, backoff: 1,
    onUnavailable: "open", onFailOpen: (i) => seen.push(i),
  });
  try {
    const r = await c.charge({ ...params, id: "mine" });
    assert.equal(r.fail_open, true);
    assert.equal(r.charge, null);
    assert.equal(seen.length, 1);
    assert.equal(seen[0]!.op, "charge");
    assert.equal(seen[0]!.params.id, "mine");
    assert.ok(seen[0]!.error instanceof UnavailableError);

    assert.equal((await c.quote(params)).affordable, true);

    let ran = false;
    const out = await c.withHold(params, async (hold) => {
      ran = true;
      assert.equal(hold.failOpen, true);
      assert.equal(hold.reservation, null);
      const cr = await hold.commit({ quantity: 1 });
      assert.equal(cr.fail_open, true);
      return 7;
    });
    assert.equal(ran, true);
    assert.equal(out, 7);
    assert.equal(c.failOpenCount, 3);  // charge, quote, reserve (commit of a failed-open hold sends nothing)
    await assert.rejects(c.workspaces.get("acme"), UnavailableError);
    assert.equal(c.failOpenCount, 3);
  } finally {
    await c.close();
  }
});

test("a server that accepts but never answers times out like an unreachable one", async () => {
  const net = await import("node:net");
  const sockets: import("node:net").Socket[] = [];
  const silent = net.createServer((s) => sockets.push(s));
  await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
  const port = (silent.address() as import("node:net").AddressInfo).port;
  const c = new Client({ url: `http://127.0.0.1:${port}`, retries: 1, backoff: 1, timeout: 200, onUnavailable: "open" });
  try {
    const r = await c.charge(params);
    assert.equal(r.fail_open, true);
    assert.equal(sockets.length >= 2, true, "the call was tried twice (first attempt and one retry)");
  } finally {
    await c.close();
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

test("WebSocket, closed and open", async () => {
  const url = `http://127.0.0.1:${await deadPort()}`;
  const closed = new WsClient({ url, retries: 1, backoff: 1 });
  try {
    const results = await Promise.allSettled([closed.charge(params), closed.charge(params)]);
    for (const r of results) {
      assert.equal(r.status, "rejected");
      assert.ok((r as PromiseRejectedResult).reason instanceof UnavailableError);
    }
  } finally {
    await closed.close();
  }
  const reported: FailOpenInfo[] = [];
  const open = new WsClient({ url, retries: 1, backoff: 1, onUnavailable: "open", onFailOpen: (i) => reported.push(i) });
  try {
    const rs = await Promise.all([open.charge(params), open.reserve(params), open.refund({ charge: "ch_1" })]);
    assert.deepEqual(rs.map((r) => r.fail_open), [true, true, true]);
    assert.equal(reported.length, 3);
    assert.equal(open.failOpenCount, 3);
    // The op as it would have been sent, with its generated id.
    const charge = reported.find((i) => i.op === "charge")!;
    assert.equal(charge.params.op, "charge");
    assert.equal(charge.params.workspace, "acme");
    assert.match(String(charge.params.id), /^[0-9a-f-]{36}\.[0-9a-z]+$/);
    assert.deepEqual(reported.find((i) => i.op === "refund")!.params, { op: "refund", charge: "ch_1" });
  } finally {
    await open.close();
  }
});
