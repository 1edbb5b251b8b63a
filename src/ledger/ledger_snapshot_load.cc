// Loading a shard's snapshot payload back (layout and validation rules: docs/snapshot-format.md,
// "Section payloads"; the encoder is ledger_snapshot.cc).
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_flat_set.hpp>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/snapshot_blocks.h"
#include "ledger/snapshot_payload.h"

namespace genledger {

using ledger::ChargeRecord;
using ledger::Hold;
using ledger::IdempotencyOutcome;
using ledger::IdempotencyParams;
using ledger::kPayloadVersion;
using ledger::RecordReader;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

namespace {

Status Corrupt(uint32_t shard, const std::string& what) {
  return Status(Code::kCorruption, "snapshot section of shard " + std::to_string(shard) + ": " + what);
}

// A decoded hold or idempotency entry waiting for the shard to be installed.
struct StagedHold {
  uint64_t seq;
  Hold hold;
};
struct StagedEntry {
  uint32_t workspace;
  std::string_view id;
  uint64_t created_ms;
  IdempotencyParams params;
  IdempotencyOutcome outcome;
};

// Version 3's plans and breakdowns (docs/snapshot-format.md), into the staged workspaces.
Status LoadPlans(RecordReader& r, uint32_t shard, std::vector<std::unique_ptr<Workspace>>& staged,
                 const std::vector<ChargeRecord>& charges, uint64_t first_seq,
                 std::vector<std::pair<uint64_t, ledger::BurnParts>>& breakdowns) {
  const uint32_t plan_count = r.U32();
  if (!r.ok() || plan_count > staged.size()) return Corrupt(shard, "bad plan count");
  int64_t last = -1;
  for (uint32_t i = 0; i < plan_count; ++i) {
    const uint32_t index = r.U32();
    if (!r.ok() || int64_t(index) <= last || index >= staged.size()) return Corrupt(shard, "bad plan workspace index");
    last = index;
    Workspace& ws = *staged[index];
    PlanSettings st;
    const bool valid = ReadPlanSettings(r, st);
    auto p = std::make_unique<ledger::Plan>();
    p->interval = st.interval;
    p->anchor_ms = st.anchor_ms;
    p->period_start_ms = st.period_start_ms;
    p->period_end_ms = st.period_end_ms;
    p->plan_priority = st.plan_priority;
    p->rollover_max = st.rollover_max;
    p->rollover_periods = st.rollover_periods;
    p->overage_mode = st.overage_mode;
    p->overage_limit = st.overage_limit;
    p->pending_limit = st.pending_limit;
    p->overage = r.U64();
    p->grant_used = r.U64();
    p->next_grant = r.U32();
    const uint32_t grant_count = r.U32();
    if (!r.ok() || !valid || p->grant_used > ws.used ||
        p->overage > ws.used - p->grant_used || p->next_grant == 0 ||
        grant_count > 4096) {
      return Corrupt(shard, "bad plan of workspace " + ws.id);
    }
    for (uint32_t j = 0; j < grant_count; ++j) {
      ledger::Grant g;
      g.number = r.U32();
      g.source = r.U8();
      g.priority = r.U16();
      g.amount = r.U64();
      g.remaining = r.U64();
      g.expires_at_ms = r.U64();
      g.flags = r.U8();
      g.created_ms = r.U64();
      if (!r.ok() || g.number == 0 || g.number >= p->next_grant || g.source == 0 || g.source > 5 || g.flags > 1 ||
          g.priority > kMaxGrantPriority || g.remaining > g.amount || g.amount > kMaxLimit) {
        return Corrupt(shard, "bad grant of workspace " + ws.id);
      }
      for (const ledger::Grant& o : p->grants) {
        if (o.number == g.number) return Corrupt(shard, "duplicate grant of workspace " + ws.id);
      }
      ledger::InsertGrant(*p, g);
    }
    ws.plan = std::move(p);
  }
  const uint32_t bd_count = r.U32();
  if (!r.ok() || bd_count > charges.size()) return Corrupt(shard, "bad breakdown count");
  uint64_t marked = 0;
  for (const ChargeRecord& c : charges) marked += c.has_breakdown() ? 1 : 0;
  if (marked != bd_count) return Corrupt(shard, "breakdowns do not match the charges marked as having one");
  for (uint32_t i = 0; i < bd_count; ++i) {
    const uint64_t seq = r.U64();
    const uint8_t n = r.U8();
    ledger::BurnParts parts;
    uint64_t sum = 0;
    for (uint8_t j = 0; r.ok() && j < n; ++j) {
      const uint32_t grant = r.U32();
      const uint64_t amount = r.U64();
      parts.push_back({grant, amount});
      sum += amount;   // each part <= a cost: no overflow for n <= 255
    }
    if (!r.ok() || seq < first_seq || seq - first_seq >= charges.size() ||
        !charges[seq - first_seq].has_breakdown() || sum != charges[seq - first_seq].cost()) {
      return Corrupt(shard, "a breakdown names no marked charge or does not sum to its cost");
    }
    breakdowns.emplace_back(seq, std::move(parts));
  }
  return Status();
}

// Version 4's extension blocks (snapshot_blocks.h; docs/snapshot-format.md, "Extension
// blocks"), decoded into the staged workspaces (or staged shard state) before anything is
// installed. Each tag at most once; an unknown tag is corruption (state this build does not know).
// Shard-level state of the blocks, installed with the shard.
struct StagedBlocks {
  std::optional<ledger::TokenTable> tokens;   // shard 0's block 5
  ledger::AlertsBlock alerts;                 // block 2; empty without it: no alerts, seq 1
  // Block 4: the registry (shard 0) and this shard's cursors, decoded into a scratch state.
  std::unique_ptr<ledger::WebhookState> webhooks;
};

Status LoadBlocks(LedgerLog::Impl& impl, RecordReader& r, uint32_t shard, std::vector<std::unique_ptr<Workspace>>& staged,
                  std::vector<StagedHold>& holds, StagedBlocks& out) {
  bool seen[ledger::kMaxBlockTag + 1] = {};
  for (;;) {
    const uint8_t tag = r.U8();
    if (!r.ok()) return Corrupt(shard, "extension blocks not ended");
    if (tag == uint8_t(ledger::BlockTag::kEnd)) return Status();
    const uint32_t length = r.U32();
    const std::string_view body = r.Bytes(length);
    if (!r.ok()) return Corrupt(shard, "truncated extension block " + std::to_string(tag));
    if (tag > ledger::kMaxBlockTag || seen[tag]) return Corrupt(shard, "unknown or repeated extension block " + std::to_string(tag));
    seen[tag] = true;
    RecordReader b(body);
    switch (ledger::BlockTag(tag)) {
      case ledger::BlockTag::kRevs: {
        const uint32_t n = b.U32();
        if (!b.ok() || n != staged.size() || body.size() != 4 + 8 * size_t(n)) return Corrupt(shard, "bad revs block");
        for (auto& ws : staged) ws->rev = b.U64();
        break;
      }
      case ledger::BlockTag::kTokens: {
        if (shard != 0) return Corrupt(shard, "a tokens block outside shard 0");
        out.tokens.emplace();
        if (Status st = out.tokens->DecodeBlock(body); !st.ok()) return Corrupt(shard, "tokens block: " + st.ToString());
        (void)b.Bytes(body.size());   // DecodeBlock checked that it consumed the body
        break;
      }
      case ledger::BlockTag::kWebhooks: {
        out.webhooks = std::make_unique<ledger::WebhookState>();
        if (Status st = ledger::DecodeWebhooksBlock(body, shard, *out.webhooks); !st.ok()) {
          return Corrupt(shard, st.ToString());
        }
        (void)b.Bytes(body.size());   // decoded in full above
        break;
      }
      case ledger::BlockTag::kAlerts: {
        if (Status st = ledger::DecodeAlertsBlock(body, staged.size(), out.alerts); !st.ok()) return Corrupt(shard, "bad alerts block");
        (void)b.Bytes(body.size());   // decoded in full above
        break;
      }
      case ledger::BlockTag::kUsageHistory: {
        // Histories go to the staged workspaces, slots to the staged holds (ledger_usage.cc).
        boost::unordered_flat_map<uint64_t, size_t> by_seq;
        for (size_t i = 0; i < holds.size(); ++i) by_seq.emplace(holds[i].seq, i);
        if (Status st = impl.DecodeUsageBlock(body, shard, staged, [&](uint64_t seq) -> Hold* {
              auto it = by_seq.find(seq);
              return it == by_seq.end() ? nullptr : &holds[it->second].hold;
            });
            !st.ok()) {
          return st;
        }
        (void)b.Bytes(body.size());   // consumed by DecodeUsageBlock
        break;
      }
      default:
        return Corrupt(shard, "extension block " + std::to_string(tag) + " is not loaded by this build");
    }
    if (!b.done()) return Corrupt(shard, "extension block " + std::to_string(tag) + " has trailing bytes");
  }
}

}  // namespace

bool LedgerLog::ParseLogRecordPrefix(std::string_view payload, uint32_t* shard, uint64_t* record_no) noexcept {
  RecordReader r(payload);
  *shard = r.U16();
  *record_no = r.U64();
  return r.ok();
}

Status LedgerLog::LoadShardSection(Ledger& ledger, uint32_t shard, uint64_t record_no, std::string_view payload) {
  if (shard >= ledger::kShardCount) return Status(Code::kInvalidArgument, "shard out of range");
  Impl& im = *ledger.impl_;
  // The catalog section, if any, was installed before any shard (recovery reads it unlocked).
  const Catalog& catalog = *im.catalog;

  // Decode and check everything into staging structures first: the shard is only touched once
  // the whole payload is known to be consistent.
  RecordReader r(payload);
  const uint8_t version = r.U8();
  if (!r.ok() || version < 1 || version > kPayloadVersion) {
    return Corrupt(shard, "unsupported payload version or empty payload");
  }
  const uint64_t next_reservation_seq = r.U64();
  const uint32_t ws_count = r.U32();
  if (!r.ok()) return Corrupt(shard, "truncated");
  // Each workspace takes at least 44 bytes: bound the allocation by what the payload can hold.
  if (ws_count > payload.size() / 44) return Corrupt(shard, "workspace count exceeds payload");
  std::vector<std::unique_ptr<Workspace>> staged;
  std::vector<size_t> hashes;
  staged.reserve(ws_count);
  hashes.reserve(ws_count);
  boost::unordered_flat_set<std::string_view> ids;
  for (uint32_t w = 0; w < ws_count; ++w) {
    auto ws = std::make_unique<Workspace>();
    const std::string_view id = r.Str8();
    ws->base_limit = r.U64();
    const uint64_t topup = r.U64();
    ws->used = r.U64();
    ws->reserved = r.U64();
    ws->period = r.U64();
    const uint8_t region = r.U8();
    const uint8_t lowered = r.U8();
    const uint32_t user_count = r.U32();
    if (!r.ok()) return Corrupt(shard, "truncated workspace " + std::to_string(w));
    const size_t hash = Impl::HashId(id);
    if (!IsValidId(id) || Impl::ShardOf(hash) != shard || !ids.insert(id).second || region > 1 || lowered > 1) {
      return Corrupt(shard, "workspace " + std::to_string(w) + " has a bad or duplicate id, region or flag");
    }
    if (user_count > payload.size() / 26) return Corrupt(shard, "user count exceeds payload");
    if (topup != 0) {
      // Versions 1 and 2 kept this period's top-ups as a number: a topup grant now (number 1).
      if (version >= 3 || topup > kMaxLimit) return Corrupt(shard, "workspace " + std::to_string(w) + " has a bad topup");
      ledger::Plan& p = ledger::EnsurePlan(*ws);
      ledger::Grant g;
      g.number = p.next_grant++;
      g.source = uint8_t(GrantSource::kTopup);
      g.flags = ledger::kGrantEndsWithPeriod;
      g.amount = g.remaining = topup;
      ledger::InsertGrant(p, g);
    }
    ws->id.assign(id);
    ws->index = w;
    ws->region = Region(region);
    ws->limit_lowered = lowered != 0;
    uint64_t used = 0, reserved = 0;
    bool overflow = false;
    for (uint32_t u = 0; u < user_count; ++u) {
      const std::string_view uid = r.Str8();
      User user;
      user.used = r.U64();
      user.reserved = r.U64();
      user.limit = r.U64();
      if (!r.ok()) return Corrupt(shard, "truncated user of workspace " + ws->id);
      if (!IsValidId(uid) || ws->FindUser(uid) >= 0) return Corrupt(shard, "bad or duplicate user id in " + ws->id);
      ws->AddUser(uid);
      overflow |= __builtin_add_overflow(used, user.used, &used);
      overflow |= __builtin_add_overflow(reserved, user.reserved, &reserved);
      user.id = std::move(ws->users.back().id);
      ws->users.back() = std::move(user);
    }
    if (overflow || used != ws->used || reserved != ws->reserved) {
      return Corrupt(shard, "users' used/reserved do not sum to workspace " + ws->id + "'s");
    }
    hashes.push_back(hash);
    staged.push_back(std::move(ws));
  }

  const uint32_t hold_count = r.U32();
  if (!r.ok() || hold_count > payload.size() / ledger::kHoldV1MinBytes) return Corrupt(shard, "truncated holds");
  std::vector<StagedHold> holds;
  holds.reserve(hold_count);
  boost::unordered_flat_set<uint64_t> hold_seqs;
  // Per user, what the holds add up to; must equal the user's reserved.
  std::vector<std::vector<uint64_t>> held(ws_count);
  for (uint32_t w = 0; w < ws_count; ++w) held[w].assign(staged[w]->users.size(), 0);
  for (uint32_t i = 0; i < hold_count; ++i) {
    StagedHold h;
    h.seq = r.U64();
    h.hold.workspace = r.U32();
    h.hold.user = r.U32();
    if (version == 1) {
      // Version 1 named the model: the hold takes its price in this catalog, or stays unpriced.
      const std::string_view model = r.Str8();
      const CatalogItem* item = model.empty() ? nullptr : catalog.Find(model);
      const Result<Price> price = item != nullptr ? PriceOf(*item) : Result<Price>(Code::kNotFound);
      if (price.ok()) {
        h.hold.unit = uint8_t(price->unit);
        h.hold.rate_milli = price->rate_milli;
      }
    } else {
      h.hold.unit = r.U8();
      h.hold.rate_milli = r.U32();
      if (r.ok() && (h.hold.priced() ? (h.hold.unit > kMaxUnitCode || h.hold.rate_milli > kMaxRateMilli)
                                     : h.hold.rate_milli != 0)) {
        return Corrupt(shard, "hold " + std::to_string(h.seq) + " has a bad unit or rate");
      }
    }
    h.hold.held = r.U64();
    h.hold.expires_at_ms = r.U64();
    if (!r.ok()) return Corrupt(shard, "truncated hold");
    if (h.seq == 0 || h.seq >= next_reservation_seq || !hold_seqs.insert(h.seq).second ||
        h.hold.workspace >= ws_count || h.hold.user >= staged[h.hold.workspace]->users.size() ||
        __builtin_add_overflow(held[h.hold.workspace][h.hold.user], h.hold.held,
                               &held[h.hold.workspace][h.hold.user])) {
      return Corrupt(shard, "hold " + std::to_string(h.seq) + " is out of range, duplicate or names no user");
    }
    holds.push_back(h);
  }
  for (uint32_t w = 0; w < ws_count; ++w) {
    for (size_t u = 0; u < held[w].size(); ++u) {
      if (held[w][u] != staged[w]->users[u].reserved) {
        return Corrupt(shard, "open holds do not sum to the reserved of a user of " + staged[w]->id);
      }
    }
  }

  const uint64_t first_seq = r.U64();
  const uint64_t next_seq = r.U64();
  if (!r.ok() || first_seq == 0 || next_seq < first_seq || (next_seq - first_seq) > payload.size() / 24) {
    return Corrupt(shard, "bad refund ring bounds");
  }
  const uint64_t charge_count = next_seq - first_seq;
  std::vector<ChargeRecord> charges(charge_count);
  std::vector<std::pair<uint64_t, ledger::BurnParts>> breakdowns;
  for (ChargeRecord& c : charges) {
    c.cost_model = r.U64();
    c.workspace = r.U32();
    c.user = r.U32();
    c.at_s = r.U32();
    c.period_refunded = r.U32();
    // Before version 3 bit 30 was the period's (never reached: 2^30 resets); now it marks a breakdown.
    if (version < 3) c.period_refunded &= ~0x40000000u;
    if (!r.ok()) return Corrupt(shard, "truncated refund ring");
    if (c.workspace >= ws_count || c.user >= staged[c.workspace]->users.size()) {
      return Corrupt(shard, "a refundable charge names no user");
    }
  }

  const uint32_t entry_count = r.U32();
  if (!r.ok() || entry_count > payload.size() / 92) return Corrupt(shard, "truncated idempotency entries");
  std::vector<StagedEntry> entries(entry_count);
  for (StagedEntry& e : entries) {
    e.workspace = r.U32();
    e.id = r.Str8();
    e.created_ms = r.U64();
    const uint8_t op = r.U8();
    e.params.op = ledger::IdempotentOp(op);
    e.params.user = r.U32();
    e.params.model = im.ModelKey(r.Str8());
    e.params.quantity = r.U64();
    e.params.seconds_milli = r.U64();
    e.params.outputs = r.U32();
    e.params.formats = r.U32();
    e.params.ttl_ms = r.U64();
    e.outcome.id = r.U64();
    e.outcome.cost = r.U64();
    e.outcome.remaining = r.U64();
    e.outcome.user_used = r.U64();
    e.outcome.expires_at_ms = r.U64();
    if (!r.ok()) return Corrupt(shard, "truncated idempotency entry");
    const bool grant = op == 3 && version >= 3;
    if ((op != 1 && op != 2 && !grant) || !IsValidId(e.id) || e.workspace >= ws_count ||
        (grant ? e.params.user != UINT32_MAX : e.params.user >= staged[e.workspace]->users.size())) {
      return Corrupt(shard, "idempotency entry has a bad op, id, workspace or user");
    }
  }
  if (version >= 3) {
    if (Status st = LoadPlans(r, shard, staged, charges, first_seq, breakdowns); !st.ok()) return st;
  }
  StagedBlocks blocks;
  if (version >= 4) {
    if (Status st = LoadBlocks(*ledger.impl_, r, shard, staged, holds, blocks); !st.ok()) return st;
  }
  if (!r.done()) return Corrupt(shard, std::to_string(payload.size()) + "-byte payload has trailing bytes");

  // Install. Nothing below can fail except by running out of memory.
  Shard& s = im.shards[shard];
  std::lock_guard lock(s.mu);
  if (im.logging || s.log_records != 0 || !s.workspaces.empty() || !s.holds.empty() ||
      s.charges.next_seq() != 1 || s.idempotency.size() != 0 || s.next_reservation_seq != 1) {
    return Status(Code::kInvalidArgument, "shard " + std::to_string(shard) + " is not empty");
  }
  uint64_t users = 0;
  for (uint32_t w = 0; w < ws_count; ++w) {
    Workspace& dst = *im.CreateWorkspace(s, staged[w]->id, hashes[w]);
    Workspace& src = *staged[w];
    CountLimit(s.totals, dst, false);
    dst.base_limit = src.base_limit;
    dst.used = src.used;
    dst.reserved = src.reserved;
    dst.period = src.period;
    dst.region = src.region;
    dst.limit_lowered = src.limit_lowered;
    dst.users = std::move(src.users);
    dst.user_tags = src.user_tags;
    dst.user_index = std::move(src.user_index);
    dst.plan = std::move(src.plan);
    dst.rev = src.rev;
    dst.history = std::move(src.history);   // block 3 (ledger_usage.cc)
    for (const User& u : dst.users) dst.over_limit_users += ledger::IsOverLimit(u) ? 1 : 0;
    CountLimit(s.totals, dst, true);
    if (dst.plan) {
      // slow, next_event_ms and the sweeper's queue follow from the plan; limit_lowered is kept
      // as stored (live, only some operations re-derive it).
      ledger::RefreshPlanState(dst);
      if (dst.next_event_ms != ledger::kNoEnd) s.events.emplace(dst.next_event_ms, dst.index);
    }
    s.used += dst.used;
    s.totals.reserved += dst.reserved;
    users += dst.users.size();
  }
  s.totals.users += users;
  im.workspace_count.fetch_add(ws_count, std::memory_order_relaxed);
  im.user_count.fetch_add(users, std::memory_order_relaxed);
  s.next_reservation_seq = next_reservation_seq;
  for (const StagedHold& h : holds) {
    s.holds.emplace(h.seq, h.hold);
    s.expiry.emplace(h.hold.expires_at_ms, h.seq);
  }
  s.charges.Restore(first_seq, charge_count, [&](uint64_t i) { return charges[i]; });
  for (const auto& [seq, parts] : breakdowns) {
    if (s.charges.Find(seq) != nullptr) Impl::AddBreakdown(s, seq, parts);
  }
  for (const StagedEntry& e : entries) {
    s.idempotency.Restore(e.workspace, e.id, e.created_ms, e.params, e.outcome);
  }
  if (blocks.tokens) {
    std::lock_guard guard(im.tokens_mu);
    im.tokens = std::move(*blocks.tokens);
  }
  ledger::InstallAlertsBlock(std::move(blocks.alerts), s);
  if (blocks.webhooks) {
    // The registry is guarded by shard 0's lock, held here when shard == 0; the cursors by this
    // shard's.
    if (shard == 0) {
      im.webhooks.next_number = blocks.webhooks->next_number;
      im.webhooks.registry = std::move(blocks.webhooks->registry);
    }
    im.webhooks.cursors[shard] = std::move(blocks.webhooks->cursors[shard]);
  }
  s.log_records = record_no;
  return Status();
}

Status LedgerLog::ResetForRecovery(Ledger& ledger) {
  std::unique_ptr<Impl>& impl = ledger.impl_;
  if (impl->logging) {
    return Status(Code::kInvalidArgument, "the ledger is logging; its state cannot be thrown away");
  }
  // A new Impl rather than clearing each structure: every field (shards, counters, the lookup
  // hints that point at the workspaces about to be freed) is back to its constructed value by
  // construction, including any added later. Built before the old one goes, so a failed
  // allocation leaves the ledger as it was.
  // The start-up catalog: a rejected snapshot's catalog section must not outlive it either.
  auto fresh = std::make_unique<Impl>(impl->startup_catalog, impl->opt);
  fresh->log_wakeup = std::move(impl->log_wakeup);
  impl = std::move(fresh);
  return Status();
}

}  // namespace genledger
