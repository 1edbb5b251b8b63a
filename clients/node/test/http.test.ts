// The HTTP client against a real genledger: gate ops, error classes, idempotent retries through a
// proxy that loses answers, withHold.

import assert from "node:assert/strict";
import * as http from "node:http";
import { after, before, describe, test } from "node:test";
import {
  Client, GenledgerError, InsufficientGenerationsError, PaymentRequiredError, UnauthorizedError,
  UnavailableError, UnknownChargeError, UnknownWorkspaceError, AlreadyRefundedError,
  IdempotencyConflictError, CommitExceedsHoldError, UserLimitExceededError, ERROR_CLASSES,
} from "../src/index.js";
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

async function workspace(limit: number | null): Promise<string> {
  const ws = wsId();
  await admin.workspaces.put(ws, { limit });
  return ws;
}

describe("gate operations", () => {
  test("charge, quote and refund", async () => {
    const ws = await workspace(100);
    const gate = new Client({ url: srv.url, token: srv.gateToken });
    try {
      const q = await gate.quote({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 3 });
      assert.equal(q.cost, 3);
      assert.equal(q.affordable, true);
      assert.equal(q.max_quantity, 100);

      // 5 s of Runway Gen4 Alpha Turbo at 0.33/s: ceil(1.65) = 2 per output, 2 outputs.
      const c = await gate.charge({ workspace: ws, user: "alice", model: "runway-gen4-alpha-turbo", seconds: 5, outputs: 2 });
      assert.match(c.charge!, /^ch_\d+$/);
      assert.equal(c.cost, 4);
      assert.equal(c.remaining, 96);
      assert.equal(c.user_used, 4);
      assert.equal(c.replayed, undefined);

      // Seconds as a string go verbatim: 3.03 s at 0.33/s is ceil(0.9999) = 1.
      const c2 = await gate.charge({ workspace: ws, user: "bob", model: "runway-gen4-alpha-turbo", seconds: "3.03" });
      assert.equal(c2.cost, 1);

      const r = await gate.refund({ charge: c.charge! });
      assert.deepEqual({ refunded: r.refunded, remaining: r.remaining }, { refunded: 4, remaining: 99 });
      await assert.rejects(gate.refund({ charge: c.charge! }), (e: unknown) => {
        assert.ok(e instanceof AlreadyRefundedError);
        assert.equal(e.status, 409);
        assert.equal(e.code, "already_refunded");
        return true;
      });
      await assert.rejects(gate.refund({ charge: "ch_999999999" }), UnknownChargeError);

      const w = await gate.workspaces.get(ws);
      assert.equal(w.used, 1);
      assert.equal(w.remaining, 99);
      const users = await gate.users.list(ws);
      assert.deepEqual(users.users.map((u) => [u.user, u.used]), [["bob", 1], ["alice", 0]]);
      const all = [];
      for await (const u of gate.users.all(ws, 1)) all.push(u.user);  // one user per page
      assert.deepEqual(all, ["bob", "alice"]);
      assert.equal((await gate.health()).status, "ok");
    } finally {
      await gate.close();
    }
  });

  test("402 carries cost and remaining; nothing is debited", async () => {
    const ws = await workspace(10);
    await admin.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 7 });
    const err = await admin.charge({ workspace: ws, user: "alice", model: "google-veo3", seconds: 3 }).then(
      () => assert.fail("charge beyond the limit succeeded"), (e: unknown) => e);
    assert.ok(err instanceof InsufficientGenerationsError);
    assert.ok(err instanceof PaymentRequiredError);
    assert.ok(err instanceof GenledgerError);
    assert.equal(err.status, 402);
    assert.equal(err.code, "insufficient_generations");
    assert.equal(err.cost, 6);
    assert.equal(err.remaining, 3);
    assert.equal((await admin.workspaces.get(ws)).used, 7);

    await admin.users.put(ws, "capped", 2);
    await assert.rejects(admin.charge({ workspace: ws, user: "capped", model: "gpt-4o", quantity: 3 }), (e: unknown) => {
      assert.ok(e instanceof UserLimitExceededError);
      assert.equal(e.cost, 3);
      return true;
    });
  });

  test("other error codes map to their classes", async () => {
    await assert.rejects(admin.workspaces.get(wsId("missing")), (e: unknown) => {
      assert.ok(e instanceof UnknownWorkspaceError);
      assert.equal(e.status, 404);
      return true;
    });
    const bad = new Client({ url: srv.url, token: "not-a-token", retries: 0 });
    try {
      await assert.rejects(bad.workspaces.get("x"), (e: unknown) => e instanceof UnauthorizedError && e.status === 401);
    } finally {
      await bad.close();
    }
    const ws = await workspace(100);
    const r = await admin.reserve({ workspace: ws, user: "u", model: "gpt-4o", quantity: 2 });
    await assert.rejects(admin.commit({ reservation: r.reservation!, quantity: 3 }), CommitExceedsHoldError);
    // Every class is named after its code.
    for (const [code, cls] of Object.entries(ERROR_CLASSES)) {
      const e = new cls(code, 400, "m");
      assert.ok(e instanceof GenledgerError);
      assert.equal(e.name, cls.name);
    }
  });

  test("an explicit id is idempotent; a different body under it conflicts", async () => {
    const ws = await workspace(100);
    const p = { workspace: ws, user: "alice", model: "gpt-4o", quantity: 5, id: "req-1" };
    const a = await admin.charge(p);
    const b = await admin.charge(p);
    assert.equal(b.replayed, true);
    assert.equal(b.charge, a.charge);
    assert.equal((await admin.workspaces.get(ws)).used, 5);
    await assert.rejects(admin.charge({ ...p, quantity: 6 }), IdempotencyConflictError);
  });
});

