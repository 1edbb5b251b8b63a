// The live catalog across restarts: WAL replay and snapshot load restore the same catalog, version
// and prices; an old data directory recovers with the start-up catalog; the start-up rule
// (AdoptStartupCatalog: the data directory's catalog is authoritative, a differing --catalog is a
// new version). docs/wal-records.md, "Catalog records"; docs/pricing.md.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <string>

#include "durability/snapshot_load.h"
#include "genledger/durability.h"
#include "ledger/ledger_log.h"
#include "snapshot/snapshot_file.h"
#include "temp_dir.h"
#include "wal/segment_reader.h"

namespace genledger {
namespace {

std::shared_ptr<const Catalog> MakeCatalog(const char* text_rate, const char* video_rate) {
  auto c = Catalog::FromJson(std::string(R"({"items":[{"id":"txt","name":"Text","category":"text","unit":"message","rate":")") +
                             text_rate + R"(","regions":["global"]},)" +
                             R"({"id":"vid","name":"Video","category":"video","unit":"second","rate":")" +
                             video_rate + R"(","regions":["global"]}]})");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

class DurabilityCatalogTest : public ::testing::Test {
 protected:
  DurabilityOptions Opts(bool snapshots = false) {
    DurabilityOptions o;
    o.data_dir = tmp_.path();
    o.snapshot_interval_s = snapshots ? 3600 : 0;   // 3600: only the one at shutdown
    return o;
  }
  struct Opened {
    std::unique_ptr<Ledger> ledger;
    std::unique_ptr<Durability> durability;
    RecoveryReport report;
  };
  Opened Open(std::shared_ptr<const Catalog> startup, bool snapshots = false) {
    Opened o;
    o.ledger = std::make_unique<Ledger>(std::move(startup));
    auto d = Durability::Open(*o.ledger, Opts(snapshots), &o.report);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    if (d.ok()) o.durability = std::move(*d);
    return o;
  }
  static uint64_t Charge(Ledger& l, std::string_view model, uint64_t qty, std::string_view id = {}) {
    const std::shared_ptr<const Catalog> c = l.CurrentCatalog();
    ChargeRequest r{"acme", "alice", c->Find(model), {}, id};
    r.usage.quantity = qty;
    ChargeResult res = l.Charge(r);
    EXPECT_TRUE(res.status.ok()) << res.status.ToString();
    return res.replayed ? UINT64_MAX : res.cost;
  }
  // The set_catalog records in the WAL, as versions.
  std::vector<uint64_t> LoggedVersions() {
    std::vector<uint64_t> out;
    auto scan = wal::ScanWal(tmp_.path(), wal::kFromOldest, wal::RecoverMode::kStrict, [&](const wal::Frame& f) {
      if (f.type == 20) {
        uint64_t v;
        std::memcpy(&v, f.payload.data() + 10, 8);
        out.push_back(v);
      }
      return Status();
    });
    EXPECT_TRUE(scan.ok()) << scan.status().ToString();
    return out;
  }

  genledger::testing::TempDir tmp_;
  std::shared_ptr<const Catalog> a_ = MakeCatalog("1", "2");
  std::shared_ptr<const Catalog> b_ = MakeCatalog("3", "5");
  std::shared_ptr<const Catalog> c_ = MakeCatalog("4", "6");
};

