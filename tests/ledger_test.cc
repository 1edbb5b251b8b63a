#include "genledger/ledger.h"

#include <gtest/gtest.h>

#include <string>

#include "ledger/shard.h"

namespace genledger {
namespace {

class LedgerTest : public ::testing::Test {
 protected:
  void Make(LedgerOptions opt = {}) {
    opt.clock = &clock_;
    ledger_ = std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  void SetUp() override { Make(); }

  const CatalogItem* Item(std::string_view name) {
    const CatalogItem* item = ledger_->CurrentCatalog()->Find(name);
    EXPECT_NE(item, nullptr) << name;
    return item;
  }
  ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t messages = 1,
                     std::string_view id = {}) {
    ChargeRequest r{ws, user, Item("openai-gpt-4o"), {}, id};
    r.usage.quantity = messages;
    return r;
  }
  ChargeRequest Video(std::string_view ws, std::string_view user, std::string_view model,
                      uint64_t seconds_milli, uint32_t outputs = 0) {
    ChargeRequest r{ws, user, Item(model), {}, {}};
    r.usage.seconds_milli = seconds_milli;
    r.usage.outputs = outputs;
    return r;
  }
  WorkspaceInfo Ws(std::string_view id) {
    auto info = ledger_->GetWorkspace(id);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : WorkspaceInfo{};
  }
  void Create(std::string_view id, uint64_t limit, Region region = Region::kGlobal) {
    ASSERT_TRUE(ledger_->UpsertWorkspace(id, limit, region).ok());
  }
  void ExpectInvariants() {
    Status st = ledger_->CheckInvariants();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }

  ManualClock clock_;
  std::unique_ptr<Ledger> ledger_;
};

// --- charge ---

TEST_F(LedgerTest, ChargeDebitsWorkspaceAndUser) {
  Create("acme", 10);
  ChargeResult r = ledger_->Charge(Text("acme", "alice", 3));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.cost, 3u);
  EXPECT_EQ(r.remaining, 7u);
  EXPECT_EQ(r.user_used, 3u);
  EXPECT_FALSE(r.replayed);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 3u);
  EXPECT_EQ(w.remaining, 7u);
  EXPECT_EQ(w.users, 1u);
  ExpectInvariants();
}

TEST_F(LedgerTest, ChargeIdsAreDistinct) {
  Create("acme", kUnlimited);
  ChargeResult a = ledger_->Charge(Text("acme", "alice"));
  ChargeResult b = ledger_->Charge(Text("acme", "alice"));
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_NE(a.charge_id, b.charge_id);
}

TEST_F(LedgerTest, ChargeUpToExactlyTheLimitThenRefuses) {
  Create("acme", 5);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 5)).status.ok());
  ChargeResult r = ledger_->Charge(Text("acme", "bob", 1));
  EXPECT_EQ(r.status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(r.cost, 1u);
  EXPECT_EQ(r.remaining, 0u);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 5u);
  EXPECT_EQ(w.users, 1u) << "a refused charge must not create its user";
  ExpectInvariants();
}

TEST_F(LedgerTest, RefusalWhenCostExceedsRemainingReportsBoth) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 8)).status.ok());
  ChargeResult r = ledger_->Charge(Text("acme", "alice", 3));
  EXPECT_EQ(r.status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(r.cost, 3u);
  EXPECT_EQ(r.remaining, 2u);
  EXPECT_EQ(Ws("acme").used, 8u);
}

TEST_F(LedgerTest, ChargeBatchMatchesChargingOneByOne) {
  Create("a", 5);
  Create("b", kUnlimited);
  std::vector<ChargeRequest> reqs;
  for (int i = 0; i < 70; ++i) {   // crosses the batch's internal chunking
    reqs.push_back(Text(i % 2 ? "a" : "b", "u", 1));
  }
  reqs[3] = Text("missing", "u", 1);
  reqs[4] = Text("b", "bad id", 1);
  reqs[5] = Text("b", "u", 0);
  std::vector<ChargeResult> results(reqs.size());
  ledger_->ChargeBatch(reqs, results);
  EXPECT_EQ(results[3].status.code(), Code::kUnknownWorkspace);
  EXPECT_EQ(results[4].status.code(), Code::kInvalidId);
  EXPECT_EQ(results[5].status.code(), Code::kInvalidQuantity);
  int ok_a = 0, refused_a = 0, ok_b = 0;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (i >= 3 && i <= 5) continue;
    if (i % 2) {
      if (results[i].status.ok()) {
        ++ok_a;
        EXPECT_EQ(results[i].remaining, uint64_t(5 - ok_a)) << "in order: " << i;
      } else {
        EXPECT_EQ(results[i].status.code(), Code::kInsufficientGenerations);
        EXPECT_EQ(ok_a, 5) << "refusals only after the limit is reached";
        ++refused_a;
      }
    } else {
      ASSERT_TRUE(results[i].status.ok());
      ++ok_b;
    }
  }
  EXPECT_EQ(ok_a, 5);
  EXPECT_EQ(refused_a, 28);   // 35 odd positions, two of them (3 and 5) invalid, 5 accepted
  EXPECT_EQ(Ws("a").used, 5u);
  EXPECT_EQ(Ws("b").used, uint64_t(ok_b));
  ExpectInvariants();
}

