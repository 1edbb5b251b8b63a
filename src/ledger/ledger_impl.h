// Private state of genledger::Ledger, shared by the gate (ledger.cc) and admin (ledger_admin.cc)
// translation units.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "genledger/ledger.h"
#include "ledger/ledger_events.h"
#include "ledger/ledger_log.h"
#include "ledger/log_lanes.h"
#include "ledger/plan.h"
#include "ledger/shard.h"
#include "ledger/shared_budget.h"
#include "ledger/tokens.h"
#include "ledger/webhooks.h"
#include "ledger/usage_history.h"

namespace genledger {

struct Ledger::Impl {
  Impl(std::shared_ptr<const Catalog> c, LedgerOptions o);

  // The catalog (ledger_catalog.cc; docs/wal-records.md, "Catalog records"). `catalog`,
  // `catalog_version` and `catalog_replaced` change only under shard 0's lock *and* catalog_mu
  // (taken in that order), so CurrentCatalog (catalog_mu) and a snapshot of shard 0 (its lock)
  // each read them consistently; version changes are also published through the atomic for
  // wait-free CatalogVersion(). Recovery (replay, snapshot load) reads `catalog` without a lock:
  // it changes only while no other recovery thread runs (the replayer's barrier, and the
  // catalog section loaded before any shard). The request path never reads it: a request
  // carries its items, and idempotency entries name models by interned id.
  mutable std::mutex catalog_mu;
  std::shared_ptr<const Catalog> catalog;
  std::atomic<uint64_t> catalog_version{1};
  // False while the catalog is the start-up one (no type-20 record, catalog section or
  // replacement yet): after recovery, a data directory without a catalog of its own.
  bool catalog_replaced = false;
  const std::shared_ptr<const Catalog> startup_catalog;   // what ResetForRecovery goes back to
  // Minted API tokens (ledger_tokens.cc; docs/wal-records.md, "Token records"). Changed only
  // under shard 0's lock *and* tokens_mu (in that order), like the catalog: a snapshot of shard 0
  // (its lock) copies the table consistently with shard 0's record number, and FindToken (every
  // authenticated request) takes tokens_mu alone, never contending with shard 0's charges.
  mutable std::mutex tokens_mu;
  ledger::TokenTable tokens;
  LedgerOptions opt;
  const Clock* clock;
  // The capacities every shard draws on (shared_budget.h). Declared before the shards, which
  // give back what they borrowed when destroyed.
  ledger::SharedBudget idempotency_budget{"idempotency", "--idempotency-capacity"};
  ledger::SharedBudget refund_budget{"refund", "--refund-capacity"};
  // Usage history's byte ceiling and counts (ledger_usage.cc); before the shards, whose
  // histories give their bytes back when destroyed.
  ledger::UsageBudget usage;
  std::unique_ptr<ledger::Shard[]> shards;
  std::atomic<uint64_t> workspace_count{0};
  std::atomic<uint64_t> outbox_bytes{0};   // every shard's EventOutbox::bytes (the ceiling's count)
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
  // Webhook registry (shard 0's lock) and per-shard cursors (each shard's lock): ledger_webhooks.cc.
  ledger::WebhookState webhooks;
  // Types 23-25's effect (ledger_webhooks.cc). Requires s.mu held (s: the record's shard); 23
  // and 24 are replay barriers, so they may touch every shard's cursors without their locks.
  Status ApplyWebhookRecord(ledger::RecordType type, ledger::Shard& s, ledger::RecordReader& r);

  // Type 20's effect (ledger_catalog.cc): decodes and validates the rest of the record (after
  // its prefix), then installs the catalog. Requires shard 0's lock held; kCorruption, nothing
  // changed, for a record that does not decode, parse or follow the current version.
  Status ApplySetCatalog(ledger::RecordReader& r);
  // Types 26/27's effects (ledger_tokens.cc), same contract as ApplySetCatalog.
  Status ApplyTokenAdd(ledger::RecordReader& r);
  Status ApplyTokenRevoke(ledger::RecordReader& r);
  // Makes `c` the current catalog with `version`. Requires shard 0's lock held.
  void InstallCatalog(std::shared_ptr<const Catalog> c, uint64_t version);
  // The interned id of the model a record or snapshot names by its catalog id (null for an
  // empty id): the current catalog's copy when it has that id, else InternModelId's (a mutex).
  const std::string* ModelKey(std::string_view id) const;