TEST_F(DurabilityCatalogTest, WalReplayRestoresTheCatalogVersionAndPrices) {
  uint64_t digest = 0, reservation = 0;
  {
    Opened o = Open(a_);
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
    EXPECT_EQ(Charge(*o.ledger, "txt", 1, "before"), 1u);
    const std::shared_ptr<const Catalog> keep = o.ledger->CurrentCatalog();
    ReserveRequest hold{ChargeRequest{"acme", "bob", keep->Find("vid"), {}, {}}, 0};
    hold.charge.usage.seconds_milli = 10'000;
    reservation = o.ledger->Reserve(hold).reservation_id;
    ASSERT_EQ(*o.ledger->ReplaceCatalog(b_), 2u);
    EXPECT_EQ(Charge(*o.ledger, "txt", 1, "after"), 3u);
    ASSERT_EQ(*o.ledger->ReplaceCatalog(c_), 3u);
    ASSERT_TRUE(o.durability->WaitDurable(o.durability->Ticket()).ok());
    digest = o.ledger->StateDigest();
  }
  EXPECT_EQ(LoggedVersions(), (std::vector<uint64_t>{2, 3}));
  // Started with the first catalog again (or any other): the data directory's wins.
  Opened o = Open(a_);
  uint64_t version = 0;
  EXPECT_EQ(o.ledger->CurrentCatalog(&version)->ToJson(), c_->ToJson());
  EXPECT_EQ(version, 3u);
  EXPECT_EQ(o.ledger->StateDigest(), digest);
  EXPECT_EQ(Charge(*o.ledger, "txt", 1, "before"), UINT64_MAX) << "a retry from version 1 is a replay";
  EXPECT_EQ(Charge(*o.ledger, "txt", 1, "after"), UINT64_MAX) << "a retry from version 2 is a replay";
  EXPECT_EQ(Charge(*o.ledger, "txt", 1), 4u);
  Usage shorter;
  shorter.seconds_milli = 5'000;
  EXPECT_EQ(o.ledger->Commit(reservation, shorter).cost, 10u) << "the hold's rate, 2/s";
}

TEST_F(DurabilityCatalogTest, ASnapshotRestoresTheCatalogVersionAndPrices) {
  uint64_t digest = 0;
  {
    Opened o = Open(a_, /*snapshots=*/true);
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
    ASSERT_EQ(*o.ledger->ReplaceCatalog(b_), 2u);
    EXPECT_EQ(Charge(*o.ledger, "txt", 1, "k"), 3u);
    ASSERT_TRUE(o.durability->Snapshot().ok());
    // After the snapshot: one more version, replayed from the WAL on top of the snapshot's.
    ASSERT_EQ(*o.ledger->ReplaceCatalog(c_), 3u);
    ASSERT_TRUE(o.durability->WaitDurable(o.durability->Ticket()).ok());
    digest = o.ledger->StateDigest();
  }
  {
    // The shutdown snapshot covered everything: the catalog comes from the snapshot alone.
    Opened o = Open(MakeCatalog("9", "9"), /*snapshots=*/true);
    EXPECT_FALSE(o.report.snapshot_path.empty());
    EXPECT_EQ(o.report.records_replayed, 0u) << o.report.Summary();
    uint64_t version = 0;
    EXPECT_EQ(o.ledger->CurrentCatalog(&version)->ToJson(), c_->ToJson());
    EXPECT_EQ(version, 3u);
    EXPECT_EQ(o.ledger->StateDigest(), digest);
    EXPECT_EQ(Charge(*o.ledger, "txt", 1, "k"), UINT64_MAX);
  }
}

TEST_F(DurabilityCatalogTest, ASnapshotAndTheWalAfterItGiveTheLatestVersion) {
  uint64_t digest = 0;
  {
    Opened o = Open(a_);
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
    ASSERT_EQ(*o.ledger->ReplaceCatalog(b_), 2u);
    ASSERT_TRUE(o.durability->Snapshot().ok());
    ASSERT_EQ(*o.ledger->ReplaceCatalog(c_), 3u);
    EXPECT_EQ(Charge(*o.ledger, "txt", 2), 8u);
    ASSERT_TRUE(o.durability->WaitDurable(o.durability->Ticket()).ok());
    digest = o.ledger->StateDigest();
  }
  Opened o = Open(a_);
  EXPECT_FALSE(o.report.snapshot_path.empty());
  EXPECT_EQ(o.report.records_replayed, 2u) << o.report.Summary();   // set_catalog, charge
  uint64_t version = 0;
  EXPECT_EQ(o.ledger->CurrentCatalog(&version)->ToJson(), c_->ToJson());
  EXPECT_EQ(version, 3u);
  EXPECT_EQ(o.ledger->StateDigest(), digest);
}

