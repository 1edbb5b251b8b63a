// The WebSocket frame text written as bytes (src/frame.ts) against what the client sent before
// it: encode({ op, ...params, id, seq }) (JSON.stringify plus exact `seconds`), byte for byte; and
// the masked frame around it, decoded as a server would.

import assert from "node:assert/strict";
import { test } from "node:test";
import { FrameText } from "../src/frame.js";
import { newId } from "../src/ids.js";
import { encode } from "../src/json.js";

const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.[0-9a-z]+$/;

function one(kind: string, params: object, newIdNeeded = false, seq = 7): { text: string; t: FrameText; start: number } {
  const t = new FrameText(16);
  const start = t.appendOp(kind, params, newIdNeeded, seq);
  return { text: t.finish().toString("utf8"), t, start };
}

const cases: Array<Record<string, unknown>> = [
  { workspace: "acme", user: "alice", model: "gpt-4o", quantity: 1 },
  { workspace: "wé 工作 😀", user: 'q"uote\\back/slash', model: "m\u0000\u001f\u007f\n\t", quantity: 3 },
  { workspace: "lone \ud800 high", user: "lone \udc00 low", model: "pair \ud83d\ude00" },
  { workspace: "w", user: "u", model: "m", quantity: -12, outputs: 0, formats: 9007199254740991 },
  { workspace: "w", user: "u", model: "m", seconds: 0.1, quantity: 1e21, outputs: 1e-7, formats: -0 },
  { workspace: "w", user: "u", model: "m", seconds: NaN, quantity: Infinity, outputs: -Infinity },
  { workspace: "w", user: "u", model: "m", seconds: "3.03" },
  { workspace: "w", user: "u", model: "m", seconds: "12345.678" },
  { workspace: "w", user: "u", model: "m", seconds: "123456" },
  { workspace: "w", user: "u", model: "m", seconds: "3.0303" },
  { workspace: "w", user: "u", model: "m", seconds: "abc" },
  { workspace: "w", extra: { a: [1, "x", null, true], b: "é" }, list: [], nothing: null, yes: true, no: false },
  { workspace: "w", skipped: undefined, fn: () => 1, sym: Symbol("s"), when: new Date(0) },
  { workspace: "w", "ключ": "non-ASCII key", 'k"q': 1 },
  { reservation: "rs_1", quantity: 2, ttl_ms: 60000 },
  {},
];

test("an op's text is encode({op, ...params, seq}) byte for byte", () => {
  for (const p of cases) {
    const { text } = one("charge", p);
    assert.equal(text, "[" + encode({ op: "charge", ...p, seq: 7 }) + "]", JSON.stringify(Object.keys(p)));
  }
});

test("integer-like keys: the same members, \"op\" first (an object literal would put them before it)", () => {
  const p = { workspace: "w", "0": "zero", "12": 12 };
  const { text } = one("charge", p);
  assert.equal(text, '[{"op":"charge","0":"zero","12":12,"workspace":"w","seq":7}]');
  assert.deepEqual(JSON.parse(text)[0], JSON.parse(encode({ op: "charge", ...p, seq: 7 })));
});

test("a generated id comes last, before seq; a given id is kept; op and seq of params are ignored", () => {
  for (const p of cases) {
    const { text } = one("reserve", p, true, 42);
    const op = JSON.parse(text)[0];
    assert.match(op.id, ID);
    assert.equal(text, "[" + encode({ op: "reserve", ...p, id: op.id, seq: 42 }) + "]");
  }
  const given = JSON.parse(one("charge", { workspace: "w", id: "mine" }, true).text)[0];
  assert.deepEqual(given, { op: "charge", workspace: "w", id: "mine", seq: 7 });
  const falsy = JSON.parse(one("charge", { id: "", workspace: "w" }, true).text)[0];
  assert.match(falsy.id, ID);
  const notNeeded = JSON.parse(one("commit", { id: "", reservation: "rs_1" }, false).text)[0];
  assert.equal(notNeeded.id, "");
  const clash = JSON.parse(one("charge", { op: "refund", seq: 99, workspace: "w" }).text)[0];
  assert.deepEqual(clash, { op: "charge", workspace: "w", seq: 7 });
});

test("generated ids continue newId()'s sequence and are distinct", () => {
  const before = newId();
  const t = new FrameText(16);
  for (let i = 0; i < 2000; i++) t.appendOp("charge", { workspace: "w" }, true, i + 1);
  const ids = (JSON.parse(t.finish().toString()) as Array<{ id: string }>).map((o) => o.id);
  const after = newId();
  const [prefix, n] = before.split(".");
  assert.equal(new Set(ids).size, 2000);
  ids.forEach((id, i) => assert.equal(id, `${prefix}.${(parseInt(n!, 36) + 1 + i).toString(36)}`));
  assert.equal(after, `${prefix}.${(parseInt(n!, 36) + 2001).toString(36)}`);
});

test("only own members are sent", () => {
  const p = Object.create({ inherited: 1 }) as Record<string, unknown>;
  p.workspace = "w";
  assert.equal(one("charge", p).text, '[{"op":"charge","workspace":"w","seq":7}]');
});

test("a value JSON cannot encode throws and leaves the frame as it was", () => {
  const t = new FrameText(16);
  t.appendOp("charge", { workspace: "a" }, false, 1);
  assert.throws(() => t.appendOp("charge", { workspace: "b", quantity: 1n }, false, 2), TypeError);
  const cyclic: Record<string, unknown> = { workspace: "c" };
  cyclic.self = { cyclic };
  assert.throws(() => t.appendOp("charge", cyclic, false, 2), TypeError);
  t.appendOp("charge", { workspace: "d" }, false, 2);
  assert.deepEqual(JSON.parse(t.finish().toString()).map((o: { workspace: string }) => o.workspace), ["a", "d"]);
});

test("many ops grow the buffer; copyOp resends an op with a new seq; opAt reads it back", () => {
  const t = new FrameText(16);
  const at: Array<[number, number]> = [];
  for (let i = 0; i < 500; i++) {
    const start = t.appendOp("charge", { workspace: `w${i}`, user: "é", quantity: i }, true, 1000 + i);
    at.push([start, t.lastSeqAt]);
  }
  const again = new FrameText(16);
  for (const [i, [start, seqAt]] of at.entries()) again.copyOp(t, start, seqAt, 5000 + i);
  const first = JSON.parse(t.finish().toString()) as Array<Record<string, unknown>>;
  const second = JSON.parse(again.finish().toString()) as Array<Record<string, unknown>>;
  assert.equal(first.length, 500);
  first.forEach((o, i) => {
    const { seq: _sent, ...withoutSeq } = o;
    assert.deepEqual(t.opAt(...at[i]!), withoutSeq);
    assert.deepEqual(second[i], { ...o, seq: 5000 + i });
    assert.equal(o.workspace, `w${i}`);
    assert.equal(o.seq, 1000 + i);
  });
});
