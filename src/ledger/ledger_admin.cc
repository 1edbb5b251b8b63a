// Admin operations and reads (the invariant checks are in ledger_check.cc).
#include <algorithm>
#include <mutex>
#include <optional>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Shard;
using ledger::User;
using ledger::Workspace;

namespace {

Status CheckLimit(uint64_t limit, std::string_view what) {
  if (limit != kUnlimited && limit > kMaxLimit) {
    return Status(Code::kInvalidArgument,
                  std::string(what) + " must be at most " + std::to_string(kMaxLimit) + " or null");
  }
  return Status();
}

Status NoWorkspace() { return Status(Code::kUnknownWorkspace); }

constexpr const char* kWorkspaceIdRule = "workspace must be 1-128 bytes of [A-Za-z0-9._:@-]";

// The common frame of every operation on one existing workspace: checks the id, takes the
// workspace's shard lock (after a log lane, for a mutation), refuses a mutation while the lane
// is full, finds the workspace, and runs f(lane, shard, workspace) under the lock. `lane` is
// null for reads and when the ledger is not logging.
template <typename T, typename F>
Result<T> WithWorkspace(LedgerLog::Impl& impl, std::string_view workspace, bool mutates, F&& f) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, kWorkspaceIdRule);
  const size_t hash = LedgerLog::Impl::HashId(workspace);
  Shard& s = impl.shards[LedgerLog::Impl::ShardOf(hash)];
  std::optional<LaneHold> lane;
  if (mutates) lane.emplace(impl);
  const uint64_t now = impl.clock->NowMs();
  {
    std::lock_guard lock(s.mu);
    ledger::LogLane* l = lane ? lane->get() : nullptr;
    if (Status room = LedgerLog::Impl::LogRoom(l); !room.ok()) return room;
    Workspace* ws = LedgerLog::Impl::Find(s, workspace, hash);
    if (ws == nullptr) return NoWorkspace();
    // A boundary or grant expiry is due: apply it first (it is a WAL record, so a read that
    // finds one due retries as a mutation, taking a lane before the lock as every writer does).
    const bool due = now >= ws->next_event_ms;
    if (due && (mutates || !impl.logging)) impl.Advance(l, s, *ws, now);
    if (!due || mutates || !impl.logging) return f(l, s, *ws);
  }
  return WithWorkspace<T>(impl, workspace, true, std::forward<F>(f));
}

}  // namespace

Workspace* Ledger::Impl::CreateWorkspace(Shard& s, std::string_view id, size_t hash) {
  auto owned = std::make_unique<Workspace>();
  Workspace* ws = owned.get();
  ws->id.assign(id);
  ws->index = uint32_t(s.workspaces.size());
  s.workspaces.push_back(std::move(owned));
  s.by_id.emplace(ledger::WorkspaceKey{ws->id, hash}, ws);
  hints[HintOf(hash)].store(ws, std::memory_order_release);
  CountLimit(s.totals, *ws, true);
  return ws;
}

// Whether an admin change left some balance above its limit (allowed, but then the
// used + reserved <= limit invariant is suspended until a reset or top-up restores it) is
// ledger::OverLimit, O(1): admin changes, and their replay, never rescan the users.

void ApplyWorkspaceSettings(Shard& s, Workspace& ws, uint64_t limit, Region region) {
  CountLimit(s.totals, ws, false);
  ws.base_limit = limit;
  ws.region = region;
  CountLimit(s.totals, ws, true);
  ws.limit_lowered = ledger::OverLimit(ws);
}

void ResetWorkspacePeriod(Shard& s, Workspace& ws) {
  const ledger::Plan* p = ws.plan.get();
  LedgerLog::Impl::ApplyNewPeriod(s, ws, 0, p ? p->period_start_ms : 0, p ? p->period_end_ms : ledger::kNoEnd);
}

void ApplyTopUp(Shard& s, Workspace& ws, uint64_t amount) {
  ledger::Plan& p = ledger::EnsurePlan(ws);
  // One top-up grant per period: later top-ups add to it, so top-ups cannot grow the grant list.
  for (ledger::Grant& g : p.grants) {
    if (GrantSource(g.source) == GrantSource::kTopup && (g.flags & ledger::kGrantEndsWithPeriod)) {
      g.amount += amount;
      g.remaining += amount;
      LedgerLog::Impl::PlanChanged(s, ws);
      return;
    }
  }
  ledger::Grant g;
  g.number = p.next_grant++;
  g.source = uint8_t(GrantSource::kTopup);
  g.flags = ledger::kGrantEndsWithPeriod;
  g.amount = g.remaining = amount;
  g.created_ms = p.period_start_ms;   // replay has no clock: the period's start
  ledger::InsertGrant(p, g);
  LedgerLog::Impl::PlanChanged(s, ws);
}

