// Group commit and recovery, in process (the kill -9 tests are in crash_test.cc).
#include "corrupt_file.h"
#include "genledger/durability.h"

#include <gtest/gtest.h>

#include "temp_dir.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "wal/file.h"
#include "wal/power_cut_fs.h"
#include "wal/segment_reader.h"

namespace genledger {
namespace {

namespace fs = std::filesystem;

class DurabilityTest : public ::testing::Test {
 protected:

  DurabilityOptions Opts(SyncMode mode = SyncMode::kGroup) {
    DurabilityOptions o;
    o.data_dir = dir_;
    o.sync = mode;
    // These tests are about WAL replay; a shutdown snapshot would leave nothing to replay.
    // Snapshots have their own tests (snapshot_recovery_test).
    o.snapshot_interval_s = 0;
    return o;
  }
  // A fresh ledger recovered from the directory.
  std::unique_ptr<Ledger> NewLedger() { return std::make_unique<Ledger>(Catalog::Default()); }

  ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t n, std::string_view id = {}) {
    ChargeRequest r{ws, user, Catalog::Default()->Find("gpt-4o"), {}, id};
    r.usage.quantity = n;
    return r;
  }

  std::vector<std::string> Segments() {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_)) {
      const std::string name = e.path().filename().string();
      if (name.rfind("wal-", 0) == 0 && name.size() > 4 && name.substr(name.size() - 4) == ".log") v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  }

  genledger::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(DurabilityTest, AcknowledgedStateSurvivesARestart) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    RecoveryReport rep;
    auto d = Durability::Open(*ledger, Opts(), &rep);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(rep.records_replayed, 0u);
    ASSERT_TRUE(ledger->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("acme", "alice", 3, "k1")).status.ok());
    ReserveResult h = ledger->Reserve(ReserveRequest{Text("acme", "bob", 5), 0});
    ASSERT_TRUE(h.status.ok());
    const uint64_t ticket = (*d)->Ticket();
    ASSERT_TRUE((*d)->WaitDurable(ticket).ok());
    EXPECT_TRUE((*d)->IsDurable(ticket));
    EXPECT_GE((*d)->stats().syncs, 1u);
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(rep.records_replayed, 3u);
  EXPECT_FALSE(rep.torn_tail);
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_TRUE(ledger->Charge(Text("acme", "alice", 3, "k1")).replayed) << "idempotency survives restarts";
}

TEST_F(DurabilityTest, ASecondProcessCannotOpenTheSameDirectory) {
  auto first_ledger = NewLedger();
  auto first = Durability::Open(*first_ledger, Opts());
  ASSERT_TRUE(first.ok());
  auto second_ledger = NewLedger();
  auto second = Durability::Open(*second_ledger, Opts());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), Code::kUnavailable);
  EXPECT_NE(second.status().message().find("in use"), std::string_view::npos) << second.status().ToString();
  first->reset();   // released with the Durability
  auto third_ledger = NewLedger();
  EXPECT_TRUE(Durability::Open(*third_ledger, Opts()).ok());
}

TEST_F(DurabilityTest, ManyRestartsAccumulate) {
  uint64_t digest = NewLedger()->StateDigest();
  for (int round = 0; round < 5; ++round) {
    auto ledger = NewLedger();
    auto d = Durability::Open(*ledger, Opts());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(ledger->StateDigest(), digest) << "round " << round;
    if (round == 0) {
      ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    }
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ledger->Charge(Text("w", "u" + std::to_string(i % 3), 1)).status.ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    digest = ledger->StateDigest();
  }
  auto ledger = NewLedger();
  ASSERT_TRUE(Durability::Open(*ledger, Opts()).ok());
  EXPECT_EQ(ledger->GetWorkspace("w")->used, 500u);
}

TEST_F(DurabilityTest, TornTailIsCutAndTheRestRecovers) {
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    auto d = Durability::Open(*ledger, Opts());
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 2)).status.ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    digest = ledger->StateDigest();
  }
  // A crash in the middle of the next write: half a frame at the end of the newest segment.
  const std::string newest = Segments().back();
  {
    std::ofstream f(newest, std::ios::binary | std::ios::app);
    const char partial[] = "\x11\x22\x33\x44\x30\x00\x00\x00\x05";
    f.write(partial, sizeof partial - 1);
  }
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(rep.torn_tail);
  EXPECT_EQ(rep.torn_bytes_dropped, 9u);
  EXPECT_EQ(ledger->StateDigest(), digest);
  // And the log goes on from there.
  ASSERT_TRUE(ledger->Charge(Text("w", "u", 1)).status.ok());
  ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
}

