// Durability with snapshots, end to end: recovery from a snapshot plus the WAL after it,
// retention and WAL deletion, fallback to an older snapshot, snapshots under load, and a failed
// snapshot write (docs/durability.md, "Snapshots").
#include <gtest/gtest.h>

#include "corrupt_file.h"
#include "temp_dir.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "snapshot/format.h"
#include "snapshot/snapshot_file.h"
#include "wal/file.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

namespace fs = std::filesystem;

class SnapshotRecoveryTest : public ::testing::Test {
 public:
  // For the helpers below that build a directory other than dir_.
  void RunOps(Ledger& l, Durability& d, int from, int to) { Ops(l, d, from, to); }

 protected:

  DurabilityOptions Opts() {
    DurabilityOptions o;
    o.data_dir = dir_;
    o.segment_bytes = 4096;   // many segments, so retention has something to delete
    return o;
  }
  std::unique_ptr<Ledger> NewLedger() { return std::make_unique<Ledger>(Catalog::Default()); }
  ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t n, std::string_view id = {}) {
    ChargeRequest r{ws, user, Catalog::Default()->Find("gpt-4o"), {}, id};
    r.usage.quantity = n;
    return r;
  }
  void Ops(Ledger& l, Durability& d, int from, int to) {
    for (int i = from; i < to; ++i) {
      const std::string ws = "ws-" + std::to_string(i % 40);
      if (i < 40) {
        ASSERT_TRUE(l.UpsertWorkspace(ws, kUnlimited, Region::kGlobal).ok());
      }
      const std::string id = "id-" + std::to_string(i);
      ASSERT_TRUE(l.Charge(Text(ws, "u" + std::to_string(i % 3), 1 + i % 5, id)).status.ok());
    }
    ASSERT_TRUE(d.WaitDurable(d.Ticket()).ok());
  }
  std::vector<std::string> Files(std::string_view prefix) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.rfind(prefix, 0) == 0 && name.find(".tmp") == std::string::npos) v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  }
  genledger::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(SnapshotRecoveryTest, RecoversFromSnapshotPlusLaterRecords) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;   // only the explicit snapshot: the later records must be replayed
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    Ops(*ledger, **d, 0, 300);
    ASSERT_TRUE((*d)->Snapshot().ok());
    EXPECT_EQ((*d)->stats().snapshots, 1u);
    Ops(*ledger, **d, 300, 400);
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_FALSE(rep.snapshot_path.empty()) << rep.Summary();
  EXPECT_EQ(rep.snapshot_sections, Ledger::ShardCount() + 1);   // the shards and the catalog
  EXPECT_EQ(rep.records_replayed, 100u) << rep.Summary();   // one charge record per later op
  EXPECT_EQ(rep.records_skipped, 0u);
  EXPECT_NE(rep.Summary().find("from snapshot"), std::string::npos);
  EXPECT_TRUE(ledger->CheckInvariants().ok());
  // Acknowledged idempotent charges are still remembered.
  ChargeResult retry = ledger->Charge(Text("ws-5", "u2", 1 + 5 % 5, "id-5"));
  EXPECT_TRUE(retry.replayed);
}

TEST_F(SnapshotRecoveryTest, CleanShutdownSnapshotMeansNothingToReplay) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    auto d = Durability::Open(*ledger, Opts());
    ASSERT_TRUE(d.ok());
    Ops(*ledger, **d, 0, 200);
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(rep.records_replayed, 0u) << rep.Summary();
}

TEST_F(SnapshotRecoveryTest, RetentionKeepsTwoAndDeletesCoveredSegments) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    for (int round = 0; round < 4; ++round) {
      Ops(*ledger, **d, round * 150, (round + 1) * 150);
      ASSERT_TRUE((*d)->Snapshot().ok());
    }
    EXPECT_EQ(Files("snap-").size(), 2u);
    EXPECT_GT((*d)->stats().segments_deleted, 0u);
    // Every remaining segment is needed by the oldest kept snapshot or later.
    const std::string first_seg = fs::path(Files("wal-").front()).filename().string();
    const std::string oldest_snap = fs::path(Files("snap-").front()).filename().string();
    EXPECT_LE(std::stoull(first_seg.substr(4, 20)), std::stoull(oldest_snap.substr(5, 20)) + 1);
    Ops(*ledger, **d, 600, 650);
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(rep.records_replayed, 50u) << rep.Summary();
}

