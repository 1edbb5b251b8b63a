// A shard larger than one snapshot section is split into parts and loads back whole; misplaced
// parts are refused (docs/snapshot-format.md, "Section types"; src/durability/snapshot_load.h).
#include "durability/snapshot_load.h"

#include <gtest/gtest.h>

#include "temp_dir.h"

#include <string>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "snapshot/snapshot_file.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t n, std::string_view id = {}) {
  ChargeRequest r{ws, user, Catalog::Default()->Find("gpt-4o"), {}, id};
  r.usage.quantity = n;
  return r;
}

// One workspace with thousands of users: its shard's payload is far over the test's section size.
void FillOneBigShard(Ledger& l) {
  ASSERT_TRUE(l.UpsertWorkspace("big", kUnlimited, Region::kGlobal).ok());
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(l.Charge(Text("big", "user-" + std::to_string(i), 1 + i % 7, "id-" + std::to_string(i))).status.ok());
  }
  ASSERT_TRUE(l.UpsertWorkspace("small", 50, Region::kGlobal).ok());
  ASSERT_TRUE(l.Charge(Text("small", "u", 2)).status.ok());
}

TEST(SnapshotLoadTest, ShardLargerThanOneSectionIsSplitAndRecoversToTheSameDigest) {
  genledger::testing::TempDir tmp;
  DurabilityOptions o;
  o.data_dir = tmp.path();
  o.snapshot_interval_s = 0;
  o.snapshot_section_bytes = 4096;
  uint64_t digest = 0;
  {
    Ledger ledger(Catalog::Default());
    auto d = Durability::Open(ledger, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    FillOneBigShard(ledger);
    ASSERT_TRUE((*d)->Snapshot().ok()) << (*d)->stats().last_snapshot_error;
    digest = ledger.StateDigest();
  }
  Ledger ledger(Catalog::Default());
  RecoveryReport rep;
  auto d = Durability::Open(ledger, o, &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_FALSE(rep.snapshot_path.empty()) << rep.Summary();
  EXPECT_GT(rep.snapshot_sections, Ledger::ShardCount() + 20) << "the big shard was not split";
  EXPECT_EQ(rep.records_replayed, 0u) << rep.Summary();
  EXPECT_EQ(ledger.StateDigest(), digest);
  EXPECT_TRUE(ledger.CheckInvariants().ok());
  EXPECT_TRUE(ledger.Charge(Text("big", "user-0", 1, "id-0")).replayed);
}

// Writes a snapshot whose sections are given as (type, shard, record_no, payload), shards
// without a listed section getting an empty ledger's shard_state.
std::string WriteSnapshot(const std::string& dir, const Ledger& source,
                          const std::vector<std::tuple<uint8_t, uint16_t, uint64_t, std::string>>& listed,
                          uint16_t listed_shard) {
  auto w = snapshot::SnapshotWriter::Open(dir, 7, Ledger::ShardCount());
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    if (i == listed_shard) {
      for (const auto& [type, shard, record_no, payload] : listed) {
        EXPECT_TRUE((*w)->AddSection(type, shard, record_no, payload).ok());
      }
      continue;
    }
    std::string payload;
    uint64_t record_no = 0;
    EXPECT_TRUE(LedgerLog::SnapshotShard(source, i, payload, &record_no).ok());
    EXPECT_TRUE((*w)->AddSection(LedgerLog::kShardStateSection, uint16_t(i), record_no, payload).ok());
  }
  EXPECT_TRUE((*w)->Finish().ok());
  return (*w)->final_path();
}

TEST(SnapshotLoadTest, MisplacedPartsAreRefused) {
  Ledger source(Catalog::Default());
  FillOneBigShard(source);
  const uint32_t shard = 3;
  std::string payload;
  uint64_t record_no = 0;
  ASSERT_TRUE(LedgerLog::SnapshotShard(source, shard, payload, &record_no).ok());
  ASSERT_GT(payload.size(), 16u);
  const std::string a = payload.substr(0, 10), b = payload.substr(10);
  constexpr uint8_t kPart = LedgerLog::kShardStatePartSection, kState = LedgerLog::kShardStateSection;
  const uint16_t s = uint16_t(shard);
  struct Case {
    const char* name;
    std::vector<std::tuple<uint8_t, uint16_t, uint64_t, std::string>> sections;
    bool ok;
  };
  const Case cases[] = {
      {"whole", {{kState, s, record_no, payload}}, true},
      {"two pieces", {{kPart, s, record_no, a}, {kState, s, record_no, b}}, true},
      {"three pieces", {{kPart, s, record_no, a.substr(0, 4)}, {kPart, s, record_no, a.substr(4)}, {kState, s, record_no, b}}, true},
      {"another record_no", {{kPart, s, record_no + 1, a}, {kState, s, record_no, b}}, false},
      {"a part after the state", {{kState, s, record_no, payload}, {kPart, s, record_no, ""}}, false},
      {"two states", {{kState, s, record_no, payload}, {kState, s, record_no, payload}}, false},
      {"a part with no state", {{kPart, s, record_no, payload}}, false},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    genledger::testing::TempDir tmp;
    const std::string path = WriteSnapshot(tmp.path(), source, c.sections, s);
    Ledger l(Catalog::Default());
    std::vector<uint64_t> skip;
    uint64_t sections = 0;
    snapshot::SnapshotSummary summary;
    const Status st = LoadSnapshot(l, path, &skip, &sections, &summary);
    EXPECT_TRUE(summary.ok()) << "the file itself is intact";
    if (c.ok) {
      EXPECT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(l.StateDigest(), source.StateDigest());
    } else {
      EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
    }
  }
}

// A part followed by the next shard's state: the state of the part's shard is missing.
TEST(SnapshotLoadTest, PartFollowedByAnotherShardIsRefused) {
  Ledger source(Catalog::Default());
  genledger::testing::TempDir tmp;
  auto w = snapshot::SnapshotWriter::Open(tmp.path(), 7, Ledger::ShardCount());
  ASSERT_TRUE(w.ok());
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    std::string payload;
    uint64_t record_no = 0;
    ASSERT_TRUE(LedgerLog::SnapshotShard(source, i, payload, &record_no).ok());
    const uint8_t type = i == 0 ? LedgerLog::kShardStatePartSection : LedgerLog::kShardStateSection;
    ASSERT_TRUE((*w)->AddSection(type, uint16_t(i), record_no, i == 0 ? payload.substr(0, 4) : payload).ok());
  }
  ASSERT_TRUE((*w)->Finish().ok());
  Ledger l(Catalog::Default());
  std::vector<uint64_t> skip;
  uint64_t sections = 0;
  EXPECT_EQ(LoadSnapshot(l, (*w)->final_path(), &skip, &sections).code(), Code::kCorruption);
}

}  // namespace
}  // namespace genledger
