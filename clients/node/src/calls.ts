// The calls a WebSocket frame carries, while it is filled and until it is answered. A frame keeps
// them in parallel arrays rather than one object per call: with thousands of calls waiting, what
// waits is what every scavenge copies, and a call's own object was a fifth of it (bench.mjs,
// 20,000 concurrent charges). The common answer (a result) settles a call by index; the rare
// ones (retry, failure) take it out as a Call.

import type { FrameText } from "./frame.js";
import type { OpName } from "./types.js";

export type Kind = OpName | "subscribe" | "unsubscribe";
type Settle = (v: unknown) => void;

/** A call taken out of its frame: enough to settle it or to queue its op again. */
export class Call {
  constructor(
    readonly kind: Kind,
    readonly resolve: Settle,
    readonly reject: Settle,
    readonly text: FrameText | undefined,  // holds the op (none for subscribe/unsubscribe)
    readonly start: number,                // the op's offset in text
    readonly seqAt: number,                // where its `,"seq":` begins
    readonly attempts: number,             // sends so far
  ) {}
}

/**
 * An array frame being filled or sent and unanswered, or the one-op object frame of a subscribe
 * (no text). Call i has seq `first + i`; answered calls are cleared.
 */
export class Frame {
  count = 0;
  timer: NodeJS.Timeout | undefined;
  private readonly settle: Array<Settle | undefined> = [];  // resolve, reject of call i at 2i, 2i+1
  private readonly kinds: Kind[] = [];
  private meta: Int32Array;                                  // start, seqAt, attempts of call i at 3i..

  constructor(readonly first: number, readonly text: FrameText | undefined, capacity = 16) {
    this.meta = new Int32Array(3 * Math.max(1, capacity));
  }

  add(kind: Kind, resolve: Settle, reject: Settle, start: number, seqAt: number, attempts: number): void {
    const i = this.count++;
    if (3 * i + 3 > this.meta.length) {
      const bigger = new Int32Array(this.meta.length * 2);
      bigger.set(this.meta);
      this.meta = bigger;
    }
    this.settle.push(resolve, reject);
    this.kinds.push(kind);
    this.meta[3 * i] = start;
    this.meta[3 * i + 1] = seqAt;
    this.meta[3 * i + 2] = attempts;
  }

  /** True while call i is unanswered. */
  waiting(i: number): boolean {
    return this.settle[2 * i] !== undefined;
  }

  /** Counts a send of every call. */
  sent(): void {
    for (let i = 0; i < this.count; i++) this.meta[3 * i + 2]!++;
  }

  /** Resolves call i with `v` (the caller checked waiting(i)). */
  resolve(i: number, v: unknown): void {
    const resolve = this.settle[2 * i]!;
    this.settle[2 * i] = this.settle[2 * i + 1] = undefined;
    resolve(v);
  }

  /** Takes call i out (undefined when answered already). */
  take(i: number): Call | undefined {
    const resolve = this.settle[2 * i];
    if (resolve === undefined) return undefined;
    const reject = this.settle[2 * i + 1]!;
    this.settle[2 * i] = this.settle[2 * i + 1] = undefined;
    return new Call(this.kinds[i]!, resolve, reject, this.text, this.meta[3 * i]!, this.meta[3 * i + 1]!, this.meta[3 * i + 2]!);
  }

  /** Takes every waiting call out, in order. */
  takeAll(): Call[] {
    const out: Call[] = [];
    for (let i = 0; i < this.count; i++) {
      const c = this.take(i);
      if (c) out.push(c);
    }
    return out;
  }
}
