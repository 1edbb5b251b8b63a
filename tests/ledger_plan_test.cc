// Subscriptions in the ledger: periods that roll over by themselves, grants and their burn order,
// refunds to their sources, plan changes and overage modes (docs/ledger.md, "Subscriptions").
#include <gtest/gtest.h>

#include <string>

#include "genledger/ledger.h"
#include "genledger/period.h"
#include "ledger/ledger_log.h"
#include "ledger/log_record.h"

namespace genledger {
namespace {

uint64_t T(std::string_view rfc3339) {
  Result<uint64_t> t = ParseTimeMs(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return t.ok() ? *t : 0;
}

class PlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.Set(T("2026-01-31T12:00:00Z"));
    ledger_ = std::make_unique<Ledger>(Catalog::Default(), Options());
  }
  // Refunds are tried days after their charges here.
  LedgerOptions Options() {
    LedgerOptions opt;
    opt.clock = &clock_;
    opt.refund_window_ms = uint64_t(90) * 24 * 3600 * 1000;
    return opt;
  }
  ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t messages) {
    ChargeRequest r{ws, user, ledger_->CurrentCatalog()->Find("openai-gpt-4o"), {}, {}};
    r.usage.quantity = messages;   // 1 generation per message
    return r;
  }
  ChargeResult Charge(std::string_view ws, uint64_t n, std::string_view user = "alice") {
    return ledger_->Charge(Text(ws, user, n));
  }
  WorkspaceInfo Ws(std::string_view id) {
    auto info = ledger_->GetWorkspace(id);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : WorkspaceInfo{};
  }
  void Monthly(std::string_view ws, uint64_t limit, std::string_view anchor) {
    WorkspaceUpdate u;
    u.limit = limit;
    u.interval = Interval::kMonth;
    u.anchor_ms = T(anchor);
    ASSERT_TRUE(ledger_->UpdateWorkspace(ws, u).ok());
  }
  uint32_t Grant(std::string_view ws, uint64_t amount, uint64_t expires = 0, uint16_t priority = 100,
                 GrantSource source = GrantSource::kTopup) {
    GrantRequest g;
    g.amount = amount;
    g.expires_at_ms = expires;
    g.priority = priority;
    g.source = source;
    auto r = ledger_->AddGrant(ws, g);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->grant : 0;
  }
  uint64_t GrantRemaining(std::string_view ws, uint32_t grant) {
    auto gs = ledger_->ListGrants(ws);
    EXPECT_TRUE(gs.ok());
    for (const GrantInfo& g : *gs) {
      if (g.grant == grant) return g.remaining;
    }
    return UINT64_MAX;   // gone
  }
  void ExpectInvariants() {
    Status st = ledger_->CheckInvariants();
    EXPECT_TRUE(st.ok()) << st.ToString();
  }

  ManualClock clock_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(PlanTest, MonthlyPeriodRollsOverByItselfWithClampedDays) {
  Monthly("acme", 1000, "2026-01-31T00:00:00Z");
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.period_start_ms, T("2026-01-31T00:00:00Z"));
  EXPECT_EQ(w.period_end_ms, T("2026-02-28T00:00:00Z"));
  ASSERT_TRUE(Charge("acme", 300).status.ok());
  EXPECT_EQ(Ws("acme").remaining, 700u);
  // At the boundary, without any reset call, the next operation finds a new period.
  clock_.Set(T("2026-02-28T00:00:00Z"));
  w = Ws("acme");
  EXPECT_EQ(w.used, 0u);
  EXPECT_EQ(w.period, 2u);
  EXPECT_EQ(w.remaining, 1000u);
  EXPECT_EQ(w.period_end_ms, T("2026-03-31T00:00:00Z"));
  // Downtime over several boundaries: one rollover, period grows by the number passed.
  clock_.Set(T("2026-06-15T00:00:00Z"));
  w = Ws("acme");
  EXPECT_EQ(w.period, 5u);   // three more boundaries: Mar 31, Apr 30, May 31
  EXPECT_EQ(w.period_start_ms, T("2026-05-31T00:00:00Z"));
  EXPECT_EQ(w.period_end_ms, T("2026-06-30T00:00:00Z"));
  ExpectInvariants();
}

