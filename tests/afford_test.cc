// MaxQuantity() and MaxSecondsMilli() against Cost(), their only oracle: seed examples, edge
// cases, a brute-force sweep of small ranges and a seeded random property test.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "genledger/catalog.h"

namespace genledger {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint32_t kU32Max = std::numeric_limits<uint32_t>::max();

Price Unitary(uint32_t rate_milli) { return Price{Unit::kMessage, rate_milli}; }
Price PerSecond(uint32_t rate_milli) { return Price{Unit::kSecond, rate_milli}; }
bool IsPerSecond(const Price& p) { return p.unit == Unit::kSecond; }
uint64_t Cap(const Price& p) { return IsPerSecond(p) ? kMaxSecondsMilli : kMaxQuantity; }

// The maximum for either kind of item; `outputs` is ignored for unit items.
Result<uint64_t> Max(const Price& p, uint32_t outputs, uint64_t budget) {
  return IsPerSecond(p) ? MaxSecondsMilli(p, outputs, budget) : MaxQuantity(p, budget);
}

// Cost() of `amount` units or milliseconds (of each of `outputs` outputs).
Result<uint64_t> CostAt(const Price& p, uint32_t outputs, uint64_t amount) {
  const Usage usage = IsPerSecond(p) ? Usage{.seconds_milli = amount, .outputs = outputs}
                                     : Usage{.quantity = amount};
  return Cost(p, usage, "test-item");
}

std::string Describe(const Price& p, uint32_t outputs, uint64_t budget) {
  return std::string(UnitName(p.unit)) + " rate_milli=" + std::to_string(p.rate_milli) +
         (IsPerSecond(p) ? " outputs=" + std::to_string(outputs) : "") +
         " budget=" + std::to_string(budget);
}

// The contract, checked with Cost(): the maximum m is within the cap, fits when it is not 0,
// and one more unit / millisecond does not fit unless m is the cap. `out` receives m.
::testing::AssertionResult Exact(const Price& p, uint32_t outputs, uint64_t budget,
                                 uint64_t* out = nullptr) {
  const std::string what = Describe(p, outputs, budget);
  Result<uint64_t> max = Max(p, outputs, budget);
  if (!max.ok()) return ::testing::AssertionFailure() << what << ": " << max.status().ToString();
  const uint64_t m = *max;
  if (out != nullptr) *out = m;
  if (m > Cap(p)) return ::testing::AssertionFailure() << what << ": max " << m << " > cap";
  if (m > 0) {
    Result<uint64_t> cost = CostAt(p, outputs, m);
    if (!cost.ok() || *cost > budget) {
      return ::testing::AssertionFailure() << what << ": max " << m << " costs "
                                           << (cost.ok() ? std::to_string(*cost) : cost.status().ToString());
    }
  }
  if (m < Cap(p)) {
    Result<uint64_t> cost = CostAt(p, outputs, m + 1);
    if (!cost.ok() || *cost <= budget) {
      return ::testing::AssertionFailure() << what << ": max " << m << " but " << m + 1 << " costs "
                                           << (cost.ok() ? std::to_string(*cost) : cost.status().ToString());
    }
  }
  return ::testing::AssertionSuccess();
}

uint64_t MaxOk(const Price& p, uint32_t outputs, uint64_t budget) {
  uint64_t m = kU64Max;
  EXPECT_TRUE(Exact(p, outputs, budget, &m));
  return m;
}

TEST(Afford, SeedExamples) {
  // Runway 0.33/s: 2 generations buy 6.060 s (6.061 s costs 3); the seed's 5 s example fits.
  EXPECT_EQ(MaxOk(PerSecond(330), 0, 2), 6'060u);
  // Veo3 2/s: the seed's 3 s = 6 generations, exactly.
  EXPECT_EQ(MaxOk(PerSecond(2'000), 1, 6), 3'000u);
  // Veo2 3/s: 1 generation buys 0.333 s.
  EXPECT_EQ(MaxOk(PerSecond(3'000), 0, 1), 333u);
  // Each output is rounded up on its own: 3 outputs of 0.33/s with 5 generations get 1 each.
  EXPECT_EQ(MaxOk(PerSecond(330), 3, 5), 3'030u);
  EXPECT_EQ(MaxOk(PerSecond(330), 3, 2), 0u);   // every output costs at least 1
  EXPECT_EQ(MaxOk(Unitary(1'000), 0, 7), 7u);   // GPT-4o: 7 messages for 7
  EXPECT_EQ(MaxOk(Unitary(333), 0, 1), 3u);     // 3 x 0.333 = 0.999 -> 1; 4 -> 2
}

TEST(Afford, EveryDefaultCatalogItemIsExact) {
  for (const CatalogItem& item : Catalog::Default()->items()) {
    Result<Price> price = PriceOf(item);
    ASSERT_TRUE(price.ok()) << item.id;
    for (uint64_t budget : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{5}, uint64_t{99},
                            uint64_t{1'000}, uint64_t{123'456}, uint64_t{1} << 40, kU64Max}) {
      for (uint32_t outputs : {0u, 1u, 3u, kMaxOutputs}) {
        EXPECT_TRUE(Exact(*price, outputs, budget)) << item.id;
      }
    }
  }
}

TEST(Afford, ZeroBudgetAffordsNothingThatCosts) {
  for (uint32_t rate : {1u, 330u, 1'000u, kMaxRateMilli, kU32Max}) {
    EXPECT_EQ(MaxOk(Unitary(rate), 0, 0), 0u) << rate;
    for (uint32_t outputs : {0u, 1u, kMaxOutputs}) {
      EXPECT_EQ(MaxOk(PerSecond(rate), outputs, 0), 0u) << rate;
    }
  }
}

// A free item costs 0 for any usage, so every budget, even 0, reaches the cap.
TEST(Afford, FreeItemsFitUpToTheCap) {
  for (uint64_t budget : {uint64_t{0}, uint64_t{1}, kU64Max}) {
    EXPECT_EQ(MaxOk(Unitary(0), 0, budget), kMaxQuantity);
    for (uint32_t outputs : {0u, 1u, kMaxOutputs}) {
      EXPECT_EQ(MaxOk(PerSecond(0), outputs, budget), kMaxSecondsMilli);
    }
  }
}

// Huge budgets, including those whose product with 1,000 or 1,000,000 would wrap around 64 bits
// (a naive floor(budget x 1,000 / rate) would return a small number for them): exact, and the
// cap exactly when the budget covers the cap's cost.
TEST(Afford, HugeBudgetsAreExact) {
  for (uint64_t budget : {kU64Max, kU64Max / 1'000 + 1, kU64Max / 1'000'000 + 1, uint64_t{1} << 63}) {
    for (uint32_t rate : {1u, 330u, kMaxRateMilli, kU32Max}) {
      for (uint32_t outputs : {0u, 1u, kMaxOutputs}) {
        for (const Price& p : {Unitary(rate), PerSecond(rate)}) {
          const bool covers_cap = *CostAt(p, outputs, Cap(p)) <= budget;
          EXPECT_EQ(MaxOk(p, outputs, budget) == Cap(p), covers_cap) << Describe(p, outputs, budget);
        }
      }
    }
  }
  // Only the largest rate with 100 outputs costs more than 2^64 / 10^6 at the cap.
  EXPECT_EQ(MaxOk(PerSecond(kU32Max), kMaxOutputs, kU64Max / 1'000'000 + 1), 42'949'672u);
}

// The catalog's largest rate (1,000,000 per unit or second): the thresholds around 1 unit,
// 1 ms and the cap, worked out by hand.
TEST(Afford, LargestCatalogRate) {
  const Price unit = Unitary(kMaxRateMilli);
  EXPECT_EQ(MaxOk(unit, 0, 999'999), 0u);
  EXPECT_EQ(MaxOk(unit, 0, 1'000'000), 1u);
  EXPECT_EQ(MaxOk(unit, 0, 1'000'000 * kMaxQuantity - 1), kMaxQuantity - 1);
  EXPECT_EQ(MaxOk(unit, 0, 1'000'000 * kMaxQuantity), kMaxQuantity);
  const Price video = PerSecond(kMaxRateMilli);   // 1,000 generations per ms
  EXPECT_EQ(MaxOk(video, 1, 999), 0u);
  EXPECT_EQ(MaxOk(video, 1, 1'000), 1u);
  EXPECT_EQ(MaxOk(video, kMaxOutputs, 99'999), 0u);
  EXPECT_EQ(MaxOk(video, kMaxOutputs, 100'000), 1u);
  const uint64_t all = uint64_t{1'000} * kMaxSecondsMilli * kMaxOutputs;   // 8.64 x 10^12
  EXPECT_EQ(MaxOk(video, kMaxOutputs, all - 1), kMaxSecondsMilli - 1);
  EXPECT_EQ(MaxOk(video, kMaxOutputs, all), kMaxSecondsMilli);
  // Any 32-bit rate, just below and at the cost of the cap.
  for (const Price& p : {Unitary(kU32Max), PerSecond(kU32Max)}) {
    const uint64_t at_cap = *CostAt(p, kMaxOutputs, Cap(p));
    EXPECT_EQ(MaxOk(p, kMaxOutputs, at_cap), Cap(p));
    EXPECT_LT(MaxOk(p, kMaxOutputs, at_cap - 1), Cap(p));
  }
}

// Outputs 0 means 1, and n outputs share the budget in whole, equal parts.
TEST(Afford, OutputsZeroMeansOneAndOutputsSplitTheBudget) {
  for (uint32_t rate : {1u, 330u, 1'000u, 2'500u, kMaxRateMilli}) {
    for (uint64_t budget : {uint64_t{0}, uint64_t{1}, uint64_t{7}, uint64_t{250}, uint64_t{99'999},
                            uint64_t{1} << 50}) {
      const Price p = PerSecond(rate);
      EXPECT_EQ(MaxOk(p, 0, budget), MaxOk(p, 1, budget));
      for (uint32_t outputs : {2u, 3u, kMaxOutputs}) {
        EXPECT_EQ(MaxOk(p, outputs, budget), MaxOk(p, 1, budget / outputs))
            << Describe(p, outputs, budget);
      }
    }
  }
  EXPECT_EQ(MaxOk(PerSecond(1'000), kMaxOutputs, 250), 2'000u);   // 100 x 2 s = 200 <= 250
}

TEST(Afford, MisuseIsRefused) {
  Result<uint64_t> r = MaxSecondsMilli(PerSecond(330), kMaxOutputs + 1, 1'000);
  EXPECT_EQ(r.code(), Code::kInvalidQuantity);
  EXPECT_NE(r.status().message().find("outputs must be at most 100"), std::string_view::npos);
  EXPECT_EQ(MaxSecondsMilli(PerSecond(330), kU32Max, kU64Max).code(), Code::kInvalidQuantity);
  EXPECT_EQ(MaxQuantity(PerSecond(330), 10).code(), Code::kInvalidQuantity);
  r = MaxSecondsMilli(Price{Unit::kImage, 1'000}, 0, 10);
  EXPECT_EQ(r.code(), Code::kInvalidQuantity);
  EXPECT_NE(r.status().message().find("priced per image"), std::string_view::npos);
}

// Brute force: sweep every usage from 1 up while Cost() stays within the largest budget tested
// (Cost() never decreases as usage grows, so nothing beyond the sweep fits either), record the
// largest usage at each cost, and compare the running maximum with the closed form for every
// budget 0..kBudgets.
TEST(Afford, BruteForceSmallRanges) {
  constexpr uint64_t kBudgets = 200;
  auto sweep = [&](const Price& p, uint32_t outputs) {
    std::vector<uint64_t> largest_at_cost(kBudgets + 1, 0);
    for (uint64_t amount = 1; amount <= Cap(p); ++amount) {
      Result<uint64_t> cost = CostAt(p, outputs, amount);
      ASSERT_TRUE(cost.ok()) << cost.status().ToString();
      if (*cost > kBudgets) break;
      largest_at_cost[*cost] = amount;
    }
    uint64_t best = 0;
    for (uint64_t budget = 0; budget <= kBudgets; ++budget) {
      best = std::max(best, largest_at_cost[budget]);
      Result<uint64_t> max = Max(p, outputs, budget);
      ASSERT_TRUE(max.ok()) << max.status().ToString();
      ASSERT_EQ(*max, best) << Describe(p, outputs, budget);
    }
  };
  for (uint32_t rate : {1u, 2u, 7u, 333u, 500u, 999u, 1'000u, 1'001u, 1'500u, 33'333u,
                        1'000'000u, kMaxRateMilli, kU32Max}) {
    sweep(Unitary(rate), 0);
  }
  for (uint32_t rate : {330u, 999u, 1'000u, 1'001u, 2'000u, 3'000u, 4'000u, 33'333u,
                        kMaxRateMilli, kU32Max}) {
    for (uint32_t outputs : {0u, 1u, 2u, 3u, 7u, kMaxOutputs}) sweep(PerSecond(rate), outputs);
  }
}

// Seeded random (rate, outputs, budget) triples, with budgets drawn near real costs so that the
// boundaries are hit often: every result is exact, and a usage whose cost is the budget fits
// while the same usage does not fit one generation less.
TEST(Afford, RandomTriplesAreExactAgainstCost) {
  std::mt19937_64 rng(0x6166666f7264ull);   // fixed: a failure reproduces
  auto uniform = [&](uint64_t lo, uint64_t hi) {
    return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
  };
  constexpr int kTriples = 200'000;
  for (int i = 0; i < kTriples; ++i) {
    uint32_t rate = 0;
    switch (uniform(0, 7)) {
      case 0: rate = 0; break;
      case 1: case 2: rate = uint32_t(uniform(1, 5'000)); break;
      case 3: case 4: rate = uint32_t(uniform(1, kMaxRateMilli)); break;
      case 5: rate = uint32_t(uniform(1, kU32Max)); break;
      default: rate = uint32_t(uniform(1, 1'000) * (uint64_t{1} << uniform(0, 20))); break;
    }
    const Price p = uniform(0, 1) == 0 ? Unitary(rate) : PerSecond(rate);
    const uint32_t outputs = IsPerSecond(p) ? uint32_t(uniform(0, kMaxOutputs)) : 0;
    // Small usages as often as large ones: a random shift of the cap, at least 1.
    const uint64_t usage = uniform(1, std::max<uint64_t>(1, Cap(p) >> uniform(0, 26)));
    Result<uint64_t> usage_cost = CostAt(p, outputs, usage);
    ASSERT_TRUE(usage_cost.ok()) << usage_cost.status().ToString();
    const uint64_t cost = *usage_cost;
    uint64_t budget = 0;
    switch (uniform(0, 5)) {
      case 0: budget = uniform(0, 1'000); break;
      case 1: budget = rng(); break;
      case 2: budget = rng() >> uniform(0, 63); break;
      case 3: budget = kU64Max; break;
      default: budget = cost - std::min<uint64_t>(cost, uniform(0, 2)) + uniform(0, 1); break;
    }
    ASSERT_TRUE(Exact(p, outputs, budget)) << "triple " << i;
    // The drawn usage costs exactly `cost`: it fits that budget, and not one generation less.
    ASSERT_GE(*Max(p, outputs, cost), usage) << Describe(p, outputs, cost);
    if (cost > 0) {
      ASSERT_LT(*Max(p, outputs, cost - 1), usage) << Describe(p, outputs, cost - 1);
    }
  }
}

}  // namespace
}  // namespace genledger
