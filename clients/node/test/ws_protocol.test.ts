// The WebSocket client's protocol handling against a scripted in-process server (the `ws`
// package's server): the parts a healthy genledger rarely or not yet shows — a frame-level 503
// with no seq, subscribe and pushed events as issue 15 specifies them, renewal of subscriptions
// after a dropped connection. The real-server behaviour is in ws.test.ts.

import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { WebSocketServer, type WebSocket } from "ws";
import { UnavailableError, WsClient, InvalidArgumentError } from "../src/index.js";

type Handler = (sock: WebSocket, msg: any, conn: number) => void;

async function scripted(handler: Handler): Promise<{ url: string; frames: any[]; sockets: WebSocket[]; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/ws" });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  const frames: any[] = [];
  const sockets: WebSocket[] = [];
  wss.on("connection", (sock) => {
    sockets.push(sock);
    const conn = sockets.length;
    sock.on("message", (d) => {
      const msg = JSON.parse(d.toString());
      frames.push(msg);
      handler(sock, msg, conn);
    });
  });
  return {
    url: `http://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    frames,
    sockets,
    close: () => new Promise((r) => {
      for (const s of wss.clients) s.terminate();
      wss.close(() => r());
    }),
  };
}

const ok = (op: any) => ({ status: 200, seq: op.seq, charge: `ch_${op.seq}`, cost: 1, remaining: 10, user_used: 1 });
const p = { workspace: "acme", user: "alice", model: "gpt-4o", quantity: 1 };

test("a frame-level 503 (no seq) is retried as a whole with the same ids", async () => {
  let first = true;
  const srv = await scripted((sock, msg) => {
    if (first) {
      first = false;
      sock.send(JSON.stringify({ status: 503, error: { code: "unavailable", message: "deadline" } }));
      return;
    }
    sock.send(JSON.stringify(msg.map(ok)));
  });
  const c = new WsClient({ url: srv.url, backoff: 1 });
  try {
    const rs = await Promise.all([c.charge(p), c.charge(p), c.charge(p)]);
    assert.equal(rs.length, 3);
    assert.equal(srv.frames.length, 2);
    assert.deepEqual(srv.frames[1].map((o: any) => o.id), srv.frames[0].map((o: any) => o.id));
    assert.equal(new Set(srv.frames[0].map((o: any) => o.id)).size, 3);
  } finally {
    await c.close();
    await srv.close();
  }
});

test("503s past the retries fail the calls with UnavailableError", async () => {
  const srv = await scripted((sock, msg) =>
    sock.send(JSON.stringify(msg.map((o: any) => ({ status: 503, seq: o.seq, error: { code: "unavailable", message: "x" } })))));
  const c = new WsClient({ url: srv.url, backoff: 1, retries: 2 });
  try {
    await assert.rejects(c.charge(p), UnavailableError);
    assert.equal(srv.frames.length, 3);
  } finally {
    await c.close();
    await srv.close();
  }
});

test("replies out of order within a frame still reach their callers (matched by seq)", async () => {
  const srv = await scripted((sock, msg) =>
    sock.send(JSON.stringify(msg.map((o: any) => ({ status: 200, seq: o.seq, cost: o.quantity })).reverse())));
  const c = new WsClient({ url: srv.url });
  try {
    const rs = await Promise.all([1, 2, 3, 4].map((q) => c.charge({ ...p, quantity: q })));
    assert.deepEqual(rs.map((r) => r.cost), [1, 2, 3, 4]);
  } finally {
    await c.close();
    await srv.close();
  }
});

test("subscribe: state first, pushed events between replies, renewed after a dropped connection", async () => {
  let rev = 5;
  const srv = await scripted((sock, msg) => {
    if (!Array.isArray(msg) && msg.op === "subscribe") {
      sock.send(JSON.stringify({ status: 200, seq: msg.seq, subscribed: msg.workspace, state: { workspace: msg.workspace, used: 0, rev } }));
      return;
    }
    if (Array.isArray(msg)) {
      // The event is pushed before the reply that caused it, as a server may do.
      rev++;
      sock.send(JSON.stringify({ event: "balance", workspace: "acme", rev, used: rev - 5, remaining: 100 - (rev - 5) }));
      sock.send(JSON.stringify(msg.map(ok)));
    }
  });
  const c = new WsClient({ url: srv.url, backoff: 1 });
  try {
    const it = c.subscribe("acme");
    const s = await it.next();
    assert.equal(s.value.event, "subscribed");
    assert.equal((s.value.state as any).rev, 5);
    await c.charge(p);
    const b = await it.next();
    assert.deepEqual([b.value.event, b.value.rev, b.value.used], ["balance", 6, 1]);
    // The server drops the connection (a slow subscriber is closed with 1008): the client
    // reconnects by itself and subscribes again.
    srv.sockets[0]!.close(1008, "too slow");
    const again = await it.next();
    assert.equal(again.value.event, "subscribed");
    assert.equal(srv.sockets.length, 2);
    await it.return!();
    // Sent without waiting for its reply: wait until the server has it.
    for (let i = 0; i < 1000 && srv.frames[srv.frames.length - 1].op !== "unsubscribe"; i++)
      await new Promise((r) => setTimeout(r, 5));
    const last = srv.frames[srv.frames.length - 1];
    assert.deepEqual([last.op, last.workspace], ["unsubscribe", "acme"]);
  } finally {
    await c.close();
    await srv.close();
  }
});

test("a refused subscribe throws from the iterator", async () => {
  const srv = await scripted((sock, msg) =>
    sock.send(JSON.stringify({ status: 400, seq: msg.seq, error: { code: "invalid_argument", message: "unknown op 'subscribe'" } })));
  const c = new WsClient({ url: srv.url });
  try {
    const it = c.subscribe("acme");
    await assert.rejects(it.next(), InvalidArgumentError);
  } finally {
    await c.close();
    await srv.close();
  }
});

test("params are copied at the call; a value JSON cannot encode rejects only that call", async () => {
  const srv = await scripted((sock, msg) => sock.send(JSON.stringify(msg.map(ok))));
  const c = new WsClient({ url: srv.url });
  try {
    const q = { ...p };
    const calls: Promise<unknown>[] = [];
    for (let i = 1; i <= 3; i++) {
      q.quantity = i;
      calls.push(c.charge(q));
    }
    const bad = c.charge({ ...p, quantity: 1n as unknown as number });
    await assert.rejects(bad, TypeError);
    await Promise.all(calls);
    assert.equal(srv.frames.length, 1);
    assert.deepEqual(srv.frames[0].map((o: any) => o.quantity), [1, 2, 3]);
    assert.deepEqual(srv.frames[0].map((o: any) => o.seq), [1, 2, 3].map((i) => srv.frames[0][0].seq + i - 1));
  } finally {
    await c.close();
    await srv.close();
  }
});

test("a dropped connection resends the unanswered calls first, same ids, and answers each caller", async () => {
  let conn1Frames = 0;
  const srv = await scripted((sock, msg, conn) => {
    if (conn === 1) {
      if (++conn1Frames === 1) sock.terminate();  // the first frame is never answered
      return;
    }
    sock.send(JSON.stringify(msg.map((o: any) => ({ status: 200, seq: o.seq, cost: o.quantity }))));
  });
  const c = new WsClient({ url: srv.url, backoff: 1 });
  try {
    const rs = await Promise.all([1, 2, 3].map((q) => c.charge({ ...p, quantity: q })));
    assert.deepEqual(rs.map((r) => r.cost), [1, 2, 3]);
    assert.equal(srv.frames.length, 2);
    assert.deepEqual(srv.frames[1].map((o: any) => o.id), srv.frames[0].map((o: any) => o.id));
    assert.deepEqual(srv.frames[1].map((o: any) => o.quantity), [1, 2, 3]);
    assert.equal(c.stats.connects, 2);
  } finally {
    await c.close();
    await srv.close();
  }
});
