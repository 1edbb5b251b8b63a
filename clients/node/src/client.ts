// The HTTP client: gate ops, admin and read routes, withHold, and the door to the auto-batching
// WebSocket client (ws(), subscribe()). One keep-alive agent per client.

import { newId } from "./ids.js";
import { runWithHold, type Hold } from "./hold.js";
import { FailOpenPolicy, resolveOptions, type ClientOptions, type ResolvedOptions } from "./options.js";
import { Transport } from "./transport.js";
import type {
  AlertRule, BatchOp, BatchResult, ChargeResult, CommitParams, CommitResult, GateParams, Grant,
  GrantParams, LedgerEvent, OpName, Page, QuoteResult, RefundResult, ReleaseResult, ReserveParams,
  ReserveResult, TokenInfo, TokenParams, UsageQuery, UsageReport, User, UserList, Webhook,
  WebhookParams, Workspace, WorkspaceList, WorkspaceSettings,
} from "./types.js";
import { WsClient, type SubscribeOptions } from "./ws.js";

/** Path segment: ids are `[A-Za-z0-9._:@-]` and go verbatim; anything else is escaped (and then
 *  refused by the server as `invalid_id`, which is the honest answer). */
export function seg(id: string): string {
  return /^[A-Za-z0-9._:@-]+$/.test(id) ? id : encodeURIComponent(id);
}

function query(q: Record<string, string | number | null | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null) p.set(k, String(v));
  const s = p.toString();
  return s ? "?" + s : "";
}

/** Adds a generated idempotency id when the caller gave none; the same id is then sent on
 *  every retry of this call. */
export function withId<T extends { id?: string }>(params: T): T & { id: string } {
  return params.id ? (params as T & { id: string }) : { ...params, id: newId() };
}

export class Client {
  readonly options: ResolvedOptions;
  private readonly http: Transport;
  private readonly policy: FailOpenPolicy;
  private wsClient: WsClient | undefined;

  constructor(options: ClientOptions = {}) {
    this.options = resolveOptions(options);
    this.http = new Transport(this.options);
    this.policy = new FailOpenPolicy(this.options);
  }

  /** Gate calls let through by `onUnavailable: "open"` (HTTP and this client's WebSocket). */
  get failOpenCount(): number {
    return this.policy.count + (this.wsClient?.failOpenCount ?? 0);
  }

  // ---- gate operations ----

  /** Check-and-debit in one step. Resolves to `{charge, cost, remaining, user_used, rev, ...}`. */
  charge(params: GateParams): Promise<ChargeResult> {
    return this.gate("charge", "/v1/charge", withId(params)) as Promise<ChargeResult>;
  }

  /** Cost, whether it fits now, and the largest usage that does. Debits nothing. */
  quote(params: Omit<GateParams, "id">): Promise<QuoteResult> {
    return this.gate("quote", "/v1/quote", params) as Promise<QuoteResult>;
  }

  /** Holds the cost until commit, release or `ttl_ms`. */
  reserve(params: ReserveParams): Promise<ReserveResult> {
    return this.gate("reserve", "/v1/reserve", withId(params)) as Promise<ReserveResult>;
  }

  /** Charges the actual usage of a hold (the whole hold without usage fields). A retry after a
   *  lost answer may see `409 reservation_settled`: the first attempt then took effect. */
  commit(params: CommitParams): Promise<CommitResult> {
    return this.gate("commit", "/v1/commit", params) as Promise<CommitResult>;
  }

  release(params: { reservation: string }): Promise<ReleaseResult> {
    return this.gate("release", "/v1/release", params) as Promise<ReleaseResult>;
  }

  /** Gives a charge's cost back, once (`409 already_refunded` the second time). */
  refund(params: { charge: string }): Promise<RefundResult> {
    return this.gate("refund", "/v1/refund", params) as Promise<RefundResult>;
  }

