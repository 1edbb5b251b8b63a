// The live catalog in the ledger: replacing it, versions, what a replacement does to requests,
// holds and idempotent retries, and its WAL record (type 20) and snapshot section (type 4)
// (docs/wal-records.md, "Catalog records"; docs/snapshot-format.md).
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"
#include "ledger/log_record_text.h"

namespace genledger {
namespace {

struct Record {
  uint8_t type;
  std::string payload;
};

std::shared_ptr<const Catalog> MakeCatalog(const char* text_rate, const char* video_rate, bool with_extra = false) {
  std::string items = std::string(R"({"id":"txt","name":"Text","category":"text","unit":"message","rate":")") +
                      text_rate + R"(","regions":["global"],"aliases":["chat"]},)" +
                      R"({"id":"vid","name":"Video","category":"video","unit":"second","rate":")" + video_rate +
                      R"(","regions":["global"],"aliases":[]})";
  if (with_extra) {
    items += R"(,{"id":"img","name":"Image","category":"image","unit":"image","rate":"1","regions":["global"]})";
  }
  auto c = Catalog::FromJson(R"({"items":[)" + items + "]}");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}

class CatalogTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make(std::shared_ptr<const Catalog> c = nullptr) {
    LedgerOptions opt;
    opt.clock = &clock_;
    return std::make_unique<Ledger>(c != nullptr ? c : v1_, opt);
  }
  // A request resolved from the ledger's catalog of now; `keep` holds that catalog.
  ChargeRequest Req(const Ledger& l, std::shared_ptr<const Catalog>& keep, std::string_view model, uint64_t qty,
                    uint64_t seconds_milli = 0, std::string_view id = {}) {
    keep = l.CurrentCatalog();
    ChargeRequest r{"acme", "alice", keep->Find(model), {}, id};
    r.usage.quantity = qty;
    r.usage.seconds_milli = seconds_milli;
    return r;
  }
  static std::vector<Record> Drain(Ledger& l) {
    std::vector<Record> out;
    EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t t, std::string_view p) { out.push_back({t, std::string(p)}); }).ok());
    return out;
  }
  static Status Replay(Ledger& l, const std::vector<Record>& log) {
    for (const Record& r : log) {
      if (Status st = LedgerLog::ApplyLogRecord(l, r.type, r.payload); !st.ok()) return st;
    }
    return Status();
  }
  // A ledger built from `from` by snapshot: the catalog section, then every shard.
  std::unique_ptr<Ledger> CopyBySnapshot(const Ledger& from, std::shared_ptr<const Catalog> startup) {
    auto to = Make(std::move(startup));
    std::string payload;
    uint64_t record_no = 0;
    LedgerLog::CatalogCopy copy;
    EXPECT_TRUE(LedgerLog::SnapshotShard(from, 0, payload, &record_no, nullptr, &copy).ok());
    EXPECT_TRUE(LedgerLog::LoadCatalogSection(*to, LedgerLog::EncodeCatalogSection(copy)).ok());
    EXPECT_TRUE(LedgerLog::LoadShardSection(*to, 0, record_no, payload).ok());
    for (uint32_t s = 1; s < Ledger::ShardCount(); ++s) {
      EXPECT_TRUE(LedgerLog::SnapshotShard(from, s, payload, &record_no).ok());
      EXPECT_TRUE(LedgerLog::LoadShardSection(*to, s, record_no, payload).ok());
    }
    return to;
  }

  ManualClock clock_;
  std::shared_ptr<const Catalog> v1_ = MakeCatalog("1", "2");
  std::shared_ptr<const Catalog> v2_ = MakeCatalog("3", "5", /*with_extra=*/true);
};