TEST_F(PlanTest, SweeperRollsOverIdleWorkspaces) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  ASSERT_TRUE(Charge("acme", 10).status.ok());
  clock_.Set(T("2026-02-28T00:00:01Z"));
  ledger_->ExpireReservations();   // the sweep, as the server runs it every second
  // Visible without advancing through a read: the sweep applied it.
  EXPECT_EQ(ledger_->Totals().used, 0u);
}

TEST_F(PlanTest, BurnOrderPromoBeforePlanBeforeNonExpiringPack) {
  Monthly("acme", 1000, "2026-01-31T00:00:00Z");
  const uint32_t pack = Grant("acme", 500);                                          // never expires
  const uint32_t promo = Grant("acme", 100, T("2026-02-14T00:00:00Z"), 100, GrantSource::kPromo);
  EXPECT_EQ(Ws("acme").remaining, 1600u);
  ASSERT_TRUE(Charge("acme", 150).status.ok());
  EXPECT_EQ(GrantRemaining("acme", promo), 0u);        // the promo expires first: burned first
  EXPECT_EQ(GrantRemaining("acme", 0), 950u);          // then the plan
  EXPECT_EQ(GrantRemaining("acme", pack), 500u);       // the pack last
  ASSERT_TRUE(Charge("acme", 1000).status.ok());
  EXPECT_EQ(GrantRemaining("acme", 0), 0u);
  EXPECT_EQ(GrantRemaining("acme", pack), 450u);
  EXPECT_EQ(Charge("acme", 451).status.code(), Code::kInsufficientGenerations);
  EXPECT_EQ(Ws("acme").remaining, 450u);
  ExpectInvariants();
}

TEST_F(PlanTest, LowerPriorityNumberBurnsFirst) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  const uint32_t first = Grant("acme", 10, 0, 5);
  ASSERT_TRUE(Charge("acme", 4).status.ok());
  EXPECT_EQ(GrantRemaining("acme", first), 6u);
  EXPECT_EQ(GrantRemaining("acme", 0), 100u);
}

TEST_F(PlanTest, RefundReturnsToSourcesAndExpiredGrantBecomesRefundGrant) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  const uint32_t promo = Grant("acme", 5, T("2026-02-10T00:00:00Z"), 100, GrantSource::kPromo);
  ChargeResult c = Charge("acme", 8);   // 5 from the promo, 3 from the plan
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(GrantRemaining("acme", promo), 0u);
  ASSERT_TRUE(ledger_->Refund(c.charge_id).status.ok());
  EXPECT_EQ(GrantRemaining("acme", promo), 5u);
  EXPECT_EQ(GrantRemaining("acme", 0), 10u);
  EXPECT_EQ(Ws("acme").used, 0u);
  // Drawn again, then the promo expires before the refund: its part becomes a refund grant.
  ChargeResult d = Charge("acme", 8);
  clock_.Set(T("2026-02-10T00:00:00Z"));
  EXPECT_EQ(GrantRemaining("acme", promo), UINT64_MAX);
  RefundResult rd = ledger_->Refund(d.charge_id);
  ASSERT_TRUE(rd.status.ok()) << rd.status.ToString();
  auto gs = ledger_->ListGrants("acme");
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 2u);
  EXPECT_EQ((*gs)[1].source, GrantSource::kRefund);
  EXPECT_EQ((*gs)[1].remaining, 5u);
  EXPECT_EQ((*gs)[1].expires_at_ms, T("2026-02-28T00:00:00Z"));
  EXPECT_EQ(Ws("acme").remaining, 15u);
  ExpectInvariants();
}

TEST_F(PlanTest, RefundAfterBoundaryIsARefundGrantOfTheNewPeriod) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  clock_.Set(T("2026-02-27T23:59:00Z"));
  ChargeResult c = Charge("acme", 4);
  clock_.Set(T("2026-02-28T00:01:00Z"));
  RefundResult r = ledger_->Refund(c.charge_id);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  const WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.period, 2u);
  EXPECT_EQ(w.remaining, 14u);
  EXPECT_EQ(w.granted_remaining, 4u);
  // The refund grant ends with this period.
  clock_.Set(T("2026-03-31T00:00:00Z"));
  EXPECT_EQ(Ws("acme").remaining, 10u);
}

