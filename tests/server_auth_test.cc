// Who may do what, end to end: the auth file's reload (open mode closes, WebSockets whose token
// was revoked are closed with 1008), the cross-site Origin check on HTTP and on the WebSocket
// upgrade, /metrics access and its own listener, and that a request refused for auth never
// creates anything.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <thread>

#include "beast_test_client.h"
#include "server/server.h"

namespace genledger::server {
namespace {

using namespace beast_test;

constexpr const char* kGateFile = R"({"tokens":[{"token":"gate-token-0123456789","role":"gate"},)"
                                  R"({"token":"admin-token-0123456789","role":"admin"},)"
                                  R"({"token":"read-token-0123456789","role":"read"}]})";

class ServerAuthTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    std::remove(path_.c_str());
  }
  void WriteAuth(const char* text) { std::ofstream(path_, std::ios::trunc) << text; }
  // `auth_text` empty: no auth file (open mode, as on a loopback server without tokens).
  void Start(const char* auth_text, ServerOptions opt = {}) {
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.threads = 2;
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    auth_ = std::make_shared<Auth>();
    WriteAuth(auth_text);
    ASSERT_TRUE(auth_->Init(path_).ok());
    server_ = std::make_unique<Server>(opt, ledger_, auth_);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
  }
  static std::string ErrCode(const Response& r) {
    return std::string(json::parse(r.body()).at("error").at("code").as_string());
  }
  // Reads frames until the server closes; returns the close code (0 if the stream broke, -1 if
  // the server did not close: the bound only keeps a broken build from hanging).
  static int CloseCode(WsClient& ws) {
    int code = -1;
    beast::flat_buffer buf;
    std::function<void(beast::error_code, size_t)> on_read = [&](beast::error_code ec, size_t) {
      if (ec == websocket::error::closed) {
        code = int(ws.ws().reason().code);
      } else if (ec) {
        code = 0;
      } else {
        buf.consume(buf.size());
        ws.ws().async_read(buf, on_read);
      }
    };
    ws.ws().async_read(buf, on_read);
    ws.ioc().restart();
    ws.ioc().run_for(std::chrono::seconds(10));
    return code;
  }

  // One file per test and process: ctest runs this program's tests in parallel processes, and a
  // shared name let one test's rewrite land under another's reload (a flaky failure).
  std::string path_ = ::testing::TempDir() + "/genledger_server_auth_test." + std::to_string(::getpid()) + "." +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".json";
  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<Auth> auth_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerAuthTest, AReloadThatAddsTokensClosesOpenModeForHttpAndWebSockets) {
  Start(R"({"tokens":[]})");
  ASSERT_TRUE(auth_->open());
  beast::error_code ec;
  WsClient ws(port_, nullptr, ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.Send(R"({"op":"quote","workspace":"a","user":"u","model":"gpt-4o","quantity":1})");
  EXPECT_EQ(ws.RecvJson().at("status").as_int64(), 404);
  Client c(port_);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", nullptr).result_int(), 200u);

  WriteAuth(kGateFile);
  ASSERT_TRUE(server_->ReloadAuth().ok());
  EXPECT_FALSE(auth_->open());
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", nullptr).result_int(), 401u);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", "Bearer read-token-0123456789").result_int(), 200u);
  EXPECT_EQ(CloseCode(ws), int(websocket::close_code::policy_error));
}

TEST_F(ServerAuthTest, WebSocketsWhoseTokenIsRevokedAreClosedWith1008) {
  Start(kGateFile);
  beast::error_code ec;
  WsClient revoked(port_, "Bearer gate-token-0123456789", ec);
  ASSERT_FALSE(ec) << ec.message();
  WsClient kept(port_, "Bearer admin-token-0123456789", ec);
  ASSERT_FALSE(ec) << ec.message();
  WriteAuth(R"({"tokens":[{"token":"admin-token-0123456789","role":"admin"}]})");
  ASSERT_TRUE(server_->ReloadAuth().ok());
  EXPECT_EQ(CloseCode(revoked), int(websocket::close_code::policy_error));
  // The other session is still served (a frame after the reload is answered).
  kept.Send(R"({"op":"quote","workspace":"a","user":"u","model":"gpt-4o","quantity":1})");
  EXPECT_EQ(kept.RecvJson().at("status").as_int64(), 404);
}

TEST_F(ServerAuthTest, AnEmptiedAuthFileIsRefusedAndTheOldTokensStay) {
  Start(kGateFile);
  WriteAuth(R"({"tokens":[]})");
  EXPECT_FALSE(server_->ReloadAuth().ok());
  EXPECT_FALSE(auth_->open());
  Client c(port_);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", nullptr).result_int(), 401u);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", "Bearer read-token-0123456789").result_int(), 200u);
}

