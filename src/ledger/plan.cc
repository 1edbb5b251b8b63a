#include "ledger/plan.h"

#include <algorithm>

namespace genledger::ledger {

namespace {

OverageMode ModeOf(const Workspace& ws) noexcept {
  return ws.plan ? OverageMode(ws.plan->overage_mode) : OverageMode::kHard;
}

// Expiry as the burn order sees it: a grant ending with the period expires with it, and "never"
// sorts after every time; the plan allowance itself ends with the period. An open-ended period
// (interval none) ends after every timed grant but before "never".
uint64_t PeriodEndKey(const Plan& p) noexcept { return p.period_end_ms == kNoEnd ? kNoEnd - 1 : p.period_end_ms; }
uint64_t ExpiryKey(const Grant& g, const Plan& p) noexcept {
  if (g.flags & kGrantEndsWithPeriod) return PeriodEndKey(p);
  return g.expires_at_ms == 0 ? kNoEnd : g.expires_at_ms;
}

// Burn order: priority ascending, then expiry ascending (never last), then oldest. The plan
// allowance is the oldest source of its period (number 0).
struct Key {
  uint16_t priority;
  uint64_t expiry;
  uint32_t number;
  auto operator<=>(const Key&) const = default;
};
Key KeyOf(const Grant& g, const Plan& p) noexcept { return Key{g.priority, ExpiryKey(g, p), g.number}; }
Key PlanKey(const Plan& p) noexcept { return Key{p.plan_priority, PeriodEndKey(p), 0}; }


}  // namespace

// What this period drew from the plan allowance: used minus what grants covered minus soft/shadow
// overage (drawn from no source, counted apart: it must not also use up the plan, or a refund of
// a plan charge or a limit increase would give the plan back less than it took).
uint64_t PlanUsed(const Workspace& ws) noexcept {
  if (!ws.plan) return ws.used;
  const uint64_t other = ws.plan->grant_used + ws.plan->overage;
  return ws.used > other ? ws.used - other : 0;
}

uint64_t PlanLeft(const Workspace& ws) noexcept {
  if (ws.base_limit == kUnlimited) return kUnlimited;
  const uint64_t used = PlanUsed(ws);
  return used >= ws.base_limit ? 0 : ws.base_limit - used;
}

uint64_t GrantedRemaining(const Workspace& ws) noexcept {
  uint64_t sum = 0;
  if (ws.plan) {
    for (const Grant& g : ws.plan->grants) sum += g.remaining;   // each <= 10^15, at most ~100
  }
  return sum;
}

uint64_t Spendable(const Workspace& ws) noexcept {
  const uint64_t plan = PlanLeft(ws);
  return plan == kUnlimited ? kUnlimited : plan + GrantedRemaining(ws);
}

uint64_t Workspace::SlowRemaining() const noexcept {
  const uint64_t sp = Spendable(*this);
  if (sp == kUnlimited) return kUnlimited;
  return reserved >= sp ? 0 : sp - reserved;
}

Fit WorkspaceFit(const Workspace& ws, uint64_t cost) noexcept {
  const uint64_t sp = Spendable(ws);
  if (sp == kUnlimited || (ws.reserved <= sp && cost <= sp - ws.reserved)) return Fit::kFits;
  switch (ModeOf(ws)) {
    case OverageMode::kHard: return Fit::kRefused;
    case OverageMode::kShadow: return Fit::kShadow;
    case OverageMode::kSoft: {
      // What would end up uncovered once this and every open hold are drawn, on top of the overage
      // already counted: all of it must stay within the limit.
      const Plan& p = *ws.plan;
      if (p.overage_limit == kUnlimited) return Fit::kFits;
      const uint64_t uncovered = ws.reserved + cost - sp;   // > 0 here; sums far below 2^64
      return p.overage <= p.overage_limit && uncovered <= p.overage_limit - p.overage ? Fit::kFits : Fit::kRefused;
    }
  }
  return Fit::kRefused;
}

uint64_t AdmitBudget(const Workspace& ws) noexcept {
  const uint64_t room = ws.remaining();   // what hard mode admits (and shadow mode's answer)
  if (room == kUnlimited || ModeOf(ws) != OverageMode::kSoft) return room;
  const Plan& p = *ws.plan;
  if (p.overage_limit == kUnlimited) return kUnlimited;
  if (p.overage > p.overage_limit) return room;   // only what is covered
  // WorkspaceFit's soft test, reserved + cost - spendable <= limit - overage, solved for cost.
  const uint64_t reach = Spendable(ws) + (p.overage_limit - p.overage);   // sums of <= 10^15 terms
  return reach > ws.reserved ? reach - ws.reserved : 0;
}

bool WorkspaceOver(const Workspace& ws) noexcept {
  if (ws.base_limit == kUnlimited) return false;
  if (ModeOf(ws) != OverageMode::kHard) return false;   // owing more is what these modes allow
  return PlanUsed(ws) > ws.base_limit || ws.reserved > Spendable(ws);
}

BurnParts Burn(Workspace& ws, uint64_t cost) {
  BurnParts parts;
  uint64_t left = cost;
  uint64_t plan_left = PlanLeft(ws);
  auto take_plan = [&] {
    const uint64_t t = std::min(left, plan_left);
    if (t != 0) parts.push_back({kPlanPart, t});
    left -= t;
    plan_left -= plan_left == kUnlimited ? 0 : t;
  };
  Plan* p = ws.plan.get();
  if (p != nullptr) {
    const Key plan_key = PlanKey(*p);
    bool plan_done = false;
    for (Grant& g : p->grants) {
      if (left == 0) break;
      if (!plan_done && plan_key < KeyOf(g, *p)) {
        take_plan();
        plan_done = true;
        if (left == 0) break;
      }
      const uint64_t t = std::min(left, g.remaining);
      if (t == 0) continue;
      g.remaining -= t;
      p->grant_used += t;
      parts.push_back({g.number, t});
      left -= t;
    }
    if (!plan_done) take_plan();
  } else {
    take_plan();
  }
  if (left != 0) {
    if (p != nullptr && OverageMode(p->overage_mode) != OverageMode::kHard) {
      parts.push_back({kOverPart, left});
      p->overage += left;
    } else {
      // Hard mode has no overage: what no source covers (a hold committed after what backed it
      // expired) overdraws the plan allowance, and a refund gives it back there.
      auto plan = std::find_if(parts.begin(), parts.end(), [](const BurnPart& b) { return b.grant == kPlanPart; });
      if (plan != parts.end()) {
        plan->amount += left;
      } else {
        parts.push_back({kPlanPart, left});
      }
    }
  }
  ws.used += cost;
  if (parts.size() == 1 && parts[0].grant == kPlanPart) parts.clear();
  return parts;
}

const Grant* FindGrant(const Workspace& ws, uint32_t number) noexcept {
  if (!ws.plan) return nullptr;
  for (const Grant& g : ws.plan->grants) {
    if (g.number == number) return &g;
  }
  return nullptr;
}

Grant* FindGrant(Workspace& ws, uint32_t number) noexcept {
  return const_cast<Grant*>(FindGrant(static_cast<const Workspace&>(ws), number));
}

Unburned PlanUnburn(const Workspace& ws, const BurnParts& parts, uint64_t cost) {
  Unburned u;
  if (parts.empty()) {
    u.to_plan = cost;
    return u;
  }
  for (const BurnPart& part : parts) {
    if (part.grant == kPlanPart) {
      u.to_plan += part.amount;
    } else if (part.grant == kOverPart) {
      u.from_overage += part.amount;
    } else if (FindGrant(ws, part.grant) != nullptr) {
      u.to_grants.push_back(part);
    } else {
      u.to_new_grant += part.amount;
    }
  }
  return u;
}

Unburned PlanUnburnPast(const Workspace& ws, const BurnParts& parts, uint64_t cost) {
  Unburned u = PlanUnburn(ws, parts, cost);
  u.to_new_grant += u.to_plan + u.from_overage;
  u.to_plan = 0;
  u.from_overage = 0;
  return u;
}

Status CheckUnburn(const Workspace& ws, const Unburned& u, uint64_t cost, bool past) {
  uint64_t sum = u.to_plan + u.to_new_grant + u.from_overage, to_grants = u.to_new_grant;
  for (const BurnPart& part : u.to_grants) {
    const Grant* g = FindGrant(ws, part.grant);
    if (g == nullptr || part.amount > g->amount - g->remaining) {
      return Status(Code::kCorruption, "a refund returns more to a grant than was drawn from it");
    }
    sum += part.amount;
    to_grants += part.amount;
  }
  // A charge of an ended period left `used` with it: nothing comes off used, plan or overage.
  const bool fits = past ? u.to_plan == 0 && u.from_overage == 0
                         : ws.used >= cost && (ws.plan ? ws.plan->grant_used : 0) >= to_grants &&
                               PlanUsed(ws) >= u.to_plan && (ws.plan ? ws.plan->overage : 0) >= u.from_overage;
  if (sum != cost || !fits) return Status(Code::kCorruption, "a refund's parts do not match its charge");
  return Status();
}

void ApplyUnburn(Workspace& ws, const Unburned& u, uint64_t cost, uint64_t now_ms, bool past) {
  if (past) {
    for (const BurnPart& part : u.to_grants) FindGrant(ws, part.grant)->remaining += part.amount;
    if (u.to_new_grant != 0) AddRefundGrant(ws, u.to_new_grant, now_ms);
    return;
  }
  ws.used -= cost;
  if (Plan* p = ws.plan.get()) {
    for (const BurnPart& part : u.to_grants) {
      FindGrant(ws, part.grant)->remaining += part.amount;
      p->grant_used -= part.amount;
    }
    p->grant_used -= u.to_new_grant;
    p->overage -= std::min(p->overage, u.from_overage);
  }
  if (u.to_new_grant != 0) AddRefundGrant(ws, u.to_new_grant, now_ms);
}

Plan& EnsurePlan(Workspace& ws) {
  if (!ws.plan) ws.plan = std::make_unique<Plan>();
  return *ws.plan;
}

void InsertGrant(Plan& p, const Grant& g) {
  const Key k = KeyOf(g, p);
  auto it = std::find_if(p.grants.begin(), p.grants.end(), [&](const Grant& o) { return k < KeyOf(o, p); });
  p.grants.insert(it, g);
}

void MakeRoomForGrant(Workspace& ws) {
  if (!ws.plan || ws.plan->grants.size() < kMaxGrantsPerWorkspace) return;
  auto& gs = ws.plan->grants;
  gs.erase(std::remove_if(gs.begin(), gs.end(), [](const Grant& g) { return g.remaining == 0; }), gs.end());
}

void RemoveGrant(Workspace& ws, uint32_t number) {
  if (!ws.plan) return;
  auto& gs = ws.plan->grants;
  gs.erase(std::remove_if(gs.begin(), gs.end(), [&](const Grant& g) { return g.number == number; }), gs.end());
}

void AddRefundGrant(Workspace& ws, uint64_t amount, uint64_t /*now_ms*/) {
  if (ws.base_limit == kUnlimited || amount == 0) return;
  Plan& p = EnsurePlan(ws);
  for (Grant& g : p.grants) {
    if (GrantSource(g.source) == GrantSource::kRefund && (g.flags & kGrantEndsWithPeriod)) {
      // Bounded like every allowance: a chain of refunds cannot grow it past 10^15.
      const uint64_t add = std::min(amount, kMaxLimit - std::min(g.amount, kMaxLimit));
      g.amount += add;
      g.remaining += add;
      return;
    }
  }
  Grant g;
  g.number = p.next_grant++;
  g.source = uint8_t(GrantSource::kRefund);
  g.flags = kGrantEndsWithPeriod;
  g.priority = kDefaultGrantPriority;
  g.amount = g.remaining = std::min(amount, kMaxLimit);
  g.expires_at_ms = p.period_end_ms == kNoEnd ? 0 : p.period_end_ms;
  // The period's start, not the clock: replay (which has no clock) must make the same grant.
  g.created_ms = p.period_start_ms;
  InsertGrant(p, g);
}

void NewPeriodPlan(Workspace& ws, uint64_t rollover_boundaries, uint64_t new_start_ms, uint64_t new_end_ms) {
  Plan* p = ws.plan.get();
  if (p == nullptr) return;
  const uint64_t unused = PlanLeft(ws);
  const uint64_t old_start = p->period_start_ms;
  if (p->pending_limit != kNoPending) {
    ws.base_limit = p->pending_limit;
    p->pending_limit = kNoPending;
  }
  p->grant_used = 0;
  p->overage = 0;
  if (rollover_boundaries > 0) {
    p->period_start_ms = new_start_ms;
    p->period_end_ms = new_end_ms;
  }
  auto& gs = p->grants;
  gs.erase(std::remove_if(gs.begin(), gs.end(),
                          [&](const Grant& g) {
                            return (g.flags & kGrantEndsWithPeriod) || g.remaining == 0 ||
                                   (g.expires_at_ms != 0 && g.expires_at_ms <= p->period_start_ms);
                          }),
           gs.end());
  // Rollover grants: the plan allowance unused in each period that ended becomes a grant that
  // expires `rollover_periods` boundaries later. After downtime over several boundaries the
  // periods in between were unused in full; only those whose grant would still be live are made.
  if (rollover_boundaries > 0 && p->rollover_max > 0 && p->interval != Interval::kNone &&
      ws.base_limit != kUnlimited) {
    const auto old_period = PeriodContaining(p->interval, p->anchor_ms, old_start);
    if (old_period) {
      const uint64_t k = rollover_boundaries, K = p->rollover_periods;
      for (uint64_t j = k > K ? k - K + 1 : 1; j <= k; ++j) {
        const uint64_t base = j == 1 ? (unused == kUnlimited ? 0 : unused) : ws.base_limit;
        const uint64_t amount = std::min(p->rollover_max, base);
        const auto expires = Boundary(p->interval, p->anchor_ms, old_period->k + int64_t(j + K));
        const auto created = Boundary(p->interval, p->anchor_ms, old_period->k + int64_t(j));
        if (amount == 0 || !expires || !created || *expires <= p->period_start_ms) continue;
        Grant g;
        g.number = p->next_grant++;
        g.source = uint8_t(GrantSource::kRollover);
        g.priority = p->plan_priority;
        g.amount = g.remaining = amount;
        g.expires_at_ms = *expires;
        g.created_ms = *created;
        InsertGrant(*p, g);
      }
    }
  }
}

uint64_t RefreshPlanState(Workspace& ws) {
  const Plan* p = ws.plan.get();
  if (p == nullptr) {
    ws.slow = 0;
    ws.next_event_ms = kNoEnd;
    return kNoEnd;
  }
  ws.slow = (!p->grants.empty() || p->overage_mode != uint8_t(OverageMode::kHard) || p->grant_used != 0 || p->overage != 0) ? 1 : 0;
  uint64_t next = p->period_end_ms;
  for (const Grant& g : p->grants) {
    if (g.expires_at_ms != 0 && !(g.flags & kGrantEndsWithPeriod)) next = std::min(next, g.expires_at_ms);
  }
  ws.next_event_ms = next;
  return next;
}

GrantInfo PlanGrantInfo(const Workspace& ws) {
  GrantInfo g;
  g.grant = 0;
  g.source = GrantSource::kPlan;
  g.amount = ws.base_limit;
  g.remaining = PlanLeft(ws);
  g.priority = ws.plan ? ws.plan->plan_priority : kDefaultGrantPriority;
  g.expires_at_ms = ws.plan && ws.plan->period_end_ms != kNoEnd ? ws.plan->period_end_ms : 0;
  g.created_at_ms = ws.plan ? ws.plan->period_start_ms : 0;
  g.ends_with_period = true;
  return g;
}

GrantInfo ToGrantInfo(const Workspace& ws, const Grant& g) {
  GrantInfo i;
  i.grant = g.number;
  i.source = GrantSource(g.source);
  i.amount = g.amount;
  i.remaining = g.remaining;
  i.priority = g.priority;
  i.expires_at_ms = g.expires_at_ms;
  // A grant ending with the period expires with the current period, whatever the period was when
  // it was made (a schedule cleared since: none, like the plan entry).
  if ((g.flags & kGrantEndsWithPeriod) && ws.plan) i.expires_at_ms = ws.plan->period_end_ms == kNoEnd ? 0 : ws.plan->period_end_ms;
  i.created_at_ms = g.created_ms;
  i.ends_with_period = (g.flags & kGrantEndsWithPeriod) != 0;
  return i;
}

}  // namespace genledger::ledger
