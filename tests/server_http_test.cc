// Integration tests: the real server in-process on an ephemeral loopback port, driven by real
// Beast HTTP and WebSocket clients.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>
#include <sys/socket.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <atomic>
#include <chrono>
#include <thread>

#include "beast_test_client.h"
#include "genledger/clock.h"
#include "server/server.h"

namespace genledger::server {
namespace {

using namespace beast_test;   // the namespace aliases, tokens and clients shared with other tests

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions opt = {}) {
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.threads = 2;
    if (opt.max_body_bytes == (1u << 20)) opt.max_body_bytes = 4096;
    opt.header_timeout_ms = 400;
    if (opt.idle_timeout_ms == ServerOptions{}.idle_timeout_ms) opt.idle_timeout_ms = 3000;
    opt.max_batch_ops = 100;
    opt.max_ws_inflight = 4;
    opt.sweep_interval_ms = 50;
    opt.shutdown_grace_ms = 3000;
    LedgerOptions lo;
    lo.clock = &clock_;
    ledger_ = std::make_shared<Ledger>(Catalog::Default(), lo);
    auto auth = std::make_shared<Auth>();
    auth->AddToken("admin-token-0123456789", Role::kAdmin);
    auth->AddToken("gate-token-0123456789", Role::kGate);
    auth->AddToken("read-token-0123456789", Role::kRead);
    server_ = std::make_unique<Server>(opt, ledger_, auth);
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
    ASSERT_NE(port_, 0);
  }
  void SetUp() override { StartServer(); }
  void TearDown() override {
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
  }
  std::string State(std::string_view ws) {
    Client c(port_);
    return c.Do(http::verb::get, "/v1/workspaces/" + std::string(ws)).body() +
           c.Do(http::verb::get, "/v1/workspaces/" + std::string(ws) + "/users").body();
  }
  static std::string ErrCode(const Response& r) {
    return std::string(json::parse(r.body()).at("error").at("code").as_string());
  }

  ManualClock clock_;
  std::shared_ptr<Ledger> ledger_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

const std::string kCharge = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";

TEST_F(ServerTest, EveryEndpointOverOneKeepAliveConnection) {
  Client c(port_);
  Response r = c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})");
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(r[http::field::content_type], "application/json");
  EXPECT_TRUE(r.keep_alive());
  r = c.Do(http::verb::post, "/v1/charge",
           R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":3,"id":"i1"})");
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  std::string ch(json::parse(r.body()).at("charge").as_string());
  r = c.Do(http::verb::post, "/v1/quote", kCharge);
  EXPECT_EQ(r.body(), R"({"cost":1,"affordable":true,"max_quantity":97})");
  r = c.Do(http::verb::post, "/v1/reserve", kCharge);
  ASSERT_EQ(r.result_int(), 200u);
  std::string rs(json::parse(r.body()).at("reservation").as_string());
  r = c.Do(http::verb::post, "/v1/commit", R"({"reservation":")" + rs + "\"}");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  r = c.Do(http::verb::post, "/v1/release", R"({"reservation":")" + rs + "\"}");
  EXPECT_EQ(r.result_int(), 409u);
  r = c.Do(http::verb::post, "/v1/refund", R"({"charge":")" + ch + "\"}");
  EXPECT_EQ(r.result_int(), 200u) << r.body();
  r = c.Do(http::verb::post, "/v1/batch", R"({"ops":[{"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","quantity":2}]})");
  EXPECT_EQ(r.body(), R"({"results":[{"status":200,"cost":2,"affordable":true,"max_quantity":99}]})");
  r = c.Do(http::verb::put, "/v1/workspaces/acme/users/u", R"({"limit":null})");
  EXPECT_EQ(r.result_int(), 200u);
  r = c.Do(http::verb::get, "/v1/workspaces/acme/users");
  EXPECT_EQ(r.result_int(), 200u);
  r = c.Do(http::verb::post, "/v1/workspaces/acme/topup", R"({"amount":5})");
  EXPECT_EQ(json::parse(r.body()).at("limit").as_int64(), 100);   // the plan; the top-up is a grant
  r = c.Do(http::verb::post, "/v1/workspaces/acme/reset");
  EXPECT_EQ(json::parse(r.body()).at("period").as_int64(), 2);
  r = c.Do(http::verb::get, "/v1/workspaces/acme");
  EXPECT_EQ(r.body(), R"({"workspace":"acme","limit":100,"used":0,"reserved":0,"remaining":100,"region":"global","period":2,)"
                      R"("schedule":{"interval":"none","anchor":null},"period_start":null,"period_end":null,)"
                      R"("granted_remaining":0,"plan_priority":100,"rollover":null,"overage_mode":"hard","overage":0,)"
                      R"("overage_limit":null,"rev":8})");
  r = c.Do(http::verb::get, "/v1/catalog");
  EXPECT_EQ(r.body(), "{\"version\":1," + ledger_->CurrentCatalog()->ToJson().substr(1));
  r = c.Do(http::verb::get, "/healthz", "", nullptr);
  EXPECT_EQ(r.body(), R"({"status":"ok","wal":"off"})");
  r = c.Do(http::verb::get, "/metrics", "", nullptr);
  EXPECT_NE(r.body().find("genledger_open_connections"), std::string::npos);
  EXPECT_NE(r.body().find("genledger_requests_total{operation=\"refund\",status=\"200\"} 1"),
            std::string::npos);
  r = c.Do(http::verb::delete_, "/v1/workspaces/acme");
  EXPECT_EQ(r.result_int(), 405u);
  EXPECT_EQ(r[http::field::allow], "GET, PUT");
  r = c.Do(http::verb::get, "/nope");
  EXPECT_EQ(r.result_int(), 404u);
  EXPECT_EQ(ErrCode(r), "not_found");
}

