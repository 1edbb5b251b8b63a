// A hold keeps its price: a reservation recovered into a ledger whose catalog lost its model or
// changed its rate is committed exactly as it would have been (docs/wal-records.md, type 13;
// docs/snapshot-format.md, payload version 2), and older logs and snapshots that carried only the
// model id still recover without any request being able to crash the process.
#include <algorithm>
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
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

std::shared_ptr<const Catalog> MakeCatalog(const std::string& items) {
  auto c = Catalog::FromJson(R"({"items":[)" + items + "]}");
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return *c;
}
const std::string kText =
    R"({"id":"txt","name":"Text","category":"text","unit":"message","rate":"1","regions":["global"],"aliases":[]})";
std::string Video(const char* rate) {
  return std::string(R"({"id":"vid","name":"Video","category":"video","unit":"second","rate":")") + rate +
         R"(","regions":["global"],"aliases":[]})";
}

class HoldPriceTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make(std::shared_ptr<const Catalog> catalog) {
    LedgerOptions opt;
    opt.clock = &clock_;
    // Off: the payload rewriting below (ToV3, ToV1) expects the revs block alone at the end.
    opt.usage_history_bytes = 0;
    return std::make_unique<Ledger>(std::move(catalog), opt);
  }
  // Reserves 10 s of "vid" at rate 2.5 (25 held) in a ledger that logs.
  void ReserveVideo(Ledger& a) {
    ASSERT_TRUE(a.UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
    ReserveRequest req{ChargeRequest{"acme", "alice", a.CurrentCatalog()->Find("vid"), {}, {}}, 0};
    req.charge.usage.seconds_milli = 10'000;
    ReserveResult r = a.Reserve(req);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    ASSERT_EQ(r.held, 25u);
    reservation_ = r.reservation_id;
  }
  static std::vector<Record> Drain(Ledger& l) {
    std::vector<Record> out;
    EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t t, std::string_view p) { out.push_back({t, std::string(p)}); }).ok());
    return out;
  }
  static void Replay(Ledger& l, const std::vector<Record>& log) {
    for (const Record& r : log) ASSERT_TRUE(LedgerLog::ApplyLogRecord(l, r.type, r.payload).ok());
  }
  // Copies every shard of `from` into `to` through snapshot payloads; `rewrite` may change each.
  template <typename F>
  static void CopyBySnapshot(const Ledger& from, Ledger& to, F&& rewrite) {
    for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
      std::string payload;
      uint64_t no = 0;
      ASSERT_TRUE(LedgerLog::SnapshotShard(from, i, payload, &no).ok());
      payload = rewrite(payload);
      Status st = LedgerLog::LoadShardSection(to, i, no, payload);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
  }
  static Usage Seconds(uint64_t ms) {
    Usage u;
    u.seconds_milli = ms;
    return u;
  }
  // Commits 4 s of the video hold: 10 generations at the reserved rate 2.5.
  void ExpectPricedAsReserved(Ledger& b) {
    CommitResult c = b.Commit(reservation_, Seconds(4'000));
    ASSERT_TRUE(c.status.ok()) << c.status.ToString();
    EXPECT_EQ(c.cost, 10u);
    EXPECT_EQ(b.GetWorkspace("acme")->used, 10u);
    EXPECT_EQ(b.GetWorkspace("acme")->reserved, 0u);
    EXPECT_TRUE(b.CheckInvariants().ok());
  }

  ManualClock clock_;
  uint64_t reservation_ = 0;
  std::shared_ptr<const Catalog> before_ = MakeCatalog(kText + "," + Video("2.5"));
  std::shared_ptr<const Catalog> without_model_ = MakeCatalog(kText);
  std::shared_ptr<const Catalog> repriced_ = MakeCatalog(kText + "," + Video("7"));
};

// Before holds kept their price this read the catalog at index UINT32_MAX (a crash).
TEST_F(HoldPriceTest, WalReplayIntoACatalogWithoutTheModelPricesAsReserved) {
  auto a = Make(before_);
  LedgerLog::EnableLog(*a);
  ReserveVideo(*a);
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.back().type, uint8_t(ledger::RecordType::kReservePriced));
  auto b = Make(without_model_);
  Replay(*b, log);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  // A usage that does not fit the reserved unit is refused as it would have been.
  EXPECT_EQ(b->Commit(reservation_, Usage{1, 0, 0, 0}).status.code(), Code::kInvalidQuantity);
  ExpectPricedAsReserved(*b);
}

// Before, the new catalog's rate priced the commit: 28 > 25 held, refused commit_exceeds_hold.
TEST_F(HoldPriceTest, WalReplayIntoARepricedCatalogPricesAsReserved) {
  auto a = Make(before_);
  LedgerLog::EnableLog(*a);
  ReserveVideo(*a);
  auto b = Make(repriced_);
  Replay(*b, Drain(*a));
  ExpectPricedAsReserved(*b);
}

