// JSON encoding of requests. One addition to JSON.stringify: `seconds` given as a decimal string
// ("3.03") is sent as a JSON number with exactly those digits, so a caller who holds exact
// decimals never goes through a double (the server reads `seconds` from its text). This is safe
// on the encoded text because a `"` can only appear unescaped where JSON puts it: a key or a
// string's delimiters, never inside an id.

const SECONDS_STRING = /([{,])"seconds":"(\d{1,5}(?:\.\d{1,3})?)"/g;

export function encode(value: unknown): string {
  const s = JSON.stringify(value);
  return s.includes('"seconds":"') ? s.replace(SECONDS_STRING, '$1"seconds":$2') : s;
}

const EXACT_SECONDS = /^\d{1,5}(?:\.\d{1,3})?$/;

/** True for a `seconds` string that encode() sends as a number (the WebSocket frames, frame.ts). */
export function isExactSeconds(s: string): boolean {
  return EXACT_SECONDS.test(s);
}