TEST_F(SnapshotRecoveryTest, CorruptNewestSnapshotFallsBackToTheOlderOne) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    Ops(*ledger, **d, 0, 200);
    ASSERT_TRUE((*d)->Snapshot().ok());
    Ops(*ledger, **d, 200, 300);
    ASSERT_TRUE((*d)->Snapshot().ok());
    Ops(*ledger, **d, 300, 350);
    digest = ledger->StateDigest();
  }
  const auto snaps = Files("snap-");
  ASSERT_EQ(snaps.size(), 2u);
  genledger::testing::FlipByte(snaps.back(), 200);
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(rep.snapshot_path, snaps.front());
  ASSERT_EQ(rep.snapshots_rejected.size(), 1u);
  EXPECT_NE(rep.snapshots_rejected[0].find("CRC"), std::string::npos) << rep.snapshots_rejected[0];
  EXPECT_EQ(rep.records_replayed, 150u) << rep.Summary();
}

// Candidates are tried newest first until one verifies, whatever kind of damage the newer ones
// have (a section's CRC, a file cut short): both are rejected, in that order, and the state is
// the oldest snapshot plus every WAL record after it.
TEST_F(SnapshotRecoveryTest, TwoDamagedSnapshotsFallBackToTheThirdNewest) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;
    o.snapshots_kept = 3;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    Ops(*ledger, **d, 0, 200);
    ASSERT_TRUE((*d)->Snapshot().ok());
    Ops(*ledger, **d, 200, 300);
    ASSERT_TRUE((*d)->Snapshot().ok());
    Ops(*ledger, **d, 300, 350);
    ASSERT_TRUE((*d)->Snapshot().ok());
    Ops(*ledger, **d, 350, 380);
    digest = ledger->StateDigest();
  }
  const auto snaps = Files("snap-");   // oldest first
  ASSERT_EQ(snaps.size(), 3u);
  genledger::testing::FlipByte(snaps[2], 200);   // inside the first section
  fs::resize_file(snaps[1], 100);
  auto ledger = NewLedger();
  RecoveryReport rep;
  DurabilityOptions o = Opts();
  o.snapshots_kept = 3;
  auto d = Durability::Open(*ledger, o, &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(rep.snapshot_path, snaps[0]);
  ASSERT_EQ(rep.snapshots_rejected.size(), 2u) << rep.Summary();
  EXPECT_EQ(rep.snapshots_rejected[0].rfind(snaps[2] + ": corruption: ", 0), 0u) << rep.snapshots_rejected[0];
  EXPECT_NE(rep.snapshots_rejected[0].find("CRC"), std::string::npos) << rep.snapshots_rejected[0];
  EXPECT_EQ(rep.snapshots_rejected[1].rfind(snaps[1] + ": corruption: ", 0), 0u) << rep.snapshots_rejected[1];
  EXPECT_EQ(rep.records_replayed, 180u) << rep.Summary();   // every record after the oldest
  EXPECT_TRUE(fs::exists(snaps[1]) && fs::exists(snaps[2]));   // left for a human
}

TEST_F(SnapshotRecoveryTest, SnapshotsWhileThreadsChargeRecoverTheFinalState) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.segment_bytes = 64 << 10;
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    for (int w = 0; w < 500; ++w) ASSERT_TRUE(ledger->UpsertWorkspace("w" + std::to_string(w), kUnlimited, Region::kGlobal).ok());
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (uint64_t i = 0; !stop.load(); ++i) {
          const std::string id = "t" + std::to_string(t) + "-" + std::to_string(i);
          (void)ledger->Charge(Text("w" + std::to_string((i * 13 + t) % 500), "u" + std::to_string(i % 4), 1,
                                    i % 2 == 0 ? std::string_view(id) : ""));
          if (i % 64 == 0) (void)(*d)->WaitDurable((*d)->Ticket());
        }
      });
    }
    for (int s = 0; s < 4; ++s) {
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
      ASSERT_TRUE((*d)->Snapshot().ok());
    }
    stop = true;
    for (auto& th : threads) th.join();
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    digest = ledger->StateDigest();
    // Kill-like end: no shutdown snapshot (interval 0), so recovery uses the last one + WAL.
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest) << rep.Summary();
  EXPECT_FALSE(rep.snapshot_path.empty());
  EXPECT_TRUE(ledger->CheckInvariants().ok());
}

