// Usage history (docs/ledger.md, "Usage history"): folding, refunds, periods, replay, the
// snapshot block, the byte ceiling.
#include <gtest/gtest.h>

#include <map>
#include <string>
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

std::vector<Record> Drain(Ledger& l) {
  std::vector<Record> out;
  EXPECT_TRUE(LedgerLog::DrainLog(l, [&](uint8_t type, std::string_view payload) { out.push_back({type, std::string(payload)}); }).ok());
  return out;
}

void ReplayInto(Ledger& l, const std::vector<Record>& records) {
  for (size_t i = 0; i < records.size(); ++i) {
    Status st = LedgerLog::ApplyLogRecord(l, records[i].type, records[i].payload);
    ASSERT_TRUE(st.ok()) << "record " << i << " (" << ledger::RecordTypeName(records[i].type) << "): " << st.ToString();
  }
}

// A report as text, for whole-report comparisons: "key|key=used/charges;..." and the totals.
std::string Text(const Result<UsageReport>& r) {
  if (!r.ok()) return "error: " + r.status().ToString();
  std::string s = "period " + std::to_string(r->period) + " total " + std::to_string(r->used) + "/" +
                  std::to_string(r->charges) + ":";
  for (const UsageReportRow& row : r->rows) {
    for (const UsageKeyPart& k : row.key) s += (k.null ? std::string("null") : k.text) + "|";
    s += "=" + std::to_string(row.used) + "/" + std::to_string(row.charges) + ";";
  }
  return s;
}

UsageQuery Q(std::vector<UsageDim> dims, UsageQuery::Which which = UsageQuery::Which::kCurrent, uint64_t n = 0) {
  UsageQuery q;
  q.group_by = std::move(dims);
  q.which = which;
  q.period = n;
  return q;
}

class UsageHistoryTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make(uint64_t history_bytes = uint64_t(1) << 30) {
    LedgerOptions opt;
    opt.clock = &clock_;
    opt.usage_history_bytes = history_bytes;
    opt.refund_window_ms = 30ull * 24 * 3600 * 1000;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  ChargeRequest Req(std::string_view ws, std::string_view user, std::string_view model, uint64_t qty) {
    ChargeRequest r{ws, user, Catalog::Default()->Find(model), {}, {}};
    r.usage.quantity = qty;
    return r;
  }
  uint64_t Charge(Ledger& l, std::string_view user, std::string_view model, uint64_t qty, std::string_view ws = "acme") {
    ChargeResult r = l.Charge(Req(ws, user, model, qty));
    EXPECT_TRUE(r.status.ok()) << r.status.ToString();
    return r.charge_id;
  }
  // Every grouping of every kept period, as text.
  std::string All(const Ledger& l, std::string_view ws = "acme") {
    std::string s;
    const std::vector<std::vector<UsageDim>> groupings = {
        {UsageDim::kUser}, {UsageDim::kModel}, {UsageDim::kCategory}, {UsageDim::kDay},
        {UsageDim::kUser, UsageDim::kModel}, {UsageDim::kModel, UsageDim::kDay}, {UsageDim::kDay, UsageDim::kCategory}};
    const uint64_t current = l.GetWorkspace(ws)->period;
    for (uint64_t p = current >= 3 ? current - 3 : 1; p <= current; ++p) {
      for (const auto& g : groupings) s += Text(l.GetUsage(ws, Q(g, UsageQuery::Which::kNumber, p))) + "\n";
    }
    return s;
  }
  ManualClock clock_;   // 2023-11-14 22:13:20 UTC
};

