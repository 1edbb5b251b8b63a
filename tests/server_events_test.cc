// Live streams end to end (docs/events.md, "Streams"): the real server on loopback, WebSocket
// subscribers (beast_test::WsClient) and Server-Sent Events readers (a raw socket), changes made
// over HTTP. Also with a real Durability whose fdatasync blocks on a latch: no frame shows a
// state before it is durable.
#include <gtest/gtest.h>
#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "beast_test_client.h"
#include "sse_test_client.h"
#include "genledger/durability.h"
#include "server/server.h"
#include "temp_dir.h"
#include "wal/file.h"

namespace genledger::server {
namespace {

using namespace beast_test;

// Waits (bounded only so that a broken build does not hang) until `done`.
template <class F>
bool WaitFor(F done, int ms = 20'000) {
  for (int i = 0; i < ms && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return done();
}

bool SocketReadable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0;
}

// The real file system, except that while the latch is closed every fdatasync waits for it.
class LatchFileSystem final : public wal::FileSystem {
 public:
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  void Open() {
    {
      std::lock_guard lock(mu_);
      closed_ = false;
    }
    cv_.notify_all();
  }
  void WaitBlocked() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }
  Result<std::unique_ptr<wal::WritableFile>> NewWritableFile(const std::string& path) override {
    auto f = base_->NewWritableFile(path);
    if (!f.ok()) return f.status();
    return std::unique_ptr<wal::WritableFile>(new File(std::move(*f), *this));
  }
  Status RenameFile(const std::string& from, const std::string& to) override { return base_->RenameFile(from, to); }
  Status SyncDir(const std::string& dir) override { return base_->SyncDir(dir); }

 private:
  class File final : public wal::WritableFile {
   public:
    File(std::unique_ptr<wal::WritableFile> f, LatchFileSystem& fs) : f_(std::move(f)), fs_(fs) {}
    Status Append(std::string_view data) override { return f_->Append(data); }
    Status Sync() override {
      {
        std::unique_lock lock(fs_.mu_);
        ++fs_.blocked_;
        fs_.cv_.notify_all();
        fs_.cv_.wait(lock, [&] { return !fs_.closed_; });
        --fs_.blocked_;
      }
      return f_->Sync();
    }
    Status Close() override { return f_->Close(); }
    uint64_t Size() const override { return f_->Size(); }

   private:
    std::unique_ptr<wal::WritableFile> f_;
    LatchFileSystem& fs_;
  };
  wal::FileSystem* base_ = wal::FileSystem::Default();
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  int blocked_ = 0;
};

class ServerEventsTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions opt = {}, LatchFileSystem* fs = nullptr, const std::string& auth_file = "") {
    opt.host = "127.0.0.1";
    opt.port = 0;
    opt.threads = 2;
    opt.shutdown_grace_ms = 5000;
    if (opt.header_timeout_ms == ServerOptions{}.header_timeout_ms) opt.header_timeout_ms = 1000;
    ledger_ = std::make_shared<Ledger>(Catalog::Default());
    if (fs != nullptr) {
      DurabilityOptions o;
      o.data_dir = tmp_.path();
      o.fs = fs;
      o.snapshot_interval_s = 0;
      auto d = Durability::Open(*ledger_, o);
      ASSERT_TRUE(d.ok()) << d.status().ToString();
      durability_ = std::move(*d);
    }
    auth_ = std::make_shared<Auth>();
    if (!auth_file.empty()) {
      ASSERT_TRUE(auth_->Init(auth_file).ok());
    } else {
      auth_->AddToken("admin-token-0123456789", Role::kAdmin);
      auth_->AddToken("gate-token-0123456789", Role::kGate);
      auth_->AddToken("read-token-0123456789", Role::kRead);
    }
    server_ = std::make_unique<Server>(opt, ledger_, auth_, nullptr, durability_.get());
    Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
    port_ = server_->port();
  }
  void TearDown() override {
    if (latch_) latch_->Open();
    if (server_) {
      server_->Stop();
      server_->Wait();
    }
    server_.reset();
    durability_.reset();
  }
  void Put(const std::string& ws, const std::string& body) {
    Client c(port_);
    Response r = c.Do(http::verb::put, "/v1/workspaces/" + ws, body);
    ASSERT_EQ(r.result_int(), 200u) << r.body();
  }
  // Charges `q` on `ws` over HTTP; returns the remaining it answered.
  int64_t Charge(const std::string& ws, int q) {
    Client c(port_);
    Response r = c.Do(http::verb::post, "/v1/charge",
                      R"({"workspace":")" + ws + R"(","user":"u","model":"gpt-4o","quantity":)" + std::to_string(q) + "}",
                      kGate);
    EXPECT_EQ(r.result_int(), 200u) << r.body();
    return json::parse(r.body()).at("remaining").as_int64();
  }
  std::unique_ptr<WsClient> Ws(const char* authz = kGate) {
    beast::error_code ec;
    auto ws = std::make_unique<WsClient>(port_, authz, ec);
    EXPECT_FALSE(ec) << ec.message();
    return ws;
  }
  static json::value Subscribe(WsClient& ws, const std::string& workspace, int seq) {
    ws.Send(R"({"op":"subscribe","workspace":")" + workspace + R"(","seq":)" + std::to_string(seq) + "}");
    return ws.RecvJson();
  }

  genledger::testing::TempDir tmp_;
  std::unique_ptr<LatchFileSystem> latch_;
  std::shared_ptr<Ledger> ledger_;
  std::shared_ptr<Auth> auth_;
  std::unique_ptr<Durability> durability_;
  std::unique_ptr<Server> server_;
  uint16_t port_ = 0;
};

