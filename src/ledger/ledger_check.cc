// The log plumbing of LedgerLog (ledger_log.h) and the ledger's self-checks: the state digest
// that proves a replay rebuilt exactly the state that was served, and the invariant walk.
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include <boost/container_hash/hash.hpp>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Hold;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

void LedgerLog::EnableLog(Ledger& ledger) {
  Impl& im = *ledger.impl_;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    Shard& s = im.shards[i];
    std::lock_guard lock(s.mu);
    im.lanes.StartNumbering(i, s.log_records);
  }
  im.logging = true;
}

void LedgerLog::SetLogWakeup(Ledger& ledger, std::function<void()> wakeup) {
  ledger.impl_->log_wakeup = std::move(wakeup);
}

Status LedgerLog::CollectLog(Ledger& ledger, std::string& out) { return ledger.impl_->lanes.Collect(out); }

Status LedgerLog::DrainLog(Ledger& ledger, const std::function<void(uint8_t type, std::string_view payload)>& emit) {
  std::string taken;
  Status st = CollectLog(ledger, taken);
  ForEachBufferedRecord(taken, emit);
  return st;
}

Status LedgerLog::ApplyLogRecord(Ledger& ledger, uint8_t type, std::string_view payload) {
  return ledger.impl_->Apply(type, payload);
}

uint64_t Ledger::StateDigest() const {
  // Only what a client can still see at the clock's now. Refundable charges and idempotency
  // entries past their windows are skipped: Refund and Charge already ignore them, and whether
  // they are still in memory depends on when ExpireReservations last swept, which is not logged
  // (a sweep forgets nothing observable). So a live ledger that swept and one recovered from its
  // WAL or snapshot, which hold expired entries until their own next sweep, are the same ledger
  // and must have the same digest (the power-cut simulation compares exactly these two).
  const uint64_t now = impl_->clock->NowMs();
  size_t h = 0;
  auto mix = [&h](const auto& v) { boost::hash_combine(h, v); };
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    mix(i);
    mix(s.next_reservation_seq);
    mix(s.charges.next_seq());
    for (const auto& wp : s.workspaces) {
      const Workspace& ws = *wp;
      mix(ws.id);
      for (uint64_t v : {ws.base_limit, ws.next_event_ms, ws.used, ws.reserved, ws.period, uint64_t(ws.region),
                         uint64_t(ws.limit_lowered), uint64_t(ws.slow), ws.rev}) {
        mix(v);
      }
      if (const ledger::Plan* p = ws.plan.get()) {
        for (uint64_t v : {uint64_t(p->interval), uint64_t(p->overage_mode), uint64_t(p->plan_priority),
                           uint64_t(p->rollover_periods), uint64_t(p->next_grant), p->anchor_ms, p->period_start_ms,
                           p->period_end_ms, p->rollover_max, p->overage_limit, p->pending_limit, p->overage,
                           p->grant_used}) {
          mix(v);
        }
        for (const ledger::Grant& g : p->grants) {
          for (uint64_t v : {uint64_t(g.number), uint64_t(g.source), uint64_t(g.flags), uint64_t(g.priority), g.amount,
                             g.remaining, g.expires_at_ms, g.created_ms}) {
            mix(v);
          }
        }
      }
      for (const User& u : ws.users) {
        mix(u.id);
        for (uint64_t v : {u.used, u.reserved, u.limit}) mix(v);
      }
    }
    std::vector<std::pair<uint64_t, Hold>> holds(s.holds.begin(), s.holds.end());
    std::sort(holds.begin(), holds.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [seq, hd] : holds) {
      for (uint64_t v : {seq, uint64_t(hd.workspace), uint64_t(hd.user), uint64_t(hd.rate_milli), uint64_t(hd.unit),
                         hd.held, hd.expires_at_ms}) {
        mix(v);
      }
    }
    auto& charges = const_cast<ledger::RecentCharges&>(s.charges);
    for (uint64_t seq = charges.first_seq(); seq < charges.next_seq(); ++seq) {
      const ledger::ChargeRecord* c = charges.Find(seq);
      if (charges.Expired(*c, now)) continue;
      mix(seq);
      for (uint64_t v : {c->cost(), uint64_t(c->workspace), uint64_t(c->user), uint64_t(c->at_s),
                         uint64_t(c->period()), uint64_t(c->refunded()), uint64_t(c->has_breakdown())}) {
        mix(v);
      }
      if (c->has_breakdown()) {
        if (auto bd = s.breakdowns.find(seq); bd != s.breakdowns.end()) {
          for (const auto& [grant, amount] : bd->second) {
            mix(uint64_t(grant));
            mix(amount);
          }
        }
      }
    }
    s.idempotency.ForEach([&](const std::string& key, const ledger::IdempotencyEntry& e) {
      if (s.idempotency.Expired(e, now)) return;
      mix(key);
      const auto& p = e.params;
      const auto& o = e.outcome;
      mix(p.model != nullptr ? std::string_view(*p.model) : std::string_view());   // by id: the same in any process
      for (uint64_t v : {e.created_ms, uint64_t(p.op), uint64_t(p.user), p.quantity,
                         p.seconds_milli, uint64_t(p.outputs), uint64_t(p.formats), p.ttl_ms, o.id, o.cost,
                         o.remaining, o.user_used, o.expires_at_ms}) {
        mix(v);
      }
    });
  }
  return uint64_t(h);
}

