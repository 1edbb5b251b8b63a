// Settling operations addressed by a charge or reservation id: commit, release, refund; and what
// settles holds and due events without a request (the sweep).
#include "genledger/ledger.h"

#include <mutex>

#include "ledger/ledger_impl.h"
#include "log/log.h"

namespace genledger {

using ledger::Hold;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

namespace {

// Finds an open hold, expiring it first if its TTL ran out. On failure says why.
Status FindOpenHold(LedgerLog::Impl& impl, ledger::LogLane* lane, Shard& s, uint64_t seq, uint64_t now,
                    boost::unordered_flat_map<uint64_t, Hold>::iterator& out) {
  out = s.holds.find(seq);
  if (out == s.holds.end()) {
    // Reservation ids are dense per shard, so any earlier id was issued and has since settled.
    if (seq >= 1 && seq < s.next_reservation_seq) return Status(Code::kReservationSettled);
    return Status(Code::kUnknownReservation);
  }
  const Hold& h = out->second;
  if (h.workspace >= s.workspaces.size() || h.user >= s.workspaces[h.workspace]->users.size()) {
    return InternalError("reservation " + std::to_string(seq) + " of shard " + std::to_string(s.index) +
                         " names a workspace or user that does not exist");
  }
  if (out->second.expires_at_ms <= now) {
    Workspace& ws = *s.workspaces[h.workspace];
    const uint64_t expired_at = h.expires_at_ms;   // a type-10 record's time: its hold's expiry
    LedgerLog::Impl::DropHold(s, out);
    if (lane != nullptr) impl.Log(lane, s, ledger::RecordType::kExpire).U64(seq);
    impl.Touched(s, ws, expired_at);
    return Status(Code::kReservationSettled, "the reservation expired and was released");
  }
  return Status();
}

}  // namespace
namespace {

// The frame of every operation addressed by a charge or reservation id: the id names the shard
// (id = seq << kShardBits | shard); takes a log lane and that shard's lock, refuses while the
// lane is full, and runs f(lane, shard, seq, now, result) under the lock.
template <typename R, typename F>
R WithIdShard(LedgerLog::Impl& impl, uint64_t id, F&& f) {
  R r;
  const uint64_t now = impl.clock->NowMs();
  Shard& s = impl.shards[ledger::IdShard(id)];
  LaneHold lane(impl);
  std::lock_guard lock(s.mu);
  if (Status room = LedgerLog::Impl::LogRoom(lane.get()); !room.ok()) {
    r.status = std::move(room);
    return r;
  }
  f(lane.get(), s, ledger::IdSeq(id), now, r);
  return r;
}

}  // namespace

CommitResult Ledger::Commit(uint64_t reservation_id, std::optional<Usage> actual) {
  return WithIdShard<CommitResult>(*impl_, reservation_id, [&](ledger::LogLane* lane, Shard& s, uint64_t seq, uint64_t now, CommitResult& r) {
    boost::unordered_flat_map<uint64_t, Hold>::iterator it;
    r.status = FindOpenHold(*impl_, lane, s, seq, now, it);
    if (!r.status.ok()) return;
    const Hold h = it->second;
    if (Workspace& hw = *s.workspaces[h.workspace]; now >= hw.next_event_ms) impl_->Advance(lane, s, hw, now);
    uint64_t cost = h.held;
    if (actual.has_value()) {
      if (!h.priced()) {
        r.status = Status(Code::kUnknownModel,
                          "this reservation's model is no longer in the catalog and the reservation was "
                          "recorded without its price, so a usage cannot be priced: commit it without a usage "
                          "(the whole hold) or release it");
        return;
      }
      if (h.unit > kMaxUnitCode) {
        r.status = InternalError("reservation " + std::to_string(seq) + " has unit code " + std::to_string(h.unit));
        return;
      }
      Result<uint64_t> c = Cost(Price{Unit(h.unit), h.rate_milli}, *actual, "this reservation's model");
      if (!c.ok()) {
        r.status = c.status();
        return;
      }
      if (*c > h.held) {
        r.status = Status(Code::kCommitExceedsHold, "the actual cost " + std::to_string(*c) +
                                                        " is more than the " + std::to_string(h.held) + " held");
        return;
      }
      cost = *c;
    }
    Workspace& ws = *s.workspaces[h.workspace];
    const ledger::BurnParts parts = Impl::CommitHold(s, it, cost);
    for (const ledger::BurnPart& part : parts) r.overage += part.grant == ledger::kOverPart ? part.amount : 0;
    r.cost = cost;
    impl_->FoldUsage(ws, h.user, h.model_slot, now, cost);
    r.charge_id = Impl::RecordCharge(s, ws, h.user, cost, now, false, &parts, h.model_slot);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kCommit).U64(seq).U64(cost).U64(now);
    impl_->Touched(s, ws, now);
    r.remaining = ws.remaining();
    r.rev = ws.rev;
  });
}