TEST_F(UsageHistoryTest, ChargesFoldByUserModelCategoryAndDay) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  Charge(*l, "alice", "openai-gpt-4o", 5);
  Charge(*l, "alice", "openai-gpt-4o", 2);
  Charge(*l, "bob", "stable-diffusion", 3);
  clock_.Advance(2 * 3600 * 1000);   // 2023-11-15
  Charge(*l, "bob", "openai-gpt-4o", 1);
  Charge(*l, "carol", "stable-diffusion", 3);

  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser}))),
            "period 1 total 14/5:alice|=7/2;bob|=4/2;carol|=3/1;");
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kModel}))),
            "period 1 total 14/5:openai-gpt-4o|=8/3;stable-diffusion|=6/2;");
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kCategory}))), "period 1 total 14/5:text|=8/3;image|=6/2;");
  // Day rows by day ascending, whatever their used.
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kDay}))), "period 1 total 14/5:2023-11-14|=10/3;2023-11-15|=4/2;");
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser, UsageDim::kModel}))),
            "period 1 total 14/5:alice|openai-gpt-4o|=7/2;bob|stable-diffusion|=3/1;carol|stable-diffusion|=3/1;"
            "bob|openai-gpt-4o|=1/1;");
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kModel, UsageDim::kDay}))),
            "period 1 total 14/5:openai-gpt-4o|2023-11-14|=7/2;stable-diffusion|2023-11-14|=3/1;"
            "stable-diffusion|2023-11-15|=3/1;openai-gpt-4o|2023-11-15|=1/1;");
  // The totals are the workspace's used.
  EXPECT_EQ(l->GetWorkspace("acme")->used, 14u);
}

TEST_F(UsageHistoryTest, QueryErrors) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  EXPECT_EQ(l->GetUsage("nope", Q({UsageDim::kUser})).status().code(), Code::kUnknownWorkspace);
  EXPECT_EQ(l->GetUsage("acme", Q({})).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kDay, UsageDim::kDay})).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kPrevious)).status().code(), Code::kNotFound);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kNumber, 2)).status().code(), Code::kNotFound);
  // A workspace nobody charged: a kept period with no rows.
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser}))), "period 1 total 0/0:");
}

TEST_F(UsageHistoryTest, RefundsSubtractFromTheChargesRowsInTheirPeriod) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  const uint64_t a1 = Charge(*l, "alice", "openai-gpt-4o", 5);
  Charge(*l, "alice", "stable-diffusion", 2);
  ASSERT_TRUE(l->Refund(a1).status.ok());
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser, UsageDim::kModel}))),
            "period 1 total 2/1:alice|stable-diffusion|=2/1;");
  // A charge of period 1 refunded in period 2 comes out of period 1's rows.
  const uint64_t b1 = Charge(*l, "bob", "openai-gpt-4o", 4);
  ASSERT_TRUE(l->ResetPeriod("acme").ok());
  Charge(*l, "bob", "openai-gpt-4o", 1);
  ASSERT_TRUE(l->Refund(b1).status.ok());
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kPrevious))),
            "period 1 total 2/1:alice|=2/1;");
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser}))), "period 2 total 1/1:bob|=1/1;");
}

TEST_F(UsageHistoryTest, CommitsFoldUnderTheReservedModel) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ReserveRequest rr;
  rr.charge = Req("acme", "alice", "stable-diffusion", 4);
  ReserveResult res = l->Reserve(rr);
  ASSERT_TRUE(res.status.ok());
  Usage actual;
  actual.quantity = 3;
  CommitResult c = l->Commit(res.reservation_id, actual);
  ASSERT_TRUE(c.status.ok());
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kModel, UsageDim::kUser}))),
            "period 1 total 3/1:stable-diffusion|alice|=3/1;");
  ASSERT_TRUE(l->Refund(c.charge_id).status.ok());
  EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kModel}))), "period 1 total 0/0:");
}