TEST_F(ServerTest, AuthRoles) {
  Client c(port_);
  Response r = c.Do(http::verb::get, "/v1/catalog", "", nullptr);
  EXPECT_EQ(r.result_int(), 401u);
  EXPECT_EQ(r[http::field::www_authenticate], "Bearer");
  EXPECT_EQ(ErrCode(r), "unauthorized");
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", "Bearer nope").result_int(), 401u);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/catalog", "", kRead).result_int(), 200u);
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":10})", kGate).result_int(), 403u);
  EXPECT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":10})", kAdmin).result_int(), 200u);
  EXPECT_EQ(c.Do(http::verb::post, "/v1/charge", kCharge, kRead).result_int(), 403u);
  EXPECT_EQ(c.Do(http::verb::post, "/v1/charge", kCharge, kGate).result_int(), 200u);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/workspaces/acme", "", kRead).result_int(), 200u);
}

TEST_F(ServerTest, OversizeBodyIs413AndLedgerUnchanged) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200u);
  }
  std::string before = State("acme");
  Client c(port_);
  std::string big = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"id":")" +
                    std::string(5000, 'a') + "\"}";
  bool closed = false;
  Response r = c.Do(http::verb::post, "/v1/charge", big, kAdmin, &closed);
  EXPECT_EQ(r.result_int(), 413u);
  EXPECT_EQ(ErrCode(r), "too_large");
  EXPECT_TRUE(closed);
  EXPECT_EQ(State("acme"), before);
  // Chunked oversize body too.
  Client c2(port_);
  beast::error_code ec;
  std::string chunk(3000, ' ');
  std::string raw = "POST /v1/charge HTTP/1.1\r\nHost: x\r\nAuthorization: " + std::string(kAdmin) +
                    "\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n" + chunk + "\r\nbb8\r\n" +
                    chunk + "\r\n0\r\n\r\n";
  r = c2.Raw(raw, ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(r.result_int(), 413u);
  EXPECT_EQ(State("acme"), before);
}

