// Idempotency ids. One crypto.randomUUID() per process (122 random bits) followed by a counter:
// as unique as a UUID per call, at a fraction of its cost — randomUUID's formatting was 7% of the
// client's CPU per charge in the WebSocket benchmark (bench/bench.mjs). 1-128 bytes of
// [A-Za-z0-9._:@-], as the API asks.

import { randomUUID } from "node:crypto";

const prefix = randomUUID() + ".";
const prefixBytes = new Uint8Array(Buffer.from(prefix, "latin1"));
const DIGITS = new Uint8Array(Buffer.from("0123456789abcdefghijklmnopqrstuvwxyz", "latin1"));
let counter = 0;
// writeNewId's copy of the counter, as digits
const DIGIT_ROOM = 11;  // 36^11 > 2^53
const ZERO = 0x30, ONE = 0x31, NINE = 0x39, A = 0x61, Z = 0x7a;
const digits = new Uint8Array(DIGIT_ROOM);  // base-36 digits of digitsOf, right-aligned
let ndigits = 0;
let digitsOf = -1;

/** A new idempotency id: `<uuid>.<counter in base 36>`. */
export function newId(): string {
  return prefix + (++counter).toString(36);
}

/**
 * The next id, as newId() would return it, written as ASCII into `buf` at `at` (at most 48
 * bytes; the caller makes room). Returns the offset after it. For the WebSocket frames, which
 * are built as bytes (frame.ts); the counter's base-36 digits are kept and incremented in place.
 */
export function writeNewId(buf: Buffer, at: number): number {
  buf.set(prefixBytes, at);  // faster than a loop for 37 bytes
  at += prefixBytes.length;
  const n = ++counter;
  if (n === digitsOf + 1) {
    // Increment the kept digits: the last rolls over from z to 0 and carries.
    let i = DIGIT_ROOM - 1;
    while (i >= DIGIT_ROOM - ndigits && digits[i] === Z) digits[i--] = ZERO;
    if (i < DIGIT_ROOM - ndigits) {
      ndigits++;
      digits[i] = ONE;
    } else {
      const d = digits[i]!;
      digits[i] = d === NINE ? A : d + 1;
    }
  } else {
    // newId() took numbers in between: write this one out.
    ndigits = 0;
    for (let x = n; x > 0; x = Math.floor(x / 36)) digits[DIGIT_ROOM - ++ndigits] = DIGITS[x % 36]!;
  }
  digitsOf = n;
  for (let i = DIGIT_ROOM - ndigits; i < DIGIT_ROOM; i++) buf[at++] = digits[i]!;
  return at;
}