TEST_F(LedgerTest, UnlimitedWorkspaceReportsUnlimitedRemaining) {
  Create("big", kUnlimited);
  ChargeResult r = ledger_->Charge(Text("big", "u", 1000));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.remaining, kUnlimited);
  EXPECT_EQ(Ws("big").used, 1000u);
}

TEST_F(LedgerTest, VideoChargesRoundUpPerOutput) {
  Create("studio", 100);
  ChargeResult r = ledger_->Charge(Video("studio", "u", "runway-gen4-alpha-turbo", 5000));
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.cost, 2u);   // 5 x 0.33 = 1.65 -> 2
  r = ledger_->Charge(Video("studio", "u", "google-veo3", 3000, 2));
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.cost, 12u);  // 2 outputs x 6
  EXPECT_EQ(Ws("studio").used, 14u);
}

TEST_F(LedgerTest, UnknownWorkspaceIsRefused) {
  ChargeResult r = ledger_->Charge(Text("nobody", "u"));
  EXPECT_EQ(r.status.code(), Code::kUnknownWorkspace);
  EXPECT_EQ(ledger_->GetWorkspace("nobody").code(), Code::kUnknownWorkspace);
}

TEST_F(LedgerTest, RegionRestrictedModels) {
  Create("global-ws", 100, Region::kGlobal);
  Create("cn-ws", 100, Region::kCn);
  ChargeRequest kling{"global-ws", "u", Item("kling-ai-image-2"), {}, {}};
  kling.usage.quantity = 1;
  EXPECT_EQ(ledger_->Charge(kling).status.code(), Code::kModelNotAvailableInRegion);
  EXPECT_EQ(Ws("global-ws").used, 0u);
  kling.workspace = "cn-ws";
  EXPECT_TRUE(ledger_->Charge(kling).status.ok());
  ChargeRequest video = Video("global-ws", "u", "kling-ai-video-2.5", 2000);
  EXPECT_EQ(ledger_->Charge(video).status.code(), Code::kModelNotAvailableInRegion);
  video.workspace = "cn-ws";
  ChargeResult r = ledger_->Charge(video);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.cost, 4u);
}

TEST_F(LedgerTest, InvalidIdsAreRefusedAndChangeNothing) {
  Create("acme", 10);
  for (std::string bad : {std::string(), std::string("has space"), std::string(129, 'a'),
                          std::string("semi;colon"), std::string("\xc3\xa9")}) {
    EXPECT_EQ(ledger_->Charge(Text(bad, "u")).status.code(), Code::kInvalidId) << bad;
    EXPECT_EQ(ledger_->Charge(Text("acme", bad)).status.code(), Code::kInvalidId) << bad;
    EXPECT_EQ(ledger_->UpsertWorkspace(bad, 1, Region::kGlobal).code(), Code::kInvalidId) << bad;
  }
  EXPECT_EQ(ledger_->Charge(Text("acme", "u", 1, "bad id")).status.code(), Code::kInvalidId);
  EXPECT_TRUE(ledger_->Charge(Text("acme", std::string(128, 'a'))).status.ok());
  EXPECT_TRUE(IsValidId("a.b_c:d@e-f9"));
  EXPECT_EQ(Ws("acme").used, 1u);
}

