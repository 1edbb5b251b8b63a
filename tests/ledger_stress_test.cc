// Racing operations from several threads; afterwards the ledger must agree exactly with what
// was acknowledged, and every invariant must hold.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "genledger/ledger.h"

namespace genledger {
namespace {

constexpr int kThreads = 4;

std::vector<std::string> Names(const char* prefix, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}

ChargeRequest Text(const Catalog& cat, std::string_view ws, std::string_view user, uint64_t n,
                   std::string_view id = {}) {
  ChargeRequest r{ws, user, cat.Find("openai-gpt-5"), {}, id};
  r.usage.quantity = n;
  return r;
}

// Each thread keeps its own account of what the ledger acknowledged, per workspace.
struct Account {
  std::map<std::string, int64_t> used;       // net debits acknowledged
  std::map<std::string, int64_t> reserved;   // holds still open
};

TEST(LedgerStress, MixedOperationsReconcileExactly) {
  ManualClock clock;
  LedgerOptions opt;
  opt.clock = &clock;
  // 64 workspaces sit in at most 64 shards; keep every charge of the run refundable so a refund
  // refusal here can only mean a bug.
  opt.refund_capacity = uint64_t(1) << 28;
  Ledger ledger(Catalog::Default(), opt);
  const std::shared_ptr<const Catalog> holder = ledger.CurrentCatalog();
  const Catalog& cat = *holder;
  const auto workspaces = Names("ws", 64);
  const auto users = Names("user", 6);
  for (size_t i = 0; i < workspaces.size(); ++i) {
    // Half capped tightly so refusals race with debits; half unlimited.
    ASSERT_TRUE(ledger.UpsertWorkspace(workspaces[i], i % 2 ? 5'000 : kUnlimited, Region::kGlobal).ok());
    ASSERT_TRUE(ledger.SetUserLimit(workspaces[i], users[0], 700).ok());
  }
  constexpr int kOpsPerThread = 400'000;
  std::vector<Account> accounts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937_64 rng(1234 + t);
      Account& acc = accounts[t];
      struct Open { uint64_t id; std::string ws; uint64_t held; };
      std::vector<Open> holds;
      std::vector<std::pair<uint64_t, std::pair<std::string, uint64_t>>> charges;
      for (int i = 0; i < kOpsPerThread; ++i) {
        const std::string& ws = workspaces[rng() % workspaces.size()];
        const std::string& user = users[rng() % users.size()];
        const uint64_t n = 1 + rng() % 5;
        const unsigned op = rng() % 100;
        if (op < 60) {
          ChargeResult r = ledger.Charge(Text(cat, ws, user, n));
          if (r.status.ok()) {
            acc.used[ws] += int64_t(r.cost);
            if (rng() % 8 == 0) charges.push_back({r.charge_id, {ws, r.cost}});
          } else {
            ASSERT_TRUE(r.status.code() == Code::kInsufficientGenerations ||
                        r.status.code() == Code::kUserLimitExceeded) << r.status.ToString();
          }
        } else if (op < 80) {
          ReserveResult r = ledger.Reserve(ReserveRequest{Text(cat, ws, user, n), 0});
          if (r.status.ok()) {
            acc.reserved[ws] += int64_t(r.held);
            holds.push_back({r.reservation_id, ws, r.held});
          }
        } else if (op < 90 && !holds.empty()) {
          Open h = holds.back();
          holds.pop_back();
          acc.reserved[h.ws] -= int64_t(h.held);
          if (rng() % 2) {
            CommitResult c = ledger.Commit(h.id);
            ASSERT_TRUE(c.status.ok()) << c.status.ToString();
            acc.used[h.ws] += int64_t(c.cost);
          } else {
            ASSERT_TRUE(ledger.Release(h.id).status.ok());
          }
        } else if (!charges.empty()) {
          auto [id, what] = charges.back();
          charges.pop_back();
          RefundResult r = ledger.Refund(id);
          ASSERT_TRUE(r.status.ok()) << r.status.ToString();
          acc.used[what.first] -= int64_t(what.second);
        }
      }
    });
  }
  for (auto& th : threads) th.join();