TEST_F(UsageHistoryTest, ANewPeriodKeepsThePrevious3) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  for (uint64_t p = 1; p <= 5; ++p) {
    Charge(*l, "alice", "openai-gpt-4o", p);
    if (p < 5) {
      ASSERT_TRUE(l->ResetPeriod("acme").ok());
    }
  }
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kNumber, 1)).status().code(), Code::kNotFound);
  for (uint64_t p = 2; p <= 5; ++p) {
    EXPECT_EQ(Text(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kNumber, p))),
              "period " + std::to_string(p) + " total " + std::to_string(p) + "/1:alice|=" + std::to_string(p) + "/1;");
  }
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kPrevious))->period, 4u);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kNumber, 6)).status().code(), Code::kNotFound);
}

TEST_F(UsageHistoryTest, RolloverClosesThePeriodWithItsBoundaries) {
  auto l = Make();
  WorkspaceUpdate u;
  u.limit = 100;
  u.interval = Interval::kDay;
  u.anchor_ms = clock_.NowMs();
  ASSERT_TRUE(l->UpdateWorkspace("acme", u).ok());
  Charge(*l, "alice", "openai-gpt-4o", 3);
  const WorkspaceInfo before = *l->GetWorkspace("acme");
  clock_.Advance(24 * 3600 * 1000 + 1);
  Charge(*l, "alice", "openai-gpt-4o", 1);   // applies the rollover first (type 16)
  const Result<UsageReport> prev = l->GetUsage("acme", Q({UsageDim::kUser}, UsageQuery::Which::kPrevious));
  ASSERT_TRUE(prev.ok());
  EXPECT_EQ(prev->period, before.period);
  EXPECT_EQ(prev->period_start_ms, before.period_start_ms);
  EXPECT_EQ(prev->period_end_ms, before.period_end_ms);
  EXPECT_EQ(prev->used, 3u);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}))->used, 1u);
}

TEST_F(UsageHistoryTest, ReplayRebuildsTheSameHistory) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ASSERT_TRUE(a->UpsertWorkspace("beta", kUnlimited, Region::kGlobal).ok());
  std::vector<uint64_t> charges;
  const char* models[] = {"openai-gpt-4o", "stable-diffusion", "openai-o3", "stable-diffusion-3.5-large"};
  for (int i = 0; i < 40; ++i) {
    charges.push_back(Charge(*a, "u" + std::to_string(i % 7), models[i % 4], 1 + i % 5, i % 3 ? "acme" : "beta"));
    if (i % 9 == 0) {
      clock_.Advance(7 * 3600 * 1000);
    }
    if (i == 20) { ASSERT_TRUE(a->ResetPeriod("acme").ok());
    }
  }
  ReserveRequest rr;
  rr.charge = Req("acme", "newcomer", "openai-o4-mini", 2);   // the model's first use is a reserve
  ReserveResult res = a->Reserve(rr);
  ASSERT_TRUE(res.status.ok());
  ASSERT_TRUE(a->Commit(res.reservation_id).status.ok());
  for (size_t i = 0; i < charges.size(); i += 6) ASSERT_TRUE(a->Refund(charges[i]).status.ok());
  const std::vector<Record> log = Drain(*a);
  size_t typed = 0;
  for (const Record& r : log) typed += r.type == uint8_t(ledger::RecordType::kChargeModel) ? 1 : 0;
  EXPECT_EQ(typed, charges.size());

  auto b = Make();
  ReplayInto(*b, log);
  EXPECT_EQ(All(*a), All(*b));
  EXPECT_EQ(All(*a, "beta"), All(*b, "beta"));
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  // Every type-21 record describes itself (genledger-inspect).
  for (const Record& r : log) {
    if (r.type != uint8_t(ledger::RecordType::kChargeModel)) continue;
    Result<boost::json::object> d = ledger::DescribeRecord(r.type, r.payload);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_TRUE(d->contains("model"));
  }
}

