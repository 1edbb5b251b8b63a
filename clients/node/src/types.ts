// Request and result shapes of the API (docs/api.md), named exactly like the JSON fields.
// Results keep every member the server sends (index signature) so a newer server's additions
// are visible without a client upgrade.

/** A usage: `quantity` for per-unit items, `seconds` (+ `outputs`) for per-second video. */
export interface Usage {
  quantity?: number;
  /** A number with at most 3 decimals, or a string such as "3.03" sent verbatim (exact). */
  seconds?: number | string;
  outputs?: number;
  formats?: number;
}

export interface GateParams extends Usage {
  workspace: string;
  user: string;
  model: string;
  /** Idempotency id; generated (ids.ts: a per-process UUID and a counter) when left out, and reused on every retry. */
  id?: string;
}

export interface ReserveParams extends GateParams {
  ttl_ms?: number;
}

export interface CommitParams extends Usage {
  reservation: string;
}

/** Fields every answer may carry. `fail_open` is set by this client, never by the server. */
export interface Answer {
  /** Set when the client let the call through because genledger could not be reached
   *  (`onUnavailable: "open"`); nothing was recorded by genledger. */
  fail_open?: true;
  [extra: string]: unknown;
}

export interface ChargeResult extends Answer {
  charge: string | null;
  cost: number | null;
  remaining: number | null;
  user_used?: number;
  rev?: number;
  replayed?: boolean;
  overage?: number;
  would_refuse?: string;
}

export interface QuoteResult extends Answer {
  cost?: number;
  affordable?: boolean;
  max_quantity?: number;
  max_seconds?: number;
}

export interface ReserveResult extends Answer {
  reservation: string | null;
  held: number | null;
  remaining: number | null;
  expires_at?: number;
  rev?: number;
  replayed?: boolean;
  would_refuse?: string;
}

export interface CommitResult extends Answer {
  cost: number | null;
  remaining: number | null;
  charge: string | null;
  rev?: number;
  overage?: number;
}

export interface ReleaseResult extends Answer {
  released: number | null;
  remaining: number | null;
  rev?: number;
}

export interface RefundResult extends Answer {
  refunded: number | null;
  remaining: number | null;
  rev?: number;
}

export type OpName = "charge" | "quote" | "reserve" | "commit" | "release" | "refund";

/** One op of `/v1/batch` or of a WebSocket frame. */
export interface BatchOp {
  op: OpName | string;
  seq?: number;
  [field: string]: unknown;
}

/** One result of a batch: the op's `status`, and its result or its `error`. */
export interface BatchResult {
  status: number;
  seq?: number;
  error?: { code: string; message: string; cost?: number; remaining?: number | null };
  [field: string]: unknown;
}

export interface Schedule {
  interval: "none" | "minute" | "hour" | "day" | "week" | "month" | "year";
  anchor: number | string | null;
}

export interface Workspace {
  workspace: string;
  limit: number | null;
  used: number;
  reserved: number;
  remaining: number | null;
  region: string;
  period: number;
  schedule?: Schedule;
  period_start?: number | null;
  period_end?: number | null;
  granted_remaining?: number;
  plan_priority?: number;
  rollover?: { max: number; periods: number } | null;
  overage_mode?: "hard" | "soft" | "shadow";
  overage?: number;
  overage_limit?: number | null;
  pending_limit?: number;
  overdrawn?: number;
  rev?: number;
  [extra: string]: unknown;
}

export interface WorkspaceSettings {
  limit?: number | null;
  limit_change?: "now";
  region?: "global" | "cn";
  period?: { interval?: Schedule["interval"]; anchor?: number | string };
  plan_priority?: number;
  rollover?: { max: number; periods?: number } | null;
  overage_mode?: "hard" | "soft" | "shadow";
  overage_limit?: number | null;
}

export interface Page {
  limit?: number;
  cursor?: string | null;
}

export interface WorkspaceList {
  workspaces: Workspace[];
  next_cursor: string | null;
}

export interface User {
  user: string;
  used: number;
  reserved: number;
  limit: number | null;
  workspace?: string;
  [extra: string]: unknown;
}

export interface UserList {
  users: User[];
  next_cursor: string | null;
}

export interface Grant {
  grant: string;
  amount: number | null;
  remaining: number | null;
  priority: number;
  expires_at: number | null;
  source: string;
  created_at: number | null;
  ends_with_period: boolean;
  replayed?: boolean;
  rev?: number;
  [extra: string]: unknown;
}

export interface GrantParams {
  amount: number;
  priority?: number;
  expires_at?: number | string | null;
  source?: "topup" | "promo" | "adjustment";
  /** Idempotency id; generated when left out, reused on retries. */
  id?: string;
}

// --- issue 15 (events): shapes from the issue text; routes may not exist on every server ---

export type UsageGroup = "user" | "model" | "category" | "day";

export interface UsageQuery {
  period?: "current" | "previous" | number;
  /** One key, or two (`["user","model"]` or `"user,model"`). */
  group_by: UsageGroup | UsageGroup[] | string;
}

export interface UsageReport {
  workspace: string;
  period: number | string;
  period_start: number | null;
  period_end: number | null;
  group_by: string[];
  rows: Array<{ used: number; charges: number; [key: string]: unknown }>;
  total: { used: number; charges: number };
  [extra: string]: unknown;
}

export interface AlertRule {
  name: string;
  when: "used_percent" | "remaining";
  at: number;
  state?: "armed" | "fired";
  [extra: string]: unknown;
}

export interface TokenParams {
  role: "read" | "gate" | "admin";
  workspaces?: string[] | null;
  expires_at?: number | string | null;
  name?: string;
}

export interface TokenInfo {
  id: string;
  /** The secret: present only in the answer to `tokens.create`. */
  token?: string;
  role: string;
  workspaces: string[] | null;
  expires_at?: number | null;
  name?: string;
  [extra: string]: unknown;
}

export interface WebhookParams {
  url: string;
  events: string[];
  workspaces?: string[] | null;
  secret: string;
}

export interface Webhook {
  webhook: string;
  [extra: string]: unknown;
}

/** A frame pushed on a subscription (`"event"`: balance, alert, depleted, period_reset, ...),
 *  or the client's own `"subscribed"` record carrying the state answered to `subscribe`. */
export interface LedgerEvent {
  event: "balance" | "alert" | "depleted" | "period_reset" | "subscribed" | string;
  workspace: string;
  rev?: number;
  limit?: number | null;
  used?: number;
  reserved?: number;
  remaining?: number | null;
  period?: number;
  state?: Workspace | string;
  [extra: string]: unknown;
}
