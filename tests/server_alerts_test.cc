// Alerts through the API without sockets (docs/api.md, "Alerts"): PUT/GET
// /v1/workspaces/{ws}/alerts, their 400s (nothing changed), roles, and the event JSON encoder
// (src/server/events_json.h) the streams and webhooks share.
#include "server/api.h"

#include <gtest/gtest.h>

#include "api_test_base.h"

#include <boost/json.hpp>

#include "server/events_json.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

class AlertsApiTest : public ApiTestBase {
 protected:
  HttpReply Charge(std::string_view ws, uint64_t messages) {
    return Do("POST", "/v1/charge",
              R"({"workspace":")" + std::string(ws) + R"(","user":"u","model":"gpt-4o","quantity":)" +
                  std::to_string(messages) + "}");
  }
  HttpReply PutAlerts(std::string_view ws, std::string_view body, std::string_view authz = "") {
    return Do("PUT", "/v1/workspaces/" + std::string(ws) + "/alerts", body, authz);
  }
  std::string GetAlerts(std::string_view ws) {
    HttpReply r = Do("GET", "/v1/workspaces/" + std::string(ws) + "/alerts");
    EXPECT_EQ(r.status, 200) << r.body;
    return r.body;
  }
  std::vector<LedgerEvent> Events() {
    std::vector<LedgerEvent> out;
    for (uint32_t s = 0; s < Ledger::ShardCount(); ++s) ledger_->ReadEvents(s, 1, SIZE_MAX, out);
    return out;
  }
};

TEST_F(AlertsApiTest, PutThenGetWithStates) {
  ASSERT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":100})").status, 200);
  HttpReply r = PutAlerts("acme", R"({"alerts":[{"name":"80pct","when":"used_percent","at":80},)"
                                  R"({"name":"low","when":"remaining","at":100}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  // remaining 100 <= 100 already: `low` fires as it is set.
  EXPECT_EQ(r.body, R"({"workspace":"acme","alerts":[{"name":"80pct","when":"used_percent","at":80,"state":"armed"},)"
                    R"({"name":"low","when":"remaining","at":100,"state":"fired"}]})");
  ASSERT_EQ(Charge("acme", 80).status, 200);
  EXPECT_EQ(GetAlerts("acme"), R"({"workspace":"acme","alerts":[{"name":"80pct","when":"used_percent","at":80,"state":"fired"},)"
                               R"({"name":"low","when":"remaining","at":100,"state":"fired"}]})");
  const std::vector<LedgerEvent> evs = Events();
  ASSERT_EQ(evs.size(), 2u);
  std::string body;
  AppendEventJson(body, evs[1]);
  const json::object o = json::parse(body).as_object();
  EXPECT_EQ(o.at("event").as_string(), "alert");
  EXPECT_EQ(o.at("id").as_string(), EventIdText(evs[1].id));
  EXPECT_EQ(o.at("workspace").as_string(), "acme");
  EXPECT_EQ(o.at("alert").as_string(), "80pct");
  EXPECT_EQ(o.at("state").as_string(), "fired");
  EXPECT_EQ(o.at("used").as_int64(), 80);
  EXPECT_EQ(o.at("remaining").as_int64(), 20);
  EXPECT_EQ(o.at("limit").as_int64(), 100);
  EXPECT_EQ(o.at("period").as_int64(), 1);
  EXPECT_EQ(o.at("at_ms").as_int64(), int64_t(clock_.NowMs()));
  // An empty list removes them.
  ASSERT_EQ(PutAlerts("acme", R"({"alerts":[]})").status, 200);
  EXPECT_EQ(GetAlerts("acme"), R"({"workspace":"acme","alerts":[]})");
}