  Status inv = ledger.CheckInvariants();
  ASSERT_TRUE(inv.ok()) << inv.ToString();
  uint64_t total_used = 0;
  for (const std::string& ws : workspaces) {
    int64_t used = 0, reserved = 0;
    for (const Account& a : accounts) {
      if (auto it = a.used.find(ws); it != a.used.end()) used += it->second;
      if (auto it = a.reserved.find(ws); it != a.reserved.end()) reserved += it->second;
    }
    auto info = ledger.GetWorkspace(ws);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(int64_t(info->used), used) << ws;
    EXPECT_EQ(int64_t(info->reserved), reserved) << ws;
    if (info->limit != kUnlimited) EXPECT_LE(info->used + info->reserved, info->limit) << ws;
    total_used += info->used;
  }
  EXPECT_EQ(ledger.Totals().used, total_used);
}

TEST(LedgerStress, ContendedWorkspaceIsNeverOverspent) {
  Ledger ledger(Catalog::Default());
  const std::shared_ptr<const Catalog> holder = ledger.CurrentCatalog();
  const Catalog& cat = *holder;
  constexpr uint64_t kLimit = 100'000;
  ASSERT_TRUE(ledger.UpsertWorkspace("hot", kLimit, Region::kGlobal).ok());
  std::atomic<uint64_t> acknowledged{0};
  std::atomic<uint64_t> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const std::string user = "u" + std::to_string(t);
      // Demand (4 x 50,000 x 1..3) far exceeds the limit.
      for (int i = 0; i < 50'000; ++i) {
        ChargeResult r = ledger.Charge(Text(cat, "hot", user, 1 + (i % 3)));
        if (r.status.ok()) {
          acknowledged += r.cost;
        } else {
          ASSERT_EQ(r.status.code(), Code::kInsufficientGenerations);
          ++refused;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  auto info = ledger.GetWorkspace("hot");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->used, acknowledged.load());
  EXPECT_LE(info->used, kLimit);
  // Small charges keep fitting until at most 2 generations are left unused.
  EXPECT_GE(info->used, kLimit - 2);
  EXPECT_GT(refused.load(), 0u);
  EXPECT_TRUE(ledger.CheckInvariants().ok());
}

TEST(LedgerStress, RacingRetriesOfOneIdempotencyIdDebitOnce) {
  Ledger ledger(Catalog::Default());
  const std::shared_ptr<const Catalog> holder = ledger.CurrentCatalog();
  const Catalog& cat = *holder;
  ASSERT_TRUE(ledger.UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
  for (int round = 0; round < 200; ++round) {
    const std::string key = "req-" + std::to_string(round);
    std::atomic<int> fresh{0};
    std::atomic<uint64_t> charge_id{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        ChargeResult r = ledger.Charge(Text(cat, "w", "u", 3, key));
        ASSERT_TRUE(r.status.ok());
        if (!r.replayed) ++fresh;
        uint64_t expected = 0;
        if (!charge_id.compare_exchange_strong(expected, r.charge_id)) EXPECT_EQ(expected, r.charge_id);
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(fresh.load(), 1) << key;
  }
  EXPECT_EQ(ledger.GetWorkspace("w")->used, 600u);
}

TEST(LedgerStress, RacingSettlementsSettleOnce) {
  Ledger ledger(Catalog::Default());
  const std::shared_ptr<const Catalog> holder = ledger.CurrentCatalog();
  const Catalog& cat = *holder;
  ASSERT_TRUE(ledger.UpsertWorkspace("w", kUnlimited, Region::kGlobal).ok());
  uint64_t expected_used = 0;
  for (int round = 0; round < 300; ++round) {
    ReserveResult h = ledger.Reserve(ReserveRequest{Text(cat, "w", "u", 5), 0});
    ChargeResult c = ledger.Charge(Text(cat, "w", "u", 2));
    ASSERT_TRUE(h.status.ok() && c.status.ok());
    std::atomic<int> settled{0}, committed{0}, refunded{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const bool ok = (t % 2) ? ledger.Commit(h.reservation_id).status.ok()
                                : ledger.Release(h.reservation_id).status.ok();
        if (ok) {
          ++settled;
          if (t % 2) ++committed;
        }
        if (ledger.Refund(c.charge_id).status.ok()) ++refunded;
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(settled.load(), 1);
    ASSERT_EQ(refunded.load(), 1);
    expected_used += committed.load() ? 5 : 0;
  }
  auto info = ledger.GetWorkspace("w");
  EXPECT_EQ(info->used, expected_used);
  EXPECT_EQ(info->reserved, 0u);
  EXPECT_TRUE(ledger.CheckInvariants().ok());
}

// Two admins change one workspace at once, one its limit, the other its region: neither change
// may undo the other (reading the current settings and writing the merged ones in two lock holds
// could, and did, in the API's PUT). Each thread checks, after each of its changes, that it is
// still there: only the other thread writes in between, and it must leave this field alone.
TEST(LedgerStress, ConcurrentPartialUpdatesKeepBothChanges) {
  Ledger ledger(Catalog::Default());
  ASSERT_TRUE(ledger.UpsertWorkspace("w", 1, Region::kGlobal).ok());
  constexpr uint64_t kChanges = 1000000;
  std::atomic<uint64_t> lost{0};
  std::thread limits([&] {
    for (uint64_t i = 2; i < kChanges; ++i) {
      WorkspaceUpdate u;
      u.limit = i;
      ASSERT_TRUE(ledger.UpdateWorkspace("w", u).ok());
      if (ledger.GetWorkspace("w")->base_limit != i) lost.fetch_add(1);   // only this thread raises it
    }
  });
  std::thread regions([&] {
    for (uint64_t i = 0; i < kChanges; ++i) {
      WorkspaceUpdate u;
      u.region = i % 2 ? Region::kCn : Region::kGlobal;
      ASSERT_TRUE(ledger.UpdateWorkspace("w", u).ok());
      if (ledger.GetWorkspace("w")->region != *u.region) lost.fetch_add(1);
    }
  });
  limits.join();
  regions.join();
  EXPECT_EQ(lost.load(), 0u) << "changes undone by a concurrent partial update";
  EXPECT_EQ(ledger.GetWorkspace("w")->base_limit, kChanges - 1);
}

}  // namespace
}  // namespace genledger
