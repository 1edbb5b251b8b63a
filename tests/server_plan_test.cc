// Subscriptions through the API without sockets (docs/api.md, "Subscriptions"): the plan fields of
// PUT/GET /v1/workspaces/{ws}, the grant routes, overage and shadow verdicts in results (HTTP,
// batch and WebSocket frames), and the quote's "how much can I afford".
#include "server/api.h"

#include <gtest/gtest.h>

#include "api_test_base.h"

#include <boost/json.hpp>

#include "genledger/clock.h"
#include "genledger/period.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

class PlanApiTest : public ApiTestBase {
 protected:
  void SetUp() override {
    clock_.Set(*ParseTimeMs("2026-02-10T00:00:00Z"));
    ApiTestBase::SetUp();
  }
  json::object J(const HttpReply& r) {
    json::value v = Parse(r);
    return v.is_object() ? v.as_object() : json::object{};
  }
  int64_t Int(const HttpReply& r, std::string_view field) { return J(r).at(field).as_int64(); }
  void Put(std::string_view ws, std::string_view body) {
    HttpReply r = Do("PUT", "/v1/workspaces/" + std::string(ws), body);
    ASSERT_EQ(r.status, 200) << body << " -> " << r.body;
  }
  HttpReply Charge(std::string_view ws, uint64_t messages) {
    return Do("POST", "/v1/charge",
              R"({"workspace":")" + std::string(ws) + R"(","user":"u","model":"gpt-4o","quantity":)" +
                  std::to_string(messages) + "}");
  }
  // The grants' remaining, in the order GET .../grants lists them ("plan" or "gr_<n>" = remaining).
  std::string Grants(std::string_view ws) {
    HttpReply r = Do("GET", "/v1/workspaces/" + std::string(ws) + "/grants");
    EXPECT_EQ(r.status, 200) << r.body;
    std::string out;
    const json::object listed = J(r);
    for (const json::value& g : listed.at("grants").as_array()) {
      if (!out.empty()) out += ' ';
      out += std::string(g.at("grant").as_string()) + "=" + json::serialize(g.at("remaining"));
    }
    return out;
  }

};

TEST_F(PlanApiTest, PutAndGetThePlanSettings) {
  Put("acme", R"({"limit":1000,"period":{"interval":"month","anchor":"2026-01-31T00:00:00Z"},)"
              R"("plan_priority":50,"rollover":{"max":100,"periods":2},"overage_mode":"soft","overage_limit":20})");
  HttpReply r = Do("GET", "/v1/workspaces/acme");
  ASSERT_EQ(r.status, 200);
  // Anchored on Jan 31: this period runs from Jan 31 to Feb 28 (the day clamped).
  EXPECT_EQ(r.body, R"({"workspace":"acme","limit":1000,"used":0,"reserved":0,"remaining":1000,)"
                    R"("region":"global","period":1,"schedule":{"interval":"month","anchor":1769817600000},)"
                    R"("period_start":1769817600000,"period_end":1772236800000,"granted_remaining":0,)"
                    R"("plan_priority":50,"rollover":{"max":100,"periods":2},"overage_mode":"soft","overage":0,)"
                    R"("overage_limit":20,"rev":1})");
  EXPECT_EQ(*ParseTimeMs("2026-02-28T00:00:00Z"), 1772236800000u);
  // Partial updates keep the rest; null turns rollover and the overage limit off.
  Put("acme", R"({"rollover":null,"overage_limit":null,"period":{"anchor":1769990400000}})");
  json::object o = J(Do("GET", "/v1/workspaces/acme"));
  EXPECT_TRUE(o.at("rollover").is_null());
  EXPECT_TRUE(o.at("overage_limit").is_null());
  EXPECT_EQ(o.at("schedule").at("interval").as_string(), "month");   // kept
  EXPECT_EQ(o.at("schedule").at("anchor").as_int64(), 1769990400000);   // Feb 2
  EXPECT_EQ(o.at("period_end").as_int64(), 1769990400000 + 28LL * 86'400'000);   // Mar 2
  EXPECT_EQ(o.at("overage_mode").as_string(), "soft");
  // Back to manual periods: no schedule, no period bounds.
  Put("acme", R"({"period":{"interval":"none"}})");
  o = J(Do("GET", "/v1/workspaces/acme"));
  EXPECT_TRUE(o.at("schedule").at("anchor").is_null());
  EXPECT_TRUE(o.at("period_start").is_null());
  EXPECT_TRUE(o.at("period_end").is_null());
}