TEST_F(LedgerTest, BadQuantitiesAreRefusedAndChangeNothing) {
  Create("acme", 10);
  EXPECT_EQ(ledger_->Charge(Text("acme", "u", 0)).status.code(), Code::kInvalidQuantity);
  EXPECT_EQ(ledger_->Charge(Text("acme", "u", kMaxQuantity + 1)).status.code(), Code::kInvalidQuantity);
  ChargeRequest seconds_on_text = Text("acme", "u", 1);
  seconds_on_text.usage.seconds_milli = 1000;
  EXPECT_EQ(ledger_->Charge(seconds_on_text).status.code(), Code::kInvalidQuantity);
  EXPECT_EQ(ledger_->Charge(Video("acme", "u", "sora-2", 0)).status.code(), Code::kInvalidQuantity);
  ChargeRequest no_item = Text("acme", "u", 1);
  no_item.item = nullptr;
  EXPECT_EQ(ledger_->Charge(no_item).status.code(), Code::kUnknownModel);
  EXPECT_EQ(Ws("acme").used, 0u);
  EXPECT_EQ(Ws("acme").users, 0u);
}

TEST_F(LedgerTest, UserCapIsEnforcedWithTheWorkspaceInOneStep) {
  Create("acme", 100);
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "intern", 3).ok());
  EXPECT_TRUE(ledger_->Charge(Text("acme", "intern", 2)).status.ok());
  ChargeResult r = ledger_->Charge(Text("acme", "intern", 2));
  EXPECT_EQ(r.status.code(), Code::kUserLimitExceeded);
  EXPECT_EQ(r.cost, 2u);
  EXPECT_EQ(Ws("acme").used, 2u) << "a user refusal must not debit the workspace";
  EXPECT_TRUE(ledger_->Charge(Text("acme", "intern", 1)).status.ok());
  EXPECT_TRUE(ledger_->Charge(Text("acme", "boss", 50)).status.ok());
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "intern", kUnlimited).ok());
  EXPECT_TRUE(ledger_->Charge(Text("acme", "intern", 10)).status.ok());
  ExpectInvariants();
}

TEST_F(LedgerTest, ListUsersSortedByUsage) {
  Create("acme", kUnlimited);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "carol", 2)).status.ok());
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 9)).status.ok());
  ASSERT_TRUE(ledger_->Charge(Text("acme", "bob", 2)).status.ok());
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "dave", 5).ok());
  auto users = ledger_->ListUsers("acme", Ledger::kMaxUsersPage);
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->users.size(), 4u);
  EXPECT_EQ(users->users[0].user, "alice");
  EXPECT_EQ(users->users[0].used, 9u);
  EXPECT_EQ(users->users[1].user, "bob");    // ties by id
  EXPECT_EQ(users->users[2].user, "carol");
  EXPECT_EQ(users->users[3].user, "dave");
  EXPECT_EQ(users->users[3].limit, 5u);
  EXPECT_EQ(ledger_->ListUsers("nope", 1).code(), Code::kUnknownWorkspace);
}

TEST_F(LedgerTest, ManyUsersSwitchToIndexedLookup) {
  Create("team", kUnlimited);
  for (int i = 0; i < 50; ++i) {
    const std::string u = "user" + std::to_string(i);
    ASSERT_TRUE(ledger_->Charge(Text("team", u, uint64_t(i + 1))).status.ok());
  }
  for (int i = 0; i < 50; ++i) {
    ChargeResult r = ledger_->Charge(Text("team", "user" + std::to_string(i), 1));
    ASSERT_TRUE(r.status.ok());
    EXPECT_EQ(r.user_used, uint64_t(i + 2));
  }
  EXPECT_EQ(Ws("team").users, 50u);
  ExpectInvariants();
}

TEST_F(LedgerTest, QuoteDebitsNothing) {
  Create("acme", 10);
  ChargeResult q = ledger_->Quote(Video("acme", "u", "google-veo2", 2500));
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.cost, 8u);   // 3 x 2.5 = 7.5 -> 8
  EXPECT_EQ(Ws("acme").used, 0u);
  EXPECT_EQ(Ws("acme").users, 0u);
  EXPECT_EQ(ledger_->Quote(Text("none", "u")).status.code(), Code::kUnknownWorkspace);
}

// --- refund ---

TEST_F(LedgerTest, RefundGivesBackOnce) {
  Create("acme", 10);
  ChargeResult c = ledger_->Charge(Text("acme", "alice", 4));
  ASSERT_TRUE(c.status.ok());
  RefundResult r = ledger_->Refund(c.charge_id);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.refunded, 4u);
  EXPECT_EQ(r.remaining, 10u);
  EXPECT_EQ(ledger_->Refund(c.charge_id).status.code(), Code::kAlreadyRefunded);
  EXPECT_EQ(Ws("acme").used, 0u);
  auto users = ledger_->ListUsers("acme", Ledger::kMaxUsersPage);
  EXPECT_EQ(users->users[0].used, 0u);
  ExpectInvariants();
}