// A proxy in front of the server that misbehaves on chosen requests.
interface Proxy {
  url: string;
  seen: Array<{ path: string; body: string }>;
  close(): Promise<void>;
}

function proxy(target: string, misbehave: (n: number, path: string) => "drop-answer" | "503" | "pass"): Promise<Proxy> {
  const seen: Proxy["seen"] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ path: req.url!, body });
      const what = misbehave(seen.length, req.url!);
      if (what === "503") {
        res.writeHead(503, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ error: { code: "unavailable", message: "test proxy" } }));
        return;
      }
      const init: RequestInit = { method: req.method!, headers: { Authorization: req.headers.authorization ?? "" } };
      if (body) init.body = body;
      const up = await fetch(target + req.url, init);
      const text = await up.text();
      if (what === "drop-answer") {
        req.socket.destroy();  // the change happened; its answer is lost
        return;
      }
      res.writeHead(up.status, { "Content-Type": "application/json" });
      res.end(text);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const port = (server.address() as { port: number }).port;
      resolve({
        url: `http://127.0.0.1:${port}`,
        seen,
        close: () => new Promise((r) => {
          server.closeAllConnections();
          server.close(() => r());
        }),
      });
    });
  });
}

describe("retries", () => {
  test("a lost answer is retried with the same generated id: one debit, replayed", async () => {
    const ws = await workspace(100);
    const px = await proxy(srv.url, (n) => (n === 1 ? "drop-answer" : "pass"));
    const c = new Client({ url: px.url, token: srv.adminToken, retries: 2, backoff: 1 });
    try {
      const r = await c.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 4 });
      assert.equal(r.replayed, true);
      assert.equal(r.cost, 4);
      assert.equal(px.seen.length, 2);
      const ids = px.seen.map((s) => JSON.parse(s.body).id);
      assert.match(ids[0], /^[0-9a-f-]{36}\.[0-9a-z]+$/);
      assert.equal(ids[1], ids[0]);
      assert.equal((await admin.workspaces.get(ws)).used, 4);
      // The next call gets a new id.
      await c.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 1 });
      assert.notEqual(JSON.parse(px.seen[2]!.body).id, ids[0]);
      assert.equal((await admin.workspaces.get(ws)).used, 5);
    } finally {
      await c.close();
      await px.close();
    }
  });

  test("503 is retried, a bounded number of times", async () => {
    const ws = await workspace(100);
    const px = await proxy(srv.url, (n) => (n <= 2 ? "503" : "pass"));
    const c = new Client({ url: px.url, token: srv.adminToken, retries: 2, backoff: 1 });
    try {
      const r = await c.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 1 });
      assert.equal(r.cost, 1);
      assert.equal(px.seen.length, 3);
    } finally {
      await c.close();
      await px.close();
    }
    const px2 = await proxy(srv.url, () => "503");
    const c2 = new Client({ url: px2.url, token: srv.adminToken, retries: 3, backoff: 1 });
    try {
      await assert.rejects(c2.charge({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 1 }), (e: unknown) => {
        assert.ok(e instanceof UnavailableError);
        assert.equal(e.status, 503);
        return true;
      });
      assert.equal(px2.seen.length, 4);
      // A top-up carries no id: it is not sent twice.
      await assert.rejects(c2.workspaces.topup(ws, 5), UnavailableError);
      assert.equal(px2.seen.length, 5);
    } finally {
      await c2.close();
      await px2.close();
    }
  });
});

