#include "log/log.h"

#include <gtest/gtest.h>

namespace genledger::log {
namespace {

TEST(LogRateLimit, LetsOneLinePerIntervalAndCountsTheRest) {
  RateLimit limit(60'000);
  uint64_t suppressed = 99;
  ASSERT_TRUE(limit.Allow(1'000, &suppressed));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limit.Allow(1'001, &suppressed));
  EXPECT_FALSE(limit.Allow(60'999, &suppressed));
  ASSERT_TRUE(limit.Allow(61'000, &suppressed));
  EXPECT_EQ(suppressed, 2u);
  EXPECT_FALSE(limit.Allow(61'001, &suppressed));
}

TEST(LogLevel, ParsesTheDocumentedNamesOnly) {
  Level level = Level::kInfo;
  EXPECT_TRUE(ParseLevel("warn", &level));
  EXPECT_EQ(level, Level::kWarn);
  EXPECT_TRUE(ParseLevel("off", &level));
  EXPECT_EQ(level, Level::kOff);
  EXPECT_FALSE(ParseLevel("WARN", &level));
  EXPECT_FALSE(ParseLevel("", &level));
  EXPECT_EQ(level, Level::kOff);
}

}  // namespace
}  // namespace genledger::log
