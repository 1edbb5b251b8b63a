// Cost() and ParseDecimalMilli(): the seed's pricing rules in exact integer arithmetic.
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "genledger/catalog.h"
#include "util/utf8.h"

namespace genledger {
namespace pricing_internal {

// "0.33" for 330, "2" for 2000: the shortest exact decimal. Shared with catalog.cc (ToJson),
// which declares it; kept here so the module needs no private header.
std::string FormatMilli(uint64_t milli) {
  std::string out = std::to_string(milli / 1000);
  uint64_t frac = milli % 1000;
  if (frac != 0) {
    char digits[3] = {char('0' + frac / 100), char('0' + frac / 10 % 10), char('0' + frac % 10)};
    size_t n = 3;
    while (digits[n - 1] == '0') --n;
    out += '.';
    out.append(digits, n);
  }
  return out;
}

}  // namespace pricing_internal

namespace {

using pricing_internal::FormatMilli;

// The worst cases of both formulas fit in 64 bits for every representable rate (not only
// rates up to kMaxRateMilli), so Cost() needs no checked multiplication once usage is bounded.
constexpr uint64_t kU64Max = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMaxRate = std::numeric_limits<uint32_t>::max();
static_assert(kMaxRate <= kU64Max / kMaxSecondsMilli);
static_assert((kMaxRate * kMaxSecondsMilli / 1'000'000 + 1) <= kU64Max / kMaxOutputs);
static_assert(kMaxRate <= kU64Max / kMaxQuantity);

// Caps echoed input so a hostile string cannot bloat an error message.
std::string Quote(std::string_view text) {
  constexpr size_t kMaxEcho = 32;
  return "\"" + util::Utf8Shorten(text, kMaxEcho) + "\"";
}

Status Invalid(std::string message) { return Status(Code::kInvalidQuantity, std::move(message)); }

uint64_t CeilDiv(uint64_t n, uint64_t d) { return n / d + (n % d != 0 ? 1 : 0); }

// What the pricing rules read of an item: its name (for messages), its unit and its rate.
struct Priced {
  std::string_view model;
  std::string_view unit;
  uint32_t rate_milli;
  bool per_second() const noexcept { return unit == "second"; }
};

// The seed counts formats only for feed variations ("1 creative with 5 formats = 1 generation");
// any other item given formats is a caller mistake worth reporting.
Status CheckFormats(const Priced& item, const Usage& usage) {
  if (usage.formats == 0) return Status::Ok();
  if (item.unit != "variation") {
    return Invalid("formats applies only to feed-variation items, not " + std::string(item.model));
  }
  if (usage.formats > kMaxFormats) {
    return Invalid("formats must be at most " + std::to_string(kMaxFormats));
  }
  return Status::Ok();
}

Result<uint64_t> PerSecondCost(const Priced& item, const Usage& usage) {
  const std::string model(item.model);
  if (usage.quantity != 0) {
    return Invalid("quantity does not apply to " + model + ", which is priced per second; use seconds");
  }
  if (usage.seconds_milli == 0) {
    return Invalid("seconds is required for " + model + " and must be greater than 0");
  }
  if (usage.seconds_milli > kMaxSecondsMilli) {
    return Invalid("seconds must be at most " + FormatMilli(kMaxSecondsMilli));
  }
  if (usage.outputs > kMaxOutputs) {
    return Invalid("outputs must be at most " + std::to_string(kMaxOutputs));
  }
  if (Status s = CheckFormats(item, usage); !s.ok()) return s;
  // Each output is a separate video, rounded up on its own (the seed rounds "based on total
  // seconds duration" of an output), then the outputs are added.
  const uint64_t per_output = CeilDiv(uint64_t{item.rate_milli} * usage.seconds_milli, 1'000'000);
  const uint64_t outputs = usage.outputs == 0 ? 1 : usage.outputs;
  return per_output * outputs;
}

Result<uint64_t> UnitCost(const Priced& item, const Usage& usage) {
  const std::string model(item.model);
  if (usage.seconds_milli != 0) {
    return Invalid("seconds applies only to per-second items; " + model + " is priced per " +
                   std::string(item.unit) + ", use quantity");
  }
  if (usage.outputs != 0) {
    return Invalid("outputs applies only to per-second items; " + model + " is priced per " +
                   std::string(item.unit));
  }
  if (usage.quantity == 0) {
    return Invalid("quantity is required for " + model + " and must be greater than 0");
  }
  if (usage.quantity > kMaxQuantity) {
    return Invalid("quantity must be at most " + std::to_string(kMaxQuantity));
  }
  if (Status s = CheckFormats(item, usage); !s.ok()) return s;
  return CeilDiv(uint64_t{item.rate_milli} * usage.quantity, 1000);
}

Result<uint64_t> CostOf(const Priced& item, const Usage& usage) {
  return item.per_second() ? PerSecondCost(item, usage) : UnitCost(item, usage);
}

}  // namespace

Result<uint64_t> Cost(const CatalogItem& item, const Usage& usage) {
  return CostOf(Priced{item.id, item.unit, item.rate_milli}, usage);
}

Result<uint64_t> Cost(const Price& price, const Usage& usage, std::string_view model) {
  return CostOf(Priced{model, UnitName(price.unit), price.rate_milli}, usage);
}

Result<Price> PriceOf(const CatalogItem& item) {
  Result<Unit> unit = ParseUnit(item.unit);
  if (!unit.ok()) return unit.status();
  return Price{*unit, item.rate_milli};
}

Result<uint64_t> ParseDecimalMilli(std::string_view text, uint64_t max) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const size_t dot = text.find('.');
  const std::string_view whole = text.substr(0, dot);
  const std::string_view frac =
      dot == std::string_view::npos ? std::string_view() : text.substr(dot + 1);

  // JSON's number grammar minus sign and exponent: no empty parts, no leading zeros.
  if (whole.empty()) return Invalid(Quote(text) + " is not a decimal number");
  for (char c : whole) {
    if (!is_digit(c)) return Invalid(Quote(text) + " is not a plain decimal number");
  }
  if (whole.size() > 1 && whole[0] == '0') {
    return Invalid(Quote(text) + " has a leading zero");
  }
  if (dot != std::string_view::npos) {
    if (frac.empty()) return Invalid(Quote(text) + " has no digits after '.'");
    for (char c : frac) {
      if (!is_digit(c)) return Invalid(Quote(text) + " is not a plain decimal number");
    }
    if (frac.size() > 3) return Invalid(Quote(text) + " has more than 3 decimal places");
  }

  const std::string too_large = Quote(text) + " exceeds the maximum " + FormatMilli(max);
  // Compare against max / 1000 digit by digit so the accumulator can never wrap.
  uint64_t units = 0;
  for (char c : whole) {
    const uint64_t d = uint64_t(c - '0');
    if (d > max / 1000 || units > (max / 1000 - d) / 10) return Invalid(too_large);
    units = units * 10 + d;
  }
  uint64_t thousandths = 0;
  for (size_t i = 0; i < 3; ++i) {
    thousandths = thousandths * 10 + (i < frac.size() ? uint64_t(frac[i] - '0') : 0);
  }
  if (thousandths > max - units * 1000) return Invalid(too_large);
  return units * 1000 + thousandths;
}

}  // namespace genledger