TEST_F(PlanTest, GrantExpiresMidPeriodButHoldsStayValid) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 0, Region::kGlobal).ok());
  Grant("acme", 10, T("2026-02-01T00:00:00Z"));
  ReserveRequest rr{Text("acme", "alice", 8), 0};
  rr.ttl_ms = 24 * 3600 * 1000;
  ReserveResult hold = ledger_->Reserve(rr);
  ASSERT_TRUE(hold.status.ok());
  clock_.Set(T("2026-02-01T00:00:00Z"));
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.remaining, 0u);
  EXPECT_EQ(w.overdrawn, 8u);   // the hold now counts on nothing: shown, not refused
  CommitResult c = ledger_->Commit(hold.reservation_id);
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();   // a hold is a promise
  EXPECT_EQ(Ws("acme").overdrawn, 8u);
  ExpectInvariants();
}

TEST_F(PlanTest, LimitDecreaseWaitsForTheBoundaryUnlessNow) {
  Monthly("acme", 100, "2026-01-31T00:00:00Z");
  WorkspaceUpdate lower;
  lower.limit = 40;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", lower).ok());
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.limit, 100u);
  ASSERT_TRUE(w.pending_limit.has_value());
  EXPECT_EQ(*w.pending_limit, 40u);
  clock_.Set(T("2026-02-28T00:00:00Z"));
  w = Ws("acme");
  EXPECT_EQ(w.limit, 40u);
  EXPECT_FALSE(w.pending_limit.has_value());
  lower.limit = 30;
  lower.limit_now = true;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", lower).ok());
  EXPECT_EQ(Ws("acme").limit, 30u);
  WorkspaceUpdate raise;
  raise.limit = 50;   // an increase applies now
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", raise).ok());
  EXPECT_EQ(Ws("acme").remaining, 50u);
}

TEST_F(PlanTest, RolloverMakesAGrantFromUnusedAllowance) {
  Monthly("acme", 100, "2026-01-31T00:00:00Z");
  WorkspaceUpdate u;
  u.rollover = RolloverSpec{30, 1};
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ASSERT_TRUE(Charge("acme", 80).status.ok());   // 20 unused
  clock_.Set(T("2026-02-28T00:00:00Z"));
  auto gs = ledger_->ListGrants("acme");
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 2u);
  EXPECT_EQ((*gs)[1].source, GrantSource::kRollover);
  EXPECT_EQ((*gs)[1].amount, 20u);
  EXPECT_EQ((*gs)[1].expires_at_ms, T("2026-03-31T00:00:00Z"));
  EXPECT_EQ(Ws("acme").remaining, 120u);
  clock_.Set(T("2026-03-31T00:00:00Z"));   // nothing used: 100 unused, capped at 30
  gs = ledger_->ListGrants("acme");
  ASSERT_EQ(gs->size(), 2u);
  EXPECT_EQ((*gs)[1].amount, 30u);
}

TEST_F(PlanTest, SoftOverageCountsAndStopsAtItsLimit) {
  WorkspaceUpdate u;
  u.limit = 10;
  u.overage_mode = OverageMode::kSoft;
  u.overage_limit = 5;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ChargeResult a = Charge("acme", 12);
  ASSERT_TRUE(a.status.ok());
  EXPECT_EQ(a.overage, 2u);
  EXPECT_EQ(Ws("acme").overage, 2u);
  EXPECT_EQ(Charge("acme", 4).status.code(), Code::kInsufficientGenerations);   // 2 + 4 > 5
  ChargeResult b = Charge("acme", 3);
  ASSERT_TRUE(b.status.ok());
  EXPECT_EQ(Ws("acme").overage, 5u);
  ASSERT_TRUE(ledger_->Refund(b.charge_id).status.ok());
  EXPECT_EQ(Ws("acme").overage, 2u);
  ExpectInvariants();
}

