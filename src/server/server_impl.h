// Private to the server's translation units (server.h is the public side): the pieces the
// listener (listener.cc), the HTTP session (http_session.cc) and the WebSocket session
// (ws_session.cc) share. Only ws_session.cc includes <boost/beast/websocket.hpp>: it is the
// heaviest header, and each translation unit that includes it costs minutes on a small machine.
#pragma once

#include "server/server.h"
#include "server/event_hub.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace genledger::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = beast::error_code;

// --------------------------------------------------------------------------------------

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called on the session's own thread when the server stops.
  virtual void Shutdown() = 0;
  // Called on the session's own thread after a WAL round became durable, if it asked to wait.
  virtual void OnDurable() {}
  // Called on the session's own thread after the auth file was reloaded or a minted token was
  // revoked (Impl::RecheckSessions): a session re-checks the credential it was opened with
  // (Auth::Authorize / AuthorizeToken: a revoked or expired minted token now grants kNone) and
  // closes itself when it no longer grants what the session does. The SSE session does the
  // same with the credential it keeps (header or ?token=).
  virtual void OnAuthReload() {}
  // Called on the session's own thread after its StreamInbox received frames (streams only).
  virtual void OnStreamFrames() {}
  // A strong reference to the session (sessions are always owned by shared_ptr), or null
  // once it is being destroyed.
  virtual std::shared_ptr<SessionBase> Lock() = 0;
};

struct Server::Impl {
  ServerOptions opt;
  std::shared_ptr<Ledger> ledger;
  std::shared_ptr<Auth> auth;
  std::shared_ptr<Metrics> metrics;
  Durability* durability = nullptr;
  Api api;
  // Live streams; declared before the contexts so that it outlives the sessions (which
  // unsubscribe when destroyed). Polled by hub_timer on context 0.
  EventHub hub;

  // Sessions waiting for a ticket, per I/O thread (each list touched by its own thread only), and
  // one flag per thread so a burst of durable rounds posts at most one flush to it. The lists own
  // their sessions: a parked session has no pending I/O operation to keep it alive.
  std::vector<std::vector<std::shared_ptr<SessionBase>>> durable_waiters;
  std::unique_ptr<std::atomic<bool>[]> flush_posted;
  std::atomic<int64_t> parked{0};   // replies held for the WAL right now (HTTP and WebSocket)