// A crash right after the writer created a segment can leave it cut inside its 24-byte header:
// start-up cuts it like any torn tail, at every length, and the log goes on.
TEST_F(DurabilityTest, NewestSegmentCutInsideItsHeaderIsATornTail) {
  uint64_t digest = 0, next_seq = 0;
  {
    auto ledger = NewLedger();
    RecoveryReport rep;
    auto d = Durability::Open(*ledger, Opts(), &rep);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 2)).status.ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    digest = ledger->StateDigest();
    next_seq = 3;
  }
  const std::string full = Segments().back();
  std::string header;
  {
    std::ifstream in(full, std::ios::binary);
    header.assign(24, '\0');
    in.read(header.data(), 24);
  }
  const std::string next = dir_ + "/" + wal::SegmentFileName(next_seq);
  for (size_t len = 0; len < 24; ++len) {
    SCOPED_TRACE("header cut at " + std::to_string(len));
    {
      std::ofstream f(next, std::ios::binary | std::ios::trunc);
      f.write(header.data(), static_cast<std::streamsize>(len));   // any bytes: none is durable
    }
    auto ledger = NewLedger();
    RecoveryReport rep;
    auto d = Durability::Open(*ledger, Opts(), &rep);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_TRUE(rep.torn_tail);
    EXPECT_EQ(rep.torn_bytes_dropped, len);
    EXPECT_EQ(rep.torn_file, next);
    EXPECT_EQ(rep.next_seq, next_seq);
    EXPECT_EQ(ledger->StateDigest(), digest);
    d->reset();
    // Shut down cleanly (nothing new): the writer replaced the cut segment by a whole one.
    auto again_ledger = NewLedger();
    RecoveryReport again;
    ASSERT_TRUE(Durability::Open(*again_ledger, Opts(), &again).ok());
    EXPECT_FALSE(again.torn_tail);
    EXPECT_EQ(again_ledger->StateDigest(), digest);
  }
}

TEST_F(DurabilityTest, CorruptionInTheMiddleStopsStartUpUnlessSalvaging) {
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.segment_bytes = 4096;   // several segments
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    for (int i = 0; i < 400; ++i) {
      ASSERT_TRUE(ledger->Charge(Text("w", "u", 1)).status.ok());
      if (i % 50 == 0) {
        ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
      }
    }
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
  }
  const auto segs = Segments();
  ASSERT_GE(segs.size(), 3u);
  genledger::testing::FlipByte(segs[1], 100);
  auto ledger = NewLedger();
  auto strict = Durability::Open(*ledger, Opts());
  ASSERT_FALSE(strict.ok());
  EXPECT_EQ(strict.code(), Code::kCorruption);
  EXPECT_NE(strict.status().message().find(fs::path(segs[1]).filename().string()), std::string_view::npos)
      << strict.status().ToString();

  auto salvaged_ledger = NewLedger();
  DurabilityOptions o = Opts();
  o.salvage = true;
  RecoveryReport rep;
  auto salvaged = Durability::Open(*salvaged_ledger, o, &rep);
  ASSERT_TRUE(salvaged.ok()) << salvaged.status().ToString();
  EXPECT_FALSE(rep.salvage_problem.empty());
  const uint64_t used = salvaged_ledger->GetWorkspace("w")->used;
  EXPECT_GT(used, 0u);
  EXPECT_LT(used, 400u);
  EXPECT_TRUE(salvaged_ledger->CheckInvariants().ok());
}