void ApplyUserLimit(Workspace& ws, User& u, uint64_t limit) {
  ledger::OverLimitUpdate over(ws, u);
  u.limit = limit;
  over.Done();
  ws.limit_lowered = ledger::OverLimit(ws);
}

void Ledger::Impl::RefundToAllowance(Shard& s, Workspace& ws, uint64_t cost) {
  ledger::AddRefundGrant(ws, cost, 0);
  PlanChanged(s, ws);
}

WorkspaceInfo MakeWorkspaceInfo(const Workspace& ws) {
  WorkspaceInfo info;
  info.workspace = ws.id;
  info.limit = ws.limit();
  info.base_limit = ws.base_limit;
  info.used = ws.used;
  info.reserved = ws.reserved;
  info.remaining = ws.remaining();
  info.region = ws.region;
  info.period = ws.period;
  info.rev = ws.rev;
  info.users = ws.users.size();
  if (const ledger::Plan* p = ws.plan.get()) {
    for (const ledger::Grant& g : p->grants) {
      info.granted_remaining += g.remaining;
      if (GrantSource(g.source) == GrantSource::kTopup && (g.flags & ledger::kGrantEndsWithPeriod)) info.topup += g.remaining;
    }
    info.interval = p->interval;
    info.anchor_ms = p->anchor_ms;
    info.period_start_ms = p->period_start_ms;
    info.period_end_ms = p->period_end_ms;
    info.plan_priority = p->plan_priority;
    info.rollover = RolloverSpec{p->rollover_max, p->rollover_periods};
    info.overage_mode = OverageMode(p->overage_mode);
    info.overage = p->overage;
    info.overage_limit = p->overage_limit;
    if (p->pending_limit != ledger::kNoPending) info.pending_limit = p->pending_limit;
  }
  const uint64_t sp = ledger::Spendable(ws);
  if (sp != kUnlimited) {
    // What is owed beyond every source: the plan overdrawn, soft/shadow overage, and holds beyond
    // what is left.
    const uint64_t plan_used = ledger::PlanUsed(ws);
    const uint64_t over_plan = plan_used > ws.base_limit ? plan_used - ws.base_limit : 0;
    info.overdrawn = over_plan + info.overage + (ws.reserved > sp ? ws.reserved - sp : 0);
  }
  return info;
}

Result<WorkspaceInfo> Ledger::UpsertWorkspace(std::string_view workspace, uint64_t limit, Region region) {
  WorkspaceUpdate u;
  u.limit = limit;
  u.region = region;
  u.limit_now = true;   // this older call always applied a limit at once
  return UpdateWorkspace(workspace, u);
}

