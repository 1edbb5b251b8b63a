// The load generator's log-linear histogram: bucket math, percentiles against exact ones on
// known distributions (bounded relative error), merge of per-thread histograms; reply scanning.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "load/histogram.h"
#include "load/load.h"

using genledger::load::Histogram;

namespace {

uint64_t ExactPercentile(std::vector<uint64_t> v, double p) {
  std::sort(v.begin(), v.end());
  uint64_t rank = uint64_t(std::ceil(p / 100.0 * double(v.size())));
  rank = std::clamp<uint64_t>(rank, 1, v.size());
  return v[rank - 1];
}

void ExpectClose(uint64_t got, uint64_t exact, const char* what, double p) {
  double err = exact == 0 ? double(got) : std::fabs(double(got) - double(exact)) / double(exact);
  EXPECT_LE(err, 1.0 / 128 + 1e-12) << what << " p" << p << ": got " << got << " exact " << exact;
}

void CheckDistribution(const std::vector<uint64_t>& values, const char* what) {
  Histogram h;
  for (uint64_t v : values) h.Record(v);
  ASSERT_EQ(h.count(), values.size());
  EXPECT_EQ(h.max(), *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(h.min(), *std::min_element(values.begin(), values.end()));
  for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0})
    ExpectClose(h.Percentile(p), ExactPercentile(values, p), what, p);
}

}  // namespace

TEST(LoadHistogram, BucketsTileTheRangeWithBoundedWidth) {
  // Every value lands in a bucket whose [low, high] contains it; buckets are contiguous and
  // no wider than 1/64 of their lowest value.
  for (int b = 0; b + 1 < Histogram::kBuckets; ++b) {
    ASSERT_EQ(Histogram::BucketHigh(b) + 1, Histogram::BucketLow(b + 1)) << b;
    uint64_t lo = Histogram::BucketLow(b), hi = Histogram::BucketHigh(b);
    if (lo >= 128) {
      ASSERT_LE(double(hi - lo + 1), double(lo) / 64.0) << b;
    }
  }
  std::mt19937_64 rng(1);
  for (int i = 0; i < 200000; ++i) {
    uint64_t v = rng() >> (24 + rng() % 40);
    int b = Histogram::BucketOf(v);
    ASSERT_LE(Histogram::BucketLow(b), v);
    ASSERT_GE(Histogram::BucketHigh(b), v);
  }
  EXPECT_EQ(Histogram::BucketOf(0), 0);
  EXPECT_EQ(Histogram::BucketOf(127), 127);
  EXPECT_EQ(Histogram::BucketOf(128), 128);
  EXPECT_EQ(Histogram::BucketOf(uint64_t(1) << 50), Histogram::kBuckets - 1);   // clamped
}

TEST(LoadHistogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 0; v < 100; ++v) h.Record(v);
  EXPECT_EQ(h.Percentile(50), 49u);
  EXPECT_EQ(h.Percentile(99), 98u);
  EXPECT_EQ(h.Percentile(100), 99u);
  EXPECT_EQ(h.Percentile(0), 0u);
  EXPECT_DOUBLE_EQ(h.mean(), 49.5);
}

TEST(LoadHistogram, EmptyIsZero) {
  Histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.Percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LoadHistogram, UniformDistribution) {
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<uint64_t> d(1, 5'000'000);
  std::vector<uint64_t> v(100000);
  for (auto& x : v) x = d(rng);
  CheckDistribution(v, "uniform");
}

TEST(LoadHistogram, ExponentialAndLogNormalTails) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> e(1.0 / 800.0);
  std::lognormal_distribution<double> ln(7.0, 1.5);
  std::vector<uint64_t> a(100000), b(100000);
  for (auto& x : a) x = uint64_t(e(rng));
  for (auto& x : b) x = uint64_t(ln(rng));
  CheckDistribution(a, "exponential");
  CheckDistribution(b, "lognormal");
}