TEST_F(DurabilityTest, AFailedSyncStopsAcknowledgementsAndKeepsWhatWasAcknowledged) {
  wal::FaultInjectingFileSystem faulty;
  uint64_t acknowledged_used = 0;
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.fs = &faulty;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 5)).status.ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    acknowledged_used = 5;
    faulty.FailSyncAt(faulty.syncs());   // the next fdatasync fails
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 7)).status.ok());
    Status st = (*d)->WaitDurable((*d)->Ticket());
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_EQ((*d)->status().code(), Code::kUnavailable);
    // Sticky: later mutations are never acknowledged either.
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 1)).status.ok());
    EXPECT_EQ((*d)->WaitDurable((*d)->Ticket()).code(), Code::kUnavailable);
  }
  auto ledger = NewLedger();
  auto d = Durability::Open(*ledger, Opts());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_GE(ledger->GetWorkspace("w")->used, acknowledged_used) << "nothing acknowledged is lost";
}

// A snapshot contains every record applied before it copied each shard. It must not become
// durable before those records are: with the WAL's fdatasync held on a latch, a snapshot started
// (its file created), then the sync failing, the snapshot is abandoned (a power cut would
// otherwise keep it and lose the WAL records).
TEST_F(DurabilityTest, ASnapshotWaitsForItsRecordsAndIsAbandonedIfTheirSyncFails) {
  wal::PowerCutFileSystem pfs;
  std::mutex mu;
  std::condition_variable cv;
  bool armed = false, in_sync = false, snapshot_started = false, release = false;
  pfs.SetCallHook([&](std::string_view call, const std::string& path) -> Status {
    std::unique_lock lock(mu);
    if (call == "create" && path.find(".snap") != std::string::npos) {
      snapshot_started = true;   // past its "has the log failed?" check
      cv.notify_all();
      return Status();
    }
    if (call != "sync" || path.find(".log") == std::string::npos) return Status();
    if (!armed) return Status();
    in_sync = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
    return Status(Code::kIOError, "injected fdatasync failure");
  });
  DurabilityOptions o = Opts();
  o.fs = &pfs;
  auto ledger = NewLedger();
  auto d = Durability::Open(*ledger, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
  {
    std::lock_guard lock(mu);
    armed = true;
  }
  ASSERT_TRUE(ledger->Charge(Text("w", "u", 3)).status.ok());   // written, its sync held
  (*d)->RequestDurable((*d)->Ticket());
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return in_sync; });
  }
  Status snap;
  std::thread snapshotter([&] { snap = (*d)->Snapshot(); });
  {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return snapshot_started; });
    release = true;   // the sync fails: the charge never becomes durable
  }
  cv.notify_all();
  snapshotter.join();
  EXPECT_EQ(snap.code(), Code::kUnavailable) << snap.ToString();
  for (const auto& e : fs::directory_iterator(dir_)) {
    EXPECT_NE(e.path().extension(), ".snap")
        << "a snapshot holding a record that never became durable was written: " << e.path();
  }
  EXPECT_EQ((*d)->stats().snapshots, 0u);
  EXPECT_EQ((*d)->stats().snapshot_failures, 1u);
}

// In none mode nothing is fdatasynced until shutdown, but a snapshot forces the WAL's sync of
// what it contains, so the snapshot is never the only copy of a record: after a power cut right
// after the snapshot, with that snapshot then found damaged, the WAL alone still has the charge.
TEST_F(DurabilityTest, ASnapshotInNoneModeForcesTheSyncOfWhatItContains) {
  wal::PowerCutFileSystem pfs;
  DurabilityOptions o = Opts(SyncMode::kNone);
  o.fs = &pfs;
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_TRUE(ledger->UpsertWorkspace("w", 100, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 4)).status.ok());
    ASSERT_TRUE((*d)->Snapshot().ok());
    digest = ledger->StateDigest();
    pfs.CutPower();
  }
  wal::PowerCutOptions cut;
  cut.tear_unsynced = false;
  cut.keep_some_dir_ops = false;
  ASSERT_TRUE(pfs.ApplyPowerCut(1, cut).ok());
  pfs.RestorePower();
  std::string snap;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".snap") snap = e.path();
  }
  ASSERT_FALSE(snap.empty()) << "the snapshot was made durable before the cut";
  genledger::testing::FlipByte(snap, static_cast<std::streamoff>(fs::file_size(snap) / 2));
  auto ledger = NewLedger();
  RecoveryReport rep;
  auto d = Durability::Open(*ledger, Opts(SyncMode::kNone), &rep);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(rep.snapshots_rejected.size(), 1u);
  EXPECT_TRUE(rep.snapshot_path.empty());
  EXPECT_EQ(ledger->StateDigest(), digest) << "the WAL lost a record the snapshot had";
}

