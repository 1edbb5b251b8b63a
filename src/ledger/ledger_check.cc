// The log plumbing of LedgerLog (ledger_log.h) and the ledger's self-checks: the state digest
// that proves a replay rebuilt exactly the state that was served, and the invariant walk.
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include <boost/container_hash/hash.hpp>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/usage_history.h"

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

namespace {

// boost::hash_combine into one running value: the digest's only mixing step.
class Mixer {
 public:
  template <typename T>
  void operator()(const T& v) { boost::hash_combine(h_, v); }
  uint64_t value() const { return uint64_t(h_); }

 private:
  size_t h_ = 0;
};

// One period of a usage history: its rows by key (not by first use, which a snapshot need not
// keep) and its "(other)" row.
void MixUsagePeriod(Mixer& mix, const ledger::UsagePeriod& p) {
  std::vector<ledger::UsageRow> rows(p.rows.begin(), p.rows.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.key < b.key; });
  mix(rows.size());
  for (const ledger::UsageRow& r : rows) {
    for (uint64_t v : {r.key, r.used, r.charges}) mix(v);
  }
  mix(p.other.used);
  mix(p.other.charges);
}

// A workspace's usage history: model slots (ids by value: the same in any process), the current
// period's rows and each kept previous period. No history and an empty one read the same
// (GetUsage cannot tell them apart).
void MixUsageHistory(Mixer& mix, const ledger::UsageHistory* h) {
  const bool empty = h == nullptr || (h->models().empty() && h->previous().empty() && h->current().rows.empty() &&
                                      h->current().other.charges == 0 && h->current().other.used == 0);
  mix(empty);
  if (empty) return;
  mix(h->models().size());
  for (const ledger::ModelSlot& m : h->models()) {
    mix(m.id != nullptr ? std::string_view(*m.id) : std::string_view());
    mix(m.category);
  }
  MixUsagePeriod(mix, h->current());
  mix(h->previous().size());
  for (const ledger::UsagePeriod& p : h->previous()) {
    for (uint64_t v : {p.period, p.start_ms, p.end_ms}) mix(v);
    MixUsagePeriod(mix, p);
  }
}

// A shard's event outbox: its counters and its last kEventsKept events (every outbox holds at
// least those; how many older ones it keeps depends on the webhooks' KeepEventsFrom and the
// ledger-wide byte ceiling, which replay does not rebuild).
void MixOutbox(Mixer& mix, const ledger::EventOutbox& o) {
  mix(o.next_seq);
  mix(o.clock_ms);
  const size_t skip = o.events.size() > ledger::kEventsKept ? o.events.size() - ledger::kEventsKept : 0;
  for (size_t i = skip; i < o.events.size(); ++i) {
    const ledger::StoredEvent& e = o.events[i];
    mix(e.alert);
    for (uint64_t v : {uint64_t(e.workspace), uint64_t(e.kind), uint64_t(e.fired), e.used, e.remaining, e.limit,
                       e.period, e.rev, e.at_ms}) {
      mix(v);
    }
  }
}

void MixWebhook(Mixer& mix, const WebhookInfo& w) {
  mix(w.number);
  mix(w.url);
  mix(w.events);
  mix(w.workspaces.has_value());
  if (w.workspaces) {
    mix(w.workspaces->size());
    for (const std::string& id : *w.workspaces) mix(id);
  }
  mix(w.secret);
  mix(w.created_ms);
}

void MixToken(Mixer& mix, const TokenInfo& t) {
  for (uint64_t v : {t.id, uint64_t(t.role), t.created_at_ms, t.expires_at_ms, uint64_t(t.scoped)}) mix(v);
  for (uint8_t b : t.digest) mix(b);
  mix(t.name);
  mix(t.workspaces.size());
  for (const std::string& id : t.workspaces) mix(id);
}

}  // namespace

