// MaxQuantity() and MaxSecondsMilli(): Cost() inverted, in exact integer arithmetic.
//
// Both formulas are "ceil(rate_milli x amount / D) <= b" for a divisor D (1,000 per unit,
// 1,000,000 per millisecond) and an integer b. For integers, ceil(x / D) <= b holds exactly
// when x <= b x D, so the condition is rate_milli x amount <= b x D, and the largest amount is
// floor(b x D / rate_milli). For per-second items the cost is n x ceil(...), and n x c <= budget
// holds exactly when c <= floor(budget / n), so b = floor(budget / n).
#include <cstdint>
#include <limits>
#include <string>

#include "genledger/catalog.h"

namespace genledger {
namespace {

constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMaxRate = std::numeric_limits<uint32_t>::max();   // any 32-bit rate

constexpr uint64_t CeilDiv(uint64_t n, uint64_t d) { return n / d + (n % d != 0 ? 1 : 0); }

// The largest `b` that can reach the final division below: a `b` at or above the cost of the cap
// returns the cap first. b x D must not wrap for any 32-bit rate.
static_assert(kMaxRate <= kU64Max / kMaxQuantity);
static_assert(CeilDiv(kMaxRate * kMaxQuantity, 1'000) <= kU64Max / 1'000);
static_assert(kMaxRate <= kU64Max / kMaxSecondsMilli);
static_assert(CeilDiv(kMaxRate * kMaxSecondsMilli, 1'000'000) <= kU64Max / 1'000'000);

Status Invalid(std::string message) { return Status(Code::kInvalidQuantity, std::move(message)); }

// The largest amount in [0, cap] with ceil(rate x amount / divisor) <= b.
uint64_t LargestWithin(uint64_t rate, uint64_t divisor, uint64_t cap, uint64_t b) {
  // Checked first so that b x divisor below cannot wrap (b < cost of the cap, static_asserts
  // above) and rate is not 0 (a free item costs 0 <= b at the cap).
  if (CeilDiv(rate * cap, divisor) <= b) return cap;
  // Below the cap: were the quotient >= cap, the cap itself would fit, which the test refuted.
  return b * divisor / rate;
}

}  // namespace

Result<uint64_t> MaxQuantity(const Price& price, uint64_t budget) {
  if (price.unit == Unit::kSecond) {
    return Invalid("quantity does not apply to an item priced per second; use seconds");
  }
  return LargestWithin(price.rate_milli, 1'000, kMaxQuantity, budget);
}

Result<uint64_t> MaxSecondsMilli(const Price& price, uint32_t outputs, uint64_t budget) {
  if (price.unit != Unit::kSecond) {
    return Invalid("seconds applies only to per-second items; this item is priced per " +
                   std::string(UnitName(price.unit)) + ", use quantity");
  }
  if (outputs > kMaxOutputs) {
    return Invalid("outputs must be at most " + std::to_string(kMaxOutputs));
  }
  // Each output is rounded up on its own (Cost()), so every output gets an equal whole share.
  const uint64_t n = outputs == 0 ? 1 : outputs;
  return LargestWithin(price.rate_milli, 1'000'000, kMaxSecondsMilli, budget / n);
}

}  // namespace genledger
