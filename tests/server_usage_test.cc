// GET /v1/workspaces/{ws}/usage through the API without sockets (docs/api.md, "Usage"): JSON and
// CSV answers, periods, and the 400/404 errors.
#include "server/api.h"

#include <gtest/gtest.h>

#include "api_test_base.h"

#include <boost/json.hpp>

#include "genledger/clock.h"
#include "genledger/period.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

class UsageApiTest : public ApiTestBase {
 protected:
  void SetUp() override {
    clock_.Set(*ParseTimeMs("2026-02-10T12:00:00Z"));
    ApiTestBase::SetUp();
    ASSERT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":1000})").status, 200);
  }
  void Charge(std::string_view user, std::string_view model, uint64_t quantity) {
    HttpReply r = Do("POST", "/v1/charge",
                     R"({"workspace":"acme","user":")" + std::string(user) + R"(","model":")" + std::string(model) +
                         R"(","quantity":)" + std::to_string(quantity) + "}");
    ASSERT_EQ(r.status, 200) << r.body;
  }
};

TEST_F(UsageApiTest, GroupsByUserAsJson) {
  Charge("alice", "openai-gpt-4o", 5);
  Charge("bob", "stable-diffusion", 7);
  Charge("alice", "stable-diffusion", 3);
  HttpReply r = Do("GET", "/v1/workspaces/acme/usage?group_by=user");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body,
            R"({"workspace":"acme","period":1,"period_start":null,"period_end":null,"group_by":["user"],)"
            R"("rows":[{"user":"alice","used":8,"charges":2},{"user":"bob","used":7,"charges":1}],)"
            R"("total":{"used":15,"charges":3}})");
  EXPECT_TRUE(r.ledger_state);
}

TEST_F(UsageApiTest, TwoDimensionsAndDays) {
  Charge("alice", "openai-gpt-4o", 5);
  clock_.Advance(24 * 3600 * 1000);
  Charge("alice", "stable-diffusion", 2);
  json::value v = Parse(Do("GET", "/v1/workspaces/acme/usage?period=current&group_by=day,category"));
  const json::array& rows = v.at("rows").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].at("day").as_string(), "2026-02-10");
  EXPECT_EQ(rows[0].at("category").as_string(), "text");
  EXPECT_EQ(rows[1].at("day").as_string(), "2026-02-11");
  EXPECT_EQ(rows[1].at("category").as_string(), "image");
  EXPECT_EQ(v.at("group_by"), json::parse(R"(["day","category"])"));
}

TEST_F(UsageApiTest, Csv) {
  Charge("alice", "openai-gpt-4o", 5);
  Charge("bob", "openai-gpt-4o", 1);
  HttpReply r = Do("GET", "/v1/workspaces/acme/usage?group_by=model,user&format=csv");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.content_type, "text/csv; charset=utf-8");
  EXPECT_EQ(r.body, "model,user,used,charges\r\nopenai-gpt-4o,alice,5,1\r\nopenai-gpt-4o,bob,1,1\r\n");
}

TEST_F(UsageApiTest, PreviousAndNumberedPeriods) {
  Charge("alice", "openai-gpt-4o", 5);
  ASSERT_EQ(Do("POST", "/v1/workspaces/acme/reset").status, 200);
  Charge("bob", "openai-gpt-4o", 2);
  json::value prev = Parse(Do("GET", "/v1/workspaces/acme/usage?period=previous&group_by=user"));
  EXPECT_EQ(prev.at("period").as_int64(), 1);
  EXPECT_EQ(prev.at("total").at("used").as_int64(), 5);
  json::value two = Parse(Do("GET", "/v1/workspaces/acme/usage?period=2&group_by=user"));
  EXPECT_EQ(two.at("total").at("used").as_int64(), 2);
  HttpReply gone = Do("GET", "/v1/workspaces/acme/usage?period=3&group_by=user");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(Code(gone), "unknown_period");
}

TEST_F(UsageApiTest, Errors) {
  for (const char* q : {"", "?group_by=", "?group_by=team", "?group_by=user,user", "?group_by=user,model,day",
                        "?group_by=user&period=last", "?group_by=user&period=0", "?group_by=user&period=-1",
                        "?group_by=user&format=xml"}) {
    HttpReply r = Do("GET", std::string("/v1/workspaces/acme/usage") + q);
    EXPECT_EQ(r.status, 400) << q << " " << r.body;
    EXPECT_EQ(Code(r), "invalid_argument") << q;
  }
  HttpReply r = Do("GET", "/v1/workspaces/nope/usage?group_by=user");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "unknown_workspace");
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/usage?group_by=user&period=previous").status, 404);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/usage?group_by=user").status, 405);
}

TEST_F(UsageApiTest, MetricsCountFolding) {
  const std::string m = Do("GET", "/metrics").body;
  EXPECT_NE(m.find("genledger_usage_history_folded_total 0"), std::string::npos) << m;
  EXPECT_NE(m.find("genledger_usage_history_bytes"), std::string::npos);
}

}  // namespace
}  // namespace genledger::server