  // Per-thread registries of live sessions (each touched by its own thread only); declared
  // before the contexts so that they outlive the sessions destroyed with the contexts.
  std::vector<std::unordered_set<SessionBase*>> registry;
  // The gate's I/O contexts [0, gate_ctxs), then --stream-threads contexts for SSE sessions and
  // the hub (none: those run on context 0 and the gate's).
  std::vector<std::unique_ptr<net::io_context>> ctxs;
  size_t gate_ctxs = 0;
  std::atomic<size_t> next_stream_ctx{0};
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  // The API's listener, then --metrics-listen's if any; each with its own retry timer.
  struct Acceptor {
    std::unique_ptr<tcp::acceptor> socket;
    std::unique_ptr<net::steady_timer> retry;
    Listener kind = Listener::kApiAndMetrics;
  };
  std::vector<Acceptor> acceptors;
  std::unique_ptr<net::steady_timer> sweeper;
  std::unique_ptr<net::steady_timer> hub_timer;
  std::atomic<bool> hub_flush_posted{false};
  std::vector<std::thread> threads;
  size_t next_ctx = 0;
  uint16_t bound_port = 0;
  uint16_t bound_metrics_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};
  std::atomic<bool> cut{false};   // the shutdown watchdog had to stop the contexts

  std::mutex mu;
  std::condition_variable cv;
  int running_threads = 0;
  std::thread watchdog;

  Impl(ServerOptions o, std::shared_ptr<Ledger> l, std::shared_ptr<Auth> a,
       std::shared_ptr<Metrics> m, Durability* d)
      : opt(std::move(o)),
        ledger(std::move(l)),
        auth(std::move(a)),
        metrics(m ? std::move(m) : std::make_shared<Metrics>()),
        durability(d),
        api(ledger, auth, metrics, ApiLimits{opt.max_batch_ops}),
        hub(ledger, HubLimits{opt.max_subscriptions_per_connection, opt.max_subscribers, opt.stream_interval_ms}) {
    api.SetDurability(d);
    hub.SetDurability(d);
  }

  // Session side: wake `s` (on thread idx) after the next durable round.
  void AwaitDurable(size_t idx, std::shared_ptr<SessionBase> s, uint64_t ticket) {
    durable_waiters[idx].push_back(std::move(s));
    durability->RequestDurable(ticket);
  }
  // Writer thread: a round became durable (or the WAL failed).
  void OnDurableRound() {
    // Stream frames waiting for this round go out from the hub's context, where it is polled.
    if (hub.HasPending() && !hub_flush_posted.exchange(true)) {
      net::post(*ctxs[HubCtx()], [this] {
        hub_flush_posted.store(false);
        hub.Flush();
      });
    }
    for (size_t i = 0; i < ctxs.size(); ++i) {
      if (!flush_posted[i].exchange(true)) net::post(*ctxs[i], [this, i] { FlushWaiters(i); });
    }
  }
  void FlushWaiters(size_t idx) {
    flush_posted[idx].store(false);
    std::vector<std::shared_ptr<SessionBase>> waiting;
    waiting.swap(durable_waiters[idx]);
    for (auto& s : waiting) s->OnDurable();   // re-registers itself if still not durable
  }

  // Where the hub is polled and flushed: the first stream context, or context 0 without any.
  size_t HubCtx() const noexcept { return ctxs.size() > gate_ctxs ? gate_ctxs : 0; }
  // The context a new SSE session runs on: the stream contexts in turn, or `current` (the
  // gate's context that parsed the request) without any. Any thread.
  size_t StreamCtx(size_t current) noexcept {
    const size_t m = ctxs.size() - gate_ctxs;
    return m == 0 ? current : gate_ctxs + next_stream_ctx.fetch_add(1, std::memory_order_relaxed) % m;
  }

  // Posts OnAuthReload to every live session, on each session's own thread (after an auth
  // reload, and after a minted token is revoked). Thread-safe.
  void RecheckSessions();

  Status Listen(const std::string& host, uint16_t port, Listener kind, uint16_t* bound);
  void DoAccept(size_t a);
  void OnAccept(size_t a, size_t idx, error_code ec, tcp::socket socket);
  void Reject(tcp::socket socket);
  void ScheduleSweep();
  void ScheduleHubPoll();
};

inline std::chrono::milliseconds Ms(uint64_t ms) { return std::chrono::milliseconds(ms); }
using SteadyClock = std::chrono::steady_clock;

inline uint64_t NowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count());
}

// The answer to a reply held past --reply-deadline-ms (docs/api.md, "Outcome unknown").
inline constexpr const char* kDeadlineMessage =
    "no answer within the reply deadline (the write-ahead log is slow): the outcome is unknown; "
    "retry with the same id";

// Starts an HTTP session on a socket the listener accepted (on thread `idx`'s context, which
// must already own the socket's executor), serving the routes of `listener`.
void StartHttpSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, Listener listener);

// Hands an HTTP connection whose request `req` is a WebSocket upgrade (already authorized) to
// a new WebSocket session on thread `idx`; `authorization` is kept to re-check on reload and
// revocation, `grant` (what it granted at the upgrade) scopes every frame's ops.
void StartWsSession(tcp::socket&& socket, Server::Impl& srv, size_t idx,
                    std::string authorization, Grant grant, http::request<http::string_body>&& req);

// Hands an HTTP connection whose request was routed to GET /v1/workspaces/{ws}/events (parsed on
// thread `idx`) to a new Server-Sent Events session on a stream thread (Impl::StreamCtx; the
// socket moves to that thread's context) (sse_session.cc); `authorization` is kept to
// re-check on reload, `http_version` is the request's (10 or 11), `cors_origin` (may be empty)
// the Access-Control-Allow-Origin to answer (Api::CorsOrigin).
void StartSseSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, std::string authorization,
                     std::string workspace, unsigned http_version, std::string cors_origin = {});

}  // namespace genledger::server
