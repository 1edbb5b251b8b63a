#include "corrupt_file.h"
#include "inspect/inspect.h"

#include <gtest/gtest.h>

#include "temp_dir.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include <boost/json/serialize.hpp>

#include "genledger/clock.h"
#include "genledger/durability.h"

namespace genledger::inspect {
namespace {

namespace fs = std::filesystem;

class InspectTest : public ::testing::Test {
 protected:

  // Writes a small history with several segments; returns the ledger's totals.
  LedgerTotals Populate() {
    Ledger ledger(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    o.segment_bytes = 2048;
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(ledger, o);
    EXPECT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_TRUE(ledger.UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
    EXPECT_TRUE(ledger.UpsertWorkspace("free", kUnlimited, Region::kCn).ok());
    const CatalogItem* text = ledger.CurrentCatalog()->Find("gpt-4o");
    for (int i = 0; i < 120; ++i) {
      ChargeRequest r{i % 2 ? "acme" : "free", i % 3 ? "alice" : "bob", text, {}, {}};
      r.usage.quantity = 1 + i % 4;
      EXPECT_TRUE(ledger.Charge(r).status.ok());
    }
    ChargeRequest hold{"acme", "carol", text, {}, {}};
    hold.usage.quantity = 5;
    EXPECT_TRUE(ledger.Reserve(ReserveRequest{hold, 0}).status.ok());
    EXPECT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
    LedgerTotals t = ledger.Totals();
    d->reset();
    // Shut-down snapshots would make this test about snapshots; keep only the WAL here.
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".snap") fs::remove(e.path());
    }
    return t;
  }

  std::vector<std::string> Segments() {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.path().extension() == ".log") v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  }

  std::map<std::string, uintmax_t> Sizes() {
    std::map<std::string, uintmax_t> m;
    for (const auto& e : fs::directory_iterator(dir_)) m[e.path()] = fs::file_size(e.path());
    return m;
  }

  genledger::testing::TempDir tmp_;
  const std::string dir_ = tmp_.path();
};

TEST_F(InspectTest, CleanDirectory) {
  const LedgerTotals t = Populate();
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("clean").as_bool());
  EXPECT_GE(r->at("wal_segments").as_array().size(), 3u);
  for (const auto& s : r->at("wal_segments").as_array()) EXPECT_EQ(s.at("verdict").as_string(), "ok");
  const auto& types = r->at("records_by_type").as_object();
  EXPECT_EQ(types.at("charge_model").as_uint64(), 120u);   // type 21: usage history is on
  EXPECT_EQ(types.at("create_workspace").as_uint64(), 2u);
  EXPECT_EQ(types.at("reserve_priced").as_uint64(), 1u);
  const auto& totals = r->at("recovered_totals").as_object();
  EXPECT_EQ(totals.at("workspaces").as_uint64(), t.workspaces);
  EXPECT_EQ(totals.at("users").as_uint64(), t.users);
  EXPECT_EQ(totals.at("used").as_uint64(), t.used);
  EXPECT_EQ(totals.at("reserved").as_uint64(), 5u);
  EXPECT_EQ(totals.at("limits").as_uint64(), 1000u);
  EXPECT_EQ(totals.at("unlimited_workspaces").as_uint64(), 1u);
}

TEST_F(InspectTest, TornTailIsReportedButCleanAndNothingIsModified) {
  Populate();
  {
    std::ofstream f(Segments().back(), std::ios::binary | std::ios::app);
    f.write("\x01\x02\x03\x04\x05", 5);
  }
  const auto before = Sizes();
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->at("clean").as_bool());
  EXPECT_EQ(r->at("wal_segments").as_array().back().at("verdict").as_string(), "torn tail");
  bool noted = false;
  for (const auto& n : r->at("notes").as_array()) noted |= std::string(n.as_string()).find("torn tail") != std::string::npos;
  EXPECT_TRUE(noted);
  EXPECT_EQ(Sizes(), before) << "inspect must never modify the directory";
}

// A crash right after a segment was created can leave the newest one cut inside its header:
// recovery cuts it like a torn tail, and inspect says so.
TEST_F(InspectTest, NewestSegmentCutInsideItsHeaderIsATornTail) {
  Populate();
  // 123 records were written (2 workspaces, 120 charges, 1 hold): the next segment starts at 124.
  fs::copy_file(Segments().front(), dir_ + "/wal-00000000000000000124.log");   // any 10 bytes
  fs::resize_file(dir_ + "/wal-00000000000000000124.log", 10);
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->at("wal_segments").as_array().back().at("verdict").as_string(), "torn tail")
      << boost::json::serialize(*r);
  EXPECT_TRUE(r->at("clean").as_bool()) << boost::json::serialize(*r);
}

