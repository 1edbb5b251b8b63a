// The delivery engine against real receivers on loopback (HTTP and TLS with a CA made at test
// time by the openssl CLI). Backoff is scaled down through EngineOptions; nothing asserts how
// long anything took, only what was sent, in which order, and what was recorded.
#include "webhook/engine.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "temp_dir.h"
#include "webhook/http_client.h"
#include "webhook/signature.h"
#include "webhook_test_util.h"

namespace genledger::webhook {
namespace {

using namespace testing;  // NOLINT
using genledger::testing::TempDir;

constexpr const char* kSecret = "whsec_0123456789abcdef";

EngineOptions FastOptions() {
  EngineOptions o;
  o.poll_interval_ms = 2;
  o.backoff_initial_ms = 5;
  o.backoff_cap_ms = 20;
  o.timeout = std::chrono::seconds(30);
  return o;
}

WebhookConfig Hook(uint32_t number, const std::string& url) {
  WebhookConfig c;
  c.number = number;
  c.url = url;
  c.secret = kSecret;
  return c;
}

std::string Url(const Receiver& r, bool tls = false, const std::string& host = "127.0.0.1") {
  return std::string(tls ? "https://" : "http://") + host + ":" + std::to_string(r.port()) + "/hook";
}

// Checks the request's signature header against the body, and returns the id in the body.
std::string CheckSigned(const Receiver::Request& r) {
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_TRUE(r.user_agent.starts_with("genledger-webhook/")) << r.user_agent;
  EXPECT_EQ(r.target, "/hook");
  const size_t comma = r.signature.find(",v1=");
  EXPECT_TRUE(r.signature.starts_with("t=") && comma != std::string::npos) << r.signature;
  if (comma == std::string::npos) return {};
  const std::string t = r.signature.substr(2, comma - 2);
  EXPECT_EQ(r.signature.substr(comma + 4), HmacSha256Hex(kSecret, t + "." + r.body));
  auto v = boost::json::parse(r.body).as_object();
  return std::string(v.at("id").as_string());
}

TEST(WebhookDelivery, RetriesWithSameIdAndDoublingBackoffThenKeepsOrder) {
  FakeSource src;
  const uint64_t a1 = src.Add(1, EventKind::kAlert, "acme", "80pct");
  const uint64_t a2 = src.Add(1, EventKind::kDepleted, "acme");
  const uint64_t a3 = src.Add(1, EventKind::kPeriodReset, "acme");
  const uint64_t b1 = src.Add(2, EventKind::kDepleted, "beta");
  Receiver rx;
  // The first event of shard 1 is refused 4 times (500), then accepted.
  rx.SetPolicy([&](const Receiver::Request& r, size_t earlier) {
    return r.event_id == "evt_" + std::to_string(a1) && earlier < 4 ? 500u : 200u;
  });
  Engine engine(src, nullptr, FastOptions());
  engine.AddWebhook(Hook(1, Url(rx)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return engine.Stats().delivered == 4; }));

