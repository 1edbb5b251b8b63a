// End to end: real ledger events (an alert crossing, then depletion) reach a real HTTPS receiver
// through the real server: a durable data directory, the /v1 routes, the webhook Service and
// Engine, verified TLS against a CA made by the openssl CLI (--webhook-ca). The receiver refuses
// the first two requests (500); the test checks the retries keep the event id, the order, the
// signature (recomputed here with OpenSSL's HMAC, not the server's helper), the deliveries list,
// and that a clean restart on the same data directory does not deliver anything again
// (docs/webhooks.md, "At least once, across restarts": the cursor was recorded after each 2xx).
// Backoff is scaled down through EngineOptions; nothing asserts how long anything took.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <boost/json.hpp>
#include <cstdio>

#include "beast_test_client.h"
#include "genledger/durability.h"
#include "server/server.h"
#include "temp_dir.h"
#include "webhook/service.h"
#include "webhook_test_util.h"

namespace genledger::server {
namespace {

using beast_test::Client;
using beast_test::http::verb;
using webhook::testing::Receiver;
using webhook::testing::WaitFor;
namespace json = boost::json;

constexpr const char* kSecret = "whsec_e2e_0123456789abcdef";

// Hex HMAC-SHA256(key, msg) computed directly with OpenSSL (independent of webhook/signature.cc).
std::string OpenSslHmacHex(const std::string& key, const std::string& msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(msg.data()),
       msg.size(), mac, &len);
  std::string hex;
  char b[3];
  for (unsigned int i = 0; i < len; ++i) {
    std::snprintf(b, sizeof b, "%02x", mac[i]);
    hex += b;
  }
  return hex;
}

// Splits "t=<secs>,v1=<hex>" and checks v1 against the raw body.
void ExpectSigned(const Receiver::Request& r) {
  const size_t comma = r.signature.find(",v1=");
  ASSERT_TRUE(r.signature.starts_with("t=") && comma != std::string::npos) << r.signature;
  const std::string t = r.signature.substr(2, comma - 2);
  const std::string v1 = r.signature.substr(comma + 4);
  EXPECT_EQ(v1.size(), 64u);
  EXPECT_EQ(v1, OpenSslHmacHex(kSecret, t + "." + r.body)) << r.signature;
  EXPECT_NE(v1, OpenSslHmacHex("whsec_some_other_secret", t + "." + r.body));
}

// The parameter: snapshots on (a clean stop writes one and the restart loads the cursors from
// block 4) or off (the restart replays the WAL's webhook_progress records).
class WebhookE2eTest : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() {
    certs_ = new genledger::testing::TempDir();
    webhook::testing::MakeCa(certs_->path(), "e2e");
    webhook::testing::MakeCert(certs_->path(), "e2e", "receiver", "IP:127.0.0.1");
  }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  void TearDown() override { Stop(); }

