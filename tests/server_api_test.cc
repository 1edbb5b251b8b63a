// The API's routing, auth and ledger calls without sockets (src/server/api.h).
#include "server/api.h"

#include <gtest/gtest.h>

#include "api_test_base.h"

#include <boost/json.hpp>
#include <cstdio>
#include <cstdlib>

#include "genledger/clock.h"

namespace genledger::server {
namespace {

namespace json = boost::json;

class ApiTest : public ApiTestBase {
 protected:
  json::value J(const HttpReply& r) { return Parse(r); }
  void MakeWorkspace(std::string_view ws, std::string limit = "100", std::string region = "global") {
    HttpReply r = Do("PUT", "/v1/workspaces/" + std::string(ws),
                     R"({"limit":)" + limit + R"(,"region":")" + region + "\"}");
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::string Snapshot(std::string_view ws) {
    return Do("GET", "/v1/workspaces/" + std::string(ws)).body +
           Do("GET", "/v1/workspaces/" + std::string(ws) + "/users").body;
  }

};

TEST_F(ApiTest, ChargeQuoteAndIdempotency) {
  MakeWorkspace("acme");
  HttpReply r = Do("POST", "/v1/quote", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3})");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, R"({"cost":3,"affordable":true,"max_quantity":100})");
  EXPECT_TRUE(r.ledger_state) << "a quote reads the balance";
  r = Do("POST", "/v1/charge",
         R"({"workspace":"acme","user":"u","model":"OPENAI-GPT-4O","quantity":3,"id":"k1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state);
  json::value v = J(r);
  EXPECT_EQ(v.at("cost").as_int64(), 3);
  EXPECT_EQ(v.at("remaining").as_int64(), 97);
  EXPECT_EQ(v.at("user_used").as_int64(), 3);
  std::string charge(v.at("charge").as_string());
  EXPECT_EQ(charge.rfind("ch_", 0), 0u);
  EXPECT_FALSE(v.as_object().contains("replayed"));
  r = Do("POST", "/v1/charge",
         R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3,"id":"k1"})");
  v = J(r);
  EXPECT_EQ(v.at("charge").as_string(), charge);
  EXPECT_TRUE(v.at("replayed").as_bool());
  r = Do("POST", "/v1/charge",
         R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":4,"id":"k1"})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "idempotency_conflict");
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":98})");
  EXPECT_EQ(r.status, 402);
  v = J(r);
  EXPECT_EQ(v.at("error").at("code").as_string(), "insufficient_generations");
  EXPECT_EQ(v.at("error").at("cost").as_int64(), 98);
  EXPECT_EQ(v.at("error").at("remaining").as_int64(), 97);
}

TEST_F(ApiTest, PerSecondItemsUseExactSeconds) {
  MakeWorkspace("v", "1000");
  // runway-gen4-alpha-turbo: 0.33/s -> ceil(330 * 3030 / 1e6) = ceil(0.9999) = 1 per output.
  HttpReply r = Do("POST", "/v1/quote",
                   R"({"workspace":"v","user":"u","model":"runway-gen4-alpha-turbo","seconds":3.03,"outputs":2})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"cost":2,"affordable":true,"max_seconds":1515.151})");
  r = Do("POST", "/v1/quote",
         R"({"workspace":"v","user":"u","model":"runway-gen4-alpha-turbo","seconds":10})");
  EXPECT_EQ(r.body, R"({"cost":4,"affordable":true,"max_seconds":3030.303})");
  r = Do("POST", "/v1/quote",
         R"({"workspace":"v","user":"u","model":"runway-gen4-alpha-turbo","quantity":10})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "invalid_quantity");
  r = Do("POST", "/v1/quote", R"({"workspace":"v","user":"u","model":"gpt-4o","seconds":1})");
  EXPECT_EQ(Code(r), "invalid_quantity");
}

TEST_F(ApiTest, ReserveCommitReleaseRefund) {
  MakeWorkspace("acme");
  HttpReply r = Do("POST", "/v1/reserve",
                   R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":10,"ttl_ms":60000})");
  ASSERT_EQ(r.status, 200) << r.body;
  json::value v = J(r);
  std::string rs(v.at("reservation").as_string());
  EXPECT_EQ(v.at("held").as_int64(), 10);
  EXPECT_EQ(v.at("remaining").as_int64(), 90);
  EXPECT_EQ(v.at("expires_at").as_int64(), int64_t(clock_.NowMs() + 60000));
  r = Do("POST", "/v1/commit", R"({"reservation":")" + rs + R"(","quantity":11})");
  EXPECT_EQ(Code(r), "commit_exceeds_hold");
  r = Do("POST", "/v1/commit", R"({"reservation":")" + rs + R"(","quantity":4})");
  ASSERT_EQ(r.status, 200) << r.body;
  v = J(r);
  EXPECT_EQ(v.at("cost").as_int64(), 4);
  EXPECT_EQ(v.at("remaining").as_int64(), 96);
  std::string ch(v.at("charge").as_string());
  r = Do("POST", "/v1/release", R"({"reservation":")" + rs + R"("})");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "reservation_settled");
  r = Do("POST", "/v1/refund", R"({"charge":")" + ch + R"("})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"refunded":4,"remaining":100,"rev":4})");
  r = Do("POST", "/v1/refund", R"({"charge":")" + ch + R"("})");
  EXPECT_EQ(Code(r), "already_refunded");

  r = Do("POST", "/v1/reserve", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":7})");
  rs = std::string(J(r).at("reservation").as_string());
  r = Do("POST", "/v1/release", R"({"reservation":")" + rs + R"("})");
  EXPECT_EQ(r.body, R"({"released":7,"remaining":100,"rev":6})");
  // Commit with no actual usage: the whole hold.
  r = Do("POST", "/v1/reserve", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2})");
  rs = std::string(J(r).at("reservation").as_string());
  r = Do("POST", "/v1/commit", R"({"reservation":")" + rs + R"("})");
  EXPECT_EQ(J(r).at("cost").as_int64(), 2);

  // Bad / unknown ids.
  for (const char* id : {"rs_x", "rs_", "rs_01", "ch_1", "rs_99999999", "rs_18446744073709551616"}) {
    r = Do("POST", "/v1/release", std::string(R"({"reservation":")") + id + "\"}");
    EXPECT_EQ(r.status, 404) << id;
    EXPECT_EQ(Code(r), "unknown_reservation") << id;
  }
  r = Do("POST", "/v1/refund", R"({"charge":"rs_1"})");
  EXPECT_EQ(Code(r), "unknown_charge");
  r = Do("POST", "/v1/reserve",
         R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"ttl_ms":999999999999})");
  EXPECT_EQ(Code(r), "invalid_argument");
}

