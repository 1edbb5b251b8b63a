// The webhook delivery engine (docs/webhooks.md): reads durable events from the ledger's outboxes
// and POSTs them to each webhook, signed, retried with exponential backoff, in order per
// (webhook, shard) stream. It runs on an io_context and a thread of its own, never on the gate's
// I/O threads; every network step is asynchronous, so a receiver that is down, slow or answering
// 500 holds only its own streams (and at most `max_in_flight_per_webhook` connections).
//
// Ordering: every event of a workspace is on the workspace's shard, so delivering each
// (webhook, shard) stream strictly in seq order, one request in flight per stream, keeps the order
// per workspace per webhook. At-least-once: the stream's cursor advances (WAL type 25 through
// EventSource::RecordProgress) only after a 2xx, a give-up (24 h) or a drop (outbox ceiling); an
// event delivered whose progress record was lost in a crash is sent again with the same
// Genledger-Event-Id after restart.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "webhook/config.h"
#include "webhook/event_source.h"

namespace genledger::webhook {

struct EngineOptions {
  uint32_t max_in_flight_per_webhook = 4;      // connections per webhook (streams beyond wait)
  std::chrono::milliseconds timeout{10'000};  // per step: connect, TLS handshake, write, read
  uint64_t backoff_initial_ms = 1'000;          // first retry after this; doubling ...
  uint64_t backoff_cap_ms = 600'000;            // ... capped at 10 min
  uint64_t give_up_after_ms = 24ull * 3600 * 1000;  // after the first attempt
  uint64_t poll_interval_ms = 50;               // how often the outboxes are read
  size_t read_batch = 256;                      // events read per shard per poll
  size_t stream_buffer = 256;                   // events held in memory per stream
  size_t deliveries_kept = 100;                 // attempts kept per webhook for GET .../deliveries
  uint64_t progress_interval_ms = 1'000;        // cursor moves over filtered events recorded this often
  // Wall clock in ms since the epoch (signature t, attempt times, the 24 h). Tests inject one.
  std::function<uint64_t()> now_ms;
};

struct DeliveryAttempt {
  uint64_t event_id = 0;
  uint32_t attempt = 0;      // 1 for the first
  unsigned status = 0;       // HTTP status; 0: no response (error says why)
  std::string error;         // network/TLS error, or "" on a response
  uint64_t at_ms = 0;        // when the attempt finished
  uint64_t retry_in_ms = 0;  // 0: not retried (delivered or given up)
  bool delivered = false;
  bool given_up = false;
};

struct EngineStats {
  uint64_t delivered = 0;        // events answered 2xx
  uint64_t failed_attempts = 0;  // attempts answered non-2xx or failed on the network
  uint64_t given_up = 0;         // events abandoned after give_up_after_ms
  uint64_t dropped = 0;          // events pruned by the outbox ceiling before delivery
  uint64_t in_flight = 0;
};

class Engine {
 public:
  // `tls` may be null (then https:// attempts fail with an error); `source` outlives the engine.
  Engine(EventSource& source, std::shared_ptr<boost::asio::ssl::context> tls, EngineOptions options);
  ~Engine();  // Stop()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts the engine's thread. Call once.
  void Start();
  // Stops polling and abandons requests in flight (they are retried after a restart: their
  // cursors did not move). Idempotent.
  void Stop();

  // Starts delivering to `config` (validated) from cursors[shard] (first seq to deliver; a
  // missing entry means 1) once source.IsDurable(ready_ticket): the webhook's add record must be
  // durable before any of its progress records is appended (0: it already is). Replaces a
  // webhook with the same number. Thread-safe.
  void AddWebhook(WebhookConfig config, std::vector<uint64_t> cursors, uint64_t ready_ticket = 0);
  // Stops delivering to `number` (requests in flight are abandoned). Thread-safe.
  void RemoveWebhook(uint32_t number);

  // The recent attempts to `number`, oldest first (at most deliveries_kept). Thread-safe.
  std::vector<DeliveryAttempt> Deliveries(uint32_t number) const;
  // The cursor of (number, shard): every seq below it is done. 0 if unknown. Thread-safe.
  uint64_t Cursor(uint32_t number, uint32_t shard) const;
  EngineStats Stats() const;

 private:
  struct Stream;
  struct Hook;

  void ScheduleTick();
  void Tick();
  void ReadShard(uint32_t shard);
  void TryDispatch(Hook& hook, uint32_t shard);
  void Dispatch(Hook& hook, uint32_t shard);
  void OnDone(uint32_t number, uint32_t shard, uint64_t event_id, unsigned status, std::string error);
  void AfterAdvance(Hook& hook, uint32_t shard, bool force);
  void ReleaseSlot(Hook& hook);
  uint64_t Now() const;

  boost::asio::io_context ioc_;  // first: destroyed last (timers and sockets refer to it)
  EventSource& source_;
  std::shared_ptr<boost::asio::ssl::context> tls_;
  EngineOptions opts_;
  uint32_t shards_;

  mutable std::mutex mu_;
  std::map<uint32_t, std::unique_ptr<Hook>> hooks_;
  std::vector<uint64_t> kept_from_;  // per shard, the last value given to KeepEventsFrom
  boost::asio::steady_timer tick_;
  std::thread thread_;
  bool started_ = false, stopped_ = false;

  std::atomic<uint64_t> delivered_{0}, failed_{0}, given_up_{0}, dropped_{0}, in_flight_{0};
};

}  // namespace genledger::webhook