TEST_F(UsageHistoryTest, OldChargeRecordsReplayWithTheModelUnknown) {
  auto a = Make(/*history_bytes=*/0);   // off: charges are written as type 12
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  Charge(*a, "alice", "openai-gpt-4o", 5);
  EXPECT_EQ(Text(a->GetUsage("acme", Q({UsageDim::kUser}))), "period 1 total 0/0:");
  const std::vector<Record> log = Drain(*a);
  ASSERT_EQ(log.back().type, uint8_t(ledger::RecordType::kChargeCompact));
  auto b = Make();
  ReplayInto(*b, log);
  EXPECT_EQ(Text(b->GetUsage("acme", Q({UsageDim::kUser, UsageDim::kModel}))), "period 1 total 5/1:alice|null|=5/1;");
  EXPECT_EQ(Text(b->GetUsage("acme", Q({UsageDim::kCategory}))), "period 1 total 5/1:null|=5/1;");
}

TEST_F(UsageHistoryTest, SnapshotBlockRoundTrip) {
  auto a = Make();
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  for (int i = 0; i < 30; ++i) Charge(*a, "u" + std::to_string(i % 5), i % 2 ? "openai-gpt-4o" : "stable-diffusion", 1 + i % 3);
  ASSERT_TRUE(a->ResetPeriod("acme").ok());
  Charge(*a, "u1", "openai-o3", 2);
  ReserveRequest rr;
  rr.charge = Req("acme", "u2", "stable-diffusion-3.5-large", 2);
  const ReserveResult res = a->Reserve(rr);
  ASSERT_TRUE(res.status.ok());
  const std::vector<Record> log = Drain(*a);

  // b: the same state by replay, then its history dropped and loaded from a's block instead.
  auto b = Make();
  ReplayInto(*b, log);
  LedgerLog::DropUsageHistory(*b);
  EXPECT_EQ(Text(b->GetUsage("acme", Q({UsageDim::kUser}))), "period 2 total 0/0:");
  for (uint32_t shard = 0; shard < Ledger::ShardCount(); ++shard) {
    std::string block;
    LedgerLog::EncodeUsageBlock(*a, shard, block);
    ASSERT_TRUE(LedgerLog::DecodeUsageBlock(*b, shard, block).ok()) << shard;
  }
  EXPECT_EQ(All(*a), All(*b));
  // Counted again on load (vector capacities differ from grown ones, so not equal to a's).
  EXPECT_GT(b->Totals().usage_history_bytes, 0u);
  // The hold kept its model slot: its commit folds under the model in both.
  ASSERT_TRUE(a->Commit(res.reservation_id).status.ok());
  ASSERT_TRUE(b->Commit(res.reservation_id).status.ok());
  EXPECT_EQ(All(*a), All(*b));
  EXPECT_NE(All(*b).find("stable-diffusion-3.5-large|=2/1;"), std::string::npos) << All(*b);

  // Damage is refused, and nothing is installed.
  std::string block;
  const uint32_t shard = [&] {
    for (uint32_t s = 0;; ++s) {
      std::string x;
      LedgerLog::EncodeUsageBlock(*a, s, x);
      if (x.size() > 8) return s;
    }
  }();
  LedgerLog::EncodeUsageBlock(*a, shard, block);
  auto c = Make();
  ReplayInto(*c, log);
  LedgerLog::DropUsageHistory(*c);
  EXPECT_EQ(LedgerLog::DecodeUsageBlock(*c, shard, block.substr(0, block.size() - 1)).code(), Code::kCorruption);
  EXPECT_EQ(LedgerLog::DecodeUsageBlock(*c, shard, block + "x").code(), Code::kCorruption);
  std::string dup = block;
  dup[4] = char(0xFF);   // the first workspace index: out of range
  EXPECT_EQ(LedgerLog::DecodeUsageBlock(*c, shard, dup).code(), Code::kCorruption);
  EXPECT_EQ(Text(c->GetUsage("acme", Q({UsageDim::kUser}))), "period 2 total 0/0:");
}