TEST_F(CatalogTest, ReplacingGivesTheNextVersionAndPricesTheNextRequest) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  uint64_t version = 0;
  EXPECT_EQ(l->CurrentCatalog(&version), v1_);
  EXPECT_EQ(version, 1u);
  EXPECT_EQ(l->CatalogVersion(), 1u);
  EXPECT_FALSE(LedgerLog::CatalogReplaced(*l));

  std::shared_ptr<const Catalog> keep;
  EXPECT_EQ(l->Charge(Req(*l, keep, "txt", 2)).cost, 2u);
  Result<uint64_t> v = l->ReplaceCatalog(v2_);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 2u);
  EXPECT_EQ(l->CatalogVersion(), 2u);
  EXPECT_EQ(l->CurrentCatalog(&version), v2_);
  EXPECT_EQ(version, 2u);
  EXPECT_TRUE(LedgerLog::CatalogReplaced(*l));
  EXPECT_EQ(l->Charge(Req(*l, keep, "txt", 2)).cost, 6u) << "the new rate, 3 per message";
  EXPECT_NE(l->CurrentCatalog()->Find("img"), nullptr) << "a model only the new catalog has";
  EXPECT_EQ(*l->ReplaceCatalog(v1_), 3u) << "every replacement is a new version, even back to an old catalog";
  EXPECT_EQ(l->Charge(Req(*l, keep, "txt", 2)).cost, 2u);
}

TEST_F(CatalogTest, ARefusedCatalogChangesNothing) {
  auto l = Make();
  EXPECT_EQ(l->ReplaceCatalog(nullptr).code(), Code::kInvalidArgument);
  // Larger than a WAL frame can carry: refused with the size named.
  std::string items;
  for (int i = 0; items.size() < kMaxCatalogJsonBytes; ++i) {
    if (!items.empty()) items += ",";
    items += R"({"id":"model-)" + std::to_string(i) +
             R"(","name":"A model with a long enough display name to fill the catalog quickly","category":"text","unit":"message","rate":"1","regions":["global","cn"]})";
  }
  auto huge = Catalog::FromJson(R"({"items":[)" + items + "]}");
  ASSERT_TRUE(huge.ok()) << huge.status().ToString();
  Result<uint64_t> refused = l->ReplaceCatalog(*huge);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("at most 524288"), std::string_view::npos) << refused.status().ToString();
  uint64_t version = 0;
  EXPECT_EQ(l->CurrentCatalog(&version), v1_);
  EXPECT_EQ(version, 1u);
  EXPECT_FALSE(LedgerLog::CatalogReplaced(*l));
}

TEST_F(CatalogTest, AnIdempotentRetryAfterAReplacementIsStillAReplay) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  std::shared_ptr<const Catalog> keep;
  ChargeResult first = l->Charge(Req(*l, keep, "txt", 2, 0, "req-1"));
  ASSERT_TRUE(first.status.ok());
  ReserveResult hold = l->Reserve(ReserveRequest{Req(*l, keep, "vid", 0, 4000, "hold-1"), 0});
  ASSERT_TRUE(hold.status.ok());
  // The new catalog reprices everything and adds an item (positions unchanged; one that moves
  // "txt" follows).
  ASSERT_TRUE(l->ReplaceCatalog(v2_).ok());
  ChargeResult retry = l->Charge(Req(*l, keep, "txt", 2, 0, "req-1"));
  ASSERT_TRUE(retry.status.ok()) << retry.status.ToString();
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.charge_id, first.charge_id);
  EXPECT_EQ(retry.cost, 2u) << "the original answer, not today's price";
  // Named by alias: the same model id, so the same request.
  EXPECT_TRUE(l->Charge(Req(*l, keep, "CHAT", 2, 0, "req-1")).replayed);
  ReserveResult hold_retry = l->Reserve(ReserveRequest{Req(*l, keep, "vid", 0, 4000, "hold-1"), 0});
  EXPECT_TRUE(hold_retry.replayed);
  EXPECT_EQ(hold_retry.reservation_id, hold.reservation_id);

  auto moved = Catalog::FromJson(
      R"({"items":[{"id":"img","name":"Image","category":"image","unit":"image","rate":"1","regions":["global"]},)"
      R"({"id":"txt","name":"Text","category":"text","unit":"message","rate":"4","regions":["global"]}]})");
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE(l->ReplaceCatalog(*moved).ok());
  EXPECT_TRUE(l->Charge(Req(*l, keep, "txt", 2, 0, "req-1")).replayed) << "txt moved to position 1";
  // Another model with the same id is a conflict, as before.
  EXPECT_EQ(l->Charge(Req(*l, keep, "img", 2, 0, "req-1")).status.code(), Code::kIdempotencyConflict);
  EXPECT_EQ(l->GetWorkspace("acme")->used, 2u);
}