namespace {

Status CheckUpdate(const WorkspaceUpdate& u) {
  if (u.limit.has_value()) {
    if (Status st = CheckLimit(*u.limit, "limit"); !st.ok()) return st;
  }
  if (u.overage_limit.has_value()) {
    if (Status st = CheckLimit(*u.overage_limit, "overage_limit"); !st.ok()) return st;
  }
  if (u.plan_priority.has_value() && *u.plan_priority > kMaxGrantPriority) {
    return Status(Code::kInvalidArgument, "plan_priority must be between 0 and " + std::to_string(kMaxGrantPriority));
  }
  if (u.anchor_ms.has_value() && *u.anchor_ms > kMaxTimeMs) {
    return Status(Code::kInvalidArgument, "period.anchor must be at most 9999-12-31T23:59:59.999Z");
  }
  if (u.rollover.has_value() && u.rollover->max != 0) {
    if (u.rollover->max > kMaxLimit) return Status(Code::kInvalidArgument, "rollover.max must be at most " + std::to_string(kMaxLimit));
    if (u.rollover->periods < 1 || u.rollover->periods > kMaxRolloverPeriods) {
      return Status(Code::kInvalidArgument, "rollover.periods must be between 1 and " + std::to_string(kMaxRolloverPeriods));
    }
  }
  return Status();
}

// The subscription settings after `u`, from `cur`; the schedule's current period is computed at
// now_ms. invalid_argument when the result does not make sense.
Result<PlanSettings> UpdatedPlan(PlanSettings cur, const WorkspaceUpdate& u, uint64_t now_ms) {
  if (u.interval.has_value() || u.anchor_ms.has_value()) {
    const Interval interval = u.interval.value_or(cur.interval);
    if (interval == Interval::kNone) {
      if (u.anchor_ms.has_value()) return Status(Code::kInvalidArgument, "period.anchor needs an interval other than none");
      cur.interval = Interval::kNone;
      cur.anchor_ms = 0;
      cur.period_end_ms = ledger::kNoEnd;
    } else {
      // A new interval without an anchor starts its schedule now; the same interval keeps its anchor.
      const uint64_t anchor = u.anchor_ms.value_or(interval == cur.interval ? cur.anchor_ms : now_ms);
      const auto bounds = PeriodContaining(interval, anchor, now_ms);
      if (!bounds) return Status(Code::kInvalidArgument, "period: no period of that schedule contains the current time");
      cur.interval = interval;
      cur.anchor_ms = anchor;
      cur.period_start_ms = bounds->start_ms;
      cur.period_end_ms = bounds->end_ms;
    }
  }
  if (u.plan_priority.has_value()) cur.plan_priority = *u.plan_priority;
  if (u.rollover.has_value()) {
    cur.rollover_max = u.rollover->max;
    cur.rollover_periods = u.rollover->max == 0 ? 1 : u.rollover->periods;
  }
  if (cur.rollover_max != 0 && cur.interval == Interval::kNone) {
    return Status(Code::kInvalidArgument, "rollover needs a period interval (it expires after whole periods)");
  }
  if (u.overage_mode.has_value()) cur.overage_mode = uint8_t(*u.overage_mode);
  if (u.overage_limit.has_value()) cur.overage_limit = *u.overage_limit;
  return cur;
}

bool SamePlan(const PlanSettings& a, const PlanSettings& b) {
  return a.interval == b.interval && a.anchor_ms == b.anchor_ms && a.period_start_ms == b.period_start_ms &&
         a.period_end_ms == b.period_end_ms && a.plan_priority == b.plan_priority && a.rollover_max == b.rollover_max &&
         a.rollover_periods == b.rollover_periods && a.overage_mode == b.overage_mode &&
         a.overage_limit == b.overage_limit && a.pending_limit == b.pending_limit;
}

}  // namespace

Result<WorkspaceInfo> Ledger::UpdateWorkspace(std::string_view workspace, const WorkspaceUpdate& update) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, kWorkspaceIdRule);
  if (Status st = CheckUpdate(update); !st.ok()) return st;
  const uint64_t now = impl_->clock->NowMs();
  const size_t hash = Impl::HashId(workspace);
  const uint32_t shard = Impl::ShardOf(hash);
  Shard& s = impl_->shards[shard];
  LaneHold lane(*impl_);
  std::lock_guard lock(s.mu);
  if (Status room = Impl::LogRoom(lane.get()); !room.ok()) return room;
  Workspace* ws = Impl::Find(s, workspace, hash);
  if (ws != nullptr && now >= ws->next_event_ms) impl_->Advance(lane.get(), s, *ws, now);
  // The fields not given are read under the same lock that writes them: nothing can change them
  // in between.
  const Region region = update.region.value_or(ws != nullptr ? ws->region : Region::kGlobal);
  PlanSettings plan = ws != nullptr ? CurrentPlanSettings(*ws) : PlanSettings{};
  uint64_t limit = ws != nullptr ? ws->base_limit : kUnlimited;
  if (update.limit.has_value()) {
    // An increase applies now; a decrease at the next boundary unless asked for now.
    const bool increase = ws == nullptr || *update.limit == kUnlimited ||
                          (limit != kUnlimited && *update.limit >= limit);
    if (increase || update.limit_now) {
      limit = *update.limit;
      plan.pending_limit = ledger::kNoPending;
    } else {
      plan.pending_limit = *update.limit;
    }
  }
  Result<PlanSettings> next = UpdatedPlan(plan, update, now);
  if (!next.ok()) return next.status();
  const bool plan_changes = !SamePlan(*next, ws != nullptr ? CurrentPlanSettings(*ws) : PlanSettings{});
  const bool created = ws == nullptr;
  if (ws == nullptr) {
    // Reserve a slot in the global count first so concurrent creators cannot overshoot.
    if (impl_->workspace_count.fetch_add(1, std::memory_order_relaxed) >= impl_->opt.max_workspaces) {
      impl_->workspace_count.fetch_sub(1, std::memory_order_relaxed);
      return Status(Code::kCapacityExhausted, "the ledger has reached its workspace ceiling");
    }
    ws = impl_->CreateWorkspace(s, workspace, hash);
    // One record per change, so a torn log tail keeps all of it or none: a change that touches
    // the subscription settings is one set_plan record, which carries the limit and region too
    // (and the id, for a new workspace).
    if (lane.get() != nullptr && !plan_changes) {
      impl_->Log(lane.get(), s, ledger::RecordType::kCreateWorkspace).Str8(ws->id).U64(limit).U8(uint8_t(region));
    }
  } else if (lane.get() != nullptr && !plan_changes) {
    impl_->Log(lane.get(), s, ledger::RecordType::kUpdateWorkspace).U32(ws->index).U64(limit).U8(uint8_t(region));
  }
  if (lane.get() != nullptr && plan_changes) {
    LogPlanSettings(impl_->Log(lane.get(), s, ledger::RecordType::kSetPlan), *ws, created ? ws->id : std::string_view(),
                    limit, region, *next);
  }
  ApplyWorkspaceSettings(s, *ws, limit, region);
  if (plan_changes) ApplyPlanSettings(s, *ws, *next);
  impl_->Touched(s, *ws, 0);   // types 1, 2, 15 carry no time
  return MakeWorkspaceInfo(*ws);
}

