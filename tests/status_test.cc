#include "genledger/status.h"

#include <gtest/gtest.h>

namespace genledger {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Code::kOk);
}

TEST(Status, CarriesCodeAndMessage) {
  Status s(Code::kInvalidQuantity, "quantity must be positive");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "quantity must be positive");
  EXPECT_EQ(s.ToString(), "invalid_quantity: quantity must be positive");
}

TEST(Status, DefaultMessageWhenNoneGiven) {
  Status s(Code::kInsufficientGenerations);
  EXPECT_FALSE(s.message().empty());
  EXPECT_NE(s.message(), "ok");
}

TEST(Status, WireNamesArePinned) {
  EXPECT_EQ(CodeName(Code::kInsufficientGenerations), "insufficient_generations");
  EXPECT_EQ(CodeName(Code::kUserLimitExceeded), "user_limit_exceeded");
  EXPECT_EQ(CodeName(Code::kInternal), "internal");
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> good(7);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 7);
  EXPECT_TRUE(good.status().ok());

  Result<int> bad(Code::kUnknownCharge, "nope");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.code(), Code::kUnknownCharge);
  EXPECT_EQ(bad.status().message(), "nope");
}

}  // namespace
}  // namespace genledger