TEST_F(AlertsApiTest, BadBodiesAre400AndChangeNothing) {
  ASSERT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":100})").status, 200);
  ASSERT_EQ(PutAlerts("acme", R"({"alerts":[{"name":"keep","when":"remaining","at":5}]})").status, 200);
  const std::string before = GetAlerts("acme");
  std::string seventeen = R"({"alerts":[)";
  for (int i = 0; i < 17; ++i) seventeen += std::string(i ? "," : "") + R"({"name":"a)" + std::to_string(i) + R"(","when":"remaining","at":1})";
  seventeen += "]}";
  const std::pair<std::string, std::string> cases[] = {
      {"not json", "bad_json"},
      {R"([])", "invalid_argument"},
      {R"({})", "invalid_argument"},
      {R"({"alerts":{}})", "invalid_argument"},
      {R"({"alerts":[],"extra":1})", "invalid_argument"},
      {seventeen, "invalid_argument"},
      {R"({"alerts":[1]})", "invalid_argument"},
      {R"({"alerts":[{"name":"has space","when":"remaining","at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"","when":"remaining","at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"x@y","when":"remaining","at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":")" + std::string(65, 'n') + R"(","when":"remaining","at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"d","when":"remaining","at":1},{"name":"d","when":"remaining","at":2}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"w","when":"balance","at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"w","when":7,"at":1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"p","when":"used_percent","at":0}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"p","when":"used_percent","at":101}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining","at":-1}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining","at":1.5}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining","at":"1"}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining","at":1000000000000001}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining"}]})", "invalid_argument"},
      {R"({"alerts":[{"name":"r","when":"remaining","at":1,"color":"red"}]})", "invalid_argument"},
  };
  for (const auto& [body, code] : cases) {
    HttpReply r = PutAlerts("acme", body);
    EXPECT_EQ(r.status, 400) << body << " -> " << r.body;
    EXPECT_EQ(Code(r), code) << body << " -> " << r.body;
  }
  EXPECT_EQ(GetAlerts("acme"), before);
  // The message names the problem.
  EXPECT_NE(PutAlerts("acme", R"({"alerts":[{"name":"p","when":"used_percent","at":0}]})").body.find("alerts[0].at"),
            std::string::npos);
  EXPECT_EQ(PutAlerts("nobody", R"({"alerts":[]})").status, 404);
  EXPECT_EQ(Do("GET", "/v1/workspaces/nobody/alerts").status, 404);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/alerts", "{}").status, 405);
}

TEST_F(AlertsApiTest, ReadMayListOnlyAdminMaySet) {
  auth_->AddToken("admin-secret", Role::kAdmin);
  auth_->AddToken("gate-secret", Role::kGate);
  auth_->AddToken("read-secret", Role::kRead);
  ASSERT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":100})", "Bearer admin-secret").status, 200);
  const std::string body = R"({"alerts":[{"name":"a","when":"remaining","at":1}]})";
  EXPECT_EQ(PutAlerts("acme", body).status, 401);
  EXPECT_EQ(PutAlerts("acme", body, "Bearer read-secret").status, 403);
  EXPECT_EQ(PutAlerts("acme", body, "Bearer gate-secret").status, 403);
  EXPECT_EQ(PutAlerts("acme", body, "Bearer admin-secret").status, 200);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/alerts", "", "Bearer read-secret").status, 200);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/alerts").status, 401);
}

TEST(EventsJson, EveryKind) {
  LedgerEvent e;
  e.id = (7u << 8) | 3;
  e.kind = EventKind::kPeriodReset;
  e.workspace = "acme";
  e.used = 0;
  e.remaining = 100;
  e.limit = 100;
  e.period = 2;
  e.rev = 9;
  e.at_ms = 1700000000000;
  std::string out;
  AppendEventJson(out, e);
  EXPECT_EQ(out, R"({"event":"period_reset","id":"evt_1795","workspace":"acme","used":0,"remaining":100,"limit":100,)"
                 R"("period":2,"rev":9,"at_ms":1700000000000})");
  e.kind = EventKind::kDepleted;
  e.fired = false;
  out.clear();
  AppendEventJson(out, e);
  EXPECT_EQ(out, R"({"event":"depleted","id":"evt_1795","workspace":"acme","state":"recovered","used":0,"remaining":100,)"
                 R"("limit":100,"period":2,"rev":9,"at_ms":1700000000000})");
  e.kind = EventKind::kAlert;
  e.alert = "low";
  e.fired = true;
  e.remaining = kUnlimited;
  e.limit = kUnlimited;
  out.clear();
  AppendEventJson(out, e);
  EXPECT_EQ(out, R"({"event":"alert","id":"evt_1795","workspace":"acme","alert":"low","state":"fired","used":0,)"
                 R"("remaining":null,"limit":null,"period":2,"rev":9,"at_ms":1700000000000})");
  EXPECT_EQ(EventIdText(1795), "evt_1795");
}

}  // namespace
}  // namespace genledger::server