  // Creates a workspace. Requires s.mu held and no workspace with that id in s.
  ledger::Workspace* CreateWorkspace(ledger::Shard& s, std::string_view id, size_t hash);

  // Records a debit as a refundable charge; returns its id. Requires s.mu held. `recovering`:
  // replay (SharedBudget::Borrow).
  // `parts`: where the cost was drawn from when not the plan alone (ledger::Burn).
  // `model`: the charge's model slot in ws's usage history (kUnknownModelSlot: none).
  static uint64_t RecordCharge(ledger::Shard& s, const ledger::Workspace& ws, uint32_t user, uint64_t cost,
                               uint64_t now_ms, bool recovering = false, const ledger::BurnParts* parts = nullptr,
                               uint16_t model = ledger::kUnknownModelSlot) {
    ledger::ChargeRecord rec;
    rec.cost_model = ledger::PackCostModel(cost, model);
    rec.workspace = ws.index;
    rec.user = user;
    rec.at_s = uint32_t(now_ms / 1000);
    rec.period_refunded = ledger::ChargeRecord::PeriodBits(ws.period);
    if (parts != nullptr && !parts->empty()) rec.set_has_breakdown();
    const uint64_t seq = s.charges.Add(rec, now_ms, recovering);
    if (parts != nullptr && !parts->empty()) AddBreakdown(s, seq, *parts);
    return ledger::MakeId(seq, s.index);
  }
  static void AddBreakdown(ledger::Shard& s, uint64_t seq, const ledger::BurnParts& parts);

  // Adds a debit of `cost` to ws.used: drawn in burn order when the workspace is slow
  // (plan.h, Burn), else from the plan (the plain path). Returns the parts (empty: the plan).
  static ledger::BurnParts Debit(ledger::Workspace& ws, uint64_t cost) {
    if (ws.slow == 0) {
      ws.used += cost;
      return {};
    }
    return ledger::Burn(ws, cost);
  }

  // After every change of a workspace that wrote (or, in replay, applied) one WAL record naming
  // it, under the shard lock: the revision grows by one. Live and replay call it at the same
  // points, once per record, so revisions (and what is derived here) replay identically.
  // `record_ms`: the time the record carries (live: the same value it logs), or 0 when it carries
  // none: events derived here take it as their at_ms, and replay must compute the same
  // (ledger_events.h, EvaluateEvents). Never the clock for a record without a time: replay's
  // clock is the restart's.
  void Touched(ledger::Shard& s, ledger::Workspace& ws, uint64_t record_ms) {
    ++ws.rev;
    ledger::EvaluateEvents(s, ws, record_ms);
  }
  // --- Usage history (ledger_usage.cc; docs/ledger.md, "Usage history") ---