  std::vector<std::string> shard1;  // ids of shard 1's requests, in arrival order
  for (const auto& r : rx.requests()) {
    const std::string id = CheckSigned(r);
    EXPECT_EQ(id, r.event_id);
    if (EventShard(std::stoull(id.substr(4))) == 1) shard1.push_back(id);
  }
  const std::string e1 = "evt_" + std::to_string(a1);
  EXPECT_EQ(shard1, (std::vector<std::string>{e1, e1, e1, e1, e1, "evt_" + std::to_string(a2),
                                              "evt_" + std::to_string(a3)}));
  // The attempts record 5, 10, 20, 20 ms (doubling, capped) and then the delivery.
  std::vector<uint64_t> retry_in;
  for (const auto& d : engine.Deliveries(1)) {
    if (d.event_id == a1) {
      retry_in.push_back(d.retry_in_ms);
      if (d.delivered) EXPECT_EQ(d.attempt, 5u);
    }
  }
  EXPECT_EQ(retry_in, (std::vector<uint64_t>{5, 10, 20, 20, 0}));
  const EngineStats st = engine.Stats();
  EXPECT_EQ(st.failed_attempts, 4u);
  EXPECT_EQ(st.given_up, 0u);
  // Progress: shard 1 ends at 4 (3 events done), shard 2 at 2.
  ASSERT_TRUE(WaitFor([&] { return engine.Cursor(1, 1) == 4 && engine.Cursor(1, 2) == 2; }));
  EXPECT_EQ(src.Cursors(1)[1], 4u);
  EXPECT_EQ(src.Cursors(1)[2], 2u);
  (void)b1;
}

TEST(WebhookDelivery, FiltersByKindAndWorkspaceButMovesTheCursor) {
  FakeSource src;
  src.Add(0, EventKind::kAlert, "acme", "low");
  const uint64_t want = src.Add(0, EventKind::kDepleted, "acme");
  src.Add(0, EventKind::kDepleted, "other");
  src.Add(0, EventKind::kPeriodReset, "acme");
  Receiver rx;
  EngineOptions o = FastOptions();
  o.progress_interval_ms = 0;
  Engine engine(src, nullptr, o);
  WebhookConfig c = Hook(7, Url(rx));
  c.events = kEventDepleted;
  c.workspaces = std::vector<std::string>{"acme"};
  engine.AddWebhook(c, {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return src.Cursors(7)[0] == 5; }));
  ASSERT_EQ(rx.count(), 1u);
  EXPECT_EQ(rx.requests()[0].event_id, "evt_" + std::to_string(want));
  // The outbox is told it may prune below the webhook's cursor.
  EXPECT_TRUE(WaitFor([&] { return src.kept_from(0) == 5; }));
}

TEST(WebhookDelivery, OnlyDurableEventsAreSent) {
  FakeSource src;
  src.SetAutoDurable(false);
  src.Add(3, EventKind::kDepleted, "acme");
  Receiver rx;
  Engine engine(src, nullptr, FastOptions());
  engine.AddWebhook(Hook(1, Url(rx)), {});
  engine.Start();
  // Let the engine poll (read and take tickets) many times: nothing may be sent.
  const uint64_t reads = src.reads();
  ASSERT_TRUE(WaitFor([&] { return src.reads() > reads + 20 * 4; }));
  EXPECT_EQ(rx.arrived(), 0u);
  src.MakeAllDurable();
  EXPECT_TRUE(WaitFor([&] { return rx.count() == 1; }));
}

TEST(WebhookDelivery, GivesUpAfterTheWindowCountsAndGoesOn) {
  FakeSource src;
  const uint64_t doomed = src.Add(0, EventKind::kDepleted, "acme");
  const uint64_t next = src.Add(0, EventKind::kPeriodReset, "acme");
  Receiver rx;
  rx.SetPolicy([&](const Receiver::Request& r, size_t) {
    return r.event_id == "evt_" + std::to_string(doomed) ? 503u : 200u;
  });
  std::atomic<uint64_t> clock{1'700'000'000'000};
  EngineOptions o = FastOptions();
  o.now_ms = [&] { return clock.load(); };
  Engine engine(src, nullptr, o);
  engine.AddWebhook(Hook(2, Url(rx)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return rx.count() >= 3; }));
  EXPECT_EQ(engine.Stats().given_up, 0u);
  clock += 24ull * 3600 * 1000;  // the next failure is past 24 h after the first attempt
  ASSERT_TRUE(WaitFor([&] { return engine.Stats().given_up == 1 && engine.Stats().delivered == 1; }));
  const auto reqs = rx.requests();
  EXPECT_EQ(reqs.back().event_id, "evt_" + std::to_string(next));
  ASSERT_TRUE(WaitFor([&] { return src.Cursors(2)[0] == 3; }));
  uint64_t given_up = 0;
  for (const Progress& p : src.progress()) given_up += p.given_up;
  EXPECT_EQ(given_up, 1u);
  bool logged = false;
  for (const auto& d : engine.Deliveries(2)) logged |= d.given_up && d.event_id == doomed && d.status == 503;
  EXPECT_TRUE(logged);
}

