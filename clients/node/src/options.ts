// Client options and the fail-open/fail-closed decision, shared by the HTTP and WebSocket clients.

import { GenledgerError } from "./errors.js";
import type { OpName } from "./types.js";

export interface FailOpenInfo {
  /** The gate op let through: charge, quote, reserve, commit, release or refund. */
  op: OpName;
  /** The request as it would have been sent (with its generated id). From the WebSocket client:
   *  the op read back from the frame's JSON (with `op`; an exact `seconds` string is a number). */
  params: Record<string, unknown>;
  /** Why genledger gave no answer. */
  error: GenledgerError;
}

export interface ClientOptions {
  /** Base URL of the server, default `http://127.0.0.1:8080`. */
  url?: string;
  /** Bearer token (admin, gate or read); none for an open loopback server. */
  token?: string;
  /** Milliseconds an attempt may take before it counts as unanswered (default 10000). */
  timeout?: number;
  /** Attempts after the first on connection errors, timeouts and 503 (default 2). */
  retries?: number;
  /** First backoff in ms between attempts, doubling with jitter (default 50). */
  backoff?: number;
  /**
   * What a gate op (charge, quote, reserve, commit, release, refund) does once genledger could
   * not be reached, did not answer in time, or answered 503 after every retry:
   * `"closed"` (default) throws UnavailableError (or OverloadedError); `"open"` lets the call
   * through: it resolves to a result with `fail_open: true` and null ids and amounts, counts it
   * in `failOpenCount` and calls `onFailOpen`. Admin and read calls always throw.
   */
  onUnavailable?: "closed" | "open";
  /** Called for every call let through by `onUnavailable: "open"`. */
  onFailOpen?: (info: FailOpenInfo) => void;
  /** HTTP sockets kept alive per client (default 64). */
  maxSockets?: number;
  /** Most ops per WebSocket frame (default 1000, the server's `--max-batch-ops`). */
  maxBatch?: number;
}

export interface ResolvedOptions {
  url: string;
  token?: string;
  timeout: number;
  retries: number;
  backoff: number;
  onUnavailable: "closed" | "open";
  onFailOpen?: (info: FailOpenInfo) => void;
  maxSockets: number;
  maxBatch: number;
}

export function resolveOptions(o: ClientOptions = {}): ResolvedOptions {
  const onUnavailable = o.onUnavailable ?? "closed";
  if (onUnavailable !== "closed" && onUnavailable !== "open")
    throw new TypeError(`onUnavailable must be "closed" or "open", not ${String(onUnavailable)}`);
  const r: ResolvedOptions = {
    url: o.url ?? "http://127.0.0.1:8080",
    timeout: o.timeout ?? 10_000,
    retries: o.retries ?? 2,
    backoff: o.backoff ?? 50,
    onUnavailable,
    maxSockets: o.maxSockets ?? 64,
    maxBatch: o.maxBatch ?? 1000,
  };
  if (o.token !== undefined) r.token = o.token;
  if (o.onFailOpen !== undefined) r.onFailOpen = o.onFailOpen;
  if (!(r.retries >= 0) || !(r.timeout > 0) || !(r.maxBatch >= 1)) throw new TypeError("bad genledger client options");
  return r;
}

/** True for "genledger gave no answer that settles the call": no answer at all, or a 503. */
export function isUnavailable(e: unknown): e is GenledgerError {
  return e instanceof GenledgerError && (e.status === 0 || e.status === 503);
}

/** What a gate op resolves to when it is let through without genledger. */
export function failOpenResult(op: OpName): Record<string, unknown> {
  switch (op) {
    case "charge":
      return { charge: null, cost: null, remaining: null, fail_open: true };
    case "quote":
      return { affordable: true, fail_open: true };
    case "reserve":
      return { reservation: null, held: null, remaining: null, fail_open: true };
    case "commit":
      return { charge: null, cost: null, remaining: null, fail_open: true };
    case "release":
      return { released: null, remaining: null, fail_open: true };
    case "refund":
      return { refunded: null, remaining: null, fail_open: true };
  }
}

/** Counts and reports a call let through; shared so both clients count the same way. */
export class FailOpenPolicy {
  count = 0;
  constructor(private readonly opts: ResolvedOptions) {}

  /** Answers the fail-open result for `e` when the policy lets `op` through, else undefined. */
  letThrough(op: OpName, params: Record<string, unknown>, e: unknown): Record<string, unknown> | undefined {
    if (this.opts.onUnavailable !== "open" || !isUnavailable(e)) return undefined;
    this.count++;
    try {
      this.opts.onFailOpen?.({ op, params, error: e });
    } catch {
      // A throwing callback must not turn a let-through call into a failure.
    }
    return failOpenResult(op);
  }
}
