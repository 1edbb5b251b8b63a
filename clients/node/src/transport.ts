// HTTP transport: one keep-alive agent per client, JSON in and out, bounded retries with
// backoff on connection errors, timeouts and 503. What a retry may repeat is the caller's
// decision (`retry`): changes carry idempotency ids or are refused the second time.

import * as http from "node:http";
import * as https from "node:https";
import { errorFromAnswer, GenledgerError, unreachable } from "./errors.js";
import { encode } from "./json.js";

export interface TransportOptions {
  url: string;
  token?: string;
  /** Milliseconds one attempt may take (connect + answer). */
  timeout: number;
  /** Attempts after the first one. */
  retries: number;
  /** First backoff in ms; doubles per attempt (with jitter), capped at 2 s. */
  backoff: number;
  /** Sockets kept per client (keep-alive). */
  maxSockets: number;
}

export interface RequestOptions {
  /** Whether the request may be sent again after a connection error, a timeout or a 503.
   *  A request the server surely never received (connection refused) is always retried. */
  retry: boolean;
  /** Answer the body as text instead of parsing JSON (CSV reports). */
  text?: boolean;
}

/** Sleeps the backoff before retry number `attempt` (0-based). Exported for the WebSocket client. */
export function backoffDelay(base: number, attempt: number): number {
  const d = Math.min(2000, base * 2 ** attempt);
  return d / 2 + Math.random() * (d / 2);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class Transport {
  readonly base: URL;
  private readonly opts: TransportOptions;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;

  constructor(opts: TransportOptions) {
    this.opts = opts;
    this.base = new URL(opts.url);
    if (this.base.protocol !== "http:" && this.base.protocol !== "https:")
      throw new TypeError(`genledger url must be http:// or https://, not ${opts.url}`);
    this.mod = this.base.protocol === "https:" ? https : http;
    const agentOpts = { keepAlive: true, maxSockets: opts.maxSockets, scheduling: "lifo" as const };
    this.agent = this.base.protocol === "https:" ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  }

  get token(): string | undefined {
    return this.opts.token;
  }

  /** Closes idle keep-alive sockets; in-flight requests finish. */
  close(): void {
    this.agent.destroy();
  }

  /**
   * Sends one request and answers the parsed body of a 2xx answer. Throws the GenledgerError
   * subclass of an error answer, or UnavailableError (status 0 or 503) once retries are spent.
   */
  async request<T>(method: string, path: string, body: unknown, ro: RequestOptions): Promise<T> {
    const payload = body === undefined ? undefined : Buffer.from(encode(body));
    let last: GenledgerError | undefined;
    for (let attempt = 0; ; attempt++) {
      const r = await this.once(method, path, payload, ro.text === true);
      if (r.ok) return r.value as T;
      last = r.error;
      const refused = r.refused;  // never reached the server: safe to send again whatever it is
      const retryable = refused || (ro.retry && (r.error.status === 0 || r.error.status === 503));
      if (!retryable || attempt >= this.opts.retries) throw last;
      await sleep(backoffDelay(this.opts.backoff, attempt));
    }
  }

  private once(method: string, path: string, payload: Buffer | undefined, text: boolean):
      Promise<{ ok: true; value: unknown } | { ok: false; error: GenledgerError; refused: boolean }> {
    return new Promise((resolve) => {
      const headers: Record<string, string | number> = { Accept: "application/json" };
      if (this.opts.token) headers.Authorization = `Bearer ${this.opts.token}`;
      if (payload) {
        headers["Content-Type"] = "application/json";
        headers["Content-Length"] = payload.length;
      }
      let settled = false;
      const done = (v: { ok: true; value: unknown } | { ok: false; error: GenledgerError; refused: boolean }) => {
        if (!settled) {
          settled = true;
          resolve(v);
        }
      };
      const req = this.mod.request(
        {
          protocol: this.base.protocol,
          hostname: this.base.hostname.replace(/^\[|\]$/g, ""),
          port: this.base.port || undefined,
          method,
          path: this.base.pathname.replace(/\/$/, "") + path,
          headers,
          agent: this.agent,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", (e) => done({ ok: false, error: unreachable(`genledger: ${e.message}`, e), refused: false }));
          res.on("end", () => {
            const raw = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            let parsed: unknown = undefined;
            const isJson = (res.headers["content-type"] ?? "").includes("json");
            if (raw.length > 0 && (isJson || !text)) {
              try {
                parsed = JSON.parse(raw);
              } catch {
                parsed = undefined;
              }
            }
            if (status >= 200 && status < 300) {
              if (text && !isJson) done({ ok: true, value: raw });
              else if (parsed === undefined && raw.length > 0)
                done({ ok: false, error: new GenledgerError("bad_answer", status, "genledger answered a body that is not JSON"), refused: false });
              else done({ ok: true, value: parsed });
            } else {
              done({ ok: false, error: errorFromAnswer(status, parsed), refused: false });
            }
          });
        },
      );
      req.setTimeout(this.opts.timeout, () => {
        req.destroy(unreachable(`genledger did not answer within ${this.opts.timeout} ms`));
      });
      req.on("error", (e: NodeJS.ErrnoException) => {
        const refused = e.code === "ECONNREFUSED";
        const err = e instanceof GenledgerError ? e : unreachable(`genledger unreachable: ${e.message}`, e);
        done({ ok: false, error: err, refused });
      });
      req.end(payload);
    });
  }
}