// An exception thrown on the writer thread (here by the file layer) must not terminate the
// process: the log fails for good, as after a failed fdatasync, and nothing acknowledged is lost.
TEST_F(DurabilityTest, AnExceptionOnTheWriterThreadFailsTheLogNotTheProcess) {
  wal::PowerCutFileSystem pfs;
  std::atomic<bool> armed{false};
  pfs.SetCallHook([&](std::string_view call, const std::string&) -> Status {
    if (call == "sync" && armed.exchange(false)) throw std::runtime_error("simulated allocation failure");
    return Status();
  });
  {
    auto ledger = NewLedger();
    DurabilityOptions o = Opts();
    o.fs = &pfs;
    auto d = Durability::Open(*ledger, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger->UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 5)).status.ok());
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    armed = true;
    ASSERT_TRUE(ledger->Charge(Text("w", "u", 7)).status.ok());
    Status st = (*d)->WaitDurable((*d)->Ticket());
    EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
    EXPECT_NE(st.ToString().find("simulated allocation failure"), std::string::npos) << st.ToString();
    // Sticky, and the writer still drains the lanes.
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(ledger->Charge(Text("w", "u", 1)).status.ok());
    EXPECT_EQ((*d)->WaitDurable((*d)->Ticket()).code(), Code::kUnavailable);
  }
  auto ledger = NewLedger();
  auto d = Durability::Open(*ledger, Opts());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_GE(ledger->GetWorkspace("w")->used, 5u) << "nothing acknowledged is lost";
}

TEST_F(DurabilityTest, ConcurrentWritersEachWaitForTheirOwnRecords) {
  std::atomic<uint64_t> acknowledged{0};
  uint64_t digest = 0;
  {
    auto ledger = NewLedger();
    auto d = Durability::Open(*ledger, Opts());
    ASSERT_TRUE(d.ok());
    for (int w = 0; w < 16; ++w) ASSERT_TRUE(ledger->UpsertWorkspace("w" + std::to_string(w), kUnlimited, Region::kGlobal).ok());
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        std::mt19937 rng(t);
        for (int i = 0; i < 2000; ++i) {
          ChargeResult r = ledger->Charge(Text("w" + std::to_string(rng() % 16), "u", 1));
          ASSERT_TRUE(r.status.ok());
          if (i % 8 == 7) {   // acknowledge in small batches, as a connection does
            ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
            acknowledged += 8;
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    digest = ledger->StateDigest();
    const auto stats = (*d)->stats();
    EXPECT_EQ(stats.records, 16u + 8000u);
    EXPECT_LT(stats.syncs, 8000u) << "group commit batches many records per fdatasync";
  }
  EXPECT_EQ(acknowledged.load(), 8000u);
  auto ledger = NewLedger();
  ASSERT_TRUE(Durability::Open(*ledger, Opts()).ok());
  EXPECT_EQ(ledger->StateDigest(), digest);
  EXPECT_EQ(ledger->Totals().used, 8000u);
}

TEST_F(DurabilityTest, PeriodicAndNoneModesAcknowledgeAfterWrite) {
  for (SyncMode mode : {SyncMode::kPeriodic, SyncMode::kNone}) {
    fs::remove_all(dir_);
    uint64_t digest = 0;
    {
      auto ledger = NewLedger();
      auto d = Durability::Open(*ledger, Opts(mode));
      ASSERT_TRUE(d.ok());
      ASSERT_TRUE(ledger->UpsertWorkspace("w", 10, Region::kGlobal).ok());
      ASSERT_TRUE(ledger->Charge(Text("w", "u", 4)).status.ok());
      ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
      digest = ledger->StateDigest();
    }   // a clean shutdown syncs in every mode
    auto ledger = NewLedger();
    ASSERT_TRUE(Durability::Open(*ledger, Opts(mode)).ok());
    EXPECT_EQ(ledger->StateDigest(), digest) << SyncModeName(mode);
  }
  EXPECT_EQ(ParseSyncMode("group").value(), SyncMode::kGroup);
  EXPECT_EQ(ParseSyncMode("fast").code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace genledger