TEST_F(LedgerTest, RefundOfUnknownCharge) {
  Create("acme", 10);
  ChargeResult c = ledger_->Charge(Text("acme", "alice"));
  EXPECT_EQ(ledger_->Refund(c.charge_id + (uint64_t(1) << 40)).status.code(), Code::kUnknownCharge);
  EXPECT_EQ(ledger_->Refund(0).status.code(), Code::kUnknownCharge);
}

TEST_F(LedgerTest, RefundOutsideTheWindowIsRefused) {
  Create("acme", 10);
  ChargeResult c = ledger_->Charge(Text("acme", "alice"));
  clock_.Advance(ledger_->options().refund_window_ms + 1);
  EXPECT_EQ(ledger_->Refund(c.charge_id).status.code(), Code::kUnknownCharge);
  EXPECT_EQ(Ws("acme").used, 1u);
}

TEST_F(LedgerTest, RefundBeyondCapacityIsRefused) {
  LedgerOptions opt;
  opt.refund_capacity = 1;   // one recent charge per shard
  Make(opt);
  Create("acme", kUnlimited);
  ChargeResult first = ledger_->Charge(Text("acme", "alice"));
  ChargeResult second = ledger_->Charge(Text("acme", "alice"));
  EXPECT_EQ(ledger_->Refund(first.charge_id).status.code(), Code::kUnknownCharge);
  EXPECT_TRUE(ledger_->Refund(second.charge_id).status.ok());
}

// A generation charged at 23:59 that fails at 00:01 is free: its cost goes to the current
// period's allowance (as a top-up, ending with the period), since the old period's used is gone.
TEST_F(LedgerTest, RefundFromAnEarlierPeriodGoesToTheCurrentAllowance) {
  Create("acme", 10);
  ChargeResult c = ledger_->Charge(Text("acme", "alice", 3));
  ASSERT_TRUE(ledger_->ResetPeriod("acme").ok());
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 8)).status.ok());
  EXPECT_EQ(ledger_->Charge(Text("acme", "bob", 3)).status.code(), Code::kInsufficientGenerations);
  RefundResult r = ledger_->Refund(c.charge_id);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.refunded, 3u);
  EXPECT_EQ(r.remaining, 5u);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 8u);          // this period's charges stay charged
  EXPECT_EQ(w.granted_remaining, 3u);   // a refund grant ending with the period
  EXPECT_EQ(w.limit, 10u);
  EXPECT_EQ(w.remaining, 5u);
  EXPECT_EQ(ledger_->ListUsers("acme", 10)->users.at(0).used, 8u);
  ExpectInvariants();
  // At most once, answered as a state conflict (409).
  RefundResult again = ledger_->Refund(c.charge_id);
  EXPECT_EQ(again.status.code(), Code::kAlreadyRefunded);
  EXPECT_EQ(Ws("acme").remaining, 5u);
  EXPECT_TRUE(ledger_->Charge(Text("acme", "bob", 3)).status.ok());
  // Like a top-up it ends with the period.
  ASSERT_TRUE(ledger_->ResetPeriod("acme").ok());
  EXPECT_EQ(Ws("acme").granted_remaining, 0u);
  EXPECT_EQ(Ws("acme").remaining, 10u);
  ExpectInvariants();
}

TEST_F(LedgerTest, RefundFromAnEarlierPeriodOfAnUnlimitedWorkspaceChangesNoBalance) {
  Create("free", kUnlimited);
  ChargeResult c = ledger_->Charge(Text("free", "alice", 3));
  ASSERT_TRUE(ledger_->ResetPeriod("free").ok());
  RefundResult r = ledger_->Refund(c.charge_id);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.refunded, 3u);
  EXPECT_EQ(Ws("free").used, 0u);
  EXPECT_EQ(Ws("free").topup, 0u);
  EXPECT_EQ(ledger_->Refund(c.charge_id).status.code(), Code::kAlreadyRefunded);
  ExpectInvariants();
}

// --- reserve / commit / release ---

ReserveRequest Hold(ChargeRequest c, uint64_t ttl_ms = 0) { return ReserveRequest{c, ttl_ms}; }

