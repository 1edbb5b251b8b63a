// A slow, obviously-correct reference model of a few workspaces' subscription state, for
// tests/ledger_model_test.cc (docs/testing.md, "Reference model"). Written from the rules of
// issue 14 and docs/wal-records.md ("Subscription records"), not from src/ledger/plan.cc, so that
// the two can disagree: the model keeps every source as a plain entry in a list and recomputes the
// burn order, spendable and remaining from scratch on every call. Fixed-length intervals only
// (minute, hour): the calendar of months is period_test's job.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "genledger/ledger.h"
#include "genledger/period.h"

namespace genledger::model {

// A source a part of a cost was drawn from: the plan allowance, a grant number, or nothing
// (soft/shadow overage).
inline constexpr uint32_t kFromPlan = 0;
inline constexpr uint32_t kFromNothing = UINT32_MAX;
inline constexpr uint64_t kNever = UINT64_MAX;

struct Part {
  uint32_t source;
  uint64_t amount;
};

struct Grant {
  uint32_t number = 0;
  GrantSource source = GrantSource::kTopup;
  uint16_t priority = kDefaultGrantPriority;
  uint64_t amount = 0;
  uint64_t remaining = 0;
  uint64_t expires_at = 0;        // 0: never
  bool ends_with_period = false;  // top-ups and refund grants
};

struct Admit {
  Code refuse = Code::kOk;
  Code would_refuse = Code::kOk;
};

struct User {
  uint64_t used = 0;
  uint64_t reserved = 0;
  uint64_t limit = kUnlimited;
};

inline uint64_t IntervalMs(Interval i) {
  switch (i) {
    case Interval::kMinute: return 60'000;
    case Interval::kHour: return 3'600'000;
    default: return 0;   // none (the model has no calendar)
  }
}

// One workspace. `plan_drawn` is what this period drew from the plan allowance (above the limit
// only after a limit lowered "now" or a hard-mode hold that outlived what backed it);
// `overage` what soft/shadow charges drew from no source. used = plan_drawn + drawn from grants +
// overage, always.
struct Workspace {
  uint64_t limit = kUnlimited;
  std::optional<uint64_t> pending_limit;
  Interval interval = Interval::kNone;
  uint64_t anchor = 0, start = 0, end = UINT64_MAX;
  uint16_t plan_priority = kDefaultGrantPriority;
  RolloverSpec rollover;
  OverageMode mode = OverageMode::kHard;
  uint64_t overage_limit = kUnlimited;
  uint64_t period = 1;
  uint64_t used = 0, reserved = 0;
  uint64_t plan_drawn = 0;
  uint64_t overage = 0;
  std::vector<Grant> grants;   // live grants, in creation order (the burn order is computed)
  uint32_t next_grant = 1;
  std::map<std::string, User> users;

  bool capped() const { return limit != kUnlimited; }
  uint64_t PlanLeft() const { return !capped() ? kUnlimited : (plan_drawn >= limit ? 0 : limit - plan_drawn); }
  uint64_t Granted() const {
    uint64_t s = 0;
    for (const Grant& g : grants) s += g.remaining;
    return s;
  }
  uint64_t Spendable() const { return !capped() ? kUnlimited : PlanLeft() + Granted(); }
  uint64_t Remaining() const {
    const uint64_t sp = Spendable();
    return sp == kUnlimited ? kUnlimited : (reserved >= sp ? 0 : sp - reserved);
  }
  // What is owed beyond every source: the plan drawn past its limit, soft/shadow overage, and
  // holds beyond what is spendable.
  uint64_t Overdrawn() const {
    if (!capped()) return 0;
    const uint64_t sp = Spendable();
    return (plan_drawn > limit ? plan_drawn - limit : 0) + overage + (reserved > sp ? reserved - sp : 0);
  }

  // Burn order key: priority, then expiry (a grant ending with the period and the plan expire at
  // the period's end; never after every time), then oldest (the plan is the period's oldest).
  // A period without an end (interval none) still ends, at the next manual reset: after every
  // time, before never.
  uint64_t PeriodEndKey() const { return end == UINT64_MAX ? kNever - 1 : end; }
  uint64_t ExpiryKey(const Grant& g) const {
    return g.ends_with_period ? PeriodEndKey() : (g.expires_at == 0 ? kNever : g.expires_at);
  }
  // The sources in burn order: kFromPlan for the plan, else a grant number.
  std::vector<uint32_t> BurnOrder() const {
    std::vector<std::tuple<uint16_t, uint64_t, uint32_t>> keys;
    keys.emplace_back(plan_priority, PeriodEndKey(), kFromPlan);
    for (const Grant& g : grants) keys.emplace_back(g.priority, ExpiryKey(g), g.number);
    std::sort(keys.begin(), keys.end());
    std::vector<uint32_t> out;
    for (const auto& k : keys) out.push_back(std::get<2>(k));
    return out;
  }

  // Whether `cost` more (a charge or a hold) for `user` is admitted: hard mode refuses what does
  // not fit what is spendable minus the holds; soft mode refuses only when the overage, once this
  // and every open hold are drawn, would pass its limit; shadow mode refuses nothing and says
  // what hard would have refused. User caps are hard except in shadow mode.
  Admit Admission(const std::string& user, uint64_t cost) const {
    Admit a;
    const uint64_t sp = Spendable();
    const bool fits = sp == kUnlimited || (reserved <= sp && cost <= sp - reserved);
    if (!fits) {
      switch (mode) {
        case OverageMode::kHard: a.refuse = Code::kInsufficientGenerations; return a;
        case OverageMode::kShadow: a.would_refuse = Code::kInsufficientGenerations; break;
        case OverageMode::kSoft: {
          // The overage once this and every open hold are drawn must stay within the limit.
          const uint64_t projected = overage + (reserved + cost - sp);
          if (overage_limit != kUnlimited && projected > overage_limit) {
            a.refuse = Code::kInsufficientGenerations;
            return a;
          }
          break;
        }
      }
    }
    auto it = users.find(user);
    if (it != users.end() && it->second.limit != kUnlimited &&
        it->second.used + it->second.reserved + cost > it->second.limit) {
      if (mode == OverageMode::kShadow) {
        if (a.would_refuse == Code::kOk) a.would_refuse = Code::kUserLimitExceeded;
      } else {
        a.refuse = Code::kUserLimitExceeded;
      }
    }
    return a;
  }