TEST_F(ApiTest, ErrorsLeaveLedgerUnchanged) {
  MakeWorkspace("acme");
  Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})");
  std::string before = Snapshot("acme");
  struct Case {
    const char* target;
    const char* body;
    int status;
    const char* code;
  } cases[] = {
      {"/v1/charge", "{", 400, "bad_json"},
      {"/v1/charge", "", 400, "bad_json"},
      {"/v1/charge", "[]", 400, "bad_json"},
      {"/v1/charge", "{\"workspace\":\"acme\xff\"}", 400, "bad_json"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"extra":1})", 400, "invalid_argument"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"ttl_ms":5})", 400, "invalid_argument"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","quantity":1})", 400, "invalid_argument"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1.5})", 400, "invalid_quantity"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":99999999999999999999})", 400, "invalid_quantity"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1000001})", 400, "invalid_quantity"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o"})", 400, "invalid_quantity"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"formats":2})", 400, "invalid_quantity"},
      {"/v1/charge", R"({"workspace":"acme","user":"u u","model":"gpt-4o","quantity":1})", 400, "invalid_id"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-5-ultra","quantity":1})", 400, "unknown_model"},
      {"/v1/charge", R"({"workspace":"nope","user":"u","model":"gpt-4o","quantity":1})", 404, "unknown_workspace"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":100})", 402, "insufficient_generations"},
      {"/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":"1"})", 400, "invalid_argument"},
      {"/v1/charge", R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1})", 400, "invalid_argument"},
      {"/v1/batch", R"({"ops":{}})", 400, "invalid_argument"},
      {"/v1/commit", R"({"reservation":"rs_1","quantity":0})", 400, "invalid_quantity"},
      {"/v1/nope", "{}", 404, "not_found"},
  };
  for (const auto& c : cases) {
    HttpReply r = Do("POST", c.target, c.body);
    EXPECT_EQ(r.status, c.status) << c.target << " " << c.body << " -> " << r.body;
    EXPECT_EQ(Code(r), c.code) << c.body;
    // A request refused before it reached the ledger needs no wait for the WAL; a refusal by
    // the ledger (402, 404 unknown_workspace, ...) is derived from its state and does.
    const std::string code = c.code;
    if (code == "bad_json" || code == "invalid_argument" || code == "not_found" || code == "unknown_model") {
      EXPECT_FALSE(r.ledger_state) << c.body;
    } else if (code == "unknown_workspace" || code == "insufficient_generations") {
      EXPECT_TRUE(r.ledger_state) << c.body;
    }
  }
  std::string many = R"({"ops":[)";
  for (int i = 0; i < 51; ++i) many += std::string(i ? "," : "") + R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";
  many += "]}";
  HttpReply r = Do("POST", "/v1/batch", many);
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(Code(r), "too_large");
  r = Do("PUT", "/v1/workspaces/acme", R"({"limit":-1})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("PUT", "/v1/workspaces/acme", R"({"limit":5,"region":"eu"})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("PUT", "/v1/workspaces/acme", R"({"limit":5,"owner":"x"})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("POST", "/v1/workspaces/acme/topup", R"({"amount":0})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("POST", "/v1/workspaces/acme/topup", R"({})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("PUT", "/v1/workspaces/acme/users/u", R"({})");
  EXPECT_EQ(Code(r), "invalid_argument");
  r = Do("POST", "/v1/workspaces/acme/reset", R"({"x":1})");
  EXPECT_EQ(Code(r), "invalid_argument");
  EXPECT_EQ(Snapshot("acme"), before);
  EXPECT_TRUE(ledger_->CheckInvariants().ok());
}

TEST_F(ApiTest, Batch) {
  MakeWorkspace("acme", "10");
  HttpReply r = Do("POST", "/v1/batch",
                   R"({"ops":[)"
                   R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":4,"seq":1},)"
                   R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":7},)"
                   R"({"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","quantity":2},)"
                   R"({"workspace":"acme"},)"
                   R"({"op":"refund","charge":"ch_x"}]})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state);
  json::array res = J(r).at("results").as_array();
  ASSERT_EQ(res.size(), 5u);
  EXPECT_EQ(res[0].at("status").as_int64(), 200);
  EXPECT_EQ(res[0].at("seq").as_int64(), 1);
  EXPECT_EQ(res[0].at("remaining").as_int64(), 6);
  EXPECT_EQ(res[1].at("status").as_int64(), 402);
  EXPECT_EQ(res[1].at("error").at("cost").as_int64(), 7);
  EXPECT_EQ(res[2].at("status").as_int64(), 200);
  EXPECT_EQ(res[2].at("cost").as_int64(), 2);
  EXPECT_EQ(res[3].at("status").as_int64(), 400);
  EXPECT_EQ(res[3].at("error").at("message").as_string(), "missing field 'op'");
  EXPECT_EQ(res[4].at("status").as_int64(), 404);
  EXPECT_EQ(res[4].at("error").at("code").as_string(), "unknown_charge");
}

TEST_F(ApiTest, BatchedChargesMatchOneAtATime) {
  // A frame of charges (the ChargeBatch fast path) with a refusal, a bad op and replays in
  // the middle answers exactly like the same ops sent one by one.
  MakeWorkspace("a", "50");
  MakeWorkspace("b", "50");
  std::vector<std::string> ops;
  for (int i = 0; i < 40; ++i) {
    std::string ws = i % 2 ? "a" : "b";
    int q = (i * 7) % 9 + 1;
    std::string op = R"({"op":"charge","workspace":")" + ws + R"(","user":"u)" +
                     std::to_string(i % 3) + R"(","model":"gpt-4o","quantity":)" +
                     std::to_string(q);
    if (i % 5 == 0) op += R"(,"id":"k)" + std::to_string(i % 10) + "\"";
    if (i == 17) op += R"(,"bogus":1)";
    if (i == 23) op = R"({"op":"charge","workspace":"a","user":"u","model":"nope","quantity":1)";
    ops.push_back(op + R"(,"seq":)" + std::to_string(i) + "}");
  }
  std::string frame = "[";
  for (size_t i = 0; i < ops.size(); ++i) frame += (i ? "," : "") + ops[i];
  frame += "]";
  std::string batched;
  api_->HandleFrame(frame, batched);
  std::string ws_a = Snapshot("a"), ws_b = Snapshot("b");
  // Same ops, one at a time, on a fresh ledger.
  SetUp();
  MakeWorkspace("a", "50");
  MakeWorkspace("b", "50");
  std::string single = "[";
  for (size_t i = 0; i < ops.size(); ++i) {
    std::string one;
    api_->HandleFrame(ops[i], one);
    single += (i ? "," : "") + one;
  }
  single += "]";
  // Charge ids may differ between ledgers; compare everything else.
  json::array x = json::parse(batched).as_array(), y = json::parse(single).as_array();
  ASSERT_EQ(x.size(), y.size());
  int refused = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    x[i].as_object().erase("charge");
    y[i].as_object().erase("charge");
    EXPECT_EQ(x[i], y[i]) << i;
    if (x[i].at("status").as_int64() == 402) ++refused;
  }
  EXPECT_GT(refused, 0);
  EXPECT_EQ(Snapshot("a"), ws_a);
  EXPECT_EQ(Snapshot("b"), ws_b);
}

