// A shard snapshot must load into an identical ledger, reject any damaged payload without
// touching the ledger, and combine with the WAL records after it (docs/snapshot-format.md).
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/ledger_impl.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

struct Section {
  uint64_t record_no = 0;
  std::string payload;
};

std::vector<Section> SnapshotAll(const Ledger& l, uint64_t* max_hold_ns = nullptr) {
  std::vector<Section> out(Ledger::ShardCount());
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    uint64_t hold = 0;
    Status st = LedgerLog::SnapshotShard(l, i, out[i].payload, &out[i].record_no, &hold);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (max_hold_ns != nullptr) *max_hold_ns = std::max(*max_hold_ns, hold);
  }
  return out;
}

void LoadAll(Ledger& l, const std::vector<Section>& sections) {
  for (uint32_t i = 0; i < sections.size(); ++i) {
    Status st = LedgerLog::LoadShardSection(l, i, sections[i].record_no, sections[i].payload);
    ASSERT_TRUE(st.ok()) << "shard " << i << ": " << st.ToString();
  }
}

struct Record {
  uint8_t type;
  std::string payload;
};

// Reads a payload by docs/snapshot-format.md's layout, independently of the ledger's loader.
struct PayloadReader {
  std::string_view p;
  size_t at = 0;
  template <typename T>
  T Le() {
    T v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= T(uint8_t(p.at(at + i))) << (8 * i);
    at += sizeof(T);
    return v;
  }
  std::string_view Str8() {
    const size_t n = Le<uint8_t>();
    std::string_view s = p.substr(at, n);
    at += n;
    return s;
  }
};

struct RingEntry {
  uint64_t cost;
  uint32_t workspace, user, at_s, period_bits;
};

// The refund ring of a payload: (first seq, entries).
std::pair<uint64_t, std::vector<RingEntry>> RingOf(std::string_view payload) {
  PayloadReader r{payload};
  EXPECT_EQ(r.Le<uint8_t>(), 4);
  (void)r.Le<uint64_t>();
  for (uint32_t w = 0, n = r.Le<uint32_t>(); w < n; ++w) {
    (void)r.Str8();
    r.at += 5 * 8 + 2;
    for (uint32_t u = 0, users = r.Le<uint32_t>(); u < users; ++u) {
      (void)r.Str8();
      r.at += 3 * 8;
    }
  }
  for (uint32_t h = 0, n = r.Le<uint32_t>(); h < n; ++h) r.at += 8 + 4 + 4 + 1 + 4 + 8 + 8;   // version 2 holds
  const uint64_t first = r.Le<uint64_t>(), next = r.Le<uint64_t>();
  std::vector<RingEntry> ring;
  for (uint64_t seq = first; seq < next; ++seq) {
    RingEntry e;
    e.cost = r.Le<uint64_t>();
    e.workspace = r.Le<uint32_t>();
    e.user = r.Le<uint32_t>();
    e.at_s = r.Le<uint32_t>();
    e.period_bits = r.Le<uint32_t>();
    ring.push_back(e);
  }
  return {first, ring};
}

class LedgerSnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make(uint64_t refund_capacity = LedgerOptions().refund_capacity) {
    LedgerOptions opt;
    opt.clock = &clock_;
    opt.refund_capacity = refund_capacity;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  ChargeRequest Req(std::string_view ws, std::string_view user, std::string_view model, uint64_t qty,
                    uint64_t seconds_milli = 0, std::string_view id = {}) {
    ChargeRequest r{ws, user, Catalog::Default()->Find(model), {}, id};
    r.usage.quantity = qty;
    r.usage.seconds_milli = seconds_milli;
    return r;
  }
  // Every feature StateDigest covers: limits, top-ups, periods, regions, lowered limits, user
  // caps, a workspace with more users than the inline scan (so it has an index), open and
  // settled holds, refunded and refundable charges, idempotency entries of both kinds.
  void BuildRichState(Ledger& a) {
    ASSERT_TRUE(a.UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
    ASSERT_TRUE(a.UpsertWorkspace("china", kUnlimited, Region::kCn).ok());
    ASSERT_TRUE(a.UpsertWorkspace("big", 100000, Region::kGlobal).ok());
    ASSERT_TRUE(a.SetUserLimit("acme", "intern", 40).ok());
    ASSERT_TRUE(a.Charge(Req("acme", "alice", "gpt-4o", 3)).status.ok());
    ASSERT_TRUE(a.Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1")).status.ok());
    ASSERT_TRUE(a.Charge(Req("china", "li", "kling-ai-video-2.5", 0, 2500, "idem-cn")).status.ok());
    ChargeResult refundable = a.Charge(Req("acme", "intern", "dall-e-3", 4));
    ASSERT_TRUE(refundable.status.ok());
    ASSERT_TRUE(a.Refund(refundable.charge_id).status.ok());
    ReserveResult h1 = a.Reserve(ReserveRequest{Req("acme", "bob", "google-veo3", 0, 10000, "hold-1"), 60000});
    ReserveResult h2 = a.Reserve(ReserveRequest{Req("acme", "bob", "sora-2", 0, 5000), 0});
    ReserveResult h3 = a.Reserve(ReserveRequest{Req("acme", "carol", "gpt-5", 7), 100000});
    ASSERT_TRUE(h1.status.ok() && h2.status.ok() && h3.status.ok());
    ASSERT_TRUE(a.Commit(h1.reservation_id).status.ok());
    ASSERT_TRUE(a.Release(h2.reservation_id).status.ok());
    ASSERT_TRUE(a.TopUp("acme", 30).ok());
    for (int u = 0; u < 20; ++u) {
      ASSERT_TRUE(a.Charge(Req("big", "user" + std::to_string(u), "gpt-4o", 1 + u)).status.ok());
    }
    ASSERT_TRUE(a.ResetPeriod("big").ok());
    ASSERT_TRUE(a.Charge(Req("big", "user3", "gpt-4o", 5, 0, "after-reset")).status.ok());
    ASSERT_TRUE(a.UpsertWorkspace("acme", 1, Region::kGlobal).ok());   // lowered below used
    for (int w = 0; w < 600; ++w) {   // spread over most shards
      const std::string ws = "ws-" + std::to_string(w);
      ASSERT_TRUE(a.UpsertWorkspace(ws, w % 3 == 0 ? kUnlimited : 10000, Region(w % 2)).ok());
      ASSERT_TRUE(a.Charge(Req(ws, "u", "gpt-4o", 1 + w % 7, 0, w % 5 == 0 ? "i" : "")).status.ok());
    }
    clock_.Advance(1000);
  }
  ManualClock clock_;
};

TEST_F(LedgerSnapshotTest, RoundTripRebuildsEveryFeature) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  BuildRichState(*a);
  ASSERT_TRUE(a->CheckInvariants().ok());
  const auto sections = SnapshotAll(*a);
  auto b = Make();
  LoadAll(*b, sections);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  EXPECT_TRUE(b->CheckInvariants().ok());
  EXPECT_EQ(b->Totals().workspaces, a->Totals().workspaces);
  EXPECT_EQ(b->Totals().open_reservations, 1u);
  // The loaded ledger behaves like the original: retries replay, later ids continue.
  for (Ledger* l : {a.get(), b.get()}) {
    ChargeResult retry = l->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1"));
    EXPECT_TRUE(retry.status.ok());
    EXPECT_TRUE(retry.replayed);
    EXPECT_EQ(l->Charge(Req("big", "user7", "gpt-4o", 1)).status.code(), Code::kOk);
    EXPECT_EQ(l->Charge(Req("big", "user30", "gpt-4o", 1)).status.code(), Code::kOk);
  }
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
}

TEST_F(LedgerSnapshotTest, DamagedPayloadIsCorruptionAndLoadsNothing) {
  auto a = Make();
  BuildRichState(*a);
  const auto sections = SnapshotAll(*a);
  const uint64_t empty_digest = Make()->StateDigest();
  size_t richest = 0;
  for (size_t i = 0; i < sections.size(); ++i) {
    if (sections[i].payload.size() > sections[richest].payload.size()) richest = i;
  }
  const std::string& good = sections[richest].payload;
  auto b = Make();
  // Every truncation, and trailing garbage.
  for (size_t n = 0; n < good.size(); ++n) {
    ASSERT_EQ(LedgerLog::LoadShardSection(*b, uint32_t(richest), 0, good.substr(0, n)).code(), Code::kCorruption) << n;
  }
  EXPECT_EQ(LedgerLog::LoadShardSection(*b, uint32_t(richest), 0, good + "x").code(), Code::kCorruption);
  std::string bad_version = good;
  bad_version[0] = 5;
  EXPECT_EQ(LedgerLog::LoadShardSection(*b, uint32_t(richest), 0, bad_version).code(), Code::kCorruption);
  // A payload loaded into the wrong shard: its workspaces hash elsewhere.
  EXPECT_EQ(LedgerLog::LoadShardSection(*b, uint32_t((richest + 1) % Ledger::ShardCount()), 0, good).code(), Code::kCorruption);
  // Random byte flips: each is rejected or yields a consistent ledger, never half a shard.
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string p = good;
    p[rng() % p.size()] ^= char(1 + rng() % 255);
    auto c = Make();
    Status st = LedgerLog::LoadShardSection(*c, uint32_t(richest), 0, p);
    if (!st.ok()) {
      ASSERT_EQ(st.code(), Code::kCorruption) << st.ToString();
      ASSERT_EQ(c->StateDigest(), empty_digest);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 500);
  EXPECT_EQ(b->StateDigest(), empty_digest);
  // The shard was left untouched by every failure: the good payload still loads.
  ASSERT_TRUE(LedgerLog::LoadShardSection(*b, uint32_t(richest), sections[richest].record_no, good).ok());
  EXPECT_EQ(LedgerLog::LoadShardSection(*b, uint32_t(richest), 0, good).code(), Code::kInvalidArgument);   // not empty now
}

TEST_F(LedgerSnapshotTest, SnapshotDuringTrafficPlusLaterRecordsEqualsOriginal) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  BuildRichState(*a);
  std::vector<Record> log;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; !stop.load(); ++i) {
        const std::string ws = "ws-" + std::to_string((i * 7 + t) % 600);
        const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
        (void)a->Charge(Req(ws, "u" + std::to_string(i % 9), "gpt-4o", 1, 0, i % 3 == 0 ? std::string_view(id) : ""));
        if (i % 50 == 0) (void)a->UpsertWorkspace("new-" + std::to_string(t) + "-" + std::to_string(i), 100, Region::kGlobal);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  uint64_t hold_ns = 0;
  const auto sections = SnapshotAll(*a, &hold_ns);   // shard by shard while charges run
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  stop = true;
  for (auto& th : threads) th.join();
  ASSERT_TRUE(LedgerLog::DrainLog(*a, [&](uint8_t type, std::string_view p) { log.push_back({type, std::string(p)}); }).ok());

  auto b = Make();
  LoadAll(*b, sections);
  uint64_t skipped = 0, applied = 0;
  for (const Record& r : log) {
    uint32_t shard;
    uint64_t no;
    ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(r.payload, &shard, &no));
    if (no <= sections[shard].record_no) {
      ++skipped;
      continue;
    }
    Status st = LedgerLog::ApplyLogRecord(*b, r.type, r.payload);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ++applied;
  }
  EXPECT_GT(skipped, 0u);
  EXPECT_GT(applied, 0u);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  EXPECT_TRUE(b->CheckInvariants().ok());
  RecordProperty("max_shard_hold_ns", std::to_string(hold_ns));
}