TEST_F(ServerEventsTest, WebSocketSubscribeGetsTheStateThenABalanceFramePerChange) {
  StartServer();
  Put("acme", R"({"limit":100})");
  auto ws = Ws();
  json::value r = Subscribe(*ws, "acme", 1);
  ASSERT_EQ(r.at("status").as_int64(), 200) << r;
  EXPECT_EQ(r.at("seq").as_int64(), 1);
  EXPECT_EQ(r.at("subscribed").as_string(), "acme");
  EXPECT_EQ(r.at("state").at("remaining").as_int64(), 100) << r;
  EXPECT_EQ(r.at("state").at("workspace").as_string(), "acme");
  const int64_t rev0 = r.at("rev").as_int64();

  const int64_t remaining = Charge("acme", 3);
  json::value f = ws->RecvJson();
  EXPECT_FALSE(f.as_object().contains("status")) << "pushed frames carry event, not status: " << f;
  EXPECT_EQ(f.at("event").as_string(), "balance") << f;
  EXPECT_EQ(f.at("workspace").as_string(), "acme");
  EXPECT_GT(f.at("rev").as_int64(), rev0);
  EXPECT_EQ(f.at("remaining").as_int64(), remaining);
  EXPECT_EQ(f.at("used").as_int64(), 100 - remaining);
  EXPECT_EQ(f.at("limit").as_int64(), 100);
  EXPECT_TRUE(f.as_object().contains("reserved") && f.as_object().contains("period")) << f;

  // Gate traffic shares the connection: a reply carries status, in frame order.
  ws->Send(R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1,"seq":2})");
  json::value reply = ws->RecvJson();
  while (reply.as_object().contains("event")) reply = ws->RecvJson();
  EXPECT_EQ(reply.at("status").as_int64(), 200) << reply;
  EXPECT_EQ(reply.at("seq").as_int64(), 2);
  json::value g = ws->RecvJson();
  EXPECT_EQ(g.at("event").as_string(), "balance");
  EXPECT_GT(g.at("rev").as_int64(), f.at("rev").as_int64());
  EXPECT_EQ(g.at("remaining").as_int64(), remaining - 1);
}