TEST_F(ApiTest, Frames) {
  MakeWorkspace("acme");
  std::string out;
  EXPECT_TRUE(api_->HandleFrame(
      R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":7})", out));
  json::value v = json::parse(out);
  EXPECT_EQ(v.at("seq").as_int64(), 7);
  EXPECT_EQ(v.at("status").as_int64(), 200);
  out.clear();
  EXPECT_TRUE(api_->HandleFrame(R"([{"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":1},{"op":"charge","seq":2}])", out));
  v = json::parse(out);
  ASSERT_TRUE(v.is_array());
  EXPECT_EQ(v.as_array()[0].at("seq").as_int64(), 1);
  EXPECT_EQ(v.as_array()[1].at("seq").as_int64(), 2);
  EXPECT_EQ(v.as_array()[1].at("status").as_int64(), 400);
  out.clear();
  api_->HandleFrame("{nope", out);
  v = json::parse(out);
  EXPECT_EQ(v.at("status").as_int64(), 400);
  EXPECT_EQ(v.at("error").at("code").as_string(), "bad_json");
}

TEST_F(ApiTest, ListWorkspacesPagesById) {
  for (const char* id : {"b-2", "a-1", "b-1", "c-9"}) MakeWorkspace(id);
  HttpReply r = Do("GET", "/v1/workspaces?prefix=b-&limit=1");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state);
  json::value v = J(r);
  ASSERT_EQ(v.at("workspaces").as_array().size(), 1u);
  EXPECT_EQ(v.at("workspaces").as_array()[0].at("workspace").as_string(), "b-1");
  EXPECT_EQ(v.at("workspaces").as_array()[0].at("limit").as_int64(), 100);
  EXPECT_EQ(v.at("next_cursor").as_string(), "b-1");
  v = J(Do("GET", "/v1/workspaces?prefix=b-&limit=1&cursor=b-1"));
  EXPECT_EQ(v.at("workspaces").as_array()[0].at("workspace").as_string(), "b-2");
  EXPECT_TRUE(v.at("next_cursor").is_null());
  v = J(Do("GET", "/v1/workspaces"));
  std::vector<std::string> ids;
  for (const auto& w : v.at("workspaces").as_array()) ids.emplace_back(w.at("workspace").as_string());
  EXPECT_EQ(ids, (std::vector<std::string>{"a-1", "b-1", "b-2", "c-9"}));
  for (const char* bad : {"/v1/workspaces?limit=0", "/v1/workspaces?limit=1001", "/v1/workspaces?limit=x",
                          "/v1/workspaces?prefix=a%20b", "/v1/workspaces?cursor=", "/v1/workspaces?prefix=%zz"}) {
    r = Do("GET", bad);
    EXPECT_EQ(r.status, 400) << bad;
    EXPECT_EQ(Code(r), "invalid_argument") << bad;
  }
}