TEST_F(ServerTest, MalformedRequestsAndBadInputs) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200u);
    ASSERT_EQ(c.Do(http::verb::post, "/v1/charge", kCharge).result_int(), 200u);
  }
  std::string before = State("acme");
  for (const char* raw : {"NOT HTTP AT ALL\r\n\r\n", "GET / HTTP/9.9\r\n\r\n",
                          "POST /v1/charge HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
                          "GET /\x01 HTTP/1.1\r\n\r\n"}) {
    Client c(port_);
    beast::error_code ec;
    Response r = c.Raw(raw, ec);
    EXPECT_FALSE(ec) << raw << ": " << ec.message();
    EXPECT_EQ(r.result_int(), 400u) << raw;
    EXPECT_TRUE(c.ServerClosed());
  }
  // Headers too large.
  {
    Client c(port_);
    beast::error_code ec;
    Response r = c.Raw("GET /healthz HTTP/1.1\r\nX-Big: " + std::string(20000, 'x') + "\r\n\r\n", ec);
    EXPECT_EQ(r.result_int(), 413u);
  }
  Client c(port_);
  for (const char* body :
       {"{", "", "[]", "null", "{\"workspace\":\"\xff\"}", R"({"workspace":"acme","x":1})",
        R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1e2})",
        R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":-1})",
        R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":1000000000000000000000})",
        R"({"workspace":"acme","user":"u","model":"zzz","quantity":1})"}) {
    Response r = c.Do(http::verb::post, "/v1/charge", body);
    EXPECT_EQ(r.result_int(), 400u) << body;
    EXPECT_TRUE(r.keep_alive());
  }
  EXPECT_EQ(State("acme"), before);
  EXPECT_EQ(c.Do(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(ServerTest, SlowClientHitsHeaderTimeout) {
  Client c(port_);
  beast::error_code ec;
  net::write(c.stream().socket(), net::buffer(std::string("GET /healthz HTTP/1.1\r\nHo")), ec);
  EXPECT_TRUE(c.ServerClosed());
  // The timeout covers the whole header, not the gap between reads: a client trickling one
  // byte per poll of a header that never ends is closed long before it runs out of bytes (a
  // timer re-armed on every read would never fire). 50 ms per byte, 400 ms header timeout.
  {
    Client trickle(port_);
    const int fd = trickle.stream().socket().native_handle();
    const std::string head = "GET /healthz HTTP/1.1\r\nX-Pad: ";
    ASSERT_EQ(write(fd, head.data(), head.size()), ssize_t(head.size()));
    bool closed = false;
    for (int i = 0; i < 400 && !closed; ++i) {
      if (write(fd, "a", 1) != 1) {
        closed = true;
        break;
      }
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        char buf[64];
        closed = read(fd, buf, sizeof buf) <= 0;
      }
    }
    EXPECT_TRUE(closed) << "a header trickled byte by byte was never timed out";
  }
  // A client that connects and sends nothing is closed too.
  Client idle(port_);
  EXPECT_TRUE(idle.ServerClosed());
  // The server still answers.
  Client ok(port_);
  EXPECT_EQ(ok.Do(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(ServerTest, PipelinedHttpRequestsAnsweredInOrder) {
  Client c(port_);
  std::string raw;
  for (int i = 0; i < 20; ++i) {
    std::string body = R"({"limit":)" + std::to_string(i) + "}";
    raw += "PUT /v1/workspaces/p HTTP/1.1\r\nHost: x\r\nAuthorization: " + std::string(kAdmin) +
           "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  net::write(c.stream().socket(), net::buffer(raw));
  beast::flat_buffer b;
  for (int i = 0; i < 20; ++i) {
    Response r;
    http::read(c.stream(), b, r);
    ASSERT_EQ(r.result_int(), 200u);
    EXPECT_EQ(json::parse(r.body()).at("limit").as_int64(), i);
  }
}

TEST_F(ServerTest, ExpectContinue) {
  Client c(port_);
  beast::error_code ec;
  std::string body = R"({"limit":5})";
  std::string head = "PUT /v1/workspaces/acme HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                     std::string(kAdmin) + "\r\nExpect: 100-continue\r\nContent-Length: " +
                     std::to_string(body.size()) + "\r\n\r\n";
  net::write(c.stream().socket(), net::buffer(head), ec);
  char buf[64] = {};
  size_t n = c.stream().socket().read_some(net::buffer(buf, sizeof buf - 1), ec);
  EXPECT_EQ(std::string(buf, n).substr(0, 25), "HTTP/1.1 100 Continue\r\n\r\n");
  Response r = c.Raw(body, ec);
  EXPECT_EQ(r.result_int(), 200u) << r.body();
}

TEST_F(ServerTest, WebSocketSingleArrayAndErrors) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200u);
  }
  beast::error_code ec;
  WsClient ws(port_, kGate, ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.Send(R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":2,"seq":7})");
  json::value v = ws.RecvJson();
  EXPECT_EQ(v.at("seq").as_int64(), 7);
  EXPECT_EQ(v.at("status").as_int64(), 200);
  EXPECT_EQ(v.at("remaining").as_int64(), 98);
  ws.Send(R"([{"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":1},)"
          R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1000,"seq":2},)"
          R"({"op":"refund","charge":"nope","seq":3}])");
  v = ws.RecvJson();
  ASSERT_TRUE(v.is_array());
  ASSERT_EQ(v.as_array().size(), 3u);
  EXPECT_EQ(v.as_array()[0].at("status").as_int64(), 200);
  EXPECT_EQ(v.as_array()[1].at("status").as_int64(), 402);
  EXPECT_EQ(v.as_array()[1].at("seq").as_int64(), 2);
  EXPECT_EQ(v.as_array()[2].at("status").as_int64(), 404);
  ws.Send("{not json");
  v = ws.RecvJson();
  EXPECT_EQ(v.at("error").at("code").as_string(), "bad_json");
  ws.Send("[]");
  EXPECT_EQ(ws.RecvJson(), json::array());
  EXPECT_EQ(State("acme").substr(0, 60),
            R"({"workspace":"acme","limit":100,"used":2,"reserved":0,"remai)");
}

// Subscriptions over real sockets: DELETE reaches its route through Beast, and a WebSocket
// charge beyond the allowance in soft mode carries its overage.
TEST_F(ServerTest, GrantsAndOverageOverSockets) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":2,"overage_mode":"soft"})").result_int(), 200u);
    Response r = c.Do(http::verb::post, "/v1/workspaces/acme/grants", R"({"amount":3})");
    ASSERT_EQ(r.result_int(), 200u) << r.body();
    r = c.Do(http::verb::delete_, "/v1/workspaces/acme/grants/gr_1");
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    EXPECT_EQ(c.Do(http::verb::delete_, "/v1/workspaces/acme/grants/gr_1").result_int(), 404u);
  }
  beast::error_code ec;
  WsClient ws(port_, kGate, ec);
  ASSERT_FALSE(ec) << ec.message();
  ws.Send(R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":5,"seq":1})");
  json::value v = ws.RecvJson();
  EXPECT_EQ(v.at("status").as_int64(), 200) << v;
  EXPECT_EQ(v.at("overage").as_int64(), 3) << v;
}

