// The auto-batching WebSocket client (docs/api.md, "WebSocket: GET /v1/ws"). Calls made in the
// same turn of the event loop are queued and leave as one array frame (at most maxBatch ops)
// from a setImmediate, so thousands of concurrent charges cost a few frames, not thousands of
// requests. The ops of a frame have consecutive `seq`s and the frame keeps its calls in that
// order, so a reply finds its call at `seq - first` (no map). The server answers frames in
// order, which is how a frame-level error object (no `seq`) finds its frame.
//
// Per-call CPU is what limits a busy client (bench/bench.mjs), and a third of it was garbage
// collection: each call writes its op straight into the frame's bytes (frame.ts) and keeps only
// its promise and a few array slots (calls.ts) while it waits, since whatever waits is what every
// scavenge copies.
//
// Failure: a closed or silent connection (no reply to a frame within `timeout`) is dropped and
// reopened with backoff; calls it had sent are sent again on the new one (same idempotency ids)
// until `retries` is spent, then fail per `onUnavailable`. Subscriptions are renewed on every
// new connection.

import WebSocket from "ws";
import { errorFromAnswer, GenledgerError, unreachable } from "./errors.js";
import { Call, Frame } from "./calls.js";
import { FrameText } from "./frame.js";
import { encode } from "./json.js";
import { runWithHold, type Hold } from "./hold.js";
import { FailOpenPolicy, resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import { Subscription } from "./subscription.js";
import { backoffDelay } from "./transport.js";
import type {
  ChargeResult, CommitParams, CommitResult, GateParams, LedgerEvent, OpName, QuoteResult,
  RefundResult, ReleaseResult, ReserveParams, ReserveResult, Workspace,
} from "./types.js";

const TEXT_FRAME = { binary: false };

// The settling functions of the promise being made, captured by one shared executor, so a call
// allocates no closure of its own (see call()).
let madeResolve: (v: unknown) => void = () => {};
let madeReject: (e: unknown) => void = () => {};
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  madeResolve = resolve;
  madeReject = reject;
}

export interface SubscribeOptions {
  /** Events kept for a slow consumer before the oldest are dropped (default 10000). */
  buffer?: number;
  /** Ends the iteration (and unsubscribes) when aborted. */
  signal?: AbortSignal;
}

export class WsClient {
  readonly options: ResolvedOptions;
  private readonly policy: FailOpenPolicy;
  private readonly wsUrl: string;
  private sock: WebSocket | undefined;
  private state: "idle" | "connecting" | "open" | "closing" = "idle";
  private closed = false;
  private queued: Frame[] = [];  // filled by calls, sent by flush()
  private frames: Frame[] = [];  // sent, unanswered, oldest first
  private frameBytes = 4096;     // the size to start a frame's buffer with: the last frame's
  private frameCalls = 16;       // and its number of calls
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
        if (this.state === "open") this.sendSingle("unsubscribe", workspace, () => {}, () => {});
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

  // The hot path: the op goes into the last queued frame's bytes under the next seq.
  private call(kind: OpName, params: object, needsId = false): Promise<unknown> {
    if (this.closed) return Promise.reject(new GenledgerError("closed", 0, "the WebSocket client is closed"));
    const f = this.target();
    const text = f.text!;
    let start: number;
    try {
      start = text.appendOp(kind, params, needsId, this.nextSeq);
    } catch (e) {
      return Promise.reject(e);  // not JSON (a BigInt, a cycle): nothing was queued
    }
    this.nextSeq++;
    const promise = new Promise(capture);
    f.add(kind, madeResolve, madeReject, start, text.lastSeqAt, 0);
    this.ensureConnected();
    this.scheduleFlush();
    return promise;
  }

  /** The queued frame the next op goes into: the last one while it has room and its seqs run on
   *  (a subscribe sent in between takes a seq), else a new one. */
  private target(): Frame {
    const last = this.queued[this.queued.length - 1];
    if (last && last.count < this.options.maxBatch && last.first + last.count === this.nextSeq) return last;
    const f = new Frame(this.nextSeq, new FrameText(this.frameBytes), this.frameCalls);
    this.queued.push(f);
    return f;
  }

  /** Queues a call again (a retry: same op and id, new seq). */
  private requeue(c: Call): void {
    const f = this.target();
    const text = f.text!;
    const start = text.copyOp(c.text!, c.start, c.seqAt, this.nextSeq++);
    f.add(c.kind, c.resolve, c.reject, start, text.lastSeqAt, c.attempts);
  }

  /** Empties the queue; returns its calls in order. */
  private takeQueued(): Call[] {
    const out: Call[] = [];
    for (const f of this.queued) for (const c of f.takeAll()) out.push(c);
    this.queued = [];
    return out;
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
    const q = this.queued;
    this.queued = [];
    for (const f of q) {
      if (f.count === 0) continue;
      f.sent();
      const bytes = f.text!.finish();
      // The next frame starts at this one's size: no regrowth at a steady rate.
      this.frameBytes = Math.max(4096, bytes.length + (bytes.length >> 4));
      this.frameCalls = f.count;
      this.sendFrame(sock, f, bytes);
    }
  }

  /** Sends one op as an object frame of its own (subscribe/unsubscribe), outside the batching. */
  private sendSingle(kind: "subscribe" | "unsubscribe", workspace: string, resolve: (v: unknown) => void,
                     reject: (e: unknown) => void): void {
    const sock = this.sock;
    if (this.state !== "open" || !sock) return;
    const seq = this.nextSeq++;
    const f = new Frame(seq, undefined, 1);
    f.add(kind, resolve, reject, 0, 0, 1);
    this.sendFrame(sock, f, encode({ op: kind, workspace, seq }));
  }

