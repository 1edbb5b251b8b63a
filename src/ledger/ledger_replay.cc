// Recovery: applying WAL records (docs/wal-records.md), one by one or in batches (the digest that
// checks a replay is in ledger_check.cc).
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
                                                "grant_end",      "refund_sources",   "set_catalog",
                                                "charge_model", "set_alerts", "webhook_add",
                                                "webhook_delete", "webhook_progress", "token_add",
                                                "token_revoke"};
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

// A refund record's effect on the refunded charge, when the ring still has it: marked refunded,
// and taken out of its workspace's usage history as the live refund did.
void RefundedInReplay(Shard& s, uint64_t seq) {
  ledger::ChargeRecord* c = s.charges.Find(seq);
  if (c == nullptr) return;
  if (!c->refunded() && c->workspace < s.workspaces.size()) {
    LedgerLog::Impl::UnfoldUsage(*s.workspaces[c->workspace], *c);
  }
  c->set_refunded();
}

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
  // The workspace the record changed and the record's time when it carries one: Touched after it
  // is applied, as the live path calls it after each record (docs/events.md, "Revisions").
  Workspace* touched = nullptr;
  uint64_t touched_at = 0;
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
      touched = CreateWorkspace(s, id, hash);
      ApplyWorkspaceSettings(s, *touched, limit, Region(region));
      break;
    }
    case RecordType::kUpdateWorkspace: {
      Workspace* ws = workspace(r.U32());
      const uint64_t limit = r.U64();
      const uint8_t region = r.U8();
      if (!r.ok() || !r.done() || ws == nullptr || region > 1) return Corrupt(bad());
      ApplyWorkspaceSettings(s, *ws, limit, Region(region));
      touched = ws;
      break;
    }
    case RecordType::kSetUserLimit: {
      Workspace* ws = workspace(r.U32());
      const UserRef u = r.User();
      const uint64_t limit = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr || !user_ok(*ws, u)) return Corrupt(bad());
      ApplyUserLimit(*ws, ws->users[resolve_user(*ws, u)], limit);
      touched = ws;
      break;
    }
    case RecordType::kTopUp: {
      Workspace* ws = workspace(r.U32());
      const uint64_t amount = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      ApplyTopUp(s, *ws, amount);
      touched = ws;
      break;
    }
    case RecordType::kResetPeriod: {
      Workspace* ws = workspace(r.U32());
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      ResetWorkspacePeriod(s, *ws);
      touched = ws;
      break;
    }
    case RecordType::kCharge:
    case RecordType::kChargeCompact:
    case RecordType::kChargeModel:
    case RecordType::kReserve:
    case RecordType::kReservePriced: {
      const bool priced = RecordType(type) == RecordType::kReservePriced;
      const bool reserve = priced || RecordType(type) == RecordType::kReserve;
      const bool with_model = RecordType(type) == RecordType::kChargeModel;
      const bool compact = with_model || RecordType(type) == RecordType::kChargeCompact;
      Workspace* ws = workspace(compact ? r.UVar32() : r.U32());
      const UserRef u = compact ? r.UVarUser() : r.User();
      // Type 21's `uvar_model`: slot + 1, or 0 then the model id and category (a first use).
      uint32_t model_ref = 0;
      std::string_view new_model;
      uint8_t new_category = ledger::kUnknownCategory;
      if (with_model) {
        model_ref = r.UVar32();
        if (model_ref == 0) {
          new_model = r.Str8();
          new_category = r.U8();
        }
      }
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
      if (with_model && model_ref == 0 &&
          (new_model.empty() || (new_category > uint8_t(Category::kAction) && new_category != ledger::kUnknownCategory))) {
        return Corrupt(bad());
      }
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
        const uint16_t slot = usage.on() ? ModelSlotById(*ws, model) : ledger::kUnknownModelSlot;
        s.holds.emplace(seq, Hold{ws->index, user, rate_milli, unit, slot, amount, expires_at});
        s.expiry.emplace(expires_at, seq);
        outcome = {ledger::MakeId(seq, shard), amount, ws->remaining(), usr.used, expires_at};
      } else {
        // Drawn from the same sources as live: they depend only on the state before the record.
        const ledger::BurnParts parts = Debit(*ws, amount);
        usr.used += amount;
        s.used += amount;
        // The model the live ledger folded this charge under (type 12 and 6: none). A slot the
        // workspace does not have (history was off meanwhile) reads as unknown.
        uint16_t slot = ledger::kUnknownModelSlot;
        if (usage.on() && with_model) {
          ledger::UsageHistory& h = History(*ws);
          if (model_ref == 0) {
            bool added = false;
            slot = h.SlotOf(ModelKey(new_model), new_category, &added);
          } else if (model_ref - 1 < h.models().size()) {
            slot = uint16_t(model_ref - 1);
          }
        }
        FoldUsage(*ws, user, slot, at, amount);
        outcome = {RecordCharge(s, *ws, user, amount, at, /*recovering=*/true, &parts, slot), amount, ws->remaining(),
                   usr.used, 0};
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
      touched = ws;
      touched_at = at;
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
      touched = s.workspaces[h.workspace].get();
      touched_at = at;
      FoldUsage(*touched, h.user, h.model_slot, at, cost);
      RecordCharge(s, *touched, h.user, cost, at, /*recovering=*/true, &parts, h.model_slot);
      break;
    }
    case RecordType::kRelease:
    case RecordType::kExpire: {
      const uint64_t seq = r.U64();
      auto it = s.holds.find(seq);
      if (!r.ok() || !r.done() || it == s.holds.end()) return Corrupt(bad());
      touched = s.workspaces[it->second.workspace].get();
      // An expiry's time is its hold's (the live path passes the same); a release has none.
      if (RecordType(type) == RecordType::kExpire) touched_at = it->second.expires_at_ms;
      DropHold(s, it);
      break;
    }
    case RecordType::kRefund: {
      const uint64_t seq = r.U64();
      Workspace* ws = workspace(r.U32());
      const uint32_t user = r.U32();
      const uint64_t cost = r.U64();
      // A type-11 refund gives back a charge drawn from the plan alone: it cannot take more than
      // the plan's part of used (found by wal_fuzz: a forged one left grants and overage above used).
      if (!r.ok() || !r.done() || ws == nullptr || user >= ws->users.size() || ws->used < cost ||
          ws->users[user].used < cost || ledger::PlanUsed(*ws) < cost) {
        return Corrupt(bad());
      }
      ledger::OverLimitUpdate over(*ws, ws->users[user]);
      ws->used -= cost;
      ws->users[user].used -= cost;
      s.used -= cost;
      over.Done();
      if (ws->slow != 0) ws->limit_lowered = ledger::OverLimit(*ws);
      RefundedInReplay(s, seq);
      touched = ws;
      break;
    }
    case RecordType::kSetPlan: {
      const uint32_t ws_ref = r.U32();
      const std::string_view new_id = ws_ref == ledger::kNewWorkspace ? r.Str8() : std::string_view();
      Workspace* ws = ws_ref == ledger::kNewWorkspace ? nullptr : workspace(ws_ref);
      const uint64_t limit = r.U64();
      const uint8_t region = r.U8();
      PlanSettings p;
      const bool valid = ReadPlanSettings(r, p);
      const size_t hash = HashId(new_id);
      const bool creates = ws_ref == ledger::kNewWorkspace;
      if (!r.ok() || !r.done() || !valid || (!creates && ws == nullptr) || region > 1 ||
          (creates && (!IsValidId(new_id) || ShardOf(hash) != shard || Find(s, new_id, hash) != nullptr))) {
        return Corrupt(bad());
      }
      if (creates) {
        workspace_count.fetch_add(1, std::memory_order_relaxed);
        ws = CreateWorkspace(s, new_id, hash);
      }
      ApplyWorkspaceSettings(s, *ws, limit, Region(region));
      ApplyPlanSettings(s, *ws, p);
      touched = ws;
      break;
    }
    case RecordType::kRollover: {
      Workspace* ws = workspace(r.U32());
      const uint64_t boundaries = r.U64();
      const uint64_t start = r.U64();
      const uint64_t end = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr || !ws->plan || boundaries == 0 || end <= start) return Corrupt(bad());
      ApplyNewPeriod(s, *ws, boundaries, start, end);
      touched = ws;
      touched_at = start;
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
      touched = ws;
      touched_at = g.created_ms;
      break;
    }
    case RecordType::kGrantEnd: {
      Workspace* ws = workspace(r.U32());
      const uint32_t number = r.UVar32();
      const uint8_t reason = r.U8();
      if (!r.ok() || !r.done() || ws == nullptr || reason < 1 || reason > 2 || ledger::FindGrant(*ws, number) == nullptr) {
        return Corrupt(bad());
      }
      if (reason == 2) touched_at = ledger::FindGrant(*ws, number)->expires_at_ms;   // as Advance passes
      ledger::RemoveGrant(*ws, number);
      PlanChanged(s, *ws);
      touched = ws;
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
      RefundedInReplay(s, seq);
      touched = ws;
      break;
    }
    case RecordType::kRefundToAllowance: {
      const uint64_t seq = r.U64();
      Workspace* ws = workspace(r.U32());
      const uint64_t cost = r.U64();
      if (!r.ok() || !r.done() || ws == nullptr) return Corrupt(bad());
      RefundToAllowance(s, *ws, cost);
      RefundedInReplay(s, seq);
      touched = ws;
      break;
    }
    case RecordType::kSetCatalog: {
      if (shard != 0) return Corrupt(bad());   // catalog records are numbered in shard 0
      if (Status st = ApplySetCatalog(r); !st.ok()) return st;
      break;
    }
    case RecordType::kTokenAdd:
    case RecordType::kTokenRevoke: {
      if (shard != 0) return Corrupt(bad());   // token records are numbered in shard 0
      Status st = RecordType(type) == RecordType::kTokenAdd ? ApplyTokenAdd(r) : ApplyTokenRevoke(r);
      if (!st.ok()) return st;
      break;
    }
    case RecordType::kSetAlerts: {
      if (Status st = ledger::ApplySetAlerts(s, r, &touched, &touched_at); !st.ok()) return st;
      break;
    }
    case RecordType::kWebhookAdd:
    case RecordType::kWebhookDelete:
    case RecordType::kWebhookProgress:
      if (Status st = ApplyWebhookRecord(RecordType(type), s, r); !st.ok()) return st;   // ledger_webhooks.cc
      break;
    default:
      return Corrupt("unknown record type " + std::to_string(type));
  }
  if (touched != nullptr) Touched(s, *touched, touched_at);
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
      case RecordType::kChargeModel:
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
    const bool compact = RecordType(r.type) == RecordType::kChargeCompact || RecordType(r.type) == RecordType::kChargeModel;
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

}  // namespace genledger
