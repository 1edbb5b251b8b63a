// Ledger capacities and the O(1)/O(page) paths behind cheap requests (issue 13 §1 items 1, 6, 7):
// global idempotency and refund budgets, the global user ceiling, per-shard running totals,
// users pagination and the over-limit user count.
#include "genledger/ledger.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ledger/ledger_impl.h"
#include "ledger/ledger_log.h"

namespace genledger {
namespace {

class CapacityTest : public ::testing::Test {
 protected:
  std::unique_ptr<Ledger> Make(LedgerOptions opt = {}) {
    opt.clock = &clock_;
    return std::make_unique<Ledger>(Catalog::Default(), opt);
  }
  static ChargeRequest Text(std::string_view ws, std::string_view user, uint64_t messages = 1,
                            std::string_view id = {}) {
    ChargeRequest r{ws, user, Catalog::Default()->Find("openai-gpt-4o"), {}, id};
    r.usage.quantity = messages;
    return r;
  }
  static std::string Id(int i) { return "id-" + std::to_string(i); }
  // A workspace id whose shard differs from `other`'s.
  static std::string OtherShardWorkspace(std::string_view other) {
    const auto shard_of = [](std::string_view ws) { return LedgerLog::Impl::ShardOf(LedgerLog::Impl::HashId(ws)); };
    for (int i = 0;; ++i) {
      std::string ws = "other-" + std::to_string(i);
      if (shard_of(ws) != shard_of(other)) return ws;
    }
  }
  static void Replay(Ledger& from, Ledger& into) {
    std::vector<std::pair<uint8_t, std::string>> records;
    ASSERT_TRUE(LedgerLog::DrainLog(from, [&](uint8_t t, std::string_view p) { records.emplace_back(t, std::string(p)); }).ok());
    for (const auto& [t, p] : records) ASSERT_TRUE(LedgerLog::ApplyLogRecord(into, t, p).ok());
  }
  static void SnapshotInto(const Ledger& from, Ledger& into) {
    for (uint32_t i = 0; i < Ledger::ShardCount(); ++i) {
      std::string payload;
      uint64_t record_no = 0;
      ASSERT_TRUE(LedgerLog::SnapshotShard(from, i, payload, &record_no).ok());
      ASSERT_TRUE(LedgerLog::LoadShardSection(into, i, record_no, payload).ok());
    }
  }

  ManualClock clock_;
};

// --- idempotency and refunds: global budgets ---

// The defect of issue 13: with the capacity split over 256 shards, one workspace remembered
// only 2,048 ids, and the retry of its first id was debited a second time.
TEST_F(CapacityTest, BusyWorkspaceRemembersItsFirstIdAfter5000Charges) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("busy", kUnlimited, Region::kGlobal).ok());
  const ChargeResult first = l->Charge(Text("busy", "u", 1, Id(0)));
  ASSERT_TRUE(first.status.ok());
  for (int i = 1; i < 5000; ++i) ASSERT_TRUE(l->Charge(Text("busy", "u", 1, Id(i))).status.ok());
  const ChargeResult retry = l->Charge(Text("busy", "u", 1, Id(0)));
  ASSERT_TRUE(retry.status.ok());
  EXPECT_TRUE(retry.replayed);
  EXPECT_EQ(retry.charge_id, first.charge_id);
  EXPECT_EQ(l->GetWorkspace("busy")->used, 5000u) << "the retry was debited again";
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 0u);
}

// Same for refunds: one workspace kept only 8,192 refundable charges.
TEST_F(CapacityTest, BusyWorkspaceCanRefundAnEarlyChargeAfter10000Charges) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("busy", kUnlimited, Region::kGlobal).ok());
  const ChargeResult first = l->Charge(Text("busy", "u", 3));
  ASSERT_TRUE(first.status.ok());
  for (int i = 1; i < 10000; ++i) ASSERT_TRUE(l->Charge(Text("busy", "u")).status.ok());
  const RefundResult r = l->Refund(first.charge_id);
  ASSERT_TRUE(r.status.ok()) << r.status.ToString();
  EXPECT_EQ(r.refunded, 3u);
  EXPECT_EQ(l->Totals().refund_evicted_early, 0u);
}