TEST_F(HoldPriceTest, SnapshotIntoACatalogWithoutTheModelPricesAsReserved) {
  auto a = Make(before_);
  ReserveVideo(*a);
  auto b = Make(without_model_);
  CopyBySnapshot(*a, *b, [](std::string p) { return p; });
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  ExpectPricedAsReserved(*b);
}

TEST_F(HoldPriceTest, SnapshotIntoARepricedCatalogPricesAsReserved) {
  auto a = Make(before_);
  ReserveVideo(*a);
  auto b = Make(repriced_);
  CopyBySnapshot(*a, *b, [](std::string p) { return p; });
  ExpectPricedAsReserved(*b);
}

// A type-13 record rewritten as the type 7 written before holds kept their price: the same
// fields minus unit u8 and rate_milli u32 after the model id.
Record ToLegacyReserve(const Record& priced) {
  ledger::RecordReader r(priced.payload);
  (void)r.U16();
  (void)r.U64();
  (void)r.U32();
  (void)r.User();
  (void)r.Str8();
  const size_t model_end = priced.payload.size() - r.rest().size();
  EXPECT_TRUE(r.ok());
  return {uint8_t(ledger::RecordType::kReserve),
          priced.payload.substr(0, model_end) + priced.payload.substr(model_end + 5)};
}