TEST_F(PlanTest, ShadowModeRefusesNothingAndSaysWhatHardWould) {
  WorkspaceUpdate u;
  u.limit = 1;
  u.overage_mode = OverageMode::kShadow;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "alice", 1).ok());
  ChargeResult a = Charge("acme", 1);
  EXPECT_TRUE(a.status.ok());
  EXPECT_EQ(a.would_refuse, Code::kOk);
  ChargeResult b = Charge("acme", 5);
  EXPECT_TRUE(b.status.ok());
  EXPECT_EQ(b.would_refuse, Code::kInsufficientGenerations);
  EXPECT_EQ(Ws("acme").used, 6u);
  ExpectInvariants();
}

TEST_F(PlanTest, GrantIdempotencyAndVoid) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 0, Region::kGlobal).ok());
  GrantRequest g;
  g.amount = 7;
  g.idempotency_id = "pack-1";
  auto a = ledger_->AddGrant("acme", g);
  auto b = ledger_->AddGrant("acme", g);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->grant, b->grant);
  EXPECT_TRUE(b->replayed);
  EXPECT_EQ(Ws("acme").remaining, 7u);
  g.amount = 8;
  EXPECT_EQ(ledger_->AddGrant("acme", g).status().code(), Code::kIdempotencyConflict);
  ASSERT_TRUE(ledger_->VoidGrant("acme", a->grant).ok());
  EXPECT_EQ(Ws("acme").remaining, 0u);
  EXPECT_EQ(ledger_->VoidGrant("acme", a->grant).status().code(), Code::kUnknownGrant);
  g.amount = 0;
  EXPECT_EQ(ledger_->AddGrant("acme", g).status().code(), Code::kInvalidArgument);
}

// docs/ledger.md, "Worked example", step by step.
TEST_F(PlanTest, WorkedExampleFromTheDocs) {
  clock_.Set(T("2026-01-31T00:00:00Z"));
  Monthly("acme", 1000, "2026-01-31T00:00:00Z");
  clock_.Set(T("2026-02-01T09:00:00Z"));
  const uint32_t pack = Grant("acme", 500);                                                   // gr_1
  const uint32_t promo = Grant("acme", 100, T("2026-02-14T00:00:00Z"), 100, GrantSource::kPromo);   // gr_2
  EXPECT_EQ(Ws("acme").remaining, 1600u);
  clock_.Set(T("2026-02-05T10:00:00Z"));
  ASSERT_TRUE(Charge("acme", 60).status.ok());
  EXPECT_EQ(GrantRemaining("acme", promo), 40u);
  clock_.Set(T("2026-02-14T00:00:00Z"));
  EXPECT_EQ(GrantRemaining("acme", promo), UINT64_MAX);   // expired with 40 unused
  EXPECT_EQ(Ws("acme").remaining, 1500u);
  clock_.Set(T("2026-02-20T10:00:00Z"));
  ASSERT_TRUE(Charge("acme", 1100).status.ok());
  EXPECT_EQ(GrantRemaining("acme", 0), 0u);
  EXPECT_EQ(GrantRemaining("acme", pack), 400u);
  clock_.Set(T("2026-02-27T23:59:00Z"));
  ChargeResult late = Charge("acme", 30);
  ASSERT_TRUE(late.status.ok());
  EXPECT_EQ(GrantRemaining("acme", pack), 370u);
  EXPECT_EQ(Ws("acme").remaining, 370u);
  clock_.Set(T("2026-02-28T00:00:00Z"));
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.period, 2u);
  EXPECT_EQ(w.used, 0u);
  EXPECT_EQ(w.remaining, 1370u);
  clock_.Set(T("2026-02-28T00:01:00Z"));
  ASSERT_TRUE(ledger_->Refund(late.charge_id).status.ok());   // the pack is live: back to it
  EXPECT_EQ(GrantRemaining("acme", pack), 400u);
  w = Ws("acme");
  EXPECT_EQ(w.used, 0u);
  EXPECT_EQ(w.remaining, 1400u);
  ExpectInvariants();
}