// Alert and depleted events reach a subscriber in order, each once, also when they happen before
// the hub's first poll (a long interval here: the poll comes after the crossings). The hub's
// event cursors start where the ledger stood when the server was made, not at its first poll.
TEST_F(ServerEventsTest, CrossingsBeforeTheFirstPollReachSubscribersInOrder) {
  ServerOptions opt;
  opt.stream_interval_ms = 500;
  StartServer(opt);
  Put("acme", R"({"limit":10})");
  Client c(port_);
  ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/acme/alerts",
                 R"({"alerts":[{"name":"half","when":"used_percent","at":50}]})", kAdmin)
                .result_int(),
            200u);
  auto ws = Ws();
  ASSERT_EQ(Subscribe(*ws, "acme", 1).at("status").as_int64(), 200);
  Charge("acme", 5);
  EXPECT_EQ(Charge("acme", 5), 0);
  std::vector<std::string> seen;
  int64_t last_event_rev = 0;
  while (seen.size() < 2) {
    json::value f = ws->RecvJson();
    const std::string event(f.at("event").as_string());
    if (event == "balance") continue;
    seen.push_back(event == "alert" ? "alert:" + std::string(f.at("alert").as_string()) + ":" +
                                          std::string(f.at("state").as_string())
                                    : event);
    EXPECT_GT(f.at("rev").as_int64(), last_event_rev) << f;
    last_event_rev = f.at("rev").as_int64();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"alert:half:fired", "depleted"}));
}

// One batch of 100 charges is over long before two polls: far fewer frames than charges, revs
// increasing, the last one the final state.
TEST_F(ServerEventsTest, ManyChargesCoalesceIntoFewFramesEndingWithTheFinalState) {
  StartServer();
  Put("acme", R"({"limit":1000})");
  auto ws = Ws();
  ASSERT_EQ(Subscribe(*ws, "acme", 1).at("status").as_int64(), 200);
  std::string ops;
  for (int i = 0; i < 100; ++i) {
    if (i) ops += ",";
    ops += R"({"op":"charge","workspace":"acme","user":"u","model":"gpt-4o","quantity":1})";
  }
  Client c(port_);
  ASSERT_EQ(c.Do(http::verb::post, "/v1/batch", R"({"ops":[)" + ops + "]}", kGate).result_int(), 200u);
  const int64_t final_remaining =
      json::parse(c.Do(http::verb::get, "/v1/workspaces/acme").body()).at("remaining").as_int64();
  ASSERT_EQ(final_remaining, 900);
  int frames = 0;
  int64_t last_rev = 0;
  for (;;) {
    json::value f = ws->RecvJson();
    ASSERT_EQ(f.at("event").as_string(), "balance");
    EXPECT_GT(f.at("rev").as_int64(), last_rev);
    last_rev = f.at("rev").as_int64();
    ++frames;
    if (f.at("remaining").as_int64() == final_remaining) break;
    ASSERT_GT(f.at("remaining").as_int64(), final_remaining) << "frames go forward only";
  }
  EXPECT_LT(frames, 100);
}

TEST_F(ServerEventsTest, UnsubscribeStopsFramesOfThatWorkspace) {
  StartServer();
  Put("acme", R"({"limit":100})");
  Put("beta", R"({"limit":100})");
  auto ws = Ws();
  ASSERT_EQ(Subscribe(*ws, "acme", 1).at("status").as_int64(), 200);
  ASSERT_EQ(Subscribe(*ws, "beta", 2).at("status").as_int64(), 200);
  ws->Send(R"({"op":"unsubscribe","workspace":"acme","seq":3})");
  json::value r = ws->RecvJson();
  ASSERT_EQ(r.at("status").as_int64(), 200) << r;
  EXPECT_EQ(r.at("unsubscribed").as_string(), "acme");
  Charge("acme", 1);
  Charge("beta", 2);
  json::value f = ws->RecvJson();
  EXPECT_EQ(f.at("workspace").as_string(), "beta") << "a frame of an unsubscribed workspace: " << f;
  EXPECT_EQ(f.at("remaining").as_int64(), 98);
  EXPECT_EQ(server_->stream_subscriptions(), 1u);
}