TEST_F(DurabilityCatalogTest, ADirectoryWithoutACatalogRecoversWithTheStartUpCatalog) {
  // Written the way a build before the live catalog wrote it: no type 20, no catalog section.
  {
    Opened o = Open(a_);
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
    EXPECT_EQ(Charge(*o.ledger, "txt", 1, "k"), 1u);
    ASSERT_TRUE(o.durability->WaitDurable(o.durability->Ticket()).ok());
  }
  EXPECT_TRUE(LoggedVersions().empty());
  Opened o = Open(b_);
  uint64_t version = 0;
  EXPECT_EQ(o.ledger->CurrentCatalog(&version), b_) << "the start-up catalog";
  EXPECT_EQ(version, 1u);
  EXPECT_FALSE(LedgerLog::CatalogReplaced(*o.ledger));
  EXPECT_EQ(Charge(*o.ledger, "txt", 1, "k"), UINT64_MAX);
  EXPECT_EQ(Charge(*o.ledger, "txt", 1), 3u);
}

TEST_F(DurabilityCatalogTest, StartUpRuleTheDataDirectoryIsAuthoritative) {
  {
    // A new directory: the start-up catalog is logged as version 1.
    Opened o = Open(a_);
    Result<std::string> what = AdoptStartupCatalog(*o.ledger, *o.durability, a_);
    ASSERT_TRUE(what.ok()) << what.status().ToString();
    EXPECT_NE(what->find("logged as version 1"), std::string::npos) << *what;
    EXPECT_EQ(o.ledger->CatalogVersion(), 1u);
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
  }
  EXPECT_EQ(LoggedVersions(), (std::vector<uint64_t>{1}));
  {
    // No --catalog: the directory's, whatever the ledger was built with.
    Opened o = Open(b_);
    Result<std::string> what = AdoptStartupCatalog(*o.ledger, *o.durability, nullptr);
    ASSERT_TRUE(what.ok()) << what.status().ToString();
    EXPECT_NE(what->find("the data directory's catalog, version 1"), std::string::npos) << *what;
    EXPECT_EQ(o.ledger->CurrentCatalog()->ToJson(), a_->ToJson());
    EXPECT_EQ(Charge(*o.ledger, "txt", 1), 1u);
  }
  {
    // The same --catalog: nothing logged.
    Opened o = Open(a_);
    Result<std::string> what = AdoptStartupCatalog(*o.ledger, *o.durability, MakeCatalog("1", "2"));
    ASSERT_TRUE(what.ok());
    EXPECT_NE(what->find("is the same"), std::string::npos) << *what;
    EXPECT_EQ(o.ledger->CatalogVersion(), 1u);
  }
  EXPECT_EQ(LoggedVersions(), (std::vector<uint64_t>{1}));
  {
    // A --catalog that differs: a new version, logged.
    Opened o = Open(b_);
    Result<std::string> what = AdoptStartupCatalog(*o.ledger, *o.durability, b_);
    ASSERT_TRUE(what.ok());
    EXPECT_NE(what->find("applied as version 2"), std::string::npos) << *what;
    EXPECT_EQ(o.ledger->CatalogVersion(), 2u);
    EXPECT_EQ(Charge(*o.ledger, "txt", 1), 3u);
  }
  EXPECT_EQ(LoggedVersions(), (std::vector<uint64_t>{1, 2}));
  Opened o = Open(a_);
  uint64_t version = 0;
  EXPECT_EQ(o.ledger->CurrentCatalog(&version)->ToJson(), b_->ToJson());
  EXPECT_EQ(version, 2u);
}

