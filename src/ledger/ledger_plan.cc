// Subscriptions: period rollovers, grants, plan settings (docs/ledger.md, "Subscriptions"; the
// rules of one workspace are in plan.cc, the records in docs/wal-records.md, types 15-19).
#include <algorithm>
#include <mutex>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Grant;
using ledger::Plan;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

std::string_view OverageModeName(OverageMode m) noexcept {
  switch (m) {
    case OverageMode::kHard: return "hard";
    case OverageMode::kSoft: return "soft";
    case OverageMode::kShadow: return "shadow";
  }
  return "unknown";
}

Result<OverageMode> ParseOverageMode(std::string_view text) {
  if (text == "hard") return OverageMode::kHard;
  if (text == "soft") return OverageMode::kSoft;
  if (text == "shadow") return OverageMode::kShadow;
  return Status(Code::kInvalidArgument, "overage_mode must be one of hard, soft, shadow");
}

std::string_view GrantSourceName(GrantSource s) noexcept {
  switch (s) {
    case GrantSource::kPlan: return "plan";
    case GrantSource::kTopup: return "topup";
    case GrantSource::kPromo: return "promo";
    case GrantSource::kAdjustment: return "adjustment";
    case GrantSource::kRefund: return "refund";
    case GrantSource::kRollover: return "rollover";
  }
  return "unknown";
}

Result<GrantSource> ParseGrantSource(std::string_view text) {
  if (text == "topup") return GrantSource::kTopup;
  if (text == "promo") return GrantSource::kPromo;
  if (text == "adjustment") return GrantSource::kAdjustment;
  return Status(Code::kInvalidArgument, "source must be one of topup, promo, adjustment");
}

PlanSettings CurrentPlanSettings(const Workspace& ws) {
  PlanSettings p;
  if (const Plan* plan = ws.plan.get()) {
    p.interval = plan->interval;
    p.anchor_ms = plan->anchor_ms;
    p.period_start_ms = plan->period_start_ms;
    p.period_end_ms = plan->period_end_ms;
    p.plan_priority = plan->plan_priority;
    p.rollover_max = plan->rollover_max;
    p.rollover_periods = plan->rollover_max == 0 ? 1 : plan->rollover_periods;
    p.overage_mode = plan->overage_mode;
    p.overage_limit = plan->overage_limit;
    p.pending_limit = plan->pending_limit;
  }
  return p;
}

bool ReadPlanSettings(ledger::RecordReader& r, PlanSettings& p) {
  p.interval = Interval(r.U8());
  p.anchor_ms = r.U64();
  p.period_start_ms = r.U64();
  p.period_end_ms = r.U64();
  p.plan_priority = r.U16();
  p.rollover_max = r.U64();
  p.rollover_periods = r.U32();
  p.overage_mode = r.U8();
  p.overage_limit = r.U64();
  p.pending_limit = r.U64();
  return uint8_t(p.interval) <= uint8_t(Interval::kYear) && p.overage_mode <= uint8_t(OverageMode::kShadow) &&
         p.plan_priority <= kMaxGrantPriority && p.rollover_periods <= kMaxRolloverPeriods;
}

void ApplyPlanSettings(Shard& s, Workspace& ws, const PlanSettings& in) {
  Plan& p = ledger::EnsurePlan(ws);
  const bool reorder = p.plan_priority != in.plan_priority || p.period_end_ms != in.period_end_ms;
  p.interval = in.interval;
  p.anchor_ms = in.anchor_ms;
  p.period_start_ms = in.period_start_ms;
  p.period_end_ms = in.period_end_ms;
  p.plan_priority = in.plan_priority;
  p.rollover_max = in.rollover_max;
  p.rollover_periods = in.rollover_periods;
  p.overage_mode = in.overage_mode;
  p.overage_limit = in.overage_limit;
  p.pending_limit = in.pending_limit;
  if (reorder) {
    // Grants ending with the period sort by the period's end: re-insert them all.
    std::vector<Grant> gs = std::move(p.grants);
    p.grants.clear();
    for (const Grant& g : gs) ledger::InsertGrant(p, g);
  }
  LedgerLog::Impl::PlanChanged(s, ws);
}