TEST_F(ServerTest, WebSocketPipelined) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":null})").result_int(), 200u);
  }
  beast::error_code ec;
  WsClient ws(port_, kAdmin, ec);
  ASSERT_FALSE(ec);
  constexpr int kFrames = 500;
  // Writer thread sends every frame without waiting; the reader checks order.
  std::thread writer([&] {
    for (int i = 0; i < kFrames; ++i)
      ws.Send(R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":)" +
              std::to_string(i) + "}");
  });
  for (int i = 0; i < kFrames; ++i) {
    json::value v = ws.RecvJson();
    ASSERT_EQ(v.at("seq").as_int64(), i);
    ASSERT_EQ(v.at("status").as_int64(), 200);
    ASSERT_EQ(v.at("user_used").as_int64(), i + 1);
  }
  writer.join();
}

TEST_F(ServerTest, WebSocketBackpressureLosesNothing) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":null})").result_int(), 200u);
  }
  beast::error_code ec;
  WsClient ws(port_, kGate, ec);
  ASSERT_FALSE(ec);
  // Big replies (40 results per frame, under the 4096-byte message limit) and a client that does not read for a while: the
  // server's reply queue fills, it stops reading, the client's writes block; then everything
  // arrives in order.
  std::string frame = "[";
  for (int i = 0; i < 40; ++i)
    frame += std::string(i ? "," : "") +
             R"({"op":"quote","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":)" +
             std::to_string(i) + "}";
  frame += "]";
  ASSERT_LT(frame.size(), 4096u);
  constexpr int kFrames = 2000;
  std::thread writer([&] {
    for (int i = 0; i < kFrames; ++i) ws.Send(frame);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  for (int i = 0; i < kFrames; ++i) {
    json::value v = ws.RecvJson();
    ASSERT_EQ(v.as_array().size(), 40u);
    ASSERT_EQ(v.as_array()[39].at("seq").as_int64(), 39);
  }
  writer.join();
}

TEST_F(ServerTest, WebSocketIdlePeersArePingedAndSilentOnesDropped) {
  server_->Stop();
  server_->Wait();
  ServerOptions opt;
  opt.idle_timeout_ms = 600;
  StartServer(opt);
  {
    // A peer with a read pending answers the server's pings (Beast pongs inside the read), so it
    // stays connected well past the idle timeout.
    beast::error_code ec;
    WsClient ws(port_, kGate, ec);
    ASSERT_FALSE(ec);
    int pings = 0;
    ws.ws().control_callback([&](websocket::frame_type kind, beast::string_view) {
      if (kind == websocket::frame_type::ping) ++pings;
    });
    beast::flat_buffer buf;
    bool read_ended = false;
    beast::error_code read_ec;
    ws.ws().async_read(buf, [&](beast::error_code e, size_t) {
      read_ended = true;
      read_ec = e;
    });
    ws.ioc().run_for(std::chrono::milliseconds(2000));
    EXPECT_FALSE(read_ended) << read_ec.message();
    EXPECT_GE(pings, 2);
  }
  {
    // A peer that reads nothing never pongs: after the idle timeout the server drops it, and the
    // peer's next read ends instead of waiting for its 10 s receive timeout.
    beast::error_code ec;
    WsClient ws(port_, kGate, ec);
    ASSERT_FALSE(ec);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    // Now reading (Beast would answer pings from here on): the connection is already gone, so the
    // read ends with an error. The 10 s bound only keeps a broken server from hanging the test.
    beast::flat_buffer buf;
    bool read_ended = false;
    beast::error_code read_ec;
    ws.ws().async_read(buf, [&](beast::error_code e, size_t) {
      read_ended = true;
      read_ec = e;
    });
    ws.ioc().restart();
    ws.ioc().run_for(std::chrono::seconds(10));
    EXPECT_TRUE(read_ended) << "a silent peer was not dropped";
    EXPECT_TRUE(read_ec);
  }
}

TEST_F(ServerTest, WebSocketCloseCodesAndAuth) {
  beast::error_code ec;
  {
    WsClient ws(port_, kGate, ec);
    ASSERT_FALSE(ec);
    ws.ws().binary(true);
    ws.ws().write(net::buffer(std::string("{}")));
    ws.Recv(ec);
    EXPECT_EQ(ec, websocket::error::closed) << ec.message();
    EXPECT_EQ(ws.ws().reason().code, websocket::close_code::unknown_data);   // 1003
  }
  {
    WsClient ws(port_, kGate, ec);
    ASSERT_FALSE(ec);
    ws.Send(std::string(5000, ' '));   // max_body_bytes is 4096
    ws.Recv(ec);
    EXPECT_EQ(ec, websocket::error::closed) << ec.message();
    EXPECT_EQ(ws.ws().reason().code, websocket::close_code::too_big);   // 1009
  }
  int status = 0;
  {
    WsClient ws(port_, nullptr, ec, &status);
    EXPECT_TRUE(ec);
    EXPECT_EQ(status, 401);
  }
  {
    // A read token upgrades, for the live streams: its gate ops are 403 forbidden, each one
    // (the frame's other ops still run), and subscribe works.
    ec = {};
    ASSERT_EQ(Client(port_).Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200u);
    WsClient ws(port_, kRead, ec, &status);
    ASSERT_FALSE(ec) << ec.message();
    ws.Send(R"([{"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":1},)"
            R"({"op":"subscribe","workspace":"acme","seq":2},{"op":"reserve","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":3}])");
    json::value r = ws.RecvJson();
    ASSERT_EQ(r.as_array().size(), 3u) << r;
    EXPECT_EQ(r.as_array()[0].at("status").as_int64(), 403) << r;
    EXPECT_EQ(r.as_array()[0].at("error").at("code").as_string(), "forbidden") << r;
    EXPECT_EQ(r.as_array()[1].at("status").as_int64(), 200) << r;
    EXPECT_EQ(r.as_array()[2].at("status").as_int64(), 403) << r;
    EXPECT_EQ(json::parse(Client(port_).Do(http::verb::get, "/v1/workspaces/acme").body()).at("used").as_int64(), 0);
  }
  Client c(port_);
  EXPECT_EQ(c.Do(http::verb::get, "/v1/ws").result_int(), 400u);
  EXPECT_EQ(c.Do(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(ServerTest, ConcurrentClientsKeepTheBooks) {
  {
    Client c(port_);
    ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":1000})").result_int(), 200u);
  }
  std::atomic<int> ok{0}, refused{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      Client c(port_);
      for (int i = 0; i < 200; ++i) {
        Response r = c.Do(http::verb::post, "/v1/charge",
                          R"({"workspace":"acme","user":"h)" + std::to_string(t) +
                              R"(","model":"gpt-4o","quantity":1})", kGate);
        (r.result_int() == 200 ? ok : r.result_int() == 402 ? refused : other)++;
      }
    });
  for (int t = 0; t < 2; ++t)
    threads.emplace_back([&, t] {
      beast::error_code ec;
      WsClient ws(port_, kGate, ec);
      if (ec) {
        other += 200;
        return;
      }
      for (int i = 0; i < 20; ++i) {
        std::string frame = "[";
        for (int k = 0; k < 10; ++k)
          frame += std::string(k ? "," : "") + R"({"op":"charge","workspace":"acme","user":"w)" +
                   std::to_string(t) + R"(","model":"gpt-4o","quantity":1})";
        ws.Send(frame + "]");
        json::value reply = ws.RecvJson();
        for (const auto& r : reply.as_array()) {
          int64_t st = r.at("status").as_int64();
          (st == 200 ? ok : st == 402 ? refused : other)++;
        }
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1000);
  EXPECT_EQ(refused.load(), 200);
  EXPECT_EQ(other.load(), 0);
  Client c(port_);
  json::value w = json::parse(c.Do(http::verb::get, "/v1/workspaces/acme").body());
  EXPECT_EQ(w.at("used").as_int64(), 1000);
  EXPECT_EQ(w.at("remaining").as_int64(), 0);
  EXPECT_TRUE(ledger_->CheckInvariants().ok());
}