Result<UserInfo> Ledger::SetUserLimit(std::string_view workspace, std::string_view user, uint64_t limit) {
  if (!IsValidId(user)) return Status(Code::kInvalidId, "user must be 1-128 bytes of [A-Za-z0-9._:@-]");
  if (Status st = CheckLimit(limit, "limit"); !st.ok()) return st;
  return WithWorkspace<UserInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<UserInfo> {
    int64_t ui = ws.FindUser(user);
    const bool new_user = ui < 0;
    if (new_user) {
      if (ws.users.size() >= impl_->users_per_workspace) {
        return Status(Code::kCapacityExhausted, "the workspace has reached its user ceiling");
      }
      if (Status slot = impl_->TakeUserSlot(); !slot.ok()) return slot;
      ui = Impl::AddUser(s, ws, user);
    }
    User& u = ws.users[size_t(ui)];
    ApplyUserLimit(ws, u, limit);
    if (lane != nullptr) {
      auto b = impl_->Log(lane, s, ledger::RecordType::kSetUserLimit);
      b.U32(ws.index);
      if (new_user) {
        b.U32(ledger::kNewUser).Str8(user);
      } else {
        b.U32(uint32_t(ui));
      }
      b.U64(limit);
    }
    impl_->Touched(s, ws, 0);   // no time in the record
    return UserInfo{u.id, u.used, u.reserved, u.limit, ws.rev};
  });
}

Result<WorkspaceInfo> Ledger::TopUp(std::string_view workspace, uint64_t amount) {
  if (amount == 0 || amount > kMaxLimit) {
    return Status(Code::kInvalidArgument, "amount must be between 1 and " + std::to_string(kMaxLimit));
  }
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<WorkspaceInfo> {
    if (ws.base_limit == kUnlimited) {
      return Status(Code::kInvalidArgument, "the workspace is unlimited; a top-up would change nothing");
    }
    if (ledger::GrantedRemaining(ws) + amount > kMaxLimit) {
      return Status(Code::kInvalidArgument, "the workspace's grants would exceed " + std::to_string(kMaxLimit));
    }
    ApplyTopUp(s, ws, amount);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kTopUp).U32(ws.index).U64(amount);
    impl_->Touched(s, ws, 0);   // no time in the record
    return MakeWorkspaceInfo(ws);
  });
}

Result<WorkspaceInfo> Ledger::ResetPeriod(std::string_view workspace) {
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, true, [&](ledger::LogLane* lane, Shard& s, Workspace& ws) -> Result<WorkspaceInfo> {
    ResetWorkspacePeriod(s, ws);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kResetPeriod).U32(ws.index);
    impl_->Touched(s, ws, 0);   // no time in the record
    return MakeWorkspaceInfo(ws);
  });
}

Result<WorkspaceInfo> Ledger::GetWorkspace(std::string_view workspace) const {
  return WithWorkspace<WorkspaceInfo>(*impl_, workspace, false,
                                      [](ledger::LogLane*, Shard&, Workspace& ws) -> Result<WorkspaceInfo> { return MakeWorkspaceInfo(ws); });
}

Result<UsageReport> Ledger::GetUsage(std::string_view workspace, const UsageQuery& query) const {
  return WithWorkspace<UsageReport>(*impl_, workspace, false, [&](ledger::LogLane*, Shard&, Workspace& ws) {
    return ledger::BuildUsageReport(ws, query);   // ledger_usage.cc
  });
}

