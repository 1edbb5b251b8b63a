// The network server: HTTP/1.1 and WebSocket on Boost.Beast in front of an Api.
// Light header: no Beast types. Threading model: one io_context per I/O thread (see listener.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "genledger/durability.h"
#include "genledger/ledger.h"
#include "genledger/status.h"
#include "server/api.h"
#include "server/auth.h"
#include "server/metrics.h"

namespace genledger::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;                 // 0: an ephemeral port (see Server::port())
  int threads = 1;
  // I/O threads of their own for Server-Sent Events streams and the streams' hub (0: both run on
  // the gate's threads). A poll hands out up to one record per subscriber at once; on the gate's
  // threads a thousand subscribers put a thousand writes in front of the next charge's answer.
  int stream_threads = 1;
  size_t max_body_bytes = 1 << 20;      // HTTP body and WebSocket message limit
  uint64_t header_timeout_ms = 10'000;  // to receive a request's headers (and WS handshake)
  uint64_t idle_timeout_ms = 60'000;    // keep-alive idle, body read, WebSocket idle
  size_t max_connections = 10'000;      // beyond: 503 overloaded and close
  size_t max_batch_ops = 1'000;         // ops per /v1/batch body or WebSocket frame
  // Reads from a WebSocket pause while either bound is reached (so a connection holds at most
  // max_ws_queued_bytes plus one reply). Pipelined single-op clients need thousands of frames in
  // flight: every one waits for the same group-commit round, so the frame bound caps throughput
  // at max_ws_inflight per fsync per connection.
  size_t max_ws_inflight = 4096;        // reply frames queued per WebSocket
  size_t max_ws_queued_bytes = 1 << 20; // reply bytes queued per WebSocket
  uint64_t sweep_interval_ms = 200;     // Ledger::ExpireReservations period
  uint64_t shutdown_grace_ms = 10'000;  // after Stop(): then connections are cut
  // A reply waiting for the WAL longer than this is answered 503 `unavailable` instead: the
  // outcome is unknown (docs/api.md); the client retries with the same id.
  uint64_t reply_deadline_ms = 30'000;
  // /healthz answers 503 "degraded" while the WAL round in flight is at least this old.
  uint64_t health_unsynced_ms = 5'000;
  // Origins (scheme://host[:port]) allowed besides the server's own (--allow-origin).
  std::vector<std::string> allowed_origins;
  // /metrics: on its own address when metrics_listen (--metrics-listen; the API's address then
  // has no /metrics). It needs a token when metrics_token is set (that token, or any token with a
  // role) or when it is served on a non-loopback address (a token with a role).
  std::string metrics_token;
  bool metrics_listen = false;
  std::string metrics_host = "127.0.0.1";
  uint16_t metrics_port = 0;
  // Live streams (docs/events.md, "Streams"): subscriptions one connection may hold (WebSocket
  // subscribe ops; an SSE stream is one), subscriptions of all connections together, the bytes of
  // pushed frames one subscriber may have waiting (its inbox, then the socket's backlog) before
  // it is disconnected, the SSE keep-alive comment period, and the poll interval (at most one
  // balance frame per workspace per interval).
  size_t max_subscriptions_per_connection = 100;
  size_t max_subscribers = 10'000;
  size_t max_stream_queued_bytes = 1 << 20;
  uint64_t sse_keepalive_ms = 15'000;
  uint64_t stream_interval_ms = 100;
};

// Parses "host:port" or "[v6addr]:port". Host: a numeric IPv4/IPv6 address or "localhost".
Status ParseListen(std::string_view text, std::string& host, uint16_t& port);
// True for 127.0.0.0/8, ::1 and "localhost".
bool IsLoopbackHost(const std::string& host);

class Server {
 public:
  // `durability` (optional, not owned, must outlive the Server): when given, a reply that
  // acknowledges a mutation is sent only once the mutation's WAL record is durable; after a WAL
  // failure such replies become 503 `unavailable`. Without it the ledger is in memory only.
  Server(ServerOptions options, std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
         std::shared_ptr<Metrics> metrics = nullptr, Durability* durability = nullptr);
  ~Server();   // Stop() and Wait()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens, then starts the I/O threads and the expiry sweeper.
  Status Start();
  // The bound port (after Start).
  uint16_t port() const noexcept;
  // The bound --metrics-listen port (after Start; 0 without one).
  uint16_t metrics_port() const noexcept;
  // Re-reads the auth file (Auth::Reload) and logs the outcome; after a successful reload every
  // WebSocket whose token no longer grants the gate role is closed with 1008 (policy
  // violation), after the replies to frames it already sent. Thread-safe. Returns the reload's
  // status.
  Status ReloadAuth();
  // Subscriptions open now, over WebSocket and SSE (tests, metrics).
  size_t stream_subscriptions() const;
  // Sessions living on the --stream-threads threads right now (tests): asks each of those threads
  // and waits for its answer, so call it only while the server runs (0 otherwise).
  size_t stream_thread_sessions() const;
  // Replies currently held until the WAL makes what they observed durable (tests, metrics).
  int64_t parked_replies() const noexcept;
  // Graceful stop: stop accepting, let in-flight requests finish and close connections;
  // connections still open after shutdown_grace_ms are cut. Thread-safe, idempotent.
  void Stop();
  // Blocks until every I/O thread has exited (after Stop).
  void Wait();
  // After Wait: true when every session ended within shutdown_grace_ms (none had to be cut).
  bool stopped_gracefully() const noexcept;

  Api& api() noexcept;
  Metrics& metrics() noexcept;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace genledger::server