TEST_F(ApiTest, AdminEndpoints) {
  HttpReply r = Do("GET", "/v1/workspaces/acme");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(Code(r), "unknown_workspace");
  r = Do("PUT", "/v1/workspaces/acme", R"({"limit":null})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, R"({"workspace":"acme","limit":null,"used":0,"reserved":0,"remaining":null,"region":"global","period":1,)"
                    R"("schedule":{"interval":"none","anchor":null},"period_start":null,"period_end":null,)"
                    R"("granted_remaining":0,"plan_priority":100,"rollover":null,"overage_mode":"hard","overage":0,)"
                    R"("overage_limit":null,"rev":1})");
  r = Do("PUT", "/v1/workspaces/acme", R"({"region":"cn"})");
  EXPECT_EQ(J(r).at("region").as_string(), "cn");
  EXPECT_TRUE(J(r).at("limit").is_null());
  // Lower than unlimited: without "limit_change":"now" it would wait for the next boundary.
  r = Do("PUT", "/v1/workspaces/acme", R"({"limit":50,"limit_change":"now"})");
  EXPECT_EQ(J(r).at("region").as_string(), "cn");   // kept
  EXPECT_EQ(J(r).at("limit").as_int64(), 50);
  r = Do("PUT", "/v1/workspaces/acme/users/bob", R"({"limit":5})");
  ASSERT_EQ(r.status, 200) << r.body;
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"bob","model":"gpt-4o","quantity":6})");
  EXPECT_EQ(Code(r), "user_limit_exceeded");
  EXPECT_EQ(r.status, 402);
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"bob","model":"gpt-4o","quantity":5})");
  EXPECT_EQ(r.status, 200) << r.body;
  r = Do("GET", "/v1/workspaces/acme/users");
  EXPECT_EQ(r.body, R"({"users":[{"user":"bob","used":5,"reserved":0,"limit":5}],"next_cursor":null})");
  r = Do("POST", "/v1/workspaces/acme/topup", R"({"amount":10})");
  EXPECT_EQ(J(r).at("limit").as_int64(), 50);   // the plan; the top-up is a grant on top
  EXPECT_EQ(J(r).at("remaining").as_int64(), 55);
  r = Do("POST", "/v1/workspaces/acme/reset");
  EXPECT_EQ(J(r).at("period").as_int64(), 2);
  EXPECT_EQ(J(r).at("used").as_int64(), 0);
  EXPECT_EQ(J(r).at("limit").as_int64(), 50);
  r = Do("POST", "/v1/workspaces/acme/reset", "{}");
  EXPECT_EQ(r.status, 200);
  // Region: a China-only model in a global workspace.
  MakeWorkspace("glob", "100", "global");
  bool found = false;
  for (const auto& item : ledger_->CurrentCatalog()->items()) {
    if (!item.available_in(Region::kGlobal)) {
      std::string body = R"({"workspace":"glob","user":"u","model":")" + item.id + "\",";
      body += item.per_second() ? R"("seconds":1})" : R"("quantity":1})";
      r = Do("POST", "/v1/charge", body);
      EXPECT_EQ(r.status, 403) << item.id << r.body;
      EXPECT_EQ(Code(r), "model_not_available_in_region");
      found = true;
      break;
    }
  }
  EXPECT_TRUE(found);
  // Routes and methods.
  EXPECT_EQ(Do("DELETE", "/v1/workspaces/acme").status, 405);
  EXPECT_EQ(Do("DELETE", "/v1/workspaces/acme").allow, "GET, PUT");
  EXPECT_EQ(Do("GET", "/v1/charge").status, 405);
  EXPECT_EQ(Do("POST", "/v1/catalog").status, 405);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/topup").status, 405);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/users/bob").status, 405);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/nope").status, 404);
  EXPECT_EQ(Do("GET", "/v1/workspaces/acme/topup/x").status, 404);
  EXPECT_EQ(Do("GET", "/v1/workspaces/").status, 404);
  EXPECT_EQ(Do("GET", "/v1/workspaces//users").status, 404);
  EXPECT_EQ(Do("GET", "/").status, 404);
  EXPECT_EQ(Do("GET", "/v2/catalog").status, 404);
  EXPECT_EQ(Do("GET", "/v1/workspaces/a/users/b/c/d").status, 404);
  EXPECT_EQ(Do("GET", "/v1/catalog?x=1").status, 200);
  EXPECT_EQ(Do("GET", "/v1/workspaces/bad%20id").status, 400);
  EXPECT_EQ(Do("GET", "/healthz").body, R"({"status":"ok","wal":"off"})");
  r = Do("GET", "/metrics");
  EXPECT_EQ(r.content_type.substr(0, 10), "text/plain");
  EXPECT_NE(r.body.find("genledger_requests_total{operation=\"charge\",status=\"402\"} 1"),
            std::string::npos);
  EXPECT_NE(r.body.find("genledger_generations_debited_total 5"), std::string::npos);
  EXPECT_NE(r.body.find("genledger_request_duration_seconds_bucket{operation=\"charge\",le=\"+Inf\"}"),
            std::string::npos);
  r = Do("GET", "/v1/catalog");
  EXPECT_EQ(r.body, "{\"version\":1," + ledger_->CurrentCatalog()->ToJson().substr(1));
}

