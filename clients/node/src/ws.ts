// The auto-batching WebSocket client (docs/api.md, "WebSocket: GET /v1/ws"). Calls made in the
// same turn of the event loop are queued and leave as one array frame (at most maxBatch ops)
// from a setImmediate, so thousands of concurrent charges cost a few frames, not thousands of
// requests. Replies are matched by `seq`. The server answers frames in order, which is how a
// frame-level error object (no `seq`) finds its frame.
//
// Failure: a closed or silent connection (no reply to a frame within `timeout`) is dropped and
// reopened with backoff; calls it had sent are sent again on the new one (same idempotency ids)
// until `retries` is spent, then fail per `onUnavailable`. Subscriptions are renewed on every
// new connection.

import { newId } from "./ids.js";
import WebSocket from "ws";
import { errorFromAnswer, GenledgerError, unreachable } from "./errors.js";
import { encode } from "./json.js";
import { runWithHold, type Hold } from "./hold.js";
import { FailOpenPolicy, resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import { backoffDelay } from "./transport.js";
import type {
  ChargeResult, CommitParams, CommitResult, GateParams, LedgerEvent, OpName, QuoteResult,
  RefundResult, ReleaseResult, ReserveParams, ReserveResult, Workspace,
} from "./types.js";

interface Pending {
  op: Record<string, unknown>;        // the op as sent (its seq is the latest send's)
  kind: OpName | "subscribe" | "unsubscribe";
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  attempts: number;                   // sends so far
}

interface Frame {
  seqs: number[];
  timer: NodeJS.Timeout | undefined;
}

export interface SubscribeOptions {
  /** Events kept for a slow consumer before the oldest are dropped (default 10000). */
  buffer?: number;
  /** Ends the iteration (and unsubscribes) when aborted. */
  signal?: AbortSignal;
}

class Subscription {
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

export class WsClient {
  readonly options: ResolvedOptions;
  private readonly policy: FailOpenPolicy;
  private readonly wsUrl: string;
  private sock: WebSocket | undefined;
  private state: "idle" | "connecting" | "open" | "closing" = "idle";
  private closed = false;
  private queue: Pending[] = [];
  private inflight = new Map<number, Pending>();
  private frames: Frame[] = [];
  private nextSeq = 1;
  private flushScheduled = false;
  private connectFailures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private subs = new Map<string, Set<Subscription>>();
  /** Frames sent and connections opened, for tests and benchmarks. */
  readonly stats = { frames: 0, ops: 0, connects: 0 };

  constructor(options: ClientOptions = {}) {
    this.options = resolveOptions(options);
    this.policy = new FailOpenPolicy(this.options);
    const u = new URL(this.options.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    u.pathname = u.pathname.replace(/\/$/, "") + "/v1/ws";
    this.wsUrl = u.toString();
  }

  get failOpenCount(): number {
    return this.policy.count;
  }

  // ---- gate operations (same shapes as Client's) ----

  charge(params: GateParams): Promise<ChargeResult> {
    return this.call("charge", params, true) as Promise<ChargeResult>;
  }
  quote(params: Omit<GateParams, "id">): Promise<QuoteResult> {
    return this.call("quote", params) as Promise<QuoteResult>;
  }
  reserve(params: ReserveParams): Promise<ReserveResult> {
    return this.call("reserve", params, true) as Promise<ReserveResult>;
  }
  commit(params: CommitParams): Promise<CommitResult> {
    return this.call("commit", params) as Promise<CommitResult>;
  }
  release(params: { reservation: string }): Promise<ReleaseResult> {
    return this.call("release", params) as Promise<ReleaseResult>;
  }
  refund(params: { charge: string }): Promise<RefundResult> {
    return this.call("refund", params) as Promise<RefundResult>;
  }
  withHold<R>(params: ReserveParams, fn: (hold: Hold) => Promise<R>): Promise<R> {
    return runWithHold(this, params, fn);
  }

  /**
   * Live events of a workspace: first `{"event":"subscribed","workspace","state":{...as GET...}}`
   * (again after every reconnect, since events may have been missed), then the server's pushed
   * frames (`balance`, `alert`, `depleted`, `period_reset`, ...). Breaking out of the loop
   * unsubscribes. Throws the server's error if it refuses the subscription (a server without
   * subscribe answers `400 invalid_argument`).
   */
  subscribe(workspace: string, opts: SubscribeOptions = {}): AsyncIterableIterator<LedgerEvent> {
    if (this.closed) throw new GenledgerError("closed", 0, "the WebSocket client is closed");
    const sub = new Subscription(workspace, opts.buffer ?? 10_000);
    let set = this.subs.get(workspace);
    const first = !set;
    if (!set) this.subs.set(workspace, (set = new Set()));
    set.add(sub);
    if (first) this.sendSubscribe(workspace);
    else this.ensureConnected();
    const end = () => {
      if (sub.done) return;
      sub.finish();
      const s = this.subs.get(workspace);
      if (s && s.delete(sub) && s.size === 0) {
        this.subs.delete(workspace);
        if (this.state === "open") this.enqueueSingle("unsubscribe", { op: "unsubscribe", workspace }, () => {}, () => {});
      }
    };
    opts.signal?.addEventListener("abort", end, { once: true });
    const it: AsyncIterableIterator<LedgerEvent> = {
      next: () => {
        if (sub.events.length > 0) return Promise.resolve({ value: sub.events.shift()!, done: false });
        if (sub.error !== undefined) {
          const e = sub.error;
          end();
          return Promise.reject(e);
        }
        if (sub.done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => {
          sub.waiter = resolve;
          sub.failer = (e) => {
            end();
            reject(e);
          };
        });
      },
      return: () => {
        end();
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /** Fails every pending call (UnavailableError, or let through when "open") and closes. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const set of this.subs.values()) for (const s of set) s.finish();
    this.subs.clear();
    const sock = this.sock;
    this.failAll(unreachable("the WebSocket client was closed"));
    if (sock && sock.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        sock.once("close", () => resolve());
        sock.close(1000);
        setTimeout(() => {
          sock.terminate();
          resolve();
        }, 1000).unref();
      });
    }
  }

  // ---- queueing and frames ----

  // The hot path: one op object per call (seq is set on it when it leaves), no copies.
  private call(kind: OpName, params: object, needsId = false): Promise<unknown> {
    if (this.closed) return Promise.reject(new GenledgerError("closed", 0, "the WebSocket client is closed"));
    const op: Record<string, unknown> = { op: kind, ...params };
    if (needsId && !op.id) op.id = newId();
    return new Promise((resolve, reject) => {
      this.queue.push({ op, kind, resolve, reject, attempts: 0 });
      this.ensureConnected();
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.state !== "open") return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const sock = this.sock;
    if (this.state !== "open" || !sock) return;
    while (this.queue.length > 0) {
      const batch = this.queue.length <= this.options.maxBatch ? this.queue : this.queue.slice(0, this.options.maxBatch);
      this.queue = batch === this.queue ? [] : this.queue.slice(batch.length);
      const ops = new Array(batch.length);
      const seqs = new Array<number>(batch.length);
      for (let i = 0; i < batch.length; i++) {
        const p = batch[i]!;
        const seq = this.nextSeq++;
        p.attempts++;
        this.inflight.set(seq, p);
        seqs[i] = seq;
        p.op.seq = seq;
        ops[i] = p.op;
      }
      this.sendFrame(sock, encode(ops), seqs);
    }
  }

  /** Sends one op as an object frame of its own (subscribe/unsubscribe), outside the batching. */
  private enqueueSingle(kind: Pending["kind"], op: Record<string, unknown>, resolve: (v: unknown) => void,
                        reject: (e: unknown) => void): void {
    const sock = this.sock;
    if (this.state !== "open" || !sock) return;
    const seq = this.nextSeq++;
    this.inflight.set(seq, { op, kind, resolve, reject, attempts: 1 });
    this.sendFrame(sock, encode({ ...op, seq }), [seq]);
  }

  private sendFrame(sock: WebSocket, text: string, seqs: number[]): void {
    const frame: Frame = { seqs, timer: undefined };
    // A frame unanswered for `timeout` means a dead or stuck connection: drop it, and the
    // reconnect sends its calls again.
    frame.timer = setTimeout(() => {
      if (this.sock === sock) sock.terminate();
    }, this.options.timeout);
    this.frames.push(frame);
    this.stats.frames++;
    this.stats.ops += seqs.length;
    sock.send(text);
  }

  private sendSubscribe(workspace: string): void {
    if (this.state !== "open") {
      this.ensureConnected();  // subscriptions are sent on open
      return;
    }
    this.enqueueSingle("subscribe", { op: "subscribe", workspace },
      (r) => {
        const state = (r as { state?: Workspace }).state;
        for (const s of this.subs.get(workspace) ?? [])
          s.push({ event: "subscribed", workspace, ...(state?.rev !== undefined ? { rev: state.rev } : {}), state });
      },
      (e) => {
        const set = this.subs.get(workspace);
        this.subs.delete(workspace);
        for (const s of set ?? []) s.fail(e);
      });
  }

  // ---- connection ----

  private ensureConnected(): void {
    if (this.state !== "idle" || this.closed || this.reconnectTimer) return;
    this.state = "connecting";
    const headers: Record<string, string> = {};
    if (this.options.token) headers.Authorization = `Bearer ${this.options.token}`;
    const sock = new WebSocket(this.wsUrl, { headers, perMessageDeflate: false, handshakeTimeout: this.options.timeout });
    this.sock = sock;
    this.stats.connects++;
    let opened = false;
    let handshakeError: GenledgerError | undefined;
    sock.on("open", () => {
      opened = true;
      this.state = "open";
      this.connectFailures = 0;
      for (const ws of this.subs.keys()) this.sendSubscribe(ws);
      this.scheduleFlush();
    });
    sock.on("message", (data: WebSocket.RawData, isBinary: boolean) => {
      if (!isBinary) this.onMessage(data.toString());
    });
    // A refused upgrade (401, 403, 404) is an answer, not an outage: fail the calls with it.
    sock.on("unexpected-response", (_req, res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch {
          body = undefined;
        }
        handshakeError = errorFromAnswer(res.statusCode ?? 0, body);
        sock.terminate();
      });
    });
    sock.on("error", () => {});  // "close" follows and does the work
    sock.on("close", () => this.onClose(sock, opened, handshakeError));
  }

  private onClose(sock: WebSocket, opened: boolean, handshakeError: GenledgerError | undefined): void {
    if (this.sock !== sock) return;
    this.sock = undefined;
    this.state = "idle";
    this.flushScheduled = false;
    for (const f of this.frames) clearTimeout(f.timer);
    this.frames = [];
    // Calls sent on the lost connection: outcome unknown. Send them again (same ids) while
    // attempts remain; subscriptions are renewed on open instead.
    const again: Pending[] = [];
    const err = unreachable(opened ? "the WebSocket connection to genledger was lost" : "genledger unreachable over WebSocket");
    for (const p of this.inflight.values()) {
      if (p.kind === "subscribe" || p.kind === "unsubscribe") continue;
      if (p.attempts > this.options.retries) this.settleError(p, err);
      else again.push(p);
    }
    this.inflight.clear();
    this.queue = again.concat(this.queue);
    if (this.closed) return;
    if (handshakeError && handshakeError.status !== 503) {
      // The server refused us: every queued call and subscription gets that answer.
      this.connectFailures = 0;
      this.failAll(handshakeError);
      return;
    }
    if (!opened) {
      this.connectFailures++;
      if (this.connectFailures > this.options.retries) {
        // Unreachable: fail what waits now; subscriptions keep trying at the longest backoff.
        const q = this.queue;
        this.queue = [];
        for (const p of q) this.settleError(p, handshakeError ?? err);
        if (this.subs.size === 0) {
          this.connectFailures = 0;
          return;
        }
      }
    }
    if (this.queue.length > 0 || this.subs.size > 0) {
      this.reconnectTimer = setTimeout(() => {
        this.reconnectTimer = undefined;
        this.ensureConnected();
      }, backoffDelay(this.options.backoff, Math.min(this.connectFailures, 10)));
    }
  }

  private onMessage(text: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(text);
    } catch {
      return;  // not ours to answer; the frame timer covers a lost reply
    }
    if (Array.isArray(msg)) {
      const frame = this.frameFor((msg[0] as { seq?: number } | undefined)?.seq);
      for (const r of msg as Array<Record<string, unknown>>) this.settleReply(r);
      if (frame) this.orphans(frame);
      return;
    }
    const m = msg as Record<string, unknown>;
    if (typeof m.event === "string" && m.status === undefined) {
      const set = this.subs.get(m.workspace as string);
      if (set) for (const s of set) s.push(m as LedgerEvent);
      return;
    }
    if (typeof m.seq === "number") {
      const frame = this.frameFor(m.seq);
      this.settleReply(m);
      if (frame) this.orphans(frame);
      return;
    }
    // A frame-level error without seq (deadline passed, bad frame): it stands for the oldest
    // unanswered frame, whole.
    const frame = this.frames.shift();
    if (!frame) return;
    clearTimeout(frame.timer);
    const err = errorFromAnswer(typeof m.status === "number" ? m.status : 500, m);
    for (const seq of frame.seqs) {
      const p = this.inflight.get(seq);
      if (!p) continue;
      this.inflight.delete(seq);
      this.retryOrFail(p, err);
    }
  }

  /** Removes and answers the frame holding `seq` (normally the oldest); frames before it got
   *  no reply (an unsubscribe of an older server) and are dropped. */
  private frameFor(seq: number | undefined): Frame | undefined {
    if (seq === undefined) return undefined;
    for (let i = 0; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (f.seqs[0] === seq) {
        const skipped = this.frames.splice(0, i + 1);
        for (const s of skipped) clearTimeout(s.timer);
        for (let j = 0; j < i; j++) this.orphans(skipped[j]!);
        return f;
      }
    }
    return undefined;
  }

  /** Calls of an answered frame that its reply did not mention: fail them (never expected). */
  private orphans(frame: Frame): void {
    for (const seq of frame.seqs) {
      const p = this.inflight.get(seq);
      if (!p) continue;
      this.inflight.delete(seq);
      if (p.kind === "unsubscribe") continue;
      this.settleError(p, new GenledgerError("no_reply", 0, "genledger answered the frame without this op"));
    }
  }

  private settleReply(r: Record<string, unknown>): void {
    const seq = r.seq as number;
    const p = this.inflight.get(seq);
    if (!p) return;
    this.inflight.delete(seq);
    const status = r.status as number;
    if (status >= 200 && status < 300) {
      // `status` and `seq` stay on the result: deleting them would cost more than they weigh.
      p.resolve(r);
    } else {
      this.retryOrFail(p, errorFromAnswer(status, r));
    }
  }

  /** A 503 for a change means "outcome unknown": send it again (same id) while attempts remain. */
  private retryOrFail(p: Pending, e: GenledgerError): void {
    if (e.status === 503 && p.kind !== "subscribe" && p.kind !== "unsubscribe" && p.attempts <= this.options.retries) {
      this.queue.push(p);
      // One timer for every retry of the moment, so a refused frame is sent again as one frame.
      if (!this.retryTimer)
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.scheduleFlush();
        }, backoffDelay(this.options.backoff, p.attempts - 1));
      return;
    }
    this.settleError(p, e);
  }

  private settleError(p: Pending, e: unknown): void {
    if (p.kind !== "subscribe" && p.kind !== "unsubscribe") {
      const r = this.policy.letThrough(p.kind, p.op, e);
      if (r) {
        p.resolve(r);
        return;
      }
    }
    p.reject(e);
  }

  private failAll(e: GenledgerError): void {
    const q = this.queue;
    this.queue = [];
    for (const p of q) this.settleError(p, e);
    for (const p of this.inflight.values()) this.settleError(p, e);
    this.inflight.clear();
    for (const f of this.frames) clearTimeout(f.timer);
    this.frames = [];
    for (const set of this.subs.values()) for (const s of set) s.fail(e);
    this.subs.clear();
  }
}