// A bad header in a segment that is not the newest: corruption, reported (not an exception).
TEST_F(InspectTest, BadHeaderOfAnOlderSegmentIsCorruption) {
  Populate();
  const auto segs = Segments();
  {
    std::fstream f(segs[0], std::ios::binary | std::ios::in | std::ios::out);
    f.put('X');   // the magic
  }
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_FALSE(r->at("clean").as_bool());
  EXPECT_EQ(r->at("wal_segments").as_array().front().at("verdict").as_string(), "corrupt");
}

TEST_F(InspectTest, CorruptionIsNotClean) {
  Populate();
  const auto segs = Segments();
  genledger::testing::FlipByte(segs[0], 60);
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->at("clean").as_bool());
  EXPECT_EQ(r->at("wal_segments").as_array().front().at("verdict").as_string(), "corrupt");
  auto w = InspectWal(segs[0], 0, 0);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->at("clean").as_bool());
  EXPECT_EQ(w->at("end").as_string(), "corrupt");
}

TEST_F(InspectTest, WalFileFromAndLimit) {
  Populate();
  const std::string first = Segments().front();
  auto all = InspectWal(first, 0, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->at("clean").as_bool());
  EXPECT_EQ(all->at("end").as_string(), "clean");
  const auto& records = all->at("records").as_array();
  ASSERT_GT(records.size(), 5u);
  EXPECT_EQ(records.front().at("seq").as_uint64(), 1u);
  EXPECT_EQ(records.front().at("record").at("type").as_string(), "create_workspace");
  auto some = InspectWal(first, 3, 2);
  ASSERT_TRUE(some.ok());
  ASSERT_EQ(some->at("records").as_array().size(), 2u);
  EXPECT_EQ(some->at("records").as_array()[0].at("seq").as_uint64(), 3u);
  EXPECT_EQ(some->at("records").as_array()[1].at("seq").as_uint64(), 4u);
  EXPECT_FALSE(InspectWal(dir_ + "/missing.log", 0, 0).ok());
}