TEST_F(ServerEventsTest, ServerSentEventsStartWithTheStateThenStreamChanges) {
  ServerOptions opt;
  opt.sse_keepalive_ms = 50;
  StartServer(opt);
  Put("acme", R"({"limit":100})");
  SseClient sse(port_, "/v1/workspaces/acme/events", kRead);
  std::string head;
  ASSERT_EQ(sse.ReadHead(&head), 200) << head;
  EXPECT_NE(head.find("Content-Type: text/event-stream"), std::string::npos) << head;
  std::string first = sse.NextEvent();
  EXPECT_EQ(SseClient::Field(first, "event"), "balance") << first;
  const uint64_t rev0 = std::stoull(SseClient::Field(first, "id"));
  json::value d0 = json::parse(SseClient::Field(first, "data"));
  EXPECT_EQ(d0.at("remaining").as_int64(), 100);
  EXPECT_EQ(d0.at("rev").as_int64(), int64_t(rev0));

  const int64_t remaining = Charge("acme", 5);
  std::string next = sse.NextEvent();
  EXPECT_EQ(SseClient::Field(next, "event"), "balance") << next;
  EXPECT_GT(std::stoull(SseClient::Field(next, "id")), rev0);
  EXPECT_EQ(json::parse(SseClient::Field(next, "data")).at("remaining").as_int64(), remaining);

  // Idle: keep-alive comments.
  std::string rec = sse.NextRecord();
  EXPECT_EQ(rec, ": keep-alive");
}

// --stream-threads: the SSE session moves off the gate's thread that parsed its request (and
// with 0 stays there); the stream works the same either way, and ends when the server stops.
TEST_F(ServerEventsTest, ServerSentEventsRunOnTheStreamThreadsOrOnTheGatesWithNone) {
  for (int stream_threads : {2, 0}) {
    SCOPED_TRACE("stream_threads=" + std::to_string(stream_threads));
    ServerOptions opt;
    opt.stream_threads = stream_threads;
    StartServer(opt);
    Put("acme", R"({"limit":100})");
    std::vector<std::unique_ptr<SseClient>> streams;
    for (int i = 0; i < 3; ++i) {
      streams.push_back(std::make_unique<SseClient>(port_, "/v1/workspaces/acme/events", kRead));
      ASSERT_EQ(streams.back()->ReadHead(), 200);
      ASSERT_EQ(SseClient::Field(streams.back()->NextEvent(), "event"), "balance");
    }
    EXPECT_EQ(server_->stream_thread_sessions(), stream_threads == 0 ? 0u : 3u);
    const int64_t remaining = Charge("acme", 7);
    for (auto& sse : streams) {
      std::string next = sse->NextEvent();
      EXPECT_EQ(json::parse(SseClient::Field(next, "data")).at("remaining").as_int64(), remaining) << next;
    }
    server_->Stop();
    for (auto& sse : streams) EXPECT_TRUE(sse->Ended());
    server_->Wait();
    EXPECT_TRUE(server_->stopped_gracefully());
    EXPECT_EQ(server_->stream_subscriptions(), 0u);
    server_.reset();
  }
}

TEST_F(ServerEventsTest, ServerSentEventsRefusalsArePlainHttpErrors) {
  StartServer();
  {
    SseClient sse(port_, "/v1/workspaces/nobody/events", kRead);
    std::string body;
    EXPECT_EQ(sse.ReadHead(nullptr, &body), 404);
    EXPECT_NE(body.find("unknown_workspace"), std::string::npos) << body;
  }
  {
    SseClient sse(port_, "/v1/workspaces/acme/events", nullptr);
    EXPECT_EQ(sse.ReadHead(), 401);
  }
  {
    SseClient sse(port_, "/v1/workspaces/acme/events", "Bearer wrong");
    EXPECT_EQ(sse.ReadHead(), 401);
  }
  EXPECT_EQ(server_->stream_subscriptions(), 0u);
}