TEST_F(PlanApiTest, BadPlanFieldsAre400AndChangeNothing) {
  Put("acme", R"({"limit":100})");
  const std::string before = Do("GET", "/v1/workspaces/acme").body;
  const std::pair<std::string_view, std::string_view> bad[] = {
      {R"({"period":{"interval":"fortnight"}})", "period.interval"},
      {R"({"limit":5,"period":{"interval":"day","anchor":"2026-02-30T00:00:00Z"}})", "period.anchor"},
      {R"({"rollover":{"max":10}})", "rollover"},   // interval none: nothing to expire after
      {R"({"plan_priority":1001})", "plan_priority"},
      {R"({"overage_mode":"soft","overage_limit":1000000000000001})", "overage_limit"},
      {R"({"limit_change":"now"})", "limit_change"},
      {R"({"limit":5,"owner":"x"})", "owner"},
      {R"({"limit":5,"expires_at":null})", "expires_at"},   // a grant's field, not a workspace's
  };
  for (const auto& [body, field] : bad) {
    HttpReply r = Do("PUT", "/v1/workspaces/acme", body);
    EXPECT_EQ(r.status, 400) << body;
    EXPECT_EQ(Code(r), "invalid_argument") << body;
    EXPECT_NE(J(r).at("error").at("message").as_string().find(field), json::string::npos) << body << r.body;
  }
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme").body, before);
  EXPECT_EQ(Do("GET", "/v1/workspaces/nope").status, 404);   // nothing was created either
}

TEST_F(PlanApiTest, LowerLimitWaitsForTheBoundaryUnlessNow) {
  Put("acme", R"({"limit":100,"period":{"interval":"day","anchor":"2026-01-01T00:00:00Z"}})");
  Put("acme", R"({"limit":60})");
  HttpReply r = Do("GET", "/v1/workspaces/acme");
  EXPECT_EQ(Int(r, "limit"), 100);
  EXPECT_EQ(Int(r, "pending_limit"), 60);
  clock_.Set(*ParseTimeMs("2026-02-11T00:00:00Z"));   // the next boundary
  r = Do("GET", "/v1/workspaces/acme");
  EXPECT_EQ(Int(r, "limit"), 60);
  EXPECT_FALSE(J(r).contains("pending_limit"));
  EXPECT_EQ(Int(r, "period"), 2);
  Put("acme", R"({"limit":40,"limit_change":"now"})");
  r = Do("GET", "/v1/workspaces/acme");
  EXPECT_EQ(Int(r, "limit"), 40);
  EXPECT_FALSE(J(r).contains("pending_limit"));
  Put("acme", R"({"limit":70})");   // an increase applies now
  EXPECT_EQ(Int(Do("GET", "/v1/workspaces/acme"), "limit"), 70);
}