TEST_F(DurabilityCatalogTest, StartUpRuleOnAnOldDirectoryWithADifferentCatalog) {
  {
    Opened o = Open(a_);   // an old directory: no catalog of its own
    ASSERT_TRUE(o.ledger->UpsertWorkspace("acme", 10'000, Region::kGlobal).ok());
  }
  Opened o = Open(b_);
  Result<std::string> what = AdoptStartupCatalog(*o.ledger, *o.durability, c_);
  ASSERT_TRUE(what.ok()) << what.status().ToString();
  EXPECT_NE(what->find("logged as version 1"), std::string::npos) << *what;
  EXPECT_NE(what->find("applied as version 2"), std::string::npos) << *what;
  EXPECT_EQ(LoggedVersions(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(o.ledger->CurrentCatalog()->ToJson(), c_->ToJson());
}

TEST_F(DurabilityCatalogTest, ParallelReplayAppliesTheCatalogAtItsPlace) {
  // Many shards' records around many replacements, replayed by several workers: the final
  // catalog and every balance are those of the live ledger.
  uint64_t digest = 0;
  {
    Opened o = Open(a_);
    for (int w = 0; w < 64; ++w) ASSERT_TRUE(o.ledger->UpsertWorkspace("ws" + std::to_string(w), 1'000'000, Region::kGlobal).ok());
    for (int round = 0; round < 20; ++round) {
      for (int w = 0; w < 64; ++w) {
        const std::shared_ptr<const Catalog> c = o.ledger->CurrentCatalog();
        const std::string ws = "ws" + std::to_string(w);
        ChargeRequest r{ws, "u", c->Find("txt"), {}, {}};
        r.usage.quantity = 1;
        ASSERT_TRUE(o.ledger->Charge(r).status.ok());
      }
      ASSERT_TRUE(o.ledger->ReplaceCatalog(round % 2 == 0 ? b_ : a_).ok());
    }
    ASSERT_TRUE(o.durability->WaitDurable(o.durability->Ticket()).ok());
    digest = o.ledger->StateDigest();
  }
  Opened o = Open(c_);
  EXPECT_EQ(o.report.records_replayed, 64u + 20 * 65) << o.report.Summary();
  EXPECT_EQ(o.ledger->CatalogVersion(), 21u);
  EXPECT_EQ(o.ledger->CurrentCatalog()->ToJson(), a_->ToJson());
  EXPECT_EQ(o.ledger->StateDigest(), digest);
}

// A catalog section anywhere but first, twice, or with a record_no other than shard 0's is
// corruption of the content; an intact file with it stops loading.
TEST_F(DurabilityCatalogTest, AMisplacedCatalogSectionIsRefused) {
  auto source = std::make_unique<Ledger>(a_);
  ASSERT_TRUE(source->ReplaceCatalog(b_).ok());
  std::vector<std::string> shards(Ledger::ShardCount());
  std::vector<uint64_t> record_nos(Ledger::ShardCount());
  LedgerLog::CatalogCopy copy;
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    ASSERT_TRUE(LedgerLog::SnapshotShard(*source, i, shards[i], &record_nos[i], nullptr, i == 0 ? &copy : nullptr).ok());
  }
  const std::string catalog = LedgerLog::EncodeCatalogSection(copy);
  enum class Where { kFirst, kAfterShard0, kTwice, kOtherRecordNo };
  uint64_t covered = 100;
  for (Where where : {Where::kFirst, Where::kAfterShard0, Where::kTwice, Where::kOtherRecordNo}) {
    SCOPED_TRACE(int(where));
    auto w = snapshot::SnapshotWriter::Open(tmp_.path(), ++covered, Ledger::ShardCount());
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto add_catalog = [&](uint64_t record_no) {
      ASSERT_TRUE((*w)->AddSection(LedgerLog::kCatalogSection, 0, record_no, catalog).ok());
    };
    if (where != Where::kAfterShard0) add_catalog(where == Where::kOtherRecordNo ? record_nos[0] + 1 : record_nos[0]);
    if (where == Where::kTwice) add_catalog(record_nos[0]);
    for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
      ASSERT_TRUE((*w)->AddSection(LedgerLog::kShardStateSection, uint16_t(i), record_nos[i], shards[i]).ok());
      if (i == 0 && where == Where::kAfterShard0) add_catalog(record_nos[0]);
    }
    ASSERT_TRUE((*w)->Finish().ok());
    Ledger into(a_);
    std::vector<uint64_t> skip;
    uint64_t sections = 0;
    Status st = LoadSnapshot(into, (*w)->final_path(), &skip, &sections);
    if (where == Where::kFirst) {
      ASSERT_TRUE(st.ok()) << st.ToString();
      EXPECT_EQ(into.CatalogVersion(), 2u);
      EXPECT_EQ(into.CurrentCatalog()->ToJson(), b_->ToJson());
      EXPECT_EQ(sections, Ledger::ShardCount() + 1);
    } else {
      EXPECT_EQ(st.code(), Code::kCorruption) << st.ToString();
    }
  }
}

}  // namespace
}  // namespace genledger