// The subscription records (WAL types 15-19) are counted by name, decoded field by field, and
// recovered into the same totals.
TEST_F(InspectTest, SubscriptionRecordsAreDecoded) {
  ManualClock clock(1'767'225'600'000);
  LedgerOptions lo;
  lo.clock = &clock;
  Ledger ledger(Catalog::Default(), lo);
  DurabilityOptions o;
  o.data_dir = dir_;
  o.snapshot_interval_s = 0;
  auto d = Durability::Open(ledger, o);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  WorkspaceUpdate plan;
  plan.limit = 100;
  plan.interval = Interval::kMinute;
  plan.anchor_ms = clock.NowMs();
  plan.rollover = RolloverSpec{30, 2};
  ASSERT_TRUE(ledger.UpdateWorkspace("sub", plan).ok());
  auto promo = ledger.AddGrant("sub", GrantRequest{.amount = 20, .priority = 50, .expires_at_ms = clock.NowMs() + 30'000});
  ASSERT_TRUE(promo.ok());
  ChargeRequest c{"sub", "erin", ledger.CurrentCatalog()->Find("gpt-4o"), {}, {}};
  c.usage.quantity = 30;   // 20 from the promo, 10 from the plan
  const ChargeResult drawn = ledger.Charge(c);
  ASSERT_TRUE(drawn.status.ok());
  clock.Advance(31'000);   // the promo expires: its part is refunded as a refund grant
  ASSERT_TRUE(ledger.Refund(drawn.charge_id).status.ok());
  auto pack = ledger.AddGrant("sub", GrantRequest{.amount = 7});
  ASSERT_TRUE(pack.ok());
  ASSERT_TRUE(ledger.VoidGrant("sub", pack->grant).ok());
  clock.Advance(60'000);   // a boundary, rollover grants
  EXPECT_EQ(ledger.ExpireReservations(), 0u);
  ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
  const LedgerTotals t = ledger.Totals();
  d->reset();
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".snap") fs::remove(e.path());
  }

  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("clean").as_bool());
  const auto& types = r->at("records_by_type").as_object();
  for (const char* name : {"set_plan", "grant", "grant_end", "refund_sources", "rollover"}) {
    EXPECT_TRUE(types.contains(name)) << name << " in " << boost::json::serialize(types);
  }
  EXPECT_EQ(types.at("grant_end").as_uint64(), 2u);   // the promo's expiry and the void
  EXPECT_EQ(r->at("recovered_totals").at("used").as_uint64(), t.used);

  auto wal = InspectWal(Segments().front(), 0, 0);
  ASSERT_TRUE(wal.ok()) << wal.status().ToString();
  bool saw_sources = false, saw_rollover = false;
  for (const auto& rec : wal->at("records").as_array()) {
    const auto& body = rec.at("record").as_object();
    if (body.at("type").as_string() == "refund_sources") {
      saw_sources = true;
      EXPECT_EQ(body.at("cost").as_uint64(), 30u);
      EXPECT_EQ(body.at("to_plan").as_uint64(), 10u);
      EXPECT_EQ(body.at("to_new_grant").as_uint64(), 20u);
    }
    if (body.at("type").as_string() == "rollover") {
      saw_rollover = true;
      EXPECT_EQ(body.at("boundaries").as_uint64(), 1u);
    }
  }
  EXPECT_TRUE(saw_sources);
  EXPECT_TRUE(saw_rollover);
}

TEST_F(InspectTest, SnapshotWithAWorkspace) {
  {
    Ledger ledger(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    auto d = Durability::Open(ledger, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger.UpsertWorkspace("acme", 100, Region::kGlobal).ok());
    ASSERT_TRUE(ledger.SetUserLimit("acme", "intern", 10).ok());
    ChargeRequest c{"acme", "alice", ledger.CurrentCatalog()->Find("gpt-4o"), {}, {}};
    c.usage.quantity = 7;
    ASSERT_TRUE(ledger.Charge(c).status.ok());
    ASSERT_TRUE((*d)->Snapshot().ok());
  }
  std::string snap;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".snap") snap = e.path();
  }
  ASSERT_FALSE(snap.empty());
  auto r = InspectSnapshot(snap, std::string("acme"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("clean").as_bool());
  const auto& w = r->at("workspace").as_object();
  EXPECT_EQ(w.at("used").as_uint64(), 7u);
  EXPECT_EQ(w.at("limit").as_uint64(), 100u);
  const auto& users = w.at("users").as_array();
  ASSERT_EQ(users.size(), 2u);
  EXPECT_EQ(users[0].at("user").as_string(), "alice");
  EXPECT_EQ(users[1].at("user").as_string(), "intern");
  EXPECT_EQ(users[1].at("limit").as_uint64(), 10u);
  auto missing = InspectSnapshot(snap, std::string("nobody"));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(missing->at("workspace").is_null());
  // A damaged snapshot is not clean.
  genledger::testing::FlipByte(snap, 50);
  auto bad = InspectSnapshot(snap, std::nullopt);
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->at("clean").as_bool());
}

// `snapshot FILE --workspaces`: one row per workspace with id, limit, used, reserved and user
// count, and none for a damaged file.
TEST_F(InspectTest, SnapshotListsEveryWorkspace) {
  {
    Ledger ledger(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    auto d = Durability::Open(ledger, o);
    ASSERT_TRUE(d.ok());
    ASSERT_TRUE(ledger.UpsertWorkspace("acme", 100, Region::kGlobal).ok());
    ASSERT_TRUE(ledger.UpsertWorkspace("free", kUnlimited, Region::kCn).ok());
    ASSERT_TRUE(ledger.UpsertWorkspace("empty", 0, Region::kGlobal).ok());
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(ledger.UpsertWorkspace("ws-" + std::to_string(i), uint64_t(i), Region::kGlobal).ok());
    ASSERT_TRUE(ledger.SetUserLimit("acme", "intern", 10).ok());
    ChargeRequest c{"acme", "alice", ledger.CurrentCatalog()->Find("gpt-4o"), {}, {}};
    c.usage.quantity = 7;
    ASSERT_TRUE(ledger.Charge(c).status.ok());
    ChargeRequest h{"free", "bob", ledger.CurrentCatalog()->Find("gpt-4o"), {}, {}};
    h.usage.quantity = 5;
    ASSERT_TRUE(ledger.Reserve(ReserveRequest{h, 0}).status.ok());
    ASSERT_TRUE((*d)->Snapshot().ok());
  }
  std::string snap;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".snap") snap = e.path();
  }
  ASSERT_FALSE(snap.empty());
  std::map<std::string, boost::json::object> rows;
  size_t calls = 0;
  auto r = InspectSnapshot(snap, std::nullopt, [&](const boost::json::object& row) {
    ++calls;
    rows[std::string(row.at("workspace").as_string())] = row;
  });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("clean").as_bool());
  EXPECT_EQ(calls, 43u);
  ASSERT_EQ(rows.size(), 43u);
  EXPECT_EQ(boost::json::serialize(rows["acme"]), R"({"workspace":"acme","limit":100,"used":7,"reserved":0,"users":2})");
  EXPECT_EQ(boost::json::serialize(rows["free"]), R"({"workspace":"free","limit":null,"used":0,"reserved":5,"users":1})");
  EXPECT_EQ(boost::json::serialize(rows["empty"]), R"({"workspace":"empty","limit":0,"used":0,"reserved":0,"users":0})");
  EXPECT_EQ(rows["ws-39"].at("limit").as_uint64(), 39u);
  genledger::testing::FlipByte(snap, 50);
  calls = 0;
  auto bad = InspectSnapshot(snap, std::nullopt, [&](const boost::json::object&) { ++calls; });
  ASSERT_TRUE(bad.ok());
  EXPECT_FALSE(bad->at("clean").as_bool());
  EXPECT_EQ(calls, 0u);
}