TEST_F(SnapshotRecoveryTest, FailedSnapshotWriteLeavesSnapshotsAndWalUntouched) {
  wal::FaultInjectingFileSystem faulty;
  uint64_t digest = 0;
  std::vector<std::string> snaps_before, wal_before;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;
    o.fs = &faulty;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    for (int round = 0; round < 2; ++round) {
      Ops(*ledger, **d, round * 150, (round + 1) * 150);
      ASSERT_TRUE((*d)->Snapshot().ok());
    }
    Ops(*ledger, **d, 300, 450);
    snaps_before = Files("snap-");
    wal_before = Files("wal-");
    faulty.FailRenameAt(faulty.renames());   // the snapshot's rename (the WAL does not rename)
    Status st = (*d)->Snapshot();
    EXPECT_FALSE(st.ok());
    EXPECT_EQ(st.code(), Code::kIOError) << st.ToString();
    EXPECT_EQ((*d)->stats().snapshot_failures, 1u);
    EXPECT_EQ(Files("snap-"), snaps_before);
    EXPECT_EQ(Files("wal-"), wal_before);
    EXPECT_TRUE((*d)->status().ok());   // the WAL goes on
    Ops(*ledger, **d, 450, 460);
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(rep.snapshot_path, snaps_before.back());
}

// ---- Single-pass load: a snapshot is verified while it is loaded ----------------------------------
//
// Recovery no longer verifies a snapshot before loading it, so a damaged newest snapshot may be
// found damaged only after part (or all) of it went into the ledger. These tests damage it where
// that happens and check the fallback is exactly the old "verify, then load the newest valid".

// Snapshot A after 200 ops, snapshot B after 300, then 50 more ops; returns the final digest.
uint64_t BuildTwoSnapshots(SnapshotRecoveryTest& t, const std::string& dir) {
  auto ledger = std::make_unique<Ledger>(Catalog::Default());
  DurabilityOptions o;
  o.data_dir = dir;
  o.segment_bytes = 4096;
  o.snapshot_interval_s = 0;
  auto d = Durability::Open(*ledger, o);
  EXPECT_TRUE(d.ok()) << d.status().ToString();
  if (!d.ok()) return 0;
  t.RunOps(*ledger, **d, 0, 200);
  EXPECT_TRUE((*d)->Snapshot().ok());
  t.RunOps(*ledger, **d, 200, 300);
  EXPECT_TRUE((*d)->Snapshot().ok());
  t.RunOps(*ledger, **d, 300, 350);
  return ledger->StateDigest();
}

std::vector<std::string> SnapshotsIn(const std::string& dir) {
  std::vector<std::string> v;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".snap") v.push_back(e.path());
  }
  std::sort(v.begin(), v.end());
  return v;
}

// The bit these tests were written against (a section count stays plausible, etc.).
void FlipByte(const std::string& path, uint64_t offset) { genledger::testing::FlipByte(path, std::streamoff(offset), 0x01); }

struct Damage {
  const char* name;
  std::function<void(const std::string& path)> apply;
  const char* verdict;   // expected in the rejection
};