// The whole path: SnapshotShard writes block 3 into the payload, LoadShardSection restores it.
TEST_F(UsageHistoryTest, SnapshotSectionsCarryTheHistory) {
  auto a = Make();
  ASSERT_TRUE(a->UpsertWorkspace("acme", 1000, Region::kGlobal).ok());
  ASSERT_TRUE(a->UpsertWorkspace("beta", 1000, Region::kGlobal).ok());
  for (int i = 0; i < 25; ++i) Charge(*a, "u" + std::to_string(i % 4), i % 2 ? "openai-gpt-4o" : "stable-diffusion", 1 + i % 3);
  ASSERT_TRUE(a->ResetPeriod("acme").ok());
  Charge(*a, "u1", "openai-o3", 2);
  Charge(*a, "u9", "openai-o3", 2, "beta");
  ReserveRequest rr;
  rr.charge = Req("acme", "u2", "stable-diffusion-3.5-large", 2);
  const ReserveResult res = a->Reserve(rr);
  ASSERT_TRUE(res.status.ok());
  auto b = Make();
  for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
    std::string payload;
    uint64_t record_no = 0;
    ASSERT_TRUE(LedgerLog::SnapshotShard(*a, i, payload, &record_no).ok());
    const Status st = LedgerLog::LoadShardSection(*b, i, record_no, payload);
    ASSERT_TRUE(st.ok()) << i << ": " << st.ToString();
  }
  EXPECT_EQ(All(*a), All(*b));
  EXPECT_EQ(All(*a, "beta"), All(*b, "beta"));
  EXPECT_EQ(a->StateDigest(), b->StateDigest());
  ASSERT_TRUE(b->Commit(res.reservation_id).status.ok());
  EXPECT_NE(All(*b).find("stable-diffusion-3.5-large|=2/1;"), std::string::npos) << All(*b);
}

TEST_F(UsageHistoryTest, TheCeilingFoldsNewRowsIntoOtherAndKeepsTotalsExact) {
  auto l = Make(/*history_bytes=*/4096);
  LedgerLog::EnableLog(*l);
  ASSERT_TRUE(l->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  uint64_t sum = 0;
  for (int i = 0; i < 200; ++i) {
    Charge(*l, "u" + std::to_string(i), "openai-gpt-4o", 1 + i % 4);
    sum += 1 + i % 4;
  }
  const LedgerTotals t = l->Totals();
  EXPECT_GT(t.usage_history_folded, 0u);
  EXPECT_LE(t.usage_history_bytes, 4096u);
  const Result<UsageReport> r = l->GetUsage("acme", Q({UsageDim::kUser}));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->used, sum);
  EXPECT_EQ(r->charges, 200u);
  uint64_t rows_used = 0, other_charges = 0;
  bool other = false;
  for (const UsageReportRow& row : r->rows) {
    rows_used += row.used;
    if (row.key[0].other) {
      other = true;
      other_charges = row.charges;
    }
  }
  EXPECT_TRUE(other);
  EXPECT_EQ(rows_used, sum);
  EXPECT_EQ(other_charges, t.usage_history_folded);
  // Refunding a folded charge takes it out of "(other)".
  const uint64_t id = Charge(*l, "late", "openai-gpt-4o", 3);
  ASSERT_TRUE(l->Refund(id).status.ok());
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}))->used, sum);
  // Replay with the same ceiling agrees on the totals.
  auto b = Make(4096);
  ReplayInto(*b, Drain(*l));
  EXPECT_EQ(b->GetUsage("acme", Q({UsageDim::kModel}))->used, sum);
}

TEST_F(UsageHistoryTest, OffKeepsNothing) {
  auto l = Make(0);
  ASSERT_TRUE(l->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  Charge(*l, "alice", "openai-gpt-4o", 5);
  EXPECT_EQ(l->Totals().usage_history_bytes, 0u);
  EXPECT_EQ(l->GetUsage("acme", Q({UsageDim::kUser}))->rows.size(), 0u);
}

}  // namespace
}  // namespace genledger
