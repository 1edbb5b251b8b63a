// Log lanes: records of one shard spread over several lanes must come out of CollectLog in the
// shard's order, and a collection must never take a record without every record of its shard
// before it (docs/durability.md, "The write path").
#include "ledger/log_lanes.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/log_record.h"
#include "ledger/ledger_log.h"

namespace genledger::ledger {
namespace {

// One buffered record of type kTopUp for (shard, no), with `tag` as its only field.
void Put(std::string& lane, uint16_t shard, uint64_t no, uint32_t tag) {
  RecordBuilder(lane, RecordType::kTopUp, shard, no).U32(tag);
}

struct Parsed {
  uint16_t shard;
  uint64_t no;
  uint32_t tag;
};

std::vector<Parsed> Parse(const std::string& out) {
  std::vector<Parsed> v;
  LedgerLog::ForEachBufferedRecord(out, [&](uint8_t, std::string_view p) {
    Parsed r{};
    std::memcpy(&r.shard, p.data(), 2);
    std::memcpy(&r.no, p.data() + 2, 8);
    std::memcpy(&r.tag, p.data() + 10, 4);
    v.push_back(r);
  });
  return v;
}

TEST(LogLanesTest, MergeRestoresEachShardsOrderAcrossLanes) {
  // Shard 3's records 1-4 alternate between two lanes; shard 9's are all in lane 1.
  std::string a, b;
  Put(a, 3, 2, 32);
  Put(a, 3, 4, 34);
  Put(b, 3, 1, 31);
  Put(b, 9, 1, 91);
  Put(b, 3, 3, 33);
  Put(b, 9, 2, 92);
  std::array<uint64_t, kShardCount> collected{};
  std::string out;
  const std::array<std::string_view, 2> lanes{a, b};
  ASSERT_TRUE(MergeLaneBuffers(lanes, collected, out).ok());
  std::vector<Parsed> got = Parse(out);
  ASSERT_EQ(got.size(), 6u);
  std::map<uint16_t, std::vector<uint64_t>> by_shard;
  for (const Parsed& r : got) {
    by_shard[r.shard].push_back(r.no);
    EXPECT_EQ(r.tag, r.shard * 10u + r.no) << "a record's bytes travel with it";
  }
  EXPECT_EQ(by_shard[3], (std::vector<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(by_shard[9], (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(collected[3], 4u);
  EXPECT_EQ(collected[9], 2u);
  EXPECT_EQ(collected[0], 0u);
}

TEST(LogLanesTest, MergeContinuesFromWhatWasCollectedBefore) {
  std::string a;
  Put(a, 5, 8, 0);
  std::array<uint64_t, kShardCount> collected{};
  collected[5] = 7;   // records 1-7 went in an earlier round (or were replayed at start-up)
  std::string out;
  const std::array<std::string_view, 1> lanes{a};
  ASSERT_TRUE(MergeLaneBuffers(lanes, collected, out).ok());
  EXPECT_EQ(out, a);
  EXPECT_EQ(collected[5], 8u);
}

TEST(LogLanesTest, AMissingPredecessorIsAnErrorNamingTheRecord) {
  std::string a, b;
  Put(a, 2, 1, 0);
  Put(a, 2, 3, 0);   // record 2 of shard 2 is in no lane
  Put(b, 7, 1, 0);
  std::array<uint64_t, kShardCount> collected{};
  std::string out;
  const std::array<std::string_view, 2> lanes{a, b};
  Status st = MergeLaneBuffers(lanes, collected, out);
  ASSERT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.message().find("record 3 of shard 2"), std::string::npos) << st.ToString();
  EXPECT_NE(st.message().find("record 2 is in no log lane"), std::string::npos) << st.ToString();
  // What could be merged was, and `collected` matches it.
  EXPECT_EQ(Parse(out).size(), 2u);
  EXPECT_EQ(collected[2], 1u);
  EXPECT_EQ(collected[7], 1u);
}

TEST(LogLanesTest, ATruncatedLaneIsAnError) {
  std::string a;
  Put(a, 1, 1, 0);
  a.pop_back();
  std::array<uint64_t, kShardCount> collected{};
  std::string out;
  const std::array<std::string_view, 1> lanes{a};
  EXPECT_EQ(MergeLaneBuffers(lanes, collected, out).code(), Code::kCorruption);
}

// Many threads on two workspaces put each one's shard records in several lanes at once; a
// collector running meanwhile must get, batch after batch, an unbroken run of record numbers per
// shard (a batch holding record k+1 without k would make CollectLog fail, or show a gap here).
TEST(LogLanesTest, ConcurrentCollectionsTakeEveryShardsRecordsWithoutGaps) {
  Ledger ledger(Catalog::Default());
  LedgerLog::EnableLog(ledger);
  ASSERT_TRUE(ledger.UpsertWorkspace("hot", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(ledger.UpsertWorkspace("other", kUnlimited, Region::kGlobal).ok());
  // Producers run until the collector has taken 50 non-empty batches (or 20 s have passed).
  std::atomic<bool> stop{false};
  std::map<uint16_t, uint64_t> last;   // per shard, the last record number seen
  uint64_t batches_with_records = 0, records = 0;
  Status collect_status;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  std::thread collector([&] {
    std::string out;
    while (batches_with_records < 50 && std::chrono::steady_clock::now() < deadline) {
      out.clear();
      collect_status = LedgerLog::CollectLog(ledger, out);
      if (!collect_status.ok()) break;
      if (!out.empty()) ++batches_with_records;
      for (const Parsed& r : Parse(out)) {
        ++records;
        uint64_t& l = last[r.shard];
        if (r.no != l + 1) {
          collect_status = Status(Code::kCorruption, "shard " + std::to_string(r.shard) + ": record " +
                                                         std::to_string(r.no) + " after " + std::to_string(l));
          break;
        }
        l = r.no;
      }
      if (!collect_status.ok()) break;
    }
    stop = true;
  });
  constexpr int kThreads = 6;
  std::atomic<uint64_t> charged{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // The request holds string_views: the user id must outlive it (ASan: stack-use-after-scope).
      const std::string user = "u" + std::to_string(t);
      ChargeRequest req{t % 3 == 0 ? "other" : "hot", user, Catalog::Default()->Find("gpt-4o"), {}, {}};
      req.usage.quantity = 1;
      std::vector<ChargeRequest> batch(7, req);
      std::vector<ChargeResult> results(batch.size());
      while (!stop.load()) {
        ledger.ChargeBatch(batch, results);
        for (const ChargeResult& r : results) charged += r.status.ok() ? 1 : 0;
      }
    });
  }
  for (auto& th : threads) th.join();
  collector.join();
  ASSERT_TRUE(collect_status.ok()) << collect_status.ToString();
  ASSERT_EQ(batches_with_records, 50u) << "the collector ran while records were being appended";
  std::string rest;
  ASSERT_TRUE(LedgerLog::CollectLog(ledger, rest).ok());
  records += Parse(rest).size();
  EXPECT_EQ(records, 2 + charged.load()) << "every record collected exactly once";
}

}  // namespace
}  // namespace genledger::ledger
