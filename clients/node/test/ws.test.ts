// The auto-batching WebSocket client against a real genledger.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Client, InsufficientGenerationsError, UnknownReservationError, WsClient, UnauthorizedError } from "../src/index.js";
import { startServer, wsId, type TestServer } from "./server.js";

let srv: TestServer;
let admin: Client;

before(async () => {
  srv = await startServer();
  admin = new Client({ url: srv.url, token: srv.adminToken });
});
after(async () => {
  await admin?.close();
  await srv?.stop();
});

test("1,000 concurrent charges leave as one frame over one connection, with correct totals", async () => {
  const ws = wsId();
  await admin.workspaces.put(ws, { limit: 1_000_000 });
  const client = new WsClient({ url: srv.url, token: srv.gateToken });
  try {
    const calls = [];
    for (let i = 0; i < 1000; i++)
      calls.push(client.charge({ workspace: ws, user: `u${i % 7}`, model: "gpt-4o", quantity: 1 + (i % 3) }));
    const results = await Promise.all(calls);
    const expected = Array.from({ length: 1000 }, (_, i) => 1 + (i % 3)).reduce((a, b) => a + b, 0);
    // Each reply reached its own caller: costs match what each asked for...
    results.forEach((r, i) => assert.equal(r.cost, 1 + (i % 3)));
    // ...every charge is distinct, and the remaining values are those of 1,000 distinct steps.
    assert.equal(new Set(results.map((r) => r.charge)).size, 1000);
    assert.equal(new Set(results.map((r) => r.remaining)).size, 1000);
    assert.equal(Math.min(...results.map((r) => r.remaining!)), 1_000_000 - expected);
    assert.deepEqual(client.stats, { frames: 1, ops: 1000, connects: 1 });
    const w = await admin.workspaces.get(ws);
    assert.equal(w.used, expected);
    const users = await admin.users.list(ws);
    assert.equal(users.users.reduce((a, u) => a + u.used, 0), expected);
  } finally {
    await client.close();
  }
});

test("more calls than maxBatch are split into frames; per-op refusals reject only their op", async () => {
  const ws = wsId();
  await admin.workspaces.put(ws, { limit: 1500 });
  const client = admin.ws();
  const settled = await Promise.allSettled(
    Array.from({ length: 2500 }, () => client.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 1 })));
  const ok = settled.filter((s) => s.status === "fulfilled");
  const refused = settled.filter((s) => s.status === "rejected") as PromiseRejectedResult[];
  assert.equal(ok.length, 1500);
  assert.equal(refused.length, 1000);
  for (const r of refused) {
    assert.ok(r.reason instanceof InsufficientGenerationsError);
    assert.equal(r.reason.cost, 1);
    assert.equal(r.reason.remaining, 0);
  }
  assert.equal(client.stats.frames, 3);
  assert.equal((await admin.workspaces.get(ws)).used, 1500);
});

test("withHold, quote, commit, release and refund over the WebSocket", async () => {
  const ws = wsId();
  await admin.workspaces.put(ws, { limit: 100 });
  const client = admin.ws();
  assert.equal((await client.quote({ workspace: ws, user: "a", model: "google-veo3", seconds: 3 })).cost, 6);
  await client.withHold({ workspace: ws, user: "a", model: "google-veo3", seconds: 8 }, async (hold) => {
    assert.equal(hold.held, 16);
    await hold.commit({ seconds: 3 });
  });
  await assert.rejects(client.withHold({ workspace: ws, user: "a", model: "gpt-4o", quantity: 5 }, async () => {
    throw new Error("failed generation");
  }), /failed generation/);
  const c = await client.charge({ workspace: ws, user: "a", model: "gpt-4o", quantity: 4 });
  assert.equal((await client.refund({ charge: c.charge! })).refunded, 4);
  await assert.rejects(client.release({ reservation: "rs_424242424" }), UnknownReservationError);
  const w = await admin.workspaces.get(ws);
  assert.deepEqual([w.used, w.reserved, w.remaining], [6, 0, 94]);
});

test("a refused upgrade fails the calls with the server's answer", async () => {
  const client = new WsClient({ url: srv.url, token: "wrong", retries: 0 });
  try {
    await assert.rejects(client.charge({ workspace: "x", user: "a", model: "gpt-4o", quantity: 1 }), UnauthorizedError);
  } finally {
    await client.close();
  }
});

test("calls survive a server restart: the client reconnects, same ids, nothing twice", async () => {
  const ws = wsId();
  await admin.workspaces.put(ws, { limit: 1000 });
  const client = new WsClient({ url: srv.url, token: srv.gateToken, retries: 20, backoff: 20 });
  try {
    const first = await Promise.all(Array.from({ length: 10 }, () => client.charge({ workspace: ws, user: "a", model: "gpt-4o", quantity: 1 })));
    assert.equal(first.length, 10);
    await srv.restart();
    const second = await Promise.all(Array.from({ length: 10 }, () => client.charge({ workspace: ws, user: "a", model: "gpt-4o", quantity: 1 })));
    assert.equal(second.length, 10);
    assert.ok(client.stats.connects >= 2);
    assert.equal((await admin.workspaces.get(ws)).used, 20);
  } finally {
    await client.close();
  }
});
