// One consumer of a workspace's live events on a WsClient (WsClient.subscribe): a bounded buffer
// of events and the iterator's waiting promise.

import type { LedgerEvent } from "./types.js";

export class Subscription {
  events: LedgerEvent[] = [];
  waiter: ((r: IteratorResult<LedgerEvent>) => void) | undefined;
  failer: ((e: unknown) => void) | undefined;
  error: unknown;
  done = false;
  dropped = 0;
  constructor(readonly workspace: string, readonly limit: number) {}

  push(ev: LedgerEvent): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = undefined;
      w({ value: ev, done: false });
      return;
    }
    this.events.push(ev);
    // Events are states: when the consumer lags, the oldest are the least useful.
    if (this.events.length > this.limit) {
      this.events.shift();
      this.dropped++;
    }
  }

  fail(e: unknown): void {
    if (this.done) return;
    this.error = e;
    if (this.failer) {
      const f = this.failer;
      this.waiter = this.failer = undefined;
      f(e);
    }
  }

  finish(): void {
    this.done = true;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = this.failer = undefined;
      w({ value: undefined, done: true });
    }
  }
}