  private sendFrame(sock: WebSocket, frame: Frame, data: string | Buffer): void {
    // A frame unanswered for `timeout` means a dead or stuck connection: drop it, and the
    // reconnect sends its calls again.
    frame.timer = setTimeout(() => {
      if (this.sock === sock) sock.terminate();
    }, this.options.timeout);
    this.frames.push(frame);
    this.stats.frames++;
    this.stats.ops += frame.count;
    sock.send(data, TEXT_FRAME);  // a Buffer would go as a binary frame by default
  }

  private sendSubscribe(workspace: string): void {
    if (this.state !== "open") {
      this.ensureConnected();  // subscriptions are sent on open
      return;
    }
    this.sendSingle("subscribe", workspace,
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
    const frames = this.frames;
    this.frames = [];
    // Calls sent on the lost connection: outcome unknown. Send them again (same ids) while
    // attempts remain, ahead of the queued ones; subscriptions are renewed on open instead.
    const again: Call[] = [];
    const spent: Call[] = [];
    const err = unreachable(opened ? "the WebSocket connection to genledger was lost" : "genledger unreachable over WebSocket");
    for (const f of frames) {
      clearTimeout(f.timer);
      for (const c of f.takeAll()) {
        if (c.kind === "subscribe" || c.kind === "unsubscribe") continue;
        if (c.attempts > this.options.retries) spent.push(c);
        else again.push(c);
      }
    }
    for (const c of this.takeQueued()) again.push(c);
    for (const c of again) this.requeue(c);
    for (const c of spent) this.settleError(c, err);
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
        for (const c of this.takeQueued()) this.settleError(c, handshakeError ?? err);
        if (this.subs.size === 0) {
          this.connectFailures = 0;
          return;
        }
      }
    }
    if (this.queued.some((f) => f.count > 0) || this.subs.size > 0) {
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
      this.settleFrame(msg);
      return;
    }
    const m = msg as Record<string, unknown>;
    if (typeof m.event === "string" && m.status === undefined) {
      const set = this.subs.get(m.workspace as string);
      if (set) for (const s of set) s.push(m as LedgerEvent);
      return;
    }
    if (typeof m.seq === "number") {
      this.settleFrame([m]);
      return;
    }
    // A frame-level error without seq (deadline passed, bad frame): it stands for the oldest
    // unanswered frame, whole.
    const frame = this.frames.shift();
    if (!frame) return;
    clearTimeout(frame.timer);
    const err = errorFromAnswer(typeof m.status === "number" ? m.status : 500, m);
    for (const c of frame.takeAll()) this.retryOrFail(c, err);
  }

  /** Answers the calls of a reply frame (an array, or one object with `seq`). genledger answers
   *  in op order, so the i-th reply is the frame's i-th call; any order works (matched by seq). */
  private settleFrame(replies: unknown[]): void {
    const frame = this.frameFor((replies[0] as { seq?: unknown } | null | undefined)?.seq);
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i] as Record<string, unknown> | null;
      if (typeof r !== "object" || r === null) continue;
      const seq = r.seq;
      if (typeof seq !== "number") continue;
      let f = frame;
      if (!f || !(seq >= f.first && seq < f.first + f.count)) f = this.frames.find((g) => seq >= g.first && seq < g.first + g.count);
      if (!f || !f.waiting(seq - f.first)) continue;  // another frame's (never from genledger), or answered twice
      const k = seq - f.first;
      const status = r.status as number;
      // `status` and `seq` stay on the result: deleting them would cost more than they weigh.
      if (status >= 200 && status < 300) f.resolve(k, r);
      else this.retryOrFail(f.take(k)!, errorFromAnswer(status, r));
    }
    if (frame) this.orphans(frame);
  }

  /** Removes and answers the frame holding `seq` (normally the oldest); frames before it got
   *  no reply (an unsubscribe of an older server) and are dropped. */
  private frameFor(seq: unknown): Frame | undefined {
    if (typeof seq !== "number") return undefined;
    for (let i = 0; i < this.frames.length; i++) {
      const f = this.frames[i]!;
      if (seq >= f.first && seq < f.first + f.count) {
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
    for (const c of frame.takeAll()) {
      if (c.kind === "unsubscribe") continue;
      this.settleError(c, new GenledgerError("no_reply", 0, "genledger answered the frame without this op"));
    }
  }

  /** A 503 for a change means "outcome unknown": send it again (same id) while attempts remain. */
  private retryOrFail(c: Call, e: GenledgerError): void {
    if (e.status === 503 && c.kind !== "subscribe" && c.kind !== "unsubscribe" && c.attempts <= this.options.retries) {
      this.requeue(c);
      // One timer for every retry of the moment, so a refused frame is sent again as one frame.
      if (!this.retryTimer)
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.scheduleFlush();
        }, backoffDelay(this.options.backoff, c.attempts - 1));
      return;
    }
    this.settleError(c, e);
  }

  private settleError(c: Call, e: unknown): void {
    if (c.kind !== "subscribe" && c.kind !== "unsubscribe") {
      // The op as sent, for onFailOpen: read back from the frame's bytes (only when it is needed).
      const r = this.options.onUnavailable === "open" && c.text
        ? this.policy.letThrough(c.kind, c.text.opAt(c.start, c.seqAt), e) : undefined;
      if (r) {
        c.resolve(r);
        return;
      }
    }
    c.reject(e);
  }

  private failAll(e: GenledgerError): void {
    for (const c of this.takeQueued()) this.settleError(c, e);
    const frames = this.frames;
    this.frames = [];
    for (const f of frames) {
      clearTimeout(f.timer);
      for (const c of f.takeAll()) this.settleError(c, e);
    }
    for (const set of this.subs.values()) for (const s of set) s.fail(e);
    this.subs.clear();
  }
}