// A charge of the ended period drawn from the plan and a grant: the grant's part goes back to the
// grant, the plan's part (its period is over) becomes a refund grant.
TEST_F(PlanTest, RefundAcrossTheBoundarySplitsBetweenLiveGrantAndRefundGrant) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  const uint32_t pack = Grant("acme", 5);
  ASSERT_TRUE(Charge("acme", 8).status.ok());
  ChargeResult c = Charge("acme", 4);   // 2 from the plan, 2 from the pack
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(GrantRemaining("acme", pack), 3u);
  clock_.Set(T("2026-02-28T00:00:00Z"));
  ASSERT_TRUE(ledger_->Refund(c.charge_id).status.ok());
  EXPECT_EQ(GrantRemaining("acme", pack), 5u);
  auto gs = ledger_->ListGrants("acme");
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 3u);
  EXPECT_EQ((*gs)[1].source, GrantSource::kRefund);
  EXPECT_EQ((*gs)[1].remaining, 2u);
  EXPECT_EQ(Ws("acme").remaining, 17u);
  ExpectInvariants();
}

TEST_F(PlanTest, TopUpsShareOneGrantAndAdminGrantsAreBounded) {
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 10, Region::kGlobal).ok());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(ledger_->TopUp("acme", 1).ok());
  auto gs = ledger_->ListGrants("acme");
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 2u);   // the plan and one top-up grant of 100
  EXPECT_EQ((*gs)[1].amount, 100u);
  for (size_t i = 0; i < kMaxGrantsPerWorkspace; ++i) Grant("acme", 1);
  GrantRequest g;
  g.amount = 1;
  EXPECT_EQ(ledger_->AddGrant("acme", g).status().code(), Code::kCapacityExhausted);
  // Used-up grants make room: the list stays bounded.
  ASSERT_TRUE(Charge("acme", 100 + 10 + 64).status.ok());
  for (size_t i = 0; i < 3 * kMaxGrantsPerWorkspace; ++i) {
    Grant("acme", 1);
    ASSERT_TRUE(Charge("acme", 1).status.ok());
  }
  gs = ledger_->ListGrants("acme");
  EXPECT_LE(gs->size(), kMaxGrantsPerWorkspace + 2);
  ExpectInvariants();
}

// Found by the reference model (tests/ledger_model_test.cc): soft/shadow overage is drawn from no
// source, so it must not also be counted against the plan allowance. A refund of a plan-drawn
// charge gives the plan back all of it, and the overage stays what it was.
TEST_F(PlanTest, RefundOfAPlanChargeAfterOverageGivesThePlanBackInFull) {
  WorkspaceUpdate u;
  u.limit = 10;
  u.overage_mode = OverageMode::kSoft;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ChargeResult a = Charge("acme", 10);   // the whole plan
  ChargeResult b = Charge("acme", 5);    // beyond it: overage 5
  ASSERT_TRUE(a.status.ok() && b.status.ok());
  EXPECT_EQ(b.overage, 5u);
  ASSERT_TRUE(ledger_->Refund(a.charge_id).status.ok());   // a failed generation is free
  WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.used, 5u);
  EXPECT_EQ(w.overage, 5u);
  EXPECT_EQ(w.remaining, 10u);
  EXPECT_EQ(GrantRemaining("acme", 0), 10u);
  EXPECT_EQ(w.overdrawn, 5u);
  // Using the plan again costs no more overage.
  ChargeResult c = Charge("acme", 10);
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.overage, 0u);
  EXPECT_EQ(Ws("acme").overage, 5u);
  ExpectInvariants();
}

// The same rule for a limit increase: "remaining grows by the difference", the overage stays.
TEST_F(PlanTest, LimitIncreaseAfterOverageGrowsRemainingByTheDifference) {
  WorkspaceUpdate u;
  u.limit = 10;
  u.overage_mode = OverageMode::kShadow;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  ASSERT_TRUE(Charge("acme", 15).status.ok());
  EXPECT_EQ(Ws("acme").remaining, 0u);
  WorkspaceUpdate raise;
  raise.limit = 20;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", raise).ok());
  const WorkspaceInfo w = Ws("acme");
  EXPECT_EQ(w.remaining, 10u);
  EXPECT_EQ(w.overage, 5u);
  ExpectInvariants();
}