TEST_F(ApiTest, Roles) {
  auth_->AddToken("admin-secret", Role::kAdmin);
  auth_->AddToken("gate-secret", Role::kGate);
  auth_->AddToken("read-secret", Role::kRead);
  const std::string charge = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";
  HttpReply r = Do("PUT", "/v1/workspaces/acme", R"({"limit":10})");
  EXPECT_EQ(r.status, 401);
  EXPECT_TRUE(r.www_authenticate);
  EXPECT_EQ(Code(r), "unauthorized");
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer wrong").status, 401);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer admin-secre").status, 401);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer admin-secrett").status, 401);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Basic admin-secret").status, 401);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer read-secret").status, 403);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "Bearer admin-secret").status, 200);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme", R"({"limit":10})", "bearer admin-secret").status, 200);
  EXPECT_EQ(Do("POST", "/v1/charge", charge, "Bearer read-secret").status, 403);
  EXPECT_EQ(Code(Do("POST", "/v1/charge", charge, "Bearer read-secret")), "forbidden");
  EXPECT_EQ(Do("POST", "/v1/charge", charge, "Bearer gate-secret").status, 200);
  EXPECT_EQ(Do("POST", "/v1/charge", charge, "Bearer admin-secret").status, 200);
  EXPECT_EQ(Do("POST", "/v1/batch", R"({"ops":[]})", "Bearer read-secret").status, 403);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/topup", R"({"amount":1})", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("POST", "/v1/workspaces/acme/reset", "", "Bearer gate-secret").status, 403);
  EXPECT_EQ(Do("PUT", "/v1/workspaces/acme/users/u", R"({"limit":1})", "Bearer read-secret").status, 403);
  for (const char* tok : {"Bearer read-secret", "Bearer gate-secret", "Bearer admin-secret"}) {
    EXPECT_EQ(Do("GET", "/v1/workspaces/acme", "", tok).status, 200) << tok;
    EXPECT_EQ(Do("GET", "/v1/workspaces/acme/users", "", tok).status, 200) << tok;
    EXPECT_EQ(Do("GET", "/v1/catalog", "", tok).status, 200) << tok;
  }
  EXPECT_EQ(Do("GET", "/v1/catalog").status, 401);
  // Open endpoints.
  EXPECT_EQ(Do("GET", "/healthz").status, 200);
  EXPECT_EQ(Do("GET", "/metrics").status, 200);
  HttpReply ws;
  // A read token upgrades (for subscriptions); its gate ops are refused per op (CheckOpScope).
  Grant read_grant;
  EXPECT_TRUE(api_->AuthorizeWebSocket("Bearer read-secret", ws, &read_grant));
  EXPECT_EQ(read_grant.role, Role::kRead);
  std::string out;
  api_->HandleFrame(R"({"op":"reserve","workspace":"acme","user":"u","model":"gpt-4o","quantity":1})", out, &read_grant, nullptr);
  EXPECT_NE(out.find(R"("status":403)"), std::string::npos) << out;
  EXPECT_FALSE(api_->AuthorizeWebSocket("", ws));
  EXPECT_EQ(ws.status, 401);
  EXPECT_TRUE(api_->AuthorizeWebSocket("Bearer gate-secret", ws));
}