  /** `POST /v1/batch`: ops run in order, each answered on its own (no fail-open here). Charges
   *  and reserves without an `id` get one, so a retried batch debits nothing twice. */
  async batch(ops: BatchOp[]): Promise<BatchResult[]> {
    const withIds = ops.map((o) => (o.op === "charge" || o.op === "reserve" ? withId(o as BatchOp & { id?: string }) : o));
    const r = await this.http.request<{ results: BatchResult[] }>("POST", "/v1/batch", { ops: withIds }, { retry: true });
    return r.results;
  }

  /**
   * Reserves, runs `fn(hold)`, then settles: releases the hold if `fn` throws (and rethrows),
   * commits the whole hold if `fn` returns without `hold.commit(...)`/`hold.release()`.
   *
   *   await client.withHold({workspace, user, model: "google-veo3", seconds: 8}, async (hold) => {
   *     const video = await generate();          // throws: the hold is released, nothing charged
   *     await hold.commit({seconds: video.seconds});
   *   });
   */
  withHold<R>(params: ReserveParams, fn: (hold: Hold) => Promise<R>): Promise<R> {
    return runWithHold(this, params, fn);
  }

  // ---- admin and reads ----

  readonly workspaces = {
    get: (ws: string) => this.get<Workspace>(`/v1/workspaces/${seg(ws)}`),
    /** Creates or updates (admin). */
    put: (ws: string, settings: WorkspaceSettings = {}) =>
      this.http.request<Workspace>("PUT", `/v1/workspaces/${seg(ws)}`, settings, { retry: true }),
    /** `GET /v1/workspaces?prefix=&limit=&cursor=` (issue 16; servers without it answer 404). */
    list: (q: Page & { prefix?: string } = {}) =>
      this.get<WorkspaceList>(`/v1/workspaces${query({ prefix: q.prefix, limit: q.limit, cursor: q.cursor })}`),
    /** Adds to this period (admin). Not retried: a top-up carries no idempotency id. */
    topup: (ws: string, amount: number) =>
      this.http.request<Workspace>("POST", `/v1/workspaces/${seg(ws)}/topup`, { amount }, { retry: false }),
    /** Starts a new period (admin). Not retried. */
    reset: (ws: string) => this.http.request<Workspace>("POST", `/v1/workspaces/${seg(ws)}/reset`, {}, { retry: false }),
  };

  readonly users = {
    /** One page, by `used` descending. */
    list: (ws: string, page: Page = {}) =>
      this.get<UserList>(`/v1/workspaces/${seg(ws)}/users${query({ limit: page.limit, cursor: page.cursor })}`),
    /** Every user, page after page. */
    all: async function* (this: Client, ws: string, pageSize = 1000): AsyncGenerator<User> {
      let cursor: string | null | undefined = undefined;
      do {
        const page: UserList = await this.users.list(ws, { limit: pageSize, cursor });
        yield* page.users;
        cursor = page.next_cursor;
      } while (cursor);
    }.bind(this),
    /** Sets or clears a user's cap (admin). */
    put: (ws: string, user: string, limit: number | null) =>
      this.http.request<User>("PUT", `/v1/workspaces/${seg(ws)}/users/${seg(user)}`, { limit }, { retry: true }),
  };

  readonly grants = {
    list: async (ws: string) => (await this.get<{ grants: Grant[] }>(`/v1/workspaces/${seg(ws)}/grants`)).grants,
    /** Adds a grant (admin), with a generated idempotency id unless one is given. */
    add: (ws: string, grant: GrantParams) =>
      this.http.request<Grant>("POST", `/v1/workspaces/${seg(ws)}/grants`, withId(grant), { retry: true }),
    /** Voids what is left of a grant (admin). */
    void: (ws: string, grant: string) =>
      this.http.request<Grant>("DELETE", `/v1/workspaces/${seg(ws)}/grants/${seg(grant)}`, undefined, { retry: true }),
  };

  readonly catalog = {
    get: () => this.get<{ version: number; items: unknown[] }>("/v1/catalog"),
    put: (catalog: { items: unknown[] }) =>
      this.http.request<{ version: number; items: unknown[] }>("PUT", "/v1/catalog", catalog, { retry: false }),
  };