// Found by the reference model: a release is an operation on the workspace, so a boundary due
// before it is applied first, and the remaining it answers is the new period's.
TEST_F(PlanTest, ReleaseAfterABoundaryAnswersTheNewPeriodsRemaining) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  clock_.Set(T("2026-02-27T23:00:00Z"));
  ReserveRequest rr{Text("acme", "alice", 4), 0};
  rr.ttl_ms = 24 * 3600 * 1000;
  ReserveResult hold = ledger_->Reserve(rr);
  ASSERT_TRUE(hold.status.ok());
  ASSERT_TRUE(Charge("acme", 6).status.ok());
  clock_.Set(T("2026-02-28T00:00:01Z"));
  ReleaseResult r = ledger_->Release(hold.reservation_id);
  ASSERT_TRUE(r.status.ok());
  EXPECT_EQ(r.remaining, 10u);
  EXPECT_EQ(Ws("acme").remaining, 10u);
}

// Found by the reference model: a grant ending with the period shows the period's end as its
// expiry, and none (0) once the schedule is cleared, like the plan entry; not the end of the
// period it was made in.
TEST_F(PlanTest, GrantEndingWithThePeriodShowsNoExpiryWithoutASchedule) {
  Monthly("acme", 10, "2026-01-31T00:00:00Z");
  ChargeResult c = Charge("acme", 4);
  clock_.Set(T("2026-02-28T00:01:00Z"));
  ASSERT_TRUE(ledger_->Refund(c.charge_id).status.ok());   // a refund grant ending with period 2
  WorkspaceUpdate none;
  none.interval = Interval::kNone;
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", none).ok());
  auto gs = ledger_->ListGrants("acme");
  ASSERT_TRUE(gs.ok());
  ASSERT_EQ(gs->size(), 2u);
  EXPECT_EQ((*gs)[0].expires_at_ms, 0u);
  EXPECT_EQ((*gs)[1].source, GrantSource::kRefund);
  EXPECT_EQ((*gs)[1].expires_at_ms, 0u);
}