TEST(ServerApiCeilings, TooManyReservationsAndCapacity) {
  LedgerOptions lo;
  lo.max_open_reservations = 1;
  lo.max_workspaces = 1;
  auto ledger = std::make_shared<Ledger>(Catalog::Default(), lo);
  Api api(ledger, std::make_shared<Auth>(), std::make_shared<Metrics>(), ApiLimits{});
  HttpReply r;
  api.HandleHttp("PUT", "/v1/workspaces/a", "", R"({"limit":100})", r);
  ASSERT_EQ(r.status, 200) << r.body;
  api.HandleHttp("PUT", "/v1/workspaces/b", "", R"({"limit":100})", r);
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("capacity_exhausted"), std::string::npos) << r.body;
  const char* reserve = R"({"workspace":"a","user":"u","model":"gpt-4o","quantity":1})";
  api.HandleHttp("POST", "/v1/reserve", "", reserve, r);
  ASSERT_EQ(r.status, 200) << r.body;
  api.HandleHttp("POST", "/v1/reserve", "", reserve, r);
  EXPECT_EQ(r.status, 429);
  EXPECT_NE(r.body.find("too_many_reservations"), std::string::npos) << r.body;
}

TEST(ServerApiCeilings, UserCeilingIs429AndChangesNothing) {
  LedgerOptions lo;
  lo.max_users = 1;
  auto ledger = std::make_shared<Ledger>(Catalog::Default(), lo);
  Api api(ledger, std::make_shared<Auth>(), std::make_shared<Metrics>(), ApiLimits{});
  HttpReply r;
  api.HandleHttp("PUT", "/v1/workspaces/a", "", R"({"limit":100})", r);
  ASSERT_EQ(r.status, 200) << r.body;
  api.HandleHttp("POST", "/v1/charge", "", R"({"workspace":"a","user":"u1","model":"gpt-4o","quantity":1})", r);
  ASSERT_EQ(r.status, 200) << r.body;
  for (const char* path : {"/v1/charge", "/v1/reserve"}) {
    api.HandleHttp("POST", path, "", R"({"workspace":"a","user":"u2","model":"gpt-4o","quantity":1})", r);
    EXPECT_EQ(r.status, 429) << path;
    EXPECT_NE(r.body.find("capacity_exhausted"), std::string::npos) << r.body;
  }
  api.HandleHttp("PUT", "/v1/workspaces/a/users/u3", "", R"({"limit":5})", r);
  EXPECT_EQ(r.status, 429) << r.body;
  api.HandleHttp("GET", "/v1/workspaces/a", "", "", r);
  EXPECT_NE(r.body.find(R"("used":1,)"), std::string::npos) << r.body;
  api.HandleHttp("GET", "/v1/workspaces/a/users", "", "", r);
  EXPECT_EQ(r.body, R"({"users":[{"user":"u1","used":1,"reserved":0,"limit":null}],"next_cursor":null})");
}

TEST(ServerApiCeilings, EarlyEvictionsAreInMetrics) {
  LedgerOptions lo;
  lo.idempotency_capacity = 256;   // one id per shard
  auto ledger = std::make_shared<Ledger>(Catalog::Default(), lo);
  Api api(ledger, std::make_shared<Auth>(), std::make_shared<Metrics>(), ApiLimits{});
  HttpReply r;
  api.HandleHttp("PUT", "/v1/workspaces/a", "", R"({"limit":null})", r);
  ASSERT_EQ(r.status, 200) << r.body;
  for (const char* id : {"k1", "k2"}) {
    api.HandleHttp("POST", "/v1/charge", "",
                   std::string(R"({"workspace":"a","user":"u","model":"gpt-4o","quantity":1,"id":")") + id + "\"}", r);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  api.HandleHttp("GET", "/metrics", "", "", r);
  EXPECT_NE(r.body.find("\ngenledger_idempotency_evicted_early_total 1\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\ngenledger_refund_evicted_early_total 0\n"), std::string::npos) << r.body;
}

TEST_F(ApiTest, UsersArePaginated) {
  MakeWorkspace("team", "null");
  for (int i = 0; i < 5; ++i) {
    const std::string body = R"({"workspace":"team","user":"u)" + std::to_string(i) +
                             R"(","model":"gpt-4o","quantity":)" + std::to_string(10 - i) + "}";
    ASSERT_EQ(Do("POST", "/v1/charge", body).status, 200);
  }
  // Default page holds them all.
  HttpReply r = Do("GET", "/v1/workspaces/team/users");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("users").as_array().size(), 5u);
  EXPECT_TRUE(J(r).at("next_cursor").is_null());
  // Pages of 2, following next_cursor (percent-encoded like a careful client would).
  std::vector<std::string> seen;
  std::string target = "/v1/workspaces/team/users?limit=2";
  for (int pages = 0; pages < 5; ++pages) {
    r = Do("GET", target);
    ASSERT_EQ(r.status, 200) << target << " " << r.body;
    const json::value page = J(r);
    for (const auto& u : page.at("users").as_array()) seen.emplace_back(u.at("user").as_string());
    const json::value& next = page.at("next_cursor");
    if (next.is_null()) break;
    std::string cursor(next.as_string());
    const size_t colon = cursor.find(':');
    cursor.replace(colon, 1, "%3A");
    target = "/v1/workspaces/team/users?cursor=" + cursor + "&limit=2";
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"u0", "u1", "u2", "u3", "u4"}));
  for (const char* bad : {"?limit=0", "?limit=1001", "?limit=x", "?limit=", "?limit=-1", "?cursor=", "?cursor=nope",
                          "?cursor=1%3", "?cursor=1:bad%20id"}) {
    r = Do("GET", std::string("/v1/workspaces/team/users") + bad);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_EQ(Code(r), "invalid_argument") << bad;
  }
  EXPECT_EQ(Do("GET", "/v1/workspaces/team/users?limit=1000").status, 200);
}