TEST_F(HoldPriceTest, LegacyReserveRecordsTakeTheCurrentPriceOrAreUnpriced) {
  auto a = Make(before_);
  LedgerLog::EnableLog(*a);
  ReserveVideo(*a);
  std::vector<Record> log = Drain(*a);
  log.back() = ToLegacyReserve(log.back());

  // The model is still there: its price in this catalog (the only one a type-7 log can have).
  auto same = Make(before_);
  Replay(*same, log);
  EXPECT_EQ(same->StateDigest(), a->StateDigest());
  ExpectPricedAsReserved(*same);

  // The model is gone: full commit or release only; a usage is refused, nothing changes.
  auto gone = Make(without_model_);
  Replay(*gone, log);
  const uint64_t digest = gone->StateDigest();
  CommitResult partial = gone->Commit(reservation_, Seconds(4'000));
  EXPECT_EQ(partial.status.code(), Code::kUnknownModel);
  EXPECT_EQ(gone->StateDigest(), digest);
  CommitResult full = gone->Commit(reservation_);
  ASSERT_TRUE(full.status.ok()) << full.status.ToString();
  EXPECT_EQ(full.cost, 25u);
  EXPECT_TRUE(gone->CheckInvariants().ok());

  auto released = Make(without_model_);
  Replay(*released, log);
  EXPECT_EQ(released->Release(reservation_).released, 25u);
}

// A version-4 payload whose only extension block is `revs` (docs/snapshot-format.md), as version
// 3: the same state with every revision 0.
std::string ToV3(const std::string& v4) {
  ledger::RecordReader r(v4);
  EXPECT_EQ(r.U8(), 4);
  (void)r.U64();
  const uint32_t workspaces = r.U32();
  const size_t blocks = 1 + 4 + 4 + 8 * size_t(workspaces) + 1;
  EXPECT_TRUE(r.ok() && v4.size() > blocks);
  EXPECT_EQ(v4.back(), '\0');
  return "\x03" + v4.substr(1, v4.size() - blocks - 1);
}

// The same payload with every revision set to 0: what a version 1-3 payload loads as.
std::string ZeroRevs(const std::string& v4) {
  const std::string v3 = ToV3(v4);
  std::string out = v4;
  std::fill(out.begin() + std::ptrdiff_t(v3.size()) + 9, out.end() - 1, '\0');
  return out;
}

// A version-3 payload without subscription state rewritten as version 1, whose holds name their
// model (`model`) instead of keeping unit and rate, and which ends after the idempotency entries
// (docs/snapshot-format.md).
std::string ToV1(const std::string& v4, const std::string& model) {
  const std::string v3 = ToV3(v4);
  // Version 3's trailer when no workspace has a plan and no charge a breakdown: two zero counts.
  EXPECT_EQ(v3.substr(v3.size() - 8), std::string(8, '\0'));
  const std::string v2 = v3.substr(0, v3.size() - 8);
  ledger::RecordReader r(v2);
  auto pos = [&] { return v2.size() - r.rest().size(); };
  EXPECT_EQ(r.U8(), 3);
  (void)r.U64();
  for (uint32_t w = 0, n = r.U32(); w < n; ++w) {
    (void)r.Str8();
    for (int i = 0; i < 5; ++i) (void)r.U64();
    (void)r.U8();
    (void)r.U8();
    for (uint32_t u = 0, users = r.U32(); u < users; ++u) {
      (void)r.Str8();
      for (int i = 0; i < 3; ++i) (void)r.U64();
    }
  }
  std::string out = "\x01" + v2.substr(1, pos() - 1);
  const uint32_t holds = r.U32();
  out += v2.substr(pos() - 4, 4);
  for (uint32_t h = 0; h < holds; ++h) {
    const size_t start = pos();
    (void)r.U64();
    (void)r.U32();
    (void)r.U32();
    out += v2.substr(start, 16);
    (void)r.U8();
    (void)r.U32();
    out += char(model.size());
    out += model;
    const size_t tail = pos();
    (void)r.U64();
    (void)r.U64();
    out += v2.substr(tail, 16);
  }
  EXPECT_TRUE(r.ok());
  return out + std::string(r.rest());
}

TEST_F(HoldPriceTest, Version1SnapshotsTakeTheCurrentPriceOrAreUnpriced) {
  auto a = Make(before_);
  ReserveVideo(*a);
  auto v1 = [](std::string p) { return ToV1(p, "vid"); };

  auto same = Make(before_);
  CopyBySnapshot(*a, *same, v1);
  auto zero_revs = Make(before_);   // a's state with revision 0, as a version 1 payload has it
  CopyBySnapshot(*a, *zero_revs, ZeroRevs);
  EXPECT_EQ(same->StateDigest(), zero_revs->StateDigest());
  ExpectPricedAsReserved(*same);

  auto gone = Make(without_model_);
  CopyBySnapshot(*a, *gone, v1);
  EXPECT_EQ(gone->Commit(reservation_, Seconds(4'000)).status.code(), Code::kUnknownModel);
  EXPECT_EQ(gone->Commit(reservation_).cost, 25u);
  EXPECT_TRUE(gone->CheckInvariants().ok());
}

TEST_F(HoldPriceTest, SnapshotHoldWithABadUnitIsCorruption) {
  auto a = Make(before_);
  ReserveVideo(*a);
  int rewritten = 0;
  auto b = Make(before_);
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    std::string payload;
    uint64_t no = 0;
    ASSERT_TRUE(LedgerLog::SnapshotShard(*a, i, payload, &no).ok());
    // Find the hold by layout: its unit byte is 16 bytes after the hold count.
    ledger::RecordReader r(payload);
    (void)r.U8();
    (void)r.U64();
    for (uint32_t w = 0, n = r.U32(); w < n; ++w) {
      (void)r.Str8();
      for (int k = 0; k < 5; ++k) (void)r.U64();
      (void)r.U16();
      for (uint32_t u = 0, users = r.U32(); u < users; ++u) {
        (void)r.Str8();
        for (int k = 0; k < 3; ++k) (void)r.U64();
      }
    }
    const uint32_t holds = r.U32();
    if (holds == 0) continue;
    ASSERT_EQ(holds, 1u);
    const size_t unit = payload.size() - r.rest().size() + 16;
    for (uint8_t bad : {uint8_t(7), uint8_t(0xFE)}) {
      std::string p = payload;
      p[unit] = char(bad);
      EXPECT_EQ(LedgerLog::LoadShardSection(*b, i, no, p).code(), Code::kCorruption);
    }
    std::string unpriced_with_rate = payload;
    unpriced_with_rate[unit] = char(ledger::kUnpriced);
    EXPECT_EQ(LedgerLog::LoadShardSection(*b, i, no, unpriced_with_rate).code(), Code::kCorruption);
    ++rewritten;
  }
  EXPECT_EQ(rewritten, 1);
}

// A refund of a charge whose cost is not in its workspace's `used` (state no live operation can
// produce; here planted through a snapshot) is refused as an internal inconsistency, answered
// 500, instead of wrapping `used` around and writing a record replay would refuse.
TEST_F(HoldPriceTest, RefundOfAChargeMissingFromUsedIsAnInternalError) {
  auto a = Make(before_);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ChargeRequest req{"acme", "alice", a->CurrentCatalog()->Find("txt"), {}, {}};
  req.usage.quantity = 5;
  ChargeResult c = a->Charge(req);
  ASSERT_TRUE(c.status.ok());
  auto b = Make(before_);
  CopyBySnapshot(*a, *b, [](std::string p) {
    // Zero the workspace's and the user's used (one workspace, one user in this shard).
    ledger::RecordReader r(p);
    (void)r.U8();
    (void)r.U64();
    if (r.U32() != 1) return p;
    (void)r.Str8();
    const size_t ws_used = p.size() - r.rest().size() + 16;
    for (int k = 0; k < 5; ++k) (void)r.U64();
    (void)r.U16();
    (void)r.U32();
    (void)r.Str8();
    const size_t user_used = p.size() - r.rest().size();
    std::memset(p.data() + ws_used, 0, 8);
    std::memset(p.data() + user_used, 0, 8);
    return p;
  });
  ASSERT_EQ(b->GetWorkspace("acme")->used, 0u);
  RefundResult r = b->Refund(c.charge_id);
  EXPECT_EQ(r.status.code(), Code::kInternal);
  EXPECT_EQ(b->GetWorkspace("acme")->used, 0u);
}

}  // namespace
}  // namespace genledger