TEST_F(LedgerTest, ReserveHoldsAndCommitCharges) {
  Create("acme", 10);
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "alice", 4)));
  ASSERT_TRUE(h.status.ok()) << h.status.ToString();
  EXPECT_EQ(h.held, 4u);
  EXPECT_EQ(h.remaining, 6u);
  EXPECT_EQ(h.expires_at_ms, clock_.NowMs() + ledger_->options().default_ttl_ms);
  EXPECT_EQ(Ws("acme").reserved, 4u);
  ExpectInvariants();

  CommitResult c = ledger_->Commit(h.reservation_id);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.cost, 4u);
  EXPECT_EQ(c.remaining, 6u);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 4u);
  EXPECT_EQ(w.reserved, 0u);
  ExpectInvariants();

  EXPECT_EQ(ledger_->Commit(h.reservation_id).status.code(), Code::kReservationSettled);
  EXPECT_EQ(ledger_->Release(h.reservation_id).status.code(), Code::kReservationSettled);
  EXPECT_EQ(Ws("acme").used, 4u);
  // The commit became a refundable charge.
  EXPECT_TRUE(ledger_->Refund(c.charge_id).status.ok());
  EXPECT_EQ(Ws("acme").used, 0u);
}

TEST_F(LedgerTest, CommitTheActualShorterVideo) {
  Create("studio", 50);
  ReserveResult h = ledger_->Reserve(Hold(Video("studio", "u", "google-veo3", 10000)));
  ASSERT_TRUE(h.status.ok());
  EXPECT_EQ(h.held, 20u);
  Usage actual;
  actual.seconds_milli = 4000;
  CommitResult c = ledger_->Commit(h.reservation_id, actual);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.cost, 8u);
  EXPECT_EQ(c.remaining, 42u);
  WorkspaceInfo w = Ws("studio");
  EXPECT_EQ(w.used, 8u);
  EXPECT_EQ(w.reserved, 0u);
  ExpectInvariants();
}

TEST_F(LedgerTest, CommitAboveTheHoldIsRefusedAndKeepsTheHold) {
  Create("studio", 50);
  ReserveResult h = ledger_->Reserve(Hold(Video("studio", "u", "sora-2", 5000)));
  ASSERT_TRUE(h.status.ok());
  Usage longer;
  longer.seconds_milli = 6000;
  EXPECT_EQ(ledger_->Commit(h.reservation_id, longer).status.code(), Code::kCommitExceedsHold);
  Usage bad;   // quantity on a per-second item
  bad.quantity = 1;
  EXPECT_EQ(ledger_->Commit(h.reservation_id, bad).status.code(), Code::kInvalidQuantity);
  EXPECT_EQ(Ws("studio").reserved, 5u);
  EXPECT_TRUE(ledger_->Commit(h.reservation_id).status.ok());
  EXPECT_EQ(Ws("studio").used, 5u);
}

TEST_F(LedgerTest, ReleaseFreesEverything) {
  Create("acme", 10);
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "alice", 7)));
  ASSERT_TRUE(h.status.ok());
  ReleaseResult r = ledger_->Release(h.reservation_id);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.released, 7u);
  EXPECT_EQ(r.remaining, 10u);
  EXPECT_EQ(ledger_->Release(h.reservation_id).status.code(), Code::kReservationSettled);
  EXPECT_EQ(ledger_->Commit(h.reservation_id).status.code(), Code::kReservationSettled);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 0u);
  EXPECT_EQ(w.reserved, 0u);
  ExpectInvariants();
}

TEST_F(LedgerTest, UnknownReservation) {
  Create("acme", 10);
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "alice")));
  const uint64_t never_issued = h.reservation_id + (uint64_t(1000) << ledger::kShardBits);
  EXPECT_EQ(ledger_->Commit(never_issued).status.code(), Code::kUnknownReservation);
  EXPECT_EQ(ledger_->Release(never_issued).status.code(), Code::kUnknownReservation);
}

TEST_F(LedgerTest, HoldsCountAgainstTheLimit) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Reserve(Hold(Text("acme", "alice", 8))).status.ok());
  ChargeResult c = ledger_->Charge(Text("acme", "bob", 3));
  EXPECT_EQ(c.status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(c.remaining, 2u);
  ReserveResult r = ledger_->Reserve(Hold(Text("acme", "bob", 3)));
  EXPECT_EQ(r.status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(r.held, 3u);
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "carol", 1).ok());
  EXPECT_EQ(ledger_->Reserve(Hold(Text("acme", "carol", 2))).status.code(), Code::kUserLimitExceeded);
  EXPECT_EQ(Ws("acme").reserved, 8u);
  ExpectInvariants();
}

