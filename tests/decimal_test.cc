#include <cstdint>
#include <limits>
#include <string>

#include <gtest/gtest.h>

#include "genledger/catalog.h"

namespace genledger {
namespace {

constexpr uint64_t kNoMax = std::numeric_limits<uint64_t>::max();

uint64_t Parse(std::string_view text, uint64_t max = kNoMax) {
  Result<uint64_t> r = ParseDecimalMilli(text, max);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : ~uint64_t{0};
}

void ExpectRejected(std::string_view text, uint64_t max, std::string_view message_part) {
  Result<uint64_t> r = ParseDecimalMilli(text, max);
  ASSERT_FALSE(r.ok()) << "accepted \"" << text << "\" as " << *r;
  EXPECT_EQ(r.code(), Code::kInvalidQuantity) << text;
  EXPECT_NE(r.status().message().find(message_part), std::string_view::npos)
      << text << ": " << r.status().message();
}

TEST(ParseDecimalMilli, IntegersAndFractions) {
  EXPECT_EQ(Parse("0"), 0u);
  EXPECT_EQ(Parse("3"), 3000u);
  EXPECT_EQ(Parse("3.03"), 3030u);
  EXPECT_EQ(Parse("0.5"), 500u);
  EXPECT_EQ(Parse("0.33"), 330u);
  EXPECT_EQ(Parse("0.001"), 1u);
  EXPECT_EQ(Parse("0.000"), 0u);
  EXPECT_EQ(Parse("1.000"), 1000u);
  EXPECT_EQ(Parse("10"), 10000u);
  EXPECT_EQ(Parse("86400"), 86'400'000u);
  EXPECT_EQ(Parse("123456.789"), 123'456'789u);
}

TEST(ParseDecimalMilli, RejectsWhatIsNotAPlainDecimal) {
  for (std::string_view bad : {"", ".", ".5", "5.", "-1", "+1", "-0", "1e1", "1E3", "1.5e0",
                               " 1", "1 ", "1,5", "1.2.3", "0x10", "abc", "1a", "NaN", "inf",
                               "１"}) {
    Result<uint64_t> r = ParseDecimalMilli(bad, kNoMax);
    EXPECT_FALSE(r.ok()) << "accepted \"" << bad << "\"";
    EXPECT_EQ(r.code(), Code::kInvalidQuantity) << bad;
  }
}

TEST(ParseDecimalMilli, RejectsLeadingZerosAsJsonDoes) {
  ExpectRejected("007", kNoMax, "leading zero");
  ExpectRejected("00", kNoMax, "leading zero");
  ExpectRejected("00.5", kNoMax, "leading zero");
  EXPECT_EQ(Parse("0.05"), 50u);  // a zero before '.' is the only allowed leading zero
}

TEST(ParseDecimalMilli, RejectsMoreThanThreeDecimals) {
  ExpectRejected("0.0001", kNoMax, "more than 3 decimal places");
  ExpectRejected("1.0000", kNoMax, "more than 3 decimal places");  // even when exact
  ExpectRejected("0.3333", kNoMax, "more than 3 decimal places");
}

TEST(ParseDecimalMilli, MaxIsInclusive) {
  EXPECT_EQ(Parse("86400", kMaxSecondsMilli), kMaxSecondsMilli);
  EXPECT_EQ(Parse("86399.999", kMaxSecondsMilli), kMaxSecondsMilli - 1);
  ExpectRejected("86400.001", kMaxSecondsMilli, "exceeds the maximum 86400");
  ExpectRejected("86401", kMaxSecondsMilli, "exceeds the maximum 86400");
  ExpectRejected("100000", kMaxSecondsMilli, "exceeds the maximum 86400");
  // A max that is not a whole number: the fractional part is compared too.
  EXPECT_EQ(Parse("1.5", 1500), 1500u);
  ExpectRejected("1.501", 1500, "exceeds the maximum 1.5");
  ExpectRejected("2", 1500, "exceeds the maximum 1.5");
  // A max below one unit.
  EXPECT_EQ(Parse("0.25", 250), 250u);
  ExpectRejected("0.251", 250, "exceeds the maximum 0.25");
  ExpectRejected("1", 250, "exceeds the maximum");
  EXPECT_EQ(Parse("0", 0), 0u);
  ExpectRejected("0.001", 0, "exceeds the maximum 0");
}

TEST(ParseDecimalMilli, NeverWrapsAroundNearUint64Max) {
  // uint64 max is 18446744073709551615, i.e. 18446744073709551.615 in thousandths.
  EXPECT_EQ(Parse("18446744073709551.615"), kNoMax);
  EXPECT_EQ(Parse("18446744073709551"), kNoMax - 615);
  ExpectRejected("18446744073709551.616", kNoMax, "exceeds the maximum");
  ExpectRejected("18446744073709552", kNoMax, "exceeds the maximum");
  // Values that would wrap to something small if the accumulator overflowed silently.
  ExpectRejected("36893488147419103.232", kNoMax, "exceeds the maximum");
  ExpectRejected("18446744073709551616000", kNoMax, "exceeds the maximum");
  ExpectRejected(std::string(400, '9'), kNoMax, "exceeds the maximum");
}

TEST(ParseDecimalMilli, LongInputIsNotEchoedInFull) {
  std::string huge = "1" + std::string(10'000, 'x');
  Result<uint64_t> r = ParseDecimalMilli(huge, kNoMax);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 200u);
}

TEST(ParseDecimalMilli, TruncatedEchoStaysValidUtf8) {
  // Byte 32 is the second byte of "é": the echo must stop before the whole character.
  std::string text = std::string(31, '1') + "\xC3\xA9" + std::string(50, '1');
  Result<uint64_t> r = ParseDecimalMilli(text, kNoMax);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("\"" + std::string(31, '1') + "...\""), std::string_view::npos)
      << r.status().message();
}

}  // namespace
}  // namespace genledger
