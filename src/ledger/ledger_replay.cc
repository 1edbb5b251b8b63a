// Recovery: applying WAL records (docs/wal-records.md), and the state digest that proves a replay
// rebuilt exactly the state that was served.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <boost/container_hash/hash.hpp>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"

namespace genledger {

using ledger::Hold;
using ledger::RecordReader;
using ledger::RecordType;
using ledger::Shard;
using ledger::User;
using ledger::UserRef;
using ledger::Workspace;

std::string_view ledger::RecordTypeName(uint8_t type) noexcept {
  static constexpr std::string_view kNames[] = {"invalid",        "create_workspace", "update_workspace",
                                                "set_user_limit", "top_up",           "reset_period",
                                                "charge",         "reserve",          "commit",
                                                "release",        "expire",           "refund",
                                                "charge_compact", "reserve_priced",   "refund_to_allowance",
                                                "set_plan",       "rollover",         "grant",
                                                "grant_end",      "refund_sources",   "set_catalog"};
  static_assert(std::size(kNames) == kMaxRecordType + 1);
  return type <= kMaxRecordType ? kNames[type] : "unknown";
}

namespace {

Status Corrupt(std::string what) { return Status(Code::kCorruption, std::move(what)); }

struct IdempotencyFields {
  bool present = false;
  std::string_view id, model;
  Usage usage;
};

IdempotencyFields ReadIdempotency(RecordReader& r) {
  IdempotencyFields f;
  f.present = r.U8() != 0;
  if (f.present) {
    f.id = r.Str8();
    f.model = r.Str8();
    f.usage.quantity = r.U64();
    f.usage.seconds_milli = r.U64();
    f.usage.outputs = r.U32();
    f.usage.formats = r.U32();
  }
  return f;
}

}  // namespace

Status Ledger::Impl::Apply(uint8_t type, std::string_view payload) {
  RecordReader r(payload);
  const uint16_t shard = r.U16();
  const uint64_t no = r.U64();
  if (!r.ok() || shard >= ledger::kShardCount) return Corrupt("record prefix malformed or shard out of range");
  Shard& s = shards[shard];
  std::lock_guard lock(s.mu);
  if (no != s.log_records + 1) {
    return Corrupt("shard " + std::to_string(shard) + " record " + std::to_string(no) +
                   " does not follow record " + std::to_string(s.log_records));
  }
  auto workspace = [&](uint32_t index) -> Workspace* {
    return index < s.workspaces.size() ? s.workspaces[index].get() : nullptr;
  };
  auto user_ok = [](const Workspace& ws, const UserRef& u) {
    return u.is_new() ? (IsValidId(u.new_id) && ws.FindUser(u.new_id) < 0) : u.index < ws.users.size();
  };
  auto resolve_user = [&](Workspace& ws, const UserRef& u) -> uint32_t {
    if (!u.is_new()) return u.index;
    user_count.fetch_add(1, std::memory_order_relaxed);   // the live ledger took its slot
    return AddUser(s, ws, u.new_id);
  };
  // Built only on failure: an allocation per replayed record showed up in recovery time.
  auto bad = [type] { return "malformed " + std::string(ledger::RecordTypeName(type)) + " record"; };

  // Decode and validate every field before changing anything, per type.
  switch (RecordType(type)) {
    case RecordType::kCreateWorkspace: {
      const std::string_view id = r.Str8();
      const uint64_t limit = r.U64();
      const uint8_t region = r.U8();
      const size_t hash = HashId(id);
      if (!r.ok() || !r.done() || !IsValidId(id) || region > 1 || ShardOf(hash) != shard ||
          Find(s, id, hash) != nullptr) {
        return Corrupt(bad());
      }
      workspace_count.fetch_add(1, std::memory_order_relaxed);
      ApplyWorkspaceSettings(s, *CreateWorkspace(s, id, hash), limit, Region(region));
      break;
    }
    case RecordType::kUpdateWorkspace: {
      Workspace* ws = workspace(r.U32());
      const uint64_t limit = r.U64();
      const uint8_t region = r.U8();
      if (!r.ok() || !r.done() || ws == nullptr || region > 1) return Corrupt(bad());
      ApplyWorkspaceSettings(s, *ws, limit, Region(region));
      break;
    }
    case RecordType::kSetUserLimit: {
      Workspace* ws = workspace(r.U32());
      const UserRef u = r.User();
      const uint64_t limit = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr || !user_ok(*ws, u)) return Corrupt(bad());
      ApplyUserLimit(*ws, ws->users[resolve_user(*ws, u)], limit);
      break;
    }
    case RecordType::kTopUp: {
      Workspace* ws = workspace(r.U32());
      const uint64_t amount = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      ApplyTopUp(s, *ws, amount);
      break;
    }
    case RecordType::kResetPeriod: {
      Workspace* ws = workspace(r.U32());
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      ResetWorkspacePeriod(s, *ws);
      break;
    }
    case RecordType::kCharge:
    case RecordType::kChargeCompact:
    case RecordType::kReserve:
    case RecordType::kReservePriced: {
      const bool priced = RecordType(type) == RecordType::kReservePriced;
      const bool reserve = priced || RecordType(type) == RecordType::kReserve;
      const bool compact = RecordType(type) == RecordType::kChargeCompact;
      Workspace* ws = workspace(compact ? r.UVar32() : r.U32());
      const UserRef u = compact ? r.UVarUser() : r.User();
      std::string_view model;
      uint64_t expires_at = 0, ttl = 0;
      uint8_t unit = ledger::kUnpriced;
      uint32_t rate_milli = 0;
      if (reserve) model = r.Str8();
      if (priced) {
        unit = r.U8();
        rate_milli = r.U32();
      }
      const uint64_t amount = compact ? r.UVar64() : r.U64();
      if (reserve) expires_at = r.U64();
      const uint64_t at = compact ? r.UVar64() : r.U64();
      if (reserve) ttl = r.U64();
      const IdempotencyFields idem = ReadIdempotency(r);
      if (!r.ok() || !r.done() || ws == nullptr || !user_ok(*ws, u)) return Corrupt(bad());
      if (idem.present && !IsValidId(idem.id)) return Corrupt(bad());
      if (priced && (unit > kMaxUnitCode || rate_milli > kMaxRateMilli)) return Corrupt(bad());
      const uint32_t user = resolve_user(*ws, u);
      User& usr = ws->users[user];
      // The live ledger refused what would have put a user over its limit; a record that does
      // anyway (hand-written) still keeps the count right.
      ledger::OverLimitUpdate over(*ws, usr);
      ledger::IdempotencyOutcome outcome;
      // Only a type-7 hold is priced by the catalog (the one current at its place in the log).
      const CatalogItem* item = priced || !reserve ? nullptr : catalog->Find(model);
      if (reserve) {
        // A type-7 hold had no price in its record: it takes its model's price in this catalog,
        // or stays unpriced (full commit or release only) when the catalog no longer has it.
        if (item != nullptr) {
          if (Result<Price> p = PriceOf(*item); p.ok()) {
            unit = uint8_t(p->unit);
            rate_milli = p->rate_milli;
          }
        }
        ws->reserved += amount;
        usr.reserved += amount;
        s.totals.reserved += amount;
        const uint64_t seq = s.next_reservation_seq++;
        s.holds.emplace(seq, Hold{ws->index, user, rate_milli, unit, amount, expires_at});
        s.expiry.emplace(expires_at, seq);
        outcome = {ledger::MakeId(seq, shard), amount, ws->remaining(), usr.used, expires_at};
      } else {
        // Drawn from the same sources as live: they depend only on the state before the record.
        const ledger::BurnParts parts = Debit(*ws, amount);
        usr.used += amount;
        s.used += amount;
        outcome = {RecordCharge(s, *ws, user, amount, at, /*recovering=*/true, &parts), amount, ws->remaining(), usr.used, 0};
      }
      over.Done();
      if (ws->slow != 0) ws->limit_lowered = ledger::OverLimit(*ws);
      if (idem.present) {
        const ledger::IdempotencyParams params{
            reserve ? ledger::IdempotentOp::kReserve : ledger::IdempotentOp::kCharge,
            user, ModelKey(idem.model), idem.usage.quantity, idem.usage.seconds_milli, idem.usage.outputs,
            idem.usage.formats, ttl};
        s.idempotency.Insert(ws->index, idem.id, at, params, outcome, /*recovering=*/true);
      }
      break;
    }
    case RecordType::kCommit: {
      const uint64_t seq = r.U64();
      const uint64_t cost = r.U64();
      const uint64_t at = r.U64();
      auto it = s.holds.find(seq);
      if (!r.ok() || !r.done() || it == s.holds.end() || cost > it->second.held) return Corrupt(bad());
      const Hold h = it->second;
      const ledger::BurnParts parts = CommitHold(s, it, cost);
      RecordCharge(s, *s.workspaces[h.workspace], h.user, cost, at, /*recovering=*/true, &parts);
      break;
    }
    case RecordType::kRelease:
    case RecordType::kExpire: {
      const uint64_t seq = r.U64();
      auto it = s.holds.find(seq);
      if (!r.ok() || !r.done() || it == s.holds.end()) return Corrupt(bad());
      DropHold(s, it);
      break;
    }
    case RecordType::kRefund: {
      const uint64_t seq = r.U64();
      Workspace* ws = workspace(r.U32());
      const uint32_t user = r.U32();
      const uint64_t cost = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr || user >= ws->users.size() || ws->used < cost ||
          ws->users[user].used < cost) {
        return Corrupt(bad());
      }
      ledger::OverLimitUpdate over(*ws, ws->users[user]);
      ws->used -= cost;
      ws->users[user].used -= cost;
      s.used -= cost;
      over.Done();
      if (ws->slow != 0) ws->limit_lowered = ledger::OverLimit(*ws);
      if (ledger::ChargeRecord* c = s.charges.Find(seq)) c->set_refunded();
      break;
    }
    case RecordType::kSetPlan: {
      const uint32_t ws_ref = r.U32();
      const std::string_view new_id = ws_ref == ledger::kNewWorkspace ? r.Str8() : std::string_view();
      Workspace* ws = ws_ref == ledger::kNewWorkspace ? nullptr : workspace(ws_ref);
      const uint64_t limit = r.U64();
      const uint8_t region = r.U8();
      PlanSettings p;
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
      const size_t hash = HashId(new_id);
      const bool creates = ws_ref == ledger::kNewWorkspace;
      if (!r.ok() || !r.done() || (!creates && ws == nullptr) || region > 1 || uint8_t(p.interval) > 6 ||
          p.overage_mode > 2 || p.plan_priority > kMaxGrantPriority || p.rollover_periods > kMaxRolloverPeriods ||
          (creates && (!IsValidId(new_id) || ShardOf(hash) != shard || Find(s, new_id, hash) != nullptr))) {
        return Corrupt(bad());
      }
      if (creates) {
        workspace_count.fetch_add(1, std::memory_order_relaxed);
        ws = CreateWorkspace(s, new_id, hash);
      }
      ApplyWorkspaceSettings(s, *ws, limit, Region(region));
      ApplyPlanSettings(s, *ws, p);
      break;
    }
    case RecordType::kRollover: {
      Workspace* ws = workspace(r.U32());
      const uint64_t boundaries = r.U64();
      const uint64_t start = r.U64();
      const uint64_t end = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr || !ws->plan || boundaries == 0 || end <= start) return Corrupt(bad());
      ApplyNewPeriod(s, *ws, boundaries, start, end);
      break;
    }
    case RecordType::kGrant: {
      Workspace* ws = workspace(r.U32());
      ledger::Grant g;
      g.number = r.UVar32();
      g.source = r.U8();
      g.priority = r.U16();
      g.amount = g.remaining = r.U64();
      g.expires_at_ms = r.U64();
      g.flags = r.U8();
      g.created_ms = r.U64();
      const std::string_view id = r.Str8();
      if (!r.ok() || !r.done() || ws == nullptr || g.source == 0 || g.source > 5 || g.flags > 1 ||
          g.priority > kMaxGrantPriority || g.amount == 0 || g.amount > kMaxLimit || (!id.empty() && !IsValidId(id))) {
        return Corrupt(bad());
      }
      ledger::MakeRoomForGrant(*ws);
      ledger::Plan& p = ledger::EnsurePlan(*ws);
      if (g.number != p.next_grant) return Corrupt(bad());
      p.next_grant++;
      ledger::InsertGrant(p, g);
      PlanChanged(s, *ws);
      if (!id.empty()) {
        const ledger::IdempotencyParams params{ledger::IdempotentOp::kGrant, UINT32_MAX, nullptr, g.amount,
                                               g.priority, uint32_t(g.source), 0, g.expires_at_ms};
        s.idempotency.Insert(ws->index, id, g.created_ms, params, ledger::IdempotencyOutcome{g.number, g.amount, 0, 0, 0},
                             /*recovering=*/true);
      }
      break;
    }
    case RecordType::kGrantEnd: {
      Workspace* ws = workspace(r.U32());
      const uint32_t number = r.UVar32();
      const uint8_t reason = r.U8();
      if (!r.ok() || !r.done() || ws == nullptr || reason < 1 || reason > 2 || ledger::FindGrant(*ws, number) == nullptr) {
        return Corrupt(bad());
      }
      ledger::RemoveGrant(*ws, number);
      PlanChanged(s, *ws);
      break;
    }
    case RecordType::kRefundSources: {
      const uint64_t seq = r.U64();
      Workspace* ws = workspace(r.U32());
      const uint32_t user = r.U32();
      const uint64_t cost = r.U64();
      const uint8_t past = r.U8();
      ledger::Unburned back;
      back.to_plan = r.U64();
      back.to_new_grant = r.U64();
      const uint8_t n = r.U8();
      for (uint8_t i = 0; r.ok() && i < n; ++i) {
        const uint32_t grant = r.UVar32();
        const uint64_t amount = r.U64();
        if (grant == 0) {
          back.from_overage += amount;
        } else {
          back.to_grants.push_back({grant, amount});
        }
      }
      if (!r.ok() || !r.done() || ws == nullptr || past > 1 || user >= ws->users.size() ||
          (past == 0 && ws->users[user].used < cost) || !ledger::CheckUnburn(*ws, back, cost, past != 0).ok()) {
        return Corrupt(bad());
      }
      ledger::OverLimitUpdate over(*ws, ws->users[user]);
      if (past == 0) {
        ws->users[user].used -= cost;
        s.used -= cost;
      }
      ledger::ApplyUnburn(*ws, back, cost, 0, past != 0);
      over.Done();
      PlanChanged(s, *ws);
      if (ledger::ChargeRecord* c = s.charges.Find(seq)) c->set_refunded();
      break;
    }
    case RecordType::kRefundToAllowance: {
      const uint64_t seq = r.U64();
      Workspace* ws = workspace(r.U32());
      const uint64_t cost = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      RefundToAllowance(s, *ws, cost);
      if (ledger::ChargeRecord* c = s.charges.Find(seq)) c->set_refunded();
      break;
    }
    case RecordType::kSetCatalog: {
      if (shard != 0) return Corrupt(bad());   // catalog records are numbered in shard 0
      if (Status st = ApplySetCatalog(r); !st.ok()) return st;
      break;
    }
    default:
      return Corrupt("unknown record type " + std::to_string(type));
  }
  s.log_records = no;
  return Status();
}

