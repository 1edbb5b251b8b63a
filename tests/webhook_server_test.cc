// The /v1/webhooks routes of a real server in process with a real data directory: register,
// validation errors, list without secrets, delete, deliveries, /metrics lines, and the registry
// surviving a restart. (Delivery of real ledger events waits for Ledger::ReadEvents; the engine
// is covered by webhook_delivery_test against loopback receivers.)
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "beast_test_client.h"
#include "genledger/durability.h"
#include "server/server.h"
#include "temp_dir.h"
#include "webhook/service.h"

namespace genledger::server {
namespace {

using beast_test::Client;
using beast_test::http::verb;
namespace json = boost::json;

class WebhookServerTest : public ::testing::Test {
 protected:
  void TearDown() override { Stop(); }
  void Start() {
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = tmp_.path();
    // Snapshots on (the default): a clean stop writes one, so a restart loads block 4.
    auto d = Durability::Open(*ledger_, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    durability_ = std::move(*d);
    auto svc = webhook::Service::Create(*ledger_, durability_.get(), {});
    ASSERT_TRUE(svc.ok()) << svc.status().ToString();
    webhooks_ = std::move(*svc);
    ServerOptions opt;
    opt.port = 0;
    opt.threads = 2;
    auto auth = std::make_shared<Auth>();
    ASSERT_TRUE(auth->Init("").ok());
    server_ = std::make_unique<Server>(opt, ledger_, auth, nullptr, durability_.get());
    server_->api().SetWebhooks(webhooks_.get());
    webhooks_->Start();
    ASSERT_TRUE(server_->Start().ok());
  }
  void Stop() {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    server_.reset();
    webhooks_.reset();
    durability_.reset();
  }
  beast_test::Response Do(verb m, std::string target, std::string body = "") {
    Client c(server_->port());
    return c.Do(m, std::move(target), std::move(body), nullptr);
  }

  genledger::testing::TempDir tmp_;
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<Durability> durability_;
  std::unique_ptr<webhook::Service> webhooks_;
  std::unique_ptr<Server> server_;
};

TEST_F(WebhookServerTest, RegisterListDeleteAndErrors) {
  Start();
  auto r = Do(verb::post, "/v1/webhooks",
              R"({"url":"https://hooks.example.com/g","events":["alert","depleted"],"workspaces":null,"secret":"whsec_0123456789abcdef"})");
  ASSERT_EQ(r.result_int(), 201) << r.body();
  EXPECT_EQ(r.body().find("whsec_"), std::string::npos) << r.body();   // the secret is never returned
  auto o = json::parse(r.body()).as_object();
  EXPECT_EQ(o.at("webhook").as_string(), "wh_1");
  EXPECT_EQ(json::serialize(o.at("events")), R"(["alert","depleted"])");
  EXPECT_TRUE(o.at("workspaces").is_null());

  r = Do(verb::post, "/v1/webhooks", R"({"url":"http://10.0.0.1:8080/h","workspaces":["acme"],"secret":"0123456789abcdef"})");
  ASSERT_EQ(r.result_int(), 201) << r.body();
  EXPECT_EQ(json::parse(r.body()).at("webhook").as_string(), "wh_2");

  struct Bad {
    const char* body;
    const char* says;
  } bad[] = {
      {R"({"url":"https://x.example/h","secret":"short"})", "secret"},
      {R"({"url":"ftp://x.example/h","secret":"0123456789abcdef"})", "url"},
      {R"({"url":"https://u:p@x.example/h","secret":"0123456789abcdef"})", "user info"},
      {R"({"url":"https://x.example/h","secret":"0123456789abcdef","events":["charge"]})", "events"},
      {R"({"url":"https://x.example/h","secret":"0123456789abcdef","events":[]})", "events"},
      {R"({"url":"https://x.example/h","secret":"0123456789abcdef","workspaces":[]})", "workspaces"},
      {R"({"url":"https://x.example/h","secret":"0123456789abcdef","workspaces":["no spaces"]})", "workspaces"},
      {R"({"url":"https://x.example/h","secret":"0123456789abcdef","colour":1})", "unknown field"},
      {R"({"secret":"0123456789abcdef"})", "url"},
      {R"([1])", "object"},
  };
  for (const Bad& b : bad) {
    r = Do(verb::post, "/v1/webhooks", b.body);
    EXPECT_EQ(r.result_int(), 400) << b.body << " -> " << r.body();
    EXPECT_NE(r.body().find(b.says), std::string::npos) << b.body << " -> " << r.body();
  }

  r = Do(verb::get, "/v1/webhooks");
  ASSERT_EQ(r.result_int(), 200);
  EXPECT_EQ(json::parse(r.body()).at("webhooks").as_array().size(), 2u);
  EXPECT_EQ(r.body().find("secret"), std::string::npos);

  r = Do(verb::get, "/v1/webhooks/wh_1/deliveries");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  EXPECT_EQ(json::parse(r.body()).at("deliveries").as_array().size(), 0u);
  EXPECT_EQ(Do(verb::get, "/v1/webhooks/wh_9/deliveries").result_int(), 404);

  EXPECT_EQ(Do(verb::delete_, "/v1/webhooks/wh_1").result_int(), 200);
  EXPECT_EQ(Do(verb::delete_, "/v1/webhooks/wh_1").result_int(), 404);
  EXPECT_EQ(Do(verb::delete_, "/v1/webhooks/nope").result_int(), 404);

  r = Do(verb::get, "/metrics");
  EXPECT_NE(r.body().find("genledger_webhook_deliveries_total 0"), std::string::npos);

  // 32 in all, then a clear 400.
  for (int i = 0; i < 31; ++i) {
    ASSERT_EQ(Do(verb::post, "/v1/webhooks", R"({"url":"https://x.example/h","secret":"0123456789abcdef"})").result_int(), 201) << i;
  }
  r = Do(verb::post, "/v1/webhooks", R"({"url":"https://x.example/h","secret":"0123456789abcdef"})");
  EXPECT_EQ(r.result_int(), 400) << r.body();
  EXPECT_NE(r.body().find("at most 32 webhooks"), std::string::npos) << r.body();
}

TEST_F(WebhookServerTest, RegistrySurvivesARestart) {
  Start();
  ASSERT_EQ(Do(verb::post, "/v1/webhooks", R"({"url":"https://a.example/h","secret":"0123456789abcdef"})").result_int(), 201);
  ASSERT_EQ(Do(verb::post, "/v1/webhooks", R"({"url":"https://b.example/h","secret":"0123456789abcdef"})").result_int(), 201);
  ASSERT_EQ(Do(verb::delete_, "/v1/webhooks/wh_1").result_int(), 200);
  Stop();
  Start();
  auto r = Do(verb::get, "/v1/webhooks");
  auto list = json::parse(r.body()).at("webhooks").as_array();
  ASSERT_EQ(list.size(), 1u) << r.body();
  EXPECT_EQ(list[0].at("webhook").as_string(), "wh_2");
  EXPECT_EQ(list[0].at("url").as_string(), "https://b.example/h");
  r = Do(verb::post, "/v1/webhooks", R"({"url":"https://c.example/h","secret":"0123456789abcdef"})");
  EXPECT_EQ(json::parse(r.body()).at("webhook").as_string(), "wh_3");
}

}  // namespace
}  // namespace genledger::server