TEST(ServerAuth, ParseFile) {
  auto r = Auth::ParseFile(R"({"tokens":[{"token":"a","role":"admin"},{"token":"b","role":"read"}]})");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].role, Role::kRead);
  EXPECT_FALSE(Auth::ParseFile(R"({"tokens":[{"token":"a","role":"root"}]})").ok());
  EXPECT_FALSE(Auth::ParseFile(R"({"tokens":[{"token":"","role":"read"}]})").ok());
  EXPECT_FALSE(Auth::ParseFile(R"({"tokens":[{"token":"a","role":"read","x":1}]})").ok());
  EXPECT_FALSE(Auth::ParseFile(R"({"tokenz":[]})").ok());
  EXPECT_FALSE(Auth::ParseFile(R"({"tokens":[)").ok());
  // Error messages never contain a token.
  auto bad = Auth::ParseFile(R"({"tokens":[{"token":"s3cr3t","role":"root"}]})");
  EXPECT_EQ(std::string(bad.status().message()).find("s3cr3t"), std::string::npos);
}

TEST(ServerAuth, EnvironmentAndReload) {
  Auth open;
  ASSERT_TRUE(open.Init("").ok());
  EXPECT_TRUE(open.open());
  EXPECT_EQ(open.Check(""), Role::kAdmin);

  setenv("GENLEDGER_GATE_TOKEN", "env-gate", 1);
  Auth env;
  ASSERT_TRUE(env.Init("").ok());
  unsetenv("GENLEDGER_GATE_TOKEN");
  EXPECT_FALSE(env.open());
  EXPECT_EQ(env.Check("Bearer env-gate"), Role::kGate);
  EXPECT_EQ(env.Check("Bearer env-gat"), Role::kNone);
  EXPECT_EQ(env.Check(""), Role::kNone);

  std::string path = ::testing::TempDir() + "/genledger_auth_test.json";
  auto write = [&](const char* text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  };
  write(R"({"tokens":[{"token":"t1","role":"read"}]})");
  Auth file;
  ASSERT_TRUE(file.Init(path).ok());
  EXPECT_FALSE(file.open());
  EXPECT_EQ(file.Check("Bearer t1"), Role::kRead);
  write(R"({"tokens":[{"token":"t2","role":"admin"}]})");
  ASSERT_TRUE(file.Reload().ok());
  EXPECT_EQ(file.Check("Bearer t1"), Role::kNone);
  EXPECT_EQ(file.Check("Bearer t2"), Role::kAdmin);
  write("{broken");
  EXPECT_FALSE(file.Reload().ok());
  EXPECT_EQ(file.Check("Bearer t2"), Role::kAdmin);   // old tokens stay
  // An emptied file is refused, not taken to mean "let everybody in" (or "lock everybody out"):
  // the old tokens stay, and the caller logs why.
  write(R"({"tokens":[]})");
  Status empty = file.Reload();
  EXPECT_EQ(empty.code(), Code::kInvalidArgument) << empty.ToString();
  EXPECT_FALSE(file.open());                           // never re-opens
  EXPECT_EQ(file.Check("Bearer t2"), Role::kAdmin);
  EXPECT_EQ(file.Check(""), Role::kNone);
  std::remove(path.c_str());
}

// Open mode (no token at start, loopback) closes for good once a reload finds a token.
TEST(ServerAuth, ReloadThatAddsTokensClosesOpenMode) {
  std::string path = ::testing::TempDir() + "/genledger_auth_open_test.json";
  auto write = [&](const char* text) {
    FILE* f = std::fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(text, f);
    std::fclose(f);
  };
  write(R"({"tokens":[]})");
  Auth auth;
  ASSERT_TRUE(auth.Init(path).ok());
  ASSERT_TRUE(auth.open());
  EXPECT_EQ(auth.Check(""), Role::kAdmin);
  write(R"({"tokens":[{"token":"t1","role":"gate"}]})");
  ASSERT_TRUE(auth.Reload().ok());
  EXPECT_FALSE(auth.open());
  EXPECT_EQ(auth.Check(""), Role::kNone);
  EXPECT_EQ(auth.Check("Bearer nope"), Role::kNone);
  EXPECT_EQ(auth.Check("Bearer t1"), Role::kGate);
  std::remove(path.c_str());
}

// The echoed model name is cut on a character boundary: a cut at byte 64 inside "é" made the
// body invalid UTF-8 (J() parses it with Boost.JSON, which rejects that).
TEST_F(ApiTest, UnknownModelNameIsCutOnACharacterBoundary) {
  MakeWorkspace("acme");
  const std::string model = std::string(63, 'm') + "\xC3\xA9" + "xyz";
  HttpReply r = Do("POST", "/v1/charge",
                   R"({"workspace":"acme","user":"u","quantity":1,"model":")" + model + "\"}");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(Code(r), "unknown_model");
  EXPECT_EQ(J(r).at("error").at("message").as_string(), "unknown model '" + std::string(63, 'm') + "...'");
}

