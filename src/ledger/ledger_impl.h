// Private state of genledger::Ledger, shared by the gate (ledger.cc) and admin (ledger_admin.cc)
// translation units.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "genledger/ledger.h"
#include "ledger/ledger_log.h"
#include "ledger/log_lanes.h"
#include "ledger/shard.h"
#include "ledger/shared_budget.h"

namespace genledger {

struct Ledger::Impl {
  Impl(std::shared_ptr<const Catalog> c, LedgerOptions o);

  std::shared_ptr<const Catalog> catalog;
  LedgerOptions opt;
  const Clock* clock;
  // The capacities every shard draws on (shared_budget.h). Declared before the shards, which
  // give back what they borrowed when destroyed.
  ledger::SharedBudget idempotency_budget{"idempotency", "--idempotency-capacity"};
  ledger::SharedBudget refund_budget{"refund", "--refund-capacity"};
  std::unique_ptr<ledger::Shard[]> shards;
  std::atomic<uint64_t> workspace_count{0};
  std::atomic<uint64_t> user_count{0};   // every user of every workspace, against opt.max_users
  uint64_t holds_per_shard = 1;
  uint64_t users_per_workspace = 1;
  bool logging = false;   // set once before any mutation; read under shard locks
  ledger::LogLanes lanes;   // where records wait for the log writer, when logging
  std::function<void()> log_wakeup;   // tells the writer there is work; set before logging starts

  // Requires lane held (or null when not logging).
  static Status LogRoom(const ledger::LogLane* lane) {
    if (lane != nullptr && lane->buf.size() >= ledger::kMaxPendingLaneBytes) {
      return Status(Code::kOverloaded, "the write-ahead log is behind; retry shortly");
    }
    return Status();
  }

  // Starts the next record of shard s in `lane`. Requires s.mu and the lane held, logging on.
  ledger::RecordBuilder Log(ledger::LogLane* lane, ledger::Shard& s, ledger::RecordType type) {
    if (lane->buf.empty() && log_wakeup) log_wakeup();
    return ledger::RecordBuilder(lane->buf, type, s.index, ++s.log_records);
  }

  // Applies one WAL record's effect (recovery). Takes the record's shard lock.
  Status Apply(uint8_t type, std::string_view payload);

  // Creates a workspace. Requires s.mu held and no workspace with that id in s.
  ledger::Workspace* CreateWorkspace(ledger::Shard& s, std::string_view id, size_t hash);

  // Records a debit as a refundable charge; returns its id. Requires s.mu held. `recovering`:
  // replay (SharedBudget::Borrow).
  static uint64_t RecordCharge(ledger::Shard& s, const ledger::Workspace& ws, uint32_t user, uint64_t cost,
                               uint64_t now_ms, bool recovering = false) {
    ledger::ChargeRecord rec;
    rec.cost = cost;
    rec.workspace = ws.index;
    rec.user = user;
    rec.at_s = uint32_t(now_ms / 1000);
    rec.period_refunded = ledger::ChargeRecord::PeriodBits(ws.period);
    return ledger::MakeId(s.charges.Add(rec, now_ms, recovering), s.index);
  }

  // Takes one place under the global user ceiling (opt.max_users) for a user about to be
  // created; kCapacityExhausted, nothing taken, at the ceiling. Taking before creating keeps
  // concurrent creators in different shards from overshooting. Thread-safe.
  Status TakeUserSlot() noexcept {
    if (user_count.fetch_add(1, std::memory_order_relaxed) >= opt.max_users) {
      user_count.fetch_sub(1, std::memory_order_relaxed);
      return Status(Code::kCapacityExhausted, "the ledger has reached its user ceiling (--max-users)");
    }
    return Status();
  }
  void GiveUserSlot() noexcept { user_count.fetch_sub(1, std::memory_order_relaxed); }

  // Adds a user to ws and to the shard's totals. Requires s.mu held and, live, a slot taken
  // (replay and snapshot load count theirs directly).
  static uint32_t AddUser(ledger::Shard& s, ledger::Workspace& ws, std::string_view user) {
    ++s.totals.users;
    return ws.AddUser(user);
  }

  // The effect of refunding a charge made in an earlier period (live and in replay, WAL record
  // type 14): its cost becomes a top-up of the current period, ending with it, when the
  // workspace is capped; an unlimited workspace has no allowance to give it back to. Users'
  // `used` count the current period only, so no user changes. Requires the shard lock.
  static void RefundToAllowance(ledger::Shard& s, ledger::Workspace& ws, uint64_t cost);

  static size_t HashId(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }
  // Fibonacci hashing spreads even a weak hash's low-entropy bits over the shard index.
  static uint32_t ShardOf(size_t hash) noexcept {
    return uint32_t((uint64_t(hash) * 0x9E3779B97F4A7C15ull) >> (64 - ledger::kShardBits));
  }