TEST_F(CatalogTest, AHoldReservedBeforeARateChangeCommitsAtItsOldRate) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  std::shared_ptr<const Catalog> keep;
  ReserveResult hold = l->Reserve(ReserveRequest{Req(*l, keep, "vid", 0, 10'000), 0});
  ASSERT_TRUE(hold.status.ok());
  EXPECT_EQ(hold.held, 20u);   // 10 s at 2
  ASSERT_TRUE(l->ReplaceCatalog(v2_).ok());   // video now 5/s
  Usage shorter;
  shorter.seconds_milli = 7'000;
  CommitResult c = l->Commit(hold.reservation_id, shorter);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.cost, 14u) << "7 s at the reserved 2/s, not 35 at 5/s";
  EXPECT_EQ(l->Reserve(ReserveRequest{Req(*l, keep, "vid", 0, 10'000), 0}).held, 50u) << "a new hold, the new rate";
}

TEST_F(CatalogTest, ARequestKeepsTheCatalogItResolvedAgainstAlive) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ASSERT_TRUE(l->ReplaceCatalog(v2_).ok());
  std::shared_ptr<const Catalog> keep;
  ChargeRequest old_req = Req(*l, keep, "txt", 1, 0, "old");
  std::weak_ptr<const Catalog> watch = v2_;
  v2_.reset();
  ASSERT_TRUE(l->ReplaceCatalog(MakeCatalog("7", "7")).ok());
  EXPECT_FALSE(watch.expired()) << "the request still holds the catalog its item is in";
  ChargeResult r = l->Charge(old_req);   // resolved before the swap: priced as that catalog says
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.cost, 3u);
  old_req.item = nullptr;
  keep.reset();
  EXPECT_TRUE(watch.expired()) << "nothing else keeps a replaced catalog (the start-up one is kept)";
}

TEST_F(CatalogTest, ConcurrentReplacementsAndChargesKeepVersionsDense) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  constexpr int kReplacements = 200;
  std::thread replacer([&] {
    for (int i = 0; i < kReplacements; ++i) ASSERT_TRUE(l->ReplaceCatalog(i % 2 == 0 ? v2_ : v1_).ok());
  });
  uint64_t total = 0, last_version = 0;
  for (int i = 0; i < 2000; ++i) {
    uint64_t version = 0;
    std::shared_ptr<const Catalog> c = l->CurrentCatalog(&version);
    EXPECT_GE(version, last_version);
    last_version = version;
    ChargeRequest r{"acme", "alice", c->Find("txt"), {}, {}};
    r.usage.quantity = 1;
    ChargeResult res = l->Charge(r);
    ASSERT_TRUE(res.status.ok());
    EXPECT_EQ(res.cost, version % 2 == 0 ? 3u : 1u) << "version " << version;
    total += res.cost;
  }
  replacer.join();
  EXPECT_EQ(l->CatalogVersion(), 1u + kReplacements);
  EXPECT_EQ(l->GetWorkspace("acme")->used, total);
}

TEST_F(CatalogTest, TheRecordReplaysToTheSameCatalogVersionAndPrices) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  std::shared_ptr<const Catalog> keep;
  ReserveResult hold = a->Reserve(ReserveRequest{Req(*a, keep, "vid", 0, 10'000, "h"), 0});
  ASSERT_TRUE(a->Charge(Req(*a, keep, "txt", 1, 0, "c")).status.ok());
  ASSERT_TRUE(a->ReplaceCatalog(v2_).ok());
  ASSERT_TRUE(a->Charge(Req(*a, keep, "txt", 1, 0, "d")).status.ok());
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log[3].type, uint8_t(ledger::RecordType::kSetCatalog));
  uint32_t shard = 99;
  uint64_t no = 0;
  ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(log[3].payload, &shard, &no));
  EXPECT_EQ(shard, 0u) << "numbered in shard 0's sequence";
  auto described = ledger::DescribeRecord(log[3].type, log[3].payload);
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_EQ((*described)["type"].as_string(), "set_catalog");
  EXPECT_EQ((*described)["version"].as_uint64(), 2u);
  EXPECT_EQ((*described)["catalog_bytes"].as_uint64(), v2_->ToJson().size());

  // Replayed into a ledger started with another catalog: the log's catalog and version win.
  auto b = Make(MakeCatalog("9", "9"));
  ASSERT_TRUE(Replay(*b, log).ok());
  uint64_t version = 0;
  EXPECT_EQ(b->CurrentCatalog(&version)->ToJson(), v2_->ToJson());
  EXPECT_EQ(version, 2u);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  EXPECT_TRUE(b->Charge(Req(*b, keep, "txt", 1, 0, "c")).replayed) << "an entry made under version 1";
  EXPECT_EQ(b->Charge(Req(*b, keep, "txt", 1)).cost, 3u);
  Usage shorter;
  shorter.seconds_milli = 5'000;
  EXPECT_EQ(b->Commit(hold.reservation_id, shorter).cost, 10u) << "the hold's own rate, 2";

  // The same through a snapshot.
  auto c = CopyBySnapshot(*a, MakeCatalog("9", "9"));
  EXPECT_EQ(c->CurrentCatalog(&version)->ToJson(), v2_->ToJson());
  EXPECT_EQ(version, 2u);
  EXPECT_EQ(c->StateDigest(), a->StateDigest());
  EXPECT_TRUE(c->Charge(Req(*c, keep, "txt", 1, 0, "d")).replayed);
}

TEST_F(CatalogTest, ReplayRefusesAVersionThatDoesNotFollow) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->ReplaceCatalog(v2_).ok());   // version 2
  ASSERT_TRUE(a->ReplaceCatalog(v1_).ok());   // version 3
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.size(), 2u);
  {
    auto b = Make();
    ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload).ok());
    // Version 2 again as shard 0's record 2: it does not follow version 2.
    std::string again = log[0].payload;
    again[2] = 2;   // record_no (the u64 after the u16 shard), so only the version is wrong
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, again).code(), Code::kCorruption);
    EXPECT_EQ(b->CatalogVersion(), 2u);
    ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload).ok());
    EXPECT_EQ(b->CatalogVersion(), 3u);
    // Version 2 after version 3: backwards.
    again[2] = 3;
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, again).code(), Code::kCorruption);
    EXPECT_EQ(b->CurrentCatalog()->ToJson(), v1_->ToJson());
  }
  {
    // A catalog this build refuses is corruption, and changes nothing.
    auto b = Make();
    std::string bad = log[0].payload;
    const size_t json_at = 2 + 8 + 8 + 4;
    bad[json_at] = '[';
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, bad).code(), Code::kCorruption);
    EXPECT_EQ(b->CatalogVersion(), 1u);
    EXPECT_FALSE(LedgerLog::CatalogReplaced(*b));
    // Cut short, or numbered in another shard: corruption too.
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload.substr(0, log[0].payload.size() - 1)).code(),
              Code::kCorruption);
    std::string other_shard = log[0].payload;
    other_shard[0] = 1;
    EXPECT_EQ(LedgerLog::ApplyLogRecord(*b, log[0].type, other_shard).code(), Code::kCorruption);
    EXPECT_EQ(b->CatalogVersion(), 1u);
  }
}