void LedgerLog::ForEachBufferedRecord(std::string_view buffer,
                                      const std::function<void(uint8_t type, std::string_view payload)>& emit) {
  while (buffer.size() >= ledger::kBufferedHeader) {
    uint32_t len;
    std::memcpy(&len, buffer.data() + 1, 4);
    len = boost::endian::little_to_native(len);
    emit(uint8_t(buffer[0]), buffer.substr(ledger::kBufferedHeader, len));
    buffer.remove_prefix(std::min<size_t>(buffer.size(), ledger::kBufferedHeader + len));
  }
}

Status LedgerLog::ApplyLogBatch(Ledger& ledger, std::span<const LogRecordView> records, size_t* applied) {
  Impl& im = *ledger.impl_;
  // Records that name a workspace by index carry it right after the prefix, and the ones that
  // name a user carry it right after that (docs/wal-records.md). `user` is kNewUser when the
  // record names no existing user.
  auto indexes = [](const LogRecordView& r, uint32_t* shard, uint32_t* ws, uint32_t* user) {
    bool names_user = false;
    switch (RecordType(r.type)) {
      case RecordType::kSetUserLimit:
      case RecordType::kCharge:
      case RecordType::kChargeCompact:
      case RecordType::kReserve:
      case RecordType::kReservePriced:
        names_user = true;
        break;
      case RecordType::kUpdateWorkspace:
      case RecordType::kTopUp:
      case RecordType::kResetPeriod:
        break;
      default:
        return false;
    }
    RecordReader reader(r.payload);
    *shard = reader.U16();
    (void)reader.U64();
    const bool compact = RecordType(r.type) == RecordType::kChargeCompact;
    *ws = compact ? reader.UVar32() : reader.U32();
    *user = !names_user ? ledger::kNewUser : (compact ? reader.UVarUser() : reader.User()).index;
    return reader.ok() && *shard < ledger::kShardCount;
  };
  // Three waves of prefetches over a chunk, as in ChargeBatch: the workspace slot, then the
  // workspace's lines, then the user entry. The WAL's order is the order charges arrived in,
  // so consecutive records touch unrelated workspaces, and each wave would otherwise be a
  // dependent miss per record.
  constexpr size_t kChunk = 64;
  *applied = 0;
  for (size_t base = 0; base < records.size(); base += kChunk) {
    const size_t n = std::min(kChunk, records.size() - base);
    uint32_t shard[kChunk], ws[kChunk], user[kChunk];
    bool has[kChunk];
    // The caller owns these shards exclusively, so reading their vectors without the lock is safe.
    for (size_t i = 0; i < n; ++i) {
      has[i] = indexes(records[base + i], &shard[i], &ws[i], &user[i]) &&
               ws[i] < im.shards[shard[i]].workspaces.size();
      if (has[i]) __builtin_prefetch(&im.shards[shard[i]].workspaces[ws[i]]);
    }
    for (size_t i = 0; i < n; ++i) {
      if (!has[i]) continue;
      const Workspace* w = im.shards[shard[i]].workspaces[ws[i]].get();
      __builtin_prefetch(w, 1);
      __builtin_prefetch(reinterpret_cast<const char*>(w) + 64, 1);
    }
    for (size_t i = 0; i < n; ++i) {
      if (!has[i] || user[i] == ledger::kNewUser) continue;
      const Workspace* w = im.shards[shard[i]].workspaces[ws[i]].get();
      if (user[i] < w->users.size()) __builtin_prefetch(w->users.data() + user[i], 1);
    }
    for (size_t i = 0; i < n; ++i) {
      if (Status st = im.Apply(records[base + i].type, records[base + i].payload); !st.ok()) return st;
      ++*applied;
    }
  }
  return Status();
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
                         uint64_t(ws.limit_lowered), uint64_t(ws.slow)}) {
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
      for (uint64_t v : {c->cost, uint64_t(c->workspace), uint64_t(c->user), uint64_t(c->at_s),
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

}  // namespace genledger
