// The listener, the server's threads and its lifetime (start, auth reload, graceful stop); the
// sessions are in http_session.cc and ws_session.cc, their shared pieces in server_impl.h.
//
// Threading model: one io_context per I/O thread (concurrency hint 1). The acceptor runs on
// context 0 and hands each accepted socket to the contexts in turn; a session then lives on
// exactly one thread, so its handlers never run concurrently and need no strand, and all
// per-thread state (the session registry used for shutdown, thread_local parse buffers) is
// touched by one thread only. This is also the shape the durability hook wants: a WAL writer
// can wake one I/O thread with a single post() to its context and that thread sends every
// reply that became durable (design notes §2). After the gate's contexts come --stream-threads
// contexts of their own for the live streams: the hub's poll timer and the SSE sessions (an SSE
// request is parsed on a gate thread, then its socket moves), so that handing a poll's records
// to a thousand subscribers never queues in front of a charge's answer.
//
// Durability: every reply leaves a session through exactly one function, HttpSession::Reply and
// WsSession::Reply. A reply that acknowledges a mutation carries the WAL ticket taken right after
// the mutation returned and is held until that ticket is durable (design notes §2): an HTTP
// session parks its one reply (the next request is read only after it is written, so replies stay
// in request order); a WebSocket session writes its queue head only once durable, so frames stay
// in order and parked frames count against --max-ws-inflight. The WAL writer's callback posts one
// coalesced flush to each I/O thread, which wakes that thread's waiting sessions. A parked session
// holds a work guard so that a stopping server still delivers it.

#include "server/server_impl.h"

#include "log/log.h"
#include "net/host_port.h"

#include <future>