TEST_F(CatalogTest, TheStartUpCatalogIsLoggedAsVersionOneOnce) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(LedgerLog::LogStartupCatalog(*a).ok());
  EXPECT_EQ(a->CatalogVersion(), 1u);
  EXPECT_TRUE(LedgerLog::CatalogReplaced(*a));
  EXPECT_EQ(LedgerLog::LogStartupCatalog(*a).code(), Code::kInvalidArgument) << "already in the log";
  ASSERT_TRUE(a->ReplaceCatalog(v2_).ok());
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.size(), 2u);
  // A ledger started with another catalog takes the logged version 1 (the start-up catalog may be
  // replaced by a version-1 record), then version 2.
  auto b = Make(v2_);
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[0].type, log[0].payload).ok());
  EXPECT_EQ(b->CurrentCatalog()->ToJson(), v1_->ToJson());
  EXPECT_EQ(b->CatalogVersion(), 1u);
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*b, log[1].type, log[1].payload).ok());
  EXPECT_EQ(b->CatalogVersion(), 2u);
  // But a second version 1 is not accepted once the catalog came from the log.
  auto c = Make();
  ASSERT_TRUE(LedgerLog::ApplyLogRecord(*c, log[0].type, log[0].payload).ok());
  std::string again = log[0].payload;
  again[2] = 2;
  EXPECT_EQ(LedgerLog::ApplyLogRecord(*c, log[0].type, again).code(), Code::kCorruption);
}