  Grant* FindGrant(uint32_t n) {
    for (Grant& g : grants) {
      if (g.number == n) return &g;
    }
    return nullptr;
  }

  // Draws `cost` in burn order. What no source covers is overage in soft/shadow mode; in hard
  // mode (only a hold committed after what backed it went away) it is drawn from the plan,
  // beyond its limit.
  std::vector<Part> Burn(uint64_t cost) {
    std::vector<Part> parts;
    uint64_t left = cost;
    for (uint32_t src : BurnOrder()) {
      if (left == 0) break;
      uint64_t take;
      if (src == kFromPlan) {
        take = std::min(left, PlanLeft());
        plan_drawn += take;
      } else {
        Grant* g = FindGrant(src);
        take = std::min(left, g->remaining);
        g->remaining -= take;
      }
      if (take != 0) parts.push_back({src, take});
      left -= take;
    }
    if (left != 0) {
      if (mode == OverageMode::kHard) {
        plan_drawn += left;
        parts.push_back({kFromPlan, left});
      } else {
        overage += left;
        parts.push_back({kFromNothing, left});
      }
    }
    used += cost;
    return parts;
  }

  // A refund grant of `amount` ending with the period, or more on the one there is. Nothing for
  // an unlimited workspace (there is no allowance to give back to).
  void AddRefundGrant(uint64_t amount) {
    if (!capped() || amount == 0) return;
    for (Grant& g : grants) {
      if (g.source == GrantSource::kRefund && g.ends_with_period) {
        g.amount += amount;
        g.remaining += amount;
        return;
      }
    }
    Grant g;
    g.number = next_grant++;
    g.source = GrantSource::kRefund;
    g.amount = g.remaining = amount;
    g.expires_at = end == UINT64_MAX ? 0 : end;
    g.ends_with_period = true;
    grants.push_back(g);
  }

  // Gives each part of a refunded charge of this period back to its source, or, when the grant is
  // gone, to a refund grant.
  void Unburn(const std::vector<Part>& parts, uint64_t cost) {
    uint64_t lost = 0;
    for (const Part& p : parts) {
      if (p.source == kFromPlan) {
        plan_drawn -= p.amount;
      } else if (p.source == kFromNothing) {
        overage -= p.amount;
      } else if (Grant* g = FindGrant(p.source)) {
        g->remaining += p.amount;
      } else {
        lost += p.amount;
      }
    }
    used -= cost;
    AddRefundGrant(lost);
  }

  // A refunded charge of an ended period: its cost left `used` with that period, so only the
  // parts drawn from grants still live go back to them; the rest becomes a refund grant.
  void UnburnPast(const std::vector<Part>& parts, uint64_t cost) {
    uint64_t back = 0;
    for (const Part& p : parts) {
      if (p.source == kFromPlan || p.source == kFromNothing) continue;
      if (Grant* g = FindGrant(p.source)) {
        g->remaining += p.amount;
        back += p.amount;
      }
    }
    AddRefundGrant(cost - back);
  }

  // Grants whose expiry has come (not those ending with the period: they go at the rollover).
  void ExpireGrants(uint64_t now) {
    std::erase_if(grants, [&](const Grant& g) { return !g.ends_with_period && g.expires_at != 0 && g.expires_at <= now; });
  }

  // What every new period does, at a boundary or a manual reset.
  void NewPeriodCommon() {
    if (pending_limit) {
      limit = *pending_limit;
      pending_limit.reset();
    }
    used = plan_drawn = overage = 0;
    for (auto& [id, u] : users) u.used = 0;
    // Grants of the period and used-up grants go; timed ones go when their time is past.
    std::erase_if(grants, [&](const Grant& g) {
      return g.ends_with_period || g.remaining == 0 || (g.expires_at != 0 && g.expires_at <= start);
    });
  }

  // Applies everything due at `now`: each boundary passed, one at a time (the unused allowance of
  // each ended period rolls over), then the grants whose time came.
  void Advance(uint64_t now) {
    if (interval != Interval::kNone && end != UINT64_MAX && now >= end) {
      std::vector<Grant> rolled;   // numbered once it is known which are still live at the end
      while (now >= end) {
        const uint64_t unused = capped() ? PlanLeft() : 0;
        start = end;
        end = start + IntervalMs(interval);
        ++period;
        NewPeriodCommon();
        std::erase_if(rolled, [&](const Grant& g) { return g.expires_at <= start; });
        if (rollover.max != 0 && capped() && std::min(rollover.max, unused) != 0) {
          Grant g;
          g.source = GrantSource::kRollover;
          g.priority = plan_priority;
          g.amount = g.remaining = std::min(rollover.max, unused);
          // K periods after the end of the period whose allowance it was.
          g.expires_at = start + uint64_t(rollover.periods) * IntervalMs(interval);
          rolled.push_back(g);
        }
      }
      for (Grant& g : rolled) {
        g.number = next_grant++;
        grants.push_back(g);
      }
    }
    ExpireGrants(now);
  }

  void ManualReset() {
    ++period;
    NewPeriodCommon();
  }
};

}  // namespace genledger::model