// One workspace may use nearly the whole budget: everything but the other shards' floors.
TEST_F(CapacityTest, OneWorkspaceMayUseNearlyTheWholeIdempotencyBudget) {
  LedgerOptions opt;
  opt.idempotency_capacity = 65536;   // floors of 16 per shard (4,096), a pool of 61,440
  auto l = Make(opt);
  ASSERT_TRUE(l->UpsertWorkspace("busy", kUnlimited, Region::kGlobal).ok());
  const int n = 65536 - 4096 - 64;    // less a chunk of slack per borrowing shard
  for (int i = 0; i < n; ++i) ASSERT_TRUE(l->Charge(Text("busy", "u", 1, Id(i))).status.ok());
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 0u);
  EXPECT_TRUE(l->Charge(Text("busy", "u", 1, Id(0))).replayed);
  // Another shard still has its floor.
  const std::string other = OtherShardWorkspace("busy");
  ASSERT_TRUE(l->UpsertWorkspace(other, kUnlimited, Region::kGlobal).ok());
  for (int i = 0; i < 16; ++i) ASSERT_TRUE(l->Charge(Text(other, "u", 1, Id(i))).status.ok());
  EXPECT_TRUE(l->Charge(Text(other, "u", 1, Id(0))).replayed);
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 0u);
}

TEST_F(CapacityTest, ExhaustedIdempotencyBudgetForgetsTheOldestAndCountsIt) {
  LedgerOptions opt;
  opt.idempotency_capacity = Ledger::ShardCount();   // one per shard, no pool
  auto l = Make(opt);
  ASSERT_TRUE(l->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(l->Charge(Text("acme", "u", 1, "k1")).status.ok());
  ASSERT_TRUE(l->Charge(Text("acme", "u", 1, "k2")).status.ok());
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 1u);
  EXPECT_TRUE(l->Charge(Text("acme", "u", 1, "k2")).replayed);
  // An entry that outlived its window is forgotten without being counted.
  clock_.Advance(opt.idempotency_window_ms + 1);
  ASSERT_TRUE(l->Charge(Text("acme", "u", 1, "k3")).status.ok());
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 1u);
}

TEST_F(CapacityTest, ExhaustedRefundBudgetForgetsTheOldestAndCountsIt) {
  LedgerOptions opt;
  opt.refund_capacity = Ledger::ShardCount();   // one per shard, no pool
  auto l = Make(opt);
  ASSERT_TRUE(l->UpsertWorkspace("acme", kUnlimited, Region::kGlobal).ok());
  const ChargeResult a = l->Charge(Text("acme", "u"));
  const ChargeResult b = l->Charge(Text("acme", "u"));
  EXPECT_EQ(l->Totals().refund_evicted_early, 1u);
  EXPECT_EQ(l->Refund(a.charge_id).status.code(), Code::kUnknownCharge);
  EXPECT_TRUE(l->Refund(b.charge_id).status.ok());
  clock_.Advance(opt.refund_window_ms + 1000);
  ASSERT_TRUE(l->Charge(Text("acme", "u")).status.ok());
  EXPECT_EQ(l->Totals().refund_evicted_early, 1u) << "an expired charge is not counted";
}

// The periodic sweep gives back what a shard no longer needs, so a workspace that is busy later,
// in another shard, finds the pool again.
TEST_F(CapacityTest, SweepReturnsExpiredEntriesToThePool) {
  LedgerOptions opt;
  opt.idempotency_capacity = 65536;
  auto l = Make(opt);
  ASSERT_TRUE(l->UpsertWorkspace("first", kUnlimited, Region::kGlobal).ok());
  for (int i = 0; i < 60000; ++i) ASSERT_TRUE(l->Charge(Text("first", "u", 1, Id(i))).status.ok());
  clock_.Advance(opt.idempotency_window_ms + 1);
  l->ExpireReservations();   // the sweep
  const std::string later = OtherShardWorkspace("first");
  ASSERT_TRUE(l->UpsertWorkspace(later, kUnlimited, Region::kGlobal).ok());
  for (int i = 0; i < 60000; ++i) ASSERT_TRUE(l->Charge(Text(later, "u", 1, Id(i))).status.ok());
  EXPECT_EQ(l->Totals().idempotency_evicted_early, 0u);
  EXPECT_TRUE(l->Charge(Text(later, "u", 1, Id(0))).replayed);
}