Status Ledger::CheckInvariants() const {
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    const Shard& s = impl_->shards[i];
    std::lock_guard lock(s.mu);
    // Reserved amounts implied by the open holds, per workspace and user.
    std::vector<std::vector<uint64_t>> held(s.workspaces.size());
    for (size_t w = 0; w < s.workspaces.size(); ++w) held[w].assign(s.workspaces[w]->users.size(), 0);
    for (const auto& [seq, h] : s.holds) held[h.workspace][h.user] += h.held;

    ledger::ShardTotals walked;
    uint64_t walked_used = 0;
    for (size_t w = 0; w < s.workspaces.size(); ++w) {
      const Workspace& ws = *s.workspaces[w];
      uint64_t used = 0, reserved = 0;
      uint32_t over = 0;
      walked.users += ws.users.size();
      walked_used += ws.used;
      walked.reserved += ws.reserved;
      CountLimit(walked, ws, true);
      for (size_t u = 0; u < ws.users.size(); ++u) {
        const User& user = ws.users[u];
        used += user.used;
        reserved += user.reserved;
        over += ledger::IsOverLimit(user) ? 1 : 0;
        if (user.reserved != held[w][u]) {
          return Status(Code::kCorruption, "user " + user.id + " of " + ws.id + " has reserved " +
                                               std::to_string(user.reserved) + " but open holds sum to " +
                                               std::to_string(held[w][u]));
        }
        if (!ws.limit_lowered && !ledger::Affords(user.limit, user.used, user.reserved, 0)) {
          return Status(Code::kCorruption, "user " + user.id + " of " + ws.id + " is over its limit");
        }
      }
      if (used != ws.used || reserved != ws.reserved) {
        return Status(Code::kCorruption, "workspace " + ws.id + ": users' used/reserved sum to " +
                                             std::to_string(used) + "/" + std::to_string(reserved) +
                                             " but the workspace has " + std::to_string(ws.used) + "/" +
                                             std::to_string(ws.reserved));
      }
      if (!ws.limit_lowered && ledger::WorkspaceOver(ws)) {
        return Status(Code::kCorruption, "workspace " + ws.id + " is over its limit");
      }
      if (const ledger::Plan* p = ws.plan.get()) {
        if (p->grant_used > ws.used || p->overage > ws.used - p->grant_used) {
          return Status(Code::kCorruption, "workspace " + ws.id + " drew more from grants and overage than it used");
        }
        for (const ledger::Grant& g : p->grants) {
          if (g.remaining > g.amount || g.number == 0 || g.number >= p->next_grant) {
            return Status(Code::kCorruption, "workspace " + ws.id + " has an inconsistent grant " + std::to_string(g.number));
          }
        }
      }
      if (over != ws.over_limit_users) {
        return Status(Code::kCorruption, "workspace " + ws.id + " counts " + std::to_string(ws.over_limit_users) +
                                             " users over their limit but has " + std::to_string(over));
      }
    }
    if (walked_used != s.used || walked.users != s.totals.users || walked.reserved != s.totals.reserved ||
        walked.limits != s.totals.limits || walked.unlimited != s.totals.unlimited) {
      return Status(Code::kCorruption, "shard " + std::to_string(i) + "'s running totals differ from its workspaces");
    }
  }
  return Status();
}

}  // namespace genledger
