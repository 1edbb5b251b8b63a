// withHold: reserve, run the caller's work, and settle the hold whatever happens — release it
// if the work throws (a failed generation is free), commit all of it if the work returns without
// settling it. Shared by the HTTP and the WebSocket client through the small Gate interface.

import { GenledgerError } from "./errors.js";
import type { CommitResult, ReleaseResult, ReserveParams, ReserveResult, Usage } from "./types.js";

/** What withHold needs from a client. */
export interface Gate {
  reserve(params: ReserveParams): Promise<ReserveResult>;
  commit(params: { reservation: string } & Usage): Promise<CommitResult>;
  release(params: { reservation: string }): Promise<ReleaseResult>;
}

/** An open reservation handed to withHold's callback. */
export class Hold {
  /** `rs_<n>`, or null when the reserve failed open (genledger unreachable, onUnavailable "open"). */
  readonly reservation: string | null;
  /** What was held (null when failed open). */
  readonly held: number | null;
  /** The reserve answer as the server gave it. */
  readonly reserved: ReserveResult;
  /** The commit or release answer once settled. */
  result: CommitResult | ReleaseResult | undefined;
  private state: "open" | "committed" | "released" = "open";
  private readonly gate: Gate;

  constructor(gate: Gate, reserved: ReserveResult) {
    this.gate = gate;
    this.reserved = reserved;
    this.reservation = reserved.reservation;
    this.held = reserved.held;
  }

  /** True once commit or release succeeded. */
  get settled(): boolean {
    return this.state !== "open";
  }

  get failOpen(): boolean {
    return this.reserved.fail_open === true;
  }

  /**
   * Charges the actual usage (at most what was held; the rest is freed), or the whole hold when
   * `usage` is left out. On `commit_exceeds_hold` the hold stays open (and withHold releases it
   * if the error propagates). A hold that failed open commits nothing and answers `fail_open`.
   */
  async commit(usage: Usage = {}): Promise<CommitResult> {
    this.checkOpen("commit");
    let r: CommitResult;
    if (this.reservation === null) r = { cost: null, remaining: null, charge: null, fail_open: true };
    else r = await this.gate.commit({ reservation: this.reservation, ...usage });
    this.state = "committed";
    this.result = r;
    return r;
  }

  /** Frees the whole hold. */
  async release(): Promise<ReleaseResult> {
    this.checkOpen("release");
    let r: ReleaseResult;
    if (this.reservation === null) r = { released: null, remaining: null, fail_open: true };
    else r = await this.gate.release({ reservation: this.reservation });
    this.state = "released";
    this.result = r;
    return r;
  }

  private checkOpen(what: string): void {
    if (this.state !== "open")
      throw new GenledgerError("reservation_settled", 0, `cannot ${what}: the hold was already ${this.state} by this client`);
  }
}

/**
 * Reserves `params`, calls `fn(hold)` and settles the hold: a throw releases it (a release that
 * fails too is ignored: the hold then ends at its TTL) and rethrows the callback's error; a return
 * without commit or release commits the whole hold. Answers what `fn` returned.
 */
export async function runWithHold<R>(gate: Gate, params: ReserveParams, fn: (hold: Hold) => Promise<R>): Promise<R> {
  const hold = new Hold(gate, await gate.reserve(params));
  let out: R;
  try {
    out = await fn(hold);
  } catch (e) {
    if (!hold.settled) {
      try {
        await hold.release();
      } catch {
        // Unreachable or already settled: the TTL ends the hold. The caller's error matters more.
      }
    }
    throw e;
  }
  if (!hold.settled) await hold.commit();
  return out;
}