// Replay and snapshot load rebuild exactly what the live ledger holds, borrowed entries too.
TEST_F(CapacityTest, ReplayAndSnapshotKeepWhatTheBudgetHeld) {
  LedgerOptions opt;
  opt.idempotency_capacity = 65536;
  opt.refund_capacity = 65536;
  auto a = Make(opt);
  LedgerLog::EnableLog(*a);
  ASSERT_TRUE(a->UpsertWorkspace("busy", kUnlimited, Region::kGlobal).ok());
  std::vector<ChargeResult> charges;
  for (int i = 0; i < 20000; ++i) charges.push_back(a->Charge(Text("busy", "u", 1, Id(i))));
  auto b = Make(opt);
  Replay(*a, *b);
  EXPECT_EQ(b->StateDigest(), a->StateDigest());
  auto c = Make(opt);
  SnapshotInto(*a, *c);
  EXPECT_EQ(c->StateDigest(), a->StateDigest());
  for (Ledger* l : {b.get(), c.get()}) {
    EXPECT_TRUE(l->Charge(Text("busy", "u", 1, Id(0))).replayed);
    EXPECT_TRUE(l->Refund(charges[0].charge_id).status.ok());
    EXPECT_TRUE(l->CheckInvariants().ok());
  }
}

// --- the global user ceiling ---

TEST_F(CapacityTest, UserCeilingRefusesNewUsersAndChangesNothing) {
  LedgerOptions opt;
  opt.max_users = 3;
  auto l = Make(opt);
  LedgerLog::EnableLog(*l);
  ASSERT_TRUE(l->UpsertWorkspace("a", 100, Region::kGlobal).ok());
  ASSERT_TRUE(l->UpsertWorkspace("b", 100, Region::kGlobal).ok());
  ASSERT_TRUE(l->Charge(Text("a", "u1")).status.ok());
  ASSERT_TRUE(l->Reserve(ReserveRequest{Text("a", "u2"), 0}).status.ok());
  ASSERT_TRUE(l->SetUserLimit("b", "u3", 10).ok());
  const uint64_t before = l->StateDigest();
  EXPECT_EQ(l->Charge(Text("b", "u4", 1, "idem")).status.code(), Code::kCapacityExhausted);
  EXPECT_EQ(l->Reserve(ReserveRequest{Text("a", "u4"), 0}).status.code(), Code::kCapacityExhausted);
  EXPECT_EQ(l->SetUserLimit("a", "u4", 10).code(), Code::kCapacityExhausted);
  EXPECT_EQ(l->StateDigest(), before);
  EXPECT_EQ(l->Totals().users, 3u);
  EXPECT_TRUE(l->Charge(Text("b", "u3")).status.ok()) << "existing users still charge";
  // A replayed ledger knows how many users it has, and keeps the ceiling.
  auto r = Make(opt);
  Replay(*l, *r);
  EXPECT_EQ(r->Charge(Text("a", "u5")).status.code(), Code::kCapacityExhausted);
  auto s = Make(opt);
  SnapshotInto(*l, *s);
  EXPECT_EQ(s->Charge(Text("a", "u5")).status.code(), Code::kCapacityExhausted);
}

