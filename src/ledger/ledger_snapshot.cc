// Snapshot sections: a shard's whole state copied as one payload while traffic goes on
// (layout: docs/snapshot-format.md, "Section payloads"; loading it back: ledger_snapshot_load.cc).
//
// The copy holds the shard's lock, so every charge on that shard waits for it. With 1 M
// workspaces (~3,900 per shard, ~1 MB of payload; bench/snapshot_bench.cc) the median hold was
// 1.6-2 ms: more than half of it ~45 std::string::append calls per workspace, the rest waiting
// on memory for workspaces scattered over the heap. Now everything that can happen outside the
// one hold does: the shard is read once in short holds (MeasureShard), which warms it and sizes
// the buffer; the copy is then plain stores (PayloadWriter), with the refund ring copied whole.
#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/snapshot_blocks.h"
#include "ledger/snapshot_payload.h"

namespace genledger {

using ledger::ChargeRecord;
using ledger::Hold;
using ledger::IdempotencyEntry;
using ledger::kChargeBytes;
using ledger::kEntryFixedBytes;
using ledger::kHoldFixedBytes;
using ledger::kPayloadHeaderBytes;
using ledger::kUserFixedBytes;
using ledger::kWorkspaceFixedBytes;
using ledger::PayloadWriter;
using ledger::Shard;
using ledger::User;
using ledger::Workspace;

namespace {

// A ChargeRecord's bytes in memory are its encoding (cost, workspace, user, at_s, then period
// in the low 31 bits and refunded in the top bit, all little-endian), so the refund ring, about
// a fifth of a full shard's payload, is copied with memcpy instead of 5 writes per charge. Checked at compile time: on a
// target where the layout differs, the ring is encoded field by field instead.
constexpr bool ChargeRecordIsItsEncoding() {
  if constexpr (std::endian::native != std::endian::little) return false;
  ChargeRecord c;
  c.cost_model = 0x0102030405060708ull;
  c.workspace = 0x11121314u;
  c.user = 0x21222324u;
  c.at_s = 0x31323334u;
  c.period_refunded = 0x41424344u | 0x80000000u;
  const auto w = std::bit_cast<std::array<uint32_t, 6>>(c);
  return w[0] == 0x05060708u && w[1] == 0x01020304u && w[2] == c.workspace && w[3] == c.user &&
         w[4] == c.at_s && w[5] == (0x41424344u | 0x80000000u);
}
constexpr bool kChargeRecordIsItsEncoding = ChargeRecordIsItsEncoding();
static_assert(sizeof(ChargeRecord) == kChargeBytes);

// An entry's model id ("" for none): entries keep it interned, whatever the catalog is now.
std::string_view ModelOf(const IdempotencyEntry& e) {
  return e.params.model != nullptr ? std::string_view(*e.params.model) : std::string_view();
}

// Everything below that reads shard state requires the shard's lock.

size_t WorkspaceBytes(const Workspace& ws) {
  size_t n = kWorkspaceFixedBytes + ws.id.size();
  for (const User& u : ws.users) n += kUserFixedBytes + u.id.size();
  return n;
}

// The table's key is the raw workspace index (4 bytes), then the id.
size_t EntryBytes(const std::string& key, const IdempotencyEntry& e) {
  return kEntryFixedBytes + (key.size() - 4) + ModelOf(e).size();
}

// Workspaces and their users sit at random addresses: touch a few ahead so the misses overlap
// instead of adding up while the lock is held.
void PrefetchAhead(const Shard& s, size_t i) {
  constexpr size_t kAhead = 8;
  if (i + kAhead < s.workspaces.size()) {
    const Workspace* next = s.workspaces[i + kAhead].get();
    __builtin_prefetch(next);
    __builtin_prefetch(reinterpret_cast<const char*>(next) + 64);
    __builtin_prefetch(reinterpret_cast<const char*>(next) + 128);   // the plan pointer
  }
  if (i + kAhead / 2 < s.workspaces.size()) __builtin_prefetch(s.workspaces[i + kAhead / 2]->users.data());
}

void EncodeWorkspace(PayloadWriter& o, const Workspace& ws) {
  o.Room(kWorkspaceFixedBytes + ws.id.size());
  o.Str8(ws.id);
  for (uint64_t v : {ws.base_limit, uint64_t(0), ws.used, ws.reserved, ws.period}) o.U64(v);   // 0: top-ups are grants
  o.U8(uint8_t(ws.region));
  o.U8(ws.limit_lowered ? 1 : 0);
  o.U32(uint32_t(ws.users.size()));
  for (const User& u : ws.users) {
    o.Room(kUserFixedBytes + u.id.size());
    o.Str8(u.id);
    for (uint64_t v : {u.used, u.reserved, u.limit}) o.U64(v);
  }
}

// Version 3's subscription state: the plans of the workspaces listed, and the breakdowns of the
// kept charges drawn from more than the plan.
void EncodePlans(PayloadWriter& o, const Shard& s, const std::vector<uint32_t>& planned) {
  o.Room(4);
  o.U32(uint32_t(planned.size()));
  for (uint32_t index : planned) {
    const ledger::Plan& p = *s.workspaces[index]->plan;
    o.Room(ledger::kPlanFixedBytes + p.grants.size() * ledger::kGrantBytes);
    o.U32(index);
    o.U8(uint8_t(p.interval));
    for (uint64_t v : {p.anchor_ms, p.period_start_ms, p.period_end_ms}) o.U64(v);
    o.U16(p.plan_priority);
    o.U64(p.rollover_max);
    o.U32(p.rollover_periods);
    o.U8(p.overage_mode);
    for (uint64_t v : {p.overage_limit, p.pending_limit, p.overage, p.grant_used}) o.U64(v);
    o.U32(p.next_grant);
    o.U32(uint32_t(p.grants.size()));
    for (const ledger::Grant& g : p.grants) {
      o.U32(g.number);
      o.U8(g.source);
      o.U16(g.priority);
      for (uint64_t v : {g.amount, g.remaining, g.expires_at_ms}) o.U64(v);
      o.U8(g.flags);
      o.U64(g.created_ms);
    }
  }
  o.Room(4);
  const size_t count_at = o.size();
  o.U32(0);
  uint32_t n = 0;
  for (const auto& [seq, parts] : s.breakdowns) {
    if (seq < s.charges.first_seq() || seq >= s.charges.next_seq()) continue;   // forgotten by the ring
    o.Room(9 + parts.size() * 12);
    o.U64(seq);
    o.U8(uint8_t(parts.size()));
    for (const auto& [grant, amount] : parts) {
      o.U32(grant);
      o.U64(amount);
    }
    ++n;
  }
  o.PatchU32(count_at, n);
}

void EncodeCharges(PayloadWriter& o, const ledger::RecentCharges& charges) {
  o.Room(16 + (charges.next_seq() - charges.first_seq()) * kChargeBytes);
  o.U64(charges.first_seq());
  o.U64(charges.next_seq());
  charges.ForEachRun([&](const ChargeRecord* c, uint64_t n) {
    if constexpr (kChargeRecordIsItsEncoding) {
      o.Bytes(c, n * sizeof *c);
    } else {
      for (const ChargeRecord* end = c + n; c != end; ++c) {
        o.U64(c->cost_model);
        o.U32(c->workspace);
        o.U32(c->user);
        o.U32(c->at_s);
        o.U32(c->period_refunded);
      }
    }
  });
}

void EncodeEntry(PayloadWriter& o, const std::string& key, const IdempotencyEntry& e) {
  o.Room(EntryBytes(key, e));
  uint32_t ws;
  std::memcpy(&ws, key.data(), 4);   // the table's key: raw workspace index, then the id
  o.U32(ws);
  o.Str8(std::string_view(key).substr(4));
  o.U64(e.created_ms);
  o.U8(uint8_t(e.params.op));
  o.U32(e.params.user);
  o.Str8(ModelOf(e));
  for (uint64_t v : {e.params.quantity, e.params.seconds_milli}) o.U64(v);
  o.U32(e.params.outputs);
  o.U32(e.params.formats);
  for (uint64_t v : {e.params.ttl_ms, e.outcome.id, e.outcome.cost, e.outcome.remaining, e.outcome.user_used,
                     e.outcome.expires_at_ms}) {
    o.U64(v);
  }
}

// Version 4's extension blocks (snapshot_blocks.h), then the end tag. Requires s.mu held.
void EncodeBlocks(PayloadWriter& o, const LedgerLog::Impl& im, const Shard& s) {
  {
    const size_t at = BeginBlock(o, ledger::BlockTag::kRevs);
    o.Room(4 + 8 * s.workspaces.size());
    o.U32(uint32_t(s.workspaces.size()));
    for (const auto& ws : s.workspaces) o.U64(ws->rev);
    EndBlock(o, at);
  }
  // Usage history (ledger_usage.cc), when some workspace of the shard has one.
  std::string usage;
  LedgerLog::Impl::EncodeUsageBlock(s, usage);
  if (usage.size() > 8) {   // more than the two empty counts
    const size_t at = BeginBlock(o, ledger::BlockTag::kUsageHistory);
    o.Room(usage.size());
    o.Bytes(usage.data(), usage.size());
    EndBlock(o, at);
  }
  {
    std::string body;   // a few dozen bytes per kept event: not worth a measuring pass
    if (ledger::EncodeAlertsBlock(s, body)) {
      const size_t at = BeginBlock(o, ledger::BlockTag::kAlerts);
      o.Room(body.size());
      o.Bytes(body.data(), body.size());
      EndBlock(o, at);
    }
  }
  {
    // The webhook registry (shard 0, under this lock) and this shard's delivery cursors.
    std::string body;
    ledger::EncodeWebhooksBlock(im.webhooks, s.index, body);
    if (!body.empty()) {
      const size_t at = BeginBlock(o, ledger::BlockTag::kWebhooks);
      o.Room(body.size());
      o.Bytes(body.data(), body.size());
      EndBlock(o, at);
    }
  }
  if (s.index == 0) {
    // Minted tokens change under shard 0's lock (held here) and tokens_mu: the table is the
    // effect of exactly shard 0's records 1..record_no, like the catalog. No block while no token
    // was ever minted (absent: an empty table, next id 1).
    std::string body;
    {
      std::lock_guard guard(im.tokens_mu);
      if (im.tokens.next_id() > 1) im.tokens.EncodeBlock(body);
    }
    if (!body.empty()) {
      const size_t at = BeginBlock(o, ledger::BlockTag::kTokens);
      o.Room(body.size());
      o.Bytes(body.data(), body.size());
      EndBlock(o, at);
    }
  }
  o.Room(1);
  o.U8(uint8_t(ledger::BlockTag::kEnd));
}

// The payload size of shard s. Takes the lock (not held on entry) in short holds: one per
// kMeasureChunk workspaces (measured with 1 M workspaces: 18 µs median, 0.1 ms at p99), then one
// for holds, refund ring and idempotency entries.
//
// Reading the whole shard just before the copy takes the copy's misses out of its hold: a
// shard's workspaces and their user arrays lie on thousands of random pages, and the same copy
// repeated at once took 0.5-0.6 ms instead of 1.6-2 ms. On this project's VM (PVM, shadow
// paging) a process that was descheduled also comes back with its pages to be mapped again by
// the hypervisor, several µs each, not counted as page faults: the first shards copied after
// that took 10-45 ms of CPU each. This pass pays both in short holds, and sizes the buffer so
// that the copy does not reallocate under the lock.
size_t MeasureShard(const Shard& s) {
  constexpr size_t kMeasureChunk = 128;
  size_t bytes = kPayloadHeaderBytes;
  for (size_t begin = 0;; begin += kMeasureChunk) {
    std::lock_guard lock(s.mu);
    const size_t end = std::min(begin + kMeasureChunk, s.workspaces.size());
    if (begin >= end) break;
    for (size_t i = begin; i < end; ++i) {
      PrefetchAhead(s, i);
      bytes += WorkspaceBytes(*s.workspaces[i]);
    }
  }
  std::lock_guard lock(s.mu);
  bytes += 4;
  bytes += s.holds.size() * kHoldFixedBytes;
  bytes += 16 + (s.charges.next_seq() - s.charges.first_seq()) * kChargeBytes;
  bytes += 4;
  s.idempotency.ForEach([&](const std::string& key, const IdempotencyEntry& e) { bytes += EntryBytes(key, e); });
  // Plans are not measured one by one (that would read every workspace's third line again);
  // PayloadWriter::Room grows the buffer if they do not fit the slack.
  bytes += 8 + s.breakdowns.size() * (9 + 2 * 12);
  bytes += 5 + 4 + 8 * s.workspaces.size() + 1;   // the revs block and the end tag
  bytes += 5 + 8 + 8 + 4 + 4 + s.outbox.events.size() * 70;   // the alerts block (states: Room grows)
  return bytes;
}

}  // namespace

Status LedgerLog::SnapshotShard(const Ledger& ledger, uint32_t shard, std::string& out, uint64_t* record_no,
                                uint64_t* lock_hold_ns, CatalogCopy* catalog) {
  if (shard >= ledger::kShardCount) return Status(Code::kInvalidArgument, "shard out of range");
  if (catalog != nullptr && shard != 0) return Status(Code::kInvalidArgument, "the catalog goes with shard 0");
  const Impl& im = *ledger.impl_;
  const Shard& s = im.shards[shard];
  // Sized (and zero-filled) before the lock, with room for what traffic may add meanwhile; if
  // the shard outgrows that, the writer grows the buffer under the lock, which is only slower.
  const size_t measured = MeasureShard(s);
  // Refused before the copy holds the lock: a shard this large is not copied only to be dropped.
  auto too_large = [shard](uint64_t bytes) {
    return Status(Code::kCapacityExhausted, "shard " + std::to_string(shard) + " state is " + std::to_string(bytes) +
                                                " bytes, over the " + std::to_string(kMaxShardStateBytes) +
                                                " a snapshot holds for one shard");
  };
  if (measured > kMaxShardStateBytes) return too_large(measured);
  out.clear();
  out.resize(measured + measured / 64 + 4096);
  PayloadWriter o(out);

  std::unique_lock lock(s.mu);
  const auto t0 = std::chrono::steady_clock::now();
  // The copy is one hold, and the record number is read in it: the payload holds exactly the
  // effect of records 1..record_no (docs/durability.md, "Snapshots").
  *record_no = s.log_records;
  if (catalog != nullptr) {
    // Catalog replacements are shard-0 records made under this lock: the catalog now is the
    // effect of exactly shard 0's records 1..record_no.
    std::lock_guard guard(im.catalog_mu);
    catalog->catalog = im.catalog;
    catalog->version = im.catalog_version.load(std::memory_order_relaxed);
  }
  o.Room(kPayloadHeaderBytes);
  o.U8(ledger::kPayloadVersion);
  o.U64(s.next_reservation_seq);
  o.U32(uint32_t(s.workspaces.size()));
  std::vector<uint32_t> planned;
  for (size_t i = 0; i < s.workspaces.size(); ++i) {
    PrefetchAhead(s, i);
    EncodeWorkspace(o, *s.workspaces[i]);
    if (s.workspaces[i]->plan) planned.push_back(uint32_t(i));
  }
  o.Room(4);
  o.U32(uint32_t(s.holds.size()));
  for (const auto& [seq, h] : s.holds) {
    o.Room(kHoldFixedBytes);
    o.U64(seq);
    o.U32(h.workspace);
    o.U32(h.user);
    o.U8(h.unit);
    o.U32(h.rate_milli);
    o.U64(h.held);
    o.U64(h.expires_at_ms);
  }
  EncodeCharges(o, s.charges);
  o.Room(4);
  o.U32(uint32_t(s.idempotency.size()));
  s.idempotency.ForEach([&](const std::string& key, const IdempotencyEntry& e) { EncodeEntry(o, key, e); });
  EncodePlans(o, s, planned);
  EncodeBlocks(o, im, s);
  const auto t1 = std::chrono::steady_clock::now();
  lock.unlock();

  o.Finish();
  if (lock_hold_ns != nullptr) {
    *lock_hold_ns = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  if (out.size() > kMaxShardStateBytes) return too_large(out.size());   // it grew since measured
  return Status();
}

uint32_t Ledger::ShardCount() noexcept { return ledger::kShardCount; }

}  // namespace genledger
