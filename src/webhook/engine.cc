#include "webhook/engine.h"

#include <algorithm>
#include <deque>
#include <limits>

#include <boost/asio/post.hpp>

#include "log/log.h"
#include "webhook/event_json.h"
#include "webhook/http_client.h"
#include "webhook/signature.h"

namespace genledger::webhook {

namespace net = boost::asio;

namespace {
uint64_t SystemNowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}
}  // namespace

// One (webhook, shard) stream: the events read and not yet done, in seq order.
struct Engine::Stream {
  struct Pending {
    LedgerEvent event;
    uint64_t ticket;  // durable once source.IsDurable(ticket)
  };
  uint64_t read_seq = 1;        // next seq to read from the outbox
  std::deque<Pending> queue;    // wanted events in [cursor, read_seq), in order
  uint64_t recorded = 0;        // the next_seq of the last progress record
  uint64_t recorded_at_ms = 0;
  uint64_t pending_given_up = 0, pending_dropped = 0;  // not yet in a progress record
  bool in_flight = false;       // a request of the head is out
  bool backing_off = false;     // the head waits for its retry timer
  bool waiting_slot = false;    // in hook.waiting
  uint32_t attempt = 0;         // attempts of the head so far
  uint64_t first_attempt_ms = 0;
  uint64_t backoff_ms = 0;
  std::unique_ptr<net::steady_timer> timer;

  // Every seq below it is done.
  uint64_t Cursor() const { return queue.empty() ? read_seq : EventSeq(queue.front().event.id); }
};

struct Engine::Hook {
  WebhookConfig config;
  ParsedUrl url;
  std::vector<Stream> streams;
  uint32_t in_flight = 0;
  std::deque<uint32_t> waiting;  // shards whose head is ready but found no free connection
  std::deque<DeliveryAttempt> log;
  uint64_t ready_ticket = 0;  // nothing is read or recorded until it is durable
};

Engine::Engine(EventSource& source, std::shared_ptr<net::ssl::context> tls, EngineOptions options)
    : source_(source), tls_(std::move(tls)), opts_(std::move(options)), shards_(source.ShardCount()),
      kept_from_(shards_, 0), tick_(ioc_) {
  if (!opts_.now_ms) opts_.now_ms = SystemNowMs;
  opts_.backoff_initial_ms = std::max<uint64_t>(opts_.backoff_initial_ms, 1);
  opts_.max_in_flight_per_webhook = std::max<uint32_t>(opts_.max_in_flight_per_webhook, 1);
}

Engine::~Engine() { Stop(); }

uint64_t Engine::Now() const { return opts_.now_ms(); }

void Engine::Start() {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  ScheduleTick();
  thread_ = std::thread([this] {
    // Errors thrown by a handler are bugs; log and keep the engine alive rather than kill the server.
    for (;;) {
      try {
        ioc_.run();
        return;
      } catch (const std::exception& e) {
        log::Error("webhook engine: unexpected exception: {}", e.what());
      }
    }
  });
}

void Engine::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  ioc_.stop();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  hooks_.clear();  // timers die before ioc_
}

void Engine::AddWebhook(WebhookConfig config, std::vector<uint64_t> cursors, uint64_t ready_ticket) {
  auto hook = std::make_unique<Hook>();
  hook->ready_ticket = ready_ticket;
  auto url = ParseUrl(config.url);
  if (!url.ok()) {
    log::Error("webhook wh_{}: {}; not delivered", config.number, url.status().ToString());
    return;
  }
  hook->url = *url;
  hook->streams.resize(shards_);
  for (uint32_t s = 0; s < shards_; ++s) {
    const uint64_t c = s < cursors.size() && cursors[s] > 0 ? cursors[s] : 1;
    hook->streams[s].read_seq = c;
    hook->streams[s].recorded = c;
  }
  hook->config = std::move(config);
  std::lock_guard lock(mu_);
  const uint32_t number = hook->config.number;
  hooks_[number] = std::move(hook);
}

void Engine::RemoveWebhook(uint32_t number) {
  std::unique_ptr<Hook> gone;
  std::lock_guard lock(mu_);
  auto it = hooks_.find(number);
  if (it == hooks_.end()) return;
  in_flight_.fetch_sub(it->second->in_flight, std::memory_order_relaxed);
  gone = std::move(it->second);
  hooks_.erase(it);
  // Its timers are cancelled by ~Stream here, under the lock; their handlers find no hook.
}

std::vector<DeliveryAttempt> Engine::Deliveries(uint32_t number) const {
  std::lock_guard lock(mu_);
  auto it = hooks_.find(number);
  if (it == hooks_.end()) return {};
  return {it->second->log.begin(), it->second->log.end()};
}

uint64_t Engine::Cursor(uint32_t number, uint32_t shard) const {
  std::lock_guard lock(mu_);
  auto it = hooks_.find(number);
  if (it == hooks_.end() || shard >= shards_) return 0;
  return it->second->streams[shard].Cursor();
}