std::vector<Damage> LateDamages() {
  using namespace snapshot;
  auto size = [](const std::string& p) { return uint64_t(fs::file_size(p)); };
  return {
      {"last section's payload",
       [=](const std::string& p) { FlipByte(p, size(p) - kFooterSize - kSectionTrailerSize - 1); },
       "bad section CRC (section 256,"},
      {"last section's CRC", [=](const std::string& p) { FlipByte(p, size(p) - kFooterSize - 1); },
       "bad section CRC (section 256,"},
      {"whole-file CRC", [=](const std::string& p) { FlipByte(p, size(p) - kFooterSize + kFooterFileCrcOffset); },
       "bad file CRC"},
      {"footer section count",
       [=](const std::string& p) { FlipByte(p, size(p) - kFooterSize + kFooterSectionCountOffset); },
       "footer section count mismatch"},
      {"footer cut off", [=](const std::string& p) { fs::resize_file(p, size(p) - kFooterSize); }, "no footer"},
      {"a byte after the footer", [](const std::string& p) { std::ofstream(p, std::ios::binary | std::ios::app) << 'x'; },
       "trailing bytes after footer"},
  };
}

Result<uint64_t> RecoverDigest(const std::string& dir, RecoveryReport* rep) {
  Ledger ledger(Catalog::Default());
  DurabilityOptions o;
  o.data_dir = dir;
  o.snapshot_interval_s = 0;
  auto d = Durability::Open(ledger, o, rep);
  if (!d.ok()) return d.status();
  if (Status st = ledger.CheckInvariants(); !st.ok()) return st;
  return ledger.StateDigest();
}

TEST_F(SnapshotRecoveryTest, NewestSnapshotDamagedAfterItWasLoadedFallsBackToTheOlderOne) {
  for (const Damage& damage : LateDamages()) {
    SCOPED_TRACE(damage.name);
    genledger::testing::TempDir tmp, copy;
    const uint64_t digest = BuildTwoSnapshots(*this, tmp.path());
    const auto snaps = SnapshotsIn(tmp.path());
    ASSERT_EQ(snaps.size(), 2u);
    damage.apply(snaps.back());
    // The same directory without the damaged file: what the ledger must equal.
    fs::copy(tmp.path(), copy.path(), fs::copy_options::recursive);
    fs::remove(wal::JoinPath(copy.path(), fs::path(snaps.back()).filename().string()));

    RecoveryReport rep;
    auto got = RecoverDigest(tmp.path(), &rep);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, digest) << rep.Summary();
    EXPECT_EQ(rep.snapshot_path, snaps.front());
    EXPECT_EQ(rep.snapshot_sections, Ledger::ShardCount() + 1);   // the shards and the catalog
    ASSERT_EQ(rep.snapshots_rejected.size(), 1u) << rep.Summary();
    EXPECT_EQ(rep.snapshots_rejected[0].rfind(snaps.back() + ": corruption: ", 0), 0u) << rep.snapshots_rejected[0];
    EXPECT_NE(rep.snapshots_rejected[0].find(damage.verdict), std::string::npos) << rep.snapshots_rejected[0];
    EXPECT_EQ(rep.records_replayed, 150u) << rep.Summary();   // from the older snapshot on
    EXPECT_TRUE(fs::exists(snaps.back()));                    // rejected files are left for a human

    RecoveryReport without;
    auto rebuilt = RecoverDigest(copy.path(), &without);
    ASSERT_TRUE(rebuilt.ok()) << rebuilt.status().ToString();
    EXPECT_EQ(*got, *rebuilt);
    EXPECT_TRUE(without.snapshots_rejected.empty());
    EXPECT_EQ(without.records_replayed, rep.records_replayed);
  }
}

TEST_F(SnapshotRecoveryTest, OnlySnapshotDamagedAfterItWasLoadedMeansTheWholeWalFromSeqOne) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    Ops(*ledger, **d, 0, 200);
    ASSERT_TRUE((*d)->Snapshot().ok());   // one snapshot: retention keeps every segment
    Ops(*ledger, **d, 200, 250);
    digest = ledger->StateDigest();
  }
  const auto snaps = Files("snap-");
  ASSERT_EQ(snaps.size(), 1u);
  FlipByte(snaps[0], fs::file_size(snaps[0]) - snapshot::kFooterSize + snapshot::kFooterFileCrcOffset);
  RecoveryReport rep;
  auto got = RecoverDigest(dir_, &rep);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // Nothing of the fully loaded, then rejected, snapshot may remain under the replayed WAL.
  EXPECT_EQ(*got, digest) << rep.Summary();
  EXPECT_TRUE(rep.snapshot_path.empty());
  ASSERT_EQ(rep.snapshots_rejected.size(), 1u);
  EXPECT_NE(rep.snapshots_rejected[0].find("bad file CRC"), std::string::npos) << rep.snapshots_rejected[0];
  EXPECT_EQ(rep.records_replayed, 40u + 250u) << rep.Summary();   // 40 workspaces, 250 charges
}

