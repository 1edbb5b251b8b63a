#include "load/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace genledger::load {

int Histogram::BucketOf(uint64_t v) {
  if (v < uint64_t(kLinear)) return int(v);
  if (v >= (uint64_t(1) << kMaxBits)) v = (uint64_t(1) << kMaxBits) - 1;
  int e = 63 - std::countl_zero(v);                 // >= kSubBits + 1
  int shift = e - kSubBits;                         // >= 1
  uint64_t sub = (v >> shift) - (uint64_t(1) << kSubBits);   // 0..63
  return kLinear + (e - kSubBits - 1) * (1 << kSubBits) + int(sub);
}

uint64_t Histogram::BucketLow(int b) {
  if (b < kLinear) return uint64_t(b);
  int k = b - kLinear;
  int e = k / (1 << kSubBits) + kSubBits + 1;
  uint64_t sub = uint64_t(k % (1 << kSubBits));
  int shift = e - kSubBits;
  return ((uint64_t(1) << kSubBits) + sub) << shift;
}

uint64_t Histogram::BucketHigh(int b) {
  if (b < kLinear) return uint64_t(b);
  int k = b - kLinear;
  int e = k / (1 << kSubBits) + kSubBits + 1;
  return BucketLow(b) + (uint64_t(1) << (e - kSubBits)) - 1;
}

void Histogram::RecordN(uint64_t v, uint64_t n) {
  if (n == 0) return;
  counts_[size_t(BucketOf(v))] += n;
  count_ += n;
  sum_ += v * n;
  min_ = std::min(min_, v);
  max_ = std::max(max_, v);
}

void Histogram::Merge(const Histogram& o) {
  if (o.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  sum_ += o.sum_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
}

void Histogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = sum_ = max_ = 0;
  min_ = UINT64_MAX;
}

uint64_t Histogram::Percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  uint64_t rank = uint64_t(std::ceil(p / 100.0 * double(count_)));
  rank = std::clamp<uint64_t>(rank, 1, count_);
  if (rank == count_) return max_;
  uint64_t seen = 0;
  for (size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) {
      uint64_t lo = BucketLow(int(b)), hi = BucketHigh(int(b));
      uint64_t mid = lo + (hi - lo) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace genledger::load