namespace genledger::server {

Status ParseListen(std::string_view text, std::string& host, uint16_t& port) {
  std::string h;
  uint16_t p = 0;
  if (Status st = genledger::net::SplitHostPort(text, &h, &p); !st.ok()) {
    return st;
  }
  if (h == "localhost") h = "127.0.0.1";
  error_code ec;
  net::ip::make_address(h, ec);
  if (ec) return Status(Code::kInvalidArgument, "host must be a numeric IP address or localhost");
  host = std::move(h);
  port = p;
  return Status::Ok();
}

bool IsLoopbackHost(const std::string& host) {
  if (host == "localhost") return true;
  error_code ec;
  auto a = net::ip::make_address(host, ec);
  return !ec && a.is_loopback();
}


// --------------------------------------------------------------------------------------
// Listener and threads.

Status Server::Impl::Listen(const std::string& host, uint16_t port, Listener kind, uint16_t* bound) {
  error_code ec;
  auto addr = net::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status(Code::kInvalidArgument, "bad listen address " + host);
  tcp::endpoint ep(addr, port);
  Acceptor a;
  a.kind = kind;
  a.socket = std::make_unique<tcp::acceptor>(*ctxs[0]);
  a.socket->open(ep.protocol(), ec);
  if (!ec) a.socket->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.socket->bind(ep, ec);
  if (!ec) a.socket->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return Status(Code::kIOError, "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
  *bound = a.socket->local_endpoint().port();
  a.retry = std::make_unique<net::steady_timer>(*ctxs[0]);
  acceptors.push_back(std::move(a));
  return Status::Ok();
}

void Server::Impl::DoAccept(size_t a) {
  size_t idx = next_ctx;
  next_ctx = (next_ctx + 1) % gate_ctxs;   // stream contexts take no new connection
  acceptors[a].socket->async_accept(*ctxs[idx], [this, a, idx](error_code ec, tcp::socket socket) {
    OnAccept(a, idx, ec, std::move(socket));
  });
}

void Server::Impl::Reject(tcp::socket socket) {
  static const std::string kResponse = [] {
    std::string body = ErrorBody(WireError::Make(503, "overloaded", "too many connections"));
    return "HTTP/1.1 503 Service Unavailable\r\nServer: genledger\r\nContent-Type: "
           "application/json\r\nConnection: close\r\nContent-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  metrics->ConnectionRejected();
  metrics->Count(MetricOp::kOther, 503);
  static log::RateLimit limit(60'000);
  if (uint64_t held = 0; limit.Allow(NowMs(), &held)) {
    log::Warn("connection refused: --max-connections {} reached ({} more refused since the last line)",
              opt.max_connections, held);
  }
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  net::async_write(*s, net::buffer(kResponse), [s](error_code, size_t) {
    error_code ec;
    s->shutdown(tcp::socket::shutdown_send, ec);
    s->close(ec);
  });
}

void Server::Impl::OnAccept(size_t a, size_t idx, error_code ec, tcp::socket socket) {
  if (stopping || !acceptors[a].socket->is_open()) return;
  if (ec) {
    // E.g. out of file descriptors: back off briefly rather than spin.
    static log::RateLimit limit(60'000);
    if (uint64_t held = 0; limit.Allow(NowMs(), &held)) {
      log::Warn("accept failed: {} ({} more since the last line)", ec.message(), held);
    }
    acceptors[a].retry->expires_after(std::chrono::milliseconds(50));
    acceptors[a].retry->async_wait([this, a](error_code e) {
      if (!e && !stopping) DoAccept(a);
    });
    return;
  }
  if (metrics->open_connections() >= int64_t(opt.max_connections)) {
    Reject(std::move(socket));
  } else {
    metrics->ConnectionOpened();
    StartHttpSession(std::move(socket), *this, idx, acceptors[a].kind);
  }
  DoAccept(a);
}

void Server::Impl::ScheduleSweep() {
  sweeper->expires_after(std::chrono::milliseconds(opt.sweep_interval_ms));
  sweeper->async_wait([this](error_code ec) {
    if (ec || stopping) return;
    ledger->ExpireReservations();
    ScheduleSweep();
  });
}

// The streams' poll (event_hub.h), on the hub's context, one slice of the watched workspaces per
// tick. A fixed cadence (expires_at += tick) so the hub's per-interval rule does not drift
// against it.
void Server::Impl::ScheduleHubPoll() {
  const auto tick = std::chrono::milliseconds(hub.tick_ms());
  auto next = hub_timer->expiry() + tick;
  if (next + tick < SteadyClock::now()) next = SteadyClock::now() + tick;   // fell behind: no burst
  hub_timer->expires_at(next);
  hub_timer->async_wait([this](error_code ec) {
    if (ec || stopping) return;
    hub.Tick();
    ScheduleHubPoll();
  });
}

Server::Server(ServerOptions options, std::shared_ptr<Ledger> ledger, std::shared_ptr<Auth> auth,
               std::shared_ptr<Metrics> metrics, Durability* durability)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(ledger), std::move(auth),
                                   std::move(metrics), durability)) {}

Server::~Server() {
  Stop();
  Wait();
}

Api& Server::api() noexcept { return impl_->api; }
Metrics& Server::metrics() noexcept { return *impl_->metrics; }
uint16_t Server::port() const noexcept { return impl_->bound_port; }
uint16_t Server::metrics_port() const noexcept { return impl_->bound_metrics_port; }
int64_t Server::parked_replies() const noexcept { return impl_->parked.load(); }
size_t Server::stream_subscriptions() const { return impl_->hub.subscriptions(); }
size_t Server::stream_thread_sessions() const {
  Impl& s = *impl_;
  if (!s.started || s.stopping) return 0;
  size_t n = 0;
  for (size_t i = s.gate_ctxs; i < s.ctxs.size(); ++i) {
    std::promise<size_t> count;
    net::post(*s.ctxs[i], [&s, i, &count] { count.set_value(s.registry[i].size()); });
    n += count.get_future().get();
  }
  return n;
}
bool Server::stopped_gracefully() const noexcept { return !impl_->cut.load(); }

namespace {
// "http://host:port" as a browser sends it in Origin (brackets around IPv6, no :80).
std::string OriginOf(const std::string& host, uint16_t port) {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return "http://" + h + (port == 80 ? "" : ":" + std::to_string(port));
}
// The origins a page served by this server itself could have on address host:port.
void AddOwnOrigins(const std::string& host, uint16_t port, std::vector<std::string>& out) {
  out.push_back(OriginOf(host, port));
  if (IsLoopbackHost(host)) {
    for (const char* h : {"localhost", "127.0.0.1", "::1"}) out.push_back(OriginOf(h, port));
  }
}
}  // namespace

Status Server::ReloadAuth() {
  Impl& s = *impl_;
  Status st = s.auth->Reload();
  if (!st.ok()) {
    log::Error("auth reload failed, keeping the old tokens: {}", st.ToString());
    return st;
  }
  log::Info("auth reloaded: {} tokens{}", s.auth->token_count(), s.auth->open() ? " (open mode)" : "");
  s.RecheckSessions();
  return st;
}

void Server::Impl::RecheckSessions() {
  if (!started || stopping) return;
  for (size_t i = 0; i < ctxs.size(); ++i) {
    net::post(*ctxs[i], [this, i] {
      std::vector<std::shared_ptr<SessionBase>> live;
      for (SessionBase* p : registry[i]) {
        if (auto sp = p->Lock()) live.push_back(std::move(sp));   // only WebSocket and SSE act on it
      }
      for (auto& p : live) p->OnAuthReload();
    });
  }
}

Status Server::Start() {
  Impl& s = *impl_;
  if (s.started) return Status(Code::kInvalidArgument, "server already started");
  s.gate_ctxs = size_t(std::max(1, s.opt.threads));
  const int n = int(s.gate_ctxs) + std::max(0, s.opt.stream_threads);
  s.registry.resize(size_t(n));
  s.durable_waiters.resize(size_t(n));
  s.flush_posted = std::make_unique<std::atomic<bool>[]>(size_t(n));
  for (int i = 0; i < n; ++i) {
    s.ctxs.push_back(std::make_unique<net::io_context>(1));
    s.guards.push_back(net::make_work_guard(*s.ctxs.back()));
  }
  Status st = s.Listen(s.opt.host, s.opt.port, s.opt.metrics_listen ? Listener::kApi : Listener::kApiAndMetrics,
                       &s.bound_port);
  if (st.ok() && s.opt.metrics_listen) {
    st = s.Listen(s.opt.metrics_host, s.opt.metrics_port, Listener::kMetrics, &s.bound_metrics_port);
  }
  if (!st.ok()) {
    s.acceptors.clear();
    return st;
  }
  AccessPolicy policy;
  AddOwnOrigins(s.opt.host, s.bound_port, policy.origins);
  if (s.opt.metrics_listen) AddOwnOrigins(s.opt.metrics_host, s.bound_metrics_port, policy.origins);
  for (const std::string& o : s.opt.allowed_origins) policy.origins.push_back(o);
  policy.cors_origins = s.opt.allowed_origins;
  policy.metrics_token = s.opt.metrics_token;
  policy.metrics_need_token =
      !s.opt.metrics_token.empty() || !IsLoopbackHost(s.opt.metrics_listen ? s.opt.metrics_host : s.opt.host);
  s.api.SetAccessPolicy(std::move(policy));
  s.api.SetHealthUnsyncedMs(s.opt.health_unsynced_ms);
  // A revoked minted token closes the sessions it opened, at once (docs/api.md, "Tokens").
  s.api.SetOnTokenRevoked([&s] { s.RecheckSessions(); });
  s.sweeper = std::make_unique<net::steady_timer>(*s.ctxs[0]);
  s.hub_timer = std::make_unique<net::steady_timer>(*s.ctxs[s.HubCtx()]);
  s.hub_timer->expires_after(std::chrono::milliseconds(0));
  if (s.durability != nullptr) s.durability->SetOnDurable([&s](uint64_t) { s.OnDurableRound(); });
  for (size_t a = 0; a < s.acceptors.size(); ++a) s.DoAccept(a);
  s.ScheduleSweep();
  s.ScheduleHubPoll();
  s.started = true;
  s.running_threads = n;
  for (int i = 0; i < n; ++i) {
    s.threads.emplace_back([&s, i] {
      for (;;) {
        try {
          s.ctxs[size_t(i)]->run();
          break;
        } catch (const std::exception& e) {
          log::Error("I/O thread {}: {}", i, e.what());
        }
      }
      std::lock_guard lock(s.mu);
      if (--s.running_threads == 0) s.cv.notify_all();
    });
  }
  return Status::Ok();
}

void Server::Stop() {
  Impl& s = *impl_;
  if (!s.started || s.stopping.exchange(true)) return;
  net::post(*s.ctxs[0], [&s] {
    error_code ec;
    for (Impl::Acceptor& a : s.acceptors) {
      a.socket->close(ec);
      a.retry->cancel();
    }
    s.sweeper->cancel();
  });
  net::post(*s.ctxs[s.HubCtx()], [&s] { s.hub_timer->cancel(); });
  for (size_t i = 0; i < s.ctxs.size(); ++i) {
    net::post(*s.ctxs[i], [&s, i] {
      std::vector<std::shared_ptr<SessionBase>> live;
      for (SessionBase* p : s.registry[i]) {
        if (auto sp = p->Lock()) live.push_back(std::move(sp));
      }
      for (auto& p : live) p->Shutdown();
    });
  }
  for (auto& g : s.guards) g.reset();
  s.watchdog = std::thread([&s] {
    std::unique_lock lock(s.mu);
    if (!s.cv.wait_for(lock, std::chrono::milliseconds(s.opt.shutdown_grace_ms),
                       [&s] { return s.running_threads == 0; })) {
      s.cut = true;
      log::Warn("shutdown grace period ({} ms) over: cutting the connections still open", s.opt.shutdown_grace_ms);
      for (auto& c : s.ctxs) c->stop();
    }
  });
}

void Server::Wait() {
  Impl& s = *impl_;
  for (auto& t : s.threads)
    if (t.joinable()) t.join();
  if (s.watchdog.joinable()) s.watchdog.join();
  // The contexts are about to go: the writer must not post to them any more. Forget the
  // Durability too, here and in the Api: after Wait the owner may destroy it before the Server
  // (the final WAL round and snapshot happen once no request can arrive), and ~Server calls Wait
  // again.
  if (s.durability != nullptr) {
    s.durability->SetOnDurable(nullptr);
    s.durability = nullptr;
    s.api.SetDurability(nullptr);
    s.hub.SetDurability(nullptr);
  }
}

}  // namespace genledger::server
