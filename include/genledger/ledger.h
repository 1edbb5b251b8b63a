// The in-memory ledger: workspaces, their users, and check-and-debit operations.
//
// Concurrency model (docs/ledger.md): workspaces are spread over kShardCount shards by a hash
// of their id. Each shard owns its workspaces, users, open reservations, recent charges and
// idempotency entries, guarded by one short per-shard lock. Every mutation checks, applies and
// (with durability) appends its log record while holding only its shard, so the log order is a
// serial order of what the ledger did. All public methods are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/catalog.h"
#include "genledger/clock.h"
#include "genledger/events.h"
#include "genledger/grants.h"
#include "genledger/period.h"
#include "genledger/status.h"
#include "genledger/tokens.h"
#include "genledger/usage.h"
#include "genledger/webhooks.h"

namespace genledger {

// A limit value meaning "no limit".
inline constexpr uint64_t kUnlimited = UINT64_MAX;
// Largest finite limit, top-up or balance we accept: keeps every sum far from overflow.
inline constexpr uint64_t kMaxLimit = 1'000'000'000'000'000;   // 10^15 generations

// The largest catalog a ledger takes (Ledger::ReplaceCatalog), measured as Catalog::ToJson: a
// catalog is logged whole in one WAL record (docs/wal-records.md, type 20), which must fit a frame.
inline constexpr size_t kMaxCatalogJsonBytes = 512 * 1024;

// Ids (workspace, user, idempotency) are 1-128 bytes of [A-Za-z0-9._:@-].
inline constexpr size_t kMaxIdLength = 128;
bool IsValidId(std::string_view id) noexcept;

struct LedgerOptions {
  // Time source; must outlive the ledger. Defaults to the system clock.
  const Clock* clock = nullptr;
  // Reservation TTL when the request gives none, and the largest accepted.
  uint64_t default_ttl_ms = 10 * 60 * 1000;
  uint64_t max_ttl_ms = 24 * 60 * 60 * 1000;
  // Idempotency: an id is remembered for `idempotency_window_ms`. `idempotency_capacity` is a
  // global budget: any workspace may use nearly all of it (each shard keeps a small floor, the
  // rest is one pool every shard draws on). An id is honoured for its whole window unless the
  // global capacity is exhausted; then the oldest id of the inserting shard is forgotten early
  // (counted: LedgerTotals::idempotency_evicted_early, and logged once a minute).
  uint64_t idempotency_window_ms = 24 * 60 * 60 * 1000;
  uint64_t idempotency_capacity = 1 << 19;
  // Refunds: a charge can be refunded within `refund_window_ms` (checked to the second). The
  // refundable charges kept are a global budget of `refund_capacity`, shared like the
  // idempotency capacity (early evictions: LedgerTotals::refund_evicted_early).
  uint64_t refund_window_ms = 60 * 60 * 1000;
  uint64_t refund_capacity = 1 << 21;
  // Ceilings that bound memory: open reservations, workspaces, users per workspace, users in
  // all (a charge, reserve or user-limit change that would create a user past it is refused
  // with capacity_exhausted and changes nothing).
  uint64_t max_open_reservations = 1 << 22;
  uint64_t max_workspaces = 50'000'000;
  uint64_t max_users_per_workspace = 1'000'000;
  uint64_t max_users = 10'000'000;
  // The event outboxes' total (docs/webhooks.md, "The outbox and its ceiling"): events a webhook
  // has not delivered yet are kept past each shard's last 1,024 until this many bytes; past it
  // the oldest go (the webhooks that needed them count them as dropped). --webhook-outbox-bytes.
  uint64_t event_outbox_bytes = 64ull << 20;
  // Usage history (docs/ledger.md, "Usage history"): the bytes every workspace's history may take
  // together. Past it, a charge whose (user, model, day) row does not exist yet is counted in its
  // period's "(other)" row (LedgerTotals::usage_history_folded). 0: history off (charges are
  // logged without their model, WAL type 12, and Ledger::GetUsage answers from no rows).
  uint64_t usage_history_bytes = uint64_t(1) << 30;
};

// --- Requests and results --------------------------------------------------------------

struct ChargeRequest {
  std::string_view workspace;
  std::string_view user;
  // From one of the ledger's catalogs (CurrentCatalog), kept alive by the caller until the call
  // returns; an item of a catalog replaced meanwhile is still priced as that catalog says.
  const CatalogItem* item = nullptr;
  Usage usage;
  std::string_view idempotency_id;     // empty: no idempotency
};

// Outcome of charge/quote. On refusal `status` says why and nothing changed; for
// insufficient_generations / user_limit_exceeded, `cost` and `remaining` are filled too.
struct ChargeResult {
  Status status;
  uint64_t charge_id = 0;     // ok only; pass to Refund
  uint64_t cost = 0;
  uint64_t remaining = 0;     // workspace remaining after the debit; kUnlimited if no limit
  uint64_t user_used = 0;     // the user's used after the debit
  uint64_t overage = 0;       // soft/shadow: the part of the cost no source covered
  Code would_refuse = Code::kOk;   // shadow: what hard mode would have refused
  bool replayed = false;      // an idempotent retry: the original result, nothing debited
  // The workspace's revision after the change (docs/events.md, "Revisions"); for a replay, its
  // revision now. Quote: the revision it read.
  uint64_t rev = 0;
  // Quote only: whether `cost` would be admitted right now by the workspace in its overage mode
  // (shadow: what hard mode would say) and by the user's cap; the largest usage that would be
  // (units, or for a per-second item milliseconds of each of the usage's outputs); and what the
  // user's cap has left (kUnlimited: no cap, or no such user yet).
  bool affordable = false;
  uint64_t max_usage = 0;
  uint64_t user_remaining = kUnlimited;
};

struct ReserveRequest {
  ChargeRequest charge;
  uint64_t ttl_ms = 0;        // 0: the default TTL
};

struct ReserveResult {
  Status status;
  uint64_t reservation_id = 0;
  uint64_t held = 0;          // also filled on 402 refusals (the cost that did not fit)
  uint64_t remaining = 0;
  uint64_t expires_at_ms = 0;
  Code would_refuse = Code::kOk;   // shadow: what hard mode would have refused
  bool replayed = false;
  uint64_t rev = 0;           // the workspace's revision after the change
};

struct CommitResult {
  Status status;
  uint64_t cost = 0;          // what was charged
  uint64_t remaining = 0;
  uint64_t charge_id = 0;     // the charge the commit became (refundable like any charge)
  uint64_t overage = 0;       // soft/shadow: the part of the cost no source covered
  uint64_t rev = 0;           // the workspace's revision after the change
};

struct ReleaseResult {
  Status status;
  uint64_t released = 0;
  uint64_t remaining = 0;
  uint64_t rev = 0;
};

struct RefundResult {
  Status status;
  uint64_t refunded = 0;
  uint64_t remaining = 0;
  uint64_t rev = 0;
};

struct WorkspaceInfo {
  std::string workspace;
  uint64_t limit = kUnlimited;      // the plan allowance of a period (the admin's limit)
  uint64_t base_limit = kUnlimited; // the same (kept for older clients)
  uint64_t topup = 0;               // remaining of the top-up grants ending with this period
  uint64_t used = 0;                // this period, from every source
  uint64_t reserved = 0;
  uint64_t remaining = kUnlimited;  // plan left + grants' remaining - reserved, >= 0; kUnlimited if no limit
  uint64_t granted_remaining = 0;   // grants' remaining
  Region region = Region::kGlobal;
  uint64_t period = 1;
  uint64_t users = 0;
  Interval interval = Interval::kNone;
  uint64_t anchor_ms = 0;
  uint64_t period_start_ms = 0;     // 0 for interval none until a schedule is set
  uint64_t period_end_ms = UINT64_MAX;   // UINT64_MAX: none
  uint16_t plan_priority = kDefaultGrantPriority;
  RolloverSpec rollover;
  OverageMode overage_mode = OverageMode::kHard;
  uint64_t overage = 0;
  uint64_t overage_limit = kUnlimited;
  std::optional<uint64_t> pending_limit;   // applies at the next boundary
  // Generations committed beyond what is spendable: a grant expired under open holds (hard mode)
  // or soft/shadow overage. 0 normally.
  uint64_t overdrawn = 0;
  // + 1 per change of the workspace (every WAL record naming it): docs/events.md, "Revisions".
  uint64_t rev = 0;
};

// A partial change of a workspace's settings: what is given changes, the rest keeps its value.
// A workspace created by the change starts unlimited and global for what is not given.
struct WorkspaceUpdate {
  std::optional<uint64_t> limit;    // kUnlimited or <= kMaxLimit
  std::optional<Region> region;
  // A lower limit applies at the next boundary unless limit_now; a higher one applies now.
  bool limit_now = false;
  std::optional<Interval> interval; // with anchor_ms: the period schedule
  std::optional<uint64_t> anchor_ms;   // <= kMaxTimeMs; default: now when an interval is given
  std::optional<uint16_t> plan_priority;
  std::optional<RolloverSpec> rollover;
  std::optional<OverageMode> overage_mode;
  std::optional<uint64_t> overage_limit;   // kUnlimited: none
};

struct UserInfo {
  std::string user;
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t limit = kUnlimited;
  uint64_t rev = 0;   // SetUserLimit: the workspace's revision after the change
};

// One page of workspaces (Ledger::ListWorkspaces).
struct WorkspacePage {
  std::vector<WorkspaceInfo> workspaces;
  std::string next_cursor;   // empty on the last page
};

// Totals over the whole ledger (for metrics and recovery checks).
struct LedgerTotals {
  uint64_t workspaces = 0;
  uint64_t users = 0;
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t open_reservations = 0;
  uint64_t idempotency_entries = 0;
  uint64_t limits = 0;                // sum of this period's allowances of capped workspaces
  uint64_t unlimited_workspaces = 0;
  // Entries forgotten inside their window because the global capacity was exhausted, since start.
  uint64_t idempotency_evicted_early = 0;
  uint64_t refund_evicted_early = 0;
  // Charges and holds a shadow-mode workspace let through that hard mode would have refused,
  // since start, by the code hard mode would have answered.
  uint64_t shadow_would_refuse_insufficient = 0;
  uint64_t shadow_would_refuse_user_limit = 0;
  // Usage history: the bytes its rows take now, and the charges counted in an "(other)" row
  // because --usage-history-bytes was reached, since start.
  uint64_t usage_history_bytes = 0;
  uint64_t usage_history_folded = 0;
};

// One page of a workspace's users (Ledger::ListUsers).
struct UserPage {
  std::vector<UserInfo> users;
  std::string next_cursor;   // empty on the last page
};

class Ledger {
 public:
  // Requires: catalog non-null; options' ceilings positive. `catalog` is the start-up catalog,
  // version 1, until replaced (ReplaceCatalog, or recovery restoring the data directory's).
  Ledger(std::shared_ptr<const Catalog> catalog, LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const LedgerOptions& options() const noexcept;

  // --- The catalog (docs/pricing.md, "Changing the catalog while running") ---

  // The catalog requests are priced with now, kept alive by the returned pointer however often
  // it is replaced meanwhile (resolve a request's items from it and keep it until the request's
  // ledger calls return). *version (optional) receives its version, read consistently with it.
  // Takes a short mutex and copies a shared_ptr: a server caches the result and reads it again
  // only when CatalogVersion() changes. Thread-safe.
  std::shared_ptr<const Catalog> CurrentCatalog(uint64_t* version = nullptr) const;
  // The current catalog's version: 1 for the start-up catalog, + 1 per replacement; recovery
  // restores the data directory's. Thread-safe, wait-free (one atomic load).
  uint64_t CatalogVersion() const noexcept;
  // Makes `catalog` the current one under the next version and, when the ledger logs, appends it
  // whole to the write-ahead log (record type 20), so that recovery restores it. Requests that
  // read the catalog after the call returns are priced with it; holds keep the price they were
  // reserved at; idempotency entries name models by id, so a retry that names the same model id
  // is still a replay under the new catalog. Returns the new version. Refusals (nothing changes):
  // invalid_argument (null, or more than kMaxCatalogJsonBytes as JSON), overloaded (the log is
  // behind). Validating the catalog is Catalog::FromJson's job: every Catalog is valid.
  Result<uint64_t> ReplaceCatalog(std::shared_ptr<const Catalog> catalog);

  // --- Minted API tokens (docs/api.md, "Tokens"; src/ledger/ledger_tokens.cc) ---

  // Adds a token (WAL type 26 when logging) under the next token id, created now (the ledger's
  // clock). Refusals, nothing changed: invalid_argument (role, name, workspace list: the message
  // names the field), capacity_exhausted (kMaxTokens tokens already), overloaded (the log is
  // behind). A digest already in the table is invalid_argument (only a reused secret can do it).
  Result<TokenInfo> AddToken(TokenSpec spec);
  // Removes token `id` (WAL type 27 when logging): FindToken no longer finds it once this
  // returns. not_found when there is no such token; overloaded as above.
  Status RevokeToken(uint64_t id);
  // Every token, by increasing id. Thread-safe.
  std::vector<TokenInfo> ListTokens() const;
  // The token with this digest, or null. A short mutex of its own (never a shard lock), so
  // authenticating a request does not contend with shard 0's traffic. Thread-safe.
  std::shared_ptr<const TokenInfo> FindToken(const TokenDigest& digest) const;
  // For a scoped token's checks of ops that name no workspace: the workspace of an open
  // reservation (reservation=true) or of a charge still refundable (false) by its id; empty
  // when there is none (the op then fails on its own with unknown_reservation/unknown_charge).
  std::string WorkspaceOfId(uint64_t id, bool reservation) const;
  // The ledger's clock, now (token expiry is judged by it).
  uint64_t NowMs() const noexcept;

  // --- Gate operations (hot path) ---

  // Check-and-debit: if the workspace and the user's cap can both afford the cost, debits
  // both in one step; otherwise debits nothing. Refusals: invalid_id, invalid_quantity,
  // unknown_workspace, model_not_available_in_region, insufficient_generations,
  // user_limit_exceeded, idempotency_conflict, capacity_exhausted. Creates the user on first use.
  ChargeResult Charge(const ChargeRequest& req);

  // Charges every request in order, as if by Charge one at a time; results[i] answers reqs[i].
  // Requires results.size() >= reqs.size(). Faster than single calls for bulk frames.
  void ChargeBatch(std::span<const ChargeRequest> reqs, std::span<ChargeResult> results);

  // What Charge would cost and whether it is allowed by item and region; debits nothing and
  // does not create users. Fills status (ok / invalid_* / unknown_* / region), cost, remaining,
  // and affordable / max_usage / user_remaining (ChargeResult). A usage with neither quantity nor
  // seconds asks only for the largest affordable usage (cost and affordable then 0 and false);
  // its other fields (outputs, formats) are checked as for a charge. A period boundary or grant
  // expiry that is due is applied first, as a charge would (a WAL record), so the answer is the
  // one a charge at the same moment would meet.
  ChargeResult Quote(const ChargeRequest& req) const;

  // Holds the cost until Commit/Release or until the TTL runs out (then released by
  // ExpireReservations). Same checks and refusals as Charge, plus invalid_argument for a TTL
  // above max_ttl_ms and too_many_reservations at the ceiling.
  ReserveResult Reserve(const ReserveRequest& req);

  // Charges the actual cost of a held reservation and frees the rest. `actual` empty: the
  // whole hold. The actual cost is priced at the unit and rate the hold was reserved at,
  // whatever the catalog says now. Refusals: unknown_reservation, reservation_settled (already
  // committed, released or expired), invalid_quantity, commit_exceeds_hold (actual cost > held;
  // the hold stays open), unknown_model (a usage for a hold recovered without its price whose
  // model the catalog no longer has: docs/wal-records.md, type 7), internal (an inconsistency,
  // logged). Every refusal changes nothing but a lazy expiry.
  CommitResult Commit(uint64_t reservation_id, std::optional<Usage> actual = std::nullopt);

  // Frees a held reservation. Refusals: unknown_reservation, reservation_settled.
  ReleaseResult Release(uint64_t reservation_id);

  // Gives back a charge's cost, at most once: to its workspace's and user's used when it was made
  // in the current period; a charge made before a period reset (its cost left used with the old
  // period) goes to the current period's allowance instead, as a top-up that ends with the period
  // (nothing for an unlimited workspace). Refusals: unknown_charge (never made or outside the
  // refund window/capacity), already_refunded, internal (the charge's cost is not in used: an
  // inconsistency, logged; nothing changes).
  RefundResult Refund(uint64_t charge_id);

  // Applies every rollover and grant expiry due at the clock's now (workspaces nobody touched),
  // releases every hold whose TTL has run out, and returns how many holds. Also forgets
  // the idempotency ids and refundable charges past their windows, and gives back to the shared
  // budgets what each shard no longer needs (the periodic sweep).
  uint64_t ExpireReservations();

  // --- Admin ---

  // Creates the workspace, or updates its limit and region. limit: kUnlimited or <= kMaxLimit.
  // Lowering a limit below what is used is allowed (remaining becomes 0).
  Result<WorkspaceInfo> UpsertWorkspace(std::string_view workspace, uint64_t limit, Region region);
  // UpsertWorkspace for the fields `update` gives, the others kept: read and written under one
  // shard lock, so concurrent partial updates (one the limit, one the region) never undo each
  // other. Same refusals as UpsertWorkspace.
  Result<WorkspaceInfo> UpdateWorkspace(std::string_view workspace, const WorkspaceUpdate& update);
  // Sets (kUnlimited: clears) a user's cap, creating the user if needed.
  Result<UserInfo> SetUserLimit(std::string_view workspace, std::string_view user, uint64_t limit);
  // Adds `amount` (1..kMaxLimit) to this period's allowance. invalid_argument if unlimited.
  Result<WorkspaceInfo> TopUp(std::string_view workspace, uint64_t amount);
  // Starts a new period: used -> 0 for the workspace and its users, grants ending with the
  // period dropped, a pending limit applied, period+1; the schedule (anchor) is kept. Open holds
  // are kept.
  Result<WorkspaceInfo> ResetPeriod(std::string_view workspace);

  // Adds a grant. Refusals: unknown_workspace, invalid_argument (amount, priority, an expiry
  // not in the future, source), capacity_exhausted (kMaxGrantsPerWorkspace live grants),
  // idempotency_conflict (the id names a different grant).
  Result<GrantInfo> AddGrant(std::string_view workspace, const GrantRequest& req);
  // The plan allowance (grant 0), then every live grant, in burn order.
  Result<std::vector<GrantInfo>> ListGrants(std::string_view workspace);
  // Voids what is left of a grant. Refusals: unknown_workspace, unknown_grant.
  Result<GrantInfo> VoidGrant(std::string_view workspace, uint32_t grant);

  // Replaces the workspace's alerts (at most kMaxAlertsPerWorkspace; an empty set removes them)
  // and logs them (WAL type 22). Every alert starts armed and is evaluated at once: one whose
  // condition already holds fires (an event). Returns the alerts with their state. Refusals,
  // nothing changed: invalid_id, unknown_workspace, invalid_argument (ValidateAlerts),
  // overloaded (the log is behind).
  Result<std::vector<AlertInfo>> SetAlerts(std::string_view workspace, const std::vector<AlertSpec>& alerts);
  // The workspace's alerts, in the order set, with their state this period.
  Result<std::vector<AlertInfo>> GetAlerts(std::string_view workspace) const;

  // Events of `shard` with seq >= from_seq, at most `max`, appended to out; returns the seq to
  // read from next. *first_kept (optional) receives the oldest seq still kept (events below it
  // were pruned: a reader that lags by more has missed them). Thread-safe (the shard's lock).
  // Events are derived from the ledger's changes (docs/events.md); after a restart the same
  // changes give the same events with the same ids.
  uint64_t ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                      uint64_t* first_kept = nullptr) const;
  // Lets `shard`'s outbox prune its events below `seq` beyond the last kEventsKept (the webhooks'
  // slowest cursor there; UINT64_MAX: keep only the last kEventsKept). Takes effect at the
  // shard's next event. Thread-safe (the shard's lock); a shard out of range is ignored.
  void KeepEventsFrom(uint32_t shard, uint64_t seq);

