// Recovery's multi-threaded replay (src/durability/parallel_replay.h) must reproduce exactly the
// state a serial replay gives, although each worker applies a batch shard after shard rather than
// in log order, and its errors must name the record that failed.
#include "durability/parallel_replay.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/log_record.h"
#include "ledger/shard.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

struct Record {
  uint8_t type;
  std::string payload;
};

class ParallelReplayTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make() {
    LedgerOptions opt;
    opt.clock = &clock_;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }

  // A log long enough that every worker gets several full batches (8,192 records), over enough
  // workspaces to touch every shard, in random workspace order: what log lanes write.
  void BuildLog() {
    source_ = Make();
    LedgerLog::EnableLog(*source_);
    constexpr int kWorkspaces = 3000;
    for (int i = 0; i < kWorkspaces; ++i) {
      ASSERT_TRUE(source_->UpsertWorkspace("ws" + std::to_string(i), i % 5 ? 1'000'000 : kUnlimited, Region::kGlobal).ok());
    }
    std::mt19937_64 rng(11);
    std::vector<uint64_t> holds;
    for (int i = 0; i < 60'000; ++i) {
      const std::string ws = "ws" + std::to_string(rng() % kWorkspaces);
      const std::string user = "u" + std::to_string(rng() % 3);
      const bool video = i % 9 == 0;   // holds are for per-second video, charges per request
      ChargeRequest req{ws, user, Catalog::Default()->Find(video ? "sora-2" : "gpt-4o"), {}, {}};
      if (video) {
        req.usage.seconds_milli = 1000 + rng() % 4000;
      } else {
        req.usage.quantity = 1 + rng() % 3;
      }
      if (video) {
        ReserveResult r = source_->Reserve(ReserveRequest{req, 0});
        ASSERT_TRUE(r.status.ok()) << r.status.ToString();
        holds.push_back(r.reservation_id);
      } else if (i % 13 == 0 && !holds.empty()) {
        ASSERT_TRUE(source_->Commit(holds.back()).status.ok());
        holds.pop_back();
      } else {
        ASSERT_TRUE(source_->Charge(req).status.ok());
      }
    }
    ASSERT_TRUE(LedgerLog::DrainLog(*source_, [&](uint8_t type, std::string_view p) { log_.push_back({type, std::string(p)}); }).ok());
    ASSERT_GT(log_.size(), 60'000u);
  }

  wal::Frame FrameOf(size_t i) const {
    wal::Frame f;
    f.seq = 1000 + i;   // distinct from the index, so an error naming it is checked for real
    f.type = log_[i].type;
    f.payload = log_[i].payload;
    f.offset = 64 * i;
    return f;
  }

  ManualClock clock_;
  std::unique_ptr<Ledger> source_;
  std::vector<Record> log_;
};

TEST_F(ParallelReplayTest, ReproducesTheStateWithAnyWorkerCount) {
  ASSERT_NO_FATAL_FAILURE(BuildLog());
  for (unsigned workers : {1u, 3u, 4u}) {
    auto b = Make();
    const std::vector<uint64_t> none;
    ParallelReplayer replayer(*b, none, workers);
    for (size_t i = 0; i < log_.size(); ++i) ASSERT_TRUE(replayer.Add(FrameOf(i)).ok());
    ASSERT_TRUE(replayer.Finish().ok()) << workers;
    EXPECT_EQ(replayer.replayed(), log_.size());
    EXPECT_EQ(replayer.skipped(), 0u);
    EXPECT_EQ(b->StateDigest(), source_->StateDigest()) << workers << " workers";
    EXPECT_TRUE(b->CheckInvariants().ok());
  }
}

TEST_F(ParallelReplayTest, SkipsWhatTheSnapshotAlreadyHolds) {
  ASSERT_NO_FATAL_FAILURE(BuildLog());
  // Stand in for a snapshot: apply a prefix directly and note each shard's last record number.
  auto b = Make();
  std::vector<uint64_t> skip_upto(ledger::kShardCount, 0);
  const size_t prefix = log_.size() / 3;
  for (size_t i = 0; i < prefix; ++i) {
    ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log_[i].type, log_[i].payload).ok());
    uint32_t shard = 0;
    uint64_t no = 0;
    ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(log_[i].payload, &shard, &no));
    skip_upto[shard] = std::max(skip_upto[shard], no);
  }
  ParallelReplayer replayer(*b, skip_upto, 2);
  for (size_t i = 0; i < log_.size(); ++i) ASSERT_TRUE(replayer.Add(FrameOf(i)).ok());
  ASSERT_TRUE(replayer.Finish().ok());
  EXPECT_EQ(replayer.skipped(), prefix);
  EXPECT_EQ(replayer.replayed(), log_.size() - prefix);
  EXPECT_EQ(b->StateDigest(), source_->StateDigest());
}

TEST_F(ParallelReplayTest, AMissingRecordIsCorruptionNamingTheRecordThatCannotApply) {
  ASSERT_NO_FATAL_FAILURE(BuildLog());
  // Drop one record from deep inside a batch; the next record of the same shard then has a gap
  // in its record numbers. Grouping reorders the batch, so the error must still map back to
  // that record's own sequence number and offset.
  const size_t dropped = 20'000;
  uint32_t shard = 0, other = 0;
  uint64_t no = 0;
  ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(log_[dropped].payload, &shard, &no));
  size_t next = dropped + 1;
  for (; next < log_.size(); ++next) {
    ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(log_[next].payload, &other, &no));
    if (other == shard) break;
  }
  ASSERT_LT(next, log_.size());

  auto b = Make();
  const std::vector<uint64_t> none;
  ParallelReplayer replayer(*b, none, 3);
  Status added;
  for (size_t i = 0; i < log_.size() && added.ok(); ++i) {
    if (i != dropped) added = replayer.Add(FrameOf(i));
  }
  Status st = added.ok() ? replayer.Finish() : added;
  ASSERT_EQ(st.code(), Code::kCorruption);
  const std::string want = "WAL record seq " + std::to_string(FrameOf(next).seq) + " at offset " + std::to_string(FrameOf(next).offset);
  EXPECT_NE(st.ToString().find(want), std::string::npos) << st.ToString();
}

TEST_F(ParallelReplayTest, RejectsRecordsItCannotPlace) {
  auto b = Make();
  const std::vector<uint64_t> none;
  ParallelReplayer replayer(*b, none, 2);
  wal::Frame f;
  f.seq = 7;
  f.type = uint8_t(ledger::RecordType::kChargeCompact);
  const std::string too_short("\x01", 1);
  f.payload = too_short;
  Status st = replayer.Add(f);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.ToString().find("too short"), std::string::npos) << st.ToString();

  // A CRC-valid record whose shard does not exist (the prefix is shard u16, record number u64).
  std::string bad_shard(10, '\0');
  bad_shard[0] = '\xff';
  bad_shard[1] = '\xff';
  bad_shard[2] = 1;
  f.payload = bad_shard;
  st = replayer.Add(f);
  EXPECT_EQ(st.code(), Code::kCorruption);
  EXPECT_NE(st.ToString().find("names shard 65535"), std::string::npos) << st.ToString();
  EXPECT_EQ(replayer.replayed(), 0u);
  EXPECT_TRUE(replayer.Finish().ok());
  EXPECT_EQ(b->StateDigest(), Make()->StateDigest());
}

}  // namespace
}  // namespace genledger
