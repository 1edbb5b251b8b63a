// Durability with snapshots, end to end: recovery from a snapshot plus the WAL after it,
// retention and WAL deletion, fallback to an older snapshot, snapshots under load, and a failed
// snapshot write (docs/durability.md, "Snapshots").
#include <gtest/gtest.h>

#include "temp_dir.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "wal/file.h"

namespace genledger {
namespace {

namespace fs = std::filesystem;

class SnapshotRecoveryTest : public ::testing::Test {
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
      if (i < 40) ASSERT_TRUE(l.UpsertWorkspace(ws, kUnlimited, Region::kGlobal).ok());
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
  EXPECT_EQ(rep.snapshot_sections, Ledger::ShardCount());
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
  {
    std::fstream f(snaps.back(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekp(200);
    f.put('\x5a');
  }
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

}  // namespace
}  // namespace genledger