TEST_F(ServerAuthTest, RequestsFromAnotherSitesPageAreRefused) {
  ServerOptions opt;
  opt.allowed_origins = {"https://console.example.com"};
  Start(R"({"tokens":[]})", opt);   // open mode: the case a browser page could abuse
  Client c(port_);
  c.SetOrigin("http://evil.example");
  for (auto [verb, target, body] : {std::tuple{http::verb::put, "/v1/workspaces/acme", R"({"limit":10})"},
                                    std::tuple{http::verb::post, "/v1/charge",
                                               R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})"},
                                    std::tuple{http::verb::get, "/v1/workspaces/acme", ""},
                                    std::tuple{http::verb::get, "/metrics", ""}}) {
    Response r = c.Do(verb, target, body, nullptr);
    EXPECT_EQ(r.result_int(), 403u) << target;
    EXPECT_EQ(ErrCode(r), "forbidden_origin") << target;
  }
  EXPECT_EQ(ledger_->Totals().workspaces, 0u) << "a refused request created something";
  // The server's own origin, and one listed with --allow-origin (case-insensitively).
  c.SetOrigin("http://127.0.0.1:" + std::to_string(port_));
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":10})", nullptr).result_int(), 200u);
  c.SetOrigin("http://localhost:" + std::to_string(port_));
  EXPECT_EQ(c.Do(http::verb::get, "/v1/workspaces/acme", "", nullptr).result_int(), 200u);
  c.SetOrigin("https://Console.Example.com");
  EXPECT_EQ(c.Do(http::verb::get, "/v1/workspaces/acme", "", nullptr).result_int(), 200u);
  c.SetOrigin("https://console.example.com.evil.example");
  EXPECT_EQ(c.Do(http::verb::get, "/v1/workspaces/acme", "", nullptr).result_int(), 403u);
  c.SetOrigin("null");
  EXPECT_EQ(c.Do(http::verb::get, "/v1/workspaces/acme", "", nullptr).result_int(), 403u);

  // The WebSocket upgrade too.
  beast::error_code ec;
  int status = 0;
  WsClient evil(port_, nullptr, ec, &status, "http://evil.example");
  EXPECT_TRUE(ec);
  EXPECT_EQ(status, 403);
  WsClient own(port_, nullptr, ec, &status, "http://127.0.0.1:" + std::to_string(port_));
  EXPECT_FALSE(ec) << ec.message();
}

TEST_F(ServerAuthTest, RequestsRefusedForAuthCreateNothing) {
  Start(kGateFile);
  Client c(port_);
  const std::string reserve = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":10})", nullptr).result_int(), 401u);
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":10})", "Bearer gate-token-0123456789").result_int(), 403u);
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme/users/u", R"({"limit":1})", "Bearer read-token-0123456789").result_int(), 403u);
  EXPECT_EQ(c.Do(http::verb::post, "/v1/reserve", reserve, "Bearer wrong").result_int(), 401u);
  EXPECT_EQ(c.Do(http::verb::post, "/v1/reserve", reserve, "Bearer read-token-0123456789").result_int(), 403u);
  EXPECT_EQ(c.Do(http::verb::post, "/v1/batch", R"({"ops":[{"op":"reserve","workspace":"acme","user":"u","model":"gpt-4o","quantity":1}]})", "Bearer read-token-0123456789").result_int(), 403u);
  beast::error_code ec;
  int status = 0;
  {
    // A read token's WebSocket may only subscribe: its reserve is refused and creates nothing.
    WsClient ws(port_, "Bearer read-token-0123456789", ec, &status);
    ASSERT_FALSE(ec) << ec.message();
    ws.Send(R"({"op":"reserve","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":1})");
    EXPECT_EQ(ws.RecvJson().at("status").as_int64(), 403);
  }
  const LedgerTotals t = ledger_->Totals();
  EXPECT_EQ(t.workspaces, 0u);
  EXPECT_EQ(t.users, 0u);
}

TEST_F(ServerAuthTest, MetricsCanRequireATokenAndListenOnTheirOwnAddress) {
  ServerOptions opt;
  opt.metrics_token = "metrics-token-0123456789";
  opt.metrics_listen = true;
  opt.metrics_host = "127.0.0.1";
  opt.metrics_port = 0;
  Start(kGateFile, opt);
  ASSERT_NE(server_->metrics_port(), 0);
  Client api(port_);
  EXPECT_EQ(api.Do(http::verb::get, "/metrics", "", nullptr).result_int(), 404u) << "moved to --metrics-listen";
  EXPECT_EQ(api.Do(http::verb::get, "/healthz", "", nullptr).result_int(), 200u);
  Client m(server_->metrics_port());
  EXPECT_EQ(m.Do(http::verb::get, "/metrics", "", nullptr).result_int(), 401u);
  EXPECT_EQ(m.Do(http::verb::get, "/metrics", "", "Bearer nope").result_int(), 401u);
  EXPECT_EQ(m.Do(http::verb::get, "/metrics", "", "Bearer metrics-token-0123456789").result_int(), 200u);
  EXPECT_EQ(m.Do(http::verb::get, "/metrics", "", "Bearer read-token-0123456789").result_int(), 200u);
  EXPECT_EQ(m.Do(http::verb::get, "/healthz", "", nullptr).result_int(), 200u);
  EXPECT_EQ(m.Do(http::verb::get, "/v1/catalog", "", "Bearer admin-token-0123456789").result_int(), 404u);
  // The default: open on a loopback address.
  server_->Stop();
  server_->Wait();
  server_.reset();
  Start(kGateFile);
  Client open(port_);
  EXPECT_EQ(open.Do(http::verb::get, "/metrics", "", nullptr).result_int(), 200u);
}

}  // namespace
}  // namespace genledger::server