  /** Usage history (issue 15): rows grouped by user, model, category or day. */
  usage(ws: string, q: UsageQuery): Promise<UsageReport> {
    return this.get<UsageReport>(this.usagePath(ws, q, false));
  }

  /** The same report as CSV text with a header row. */
  usageCsv(ws: string, q: UsageQuery): Promise<string> {
    return this.http.request<string>("GET", this.usagePath(ws, q, true), undefined, { retry: true, text: true });
  }

  private usagePath(ws: string, q: UsageQuery, csv: boolean): string {
    const g = Array.isArray(q.group_by) ? q.group_by.join(",") : q.group_by;
    return `/v1/workspaces/${seg(ws)}/usage${query({ period: q.period, group_by: g, format: csv ? "csv" : undefined })}`;
  }

  /** Alerts of a workspace (issue 15): `get` answers them with their state this period. */
  readonly alerts = {
    get: async (ws: string) => (await this.get<{ alerts: AlertRule[] }>(`/v1/workspaces/${seg(ws)}/alerts`)).alerts,
    /** Replaces the set (admin). */
    put: async (ws: string, alerts: AlertRule[]) =>
      (await this.http.request<{ alerts: AlertRule[] }>("PUT", `/v1/workspaces/${seg(ws)}/alerts`, { alerts }, { retry: true })).alerts,
  };

  /** Workspace-scoped tokens (issue 15). */
  readonly tokens = {
    /** Mints a token (unscoped admin only); the secret is in this answer only. Not retried:
     *  a retry could mint two. */
    create: (params: TokenParams) => this.http.request<TokenInfo>("POST", "/v1/tokens", params, { retry: false }),
    list: async () => (await this.get<{ tokens: TokenInfo[] }>("/v1/tokens")).tokens,
    revoke: (id: string) => this.http.request<unknown>("DELETE", `/v1/tokens/${seg(id)}`, undefined, { retry: true }),
  };

  /** Signed webhooks (issue 15). */
  readonly webhooks = {
    create: (params: WebhookParams) => this.http.request<Webhook>("POST", "/v1/webhooks", params, { retry: false }),
    list: async () => (await this.get<{ webhooks: Webhook[] }>("/v1/webhooks")).webhooks,
    delete: (id: string) => this.http.request<unknown>("DELETE", `/v1/webhooks/${seg(id)}`, undefined, { retry: true }),
    deliveries: (id: string) => this.get<{ deliveries: unknown[] }>(`/v1/webhooks/${seg(id)}/deliveries`),
  };

  /** `GET /healthz` (never throws for a 503: answers the body). */
  async health(): Promise<{ status: string; wal?: string; [k: string]: unknown }> {
    try {
      return await this.get("/healthz");
    } catch (e) {
      const body = (e as { body?: unknown }).body as { code?: string; message?: string } | undefined;
      if ((e as { status?: number }).status === 503) return { status: "failing", error: body?.message ?? "" };
      throw e;
    }
  }

  // ---- WebSocket ----

  /** The auto-batching WebSocket client sharing this client's options (created on first use). */
  ws(): WsClient {
    if (!this.wsClient) this.wsClient = new WsClient(this.options);
    return this.wsClient;
  }

  /** Live events of a workspace over this client's WebSocket (issue 15's subscribe). */
  subscribe(workspace: string, opts?: SubscribeOptions): AsyncIterableIterator<LedgerEvent> {
    return this.ws().subscribe(workspace, opts);
  }

  /** Closes the WebSocket (failing its pending calls) and the idle HTTP sockets. */
  async close(): Promise<void> {
    this.http.close();
    if (this.wsClient) await this.wsClient.close();
  }

  // ---- internals ----

  private get<T>(path: string): Promise<T> {
    return this.http.request<T>("GET", path, undefined, { retry: true });
  }

  private async gate(op: OpName, path: string, params: object): Promise<unknown> {
    try {
      return await this.http.request("POST", path, params, { retry: true });
    } catch (e) {
      const r = this.policy.letThrough(op, params as Record<string, unknown>, e);
      if (r) return r;
      throw e;
    }
  }
}