// Recovery loads a snapshot while verifying it, so a file found damaged late leaves the ledger
// partly loaded; ResetForRecovery must return it to exactly the constructed state.
TEST_F(LedgerSnapshotTest, ResetForRecoveryEmptiesAPartlyLoadedLedger) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  BuildRichState(*a);
  const auto sections = SnapshotAll(*a);
  const uint64_t empty_digest = Make()->StateDigest();

  auto b = Make();
  int wakeups = 0;
  LedgerLog::SetLogWakeup(*b, [&] { ++wakeups; });
  for (uint32_t i = 0; i < Ledger::ShardCount() / 2; ++i) {   // as a file damaged half way leaves it
    ASSERT_TRUE(LedgerLog::LoadShardSection(*b, i, sections[i].record_no, sections[i].payload).ok());
  }
  ASSERT_NE(b->StateDigest(), empty_digest);
  ASSERT_GT(b->Totals().workspaces, 0u);
  ASSERT_TRUE(LedgerLog::ResetForRecovery(*b).ok());
  EXPECT_EQ(b->StateDigest(), empty_digest);
  const LedgerTotals t = b->Totals();
  EXPECT_EQ(t.workspaces, 0u);
  EXPECT_EQ(t.users, 0u);
  EXPECT_EQ(t.open_reservations, 0u);
  EXPECT_EQ(t.idempotency_entries, 0u);
  EXPECT_TRUE(b->CheckInvariants().ok());
  // The gate's lock-free lookup hints must not lead to the freed workspaces (under ASan a stale
  // hint is a use-after-free here).
  EXPECT_EQ(b->Charge(Req("acme", "alice", "gpt-4o", 1)).status.code(), Code::kUnknownWorkspace);
  EXPECT_EQ(b->GetWorkspace("acme").status().code(), Code::kUnknownWorkspace);

  // Every shard is empty again (record numbers included), so a whole snapshot loads on top and
  // gives exactly the original.
  LoadAll(*b, sections);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  EXPECT_TRUE(b->CheckInvariants().ok());
  EXPECT_TRUE(b->Charge(Req("acme", "alice", "gpt-4o", 2, 0, "idem-1")).replayed);

  // The log wakeup set before the reset survives it.
  LedgerLog::EnableLog(*b);
  ASSERT_TRUE(b->Charge(Req("big", "user1", "gpt-4o", 1)).status.ok());
  EXPECT_GT(wakeups, 0);

  // Once logging, the state may have been acknowledged: no reset, nothing changed.
  const uint64_t before = b->StateDigest();
  EXPECT_EQ(LedgerLog::ResetForRecovery(*b).code(), Code::kInvalidArgument);
  EXPECT_EQ(b->StateDigest(), before);
}