TEST_F(LedgerTest, TtlExpiryReleasesTheHold) {
  Create("acme", 10);
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "alice", 6), 1000));
  ASSERT_TRUE(h.status.ok());
  EXPECT_EQ(h.expires_at_ms, clock_.NowMs() + 1000);
  clock_.Advance(999);
  EXPECT_EQ(ledger_->ExpireReservations(), 0u);
  EXPECT_EQ(Ws("acme").reserved, 6u);
  clock_.Advance(1);
  EXPECT_EQ(ledger_->ExpireReservations(), 1u);
  EXPECT_EQ(Ws("acme").reserved, 0u);
  EXPECT_EQ(Ws("acme").remaining, 10u);
  EXPECT_EQ(ledger_->Commit(h.reservation_id).status.code(), Code::kReservationSettled);
  ExpectInvariants();
}

TEST_F(LedgerTest, ExpiredHoldCannotBeCommittedEvenBeforeTheSweep) {
  Create("acme", 10);
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "alice", 6), 50));
  ASSERT_TRUE(h.status.ok());
  clock_.Advance(50);
  CommitResult c = ledger_->Commit(h.reservation_id);
  EXPECT_EQ(c.status.code(), Code::kReservationSettled);
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 0u);
  EXPECT_EQ(w.reserved, 0u);
  EXPECT_EQ(ledger_->ExpireReservations(), 0u) << "already released by the commit attempt";
}

TEST_F(LedgerTest, TtlBounds) {
  Create("acme", 10);
  EXPECT_EQ(ledger_->Reserve(Hold(Text("acme", "a"), ledger_->options().max_ttl_ms + 1)).status.code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(ledger_->Reserve(Hold(Text("acme", "a"), ledger_->options().max_ttl_ms)).status.ok());
}

TEST_F(LedgerTest, ManyExpiredHoldsKeepTheExpiryQueueBounded) {
  Create("acme", kUnlimited);
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 1000; ++i) {
      ReserveResult h = ledger_->Reserve(Hold(Text("acme", "a"), 10));
      ASSERT_TRUE(h.status.ok());
      if (i % 2 == 0) {
        ASSERT_TRUE(ledger_->Release(h.reservation_id).status.ok());
      }
    }
    clock_.Advance(10);
    EXPECT_EQ(ledger_->ExpireReservations(), 500u);
  }
  EXPECT_EQ(ledger_->Totals().open_reservations, 0u);
  EXPECT_EQ(Ws("acme").reserved, 0u);
}

TEST_F(LedgerTest, TooManyReservations) {
  LedgerOptions opt;
  opt.max_open_reservations = 1;   // one per shard
  Make(opt);
  Create("acme", kUnlimited);
  ReserveResult first = ledger_->Reserve(Hold(Text("acme", "a")));
  ASSERT_TRUE(first.status.ok());
  EXPECT_EQ(ledger_->Reserve(Hold(Text("acme", "a"))).status.code(), Code::kTooManyReservations);
  ASSERT_TRUE(ledger_->Release(first.reservation_id).status.ok());
  EXPECT_TRUE(ledger_->Reserve(Hold(Text("acme", "a"))).status.ok());
}

// --- idempotency ---

TEST_F(LedgerTest, IdempotentRetryReturnsTheOriginal) {
  Create("acme", 10);
  ChargeResult a = ledger_->Charge(Text("acme", "alice", 2, "req-1"));
  ASSERT_TRUE(a.status.ok());
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 1)).status.ok());
  ChargeResult b = ledger_->Charge(Text("acme", "alice", 2, "req-1"));
  ASSERT_TRUE(b.status.ok());
  EXPECT_TRUE(b.replayed);
  EXPECT_EQ(b.charge_id, a.charge_id);
  EXPECT_EQ(b.cost, 2u);
  EXPECT_EQ(b.remaining, 8u) << "the original result, not today's balance";
  EXPECT_EQ(Ws("acme").used, 3u);
}