TEST_F(SnapshotRecoveryTest, EverySnapshotDamagedAfterTrimmingStopsStartUp) {
  BuildTwoSnapshots(*this, dir_);
  ASSERT_NE(fs::path(Files("wal-").front()).filename().string(), "wal-00000000000000000001.log")
      << "retention should have deleted the first segments";
  for (const std::string& snap : SnapshotsIn(dir_)) {
    FlipByte(snap, fs::file_size(snap) - snapshot::kFooterSize + snapshot::kFooterFileCrcOffset);
  }
  RecoveryReport rep;
  auto got = RecoverDigest(dir_, &rep);
  // Replay must start at seq 1 and those records are gone: a loud error, not a partial ledger.
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kCorruption);
  EXPECT_NE(got.status().ToString().find("are missing"), std::string::npos) << got.status().ToString();
}

// A newer snapshot whose file is intact but whose content this build cannot load stops start-up
// (falling back past it would hide the newest state), as before; the same file damaged anywhere
// is rejected like any damaged file, even though the content error is met first.
TEST_F(SnapshotRecoveryTest, UnloadableContentStopsStartUpUnlessTheFileIsAlsoDamaged) {
  const uint64_t digest = BuildTwoSnapshots(*this, dir_);
  const std::string good_newest = SnapshotsIn(dir_).back();
  struct Case {
    const char* name;
    uint32_t shards;
    Code intact_code;
    const char* intact_message;
  };
  const Case cases[] = {
      {"another shard count", 4, Code::kInvalidArgument, "was written with 4 shards"},
      {"payloads the ledger rejects", Ledger::ShardCount(), Code::kCorruption, "offset "},
  };
  uint64_t covered = 1'000'000;
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto w = snapshot::SnapshotWriter::Open(dir_, ++covered, c.shards);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    for (uint32_t i = 0; i < c.shards; ++i) {
      ASSERT_TRUE((*w)->AddSection(LedgerLog::kShardStateSection, uint16_t(i), 0, "not a shard").ok());
    }
    ASSERT_TRUE((*w)->Finish().ok());
    const std::string bad = (*w)->final_path();

    RecoveryReport rep;
    auto intact = RecoverDigest(dir_, &rep);
    ASSERT_FALSE(intact.ok());
    EXPECT_EQ(intact.status().code(), c.intact_code) << intact.status().ToString();
    EXPECT_NE(intact.status().ToString().find(bad), std::string::npos) << intact.status().ToString();
    EXPECT_NE(intact.status().ToString().find(c.intact_message), std::string::npos) << intact.status().ToString();

    FlipByte(bad, fs::file_size(bad) - snapshot::kFooterSize + snapshot::kFooterFileCrcOffset);
    auto damaged = RecoverDigest(dir_, &rep);
    ASSERT_TRUE(damaged.ok()) << damaged.status().ToString();
    EXPECT_EQ(*damaged, digest);
    EXPECT_EQ(rep.snapshot_path, good_newest);
    ASSERT_EQ(rep.snapshots_rejected.size(), 1u) << rep.Summary();
    EXPECT_NE(rep.snapshots_rejected[0].find(bad + ": corruption: "), std::string::npos) << rep.snapshots_rejected[0];
    EXPECT_NE(rep.snapshots_rejected[0].find("bad file CRC"), std::string::npos) << rep.snapshots_rejected[0];
    fs::remove(bad);
  }
}

}  // namespace
}  // namespace genledger