ReleaseResult Ledger::Release(uint64_t reservation_id) {
  return WithIdShard<ReleaseResult>(*impl_, reservation_id, [&](ledger::LogLane* lane, Shard& s, uint64_t seq, uint64_t now, ReleaseResult& r) {
    boost::unordered_flat_map<uint64_t, Hold>::iterator it;
    r.status = FindOpenHold(*impl_, lane, s, seq, now, it);
    if (!r.status.ok()) return;
    const uint32_t ws_index = it->second.workspace;
    // A boundary due is applied first, so the remaining answered is the current period's.
    if (Workspace& hw = *s.workspaces[ws_index]; now >= hw.next_event_ms) impl_->Advance(lane, s, hw, now);
    r.released = Impl::DropHold(s, it);
    if (lane != nullptr) impl_->Log(lane, s, ledger::RecordType::kRelease).U64(seq);
    Workspace& ws = *s.workspaces[ws_index];
    impl_->Touched(s, ws, 0);   // type 9 carries no time
    r.remaining = ws.remaining();
    r.rev = ws.rev;
  });
}

RefundResult Ledger::Refund(uint64_t charge_id) {
  return WithIdShard<RefundResult>(*impl_, charge_id, [&](ledger::LogLane* lane, Shard& s, uint64_t seq, uint64_t now, RefundResult& r) {
    ledger::ChargeRecord* c = s.charges.Find(seq);
    if (c == nullptr) {
      r.status = (seq >= 1 && seq < s.charges.next_seq())
                     ? Status(Code::kUnknownCharge, "the charge is too old to refund (beyond the refund capacity)")
                     : Status(Code::kUnknownCharge);
      return;
    }
    // The window first: an expired charge answers the same whether or not the sweep has
    // forgotten it yet (docs/api.md: outside the window is unknown_charge).
    if (s.charges.Expired(*c, now)) {
      r.status = Status(Code::kUnknownCharge, "the charge is outside the refund window");
      return;
    }
    if (c->refunded()) {
      r.status = Status(Code::kAlreadyRefunded);
      return;
    }
    if (c->workspace >= s.workspaces.size() || c->user >= s.workspaces[c->workspace]->users.size()) {
      r.status = InternalError("charge " + std::to_string(seq) + " of shard " + std::to_string(s.index) +
                               " names a workspace or user that does not exist");
      return;
    }
    Workspace& ws = *s.workspaces[c->workspace];
    // A boundary due but not yet applied ends the charge's period first.
    if (now >= ws.next_event_ms) impl_->Advance(lane, s, ws, now);
    const bool past = c->period() != ledger::ChargeRecord::PeriodBits(ws.period);
    User& u = ws.users[c->user];
    if (c->has_breakdown()) {
      // Drawn from grants or beyond the allowance: each part goes back where it came from while
      // that is live; the rest becomes a refund grant (docs/ledger.md, "Refunds").
      auto bd = s.breakdowns.find(seq);
      ledger::BurnParts parts;
      if (bd != s.breakdowns.end()) {
        for (const auto& [grant, amount] : bd->second) parts.push_back({grant, amount});
      }
      const ledger::Unburned back = past ? ledger::PlanUnburnPast(ws, parts, c->cost()) : ledger::PlanUnburn(ws, parts, c->cost());
      if (bd == s.breakdowns.end() || !ledger::CheckUnburn(ws, back, c->cost(), past).ok() ||
          (!past && u.used < c->cost())) {
        r.status = InternalError("charge " + std::to_string(seq) + " of shard " + std::to_string(s.index) +
                                 " has no consistent record of its sources");
        return;
      }
      ledger::OverLimitUpdate over(ws, u);
      if (!past) {
        u.used -= c->cost();
        s.used -= c->cost();
      }
      ledger::ApplyUnburn(ws, back, c->cost(), now, past);
      over.Done();
      Impl::PlanChanged(s, ws);
      Impl::UnfoldUsage(ws, *c);
      c->set_refunded();
      r.refunded = c->cost();
      if (lane != nullptr) {
        auto b = impl_->Log(lane, s, ledger::RecordType::kRefundSources);
        b.U64(seq).U32(c->workspace).U32(c->user).U64(c->cost()).U8(past ? 1 : 0).U64(back.to_plan).U64(back.to_new_grant);
        b.U8(uint8_t(back.to_grants.size() + (back.from_overage != 0 ? 1 : 0)));
        for (const ledger::BurnPart& part : back.to_grants) b.UVar(part.grant).U64(part.amount);
        if (back.from_overage != 0) b.UVar(0).U64(back.from_overage);
      }
      impl_->Touched(s, ws, 0);   // refunds carry no time
      r.remaining = ws.remaining();
      r.rev = ws.rev;
      return;
    }
    if (past) {
      // Charged before a period boundary or reset: its cost left `used` with the old period, so
      // it is given back to the current period as a refund grant (docs/ledger.md, "Refunds").
      Impl::RefundToAllowance(s, ws, c->cost());
      Impl::UnfoldUsage(ws, *c);
      c->set_refunded();
      r.refunded = c->cost();
      if (lane != nullptr) {
        impl_->Log(lane, s, ledger::RecordType::kRefundToAllowance).U64(seq).U32(c->workspace).U64(c->cost());
      }
      impl_->Touched(s, ws, 0);   // refunds carry no time
      r.remaining = ws.remaining();
      r.rev = ws.rev;
      return;
    }
    // The charge is in this period's `used`, so these hold unless the ledger is inconsistent;
    // replay refuses such a record, so acknowledging it would make the log unrecoverable.
    if (ws.used < c->cost() || u.used < c->cost()) {
      r.status = InternalError("charge " + std::to_string(seq) + " of shard " + std::to_string(s.index) +
                               " costs more than its workspace's or user's used");
      return;
    }
    const bool was_over = ws.over_limit_users != 0 && ledger::IsOverLimit(u);
    ws.used -= c->cost();
    u.used -= c->cost();
    s.used -= c->cost();
    if (was_over && !ledger::IsOverLimit(u)) --ws.over_limit_users;
    if (ws.slow != 0) ws.limit_lowered = ledger::OverLimit(ws);
    Impl::UnfoldUsage(ws, *c);
    c->set_refunded();
    r.refunded = c->cost();
    if (lane != nullptr) {
      impl_->Log(lane, s, ledger::RecordType::kRefund).U64(seq).U32(c->workspace).U32(c->user).U64(c->cost());
    }
    impl_->Touched(s, ws, 0);   // refunds carry no time
    r.remaining = ws.remaining();
    r.rev = ws.rev;
  });
}