  // ws's history, allocated on first use. Requires s.mu held and usage.on().
  ledger::UsageHistory& History(ledger::Workspace& ws);
  // The slot of `item`'s model in ws's history (taken on first use: *added). Requires usage.on().
  uint16_t ModelSlot(ledger::Workspace& ws, const CatalogItem& item, bool* added);
  // The slot for a model named by id in a type-7/13 record (replay): the workspace's slot, or a
  // new one with the category this catalog gives the id. Requires usage.on().
  uint16_t ModelSlotById(ledger::Workspace& ws, std::string_view model);
  // Folds a charge (or commit) into ws's current period. No-op while history is off.
  void FoldUsage(ledger::Workspace& ws, uint32_t user, uint16_t model, uint64_t at_ms, uint64_t cost) {
    if (usage.on()) History(ws).Fold(user, model, at_ms, cost, at_ms);
  }
  // Takes a refunded charge out of its period's rows (if still kept). Requires s.mu held.
  static void UnfoldUsage(ledger::Workspace& ws, const ledger::ChargeRecord& c) {
    if (ws.history) {
      ws.history->Unfold(ws.period, c.period(), c.user, ledger::ModelOfPacked(c.cost_model), c.at_s / 86'400, c.cost());
    }
  }
  // Writes a charge's model as WAL type 21 carries it (`uvar_model`).
  static void LogModel(ledger::RecordBuilder& b, const ledger::Workspace& ws, uint16_t slot, bool added);
  // Snapshot extension block 3 (docs/snapshot-format.md): the shard's histories and holds' slots.
  // Encode requires s.mu held. Decode validates the whole block, then gives `workspaces` (a
  // section's staged ones, whose users and period are loaded) their histories and the holds
  // `hold(seq)` finds their slots; on error nothing is changed.
  static void EncodeUsageBlock(const ledger::Shard& s, std::string& out);
  Status DecodeUsageBlock(std::string_view block, uint32_t shard, std::vector<std::unique_ptr<ledger::Workspace>>& workspaces,
                          const std::function<ledger::Hold*(uint64_t seq)>& hold);

  // --- Subscriptions (ledger_plan.cc) ---

  // Applies what is due at now_ms (ws.next_event_ms <= now_ms): a rollover (WAL type 16), then
  // expired grants (type 18). Requires s.mu held and `lane` held (null when not logging).
  void Advance(ledger::LogLane* lane, ledger::Shard& s, ledger::Workspace& ws, uint64_t now_ms);
  // Advance for every workspace of the shard with something due (the sweeper).
  void AdvanceShard(ledger::LogLane* lane, ledger::Shard& s, uint64_t now_ms);
  // After any change to ws's plan state: recomputes slow / next_event_ms, queues the next event
  // for the sweeper and re-derives limit_lowered. Requires s.mu held.
  static void PlanChanged(ledger::Shard& s, ledger::Workspace& ws);
  // The effects of a period boundary (type 16) and of a manual reset (type 5, boundaries 0).
  static void ApplyNewPeriod(ledger::Shard& s, ledger::Workspace& ws, uint64_t boundaries, uint64_t start_ms,
                             uint64_t end_ms);

  // Refusals hard mode would have made that shadow mode let through, since start.
  std::atomic<uint64_t> shadow_insufficient{0};
  std::atomic<uint64_t> shadow_user_limit{0};

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
  // type 14): its cost becomes a refund grant ending with the current period when the
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
  // Returns where the cost was drawn from (Debit).
  static ledger::BurnParts CommitHold(ledger::Shard& s, boost::unordered_flat_map<uint64_t, ledger::Hold>::iterator it,
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
// A top-up (WAL type 4): a topup grant ending with the period.
void ApplyTopUp(ledger::Shard& s, ledger::Workspace& ws, uint64_t amount);
// A workspace's subscription settings (WAL type 15), as a whole.
struct PlanSettings {
  Interval interval = Interval::kNone;
  uint64_t anchor_ms = 0;
  uint64_t period_start_ms = 0;
  uint64_t period_end_ms = ledger::kNoEnd;
  uint16_t plan_priority = kDefaultGrantPriority;
  uint64_t rollover_max = 0;
  uint32_t rollover_periods = 1;
  uint8_t overage_mode = 0;
  uint64_t overage_limit = kUnlimited;
  uint64_t pending_limit = ledger::kNoPending;
};
PlanSettings CurrentPlanSettings(const ledger::Workspace& ws);
// Reads the settings in the order WAL type 15 and the snapshot's plan entry both store them
// (interval .. pending_limit); false when a value is out of range (the reader's ok() says
// whether it was truncated).
bool ReadPlanSettings(ledger::RecordReader& r, PlanSettings& p);
void ApplyPlanSettings(ledger::Shard& s, ledger::Workspace& ws, const PlanSettings& p);
// WAL type 15: `new_id` non-empty for a workspace this record creates.
void LogPlanSettings(ledger::RecordBuilder b, const ledger::Workspace& ws, std::string_view new_id, uint64_t limit,
                     Region region, const PlanSettings& p);
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