void LogPlanSettings(ledger::RecordBuilder b, const Workspace& ws, std::string_view new_id, uint64_t limit,
                     Region region, const PlanSettings& p) {
  if (new_id.empty()) {
    b.U32(ws.index);
  } else {
    b.U32(ledger::kNewWorkspace).Str8(new_id);
  }
  b.U64(limit).U8(uint8_t(region));
  b.U8(uint8_t(p.interval)).U64(p.anchor_ms).U64(p.period_start_ms).U64(p.period_end_ms);
  b.U16(p.plan_priority).U64(p.rollover_max).U32(p.rollover_periods).U8(p.overage_mode);
  b.U64(p.overage_limit).U64(p.pending_limit);
}

void Ledger::Impl::PlanChanged(Shard& s, Workspace& ws) {
  const uint64_t next = ledger::RefreshPlanState(ws);
  if (next != ledger::kNoEnd) s.events.emplace(next, ws.index);
  ws.limit_lowered = ledger::OverLimit(ws);
}

void Ledger::Impl::ApplyNewPeriod(Shard& s, Workspace& ws, uint64_t boundaries, uint64_t start_ms, uint64_t end_ms) {
  const uint64_t old_period = ws.period;   // usage history closes the period that ends
  const bool scheduled = ws.plan && ws.plan->interval != Interval::kNone;
  const uint64_t old_start = scheduled ? ws.plan->period_start_ms : 0;
  const uint64_t old_end = scheduled ? ws.plan->period_end_ms : ledger::kNoEnd;
  CountLimit(s.totals, ws, false);
  ledger::NewPeriodPlan(ws, boundaries, start_ms, end_ms);   // reads used: before it is zeroed
  s.used -= ws.used;
  ws.used = 0;
  ws.period += std::max<uint64_t>(boundaries, 1);
  if (ws.history) ws.history->NewPeriod(old_period, old_start, old_end, ws.period);
  uint32_t over = 0;
  for (User& u : ws.users) {   // a new period touches every user anyway
    u.used = 0;
    over += ledger::IsOverLimit(u) ? 1 : 0;
  }
  ws.over_limit_users = over;
  CountLimit(s.totals, ws, true);
  PlanChanged(s, ws);
  ledger::NoteNewPeriod(ws);   // the next evaluation emits period_reset (ledger_events.h)
}

void Ledger::Impl::AddBreakdown(Shard& s, uint64_t seq, const ledger::BurnParts& parts) {
  auto& v = s.breakdowns[seq];
  v.clear();
  for (const ledger::BurnPart& p : parts) v.emplace_back(p.grant, p.amount);
  // Bounded by the refund ring: past twice its size, drop what the ring has forgotten.
  if (s.breakdowns.size() > 2 * s.charges.size() + 64) {
    const uint64_t first = s.charges.first_seq();
    boost::unordered::erase_if(s.breakdowns, [first](const auto& e) { return e.first < first; });
  }
}

void Ledger::Impl::Advance(ledger::LogLane* lane, Shard& s, Workspace& ws, uint64_t now_ms) {
  Plan* p = ws.plan.get();
  if (p == nullptr) {
    ws.next_event_ms = ledger::kNoEnd;
    return;
  }
  if (p->period_end_ms != ledger::kNoEnd && now_ms >= p->period_end_ms) {
    const auto now_period = PeriodContaining(p->interval, p->anchor_ms, now_ms);
    const auto old_period = PeriodContaining(p->interval, p->anchor_ms, p->period_start_ms);
    if (now_period && old_period && now_period->k > old_period->k) {
      const uint64_t boundaries = uint64_t(now_period->k - old_period->k);
      if (lane != nullptr) {
        Log(lane, s, ledger::RecordType::kRollover)
            .U32(ws.index)
            .U64(boundaries)
            .U64(now_period->start_ms)
            .U64(now_period->end_ms);
      }
      ApplyNewPeriod(s, ws, boundaries, now_period->start_ms, now_period->end_ms);
      Touched(s, ws, now_period->start_ms);   // type 16's time: the new period's start
    } else {
      // No period of the schedule contains now (the end of representable time): no more
      // boundaries. Written like any settings change, so replay agrees.
      PlanSettings st = CurrentPlanSettings(ws);
      st.period_end_ms = ledger::kNoEnd;
      ApplyPlanSettings(s, ws, st);
      if (lane != nullptr) LogPlanSettings(Log(lane, s, ledger::RecordType::kSetPlan), ws, {}, ws.base_limit, ws.region, st);
      Touched(s, ws, 0);
    }
  }
  // Grants whose time has come, earliest first (burn order is not expiry order).
  for (bool again = true; again;) {
    again = false;
    for (const Grant& g : p->grants) {
      if (g.expires_at_ms != 0 && !(g.flags & ledger::kGrantEndsWithPeriod) && g.expires_at_ms <= now_ms) {
        const uint32_t number = g.number;
        const uint64_t expired_at = g.expires_at_ms;   // a type-18 expiry's time (replay finds it too)
        if (lane != nullptr) Log(lane, s, ledger::RecordType::kGrantEnd).U32(ws.index).UVar(number).U8(2);
        ledger::RemoveGrant(ws, number);
        PlanChanged(s, ws);   // before Touched: replay's order, so both see the same state
        Touched(s, ws, expired_at);
        again = true;
        break;
      }
    }
  }
  PlanChanged(s, ws);
}

