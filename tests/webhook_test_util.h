// Test doubles for the webhook engine: a fake event source (outboxes, durability, progress
// records in memory), a real Beast receiver on loopback (HTTP or TLS, scripted answers), and a
// test CA made by the openssl CLI.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "webhook/event_source.h"

namespace genledger::webhook::testing {

namespace net = boost::asio;
namespace ssl = net::ssl;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

// Polls `pred` every 2 ms for at most `limit` (a bound on the test's run time, not an assertion
// about speed). Returns pred()'s last value.
inline bool WaitFor(const std::function<bool()>& pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

struct Progress {
  uint32_t webhook, shard;
  uint64_t next_seq, given_up, dropped;
};

class FakeSource : public EventSource {
 public:
  explicit FakeSource(uint32_t shards = 4) : events_(shards), first_kept_(shards, 1), kept_from_(shards, 0) {}

  // Appends an event to `shard`'s outbox; returns its id.
  uint64_t Add(uint32_t shard, EventKind kind, std::string workspace, std::string alert = {}) {
    std::lock_guard lock(mu_);
    LedgerEvent e;
    e.id = (static_cast<uint64_t>(events_[shard].size() + 1) << 8) | shard;
    e.kind = kind;
    e.workspace = std::move(workspace);
    e.alert = std::move(alert);
    e.used = 100 + events_[shard].size();
    e.limit = 1000;
    e.remaining = e.limit - e.used;
    e.at_ms = 1'700'000'000'000 + events_[shard].size();
    events_[shard].push_back(e);
    return e.id;
  }
  // Simulates the outbox ceiling: events of `shard` below `seq` are gone.
  void Prune(uint32_t shard, uint64_t seq) {
    std::lock_guard lock(mu_);
    first_kept_[shard] = seq;
  }
  void SetAutoDurable(bool on) { auto_durable_ = on; }
  void MakeAllDurable() { durable_ = ticket_.load(); }
  uint64_t reads() const { return reads_.load(); }
  std::vector<Progress> progress() const {
    std::lock_guard lock(mu_);
    return progress_;
  }
  // The cursors a restarted engine would start from (the latest progress per webhook and shard).
  std::vector<uint64_t> Cursors(uint32_t webhook) const {
    std::lock_guard lock(mu_);
    std::vector<uint64_t> c(events_.size(), 1);
    for (const Progress& p : progress_) {
      if (p.webhook == webhook) c[p.shard] = std::max(c[p.shard], p.next_seq);
    }
    return c;
  }
  uint64_t kept_from(uint32_t shard) const {
    std::lock_guard lock(mu_);
    return kept_from_[shard];
  }

  uint32_t ShardCount() const override { return static_cast<uint32_t>(events_.size()); }
  uint64_t ReadEvents(uint32_t shard, uint64_t from_seq, size_t max, std::vector<LedgerEvent>& out,
                      uint64_t* first_kept) override {
    std::lock_guard lock(mu_);
    ++reads_;
    const auto& ev = events_[shard];
    uint64_t seq = std::max(from_seq, first_kept_[shard]);
    for (size_t n = 0; n < max && seq <= ev.size(); ++n, ++seq) out.push_back(ev[seq - 1]);
    if (first_kept) *first_kept = first_kept_[shard];
    return seq;
  }
  uint64_t Ticket() override { return ticket_.fetch_add(1) + 1; }
  bool IsDurable(uint64_t ticket) override { return auto_durable_ || ticket <= durable_.load(); }
  void RequestDurable(uint64_t) override {}
  void KeepEventsFrom(uint32_t shard, uint64_t seq) override {
    std::lock_guard lock(mu_);
    kept_from_[shard] = seq;
  }
  void RecordProgress(uint32_t webhook, uint32_t shard, uint64_t next_seq, uint64_t given_up,
                      uint64_t dropped) override {
    std::lock_guard lock(mu_);
    progress_.push_back(Progress{webhook, shard, next_seq, given_up, dropped});
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<LedgerEvent>> events_;
  std::vector<uint64_t> first_kept_, kept_from_;
  std::vector<Progress> progress_;
  std::atomic<uint64_t> ticket_{0}, durable_{0}, reads_{0};
  std::atomic<bool> auto_durable_{true};
};

// A real HTTP(S) server on 127.0.0.1 that records every request and answers what `policy` says.
class Receiver {
 public:
  struct Request {
    std::string event_id, signature, body, content_type, user_agent, target;
    unsigned answered = 0;
  };
  // (request, how many earlier requests carried the same event id) -> status to answer.
  using Policy = std::function<unsigned(const Request&, size_t earlier_same_id)>;

  explicit Receiver(std::shared_ptr<ssl::context> tls = nullptr) : tls_(std::move(tls)), acceptor_(ioc_) {
    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    net::co_spawn(ioc_, Accept(), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
  }
  ~Receiver() {
    held_ = false;
    ioc_.stop();
    thread_.join();
  }
  uint16_t port() const { return port_; }
  void SetPolicy(Policy p) {
    std::lock_guard lock(mu_);
    policy_ = std::move(p);
  }
  // While held, answers wait (the receiver is "slow").
  void Hold(bool on) { held_ = on; }
  std::vector<Request> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }
  size_t count() const {
    std::lock_guard lock(mu_);
    return requests_.size();
  }
  size_t arrived() const { return arrived_.load(); }
  size_t handshake_failures() const { return handshake_failures_.load(); }
  size_t connections() const { return connections_.load(); }

 private:
  net::awaitable<void> Accept() {
    for (;;) {
      tcp::socket s = co_await acceptor_.async_accept(net::use_awaitable);
      ++connections_;
      if (tls_) {
        net::co_spawn(ioc_, ServeTls(std::move(s)), net::detached);
      } else {
        net::co_spawn(ioc_, Serve(beast::tcp_stream(std::move(s))), net::detached);
      }
    }
  }
  net::awaitable<void> ServeTls(tcp::socket s) {
    ssl::stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(s)), *tls_);
    try {
      co_await stream.async_handshake(ssl::stream_base::server, net::use_awaitable);
    } catch (const std::exception&) {
      ++handshake_failures_;
      co_return;
    }
    co_await Serve(std::move(stream));
  }
  template <typename Stream>
  net::awaitable<void> Serve(Stream stream) {
    try {
      beast::flat_buffer buf;
      for (;;) {
        http::request<http::string_body> req;
        co_await http::async_read(stream, buf, req, net::use_awaitable);
        ++arrived_;
        Request r{std::string(req["Genledger-Event-Id"]), std::string(req["Genledger-Signature"]), req.body(),
                  std::string(req[http::field::content_type]), std::string(req[http::field::user_agent]),
                  std::string(req.target())};
        while (held_) {
          net::steady_timer t(co_await net::this_coro::executor, std::chrono::milliseconds(2));
          co_await t.async_wait(net::use_awaitable);
        }
        unsigned status = 200;
        {
          std::lock_guard lock(mu_);
          size_t earlier = 0;
          for (const Request& x : requests_) earlier += x.event_id == r.event_id;
          if (policy_) status = policy_(r, earlier);
          r.answered = status;
          requests_.push_back(r);
        }
        http::response<http::string_body> res{static_cast<http::status>(status), 11};
        res.body() = "ok";
        res.keep_alive(req.keep_alive());
        res.prepare_payload();
        co_await http::async_write(stream, res, net::use_awaitable);
        if (!req.keep_alive()) break;
      }
    } catch (const std::exception&) {
    }
  }

  std::shared_ptr<ssl::context> tls_;
  net::io_context ioc_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  Policy policy_;
  std::vector<Request> requests_;
  std::atomic<bool> held_{false};
  std::atomic<size_t> arrived_{0}, handshake_failures_{0}, connections_{0};
};

// Runs `cmd` with /bin/sh; fails the test on a non-zero exit.
inline void Sh(const std::string& cmd) {
  const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
  ASSERT_EQ(rc, 0) << cmd;
}

// A CA and a server certificate signed by it, made by the openssl CLI in `dir`:
//   <name>-ca.pem/.key, <name>.pem/.key with subjectAltName `san` (e.g. "IP:127.0.0.1").
inline void MakeCa(const std::string& dir, const std::string& name) {
  Sh("cd '" + dir + "' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
     "-subj '/CN=genledger test CA " + name + "' -keyout " + name + "-ca.key -out " + name + "-ca.pem");
}
inline void MakeCert(const std::string& dir, const std::string& ca, const std::string& name, const std::string& san) {
  Sh("cd '" + dir + "' && printf 'subjectAltName=" + san + "\\n' > " + name + ".ext && "
     "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj '/CN=" + name + "' -keyout " +
     name + ".key -out " + name + ".csr && openssl x509 -req -in " + name + ".csr -CA " + ca + "-ca.pem -CAkey " +
     ca + "-ca.key -CAcreateserial -days 2 -extfile " + name + ".ext -out " + name + ".pem");
}
inline std::shared_ptr<ssl::context> ServerTls(const std::string& dir, const std::string& name) {
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->use_certificate_chain_file(dir + "/" + name + ".pem");
  ctx->use_private_key_file(dir + "/" + name + ".key", ssl::context::pem);
  return ctx;
}

}  // namespace genledger::webhook::testing
