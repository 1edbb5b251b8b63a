// Private layout of one ledger shard. Everything in a Shard is guarded by Shard::mu.
#pragma once

#include <cstdint>
#include <array>
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/container/small_vector.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "genledger/catalog.h"
#include "genledger/ledger.h"
#include "genledger/period.h"
#include "ledger/alerts.h"
#include "ledger/idempotency_table.h"
#include "ledger/log_record.h"
#include "ledger/recent_charges.h"
#include "ledger/string_key.h"

namespace genledger::ledger {

// Shard count is part of every charge and reservation id (id = seq << kShardBits | shard), so it
// is fixed: changing it would make ids issued before a restart point at the wrong shard.
// 256 shards: 128 per core here, far more than lock contention needs, and few enough that every
// shard's header stays in cache (4,096 fat shards measured slower: the shard array alone
// outgrew this machine's cache).
inline constexpr unsigned kShardBits = 8;
inline constexpr uint32_t kShardCount = 1u << kShardBits;
inline constexpr uint64_t MakeId(uint64_t seq, uint32_t shard) { return (seq << kShardBits) | shard; }
inline constexpr uint32_t IdShard(uint64_t id) { return uint32_t(id & (kShardCount - 1)); }
inline constexpr uint64_t IdSeq(uint64_t id) { return id >> kShardBits; }

class UsageHistory;   // usage_history.h
// Workspace::history's deleter (usage_history.cc): shard.h holds the pointer without the type.
struct UsageHistoryDeleter {
  void operator()(UsageHistory* h) const noexcept;
};

// Users live inline in their workspace: most workspaces have a handful, found by a short scan
// of tags that sit in the workspace's second cache line.
inline constexpr size_t kUserScanMax = 6;

struct User {
  std::string id;
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t limit = kUnlimited;
};

// A cheap fingerprint of a user id, kept inline in the workspace so finding a user touches one
// cache line instead of every User's string. A false match only costs one string comparison.
inline uint16_t UserTag(std::string_view id) noexcept {
  return uint16_t(std::hash<std::string_view>{}(id) >> 48);
}

// A grant: generations added on top of the plan allowance (docs/ledger.md, "Subscriptions").
struct Grant {
  uint32_t number = 0;        // per workspace, 1, 2, ... ("gr_<number>")
  uint8_t source = 0;         // GrantSource
  uint8_t flags = 0;          // kGrantEndsWithPeriod
  uint16_t priority = 100;
  uint64_t amount = 0;
  uint64_t remaining = 0;
  uint64_t expires_at_ms = 0; // 0: never (a grant ending with the period also goes at the rollover)
  uint64_t created_ms = 0;
};
inline constexpr uint8_t kGrantEndsWithPeriod = 1;

// "No end": period_end_ms of interval none, and Workspace::next_event_ms with nothing due.
inline constexpr uint64_t kNoEnd = UINT64_MAX;
// Plan::pending_limit when no limit change is scheduled (kUnlimited is a valid pending limit).
inline constexpr uint64_t kNoPending = UINT64_MAX - 1;

// A workspace's subscription state beyond the plain allowance: allocated only for workspaces that
// have a period schedule, grants, a rollover or overage setting, or a pending limit, so that a
// workspace without any costs what it did before subscriptions (one pointer).
struct Plan {
  Interval interval = Interval::kNone;
  uint8_t overage_mode = 0;            // OverageMode
  uint16_t plan_priority = kDefaultGrantPriority;
  uint32_t rollover_periods = 0;
  uint32_t next_grant = 1;
  uint64_t anchor_ms = 0;
  uint64_t period_start_ms = 0;
  uint64_t period_end_ms = kNoEnd;
  uint64_t rollover_max = 0;           // 0: no rollover
  uint64_t overage_limit = kUnlimited;
  uint64_t pending_limit = kNoPending;
  uint64_t overage = 0;                // this period's soft/shadow overage
  uint64_t grant_used = 0;             // the part of Workspace::used drawn from grants this period
  std::vector<Grant> grants;           // live grants, in burn order (plan.cc, GrantBefore)
};

// Laid out for the charge path, which is bound by memory latency: everything a charge reads is
// in the first two cache lines (id and balances; then users, tags, index, region, period).
struct alignas(64) Workspace {
  // Line 1.
  std::string id;
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t base_limit = kUnlimited;
  // The first time something is due without any call: the period's end or a grant's expiry
  // (kNoEnd: nothing). An operation at or after it applies what is due first (Advance).
  uint64_t next_event_ms = kNoEnd;
  // Line 2.
  std::vector<User> users;
  uint64_t period = 1;
  uint32_t index = 0;              // position in Shard::workspaces; stable for the ledger's life
  Region region = Region::kGlobal;
  bool limit_lowered = false;      // an admin change left used + reserved above the limit
  // Nonzero when a charge cannot take the plain path (plan-only, hard mode): the workspace has
  // grants, a soft or shadow overage mode, or used drawn from grants this period. Kept by
  // RefreshPlanState; it sits in padding, so the plain path reads no extra line.
  uint8_t slow = 0;
  // Built-in events' state (alerts.h: kDepletedFired, kPeriodResetPending), in padding: the
  // charge path tests it against remaining == 0 (ledger_events.h, EvaluateEvents).
  uint8_t event_flags = 0;
  // Users whose used + reserved is above their own limit (an admin lowered it): kept as a count
  // so an admin change need not rescan every user to know whether any is over (OverLimit).
  uint32_t over_limit_users = 0;
  // UserTag of users[i], for i < kUserScanMax. Written under the shard lock; also read without
  // it (through atomic_ref) by ChargeBatch's prefetching, which only uses them as hints.
  std::array<uint16_t, kUserScanMax> user_tags{};
  // users.data(), published for the same lock-free prefetching (a stale value is harmless:
  // prefetching never faults).
  std::atomic<const User*> users_hint{nullptr};
  // Line 3: built once a workspace has more than kUserScanMax users.
  std::unique_ptr<StringMap<uint32_t>> user_index;
  std::unique_ptr<Plan> plan;   // subscription state, when there is any
  // The workspace's revision: + 1 for every WAL record that names it (docs/events.md,
  // "Revisions"), live and in replay alike, so it is the same after a restart. On line 3: a
  // charge now writes three lines of its workspace (measured in bench/RESULTS.md).
  uint64_t rev = 0;
  // Configured alerts and their state (docs/events.md, "Alerts"), when there are any.
  std::unique_ptr<AlertSet, AlertSetDeleter> alerts;
  // Usage by user, model and day for this period and the previous 3 (usage_history.h): allocated
  // by the first charge or reserve while usage history is on.
  std::unique_ptr<UsageHistory, UsageHistoryDeleter> history;