TEST(LoadHistogram, BimodalWithOutliers) {
  std::vector<uint64_t> v;
  for (int i = 0; i < 9900; ++i) v.push_back(200 + uint64_t(i % 50));
  for (int i = 0; i < 99; ++i) v.push_back(50'000 + uint64_t(i) * 37);
  v.push_back(12'345'678);
  CheckDistribution(v, "bimodal");
  Histogram h;
  for (auto x : v) h.Record(x);
  EXPECT_EQ(h.Percentile(100), 12'345'678u);
}

TEST(LoadHistogram, RecordNEqualsRepeatedRecord) {
  Histogram a, b;
  a.RecordN(1234, 1000);
  for (int i = 0; i < 1000; ++i) b.Record(1234);
  EXPECT_EQ(a.count(), b.count());
  for (double p : {1.0, 50.0, 99.0}) EXPECT_EQ(a.Percentile(p), b.Percentile(p));
  a.RecordN(5, 0);
  EXPECT_EQ(a.count(), 1000u);
  EXPECT_EQ(a.min(), 1234u);
}

TEST(LoadHistogram, MergeOfPerThreadHistogramsEqualsOneHistogram) {
  std::mt19937_64 rng(4);
  std::lognormal_distribution<double> ln(6.0, 1.0);
  std::vector<uint64_t> all;
  Histogram whole;
  std::vector<Histogram> parts(4);
  for (int i = 0; i < 80000; ++i) {
    uint64_t x = uint64_t(ln(rng)) * uint64_t(1 + i % 4);   // each "thread" has its own shape
    all.push_back(x);
    whole.Record(x);
    parts[size_t(i % 4)].Record(x);
  }
  Histogram merged;
  for (auto& p : parts) merged.Merge(p);
  EXPECT_EQ(merged.count(), whole.count());
  EXPECT_EQ(merged.max(), whole.max());
  EXPECT_EQ(merged.min(), whole.min());
  EXPECT_DOUBLE_EQ(merged.mean(), whole.mean());
  for (double p : {10.0, 50.0, 90.0, 99.0, 99.9}) {
    EXPECT_EQ(merged.Percentile(p), whole.Percentile(p)) << p;
    ExpectClose(merged.Percentile(p), ExactPercentile(all, p), "merged", p);
  }
  Histogram empty;
  merged.Merge(empty);
  EXPECT_EQ(merged.count(), whole.count());
  merged.Reset();
  EXPECT_EQ(merged.count(), 0u);
  EXPECT_EQ(merged.Percentile(50), 0u);
}

TEST(LoadScan, ResultsOfAFrame) {
  std::string reply =
      R"([{"status":200,"seq":8,"charge":"ch_12","cost":3,"remaining":991,"user_used":1},)"
      R"({"status":200,"seq":9,"reservation":"rs_331","held":5,"remaining":989,"expires_at":1},)"
      R"({"status":402,"seq":10,"error":{"code":"insufficient_generations","message":"the \"status\": not here","cost":3000,"remaining":994}}])";
  std::vector<genledger::load::ScannedResult> rs;
  std::vector<std::string> codes;
  size_t n = genledger::load::ScanResults(reply, [&](const genledger::load::ScannedResult& r) {
    rs.push_back(r);
    codes.emplace_back(r.code);
  });
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(rs[0].status, 200);
  EXPECT_EQ(rs[0].seq, 8u);
  EXPECT_TRUE(rs[0].has_cost);
  EXPECT_EQ(rs[0].cost, 3);
  EXPECT_EQ(rs[1].reservation, 331u);
  EXPECT_FALSE(rs[1].has_cost);
  EXPECT_EQ(rs[2].status, 402);
  EXPECT_EQ(rs[2].seq, 10u);
  EXPECT_EQ(codes[2], "insufficient_generations");
  auto s = genledger::load::ScanSingle(R"({"cost":2,"remaining":992,"charge":"ch_843"})", 200);
  EXPECT_EQ(s.status, 200);
  EXPECT_EQ(s.cost, 2);
  EXPECT_FALSE(s.has_seq);
}