TEST_F(PlanApiTest, GrantsAddListVoidAndRoles) {
  Put("acme", R"({"limit":10,"period":{"interval":"month","anchor":"2026-01-31T00:00:00Z"}})");
  HttpReply r = Do("POST", "/v1/workspaces/acme/grants",
                   R"({"amount":5,"expires_at":"2026-02-20T00:00:00Z","source":"promo","id":"promo-1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state);
  EXPECT_EQ(r.body, R"({"grant":"gr_1","amount":5,"remaining":5,"priority":100,"expires_at":1771545600000,)"
                    R"("source":"promo","created_at":1770681600000,"ends_with_period":false,"rev":2})");
  // A retry with the same id is the same grant; other parameters under that id are a conflict.
  r = Do("POST", "/v1/workspaces/acme/grants",
         R"({"amount":5,"expires_at":1771545600000,"source":"promo","id":"promo-1"})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(J(r).at("grant").as_string(), "gr_1");
  EXPECT_TRUE(J(r).at("replayed").as_bool());
  r = Do("POST", "/v1/workspaces/acme/grants", R"({"amount":6,"source":"promo","id":"promo-1"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "idempotency_conflict");
  r = Do("POST", "/v1/workspaces/acme/grants", R"({"amount":20,"priority":200})");   // a pack, never expires
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(J(r).at("expires_at").is_null());
  EXPECT_EQ(J(r).at("source").as_string(), "topup");
  // The plan first, then the grants in burn order.
  r = Do("GET", "/v1/workspaces/acme/grants");
  ASSERT_EQ(r.status, 200);
  const json::object listed = J(r);
  const json::array& gs = listed.at("grants").as_array();
  ASSERT_EQ(gs.size(), 3u);
  EXPECT_EQ(json::serialize(gs[0]),
            R"({"grant":"plan","amount":10,"remaining":10,"priority":100,"expires_at":1772236800000,)"
            R"("source":"plan","created_at":1769817600000,"ends_with_period":true})");
  EXPECT_EQ(Grants("acme"), "plan=10 gr_1=5 gr_2=20");
  EXPECT_EQ(Int(Do("GET", "/v1/workspaces/acme"), "granted_remaining"), 25);
  EXPECT_EQ(Int(Do("GET", "/v1/workspaces/acme"), "remaining"), 35);
  // Errors.
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/grants", R"({"amount":0})").status, 400);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/grants", R"({"priority":1})").status, 400);   // amount required
  r = Do("POST", "/v1/workspaces/acme/grants", R"({"amount":1,"expires_at":"2026-02-01T00:00:00Z"})");
  EXPECT_EQ(r.status, 400) << r.body;   // in the past
  EXPECT_EQ(Do("POST", "/v1/workspaces/nope/grants", R"({"amount":1})").status, 404);
  // Void: what is left is gone; a second void and unknown ids are 404 unknown_grant.
  r = Do("DELETE", "/v1/workspaces/acme/grants/gr_2");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("grant").as_string(), "gr_2");
  EXPECT_EQ(Int(r, "remaining"), 0);
  EXPECT_EQ(Int(r, "amount"), 20);
  EXPECT_EQ(Grants("acme"), "plan=10 gr_1=5");
  for (std::string_view id : {"gr_2", "gr_99", "plan", "gr_01", "x"}) {
    r = Do("DELETE", "/v1/workspaces/acme/grants/" + std::string(id));
    EXPECT_EQ(r.status, 404) << id;
    EXPECT_EQ(Code(r), "unknown_grant") << id;
  }
  // Routes: methods and roles.
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme/grants").allow, "GET, POST");
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/grants/gr_1").allow, "DELETE");
  EXPECT_EQ(Do("DELETE", "/v1/workspaces/acme").allow, "GET, PUT");
  auth_->AddToken("admin-secret", Role::kAdmin);
  auth_->AddToken("gate-secret", Role::kGate);
  auth_->AddToken("read-secret", Role::kRead);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/grants", R"({"amount":1})", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("DELETE", "/v1/workspaces/acme/grants/gr_1", "", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"overage_mode":"soft"})", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/grants", "", "Bearer read-secret").status, 200);
  EXPECT_EQ(Do("DELETE", "/v1/workspaces/acme/grants/gr_1", "", "Bearer admin-secret").status, 200);
}

TEST_F(PlanApiTest, BurnOrderIsVisibleThroughHttp) {
  Put("acme", R"({"limit":10,"period":{"interval":"month","anchor":"2026-01-31T00:00:00Z"}})");
  ASSERT_EQ(Do("POST", "/v1/workspaces/acme/grants", R"({"amount":20})").status, 200);   // never expires
  ASSERT_EQ(Do("POST", "/v1/workspaces/acme/grants",
                R"({"amount":5,"source":"promo","expires_at":"2026-02-15T00:00:00Z"})").status, 200);
  // Listed plan first, then the grants in burn order. Burn order: the promo (expires first), the
  // plan (ends with the period), the pack (never).
  EXPECT_EQ(Grants("acme"), "plan=10 gr_2=5 gr_1=20");
  ASSERT_EQ(Charge("acme", 7).status, 200);
  EXPECT_EQ(Grants("acme"), "plan=8 gr_2=0 gr_1=20");
  HttpReply r = Charge("acme", 10);
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(Int(r, "remaining"), 18);
  EXPECT_EQ(Grants("acme"), "plan=0 gr_2=0 gr_1=18");
  // The refund goes back to where the charge came from.
  ASSERT_EQ(Do("POST", "/v1/refund", R"({"charge":")" + std::string(J(r).at("charge").as_string()) + "\"}").status, 200);
  EXPECT_EQ(Grants("acme"), "plan=8 gr_2=0 gr_1=20");
}