TEST_F(CatalogTest, ACatalogSectionIsValidated) {
  auto a = Make();
  ASSERT_TRUE(a->ReplaceCatalog(v2_).ok());
  std::string payload;
  uint64_t record_no = 0;
  LedgerLog::CatalogCopy copy;
  EXPECT_EQ(LedgerLog::SnapshotShard(*a, 1, payload, &record_no, nullptr, &copy).code(), Code::kInvalidArgument);
  ASSERT_TRUE(LedgerLog::SnapshotShard(*a, 0, payload, &record_no, nullptr, &copy).ok());
  EXPECT_EQ(copy.version, 2u);
  const std::string good = LedgerLog::EncodeCatalogSection(copy);
  auto bad = [&](std::string p) {
    auto b = Make();
    EXPECT_EQ(LedgerLog::LoadCatalogSection(*b, p).code(), Code::kCorruption);
    EXPECT_EQ(b->CatalogVersion(), 1u);
    EXPECT_FALSE(LedgerLog::CatalogReplaced(*b));
  };
  bad("");
  bad(good.substr(0, good.size() - 1));
  bad(good + "x");
  std::string v = good;
  v[0] = 2;   // payload version
  bad(v);
  std::string zero = good;
  for (int i = 1; i <= 8; ++i) zero[i] = 0;   // catalog version 0
  bad(zero);
  std::string refused = good;
  refused[13] = '[';
  bad(refused);
  auto b = Make();
  ASSERT_TRUE(LedgerLog::LoadCatalogSection(*b, good).ok());
  EXPECT_EQ(b->CatalogVersion(), 2u);
  LedgerLog::EnableLog(*b);
  EXPECT_EQ(LedgerLog::LoadCatalogSection(*b, good).code(), Code::kInvalidArgument) << "not into a logging ledger";
}

TEST_F(CatalogTest, ResetForRecoveryGoesBackToTheStartUpCatalog) {
  auto a = Make();
  ASSERT_TRUE(a->ReplaceCatalog(v2_).ok());
  ASSERT_TRUE(LedgerLog::ResetForRecovery(*a).ok());
  uint64_t version = 0;
  EXPECT_EQ(a->CurrentCatalog(&version), v1_);
  EXPECT_EQ(version, 1u);
  EXPECT_FALSE(LedgerLog::CatalogReplaced(*a));
}

}  // namespace
}  // namespace genledger