TEST(WebhookDelivery, ASlowReceiverDoesNotDelayAnotherWebhook) {
  FakeSource src;
  for (int i = 0; i < 5; ++i) src.Add(static_cast<uint32_t>(i % 4), EventKind::kDepleted, "acme");
  Receiver slow, fast;
  slow.Hold(true);
  EngineOptions o = FastOptions();
  o.max_in_flight_per_webhook = 2;  // 4 streams (shards 0-3) want a connection each
  Engine engine(src, nullptr, o);
  engine.AddWebhook(Hook(1, Url(slow)), {});
  engine.AddWebhook(Hook(2, Url(fast)), {});
  engine.Start();
  // The fast webhook gets all 5 while the slow one sits on its first requests unanswered.
  ASSERT_TRUE(WaitFor([&] { return fast.count() == 5; }));
  EXPECT_EQ(slow.count(), 0u);
  EXPECT_GE(slow.arrived(), 1u);
  // At most max_in_flight_per_webhook (2) connections to the slow one.
  EXPECT_TRUE(WaitFor([&] { return slow.arrived() == 2; }));
  EXPECT_EQ(engine.Stats().in_flight, 2u);
  EXPECT_EQ(slow.connections(), 2u);
  slow.Hold(false);
  EXPECT_TRUE(WaitFor([&] { return slow.count() == 5; }));
}

TEST(WebhookDelivery, NetworkErrorsAreRetried) {
  FakeSource src;
  src.Add(0, EventKind::kDepleted, "acme");
  uint16_t dead_port;
  {
    Receiver gone;  // a port nobody listens on any more
    dead_port = gone.port();
  }
  Engine engine(src, nullptr, FastOptions());
  engine.AddWebhook(Hook(1, "http://127.0.0.1:" + std::to_string(dead_port) + "/hook"), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return engine.Deliveries(1).size() >= 2; }));
  const auto d = engine.Deliveries(1);
  EXPECT_EQ(d[0].status, 0u);
  EXPECT_TRUE(d[0].error.starts_with("connect:")) << d[0].error;
  EXPECT_EQ(d[1].attempt, 2u);
  EXPECT_EQ(engine.Stats().delivered, 0u);
}

TEST(WebhookDelivery, OutboxCeilingDropIsCountedAndRecorded) {
  FakeSource src;
  for (int i = 0; i < 5; ++i) src.Add(0, EventKind::kDepleted, "acme");
  src.Prune(0, 3);  // the ceiling pruned seq 1 and 2 before this webhook read them
  Receiver rx;
  Engine engine(src, nullptr, FastOptions());
  engine.AddWebhook(Hook(1, Url(rx)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return rx.count() == 3 && src.Cursors(1)[0] == 6; }));
  EXPECT_EQ(engine.Stats().dropped, 2u);
  uint64_t dropped = 0;
  for (const Progress& p : src.progress()) dropped += p.dropped;
  EXPECT_EQ(dropped, 2u);
  EXPECT_EQ(rx.requests()[0].event_id, "evt_" + std::to_string((3ull << 8) | 0));
}

// A restart (a new engine started from the recorded cursors) resumes after the last progress
// record: nothing delivered is skipped, and what was in flight is sent again with the same id.
TEST(WebhookDelivery, RestartResumesFromRecordedCursors) {
  FakeSource src;
  for (int i = 0; i < 4; ++i) src.Add(1, EventKind::kDepleted, "acme");
  Receiver rx;
  const std::string third = "evt_" + std::to_string((3ull << 8) | 1);
  rx.SetPolicy([&](const Receiver::Request& r, size_t) { return r.event_id == third ? 500u : 200u; });
  {
    EngineOptions o = FastOptions();
    o.backoff_initial_ms = 60'000;  // the third event stays unanswered-with-success until the "crash"
    Engine engine(src, nullptr, o);
    engine.AddWebhook(Hook(5, Url(rx)), {});
    engine.Start();
    ASSERT_TRUE(WaitFor([&] { return rx.count() == 3; }));
  }
  EXPECT_EQ(src.Cursors(5)[1], 3u);
  rx.SetPolicy(nullptr);
  Engine engine(src, nullptr, FastOptions());
  engine.AddWebhook(Hook(5, Url(rx)), src.Cursors(5));
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return rx.count() == 5 && src.Cursors(5)[1] == 5; }));
  std::vector<std::string> ids;
  for (const auto& r : rx.requests()) ids.push_back(r.event_id);
  const std::string e1 = "evt_" + std::to_string((1ull << 8) | 1), e2 = "evt_" + std::to_string((2ull << 8) | 1),
                    e4 = "evt_" + std::to_string((4ull << 8) | 1);
  EXPECT_EQ(ids, (std::vector<std::string>{e1, e2, third, third, e4}));
}

