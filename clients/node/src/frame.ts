// The text of one WebSocket array frame, `[op,op,...]`, written straight into a Buffer as each
// call is made (`ws` frames and masks it). This is the WebSocket client's hot path: building
// op objects and JSON.stringify-ing the batch cost twice the CPU and ~20x the garbage (a copy of
// every op, the string, its flattening, its UTF-8 copy), and the per-call copy lived until the
// reply, so every scavenge had to move it. Here the frame's bytes are the call's copy of its op
// (for a retry, and for onFailOpen); nothing of the op stays on the JS heap.
//
// The text is what json.ts's encode({ op, ...params, id, seq }) gives, byte for byte, except
// that `op` always comes first (an object literal puts integer-like keys before it), a generated
// `id` comes last, and the caller's own `op` and `seq` members are ignored (the client sets
// them). Strings and numbers are written here (printable ASCII strings byte by byte, others
// through JSON.stringify), anything else through JSON.stringify of the value.

import { isExactSeconds } from "./json.js";
import { writeNewId } from "./ids.js";

const CLOSE = 0x7d, QUOTE = 0x22, COMMA = 0x2c, COLON = 0x3a, MINUS = 0x2d, ZERO = 0x30;
const hasOwn = Object.prototype.hasOwnProperty;

export class FrameText {
  /** The bytes so far; replaced by a bigger copy when full (offsets stay valid). */
  buf: Buffer;
  /** Bytes written. */
  len = 1;
  /** Ops appended. */
  count = 0;
  /** Where the last appended op's `,"seq":` begins: its bytes before that, plus `}`, are the op
   *  without its seq (see copyOp). */
  lastSeqAt = 0;

  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(Math.max(capacity, 256));
    this.buf[0] = 0x5b;  // [
  }

  /**
   * Appends `{"op":kind,<params' own enumerable members>[,"id":<new id>],"seq":seq}`. A new id is
   * written when `newId` and params has no truthy `id`. Returns the op's offset (lastSeqAt is set).
   * Throws what JSON.stringify throws (a BigInt, a cycle) with nothing appended.
   */
  appendOp(kind: string, params: object, newId: boolean, seq: number): number {
    const mark = this.len;
    const start = this.beginOp();
    try {
      this.ascii('{"op":"');
      this.ascii(kind);
      this.byte(QUOTE);
      const p = params as Record<string, unknown>;
      const genId = newId && !p.id;
      for (const k in p) {
        if (!hasOwn.call(p, k) || k === "op" || k === "seq" || (genId && k === "id")) continue;
        const v = p[k];
        switch (typeof v) {
          case "string":
            this.key(k);
            if (k === "seconds" && isExactSeconds(v)) this.ascii(v);  // exact decimal: a JSON number
            else this.string(v);
            break;
          case "number":
            this.key(k);
            this.number(v);
            break;
          case "boolean":
            this.key(k);
            this.ascii(v ? "true" : "false");
            break;
          case "undefined":
          case "function":
          case "symbol":
            break;  // JSON.stringify leaves these members out
          default: {
            const j = JSON.stringify(v);  // null, objects, arrays, Dates (toJSON), BigInt throws
            if (j === undefined) break;
            this.key(k);
            this.utf8(j);
          }
        }
      }
      if (genId) {
        this.ascii(',"id":"');
        this.ensure(64);
        this.len = writeNewId(this.buf, this.len);
        this.byte(QUOTE);
      }
    } catch (e) {
      this.len = mark;  // drop the partial op and its comma
      throw e;
    }
    this.endOp(seq);
    return start;
  }

  /** Appends a copy of an op of `from` (offset `start`, seq at `seqAt`) with a new seq. */
  copyOp(from: FrameText, start: number, seqAt: number, seq: number): number {
    const at = this.beginOp();
    this.ensure(seqAt - start);
    from.buf.copy(this.buf, at, start, seqAt);
    this.len += seqAt - start;
    this.endOp(seq);
    return at;
  }

  /** The op at `start` as an object, without its seq (for onFailOpen: the request as sent). */
  opAt(start: number, seqAt: number): Record<string, unknown> {
    return JSON.parse(this.buf.toString("utf8", start, seqAt) + "}") as Record<string, unknown>;
  }

  /** Appends `]` and returns the frame's bytes. */
  finish(): Buffer {
    this.byte(0x5d);
    return this.buf.subarray(0, this.len);
  }

  private beginOp(): number {
    this.ensure(16);
    if (this.count > 0) this.buf[this.len++] = COMMA;
    return this.len;
  }

  private endOp(seq: number): void {
    this.lastSeqAt = this.len;
    this.ascii(',"seq":');
    this.number(seq);
    this.byte(CLOSE);
    this.count++;
  }

  private ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.len + n));
    this.buf.copy(bigger, 0, 0, this.len);
    this.buf = bigger;
  }

  private byte(b: number): void {
    this.ensure(1);
    this.buf[this.len++] = b;
  }

  /** Writes `s` as is; the caller knows it is ASCII. */
  private ascii(s: string): void {
    this.ensure(s.length);
    const buf = this.buf;
    let len = this.len;
    for (let i = 0; i < s.length; i++) buf[len++] = s.charCodeAt(i);
    this.len = len;
  }

  /** Writes `s` as UTF-8. */
  private utf8(s: string): void {
    this.ensure(s.length * 3);
    this.len += this.buf.write(s, this.len, "utf8");
  }

  /** Writes `s` as a JSON string: byte by byte when it is printable ASCII without `"` or `\`. */
  private string(s: string): void {
    this.ensure(s.length + 2);
    const buf = this.buf;
    let len = this.len;
    buf[len++] = QUOTE;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x20 || c > 0x7e || c === QUOTE || c === 0x5c) {
        this.utf8(JSON.stringify(s));  // escapes, non-ASCII, lone surrogates: as JSON.stringify
        return;
      }
      buf[len++] = c;
    }
    buf[len++] = QUOTE;
    this.len = len;
  }

  private key(k: string): void {
    this.byte(COMMA);
    this.string(k);
    this.byte(COLON);
  }

  /** Writes `v` as JSON.stringify does: integers digit by digit, others through String(). */
  private number(v: number): void {
    if (!Number.isSafeInteger(v)) {
      this.ascii(Number.isFinite(v) ? String(v) : "null");  // String() is JSON's number text
      return;
    }
    this.ensure(17);
    const buf = this.buf;
    if (v < 0) {
      buf[this.len++] = MINUS;
      v = -v;
    }
    let digits = 1;
    for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
    let at = this.len + digits;
    this.len = at;
    if (v <= 0x7fffffff) {
      // Int32 arithmetic: most numbers (seq, quantities) are small.
      let x = v | 0;
      do {
        const q = (x / 10) | 0;
        buf[--at] = ZERO + x - q * 10;
        x = q;
      } while (x > 0);
      return;
    }
    do {
      buf[--at] = ZERO + (v % 10);
      v = Math.floor(v / 10);
    } while (v > 0);
  }
}
