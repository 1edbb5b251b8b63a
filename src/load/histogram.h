// A small log-linear ("HDR-style") latency histogram in integer microseconds.
//
// Values 0..127 have one bucket each (exact). A value v >= 128 with highest set bit e
// (2^e <= v < 2^(e+1)) falls into one of 64 equal sub-buckets of [2^e, 2^(e+1)), each
// 2^(e-6) wide, so a bucket's width is at most 1/64 of any value in it. Percentiles report
// the bucket's midpoint (clamped to the exact min/max seen), so the relative error of a
// reported percentile is at most 1/128 (< 0.8%); min, max, count and sum are exact.
// Range: 0 .. 2^40 us (~12.7 days); larger values are clamped into the top bucket (max stays
// exact). Not thread-safe: keep one per thread and Merge().
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace genledger::load {

class Histogram {
 public:
  static constexpr int kSubBits = 6;                       // 64 sub-buckets per octave
  static constexpr int kMaxBits = 40;                      // values below 2^40
  static constexpr int kLinear = 2 << kSubBits;            // 128 exact buckets
  static constexpr int kBuckets = kLinear + (kMaxBits - kSubBits - 1) * (1 << kSubBits);

  Histogram() : counts_(kBuckets, 0) {}

  void Record(uint64_t v) { RecordN(v, 1); }
  void RecordN(uint64_t v, uint64_t n);
  void Merge(const Histogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t min() const { return count_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }
  // Nearest-rank percentile, p in [0, 100]: the value at rank ceil(p/100 * count) (rank >= 1),
  // within the documented relative error. 0 when empty.
  uint64_t Percentile(double p) const;

  // Bucket math, exposed for tests.
  static int BucketOf(uint64_t v);
  static uint64_t BucketLow(int b);    // smallest value in bucket b
  static uint64_t BucketHigh(int b);   // largest value in bucket b

 private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t sum_ = 0;
  uint64_t min_ = UINT64_MAX;
  uint64_t max_ = 0;
};

}  // namespace genledger::load