// TLS: a CA and certificates made by the openssl CLI for this test run.
class WebhookTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    MakeCa(dir_->path(), "good");
    MakeCa(dir_->path(), "rogue");
    MakeCert(dir_->path(), "good", "server", "IP:127.0.0.1,DNS:localhost");
    MakeCert(dir_->path(), "good", "wronghost", "DNS:other.example");
    MakeCert(dir_->path(), "rogue", "untrusted", "IP:127.0.0.1");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path(const std::string& f) { return dir_->File(f); }
  static TempDir* dir_;
};
TempDir* WebhookTls::dir_ = nullptr;

TEST_F(WebhookTls, DeliversOverVerifiedTls) {
  FakeSource src;
  src.Add(0, EventKind::kDepleted, "acme");
  src.Add(0, EventKind::kPeriodReset, "acme");
  Receiver rx(ServerTls(dir_->path(), "server"));
  auto tls = MakeTlsContext(Path("good-ca.pem"));
  ASSERT_TRUE(tls.ok()) << tls.status().ToString();
  Engine engine(src, *tls, FastOptions());
  engine.AddWebhook(Hook(1, Url(rx, true)), {});
  engine.AddWebhook(Hook(2, Url(rx, true, "localhost")), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return rx.count() == 4; }));
  for (const auto& r : rx.requests()) CheckSigned(r);
  EXPECT_EQ(rx.handshake_failures(), 0u);
}

TEST_F(WebhookTls, WrongHostNameFailsVerification) {
  FakeSource src;
  src.Add(0, EventKind::kDepleted, "acme");
  Receiver rx(ServerTls(dir_->path(), "wronghost"));
  Engine engine(src, *MakeTlsContext(Path("good-ca.pem")), FastOptions());
  engine.AddWebhook(Hook(1, Url(rx, true)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return engine.Deliveries(1).size() >= 2; }));
  const auto d = engine.Deliveries(1)[0];
  EXPECT_EQ(d.status, 0u);
  EXPECT_TRUE(d.error.starts_with("tls handshake:")) << d.error;
  EXPECT_EQ(rx.arrived(), 0u);
  EXPECT_EQ(engine.Stats().delivered, 0u);
}

TEST_F(WebhookTls, UntrustedCertificateFailsVerification) {
  FakeSource src;
  src.Add(0, EventKind::kDepleted, "acme");
  Receiver rx(ServerTls(dir_->path(), "untrusted"));
  Engine engine(src, *MakeTlsContext(Path("good-ca.pem")), FastOptions());
  engine.AddWebhook(Hook(1, Url(rx, true)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return engine.Deliveries(1).size() >= 2; }));
  EXPECT_TRUE(engine.Deliveries(1)[0].error.starts_with("tls handshake:")) << engine.Deliveries(1)[0].error;
  EXPECT_EQ(rx.arrived(), 0u);
}

TEST_F(WebhookTls, SystemStoreDoesNotTrustTheTestCa) {
  FakeSource src;
  src.Add(0, EventKind::kDepleted, "acme");
  Receiver rx(ServerTls(dir_->path(), "server"));
  auto system = MakeTlsContext("");
  ASSERT_TRUE(system.ok()) << system.status().ToString();
  Engine engine(src, *system, FastOptions());
  engine.AddWebhook(Hook(1, Url(rx, true)), {});
  engine.Start();
  ASSERT_TRUE(WaitFor([&] { return engine.Deliveries(1).size() >= 1; }));
  EXPECT_TRUE(engine.Deliveries(1)[0].error.starts_with("tls handshake:"));
  EXPECT_EQ(rx.arrived(), 0u);
}

TEST(WebhookTlsContext, MissingCaFileIsAClearError) {
  auto r = MakeTlsContext("/nonexistent/ca.pem");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().ToString().find("--webhook-ca /nonexistent/ca.pem"), std::string::npos);
}

}  // namespace
}  // namespace genledger::webhook