  uint64_t limit() const noexcept { return base_limit; }
  // Everything spendable now (plan allowance left + grants' remaining) minus holds.
  uint64_t remaining() const noexcept {
    if (slow != 0) return SlowRemaining();
    if (base_limit == kUnlimited) return kUnlimited;
    const uint64_t taken = used + reserved;
    return taken >= base_limit ? 0 : base_limit - taken;
  }
  uint64_t SlowRemaining() const noexcept;   // plan.cc

  // Index of the user or -1.
  int64_t FindUser(std::string_view user) const noexcept {
    // The size is on line 2; user_index (line 3) exists only past kUserScanMax users.
    if (users.size() > kUserScanMax) {
      auto it = user_index->find(user);
      return it == user_index->end() ? -1 : int64_t(it->second);
    }
    const uint16_t tag = UserTag(user);
    for (size_t i = 0; i < users.size(); ++i) {
      if (user_tags[i] == tag && users[i].id == user) return int64_t(i);
    }
    return -1;
  }

  uint32_t AddUser(std::string_view user) {
    const auto idx = uint32_t(users.size());
    users.push_back(User{std::string(user)});
    if (idx < kUserScanMax) std::atomic_ref<uint16_t>(user_tags[idx]).store(UserTag(user), std::memory_order_relaxed);
    users_hint.store(users.data(), std::memory_order_release);
    if (user_index) {
      user_index->emplace(std::string(user), idx);
    } else if (users.size() > kUserScanMax) {
      user_index = std::make_unique<StringMap<uint32_t>>();
      for (uint32_t i = 0; i < users.size(); ++i) user_index->emplace(users[i].id, i);
    }
    return idx;
  }
};

// True when `cost` more can be taken from a balance with this limit, used and reserved.
inline bool Affords(uint64_t limit, uint64_t used, uint64_t reserved, uint64_t cost) noexcept {
  if (limit == kUnlimited) return true;
  const uint64_t taken = used + reserved;   // both bounded by kMaxLimit-scale sums: no overflow
  return taken <= limit && cost <= limit - taken;
}

inline bool IsOverLimit(const User& u) noexcept { return !Affords(u.limit, u.used, u.reserved, 0); }

// Whether the workspace or any of its users is above its limit. O(1): see over_limit_users.
bool WorkspaceOver(const Workspace& ws) noexcept;   // plan.cc: the same test with grants and modes
inline bool OverLimit(const Workspace& ws) noexcept {
  if (ws.over_limit_users != 0) return true;
  return ws.plan ? WorkspaceOver(ws) : !Affords(ws.limit(), ws.used, ws.reserved, 0);
}

// Keeps Workspace::over_limit_users right across a change to one user's balance or limit:
// construct before the change, call Done() after.
class OverLimitUpdate {
 public:
  OverLimitUpdate(Workspace& ws, const User& u) noexcept : ws_(ws), u_(u), was_(IsOverLimit(u)) {}
  void Done() noexcept {
    const bool now = IsOverLimit(u_);
    if (now != was_) now ? ++ws_.over_limit_users : --ws_.over_limit_users;
  }