TEST_F(ServerEventsTest, LimitsGiveTheDocumentedErrors) {
  ServerOptions opt;
  opt.max_subscriptions_per_connection = 2;
  opt.max_subscribers = 3;
  StartServer(opt);
  for (const char* w : {"a", "b", "c", "d"}) Put(w, R"({"limit":10})");
  auto one = Ws();
  EXPECT_EQ(Subscribe(*one, "a", 1).at("status").as_int64(), 200);
  EXPECT_EQ(Subscribe(*one, "b", 2).at("status").as_int64(), 200);
  EXPECT_EQ(Subscribe(*one, "b", 3).at("status").as_int64(), 200) << "subscribing again is no new subscription";
  json::value r = Subscribe(*one, "c", 4);
  EXPECT_EQ(r.at("status").as_int64(), 429) << r;
  EXPECT_EQ(r.at("error").at("code").as_string(), "too_many_subscriptions");
  auto two = Ws();
  EXPECT_EQ(Subscribe(*two, "c", 1).at("status").as_int64(), 200);
  r = Subscribe(*two, "d", 2);
  EXPECT_EQ(r.at("status").as_int64(), 503) << r;
  EXPECT_EQ(r.at("error").at("code").as_string(), "too_many_subscribers");
  {
    SseClient sse(port_, "/v1/workspaces/d/events", kRead);
    std::string body;
    EXPECT_EQ(sse.ReadHead(nullptr, &body), 503);
    EXPECT_NE(body.find("too_many_subscribers"), std::string::npos) << body;
  }
  // Unknown workspace, and subscribe outside a WebSocket.
  r = Subscribe(*two, "nobody", 3);
  EXPECT_EQ(r.at("error").at("code").as_string(), "unknown_workspace") << r;
  Client c(port_);
  Response b = c.Do(http::verb::post, "/v1/batch", R"({"ops":[{"op":"subscribe","workspace":"a"}]})", kGate);
  EXPECT_NE(b.body().find("invalid_argument"), std::string::npos) << b.body();
  // Unsubscribing frees a place.
  one->Send(R"({"op":"unsubscribe","workspace":"a"})");
  EXPECT_EQ(one->RecvJson().at("status").as_int64(), 200);
  EXPECT_EQ(Subscribe(*two, "d", 4).at("status").as_int64(), 200);
}

// A subscriber that never reads is disconnected once its bound is reached, and the others are
// served meanwhile.
TEST_F(ServerEventsTest, ASubscriberThatNeverReadsIsDisconnected) {
  ServerOptions opt;
  opt.max_subscriptions_per_connection = 1000;
  opt.max_stream_queued_bytes = 4096;
  StartServer(opt);
  constexpr int kWorkspaces = 300;
  {
    Client c(port_);
    for (int i = 0; i < kWorkspaces; ++i)
      ASSERT_EQ(c.Do(http::verb::put, "/v1/workspaces/w" + std::to_string(i), R"({"limit":null})").result_int(), 200u);
  }
  auto slow = Ws();
  int small = 4096;
  setsockopt(beast::get_lowest_layer(slow->ws()).socket().native_handle(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::string subs = "[";
  for (int i = 0; i < kWorkspaces; ++i)
    subs += std::string(i ? "," : "") + R"({"op":"subscribe","workspace":"w)" + std::to_string(i) + "\"}";
  slow->Send(subs + "]");   // and never read
  auto good = Ws();
  ASSERT_EQ(Subscribe(*good, "w0", 1).at("status").as_int64(), 200);
  ASSERT_TRUE(WaitFor([&] { return server_->stream_subscriptions() == kWorkspaces + 1; }));

  std::string ops;
  for (int i = 0; i < kWorkspaces; ++i)
    ops += std::string(i ? "," : "") + R"({"op":"charge","workspace":"w)" + std::to_string(i) +
           R"(","user":"u","model":"gpt-4o","quantity":1})";
  Client c(port_);
  int rounds = 0;
  for (; rounds < 2000 && server_->stream_subscriptions() > 1; ++rounds) {
    ASSERT_EQ(c.Do(http::verb::post, "/v1/batch", R"({"ops":[)" + ops + "]}", kGate).result_int(), 200u);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(server_->stream_subscriptions(), 1u) << "the slow subscriber is still subscribed";
  // The connection itself goes too (close 1008, or cut when it cannot even take that).
  EXPECT_TRUE(WaitFor([&] { return server_->metrics().open_connections() <= 2; }));
  // The reading subscriber was served all along and still is.
  const int64_t used = json::parse(c.Do(http::verb::get, "/v1/workspaces/w0").body()).at("used").as_int64();
  for (;;) {
    json::value f = good->RecvJson();
    ASSERT_EQ(f.at("workspace").as_string(), "w0");
    if (f.at("used").as_int64() == used) break;
  }
}

