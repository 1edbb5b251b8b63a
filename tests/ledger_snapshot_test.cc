// A shard snapshot must load into an identical ledger, reject any damaged payload without
// touching the ledger, and combine with the WAL records after it (docs/snapshot-format.md).
#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"

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
    Status st = l.SnapshotShard(i, out[i].payload, &out[i].record_no, &hold);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (max_hold_ns != nullptr) *max_hold_ns = std::max(*max_hold_ns, hold);
  }
  return out;
}

void LoadAll(Ledger& l, const std::vector<Section>& sections) {
  for (uint32_t i = 0; i < sections.size(); ++i) {
    Status st = l.LoadShardSection(i, sections[i].record_no, sections[i].payload);
    ASSERT_TRUE(st.ok()) << "shard " << i << ": " << st.ToString();
  }
}

struct Record {
  uint8_t type;
  std::string payload;
};

class LedgerSnapshotTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make() {
    LedgerOptions opt;
    opt.clock = &clock_;
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
  a->EnableLog();
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
    ASSERT_EQ(b->LoadShardSection(uint32_t(richest), 0, good.substr(0, n)).code(), Code::kCorruption) << n;
  }
  EXPECT_EQ(b->LoadShardSection(uint32_t(richest), 0, good + "x").code(), Code::kCorruption);
  std::string bad_version = good;
  bad_version[0] = 2;
  EXPECT_EQ(b->LoadShardSection(uint32_t(richest), 0, bad_version).code(), Code::kCorruption);
  // A payload loaded into the wrong shard: its workspaces hash elsewhere.
  EXPECT_EQ(b->LoadShardSection(uint32_t((richest + 1) % Ledger::ShardCount()), 0, good).code(), Code::kCorruption);
  // Random byte flips: each is rejected or yields a consistent ledger, never half a shard.
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 2000; ++i) {
    std::string p = good;
    p[rng() % p.size()] ^= char(1 + rng() % 255);
    auto c = Make();
    Status st = c->LoadShardSection(uint32_t(richest), 0, p);
    if (!st.ok()) {
      ASSERT_EQ(st.code(), Code::kCorruption) << st.ToString();
      ASSERT_EQ(c->StateDigest(), empty_digest);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 500);
  EXPECT_EQ(b->StateDigest(), empty_digest);
  // The shard was left untouched by every failure: the good payload still loads.
  ASSERT_TRUE(b->LoadShardSection(uint32_t(richest), sections[richest].record_no, good).ok());
  EXPECT_EQ(b->LoadShardSection(uint32_t(richest), 0, good).code(), Code::kInvalidArgument);   // not empty now
}

TEST_F(LedgerSnapshotTest, SnapshotDuringTrafficPlusLaterRecordsEqualsOriginal) {
  auto a = Make();
  a->EnableLog();
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
  a->DrainLog([&](uint8_t type, std::string_view p) { log.push_back({type, std::string(p)}); });

  auto b = Make();
  LoadAll(*b, sections);
  uint64_t skipped = 0, applied = 0;
  for (const Record& r : log) {
    uint32_t shard;
    uint64_t no;
    ASSERT_TRUE(Ledger::ParseLogRecordPrefix(r.payload, &shard, &no));
    if (no <= sections[shard].record_no) {
      ++skipped;
      continue;
    }
    Status st = b->ApplyLogRecord(r.type, r.payload);
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
  a->EnableLog();
  BuildRichState(*a);
  const auto sections = SnapshotAll(*a);
  const uint64_t empty_digest = Make()->StateDigest();

  auto b = Make();
  int wakeups = 0;
  b->SetLogWakeup([&] { ++wakeups; });
  for (uint32_t i = 0; i < Ledger::ShardCount() / 2; ++i) {   // as a file damaged half way leaves it
    ASSERT_TRUE(b->LoadShardSection(i, sections[i].record_no, sections[i].payload).ok());
  }
  ASSERT_NE(b->StateDigest(), empty_digest);
  ASSERT_GT(b->Totals().workspaces, 0u);
  ASSERT_TRUE(b->ResetForRecovery().ok());
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
  b->EnableLog();
  ASSERT_TRUE(b->Charge(Req("big", "user1", "gpt-4o", 1)).status.ok());
  EXPECT_GT(wakeups, 0);

  // Once logging, the state may have been acknowledged: no reset, nothing changed.
  const uint64_t before = b->StateDigest();
  EXPECT_EQ(b->ResetForRecovery().code(), Code::kInvalidArgument);
  EXPECT_EQ(b->StateDigest(), before);
}

}  // namespace
}  // namespace genledger