 private:
  Workspace& ws_;
  const User& u_;
  bool was_;
};

static_assert(offsetof(Workspace, users) == 64 && offsetof(Workspace, user_index) == 128,
              "a charge should touch exactly two cache lines of its workspace");
static_assert(offsetof(Workspace, event_flags) == 103, "event_flags sits in the hole after slow");
static_assert(sizeof(Workspace) == 192, "a workspace without subscription state costs what it did before (3 lines)");

// Hold::unit of a hold recovered without a price (a type-7 WAL record or a version-1 snapshot
// naming a model the catalog no longer has): it can be committed in full or released, never
// priced by guess (docs/wal-records.md).
inline constexpr uint8_t kUnpriced = 0xFF;

// An open reservation. It keeps its price (unit and rate when it was reserved) rather than a
// catalog position, so that a partial commit is priced exactly as the reserve was, whatever the
// catalog says later; the two fit where a catalog index and padding used to be.
struct Hold {
  uint32_t workspace = 0;     // Workspace::index
  uint32_t user = 0;          // index in Workspace::users
  uint32_t rate_milli = 0;    // Price::rate_milli at reserve time (0 when unpriced)
  uint8_t unit = kUnpriced;   // genledger::Unit code at reserve time, or kUnpriced
  // The model's slot in the workspace's usage history (kUnknownModelSlot: none), so that the
  // commit is folded under its model; in what was padding.
  uint16_t model_slot = 0xFFF;
  uint64_t held = 0;
  uint64_t expires_at_ms = 0;

  bool priced() const noexcept { return unit != kUnpriced; }
};
static_assert(sizeof(Hold) == 32, "holds are kept by the million: keep them at 32 bytes");

// Lookup key for a workspace id with its hash computed once (it also chose the shard).
struct WorkspaceKey {
  std::string_view id;
  size_t hash;
};
struct WorkspaceKeyHash {
  size_t operator()(const WorkspaceKey& k) const noexcept { return k.hash; }
};
struct WorkspaceKeyEq {
  bool operator()(const WorkspaceKey& a, const WorkspaceKey& b) const noexcept { return a.id == b.id; }
};

// Running sums over one shard's workspaces, kept by every mutation under the lock it already
// holds, so Ledger::Totals (GET /metrics) adds 256 of these instead of walking every workspace.
// Counts that the shard's containers already know (workspaces, holds, idempotency entries) are
// not repeated here.
struct ShardTotals {
  uint64_t users = 0;
  uint64_t reserved = 0;
  uint64_t limits = 0;               // sum of Workspace::limit() over capped workspaces
  uint64_t unlimited = 0;            // workspaces without a limit
};

struct alignas(64) Shard {
  mutable std::mutex mu;
  uint16_t index = 0;
  // How many WAL records this shard ever produced: the per-shard record number of
  // docs/wal-records.md (the records themselves wait in log lanes, log_lanes.h).
  uint64_t log_records = 0;
  // Sum of the workspaces' used: on the lock's cache line, which every charge writes anyway.
  uint64_t used = 0;
  ShardTotals totals;
  // Keys view Workspace::id; workspaces are heap-allocated and never freed, so views stay valid.
  boost::unordered_flat_map<WorkspaceKey, Workspace*, WorkspaceKeyHash, WorkspaceKeyEq> by_id;
  std::vector<std::unique_ptr<Workspace>> workspaces;

  uint64_t next_reservation_seq = 1;
  boost::unordered_flat_map<uint64_t, Hold> holds;   // by reservation seq
  // (expires_at, seq), earliest first. Settled holds stay until popped or compacted away.
  std::priority_queue<std::pair<uint64_t, uint64_t>, std::vector<std::pair<uint64_t, uint64_t>>,
                      std::greater<>> expiry;

  RecentCharges charges;
  // Which sources a kept charge was drawn from, for the charges not drawn from the plan alone
  // (ChargeRecord::has_breakdown): refunds give each part back to where it came from. Entries of
  // charges the ring forgot are dropped by the sweep.
  boost::unordered_flat_map<uint64_t, boost::container::small_vector<std::pair<uint32_t, uint64_t>, 2>> breakdowns;
  // (next_event_ms, workspace index), earliest first: what the sweeper must apply to workspaces
  // nobody touches (rollovers, grant expiries). Stale entries (the workspace's next_event_ms moved)
  // are skipped when popped.
  std::priority_queue<std::pair<uint64_t, uint32_t>, std::vector<std::pair<uint64_t, uint32_t>>, std::greater<>> events;
  IdempotencyTable idempotency;
  // Derived events of this shard's workspaces (ledger_events.h).
  EventOutbox outbox;
};

}  // namespace genledger::ledger