describe("withHold", () => {
  test("releases the hold when the callback throws, and rethrows", async () => {
    const ws = await workspace(100);
    const boom = new Error("generation failed");
    let seen: string | null = null;
    await assert.rejects(
      admin.withHold({ workspace: ws, user: "alice", model: "google-veo3", seconds: 8 }, async (hold) => {
        seen = hold.reservation;
        assert.equal(hold.held, 16);
        assert.equal((await admin.workspaces.get(ws)).reserved, 16);
        throw boom;
      }),
      (e) => e === boom);
    assert.match(seen!, /^rs_\d+$/);
    const w = await admin.workspaces.get(ws);
    assert.deepEqual([w.used, w.reserved, w.remaining], [0, 0, 100]);
    // Released, not merely expired: a second release is refused as settled.
    await assert.rejects(admin.release({ reservation: seen! }), (e: unknown) => (e as GenledgerError).code === "reservation_settled");
  });

  test("commits the whole hold when the callback returns without settling", async () => {
    const ws = await workspace(100);
    const out = await admin.withHold({ workspace: ws, user: "alice", model: "google-veo3", seconds: 8 }, async () => "video");
    assert.equal(out, "video");
    const w = await admin.workspaces.get(ws);
    assert.deepEqual([w.used, w.reserved, w.remaining], [16, 0, 84]);
  });

  test("an explicit commit charges the actual usage and frees the rest", async () => {
    const ws = await workspace(100);
    let charge: string | null = null;
    await admin.withHold({ workspace: ws, user: "alice", model: "google-veo3", seconds: 8 }, async (hold) => {
      const r = await hold.commit({ seconds: 5 });
      assert.equal(r.cost, 10);
      charge = r.charge;
      assert.ok(hold.settled);
    });
    const w = await admin.workspaces.get(ws);
    assert.deepEqual([w.used, w.reserved, w.remaining], [10, 0, 90]);
    // The commit's charge is refundable like any charge.
    assert.equal((await admin.refund({ charge: charge! })).refunded, 10);
  });

  test("a commit larger than the hold throws inside; the hold is then released", async () => {
    const ws = await workspace(100);
    await assert.rejects(
      admin.withHold({ workspace: ws, user: "alice", model: "gpt-4o", quantity: 2 }, async (hold) => {
        await hold.commit({ quantity: 5 });
      }),
      CommitExceedsHoldError);
    const w = await admin.workspaces.get(ws);
    assert.deepEqual([w.used, w.reserved], [0, 0]);
  });

  test("a hold that does not fit is refused before the callback runs", async () => {
    const ws = await workspace(5);
    let ran = false;
    await assert.rejects(
      admin.withHold({ workspace: ws, user: "alice", model: "google-veo3", seconds: 8 }, async () => {
        ran = true;
      }),
      InsufficientGenerationsError);
    assert.equal(ran, false);
  });
});
