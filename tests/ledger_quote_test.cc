// Ledger::Quote's "how much can I afford" (issue 14 §4): affordable and the largest usage that fits
// the workspace (in its overage mode) and the user's cap, exact against what a charge then does.
#include <gtest/gtest.h>

#include <string>

#include "genledger/ledger.h"
#include "genledger/period.h"

namespace genledger {
namespace {

class QuoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clock_.Set(*ParseTimeMs("2026-01-31T12:00:00Z"));
    LedgerOptions opt;
    opt.clock = &clock_;
    ledger_ = std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  // gpt-4o: 1 generation per message.
  ChargeRequest Text(std::string_view ws, uint64_t messages, std::string_view user = "alice") {
    ChargeRequest r{ws, user, ledger_->CurrentCatalog()->Find("openai-gpt-4o"), {}, {}};
    r.usage.quantity = messages;
    return r;
  }
  // runway-gen4-alpha-turbo: 0.33 generations per second of each output, rounded up per output.
  ChargeRequest Video(std::string_view ws, uint64_t seconds_milli, uint32_t outputs) {
    ChargeRequest r{ws, "alice", ledger_->CurrentCatalog()->Find("runway-gen4-alpha-turbo"), {}, {}};
    r.usage.seconds_milli = seconds_milli;
    r.usage.outputs = outputs;
    return r;
  }
  void Update(std::string_view ws, const WorkspaceUpdate& u) {
    auto r = ledger_->UpdateWorkspace(ws, u);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  void Limit(std::string_view ws, uint64_t limit) {
    WorkspaceUpdate u;
    u.limit = limit;
    Update(ws, u);
  }
  void Mode(std::string_view ws, OverageMode mode, uint64_t overage_limit = kUnlimited) {
    WorkspaceUpdate u;
    u.overage_mode = mode;
    u.overage_limit = overage_limit;
    Update(ws, u);
  }

  ManualClock clock_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(QuoteTest, HardModeBoundaryIsExact) {
  Limit("w", 10);
  ASSERT_TRUE(ledger_->Charge(Text("w", 3)).status.ok());
  ChargeResult q = ledger_->Quote(Text("w", 7));
  ASSERT_TRUE(q.status.ok()) << q.status.ToString();
  EXPECT_EQ(q.cost, 7u);
  EXPECT_TRUE(q.affordable);
  EXPECT_EQ(q.max_usage, 7u);
  EXPECT_EQ(q.user_remaining, kUnlimited);
  q = ledger_->Quote(Text("w", 8));
  EXPECT_FALSE(q.affordable);
  EXPECT_EQ(q.max_usage, 7u);
  // What the quote said is what a charge does.
  EXPECT_EQ(ledger_->Charge(Text("w", 8)).status.code(), Code::kInsufficientGenerations);
  EXPECT_TRUE(ledger_->Charge(Text("w", 7)).status.ok());
  q = ledger_->Quote(Text("w", 1));
  EXPECT_FALSE(q.affordable);
  EXPECT_EQ(q.max_usage, 0u);
}

TEST_F(QuoteTest, UserCapBoundsTheMaximum) {
  Limit("w", 100);
  ASSERT_TRUE(ledger_->SetUserLimit("w", "alice", 5).ok());
  ASSERT_TRUE(ledger_->Charge(Text("w", 2)).status.ok());
  ChargeResult q = ledger_->Quote(Text("w", 4));
  EXPECT_FALSE(q.affordable);
  EXPECT_EQ(q.user_remaining, 3u);
  EXPECT_EQ(q.max_usage, 3u);
  EXPECT_EQ(ledger_->Charge(Text("w", 4)).status.code(), Code::kUserLimitExceeded);
  // Another user has no cap: the workspace bounds it.
  q = ledger_->Quote(Text("w", 4, "bob"));
  EXPECT_TRUE(q.affordable);
  EXPECT_EQ(q.max_usage, 98u);
}

TEST_F(QuoteTest, PerSecondMaximumFitsAndOneMillisecondMoreDoesNot) {
  Limit("w", 10);
  ChargeRequest ask = Video("w", 0, 2);   // only the maximum, for 2 outputs
  ChargeResult q = ledger_->Quote(ask);
  ASSERT_TRUE(q.status.ok()) << q.status.ToString();
  EXPECT_EQ(q.cost, 0u);
  EXPECT_FALSE(q.affordable);
  // 5 generations per output: floor(5 x 1,000,000 / 330) ms.
  EXPECT_EQ(q.max_usage, 15151u);
  EXPECT_EQ(ledger_->Charge(Video("w", q.max_usage + 1, 2)).status.code(), Code::kInsufficientGenerations);
  ChargeResult c = ledger_->Charge(Video("w", q.max_usage, 2));
  ASSERT_TRUE(c.status.ok()) << c.status.ToString();
  EXPECT_EQ(c.cost, 10u);
}

TEST_F(QuoteTest, MaxOnlyChecksTheRestOfTheUsage) {
  Limit("w", 10);
  ChargeRequest ask = Text("w", 0);
  ask.usage.outputs = 2;   // outputs on a per-message item
  EXPECT_EQ(ledger_->Quote(ask).status.code(), Code::kInvalidQuantity);
  ChargeResult q = ledger_->Quote(Text("w", 0));
  ASSERT_TRUE(q.status.ok());
  EXPECT_EQ(q.max_usage, 10u);
  EXPECT_EQ(ledger_->Quote(Text("nope", 0)).status.code(), Code::kUnknownWorkspace);
}

TEST_F(QuoteTest, UnlimitedWorkspaceIsBoundedByTheRequestCaps) {
  Limit("w", kUnlimited);
  ChargeResult q = ledger_->Quote(Text("w", 0));
  EXPECT_EQ(q.max_usage, kMaxQuantity);
  q = ledger_->Quote(Video("w", 0, 1));
  EXPECT_EQ(q.max_usage, kMaxSecondsMilli);
}

TEST_F(QuoteTest, SoftModeCountsTheRoomUnderTheOverageLimit) {
  Limit("w", 10);
  Mode("w", OverageMode::kSoft, 5);
  ASSERT_TRUE(ledger_->Charge(Text("w", 8)).status.ok());
  ChargeResult q = ledger_->Quote(Text("w", 7));
  EXPECT_TRUE(q.affordable);
  EXPECT_EQ(q.max_usage, 7u);   // 2 left + 5 of overage
  EXPECT_FALSE(ledger_->Quote(Text("w", 8)).affordable);
  EXPECT_EQ(ledger_->Charge(Text("w", 8)).status.code(), Code::kInsufficientGenerations);
  ChargeResult c = ledger_->Charge(Text("w", 7));
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.overage, 5u);
  EXPECT_EQ(ledger_->Quote(Text("w", 0)).max_usage, 0u);
  // Without an overage limit nothing bounds a soft workspace but the request caps.
  Mode("w", OverageMode::kSoft, kUnlimited);
  EXPECT_EQ(ledger_->Quote(Text("w", 0)).max_usage, kMaxQuantity);
}

TEST_F(QuoteTest, ShadowModeSaysWhatHardModeWould) {
  Limit("w", 10);
  Mode("w", OverageMode::kShadow);
  ASSERT_TRUE(ledger_->SetUserLimit("w", "alice", 20).ok());
  ChargeResult q = ledger_->Quote(Text("w", 11));
  EXPECT_FALSE(q.affordable);
  EXPECT_EQ(q.max_usage, 10u);
  ChargeResult c = ledger_->Charge(Text("w", 11));
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.would_refuse, Code::kInsufficientGenerations);
  Limit("w", 1000);
  c = ledger_->Charge(Text("w", 10));   // 21 > the user's cap of 20
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(c.would_refuse, Code::kUserLimitExceeded);
  const LedgerTotals t = ledger_->Totals();
  EXPECT_EQ(t.shadow_would_refuse_insufficient, 1u);
  EXPECT_EQ(t.shadow_would_refuse_user_limit, 1u);
}

TEST_F(QuoteTest, AQuoteAfterABoundaryMeetsTheNewPeriod) {
  WorkspaceUpdate u;
  u.limit = 10;
  u.interval = Interval::kDay;
  u.anchor_ms = *ParseTimeMs("2026-01-01T00:00:00Z");
  Update("w", u);
  ASSERT_TRUE(ledger_->Charge(Text("w", 10)).status.ok());
  EXPECT_FALSE(ledger_->Quote(Text("w", 1)).affordable);
  clock_.Set(*ParseTimeMs("2026-02-01T00:00:00Z"));   // the next day's boundary, nobody swept
  ChargeResult q = ledger_->Quote(Text("w", 10));
  EXPECT_TRUE(q.affordable);
  EXPECT_EQ(q.remaining, 10u);
  EXPECT_EQ(ledger_->GetWorkspace("w")->period, 2u);
}

}  // namespace
}  // namespace genledger