// Inspect recovers through start-up's own single-pass loader: a newest snapshot damaged at its
// very end (after all of it was loaded) is passed over for the older one, and nothing on disk
// changes.
TEST_F(InspectTest, NewestSnapshotDamagedAtItsEndIsSkippedLikeStartUpDoes) {
  LedgerTotals expected;
  {
    Ledger ledger(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = dir_;
    o.snapshot_interval_s = 0;
    auto d = Durability::Open(ledger, o);
    ASSERT_TRUE(d.ok());
    const CatalogItem* text = ledger.CurrentCatalog()->Find("gpt-4o");
    ASSERT_TRUE(ledger.UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 10; ++i) {
        ChargeRequest r{"acme", "alice", text, {}, {}};
        r.usage.quantity = 1;
        ASSERT_TRUE(ledger.Charge(r).status.ok());
      }
      ASSERT_TRUE((*d)->WaitDurable((*d)->Ticket()).ok());
      ASSERT_TRUE((*d)->Snapshot().ok());
    }
    expected = ledger.Totals();
  }
  std::vector<std::string> snaps;
  for (const auto& e : fs::directory_iterator(dir_)) {
    if (e.path().extension() == ".snap") snaps.push_back(e.path());
  }
  std::sort(snaps.begin(), snaps.end());
  ASSERT_EQ(snaps.size(), 2u);
  {
    // The footer's whole-file CRC: 29-byte footer, CRC at its offset 17 (docs/snapshot-format.md).
    const auto at = std::streamoff(fs::file_size(snaps.back()) - 29 + 17);
    std::fstream f(snaps.back(), std::ios::binary | std::ios::in | std::ios::out);
    f.seekg(at);
    const char c = char(f.get());
    f.seekp(at);
    f.put(char(c ^ 0x10));
  }
  const auto before = Sizes();
  auto r = InspectDir(dir_);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->at("clean").as_bool()) << boost::json::serialize(*r);
  EXPECT_EQ(r->at("recovery_snapshot").as_string(), snaps.front());
  EXPECT_EQ(r->at("records_replayed").as_uint64(), 10u);
  EXPECT_EQ(r->at("recovered_totals").at("used").as_uint64(), expected.used);
  bool noted = false;
  for (const auto& n : r->at("notes").as_array()) {
    noted |= std::string(n.as_string()).find("snapshot skipped") != std::string::npos &&
             std::string(n.as_string()).find("bad file CRC") != std::string::npos;
  }
  EXPECT_TRUE(noted) << boost::json::serialize(*r);
  EXPECT_EQ(Sizes(), before) << "inspect must never modify the directory";
  // Inspecting the damaged file alone reports the verdict its single read found.
  auto one = InspectSnapshot(snaps.back(), std::nullopt);
  ASSERT_TRUE(one.ok());
  EXPECT_FALSE(one->at("clean").as_bool());
  EXPECT_NE(std::string(one->at("verdict").as_string()).find("bad file CRC"), std::string::npos);
  EXPECT_EQ(one->at("sections").as_uint64(), Ledger::ShardCount() + 1);   // the shards and the catalog
}

}  // namespace
}  // namespace genledger::inspect