  // --- Reads ---
  Result<WorkspaceInfo> GetWorkspace(std::string_view workspace) const;
  // Up to `limit` users (1..kMaxUsersPage) of the workspace, sorted by used (descending), then
  // id, starting after `cursor` (empty: from the first). Pass the page's next_cursor to get the
  // next page; a user whose used changes between two pages may be listed twice or skipped.
  // Costs O(users + limit log limit) under the shard lock and copies only the page.
  // Errors: invalid_id, unknown_workspace, invalid_argument (limit out of range, bad cursor).
  static constexpr size_t kMaxUsersPage = 1000;
  Result<UserPage> ListUsers(std::string_view workspace, size_t limit, std::string_view cursor = {}) const;
  // Up to `limit` (1..kMaxWorkspacesPage) workspaces whose id starts with `prefix`, by id
  // (bytewise ascending), after `cursor` (empty: from the first; else a page's next_cursor, which
  // is the last id of that page). `visible` (optional) leaves out the ids it refuses (a token's
  // scope). Costs one pass over every workspace (each shard locked in turn), then one read per
  // listed workspace: for an operator's page or a client's listing, not for the gate.
  // Errors: invalid_argument (limit, prefix or cursor out of the rules).
  static constexpr size_t kMaxWorkspacesPage = 1000;
  Result<WorkspacePage> ListWorkspaces(std::string_view prefix, size_t limit, std::string_view cursor = {},
                                       const std::function<bool(std::string_view)>& visible = {}) const;
  // A workspace's usage in one period (the current one, or one of the previous 3) grouped by
  // the query's dimensions. Errors: invalid_id, unknown_workspace, invalid_argument (group_by),
  // not_found (a period that is not kept: before the previous 3, or after the current one).
  // O(rows of that period) under the shard lock.
  Result<UsageReport> GetUsage(std::string_view workspace, const UsageQuery& query) const;
  // Sums of per-shard running totals: O(shards), not O(workspaces).
  LedgerTotals Totals() const;
  // Calls f once per workspace, shard by shard (each shard's in creation order). Copies one
  // shard's workspaces under its lock and calls f outside it, so f may call into the ledger.
  // O(workspaces): for offline tools (genledger-inspect), not for a request path.
  void ForEachWorkspace(const std::function<void(const WorkspaceInfo&)>& f) const;

