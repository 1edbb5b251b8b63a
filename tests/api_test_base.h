// The fixture the API tests without sockets share (server_api_test.cc, server_plan_test.cc): a
// ledger on a manual clock, an Api in open mode, and helpers to call it and read its answers.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "genledger/clock.h"
#include "server/api.h"

namespace genledger::server {

class ApiTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    LedgerOptions lo;
    lo.clock = &clock_;
    ledger_ = std::make_shared<Ledger>(Catalog::Default(), lo);
    auth_ = std::make_shared<Auth>();
    metrics_ = std::make_shared<Metrics>();
    api_ = std::make_unique<Api>(ledger_, auth_, metrics_, ApiLimits{50});
  }

  HttpReply Do(std::string_view method, std::string_view target, std::string_view body = "",
               std::string_view authz = "") {
    HttpReply r;
    api_->HandleHttp(method, target, authz, body, r);
    return r;
  }
  // The answer's JSON (a failed test, and null, if it is not JSON).
  boost::json::value Parse(const HttpReply& r) {
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(r.body, ec);
    EXPECT_FALSE(ec) << r.body;
    return v;
  }
  // The error code of an answer, or "" when it is not an error.
  std::string Code(const HttpReply& r) {
    boost::json::value v = Parse(r);
    if (!v.is_object() || !v.as_object().contains("error")) return "";
    return std::string(v.at("error").at("code").as_string());
  }

  ManualClock clock_;
  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<Auth> auth_;
  std::shared_ptr<Metrics> metrics_;
  std::unique_ptr<Api> api_;
};

}  // namespace genledger::server