namespace {

// ListUsers' order: used descending, then id.
bool UserBefore(uint64_t a_used, std::string_view a_id, uint64_t b_used, std::string_view b_id) noexcept {
  return a_used != b_used ? a_used > b_used : a_id < b_id;
}

// A cursor is "<used>:<id>" of the last user of the previous page: it names a position in the
// order, not an index, so it stays valid when users are added or their usage changes.
bool ParseUsersCursor(std::string_view cursor, uint64_t* used, std::string_view* id) {
  const size_t colon = cursor.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon > 20) return false;
  uint64_t v = 0;
  for (char c : cursor.substr(0, colon)) {
    if (c < '0' || c > '9' || __builtin_mul_overflow(v, uint64_t(10), &v) ||
        __builtin_add_overflow(v, uint64_t(c - '0'), &v)) {
      return false;
    }
  }
  *used = v;
  *id = cursor.substr(colon + 1);
  return IsValidId(*id);
}

}  // namespace

Result<UserPage> Ledger::ListUsers(std::string_view workspace, size_t limit, std::string_view cursor) const {
  if (limit < 1 || limit > kMaxUsersPage) {
    return Status(Code::kInvalidArgument, "limit must be between 1 and " + std::to_string(kMaxUsersPage));
  }
  uint64_t after_used = 0;
  std::string_view after_id;
  const bool has_cursor = !cursor.empty();
  if (has_cursor && !ParseUsersCursor(cursor, &after_used, &after_id)) {
    return Status(Code::kInvalidArgument, "cursor must be a next_cursor returned by this endpoint");
  }
  // One pass over the users under the lock, keeping the page's users (plus one, to know whether
  // another page follows) in a bounded heap whose top is the last of them in the order: the lock
  // is held for O(users + page log page) and only the page is copied. A sorted index kept per
  // workspace would make a page O(page + log users), but every charge would pay to update it.
  const size_t keep = limit + 1;
  auto before = [](const User* a, const User* b) { return UserBefore(a->used, a->id, b->used, b->id); };
  return WithWorkspace<UserPage>(*impl_, workspace, false, [&](ledger::LogLane*, Shard&, Workspace& ws) -> Result<UserPage> {
    std::vector<const User*> heap;
    heap.reserve(std::min(keep, ws.users.size()));
    for (const User& u : ws.users) {
      if (has_cursor && !UserBefore(after_used, after_id, u.used, u.id)) continue;
      if (heap.size() < keep) {
        heap.push_back(&u);
        std::push_heap(heap.begin(), heap.end(), before);
      } else if (before(&u, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), before);
        heap.back() = &u;
        std::push_heap(heap.begin(), heap.end(), before);
      }
    }
    std::sort_heap(heap.begin(), heap.end(), before);
    UserPage page;
    const bool more = heap.size() > limit;
    if (more) heap.pop_back();
    page.users.reserve(heap.size());
    for (const User* u : heap) page.users.push_back(UserInfo{u->id, u->used, u->reserved, u->limit});
    if (more) page.next_cursor = std::to_string(heap.back()->used) + ":" + heap.back()->id;
    return page;
  });
}

void Ledger::ForEachWorkspace(const std::function<void(const WorkspaceInfo&)>& f) const {
  std::vector<WorkspaceInfo> infos;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    infos.clear();
    {
      const Shard& s = impl_->shards[i];
      std::lock_guard lock(s.mu);
      infos.reserve(s.workspaces.size());
      for (const auto& ws : s.workspaces) infos.push_back(MakeWorkspaceInfo(*ws));
    }
    for (const WorkspaceInfo& info : infos) f(info);
  }
}

LedgerTotals Ledger::Totals() const {
  LedgerTotals t;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    t.workspaces += s.workspaces.size();
    t.users += s.totals.users;
    t.used += s.used;
    t.reserved += s.totals.reserved;
    t.limits += s.totals.limits;
    t.unlimited_workspaces += s.totals.unlimited;
    t.open_reservations += s.holds.size();
    t.idempotency_entries += s.idempotency.size();
    t.idempotency_evicted_early += s.idempotency.evicted_early();
    t.refund_evicted_early += s.charges.evicted_early();
  }
  t.shadow_would_refuse_insufficient = impl_->shadow_insufficient.load(std::memory_order_relaxed);
  t.shadow_would_refuse_user_limit = impl_->shadow_user_limit.load(std::memory_order_relaxed);
  t.usage_history_bytes = impl_->usage.bytes.load(std::memory_order_relaxed);
  t.usage_history_folded = impl_->usage.folded.load(std::memory_order_relaxed);
  return t;
}

}  // namespace genledger