  // --- Checks ---

  // A hash of the whole observable state at the clock's now, everything replay and snapshot
  // loading rebuild: balances, plans and grants, users, holds, charges and idempotency entries
  // still inside their windows, revisions, alerts and their state, each shard's event outbox
  // (its last kEventsKept events), usage history, the webhook registry and cursors, minted
  // tokens, and id counters. Not the catalog (compare CurrentCatalog()->ToJson() and
  // CatalogVersion()), so ledgers started with different catalogs can be compared. Equal ledgers
  // have equal digests; entries past their windows are left out, so a ledger whose sweep
  // (ExpireReservations) forgot them and one that still holds them (replayed, not yet swept)
  // are equal. O(state): for tests and tools, never a request path.
  uint64_t StateDigest() const;

  // Checks every invariant (used + reserved <= limit where capped at the last limit change,
  // users' used sums to the workspace's used, users' reserved and open holds sum to the
  // workspace's reserved, the over-limit user counts and the shards' running totals equal a
  // walk of every workspace). Takes every shard lock in turn. For tests and recovery.
  Status CheckInvariants() const;

  // --- Webhooks (docs/webhooks.md; WAL types 23-25, docs/wal-records.md "Webhook records") ---
  // The registry is shard-0 state; each shard keeps, per webhook, its delivery cursor. The
  // server's delivery engine (src/webhook/) reads them; nothing here sends anything.

