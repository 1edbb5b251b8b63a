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

TEST(Status, WireNamesAndHttpStatusesArePinned) {
  EXPECT_EQ(CodeName(Code::kInsufficientGenerations), "insufficient_generations");
  EXPECT_EQ(HttpStatus(Code::kInsufficientGenerations), 402);
  EXPECT_EQ(CodeName(Code::kUserLimitExceeded), "user_limit_exceeded");
  EXPECT_EQ(HttpStatus(Code::kUserLimitExceeded), 402);
  EXPECT_EQ(HttpStatus(Code::kModelNotAvailableInRegion), 403);
  EXPECT_EQ(HttpStatus(Code::kUnknownWorkspace), 404);
  EXPECT_EQ(HttpStatus(Code::kIdempotencyConflict), 409);
  EXPECT_EQ(HttpStatus(Code::kReservationSettled), 409);
  EXPECT_EQ(HttpStatus(Code::kAlreadyRefunded), 409);
  EXPECT_EQ(HttpStatus(Code::kUnavailable), 503);
  EXPECT_EQ(HttpStatus(Code::kUnknownModel), 400);
  EXPECT_EQ(HttpStatus(Code::kOk), 200);
  EXPECT_EQ(CodeName(Code::kInternal), "internal");
  EXPECT_EQ(HttpStatus(Code::kInternal), 500);
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