TEST_F(LedgerTest, IdempotencyConflictOnOtherParameters) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 2, "req-1")).status.ok());
  EXPECT_EQ(ledger_->Charge(Text("acme", "alice", 3, "req-1")).status.code(), Code::kIdempotencyConflict);
  EXPECT_EQ(ledger_->Charge(Text("acme", "bob", 2, "req-1")).status.code(), Code::kIdempotencyConflict);
  ChargeRequest other_model = Text("acme", "alice", 2, "req-1");
  other_model.item = Item("openai-o3");
  EXPECT_EQ(ledger_->Charge(other_model).status.code(), Code::kIdempotencyConflict);
  EXPECT_EQ(ledger_->Reserve(Hold(Text("acme", "alice", 2, "req-1"))).status.code(), Code::kIdempotencyConflict);
  EXPECT_EQ(Ws("acme").used, 2u);
  EXPECT_EQ(Ws("acme").users, 1u);
}

TEST_F(LedgerTest, IdempotencyIdsAreScopedToTheWorkspace) {
  Create("a", 10);
  Create("b", 10);
  ASSERT_TRUE(ledger_->Charge(Text("a", "u", 1, "same")).status.ok());
  ChargeResult r = ledger_->Charge(Text("b", "u", 1, "same"));
  ASSERT_TRUE(r.status.ok());
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(Ws("b").used, 1u);
}

TEST_F(LedgerTest, RefusedRequestsAreNotRemembered) {
  Create("acme", 1);
  EXPECT_EQ(ledger_->Charge(Text("acme", "u", 2, "k")).status.code(), Code::kInsufficientGenerations);
  ASSERT_TRUE(ledger_->TopUp("acme", 5).ok());
  ChargeResult r = ledger_->Charge(Text("acme", "u", 2, "k"));
  ASSERT_TRUE(r.status.ok());
  EXPECT_FALSE(r.replayed);
}

TEST_F(LedgerTest, IdempotencyWindowExpires) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "u", 1, "k")).status.ok());
  clock_.Advance(ledger_->options().idempotency_window_ms - 1);
  EXPECT_TRUE(ledger_->Charge(Text("acme", "u", 1, "k")).replayed);
  clock_.Advance(1);
  ChargeResult r = ledger_->Charge(Text("acme", "u", 1, "k"));
  ASSERT_TRUE(r.status.ok());
  EXPECT_FALSE(r.replayed);
  EXPECT_EQ(Ws("acme").used, 2u);
}

TEST_F(LedgerTest, IdempotencyCapacityForgetsTheOldest) {
  LedgerOptions opt;
  opt.idempotency_capacity = 2 * ledger::kShardCount;   // a floor of one per shard, a pool of 256
  Make(opt);
  Create("acme", kUnlimited);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(ledger_->Charge(Text("acme", "u", 1, "k" + std::to_string(i))).status.ok());
  }
  EXPECT_FALSE(ledger_->Charge(Text("acme", "u", 1, "k0")).replayed) << "k0 was evicted";
  EXPECT_TRUE(ledger_->Charge(Text("acme", "u", 1, "k299")).replayed);
  EXPECT_LE(ledger_->Totals().idempotency_entries, 2 * ledger::kShardCount);
}

TEST_F(LedgerTest, IdempotentReserve) {
  Create("acme", 10);
  ReserveResult a = ledger_->Reserve(Hold(Text("acme", "u", 4, "hold-1"), 5000));
  ASSERT_TRUE(a.status.ok());
  ReserveResult b = ledger_->Reserve(Hold(Text("acme", "u", 4, "hold-1"), 5000));
  ASSERT_TRUE(b.status.ok());
  EXPECT_TRUE(b.replayed);
  EXPECT_EQ(b.reservation_id, a.reservation_id);
  EXPECT_EQ(b.expires_at_ms, a.expires_at_ms);
  EXPECT_EQ(Ws("acme").reserved, 4u);
  EXPECT_EQ(ledger_->Reserve(Hold(Text("acme", "u", 4, "hold-1"), 6000)).status.code(),
            Code::kIdempotencyConflict);
}

// --- admin ---

TEST_F(LedgerTest, UpsertUpdatesLimitAndRegion) {
  auto created = ledger_->UpsertWorkspace("acme", 10, Region::kGlobal);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->limit, 10u);
  EXPECT_EQ(created->period, 1u);
  auto updated = ledger_->UpsertWorkspace("acme", 20, Region::kCn);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->limit, 20u);
  EXPECT_EQ(updated->region, Region::kCn);
  EXPECT_EQ(ledger_->UpsertWorkspace("acme", kMaxLimit + 1, Region::kGlobal).code(), Code::kInvalidArgument);
  EXPECT_EQ(Ws("acme").limit, 20u);
}