void Ledger::Impl::AdvanceShard(ledger::LogLane* lane, Shard& s, uint64_t now_ms) {
  while (!s.events.empty() && s.events.top().first <= now_ms) {
    const auto [at, index] = s.events.top();
    s.events.pop();
    if (index >= s.workspaces.size()) continue;
    Workspace& ws = *s.workspaces[index];
    if (ws.next_event_ms == at && at <= now_ms) Advance(lane, s, ws, now_ms);
  }
  // Rebuild the queue before stale entries outnumber the workspaces that have an event.
  if (s.events.size() > 64 && s.events.size() > 4 * s.workspaces.size()) {
    decltype(s.events) fresh;
    for (const auto& ws : s.workspaces) {
      if (ws->next_event_ms != ledger::kNoEnd) fresh.emplace(ws->next_event_ms, ws->index);
    }
    s.events = std::move(fresh);
  }
}

namespace {

constexpr const char* kWorkspaceIdRule = "workspace must be 1-128 bytes of [A-Za-z0-9._:@-]";

// Runs f(lane, shard, workspace, now) under the workspace's shard lock after applying anything
// due, with a log lane taken first.
template <typename T, typename F>
Result<T> OnWorkspace(LedgerLog::Impl& impl, std::string_view workspace, F&& f) {
  if (!IsValidId(workspace)) return Status(Code::kInvalidId, kWorkspaceIdRule);
  const size_t hash = LedgerLog::Impl::HashId(workspace);
  Shard& s = impl.shards[LedgerLog::Impl::ShardOf(hash)];
  LaneHold lane(impl);
  const uint64_t now = impl.clock->NowMs();
  std::lock_guard lock(s.mu);
  if (Status room = LedgerLog::Impl::LogRoom(lane.get()); !room.ok()) return room;
  Workspace* ws = LedgerLog::Impl::Find(s, workspace, hash);
  if (ws == nullptr) return Status(Code::kUnknownWorkspace);
  if (now >= ws->next_event_ms) impl.Advance(lane.get(), s, *ws, now);
  return f(lane.get(), s, *ws, now);
}

}  // namespace