  // Lock-free lookup hints, hash -> workspace. A charge is bound by memory latency, and a shard
  // map probe costs two dependent cache misses (control group, then slot) where a hint costs
  // one; hints can also be prefetched for a whole batch before any lock is taken. A hint is only
  // a guess, confirmed by comparing ids: workspaces are never freed and their ids never change,
  // so a stale or colliding hint is harmless. Ids are unique and their hash picks the shard, so a
  // confirmed hint is always a workspace of the shard being searched.
  static constexpr unsigned kHintBits = 20;
  struct HintsDeleter {
    void operator()(std::atomic<ledger::Workspace*>* p) const noexcept;
  };
  std::unique_ptr<std::atomic<ledger::Workspace*>[], HintsDeleter> hints;
  // Allocates the zeroed hint table on transparent huge pages where the kernel allows it: the
  // table is read at random, and 4 KiB pages would add a TLB miss to almost every lookup.
  static std::atomic<ledger::Workspace*>* AllocateHints();
  static size_t HintOf(size_t hash) noexcept { return hash & ((size_t(1) << kHintBits) - 1); }
  const std::atomic<ledger::Workspace*>& HintSlot(size_t hash) const noexcept { return hints[HintOf(hash)]; }

  // The workspace with this id in shard s, or nullptr. Requires s.mu held.
  ledger::Workspace* FindFast(ledger::Shard& s, std::string_view id, size_t hash) const noexcept {
    ledger::Workspace* w = HintSlot(hash).load(std::memory_order_acquire);
    if (w != nullptr && w->id == id) return w;
    return Find(s, id, hash);
  }

  // Requires s.mu held.
  static ledger::Workspace* Find(ledger::Shard& s, std::string_view id, size_t hash) noexcept {
    auto it = s.by_id.find(ledger::WorkspaceKey{id, hash});
    return it == s.by_id.end() ? nullptr : it->second;
  }
  static const ledger::Workspace* Find(const ledger::Shard& s, std::string_view id, size_t hash) noexcept {
    auto it = s.by_id.find(ledger::WorkspaceKey{id, hash});
    return it == s.by_id.end() ? nullptr : it->second;
  }

  // Releases a hold (expiry or Release). Requires s.mu held and `it` valid.
  static uint64_t DropHold(ledger::Shard& s, boost::unordered_flat_map<uint64_t, ledger::Hold>::iterator it);
  // Settles a hold as a charge of `cost` (Commit, and its replay); does not record the charge.
  // Requires s.mu held, `it` valid and cost <= its held.
  static void CommitHold(ledger::Shard& s, boost::unordered_flat_map<uint64_t, ledger::Hold>::iterator it,
                         uint64_t cost);
  // Expires the holds of one shard whose TTL has run out. Requires s.mu held, and `lane` held
  // (null when not logging).
  uint64_t ExpireShard(ledger::LogLane* lane, ledger::Shard& s, uint64_t now_ms);
};

// Holds a log lane for one operation (or a run of them) when the ledger is logging, and nothing
// otherwise. Take it before any shard lock (docs/durability.md, "The write path").
class LaneHold {
 public:
  explicit LaneHold(LedgerLog::Impl& impl) noexcept : lane_(impl.logging ? impl.lanes.Acquire() : nullptr) {}
  ~LaneHold() {
    if (lane_ != nullptr) ledger::LogLanes::Release(lane_);
  }
  LaneHold(const LaneHold&) = delete;
  LaneHold& operator=(const LaneHold&) = delete;
  ledger::LogLane* get() const noexcept { return lane_; }

 private:
  ledger::LogLane* lane_;
};

// A state the ledger should never be in, found while serving a request: logged (log::Error) and
// returned as kInternal, so the request is answered 500 and changes nothing instead of reading
// out of bounds. `what` names the inconsistency, never client data.
Status InternalError(std::string what);

WorkspaceInfo MakeWorkspaceInfo(const ledger::Workspace& ws);
// Effects shared by the live admin operations and replay (ledger_admin.cc). Each keeps the
// shard's running totals. Require s.mu held and ws in s.
void ApplyWorkspaceSettings(ledger::Shard& s, ledger::Workspace& ws, uint64_t limit, Region region);
void ResetWorkspacePeriod(ledger::Shard& s, ledger::Workspace& ws);
void ApplyTopUp(ledger::Shard& s, ledger::Workspace& ws, uint64_t amount);
void ApplyUserLimit(ledger::Workspace& ws, ledger::User& u, uint64_t limit);
// Adds (add) or removes (!add) ws's allowance from its shard's totals: around every change to a
// limit or top-up.
inline void CountLimit(ledger::ShardTotals& t, const ledger::Workspace& ws, bool add) noexcept {
  if (ws.limit() == kUnlimited) {
    add ? ++t.unlimited : --t.unlimited;
  } else {
    add ? t.limits += ws.limit() : t.limits -= ws.limit();
  }
}

}  // namespace genledger