// A charge made before a period reset is refunded into the new period's allowance (200), and a
// second refund is a state conflict (409).
TEST_F(ApiTest, RefundAfterAPeriodResetGoesToTheAllowance) {
  MakeWorkspace("acme", "10");
  HttpReply r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":4})");
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string charge(J(r).at("charge").as_string());
  ASSERT_EQ(Do("POST", "/v1/workspaces/acme/reset").status, 200);
  r = Do("POST", "/v1/refund", R"({"charge":")" + charge + "\"}");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state);
  EXPECT_EQ(J(r).at("refunded").as_int64(), 4);
  EXPECT_EQ(J(r).at("remaining").as_int64(), 14);
  r = Do("POST", "/v1/refund", R"({"charge":")" + charge + "\"}");
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(Code(r), "already_refunded");
}

// PUT /v1/catalog (docs/api.md): validated like --catalog, a bad one is 400 naming the problem
// and changes nothing; a good one is the next version, priced from the next request on, and
// idempotent retries made under the old one are still replays.
TEST_F(ApiTest, TheCatalogIsReplacedByPut) {
  MakeWorkspace("acme", "1000");
  HttpReply r = Do("GET", "/v1/catalog");
  ASSERT_EQ(r.status, 200);
  EXPECT_TRUE(r.ledger_state) << "the version is in the WAL: shown once durable, like a balance";
  EXPECT_EQ(J(r).at("version").as_int64(), 1);
  EXPECT_EQ(J(r).at("items").as_array().size(), Catalog::Default()->items().size());
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"id":"k1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("cost").as_int64(), 2);

  const std::string text =
      R"({"id":"openai-gpt-4o","name":"GPT-4o","category":"text","unit":"message","rate":"RATE","regions":["global"],"aliases":["gpt-4o"]})";
  auto with_rate = [&](const char* rate) {
    std::string item = text;
    item.replace(item.find("RATE"), 4, rate);
    return R"({"items":[)" + item + "]}";
  };
  struct Bad {
    std::string body;
    const char* names;
  };
  const Bad bad[] = {
      {"{", "catalog is not valid JSON"},
      {with_rate("0"), R"(items[0] ("openai-gpt-4o"): rate must be greater than 0)"},
      {with_rate("0.0001"), "at most 3 decimal places"},
      {R"({"items":[]})", "catalog has no items"},
      {R"({"version":1,"items":[)" + text + "]}", R"(unknown top-level field "version")"},
      {"", "catalog is not valid JSON"},
  };
  for (const Bad& b : bad) {
    r = Do("PUT", "/v1/catalog", b.body);
    EXPECT_EQ(r.status, 400) << b.body << " -> " << r.body;
    EXPECT_EQ(Code(r), "invalid_argument") << r.body;
    EXPECT_NE(std::string(J(r).at("error").at("message").as_string()).find(b.names), std::string::npos) << r.body;
  }
  EXPECT_EQ(J(Do("GET", "/v1/catalog")).at("version").as_int64(), 1) << "a refused catalog changes nothing";

  r = Do("PUT", "/v1/catalog", with_rate("3"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_TRUE(r.ledger_state) << "answered once the change is durable";
  EXPECT_EQ(J(r).at("version").as_int64(), 2);
  EXPECT_EQ(J(r).at("items").as_array().size(), 1u);
  EXPECT_EQ(r.body, Do("GET", "/v1/catalog").body) << "the answer is what GET shows";
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2})");
  EXPECT_EQ(J(r).at("cost").as_int64(), 6) << r.body;
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"id":"k1"})");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(J(r).at("cost").as_int64(), 2) << "a retry from version 1: the original answer";
  EXPECT_TRUE(J(r).at("replayed").as_bool());
  r = Do("POST", "/v1/charge", R"({"workspace":"acme","user":"u","model":"o3","quantity":1})");
  EXPECT_EQ(r.status, 400) << "a model the new catalog does not have";
  EXPECT_EQ(Code(r), "unknown_model");
  EXPECT_EQ(Do("DELETE", "/v1/catalog").allow, "GET, PUT");
}

TEST_F(ApiTest, OnlyAnAdminReplacesTheCatalog) {
  auth_->AddToken("admin-secret", Role::kAdmin);
  auth_->AddToken("gate-secret", Role::kGate);
  auth_->AddToken("read-secret", Role::kRead);
  const std::string body = Catalog::Default()->ToJson();
  EXPECT_EQ(Do("PUT", "/v1/catalog", body).status, 401);
  for (const char* token : {"Bearer gate-secret", "Bearer read-secret"}) {
    HttpReply r = Do("PUT", "/v1/catalog", body, token);
    EXPECT_EQ(r.status, 403) << token;
    EXPECT_EQ(Code(r), "forbidden");
  }
  EXPECT_EQ(ledger_->CatalogVersion(), 1u);
  EXPECT_EQ(Do("GET", "/v1/catalog", "", "Bearer read-secret").status, 200);
  HttpReply r = Do("PUT", "/v1/catalog", body, "Bearer admin-secret");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(ledger_->CatalogVersion(), 2u) << "the same catalog again is still a new version";
}

}  // namespace
}  // namespace genledger::server