// Only durable states are published: while the WAL's fdatasync is held, a change shows in no
// frame (WebSocket) and a new SSE stream does not even begin; once the sync is released both
// arrive.
TEST_F(ServerEventsTest, NoFrameShowsAStateBeforeItIsDurable) {
  latch_ = std::make_unique<LatchFileSystem>();
  StartServer({}, latch_.get());
  Put("acme", R"({"limit":100})");
  auto ws = Ws();
  json::value r = Subscribe(*ws, "acme", 1);
  ASSERT_EQ(r.at("state").at("remaining").as_int64(), 100);
  const int ws_fd = beast::get_lowest_layer(ws->ws()).socket().native_handle();

  latch_->Close();
  Client charger(port_);
  http::request<http::string_body> req{http::verb::post, "/v1/charge", 11};
  req.set(http::field::host, "127.0.0.1");
  req.set(http::field::authorization, kGate);
  req.body() = R"({"workspace":"acme","user":"u","model":"gpt-4o","quantity":7})";
  req.prepare_payload();
  http::write(charger.stream(), req);   // its answer waits for the sync
  latch_->WaitBlocked();
  ASSERT_TRUE(WaitFor([&] { return ledger_->GetWorkspace("acme")->used == 7; }));
  SseClient sse(port_, "/v1/workspaces/acme/events", kRead);
  // Several polls happen meanwhile (the interval is 100 ms); none may publish the change.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_FALSE(SocketReadable(ws_fd)) << "a frame before the state was durable";
  EXPECT_FALSE(SocketReadable(sse.fd())) << "an SSE stream began with a state not yet durable";

  latch_->Open();
  json::value f = ws->RecvJson();
  EXPECT_EQ(f.at("event").as_string(), "balance");
  EXPECT_EQ(f.at("remaining").as_int64(), 93);
  ASSERT_EQ(sse.ReadHead(), 200);
  std::string first = sse.NextEvent();
  EXPECT_EQ(json::parse(SseClient::Field(first, "data")).at("remaining").as_int64(), 93) << first;
}

TEST_F(ServerEventsTest, StreamsEndWhenTheServerStopsAndWhenTheTokenIsRevoked) {
  const std::string file = tmp_.path() + "/auth.json";
  auto write_tokens = [&](bool with_read) {
    std::ofstream f(file, std::ios::trunc);
    f << R"({"tokens":[{"token":"admin-token-0123456789","role":"admin"},{"token":"gate-token-0123456789","role":"gate"})";
    if (with_read) f << R"(,{"token":"read-token-0123456789","role":"read"})";
    f << "]}";
  };
  write_tokens(true);
  StartServer({}, nullptr, file);
  Put("acme", R"({"limit":100})");
  SseClient revoked(port_, "/v1/workspaces/acme/events", kRead);
  ASSERT_EQ(revoked.ReadHead(), 200);
  ASSERT_FALSE(revoked.NextEvent().empty());
  SseClient admin(port_, "/v1/workspaces/acme/events", kAdmin);
  ASSERT_EQ(admin.ReadHead(), 200);
  ASSERT_FALSE(admin.NextEvent().empty());
  write_tokens(false);
  ASSERT_TRUE(server_->ReloadAuth().ok());
  EXPECT_TRUE(revoked.Ended());
  ASSERT_TRUE(WaitFor([&] { return server_->stream_subscriptions() == 1; }));

  auto ws = Ws();
  ASSERT_EQ(Subscribe(*ws, "acme", 1).at("status").as_int64(), 200);
  server_->Stop();
  EXPECT_TRUE(admin.Ended());
  beast::error_code ec;
  for (int i = 0; i < 100 && !ec; ++i) ws->Recv(ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws->ws().reason().code, websocket::close_code::going_away);
  server_->Wait();
  EXPECT_TRUE(server_->stopped_gracefully());
  EXPECT_EQ(server_->stream_subscriptions(), 0u);
}

}  // namespace
}  // namespace genledger::server
