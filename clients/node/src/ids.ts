// Idempotency ids. One crypto.randomUUID() per process (122 random bits) followed by a counter:
// as unique as a UUID per call, at a fraction of its cost — randomUUID's formatting was 7% of the
// client's CPU per charge in the WebSocket benchmark (bench/bench.mjs). 1-128 bytes of
// [A-Za-z0-9._:@-], as the API asks.

import { randomUUID } from "node:crypto";

const prefix = randomUUID();
let counter = 0;

/** A new idempotency id: `<uuid>.<counter in base 36>`. */
export function newId(): string {
  return prefix + "." + (++counter).toString(36);
}