TEST_F(PlanApiTest, SoftOverageInHttpBatchAndFrames) {
  Put("acme", R"({"limit":10,"overage_mode":"soft","overage_limit":5})");
  HttpReply r = Charge("acme", 12);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Int(r, "overage"), 2);
  EXPECT_FALSE(J(r).contains("would_refuse"));
  r = Charge("acme", 4);   // 2 + 4 > 5
  EXPECT_EQ(r.status, 402);
  EXPECT_EQ(Code(r), "insufficient_generations");
  // A batch of consecutive charges (Ledger::ChargeBatch) and a WebSocket frame use the same encoder.
  const std::string op = R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";
  r = Do("POST", "/v1/batch", R"({"ops":[)" + op + "," + op + "]}");
  ASSERT_EQ(r.status, 200) << r.body;
  const json::object batch = J(r);
  const json::array& results = batch.at("results").as_array();
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].at("overage").as_int64(), 1);
  EXPECT_EQ(results[1].at("overage").as_int64(), 1);
  std::string frame;
  EXPECT_TRUE(api_->HandleFrame(op, frame));
  EXPECT_EQ(json::parse(frame).at("overage").as_int64(), 1) << frame;
  EXPECT_EQ(Int(Do("GET", "/v1/workspaces/acme"), "overage"), 5);
  EXPECT_EQ(Int(Do("GET", "/v1/workspaces/acme"), "overdrawn"), 5);
  // A hold admitted into the overage room: its commit reports the overage.
  Put("acme", R"({"overage_limit":8})");
  r = Do("POST", "/v1/reserve", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Do("POST", "/v1/commit", R"({"reservation":")" + std::string(J(r).at("reservation").as_string()) + "\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Int(r, "overage"), 3);
}

TEST_F(PlanApiTest, ShadowModeSaysWhatHardWouldRefuse) {
  Put("acme", R"({"limit":5,"overage_mode":"shadow"})");
  HttpReply r = Charge("acme", 6);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("would_refuse").as_string(), "insufficient_generations");
  r = Do("POST", "/v1/reserve", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("would_refuse").as_string(), "insufficient_generations");
  std::string frame;
  api_->HandleFrame(R"([{"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":4}])", frame);
  EXPECT_EQ(json::parse(frame).at(0).at("would_refuse").as_string(), "insufficient_generations") << frame;
  ASSERT_EQ(Do("PUT", "/v1/workspaces/acme/users/u", R"({"limit":1})").status, 200);
  Put("acme", R"({"limit":1000})");
  r = Charge("acme", 1);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("would_refuse").as_string(), "user_limit_exceeded");
  r = Do("GET", "/metrics");
  EXPECT_NE(r.body.find("genledger_shadow_would_refuse_total{code=\"insufficient_generations\"} 3\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("genledger_shadow_would_refuse_total{code=\"user_limit_exceeded\"} 1\n"), std::string::npos);
  // Hard mode again: refused.
  Put("acme", R"({"overage_mode":"hard"})");
  EXPECT_EQ(Charge("acme", 1).status, 402);
}

TEST_F(PlanApiTest, QuoteSaysWhatFitsExactly) {
  Put("acme", R"({"limit":10})");
  const std::string video = R"({"workspace":"acme","user":"u","model":"runway-gen4-alpha-turbo","outputs":2)";
  HttpReply r = Do("POST", "/v1/quote", video + "}");
  ASSERT_EQ(r.status, 200) << r.body;
  // Only the maximum asked: no cost. 5 generations per output at 0.33/s: 15.151 s each.
  EXPECT_EQ(r.body, R"({"max_seconds":15.151})");
  r = Do("POST", "/v1/quote", video + R"(,"seconds":15.152})");
  EXPECT_EQ(r.body, R"({"cost":12,"affordable":false,"max_seconds":15.151})");
  EXPECT_EQ(Do("POST", "/v1/charge", video + R"(,"seconds":15.152})").status, 402);
  r = Do("POST", "/v1/charge", video + R"(,"seconds":15.151})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Int(r, "cost"), 10);
  // Per-unit items, and the user's cap.
  Put("acme", R"({"limit":100})");
  ASSERT_EQ(Do("PUT", "/v1/workspaces/acme/users/u", R"({"limit":13})").status, 200);
  r = Do("POST", "/v1/quote", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3})");
  EXPECT_EQ(r.body, R"({"cost":3,"affordable":true,"max_quantity":3})");
  r = Do("POST", "/v1/quote", R"({"workspace":"acme","user":"other","model":"gpt-4o"})");
  EXPECT_EQ(r.body, R"({"max_quantity":90})");
  // In a batch, too.
  r = Do("POST", "/v1/batch", R"({"ops":[{"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","seq":1}]})");
  EXPECT_EQ(r.body, R"({"results":[{"status":200,"seq":1,"max_quantity":3}]})");
  // A quote asking only for the maximum still checks the rest of the usage.
  r = Do("POST", "/v1/quote", R"({"workspace":"acme","user":"u","model":"gpt-4o","outputs":2})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_quantity");
}

}  // namespace
}  // namespace genledger::server