Result<GrantInfo> Ledger::AddGrant(std::string_view workspace, const GrantRequest& req) {
  if (req.amount == 0 || req.amount > kMaxLimit) {
    return Status(Code::kInvalidArgument, "amount must be between 1 and " + std::to_string(kMaxLimit));
  }
  if (req.priority > kMaxGrantPriority) {
    return Status(Code::kInvalidArgument, "priority must be between 0 and " + std::to_string(kMaxGrantPriority));
  }
  if (req.source != GrantSource::kTopup && req.source != GrantSource::kPromo && req.source != GrantSource::kAdjustment) {
    return Status(Code::kInvalidArgument, "source must be one of topup, promo, adjustment");
  }
  if (req.expires_at_ms > kMaxTimeMs) return Status(Code::kInvalidArgument, "expires_at must be at most 9999-12-31T23:59:59.999Z");
  if (!req.idempotency_id.empty() && !IsValidId(req.idempotency_id)) {
    return Status(Code::kInvalidId, "id must be 1-128 bytes of [A-Za-z0-9._:@-]");
  }
  return OnWorkspace<GrantInfo>(*impl_, workspace, [&](ledger::LogLane* lane, Shard& s, Workspace& ws, uint64_t now) -> Result<GrantInfo> {
    const ledger::IdempotencyParams params{ledger::IdempotentOp::kGrant, UINT32_MAX, nullptr, req.amount,
                                           req.priority, uint32_t(req.source), 0, req.expires_at_ms};
    if (!req.idempotency_id.empty()) {
      if (const ledger::IdempotencyEntry* e = s.idempotency.Find(ws.index, req.idempotency_id, now)) {
        if (!(e->params == params)) return Status(Code::kIdempotencyConflict);
        GrantInfo info;
        if (const Grant* g = ledger::FindGrant(ws, uint32_t(e->outcome.id))) {
          info = ledger::ToGrantInfo(ws, *g);
        } else {   // voided or expired since: answer what was created
          info.grant = uint32_t(e->outcome.id);
          info.source = req.source;
          info.amount = req.amount;
          info.remaining = 0;
          info.priority = req.priority;
          info.expires_at_ms = req.expires_at_ms;
          info.created_at_ms = e->created_ms;
        }
        info.replayed = true;
        return info;
      }
    }
    if (req.expires_at_ms != 0 && req.expires_at_ms <= now) {
      return Status(Code::kInvalidArgument, "expires_at must be in the future");
    }
    if (ws.plan) {
      size_t live = 0;
      for (const Grant& g : ws.plan->grants) {
        const auto src = GrantSource(g.source);
        // What the ledger makes (refund, rollover grants, the period's top-up grant) comes on top.
        const bool system = src == GrantSource::kRefund || src == GrantSource::kRollover ||
                            (src == GrantSource::kTopup && (g.flags & ledger::kGrantEndsWithPeriod));
        live += (!system && g.remaining != 0) ? 1 : 0;
      }
      if (live >= kMaxGrantsPerWorkspace) {
        return Status(Code::kCapacityExhausted, "the workspace has " + std::to_string(kMaxGrantsPerWorkspace) +
                                                    " live grants, the most it may have");
      }
    }
    if (ledger::GrantedRemaining(ws) + req.amount > kMaxLimit) {
      return Status(Code::kInvalidArgument, "the workspace's grants would exceed " + std::to_string(kMaxLimit));
    }
    ledger::MakeRoomForGrant(ws);
    Plan& p = ledger::EnsurePlan(ws);
    Grant g;
    g.number = p.next_grant++;
    g.source = uint8_t(req.source);
    g.priority = req.priority;
    g.amount = g.remaining = req.amount;
    g.expires_at_ms = req.expires_at_ms;
    g.created_ms = now;
    ledger::InsertGrant(p, g);
    Impl::PlanChanged(s, ws);
    if (lane != nullptr) {
      impl_->Log(lane, s, ledger::RecordType::kGrant)
          .U32(ws.index)
          .UVar(g.number)
          .U8(g.source)
          .U16(g.priority)
          .U64(g.amount)
          .U64(g.expires_at_ms)
          .U8(g.flags)
          .U64(g.created_ms)
          .Str8(req.idempotency_id);
    }
    impl_->Touched(s, ws, now);
    if (!req.idempotency_id.empty()) {
      s.idempotency.Insert(ws.index, req.idempotency_id, now, params, ledger::IdempotencyOutcome{g.number, g.amount, 0, 0, 0});
    }
    GrantInfo info = ledger::ToGrantInfo(ws, g);
    info.rev = ws.rev;
    return info;
  });
}

Result<std::vector<GrantInfo>> Ledger::ListGrants(std::string_view workspace) {
  return OnWorkspace<std::vector<GrantInfo>>(*impl_, workspace, [&](ledger::LogLane*, Shard&, Workspace& ws, uint64_t) -> Result<std::vector<GrantInfo>> {
    std::vector<GrantInfo> out;
    out.push_back(ledger::PlanGrantInfo(ws));
    if (ws.plan) {
      for (const Grant& g : ws.plan->grants) out.push_back(ledger::ToGrantInfo(ws, g));
    }
    return out;
  });
}

Result<GrantInfo> Ledger::VoidGrant(std::string_view workspace, uint32_t grant) {
  return OnWorkspace<GrantInfo>(*impl_, workspace, [&](ledger::LogLane* lane, Shard& s, Workspace& ws, uint64_t now) -> Result<GrantInfo> {
    const Grant* g = grant == 0 ? nullptr : ledger::FindGrant(ws, grant);
    if (g == nullptr) return Status(Code::kUnknownGrant, "no live grant gr_" + std::to_string(grant) + " in this workspace");
    GrantInfo info = ledger::ToGrantInfo(ws, *g);
    info.remaining = 0;
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kGrantEnd).U32(ws.index).UVar(grant).U8(1);
    ledger::RemoveGrant(ws, grant);
    Impl::PlanChanged(s, ws);
    impl_->Touched(s, ws, 0);   // type 18 carries no time
    info.rev = ws.rev;
    return info;
  });
}

}  // namespace genledger