TEST_F(CapacityTest, RefusedReserveGivesItsUserSlotBack) {
  LedgerOptions opt;
  opt.max_users = 1;
  opt.max_open_reservations = 1;   // one per shard
  auto l = Make(opt);
  ASSERT_TRUE(l->UpsertWorkspace("a", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(l->SetUserLimit("a", "held", kUnlimited).ok());
  ASSERT_TRUE(l->Reserve(ReserveRequest{Text("a", "held"), 0}).status.ok());
  // max_users is 1, so no new user can be created at all.
  EXPECT_EQ(l->Reserve(ReserveRequest{Text("a", "new"), 0}).status.code(), Code::kCapacityExhausted);
  LedgerOptions two = opt;
  two.max_users = 2;
  auto m = Make(two);
  ASSERT_TRUE(m->UpsertWorkspace("a", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(m->Reserve(ReserveRequest{Text("a", "first"), 0}).status.ok());
  EXPECT_EQ(m->Reserve(ReserveRequest{Text("a", "second"), 0}).status.code(), Code::kTooManyReservations);
  EXPECT_TRUE(m->Charge(Text("a", "second")).status.ok()) << "the refused reserve kept its user slot";
}

// --- running totals, over-limit counts, pagination ---

// Totals() sums per-shard running totals; after any mix of operations they must equal a walk of
// every workspace and user through the public reads (and CheckInvariants' own walk).
TEST_F(CapacityTest, RunningTotalsEqualAFullWalk) {
  auto l = Make();
  LedgerLog::EnableLog(*l);
  std::mt19937_64 rng(13);
  std::vector<std::string> workspaces;
  for (int w = 0; w < 12; ++w) workspaces.push_back("ws" + std::to_string(w));
  for (const auto& w : workspaces) ASSERT_TRUE(l->UpsertWorkspace(w, w == "ws0" ? kUnlimited : 500, Region::kGlobal).ok());
  std::vector<uint64_t> charges, holds;
  auto pick = [&](size_t n) { return size_t(rng() % n); };
  for (int step = 0; step < 4000; ++step) {
    const std::string& w = workspaces[pick(workspaces.size())];
    const std::string u = "u" + std::to_string(pick(9));
    switch (pick(10)) {
      case 0: case 1: case 2: {
        ChargeResult c = l->Charge(Text(w, u, 1 + pick(7)));
        if (c.status.ok()) charges.push_back(c.charge_id);
        break;
      }
      case 3: {
        ReserveResult r = l->Reserve(ReserveRequest{Text(w, u, 1 + pick(7)), 1 + pick(5000)});
        if (r.status.ok()) holds.push_back(r.reservation_id);
        break;
      }
      case 4:
        if (!holds.empty()) {
          Usage usage;
          usage.quantity = pick(4);
          (void)l->Commit(holds[pick(holds.size())], usage);
        }
        break;
      case 5:
        if (!holds.empty()) (void)l->Release(holds[pick(holds.size())]);
        break;
      case 6:
        if (!charges.empty()) (void)l->Refund(charges[pick(charges.size())]);
        break;
      case 7: {
        const int what = int(pick(4));
        if (what == 0) (void)l->UpsertWorkspace(w, pick(3) == 0 ? kUnlimited : 100 + pick(600), Region::kGlobal);
        if (what == 1) (void)l->TopUp(w, 1 + pick(50));
        if (what == 2) (void)l->ResetPeriod(w);
        if (what == 3) (void)l->SetUserLimit(w, u, pick(3) == 0 ? kUnlimited : pick(40));
        break;
      }
      case 8:
        clock_.Advance(pick(700));
        (void)l->ExpireReservations();
        break;
      default:
        (void)l->Charge(Text(w, u, 1, "idem-" + std::to_string(pick(50))));
        break;
    }
    if (step % 97 != 0) continue;
    ASSERT_TRUE(l->CheckInvariants().ok()) << "step " << step << ": " << l->CheckInvariants().ToString();
    LedgerTotals walk;
    for (const auto& id : workspaces) {
      Result<WorkspaceInfo> info = l->GetWorkspace(id);
      ASSERT_TRUE(info.ok());
      walk.workspaces += 1;
      walk.users += info->users;
      walk.used += info->used;
      walk.reserved += info->reserved;
      if (info->limit == kUnlimited) {
        ++walk.unlimited_workspaces;
      } else {
        walk.limits += info->limit;
      }
    }
    const LedgerTotals t = l->Totals();
    EXPECT_EQ(t.workspaces, walk.workspaces);
    EXPECT_EQ(t.users, walk.users);
    EXPECT_EQ(t.used, walk.used);
    EXPECT_EQ(t.reserved, walk.reserved);
    EXPECT_EQ(t.limits, walk.limits);
    EXPECT_EQ(t.unlimited_workspaces, walk.unlimited_workspaces);
  }
  auto r = Make();
  Replay(*l, *r);
  EXPECT_TRUE(r->CheckInvariants().ok()) << r->CheckInvariants().ToString();
  EXPECT_EQ(r->Totals().used, l->Totals().used);
  EXPECT_EQ(r->Totals().limits, l->Totals().limits);
  auto s = Make();
  SnapshotInto(*l, *s);
  EXPECT_TRUE(s->CheckInvariants().ok()) << s->CheckInvariants().ToString();
  EXPECT_EQ(s->Totals().reserved, l->Totals().reserved);
}

// Admin changes know whether a user is over its limit from a count, not a rescan: the count must
// follow every way a user gets over or back under.
TEST_F(CapacityTest, OverLimitCountFollowsCapsRefundsReleasesAndResets) {
  auto l = Make();
  LedgerLog::EnableLog(*l);
  ASSERT_TRUE(l->UpsertWorkspace("acme", 100, Region::kGlobal).ok());
  const ChargeResult c = l->Charge(Text("acme", "alice", 8));
  const ReserveResult h = l->Reserve(ReserveRequest{Text("acme", "bob", 6), 0});
  ASSERT_TRUE(c.status.ok() && h.status.ok());
  auto check = [&](const char* when) {
    const Status st = l->CheckInvariants();
    EXPECT_TRUE(st.ok()) << when << ": " << st.ToString();
  };
  ASSERT_TRUE(l->SetUserLimit("acme", "alice", 5).ok());   // alice over
  ASSERT_TRUE(l->SetUserLimit("acme", "bob", 2).ok());     // bob over (his hold)
  check("caps lowered");
  ASSERT_TRUE(l->Refund(c.charge_id).status.ok());         // alice back under
  check("after the refund");
  ASSERT_TRUE(l->TopUp("acme", 1).ok());
  check("admin change after the refund");
  ASSERT_TRUE(l->Release(h.reservation_id).status.ok());   // bob back under
  ASSERT_TRUE(l->TopUp("acme", 1).ok());
  check("admin change after the release");
  // Committing a hold partly can leave a user over (the hold went, the cost came).
  ASSERT_TRUE(l->SetUserLimit("acme", "bob", kUnlimited).ok());
  const ReserveResult h2 = l->Reserve(ReserveRequest{Text("acme", "bob", 6), 0});
  ASSERT_TRUE(h2.status.ok());
  ASSERT_TRUE(l->SetUserLimit("acme", "bob", 3).ok());
  Usage four;
  four.quantity = 4;
  ASSERT_TRUE(l->Commit(h2.reservation_id, four).status.ok());
  ASSERT_TRUE(l->TopUp("acme", 1).ok());
  check("partial commit");
  ASSERT_TRUE(l->ResetPeriod("acme").ok());                // everyone's used back to 0
  ASSERT_TRUE(l->TopUp("acme", 1).ok());
  check("after the reset");
  ASSERT_TRUE(l->SetUserLimit("acme", "carol", 0).ok());   // a new user at 0 of 0 is not over
  check("new capped user");
  auto r = Make();
  Replay(*l, *r);
  EXPECT_EQ(r->StateDigest(), l->StateDigest());
  EXPECT_TRUE(r->CheckInvariants().ok()) << r->CheckInvariants().ToString();
  auto s = Make();
  SnapshotInto(*l, *s);
  EXPECT_EQ(s->StateDigest(), l->StateDigest());
  EXPECT_TRUE(s->CheckInvariants().ok()) << s->CheckInvariants().ToString();
}

TEST_F(CapacityTest, PagesWalkEveryUserOnceInOrder) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("team", kUnlimited, Region::kGlobal).ok());
  std::mt19937_64 rng(7);
  std::map<std::string, uint64_t> used;
  for (int i = 0; i < 37; ++i) {
    const std::string u = "user" + std::to_string(i);
    const uint64_t n = 1 + rng() % 5;   // many ties, ordered by id
    ASSERT_TRUE(l->Charge(Text("team", u, n)).status.ok());
    used[u] = n;
  }
  std::vector<std::pair<uint64_t, std::string>> expected;
  for (const auto& [u, n] : used) expected.emplace_back(n, u);
  std::sort(expected.begin(), expected.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  });
  for (size_t limit = 1; limit <= expected.size() + 1; ++limit) {
    std::vector<std::pair<uint64_t, std::string>> got;
    std::string cursor;
    size_t pages = 0;
    for (;;) {
      Result<UserPage> page = l->ListUsers("team", limit, cursor);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      ASSERT_LE(page->users.size(), limit);
      for (const UserInfo& u : page->users) got.emplace_back(u.used, u.user);
      ++pages;
      if (page->next_cursor.empty()) break;
      cursor = page->next_cursor;
      ASSERT_LE(pages, expected.size()) << "no progress";
    }
    EXPECT_EQ(got, expected) << "limit " << limit;
    EXPECT_EQ(pages, (expected.size() + limit - 1) / limit) << limit;
  }
}

TEST_F(CapacityTest, BadPageArgumentsAreRefused) {
  auto l = Make();
  ASSERT_TRUE(l->UpsertWorkspace("team", kUnlimited, Region::kGlobal).ok());
  ASSERT_TRUE(l->Charge(Text("team", "a")).status.ok());
  EXPECT_EQ(l->ListUsers("team", 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(l->ListUsers("team", Ledger::kMaxUsersPage + 1).code(), Code::kInvalidArgument);
  EXPECT_TRUE(l->ListUsers("team", Ledger::kMaxUsersPage).ok());
  for (const char* bad : {"abc", "12", ":a", "1:", "x1:a", "-1:a", "99999999999999999999999:a", "1:bad id", "1:a:b c"}) {
    EXPECT_EQ(l->ListUsers("team", 10, bad).code(), Code::kInvalidArgument) << bad;
  }
  Result<UserPage> past = l->ListUsers("team", 10, "0:zzz");   // after everyone
  ASSERT_TRUE(past.ok());
  EXPECT_TRUE(past->users.empty());
  EXPECT_TRUE(past->next_cursor.empty());
  EXPECT_EQ(l->ListUsers("nope", 10).code(), Code::kUnknownWorkspace);
}

}  // namespace
}  // namespace genledger