  // Registers a webhook (WAL type 23) whose cursors are every shard's next event seq: it gets
  // the events from now on. `spec.number` is ignored (the next number is taken).
  // Errors: kInvalidArgument (limits: docs/webhooks.md), kCapacityExhausted (32 webhooks),
  // kOverloaded (the WAL is behind).
  Result<WebhookInfo> AddWebhook(WebhookInfo spec);
  // Removes a webhook (WAL type 24). kNotFound if it is not registered.
  Status DeleteWebhook(uint32_t number);
  // The registered webhooks, by number, secrets included (the caller must not show them).
  std::vector<WebhookInfo> ListWebhooks() const;
  // The webhook's cursor on every shard (ShardCount() entries; empty if not registered).
  std::vector<WebhookCursor> WebhookCursors(uint32_t number) const;
  // Every event of `shard` below next_seq is done for `number` (WAL type 25; the cursor only
  // grows). given_up / dropped: how many of this advance were given up / dropped.
  // kNotFound (nothing logged) if the webhook is not registered; kInvalidArgument for a bad shard.
  Status RecordWebhookProgress(uint32_t number, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                               uint64_t dropped);

  // --- Snapshots (payload layout: docs/snapshot-format.md, "Section payloads") ---

  // The fixed number of shards; a snapshot records it and is only loadable with the same count.
  static uint32_t ShardCount() noexcept;

 private:
  // The write-ahead log and snapshot plumbing (src/ledger/ledger_log.h): only the durability
  // layer, the ledger's own files and tests reach it, the way LevelDB's WriteBatchInternal
  // reaches WriteBatch.
  friend class LedgerLog;

  // Opaque state, defined in src/ledger/ledger_impl.h.
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace genledger