uint64_t Ledger::StateDigest() const {
  // Only what a client can still see at the clock's now. Refundable charges and idempotency
  // entries past their windows are skipped: Refund and Charge already ignore them, and whether
  // they are still in memory depends on when ExpireReservations last swept, which is not logged
  // (a sweep forgets nothing observable). So a live ledger that swept and one recovered from its
  // WAL or snapshot, which hold expired entries until their own next sweep, are the same ledger
  // and must have the same digest (the power-cut simulation compares exactly these two).
  // Everything else replay and snapshot loading rebuild is in, each part in an order that does
  // not depend on how it was built: balances, plans and grants, users, holds (with their price
  // and model slot), charges (with their model), idempotency entries, revisions, alerts and the
  // built-in events' flags, the event outbox, usage history, the webhook registry and cursors,
  // minted tokens and the id counters. Left out: the catalog (see ledger.h), derived indexes and
  // totals (CheckInvariants checks those), the per-shard WAL record numbers (a ledger that never
  // logged has none) and what only the running process sets (KeepEventsFrom, byte counts).
  const uint64_t now = impl_->clock->NowMs();
  Mixer mix;
  {
    // Shard-0 state: the webhook registry (shard 0's lock) and the tokens (also tokens_mu).
    const Shard& s0 = impl_->shards[0];
    std::lock_guard lock(s0.mu);
    const ledger::WebhookState& wh = impl_->webhooks;
    mix(wh.next_number);
    mix(wh.registry.size());
    for (const auto& [number, w] : wh.registry) MixWebhook(mix, w);   // a std::map: by number
    std::lock_guard guard(impl_->tokens_mu);
    mix(impl_->tokens.next_id());
    const std::vector<TokenInfo> tokens = impl_->tokens.List();   // by id
    mix(tokens.size());
    for (const TokenInfo& t : tokens) MixToken(mix, t);
  }
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
                         uint64_t(ws.limit_lowered), uint64_t(ws.slow), ws.rev, uint64_t(ws.event_flags)}) {
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
      // Alerts in the order they were set (GetAlerts' order), with their state.
      const size_t alerts = ws.alerts ? ws.alerts->alerts.size() : 0;
      mix(alerts);
      for (size_t a = 0; a < alerts; ++a) {
        const ledger::Alert& al = ws.alerts->alerts[a];
        mix(al.name);
        for (uint64_t v : {uint64_t(al.when), al.at, uint64_t(al.fired)}) mix(v);
      }
      MixUsageHistory(mix, ws.history.get());
    }
    std::vector<std::pair<uint64_t, Hold>> holds(s.holds.begin(), s.holds.end());
    std::sort(holds.begin(), holds.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [seq, hd] : holds) {
      for (uint64_t v : {seq, uint64_t(hd.workspace), uint64_t(hd.user), uint64_t(hd.rate_milli), uint64_t(hd.unit),
                         uint64_t(hd.model_slot), hd.held, hd.expires_at_ms}) {
        mix(v);
      }
    }
    auto& charges = const_cast<ledger::RecentCharges&>(s.charges);
    for (uint64_t seq = charges.first_seq(); seq < charges.next_seq(); ++seq) {
      const ledger::ChargeRecord* c = charges.Find(seq);
      if (charges.Expired(*c, now)) continue;
      mix(seq);
      for (uint64_t v : {c->cost(), uint64_t(ledger::ModelOfPacked(c->cost_model)), uint64_t(c->workspace),
                         uint64_t(c->user), uint64_t(c->at_s), uint64_t(c->period()), uint64_t(c->refunded()),
                         uint64_t(c->has_breakdown())}) {
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
    MixOutbox(mix, s.outbox);
    const auto& cursors = impl_->webhooks.cursors[i];   // a std::map: by webhook number
    mix(cursors.size());
    for (const auto& [number, c] : cursors) {
      for (uint64_t v : {uint64_t(number), c.next_seq, c.given_up, c.dropped}) mix(v);
    }
  }
  return mix.value();
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
