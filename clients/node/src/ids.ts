// Idempotency ids. One crypto.randomUUID() per process (122 random bits) followed by a counter:
// as unique as a UUID per call, at a fraction of its cost — randomUUID's formatting was 7% of the
// client's CPU per charge in the WebSocket benchmark (bench/bench.mjs). 1-128 bytes of
// [A-Za-z0-9._:@-], as the API asks.

import { randomUUID } from "node:crypto";

const prefix = randomUUID() + ".";
const prefixBytes = Buffer.from(prefix, "latin1");
const DIGITS = Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz", "latin1");
let counter = 0;

/** A new idempotency id: `<uuid>.<counter in base 36>`. */
export function newId(): string {
  return prefix + (++counter).toString(36);
}

/**
 * The next id, as newId() would return it, written as ASCII into `buf` at `at` (at most 48
 * bytes; the caller makes room). Returns the offset after it. For the WebSocket frames, which
 * are built as bytes (frame.ts).
 */
export function writeNewId(buf: Buffer, at: number): number {
  for (let i = 0; i < prefixBytes.length; i++) buf[at++] = prefixBytes[i]!;
  let n = ++counter;
  let digits = 1;
  for (let x = n; x >= 36; x = Math.floor(x / 36)) digits++;
  const end = at + digits;
  let p = end;
  do {
    buf[--p] = DIGITS[n % 36]!;
    n = Math.floor(n / 36);
  } while (n > 0);
  return end;
}