EngineStats Engine::Stats() const {
  return EngineStats{delivered_.load(std::memory_order_relaxed), failed_.load(std::memory_order_relaxed),
                     given_up_.load(std::memory_order_relaxed), dropped_.load(std::memory_order_relaxed),
                     in_flight_.load(std::memory_order_relaxed)};
}

void Engine::ScheduleTick() {
  tick_.expires_after(std::chrono::milliseconds(opts_.poll_interval_ms));
  tick_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    Tick();
    std::lock_guard lock(mu_);
    if (!stopped_) ScheduleTick();
  });
}

void Engine::Tick() {
  std::lock_guard lock(mu_);
  for (auto& [number, hook] : hooks_) {
    if (hook->ready_ticket != 0 && source_.IsDurable(hook->ready_ticket)) hook->ready_ticket = 0;
    if (hook->ready_ticket != 0) source_.RequestDurable(hook->ready_ticket);
  }
  for (uint32_t s = 0; s < shards_; ++s) ReadShard(s);
  // One ticket after every read of this tick covers all of them (Durability::Ticket semantics).
  const uint64_t ticket = source_.Ticket();
  bool need_durable = false;
  for (auto& [number, hook] : hooks_) {
    if (hook->ready_ticket != 0) continue;
    for (uint32_t s = 0; s < shards_; ++s) {
      Stream& st = hook->streams[s];
      for (auto& p : st.queue) {
        if (p.ticket == 0) p.ticket = ticket;
      }
      if (!st.queue.empty() && !source_.IsDurable(st.queue.front().ticket)) need_durable = true;
      TryDispatch(*hook, s);
      AfterAdvance(*hook, s, false);
    }
  }
  if (need_durable) source_.RequestDurable(ticket);
  // Tell the outboxes what the slowest webhook still needs (nothing, without webhooks).
  for (uint32_t s = 0; s < shards_; ++s) {
    uint64_t keep = std::numeric_limits<uint64_t>::max();
    for (auto& [number, hook] : hooks_) keep = std::min(keep, hook->streams[s].Cursor());
    if (keep != kept_from_[s]) {
      kept_from_[s] = keep;
      source_.KeepEventsFrom(s, keep);
    }
  }
}