TEST_F(ServerTest, ReservationsExpire) {
  Client c(port_);
  ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme", R"({"limit":100})").result_int(), 200u);
  Response r = c.Do(http::verb::post, "/v1/reserve",
                    R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":10,"ttl_ms":50})");
  ASSERT_EQ(r.result_int(), 200u) << r.body();
  EXPECT_EQ(json::parse(c.Do(http::verb::get, "/v1/workspaces/acme").body()).at("reserved").as_int64(), 10);
  // The ledger's clock is a manual one: the hold is due only once the test says time passed,
  // then the sweeper (every 50 ms of real time) releases it. The bound only guards a hang.
  clock_.Advance(51);
  for (int i = 0; i < 10'000; ++i) {
    if (json::parse(c.Do(http::verb::get, "/v1/workspaces/acme").body()).at("reserved").as_int64() == 0)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL() << "reservation not expired by the sweeper";
}

TEST_F(ServerTest, ManyConcurrentConnections) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  rlim_t want = std::min<rlim_t>(rl.rlim_max, 4096);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  getrlimit(RLIMIT_NOFILE, &rl);
  size_t n = std::min<size_t>(1000, (rl.rlim_cur - 64) / 2);
  net::io_context ioc;
  std::vector<std::unique_ptr<beast::tcp_stream>> conns;
  for (size_t i = 0; i < n; ++i) {
    conns.push_back(std::make_unique<beast::tcp_stream>(ioc));
    conns.back()->connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_));
    SetRecvTimeout(conns.back()->socket().native_handle(), 10);
  }
  std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  for (auto& s : conns) net::write(s->socket(), net::buffer(req));
  size_t ok = 0;
  for (auto& s : conns) {
    beast::flat_buffer b;
    Response r;
    beast::error_code ec;
    http::read(*s, b, r, ec);
    if (!ec && r.result_int() == 200) ++ok;
  }
  EXPECT_EQ(ok, n);
  EXPECT_GE(server_->metrics().open_connections(), int64_t(n));
  conns.clear();
  Client c(port_);
  EXPECT_EQ(c.Do(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(ServerTest, MaxConnectionsAnswers503) {
  server_->Stop();
  server_->Wait();
  ServerOptions opt;
  opt.max_connections = 3;
  StartServer(opt);
  std::vector<std::unique_ptr<Client>> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<Client>(port_));
    EXPECT_EQ(held.back()->Do(http::verb::get, "/healthz").result_int(), 200u);
  }
  Client extra(port_);
  beast::error_code ec;
  Response r = extra.Raw("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", ec);
  EXPECT_EQ(r.result_int(), 503u);
  EXPECT_EQ(ErrCode(r), "overloaded");
  held.clear();
  for (int i = 0; i < 100; ++i) {
    if (server_->metrics().open_connections() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Client again(port_);
  EXPECT_EQ(again.Do(http::verb::get, "/healthz").result_int(), 200u);
}

TEST_F(ServerTest, GracefulStop) {
  Client idle(port_);
  EXPECT_EQ(idle.Do(http::verb::get, "/healthz").result_int(), 200u);
  beast::error_code ec;
  WsClient ws(port_, kGate, ec);
  ASSERT_FALSE(ec);
  server_->Stop();
  ws.Recv(ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.ws().reason().code, websocket::close_code::going_away);
  EXPECT_TRUE(idle.ServerClosed());
  server_->Wait();
  // Every session ended by itself: the grace period's watchdog did not have to cut any.
  EXPECT_TRUE(server_->stopped_gracefully());
  server_.reset();
}

}  // namespace
}  // namespace genledger::server