// The refund ring is copied whole from memory: its bytes must still be the documented fields,
// refunded in bit 31 above the period's low 31 bits.
TEST_F(LedgerSnapshotTest, RefundRingIsWrittenInTheDocumentedLayout) {
  auto a = Make();
  ASSERT_TRUE(a->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  const ChargeResult c1 = a->Charge(Req("acme", "alice", "gpt-4o", 3));
  const ChargeResult c2 = a->Charge(Req("acme", "bob", "gpt-4o", 5));
  ASSERT_TRUE(c1.status.ok() && c2.status.ok());
  ASSERT_TRUE(a->Refund(c2.charge_id).status.ok());
  ASSERT_TRUE(a->ResetPeriod("acme").ok());
  clock_.Advance(7000);
  const ChargeResult c3 = a->Charge(Req("acme", "bob", "gpt-4o", 2));
  ASSERT_TRUE(c3.status.ok());

  const auto sections = SnapshotAll(*a);
  const uint32_t shard = uint32_t(c1.charge_id % Ledger::ShardCount());   // ids embed the shard
  const auto [first, ring] = RingOf(sections[shard].payload);
  EXPECT_EQ(first, 1u);
  ASSERT_EQ(ring.size(), 3u);
  const uint32_t t0 = uint32_t(1'700'000'000'000 / 1000);
  const ChargeResult* charges[] = {&c1, &c2, &c3};
  const uint32_t users[] = {0, 1, 1}, at_s[] = {t0, t0, t0 + 7}, bits[] = {1, 1u | (1u << 31), 2};
  for (size_t i = 0; i < 3; ++i) {
    // Bits 0-51 the cost, 52-63 the model's usage-history slot + 1 (gpt-4o: slot 0).
    EXPECT_EQ(ring[i].cost & ((uint64_t(1) << 52) - 1), charges[i]->cost) << i;
    EXPECT_EQ(ring[i].cost >> 52, 1u) << i;
    EXPECT_EQ(ring[i].workspace, 0u) << i;
    EXPECT_EQ(ring[i].user, users[i]) << i;
    EXPECT_EQ(ring[i].at_s, at_s[i]) << i;
    EXPECT_EQ(ring[i].period_bits, bits[i]) << i;
  }
}

// A ring that has wrapped is kept in two runs of memory; both must be copied, oldest first.
TEST_F(LedgerSnapshotTest, WrappedRefundRingRoundTrips) {
  // A floor of 5 charges per shard (shared_budget.h); a filler workspace in another shard than
  // wrap-0's first takes the whole shared pool, so wrap-0's shard keeps only its floor.
  const uint64_t kCapacity = Ledger::ShardCount() * 16 * 5;
  auto a = Make(kCapacity);
  const auto shard_of = [](std::string_view ws) { return LedgerLog::Impl::ShardOf(LedgerLog::Impl::HashId(ws)); };
  std::string filler = "filler";
  while (shard_of(filler) == shard_of("wrap-0")) filler += "x";
  ASSERT_TRUE(a->UpsertWorkspace(filler, kUnlimited, Region::kGlobal).ok());
  for (uint64_t i = 0; i < kCapacity; ++i) ASSERT_TRUE(a->Charge(Req(filler, "u", "gpt-4o", 1)).status.ok());
  for (int w = 0; w < 40; ++w) {
    const std::string ws = "wrap-" + std::to_string(w);
    ASSERT_TRUE(a->UpsertWorkspace(ws, kUnlimited, Region::kGlobal).ok());
    for (int i = 0; i < 13; ++i) ASSERT_TRUE(a->Charge(Req(ws, "u" + std::to_string(i % 3), "gpt-4o", 1 + i)).status.ok());
  }
  const ChargeResult last = a->Charge(Req("wrap-0", "u0", "gpt-4o", 9));
  ASSERT_TRUE(last.status.ok());
  const auto sections = SnapshotAll(*a);
  const uint32_t shard = uint32_t(last.charge_id % Ledger::ShardCount());
  const auto [first, ring] = RingOf(sections[shard].payload);
  ASSERT_EQ(ring.size(), 5u);
  EXPECT_GT(first, 1u);   // older charges were forgotten: the ring wrapped
  EXPECT_EQ(ring.back().cost & ((uint64_t(1) << 52) - 1), last.cost);

  auto b = Make(kCapacity);
  LoadAll(*b, sections);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  // The same charges are refundable in both: the newest is, one from before the window is not.
  const uint64_t forgotten = ((first - 1) << 8) | shard;
  for (Ledger* l : {a.get(), b.get()}) {
    EXPECT_TRUE(l->Refund(last.charge_id).status.ok());
    EXPECT_FALSE(l->Refund(forgotten).status.ok());
  }
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
}

// Snapshots taken again and again, each shard while other threads create workspaces and users
// in it, charge, hold, commit, release and refund: each one, loaded and followed by the WAL
// records after its per-shard record numbers, must equal the live ledger.
TEST_F(LedgerSnapshotTest, RepeatedSnapshotsDuringGrowthPlusLaterRecordsEqualLive) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  BuildRichState(*a);
  std::mutex log_mu;
  std::vector<Record> log;
  auto drain = [&] {
    std::lock_guard lock(log_mu);
    ASSERT_TRUE(LedgerLog::DrainLog(*a, [&](uint8_t type, std::string_view p) { log.push_back({type, std::string(p)}); }).ok());
  };
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t + 1);
      for (uint64_t i = 0; !stop.load(); ++i) {
        const std::string ws = "g" + std::to_string(t) + "-" + std::to_string(i % 2000);
        if (i < 2000) (void)a->UpsertWorkspace(ws, 1'000'000, Region::kGlobal);   // new workspaces
        const std::string user = "user-" + std::to_string(rng() % 12);               // new users, then known
        const std::string id = "k" + std::to_string(t) + "-" + std::to_string(i);
        ChargeResult c = a->Charge(Req(ws, user, "gpt-4o", 1 + i % 5, 0, i % 4 == 0 ? std::string_view(id) : ""));
        if (c.status.ok() && i % 7 == 0) (void)a->Refund(c.charge_id);
        ReserveResult h = a->Reserve(ReserveRequest{Req(ws, user, "gpt-4o", 2), 60000});
        if (h.status.ok()) {
          if (i % 2 == 0) {
            (void)a->Commit(h.reservation_id);
          } else if (i % 3 == 0) {
            (void)a->Release(h.reservation_id);
          }   // else left open
        }
      }
    });
  }
  std::thread writer([&] {   // stands in for the WAL writer, so no shard's log fills up
    while (!stop.load()) {
      drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::vector<std::vector<Section>> snapshots;
  std::string buf;   // reused across shards and snapshots, as Durability does
  for (int round = 0; round < 6; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
    std::vector<Section> sections(Ledger::ShardCount());
    for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
      // Odd rounds start each shard from an empty buffer, so the copy waits for an allocation
      // between sizing and copying, giving traffic more time to change the shard meanwhile.
      if (round % 2 == 1) std::string().swap(buf);
      ASSERT_TRUE(LedgerLog::SnapshotShard(*a, i, buf, &sections[i].record_no).ok());
      sections[i].payload = buf;
    }
    snapshots.push_back(std::move(sections));
  }
  stop = true;
  for (auto& th : threads) th.join();
  writer.join();
  drain();
  ASSERT_TRUE(a->CheckInvariants().ok());
  const uint64_t live = a->StateDigest();

  for (size_t n = 0; n < snapshots.size(); ++n) {
    const auto& sections = snapshots[n];
    auto b = Make();
    LoadAll(*b, sections);
    uint64_t applied = 0;
    for (const Record& r : log) {
      uint32_t shard;
      uint64_t no;
      ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(r.payload, &shard, &no));
      if (no <= sections[shard].record_no) continue;
      Status st = LedgerLog::ApplyLogRecord(*b, r.type, r.payload);
      ASSERT_TRUE(st.ok()) << "snapshot " << n << ": " << st.ToString();
      ++applied;
    }
    EXPECT_GT(applied, 0u) << "snapshot " << n;
    EXPECT_EQ(b->StateDigest(), live) << "snapshot " << n;
    EXPECT_TRUE(b->CheckInvariants().ok()) << "snapshot " << n;
  }
  // Later snapshots saw more: their record numbers never go back.
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    for (size_t n = 1; n < snapshots.size(); ++n) EXPECT_GE(snapshots[n][i].record_no, snapshots[n - 1][i].record_no);
  }
}

}  // namespace
}  // namespace genledger