// Reads shard `s` once for every webhook whose stream has room, from the lowest read_seq.
void Engine::ReadShard(uint32_t s) {
  uint64_t from = std::numeric_limits<uint64_t>::max();
  for (auto& [number, hook] : hooks_) {
    const Stream& st = hook->streams[s];
    if (hook->ready_ticket == 0 && st.queue.size() < opts_.stream_buffer) from = std::min(from, st.read_seq);
  }
  if (from == std::numeric_limits<uint64_t>::max()) return;
  std::vector<LedgerEvent> events;
  uint64_t first_kept = 0;
  const uint64_t next = source_.ReadEvents(s, from, opts_.read_batch, events, &first_kept);
  for (auto& [number, hook] : hooks_) {
    Stream& st = hook->streams[s];
    if (hook->ready_ticket != 0 || st.queue.size() >= opts_.stream_buffer) continue;
    if (first_kept > st.read_seq) {
      // The outbox pruned events this webhook had not read (its byte ceiling): they are lost to
      // it. Count, log, and let the progress record say so.
      const uint64_t n = first_kept - st.read_seq;
      st.pending_dropped += n;
      dropped_.fetch_add(n, std::memory_order_relaxed);
      static log::RateLimit limit(10'000);
      if (uint64_t more; limit.Allow(Now(), &more)) {
        log::Warn("webhook wh_{}: outbox ceiling dropped {} undelivered events of shard {} (seq {}..{}) ({} more lines)",
                  number, n, s, st.read_seq, first_kept - 1, more);
      }
      st.read_seq = first_kept;
    }
    bool full = false;
    for (const LedgerEvent& e : events) {
      const uint64_t seq = EventSeq(e.id);
      if (seq < st.read_seq) continue;
      if (st.queue.size() >= opts_.stream_buffer) {
        full = true;
        break;
      }
      if (hook->config.Wants(e)) st.queue.push_back(Stream::Pending{e, 0});
      st.read_seq = seq + 1;
    }
    if (!full && next > st.read_seq) st.read_seq = next;
  }
}

void Engine::TryDispatch(Hook& hook, uint32_t s) {
  Stream& st = hook.streams[s];
  if (st.queue.empty() || st.in_flight || st.backing_off || st.waiting_slot) return;
  const uint64_t ticket = st.queue.front().ticket;
  if (ticket == 0 || !source_.IsDurable(ticket)) return;  // the next tick looks again
  if (hook.in_flight >= opts_.max_in_flight_per_webhook) {
    st.waiting_slot = true;
    hook.waiting.push_back(s);
    return;
  }
  Dispatch(hook, s);
}

void Engine::Dispatch(Hook& hook, uint32_t s) {
  Stream& st = hook.streams[s];
  const LedgerEvent& e = st.queue.front().event;
  const uint64_t now = Now();
  if (st.attempt == 0) st.first_attempt_ms = now;
  ++st.attempt;
  st.in_flight = true;
  ++hook.in_flight;
  in_flight_.fetch_add(1, std::memory_order_relaxed);
  PostRequest req;
  req.url = hook.url;
  req.body = EncodeEventBody(e);
  req.headers.emplace_back("Genledger-Event-Id", EventIdText(e.id));
  req.headers.emplace_back("Genledger-Signature", SignatureHeader(hook.config.secret, now / 1000, req.body));
  const uint32_t number = hook.config.number;
  const uint64_t id = e.id;
  AsyncPost(ioc_, tls_, std::move(req), opts_.timeout, [this, number, s, id](PostOutcome o) {
    OnDone(number, s, id, o.status, std::move(o.error));
  });
}

void Engine::ReleaseSlot(Hook& hook) {
  --hook.in_flight;
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  while (!hook.waiting.empty() && hook.in_flight < opts_.max_in_flight_per_webhook) {
    const uint32_t s = hook.waiting.front();
    hook.waiting.pop_front();
    hook.streams[s].waiting_slot = false;
    TryDispatch(hook, s);
  }
}

void Engine::OnDone(uint32_t number, uint32_t s, uint64_t event_id, unsigned status, std::string error) {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  auto it = hooks_.find(number);
  if (it == hooks_.end()) return;  // removed meanwhile (its slots were released then)
  Hook& hook = *it->second;
  Stream& st = hook.streams[s];
  st.in_flight = false;
  const uint64_t now = Now();
  DeliveryAttempt a{event_id, st.attempt, status, std::move(error), now, 0, false, false};
  const bool ok = a.error.empty() && status >= 200 && status < 300;
  bool advanced = false;
  if (ok) {
    a.delivered = true;
    delivered_.fetch_add(1, std::memory_order_relaxed);
    advanced = true;
  } else {
    failed_.fetch_add(1, std::memory_order_relaxed);
    if (now >= st.first_attempt_ms + opts_.give_up_after_ms) {
      a.given_up = true;
      given_up_.fetch_add(1, std::memory_order_relaxed);
      ++st.pending_given_up;
      advanced = true;
      log::Warn("webhook wh_{}: gave up on {} after {} attempts over {} ms (last: {})", number,
                EventIdText(event_id), st.attempt, now - st.first_attempt_ms,
                a.error.empty() ? "HTTP " + std::to_string(status) : a.error);
    } else {
      st.backoff_ms = st.backoff_ms == 0 ? opts_.backoff_initial_ms : std::min(st.backoff_ms * 2, opts_.backoff_cap_ms);
      a.retry_in_ms = st.backoff_ms;
      st.backing_off = true;
      if (!st.timer) st.timer = std::make_unique<net::steady_timer>(ioc_);
      st.timer->expires_after(std::chrono::milliseconds(st.backoff_ms));
      st.timer->async_wait([this, number, s](boost::system::error_code ec) {
        if (ec) return;
        std::lock_guard lock(mu_);
        auto h = hooks_.find(number);
        if (stopped_ || h == hooks_.end()) return;
        h->second->streams[s].backing_off = false;
        TryDispatch(*h->second, s);
      });
    }
  }
  hook.log.push_back(std::move(a));
  while (hook.log.size() > opts_.deliveries_kept) hook.log.pop_front();
  if (advanced) {
    st.queue.pop_front();
    st.attempt = 0;
    st.backoff_ms = 0;
    st.first_attempt_ms = 0;
    AfterAdvance(hook, s, true);
  }
  ReleaseSlot(hook);
  if (advanced) TryDispatch(hook, s);
}

// Records the stream's cursor in a progress record: at once after a delivery, give-up or drop
// (`force` or counts pending), at most every progress_interval_ms for moves over filtered events.
void Engine::AfterAdvance(Hook& hook, uint32_t s, bool force) {
  Stream& st = hook.streams[s];
  const uint64_t cursor = st.Cursor();
  const bool counts = st.pending_given_up != 0 || st.pending_dropped != 0;
  if (cursor <= st.recorded && !counts) return;
  const uint64_t now = Now();
  if (!force && !counts && now < st.recorded_at_ms + opts_.progress_interval_ms) return;
  source_.RecordProgress(hook.config.number, s, cursor, st.pending_given_up, st.pending_dropped);
  st.recorded = cursor;
  st.recorded_at_ms = now;
  st.pending_given_up = 0;
  st.pending_dropped = 0;
}

}  // namespace genledger::webhook