uint64_t Ledger::Impl::DropHold(Shard& s, boost::unordered_flat_map<uint64_t, Hold>::iterator it) {
  const Hold h = it->second;
  Workspace& ws = *s.workspaces[h.workspace];
  User& u = ws.users[h.user];
  // Freeing a hold can only bring a user back under its limit; the count is only touched when
  // some user of the workspace is over.
  const bool was_over = ws.over_limit_users != 0 && ledger::IsOverLimit(u);
  ws.reserved -= h.held;
  u.reserved -= h.held;
  s.totals.reserved -= h.held;
  if (was_over && !ledger::IsOverLimit(u)) --ws.over_limit_users;
  s.holds.erase(it);
  // Settled holds linger in the expiry heap; rebuild it before they outnumber the open ones.
  if (s.expiry.size() > 64 && s.expiry.size() > 2 * s.holds.size()) {
    decltype(s.expiry) fresh;
    for (const auto& [seq, hold] : s.holds) fresh.emplace(hold.expires_at_ms, seq);
    s.expiry = std::move(fresh);
  }
  return h.held;
}

ledger::BurnParts Ledger::Impl::CommitHold(Shard& s, boost::unordered_flat_map<uint64_t, Hold>::iterator it,
                                           uint64_t cost) {
  const Hold h = it->second;
  Workspace& ws = *s.workspaces[h.workspace];
  User& u = ws.users[h.user];
  const bool was_over = ledger::IsOverLimit(u);
  DropHold(s, it);
  const bool freed = was_over && !ledger::IsOverLimit(u);   // DropHold counted the user as back under
  ledger::BurnParts parts = Debit(ws, cost);
  u.used += cost;
  s.used += cost;
  // cost <= held, so the user ends no higher than it started, but it may still be over.
  if (freed && ledger::IsOverLimit(u)) ++ws.over_limit_users;
  if (ws.slow != 0) ws.limit_lowered = ledger::OverLimit(ws);
  return parts;
}

uint64_t Ledger::Impl::ExpireShard(ledger::LogLane* lane, Shard& s, uint64_t now_ms) {
  AdvanceShard(lane, s, now_ms);
  uint64_t n = 0;
  while (!s.expiry.empty() && s.expiry.top().first <= now_ms) {
    const auto [at, seq] = s.expiry.top();
    s.expiry.pop();
    auto it = s.holds.find(seq);
    if (it != s.holds.end() && it->second.expires_at_ms == at) {
      Workspace& ws = *s.workspaces[it->second.workspace];
      DropHold(s, it);
      if (lane != nullptr) Log(lane, s, ledger::RecordType::kExpire).U64(seq);
      Touched(s, ws, at);   // the hold's expiry, as replay finds it
      ++n;
    }
  }
  s.idempotency.Sweep(now_ms);
  s.charges.Expire(now_ms);
  if (!s.breakdowns.empty()) {
    const uint64_t first = s.charges.first_seq();
    boost::unordered::erase_if(s.breakdowns, [first](const auto& e) { return e.first < first; });
  }
  return n;
}

uint64_t Ledger::ExpireReservations() {
  const uint64_t now = impl_->clock->NowMs();
  uint64_t n = 0;
  for (uint32_t i = 0; i < ledger::kShardCount; ++i) {
    Shard& s = impl_->shards[i];
    LaneHold lane(*impl_);   // per shard: the log writer never waits for the whole sweep
    std::lock_guard lock(s.mu);
    n += impl_->ExpireShard(lane.get(), s, now);
  }
  return n;
}

}  // namespace genledger
