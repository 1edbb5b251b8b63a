// The in-memory ledger: workspaces, their users, and check-and-debit operations.
//
// Concurrency model (docs/ledger.md): workspaces are spread over kShardCount shards by a hash
// of their id. Each shard owns its workspaces, users, open reservations, recent charges and
// idempotency entries, guarded by one short per-shard lock. Every mutation checks, applies and
// (with durability) appends its log record while holding only its shard, so the log order is a
// serial order of what the ledger did. All public methods are thread-safe.
#pragma once

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
#include "genledger/status.h"

namespace genledger {

// A limit value meaning "no limit".
inline constexpr uint64_t kUnlimited = UINT64_MAX;
// Largest finite limit, top-up or balance we accept: keeps every sum far from overflow.
inline constexpr uint64_t kMaxLimit = 1'000'000'000'000'000;   // 10^15 generations

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
};

// --- Requests and results --------------------------------------------------------------

struct ChargeRequest {
  std::string_view workspace;
  std::string_view user;
  const CatalogItem* item = nullptr;   // from the ledger's catalog
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
  bool replayed = false;      // an idempotent retry: the original result, nothing debited
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
  bool replayed = false;
};

struct CommitResult {
  Status status;
  uint64_t cost = 0;          // what was charged
  uint64_t remaining = 0;
  uint64_t charge_id = 0;     // the charge the commit became (refundable like any charge)
};

struct ReleaseResult {
  Status status;
  uint64_t released = 0;
  uint64_t remaining = 0;
};

struct RefundResult {
  Status status;
  uint64_t refunded = 0;
  uint64_t remaining = 0;
};

struct WorkspaceInfo {
  std::string workspace;
  uint64_t limit = kUnlimited;      // this period's allowance: base limit + top-ups
  uint64_t base_limit = kUnlimited; // the limit set by the admin, restored by Reset
  uint64_t topup = 0;               // added to this period's allowance
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t remaining = kUnlimited;  // max(0, limit - used - reserved), kUnlimited if no limit
  Region region = Region::kGlobal;
  uint64_t period = 1;
  uint64_t users = 0;
};

// A partial change of a workspace's settings: what is given changes, the rest keeps its value.
// A workspace created by the change starts unlimited and global for what is not given.
struct WorkspaceUpdate {
  std::optional<uint64_t> limit;    // kUnlimited or <= kMaxLimit
  std::optional<Region> region;
};

struct UserInfo {
  std::string user;
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t limit = kUnlimited;
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
};

// One page of a workspace's users (Ledger::ListUsers).
struct UserPage {
  std::vector<UserInfo> users;
  std::string next_cursor;   // empty on the last page
};

class Ledger {
 public:
  // Requires: catalog non-null; options' ceilings positive. The ledger keeps the catalog alive.
  Ledger(std::shared_ptr<const Catalog> catalog, LedgerOptions options = {});
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  const Catalog& catalog() const noexcept;
  const LedgerOptions& options() const noexcept;

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
  // does not create users. Fills status (ok / invalid_* / unknown_* / region) and cost.
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

  // Releases every hold whose TTL has run out at the clock's now. Returns how many. Also forgets
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
  // Starts a new period: used -> 0 for the workspace and its users, top-up cleared, period+1.
  // Open holds are kept.
  Result<WorkspaceInfo> ResetPeriod(std::string_view workspace);

  // --- Reads ---
  Result<WorkspaceInfo> GetWorkspace(std::string_view workspace) const;
  // Up to `limit` users (1..kMaxUsersPage) of the workspace, sorted by used (descending), then
  // id, starting after `cursor` (empty: from the first). Pass the page's next_cursor to get the
  // next page; a user whose used changes between two pages may be listed twice or skipped.
  // Costs O(users + limit log limit) under the shard lock and copies only the page.
  // Errors: invalid_id, unknown_workspace, invalid_argument (limit out of range, bad cursor).
  static constexpr size_t kMaxUsersPage = 1000;
  Result<UserPage> ListUsers(std::string_view workspace, size_t limit, std::string_view cursor = {}) const;
  // Sums of per-shard running totals: O(shards), not O(workspaces).
  LedgerTotals Totals() const;
  // Calls f once per workspace, shard by shard (each shard's in creation order). Copies one
  // shard's workspaces under its lock and calls f outside it, so f may call into the ledger.
  // O(workspaces): for offline tools (genledger-inspect), not for a request path.
  void ForEachWorkspace(const std::function<void(const WorkspaceInfo&)>& f) const;

  // --- Checks ---

  // A hash of the whole observable state at the clock's now: balances, users, holds, charges
  // and idempotency entries still inside their windows, and id counters. Equal ledgers have
  // equal digests; entries past their windows are left out, so a ledger whose sweep
  // (ExpireReservations) forgot them and one that still holds them (replayed, not yet swept)
  // are equal.
  uint64_t StateDigest() const;

  // Checks every invariant (used + reserved <= limit where capped at the last limit change,
  // users' used sums to the workspace's used, users' reserved and open holds sum to the
  // workspace's reserved, the over-limit user counts and the shards' running totals equal a
  // walk of every workspace). Takes every shard lock in turn. For tests and recovery.
  Status CheckInvariants() const;

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