// Found by wal_fuzz: a forged type-11 refund (a plan-only refund) larger than what the plan gave
// would leave what grants covered above `used`; replay refuses it as corruption.
TEST_F(PlanTest, ReplayRefusesAPlanRefundBeyondThePlansPart) {
  LedgerLog::EnableLog(*ledger_);
  ASSERT_TRUE(ledger_->UpsertWorkspace("acme", 10, Region::kGlobal).ok());
  Grant("acme", 5, 0, 0);               // burns before the plan
  ASSERT_TRUE(Charge("acme", 7).status.ok());   // 5 from the grant, 2 from the plan
  std::string log;
  ASSERT_TRUE(LedgerLog::CollectLog(*ledger_, log).ok());
  Ledger replayed(Catalog::Default(), Options());
  Status st;
  uint64_t last_no = 0;
  LedgerLog::ForEachBufferedRecord(log, [&](uint8_t type, std::string_view payload) {
    if (st.ok()) st = LedgerLog::ApplyLogRecord(replayed, type, payload);
    uint32_t shard = 0;
    (void)LedgerLog::ParseLogRecordPrefix(payload, &shard, &last_no);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  // refund: shard u16, record_no u64, charge seq u64, ws u32, user u32, cost u64: cost 7 > plan's 2.
  std::string rec;
  auto put = [&rec](auto v) { rec.append(reinterpret_cast<const char*>(&v), sizeof v); };
  uint32_t shard = 0;
  ASSERT_TRUE(LedgerLog::ParseLogRecordPrefix(log.substr(ledger::kBufferedHeader), &shard, &last_no));
  put(uint16_t(shard));
  put(uint64_t(3 + 1));   // the workspace's shard has records 1-3 (create, grant, charge)
  put(uint64_t(1));
  put(uint32_t(0));
  put(uint32_t(0));
  put(uint64_t(7));
  EXPECT_EQ(LedgerLog::ApplyLogRecord(replayed, uint8_t(ledger::RecordType::kRefund), rec).code(), Code::kCorruption);
  EXPECT_TRUE(replayed.CheckInvariants().ok());
}

// Everything above, through the log: a ledger rebuilt from the records has the same state.
TEST_F(PlanTest, ReplayRebuildsTheSameState) {
  LedgerLog::EnableLog(*ledger_);
  Monthly("acme", 100, "2026-01-31T00:00:00Z");
  WorkspaceUpdate u;
  u.rollover = RolloverSpec{30, 2};
  ASSERT_TRUE(ledger_->UpdateWorkspace("acme", u).ok());
  Grant("acme", 50);
  Grant("acme", 20, T("2026-02-10T00:00:00Z"), 100, GrantSource::kPromo);
  ChargeResult c = Charge("acme", 90);
  ASSERT_TRUE(ledger_->TopUp("acme", 5).ok());
  clock_.Set(T("2026-02-11T00:00:00Z"));
  ASSERT_TRUE(ledger_->Refund(c.charge_id).status.ok());
  ASSERT_TRUE(Charge("acme", 60).status.ok());
  clock_.Set(T("2026-03-01T00:00:00Z"));
  ledger_->ExpireReservations();
  ASSERT_TRUE(Charge("acme", 3).status.ok());
  std::string log;
  ASSERT_TRUE(LedgerLog::CollectLog(*ledger_, log).ok());

  Ledger replayed(Catalog::Default(), Options());
  Status st;
  LedgerLog::ForEachBufferedRecord(log, [&](uint8_t type, std::string_view payload) {
    if (st.ok()) st = LedgerLog::ApplyLogRecord(replayed, type, payload);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(replayed.StateDigest(), ledger_->StateDigest());
  EXPECT_TRUE(replayed.CheckInvariants().ok());
}

// docs/events.md, "Revisions": + 1 per WAL record naming the workspace, none for refusals and
// reads, the same after replay and after a snapshot round trip.
TEST_F(PlanTest, RevisionCountsEveryRecordOfTheWorkspace) {
  LedgerLog::EnableLog(*ledger_);
  Monthly("acme", 100, "2026-01-31T00:00:00Z");
  EXPECT_EQ(Ws("acme").rev, 1u);
  ChargeResult c = Charge("acme", 10);
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.rev, 2u);
  EXPECT_EQ(Charge("acme", 500).status.code(), Code::kInsufficientGenerations);
  EXPECT_TRUE(ledger_->Quote(Text("acme", "alice", 1)).status.ok());
  EXPECT_EQ(Ws("acme").rev, 2u);   // a refusal and a quote change nothing
  Grant("acme", 20);
  ReserveRequest rq{Text("acme", "bob", 5), 0};
  ReserveResult rs = ledger_->Reserve(rq);
  ASSERT_TRUE(rs.status.ok());
  EXPECT_EQ(rs.rev, 4u);
  EXPECT_EQ(ledger_->Release(rs.reservation_id).rev, 5u);
  EXPECT_EQ(ledger_->Refund(c.charge_id).rev, 6u);
  // The first charge after the boundary writes the rollover and then the charge: two.
  clock_.Set(T("2026-03-01T00:00:00Z"));
  c = Charge("acme", 1);
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.rev, 8u);
  ASSERT_TRUE(ledger_->SetUserLimit("acme", "carol", 5).ok());
  EXPECT_EQ(Ws("acme").rev, 9u);

  std::string log;
  ASSERT_TRUE(LedgerLog::CollectLog(*ledger_, log).ok());
  uint64_t records = 0;
  LedgerLog::ForEachBufferedRecord(log, [&](uint8_t, std::string_view) { ++records; });
  EXPECT_EQ(records, Ws("acme").rev);   // acme is the only workspace: every record is one of its

  Ledger replayed(Catalog::Default(), Options());
  Status st;
  LedgerLog::ForEachBufferedRecord(log, [&](uint8_t type, std::string_view payload) {
    if (st.ok()) st = LedgerLog::ApplyLogRecord(replayed, type, payload);
  });
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(replayed.GetWorkspace("acme")->rev, 9u);

  Ledger loaded(Catalog::Default(), Options());
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    std::string payload;
    uint64_t no = 0;
    ASSERT_TRUE(LedgerLog::SnapshotShard(*ledger_, i, payload, &no).ok());
    ASSERT_TRUE(LedgerLog::LoadShardSection(loaded, i, no, payload).ok());
  }
  EXPECT_EQ(loaded.GetWorkspace("acme")->rev, 9u);
  EXPECT_EQ(loaded.StateDigest(), ledger_->StateDigest());
}

}  // namespace
}  // namespace genledger