TEST_F(LedgerTest, LoweringTheLimitBelowUsageRefusesFurtherCharges) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "u", 8)).status.ok());
  auto w = ledger_->UpsertWorkspace("acme", 5, Region::kGlobal);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->remaining, 0u);
  EXPECT_EQ(ledger_->Charge(Text("acme", "u", 1)).status.code(), Code::kInsufficientGenerations);
  ExpectInvariants();
}

TEST_F(LedgerTest, TopUpAddsToThisPeriodOnly) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "u", 10)).status.ok());
  auto w = ledger_->TopUp("acme", 5);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->limit, 10u);       // the plan's allowance; the top-up is a grant on top
  EXPECT_EQ(w->topup, 5u);
  EXPECT_EQ(w->granted_remaining, 5u);
  EXPECT_EQ(w->remaining, 5u);
  EXPECT_TRUE(ledger_->Charge(Text("acme", "u", 5)).status.ok());
  auto reset = ledger_->ResetPeriod("acme");
  ASSERT_TRUE(reset.ok());
  EXPECT_EQ(reset->limit, 10u);
  EXPECT_EQ(reset->topup, 0u);
  EXPECT_EQ(ledger_->TopUp("acme", 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(ledger_->TopUp("nope", 1).code(), Code::kUnknownWorkspace);
  Create("free", kUnlimited);
  EXPECT_EQ(ledger_->TopUp("free", 1).code(), Code::kInvalidArgument);
}

TEST_F(LedgerTest, ResetStartsANewPeriodAndKeepsHolds) {
  Create("acme", 10);
  ASSERT_TRUE(ledger_->Charge(Text("acme", "alice", 6)).status.ok());
  ReserveResult h = ledger_->Reserve(Hold(Text("acme", "bob", 3)));
  ASSERT_TRUE(h.status.ok());
  auto w = ledger_->ResetPeriod("acme");
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w->period, 2u);
  EXPECT_EQ(w->used, 0u);
  EXPECT_EQ(w->reserved, 3u);
  EXPECT_EQ(w->remaining, 7u);
  auto users = ledger_->ListUsers("acme", Ledger::kMaxUsersPage);
  for (const UserInfo& u : users->users) EXPECT_EQ(u.used, 0u) << u.user;
  ExpectInvariants();
  ASSERT_TRUE(ledger_->Commit(h.reservation_id).status.ok());
  EXPECT_EQ(Ws("acme").used, 3u);
  EXPECT_EQ(ledger_->ResetPeriod("nope").code(), Code::kUnknownWorkspace);
}

TEST_F(LedgerTest, CapacityCeilings) {
  LedgerOptions opt;
  opt.max_workspaces = 2;
  opt.max_users_per_workspace = 2;
  Make(opt);
  Create("a", kUnlimited);
  Create("b", kUnlimited);
  EXPECT_EQ(ledger_->UpsertWorkspace("c", 1, Region::kGlobal).code(), Code::kCapacityExhausted);
  EXPECT_TRUE(ledger_->UpsertWorkspace("a", 7, Region::kGlobal).ok()) << "updates still work";
  ASSERT_TRUE(ledger_->Charge(Text("a", "u1")).status.ok());
  ASSERT_TRUE(ledger_->Charge(Text("a", "u2")).status.ok());
  EXPECT_EQ(ledger_->Charge(Text("a", "u3")).status.code(), Code::kCapacityExhausted);
  EXPECT_EQ(ledger_->SetUserLimit("a", "u3", 1).code(), Code::kCapacityExhausted);
  EXPECT_EQ(Ws("a").used, 2u);
}

TEST_F(LedgerTest, TotalsAddUp) {
  Create("a", kUnlimited);
  Create("b", 100);
  ASSERT_TRUE(ledger_->Charge(Text("a", "u", 5)).status.ok());
  ASSERT_TRUE(ledger_->Charge(Text("b", "v", 7)).status.ok());
  ASSERT_TRUE(ledger_->Reserve(Hold(Text("b", "w", 2))).status.ok());
  LedgerTotals t = ledger_->Totals();
  EXPECT_EQ(t.workspaces, 2u);
  EXPECT_EQ(t.users, 3u);
  EXPECT_EQ(t.used, 12u);
  EXPECT_EQ(t.reserved, 2u);
  EXPECT_EQ(t.open_reservations, 1u);
  EXPECT_EQ(t.limits, 100u);
  EXPECT_EQ(t.unlimited_workspaces, 1u);
}

}  // namespace
}  // namespace genledger