  void Start() {
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    DurabilityOptions o;
    o.data_dir = data_.path();
    if (!GetParam()) o.snapshot_interval_s = 0;
    auto d = Durability::Open(*ledger_, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    durability_ = std::move(*d);
    webhook::ServiceOptions wopt;
    wopt.ca_file = certs_->File("e2e-ca.pem");  // --webhook-ca: trusts only the test CA
    wopt.engine.poll_interval_ms = 2;
    wopt.engine.backoff_initial_ms = 5;
    wopt.engine.backoff_cap_ms = 20;
    wopt.engine.timeout = std::chrono::seconds(30);
    auto svc = webhook::Service::Create(*ledger_, durability_.get(), wopt);
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
  // The order of src/server/main.cc: the gate, then delivery, then the final WAL write and snapshot.
  void Stop() {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    server_.reset();
    webhooks_.reset();
    durability_.reset();
    ledger_.reset();
  }
  beast_test::Response Do(verb m, std::string target, std::string body = "") {
    Client c(server_->port());
    return c.Do(m, std::move(target), std::move(body), beast_test::kAdmin);
  }
  json::object Charge(const std::string& ws, int quantity) {
    auto r = Do(verb::post, "/v1/charge",
                R"({"workspace":")" + ws + R"(","user":"alice","model":"gpt-4o","quantity":)" + std::to_string(quantity) + "}");
    EXPECT_EQ(r.result_int(), 200) << r.body();
    return json::parse(r.body()).as_object();
  }

  static genledger::testing::TempDir* certs_;
  genledger::testing::TempDir data_;
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<Durability> durability_;
  std::unique_ptr<webhook::Service> webhooks_;
  std::unique_ptr<Server> server_;
};
genledger::testing::TempDir* WebhookE2eTest::certs_ = nullptr;

TEST_P(WebhookE2eTest, LedgerEventsReachAVerifiedTlsReceiverRetriedInOrderAndNotAgainAfterRestart) {
  size_t answered = 0;  // the policy runs under the receiver's lock; outlives the receiver
  Receiver rx(webhook::testing::ServerTls(certs_->path(), "receiver"));
  rx.SetPolicy([&](const Receiver::Request&, size_t) { return ++answered <= 2 ? 500u : 200u; });

  Start();
  ASSERT_EQ(Do(verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200);
  auto r = Do(verb::put, "/v1/workspaces/acme/alerts", R"({"alerts":[{"name":"80pct","when":"used_percent","at":80}]})");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  const std::string url = "https://127.0.0.1:" + std::to_string(rx.port()) + "/genledger";
  r = Do(verb::post, "/v1/webhooks",
         R"({"url":")" + url + R"(","events":["alert","depleted"],"secret":")" + kSecret + R"("})");
  ASSERT_EQ(r.result_int(), 201) << r.body();
  ASSERT_EQ(json::parse(r.body()).at("webhook").as_string(), "wh_1");

  EXPECT_EQ(Charge("acme", 85).at("cost").to_number<int64_t>(), 85);  // 85% >= 80%: the alert fires
  EXPECT_EQ(Charge("acme", 15).at("remaining").to_number<int64_t>(), 0);  // depleted

  // Bounded wait (a limit on the test's run time, not a speed assertion): two 200s.
  auto delivered = [&] {
    size_t ok = 0;
    for (const auto& q : rx.requests()) ok += q.answered == 200;
    return ok;
  };
  ASSERT_TRUE(WaitFor([&] { return delivered() >= 2; }, std::chrono::seconds(60))) << rx.count() << " requests";
  EXPECT_EQ(rx.handshake_failures(), 0u);

  const auto reqs = rx.requests();
  ASSERT_EQ(reqs.size(), 4u);  // alert: 500, 500, 200; depleted: 200
  const std::string alert_id = reqs[0].event_id, depleted_id = reqs[3].event_id;
  ASSERT_TRUE(alert_id.starts_with("evt_")) << alert_id;
  EXPECT_NE(alert_id, depleted_id);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(reqs[i].event_id, alert_id) << i;  // same id on every retry
  EXPECT_EQ(reqs[0].answered, 500u);
  EXPECT_EQ(reqs[1].answered, 500u);
  EXPECT_EQ(reqs[2].answered, 200u);
  EXPECT_EQ(reqs[3].answered, 200u);
  for (const auto& q : reqs) {
    ExpectSigned(q);
    EXPECT_EQ(q.content_type, "application/json");
    EXPECT_EQ(q.target, "/genledger");
    auto body = json::parse(q.body).as_object();
    EXPECT_EQ(body.at("id").as_string(), q.event_id);  // header and body name the same event
    EXPECT_EQ(body.at("workspace").as_string(), "acme");
    EXPECT_EQ(body.at("limit").to_number<int64_t>(), 100);
  }
  // Retries re-send the same bytes (only the signature's t may change).
  EXPECT_EQ(reqs[1].body, reqs[0].body);
  EXPECT_EQ(reqs[2].body, reqs[0].body);
  auto alert = json::parse(reqs[2].body).as_object();
  EXPECT_EQ(alert.at("event").as_string(), "alert");
  EXPECT_EQ(alert.at("alert").as_string(), "80pct");
  EXPECT_EQ(alert.at("state").as_string(), "fired");
  EXPECT_EQ(alert.at("used").to_number<int64_t>(), 85);
  auto depleted = json::parse(reqs[3].body).as_object();
  EXPECT_EQ(depleted.at("event").as_string(), "depleted");
  EXPECT_EQ(depleted.at("state").as_string(), "fired");
  EXPECT_EQ(depleted.at("used").to_number<int64_t>(), 100);
  EXPECT_EQ(depleted.at("remaining").to_number<int64_t>(), 0);
  EXPECT_LT(alert.at("rev").to_number<int64_t>(), depleted.at("rev").to_number<int64_t>());
  // Both on acme's shard, the alert first: ids are (seq << 8) | shard.
  const uint64_t a = std::stoull(alert_id.substr(4)), dp = std::stoull(depleted_id.substr(4));
  EXPECT_EQ(a & 0xff, dp & 0xff);
  EXPECT_LT(a >> 8, dp >> 8);

  // The receiver counts a 200 before the engine has read it. The engine then logs the attempt and
  // records the cursor (WAL type 25) in one step under its lock, so wait for the recorded cursor:
  // after it, /deliveries holds all four attempts, and a clean stop cannot fall in the gap where
  // a restart would legitimately re-send (at least once).
  const uint32_t shard = static_cast<uint32_t>(dp & 0xff);
  ASSERT_TRUE(WaitFor([&] { return ledger_->WebhookCursors(1).at(shard).next_seq > (dp >> 8); }));

  // The deliveries list: the two failures (500, retried), then the two successes.
  r = Do(verb::get, "/v1/webhooks/wh_1/deliveries");
  ASSERT_EQ(r.result_int(), 200) << r.body();
  auto list = json::parse(r.body()).at("deliveries").as_array();
  ASSERT_EQ(list.size(), 4u) << r.body();
  for (int i = 0; i < 2; ++i) {
    auto d = list[i].as_object();
    EXPECT_EQ(d.at("event").as_string(), alert_id) << r.body();
    EXPECT_EQ(d.at("attempt").to_number<int64_t>(), i + 1) << r.body();
    EXPECT_EQ(d.at("status").to_number<int64_t>(), 500) << r.body();
    EXPECT_EQ(d.at("error").as_string(), "") << r.body();
    EXPECT_GT(d.at("retry_in_ms").to_number<int64_t>(), 0) << r.body();
    EXPECT_FALSE(d.contains("delivered")) << r.body();
  }
  EXPECT_EQ(list[2].at("event").as_string(), alert_id);
  EXPECT_EQ(list[2].at("attempt").to_number<int64_t>(), 3);
  EXPECT_EQ(list[2].at("status").to_number<int64_t>(), 200);
  EXPECT_TRUE(list[2].at("delivered").as_bool());
  EXPECT_EQ(list[3].at("event").as_string(), depleted_id);
  EXPECT_EQ(list[3].at("attempt").to_number<int64_t>(), 1);
  EXPECT_TRUE(list[3].at("delivered").as_bool());

  Stop();
  Start();
  ASSERT_EQ(ledger_->WebhookCursors(1).at(shard).next_seq, (dp >> 8) + 1);  // recovered, not reset
  r = Do(verb::get, "/v1/webhooks");
  ASSERT_EQ(json::parse(r.body()).at("webhooks").as_array().size(), 1u) << r.body();
  r = Do(verb::get, "/v1/webhooks/wh_1/deliveries");  // memory only: a restart empties it
  EXPECT_EQ(json::parse(r.body()).at("deliveries").as_array().size(), 0u) << r.body();

  // A charge that crosses nothing (another workspace, no alerts, far from its limit): nothing is
  // sent, and in particular neither acme event again. The wait is short and bounded; the check
  // below (a new event does arrive) shows the engine was running all along.
  ASSERT_EQ(Do(verb::put, "/v1/workspaces/beta", R"({"limit":10})").result_int(), 200);
  Charge("beta", 1);
  EXPECT_FALSE(WaitFor([&] { return rx.count() > 4; }, std::chrono::milliseconds(1500)))
      << rx.requests().back().event_id << ": " << rx.requests().back().body;

  Charge("beta", 9);  // beta is depleted: exactly one new event, with a new id
  ASSERT_TRUE(WaitFor([&] { return delivered() >= 3; }, std::chrono::seconds(60))) << rx.count() << " requests";
  const auto after = rx.requests();
  ASSERT_EQ(after.size(), 5u);
  EXPECT_NE(after[4].event_id, alert_id);
  EXPECT_NE(after[4].event_id, depleted_id);
  ExpectSigned(after[4]);
  auto beta = json::parse(after[4].body).as_object();
  EXPECT_EQ(beta.at("event").as_string(), "depleted");
  EXPECT_EQ(beta.at("workspace").as_string(), "beta");
}

INSTANTIATE_TEST_SUITE_P(Restart, WebhookE2eTest, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& p) { return p.param ? "FromSnapshot" : "FromWal"; });

}  // namespace
}  // namespace genledger::server
