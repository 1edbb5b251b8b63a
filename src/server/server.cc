// Boost.Beast HTTP and WebSocket sessions, the listener, and the server's threads.
//
// Threading model: one io_context per I/O thread (concurrency hint 1). The acceptor runs on
// context 0 and hands each accepted socket to the contexts in turn; a session then lives on
// exactly one thread, so its handlers never run concurrently and need no strand, and all
// per-thread state (the session registry used for shutdown, thread_local parse buffers) is
// touched by one thread only. This is also the shape the durability hook wants: a WAL writer
// can wake one I/O thread with a single post() to its context and that thread sends every
// reply that became durable (design notes §2).
//
// Durability: every reply leaves a session through exactly one function, HttpSession::Reply and
// WsSession::Reply. A reply that acknowledges a mutation carries the WAL ticket taken right after
// the mutation returned and is held until that ticket is durable (design notes §2): an HTTP
// session parks its one reply (the next request is read only after it is written, so replies stay
// in request order); a WebSocket session writes its queue head only once durable, so frames stay
// in order and parked frames count against --max-ws-inflight. The WAL writer's callback posts one
// coalesced flush to each I/O thread, which wakes that thread's waiting sessions. A parked session
// holds a work guard so that a stopping server still delivers it.
#include "server/server.h"

#include "server/coalescing_stream.h"
#include "log/log.h"
#include "net/host_port.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <optional>
#include <mutex>
#include <thread>
#include <unordered_set>

namespace genledger::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = beast::error_code;

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

class SessionBase {
 public:
  virtual ~SessionBase() = default;
  // Called on the session's own thread when the server stops.
  virtual void Shutdown() = 0;
  // Called on the session's own thread after a WAL round became durable, if it asked to wait.
  virtual void OnDurable() {}
  // Called on the session's own thread after the auth file was reloaded.
  virtual void OnAuthReload() {}
};

struct Server::Impl {
  ServerOptions opt;
  std::shared_ptr<Ledger> ledger;
  std::shared_ptr<Auth> auth;
  std::shared_ptr<Metrics> metrics;
  Durability* durability = nullptr;
  Api api;

  // Sessions waiting for a ticket, per I/O thread (each list touched by its own thread only), and
  // one flag per thread so a burst of durable rounds posts at most one flush to it. The lists own
  // their sessions: a parked session has no pending I/O operation to keep it alive.
  std::vector<std::vector<std::shared_ptr<SessionBase>>> durable_waiters;
  std::unique_ptr<std::atomic<bool>[]> flush_posted;
  std::atomic<int64_t> parked{0};   // replies held for the WAL right now (HTTP and WebSocket)

  // Per-thread registries of live sessions (each touched by its own thread only); declared
  // before the contexts so that they outlive the sessions destroyed with the contexts.
  std::vector<std::unordered_set<SessionBase*>> registry;
  std::vector<std::unique_ptr<net::io_context>> ctxs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  // The API's listener, then --metrics-listen's if any; each with its own retry timer.
  struct Acceptor {
    std::unique_ptr<tcp::acceptor> socket;
    std::unique_ptr<net::steady_timer> retry;
    Listener kind = Listener::kApiAndMetrics;
  };
  std::vector<Acceptor> acceptors;
  std::unique_ptr<net::steady_timer> sweeper;
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
        api(ledger, auth, metrics, ApiLimits{opt.max_batch_ops}) {
    api.SetDurability(d);
  }

  // Session side: wake `s` (on thread idx) after the next durable round.
  void AwaitDurable(size_t idx, std::shared_ptr<SessionBase> s, uint64_t ticket) {
    durable_waiters[idx].push_back(std::move(s));
    durability->RequestDurable(ticket);
  }
  // Writer thread: a round became durable (or the WAL failed).
  void OnDurableRound() {
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

  Status Listen(const std::string& host, uint16_t port, Listener kind, uint16_t* bound);
  void DoAccept(size_t a);
  void OnAccept(size_t a, size_t idx, error_code ec, tcp::socket socket);
  void Reject(tcp::socket socket);
  void ScheduleSweep();
};

namespace {

std::chrono::milliseconds Ms(uint64_t ms) { return std::chrono::milliseconds(ms); }
using SteadyClock = std::chrono::steady_clock;

uint64_t NowMs() {
  return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now().time_since_epoch()).count());
}

// The answer to a reply held past --reply-deadline-ms (docs/api.md, "Outcome unknown").
constexpr const char* kDeadlineMessage =
    "no answer within the reply deadline (the write-ahead log is slow): the outcome is unknown; "
    "retry with the same id";

// --------------------------------------------------------------------------------------
// WebSocket session.

class WsSession final : public SessionBase, public std::enable_shared_from_this<WsSession> {
 public:
  // `authorization` is kept to re-check the token when the auth file is reloaded.
  WsSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, std::string authorization)
      : ws_(std::move(socket)), srv_(srv), idx_(idx), authorization_(std::move(authorization)) {}

  ~WsSession() override {
    if (registered_) srv_.parked.fetch_sub(1);
    srv_.registry[idx_].erase(this);
    if (accepted_) srv_.metrics->WsClosed();
    srv_.metrics->ConnectionClosed();
  }

  void Run(http::request<http::string_body> req) {
    srv_.registry[idx_].insert(this);
    // Beast's idle timeout re-arms a timer on every read (a timerfd_settime and a cancelled
    // handler per frame: ~8% of the single-op path's CPU). The session keeps its own coarse idle
    // clock instead (ArmIdleTimer); Beast keeps the handshake and closing-handshake timeouts.
    websocket::stream_base::timeout t;
    t.handshake_timeout = Ms(srv_.opt.header_timeout_ms);
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    beast::get_lowest_layer(ws_).expires_never();
    ws_.set_option(t);
    ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_rx_ = SteadyClock::now(); });
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "genledger"); }));
    ws_.next_layer().Bind(weak_from_this(), [this] { OnSent(); });
    websocket::permessage_deflate pmd;   // off (the default), stated explicitly
    pmd.server_enable = false;
    pmd.client_enable = false;
    ws_.set_option(pmd);
    ws_.read_message_max(srv_.opt.max_body_bytes);
    ws_.auto_fragment(false);
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&WsSession::OnAccept, shared_from_this()));
  }

  void Shutdown() override {
    if (close_started_) return;
    pending_close_ = websocket::close_code::going_away;
    // Before the handshake completes, OnAccept closes; while replies wait for durability,
    // TryWrite closes once the queue is drained (the close frame follows the last reply).
    if (accepted_ && queue_.empty()) DoClose();
  }

  void OnDurable() override {
    registered_ = false;
    srv_.parked.fetch_sub(1);
    work_.reset();
    TryWrite();
  }

  // A revoked token (or open mode closed by the reload) ends the session: 1008 after the replies
  // to the frames already received, which were authorised when they arrived.
  void OnAuthReload() override {
    if (close_started_ || pending_close_) return;
    if (srv_.auth->Check(authorization_) >= Role::kGate) return;
    pending_close_ = websocket::close_code::policy_error;
    if (accepted_ && queue_.empty()) DoClose();   // else TryWrite closes after the queue
  }

 private:
  void OnAccept(error_code ec) {
    if (ec) return;
    accepted_ = true;
    srv_.metrics->WsOpened();
    if (srv_.stopping) pending_close_ = websocket::close_code::going_away;
    if (pending_close_) return DoClose();
    last_rx_ = SteadyClock::now();
    ArmIdleTimer();
    DoRead();
  }

  // The peer must send something - a frame, or the pong to a ping - within --idle-timeout-ms,
  // or the connection is dropped (what Beast's keep-alive pings did). The clock ticks every
  // quarter of the timeout and pings a peer that was silent for the last tick, so a responsive
  // peer always gets at least three quarters of the timeout to answer. The timer holds the
  // session weakly so it never keeps a finished one alive.
  SteadyClock::duration IdleTick() const { return Ms(std::max<uint64_t>(1, srv_.opt.idle_timeout_ms / 4)); }
  void ArmIdleTimer() {
    idle_timer_.expires_after(IdleTick());
    idle_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->OnIdleTimer();
    });
  }
  void OnIdleTimer() {
    if (close_started_) return;   // Beast's closing-handshake timeout takes over
    const auto idle = SteadyClock::now() - last_rx_;
    if (idle >= Ms(srv_.opt.idle_timeout_ms)) {
      beast::close_socket(beast::get_lowest_layer(ws_));   // pending operations fail; the session ends
      return;
    }
    if (idle >= IdleTick() && !ping_in_flight_ && ws_.is_open()) {
      ping_in_flight_ = true;
      ws_.async_ping({}, [weak = weak_from_this()](error_code) {
        if (auto self = weak.lock()) self->ping_in_flight_ = false;
      });
    }
    ArmIdleTimer();
  }

  void DoRead() {
    if (reading_ || close_started_ || pending_close_ ||
        queue_.size() >= srv_.opt.max_ws_inflight ||
        queued_bytes_ + ws_.next_layer().pending_bytes() >= srv_.opt.max_ws_queued_bytes)
      return;   // backpressure: OnSent resumes reading
    reading_ = true;
    ws_.async_read(buf_, beast::bind_front_handler(&WsSession::OnRead, shared_from_this()));
  }

  void OnRead(error_code ec, size_t) {
    reading_ = false;
    if (ec) {   // closed by the peer, too big (Beast closes with 1009), idle, ...
      idle_timer_.cancel();
      return;
    }
    last_rx_ = SteadyClock::now();
    if (!ws_.got_text()) {
      // RFC 6455 7.4.1: 1003 = "received a type of data it cannot accept".
      buf_.consume(buf_.size());
      pending_close_ = websocket::close_code::unknown_data;
      if (queue_.empty()) DoClose();   // else TryWrite closes after the queued replies
      return;
    }
    auto data = buf_.data();
    std::string out;
    bool observed = srv_.api.HandleFrame(
        std::string_view(static_cast<const char*>(data.data()), data.size()), out);
    buf_.consume(buf_.size());
    Reply(std::move(out), observed);
    DoRead();
  }

  // THE exit for every reply on this stream, in frame order. A frame derived from ledger state
  // carries the WAL ticket taken now, after every op of the frame ran: it covers every record
  // the ops appended or observed (Durability::Ticket()).
  void Reply(std::string frame, bool ledger_state) {
    const uint64_t ticket = (ledger_state && srv_.durability != nullptr) ? srv_.durability->Ticket() : 0;
    queued_bytes_ += frame.size();
    queue_.push_back(Pending{std::move(frame), ticket, SteadyClock::now() + Ms(srv_.opt.reply_deadline_ms)});
    TryWrite();
  }

  // A frame held past --reply-deadline-ms is answered with a frame-level 503 instead, its
  // outcome unknown (docs/api.md). Later frames keep their own deadlines and their order.
  void ArmDeadline() {
    if (deadline_armed_ || queue_.empty()) return;
    deadline_armed_ = true;
    deadline_timer_.expires_at(queue_.front().deadline);
    deadline_timer_.async_wait([weak = weak_from_this()](error_code ec) {
      if (auto self = weak.lock(); self && !ec) self->OnDeadline();
    });
  }
  void OnDeadline() {
    deadline_armed_ = false;
    const auto now = SteadyClock::now();
    for (Pending& p : queue_) {
      if (p.ticket == 0 || p.deadline > now) break;
      queued_bytes_ -= p.frame.size();
      p.frame = DeadlineFrame();
      queued_bytes_ += p.frame.size();
      p.ticket = 0;
    }
    TryWrite();
  }

  // Moves every reply that may be sent (no ticket, or a durable one) from the head of the queue
  // into the stream's buffer, as one run, and sends the run with one socket write (see
  // coalescing_stream.h for why replies do not go through Beast's per-message write).
  void TryWrite() {
    CoalescingStream& out = ws_.next_layer();
    while (!queue_.empty()) {
      const uint64_t ticket = queue_.front().ticket;
      if (ticket != 0 && !srv_.durability->IsDurable(ticket)) {
        if (!srv_.durability->status().ok()) {
          // The WAL failed: what these frames observed will never be durable, so they are never
          // answered; the close tells the client their outcome is unknown.
          queue_.clear();
          queued_bytes_ = 0;
          pending_close_ = websocket::close_code::internal_error;
          break;
        }
        if (!registered_) {
          registered_ = true;
          srv_.parked.fetch_add(1);
          work_.emplace(net::make_work_guard(ws_.get_executor()));
          srv_.AwaitDurable(idx_, shared_from_this(), ticket);
        }
        ArmDeadline();
        break;
      }
      if (!ws_.is_open()) {
        // Beast closed the stream (the peer's close, a protocol error): nobody reads replies now.
        queue_.clear();
        queued_bytes_ = 0;
        break;
      }
      out.AppendTextFrame(queue_.front().frame);
      queued_bytes_ -= queue_.front().frame.size();
      queue_.pop_front();
    }
    out.Flush();
    // The close frame goes through the same buffer, after every reply written before it.
    if (queue_.empty() && pending_close_) DoClose();
  }

  // After each socket write: the memory bound may allow reading again.
  void OnSent() {
    if (ws_.next_layer().error()) return;   // the connection is gone; the pending read fails too
    DoRead();
  }

  void DoClose() {
    if (close_started_) return;
    close_started_ = true;
    ws_.async_close(websocket::close_reason(pending_close_),
                    beast::bind_front_handler(&WsSession::OnClose, shared_from_this()));
  }

  void OnClose(error_code) {}

  struct Pending {
    std::string frame;
    uint64_t ticket;   // 0: nothing to wait for
    SteadyClock::time_point deadline;
  };
  static std::string DeadlineFrame() {
    return "{\"status\":503," +
           std::string(ErrorBody(WireError::Make(503, "unavailable", kDeadlineMessage))).substr(1);
  }
  websocket::stream<CoalescingStream> ws_;
  net::steady_timer idle_timer_{ws_.get_executor()};
  SteadyClock::time_point last_rx_;      // last frame or control frame from the peer
  bool ping_in_flight_ = false;
  beast::flat_buffer buf_;
  std::deque<Pending> queue_;
  size_t queued_bytes_ = 0;   // sum of queue_'s frame sizes: the memory bound of backpressure
  bool registered_ = false;   // in durable_waiters: woken when a round becomes durable
  net::steady_timer deadline_timer_{ws_.get_executor()};
  bool deadline_armed_ = false;
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
  Server::Impl& srv_;
  size_t idx_;
  std::string authorization_;
  bool accepted_ = false;
  bool reading_ = false;
  bool close_started_ = false;
  websocket::close_code pending_close_ = websocket::close_code::none;
};

// --------------------------------------------------------------------------------------
// HTTP session.

class HttpSession final : public SessionBase, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, Listener listener)
      : stream_(std::move(socket)), srv_(srv), idx_(idx), listener_(listener) {}

  ~HttpSession() override {
    if (parked_) srv_.parked.fetch_sub(1);
    srv_.registry[idx_].erase(this);
    if (!handed_off_) srv_.metrics->ConnectionClosed();
  }

  void Run() {
    srv_.registry[idx_].insert(this);
    error_code ec;
    stream_.socket().set_option(tcp::no_delay(true), ec);
    if (srv_.stopping) return DoClose();
    DoReadStart();
  }

  void Shutdown() override {
    stopping_ = true;
    if (waiting_idle_) {
      error_code ec;
      stream_.socket().cancel(ec);   // the idle wait ends with operation_aborted -> close
    }
  }

 private:
  // Waits for the first byte of the next request: under the header timeout for the first
  // request of a connection, the idle timeout between keep-alive requests.
  void DoReadStart() {
    if (stopping_) return DoClose();
    parser_.emplace();
    parser_->body_limit(srv_.opt.max_body_bytes);
    parser_->header_limit(16 * 1024);
    if (buffer_.size() > 0) return DoReadHeader();
    waiting_idle_ = true;
    stream_.expires_after(Ms(first_ ? srv_.opt.header_timeout_ms : srv_.opt.idle_timeout_ms));
    stream_.async_read_some(buffer_.prepare(4096),
                            beast::bind_front_handler(&HttpSession::OnFirstBytes,
                                                      shared_from_this()));
  }

  void OnFirstBytes(error_code ec, size_t n) {
    waiting_idle_ = false;
    if (ec) return DoClose();
    buffer_.commit(n);
    DoReadHeader();
  }

  void DoReadHeader() {
    first_ = false;
    stream_.expires_after(Ms(srv_.opt.header_timeout_ms));
    http::async_read_header(stream_, buffer_, *parser_,
                            beast::bind_front_handler(&HttpSession::OnHeader,
                                                      shared_from_this()));
  }

  void OnHeader(error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    auto expect = req[http::field::expect];
    if (beast::iequals(expect, "100-continue") && !parser_->is_done()) {
      continue_.emplace(http::status::continue_, req.version());
      stream_.expires_after(Ms(srv_.opt.idle_timeout_ms));
      http::async_write(stream_, *continue_,
                        beast::bind_front_handler(&HttpSession::OnContinue,
                                                  shared_from_this()));
      return;
    }
    DoReadBody();
  }

  void OnContinue(error_code ec, size_t) {
    if (ec) return DoClose();
    DoReadBody();
  }

  void DoReadBody() {
    stream_.expires_after(Ms(srv_.opt.idle_timeout_ms));
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&HttpSession::OnRead, shared_from_this()));
  }

  void OnReadError(error_code ec) {
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == net::error::operation_aborted ||
        ec == beast::error::timeout || ec == net::error::eof ||
        ec == net::error::connection_reset)
      return DoClose();
    HttpReply r;
    if (ec == http::error::body_limit) {
      r.status = 413;
      r.body = ErrorBody(WireError::Make(
          413, "too_large",
          "request body larger than " + std::to_string(srv_.opt.max_body_bytes) + " bytes"));
    } else if (ec == http::error::header_limit) {
      r.status = 413;
      r.body = ErrorBody(WireError::Make(413, "too_large", "request headers too large"));
    } else {
      r.status = 400;
      r.body = ErrorBody(WireError::Make(400, "bad_request", "malformed HTTP request: " + ec.message()));
    }
    srv_.metrics->Count(MetricOp::kOther, r.status);
    Reply(std::move(r), 11, /*keep_alive=*/false, /*head=*/false);
  }

  void OnRead(error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    auto& req = parser_->get();
    unsigned version = req.version();
    bool keep_alive = req.keep_alive();
    HttpReply r;
    // Before anything else, so a page on another site cannot make the server do anything
    // (cross-site request forgery against a loopback server, or its WebSocket).
    std::optional<std::string_view> origin;
    if (auto it = req.find(http::field::origin); it != req.end()) origin = it->value();
    if (!srv_.api.CheckOrigin(origin, r)) return Reply(std::move(r), version, keep_alive, false);
    if (websocket::is_upgrade(req)) {
      std::string_view target = req.target();
      std::string_view path = target.substr(0, target.find('?'));
      if (path != "/v1/ws" || listener_ == Listener::kMetrics) {
        r.status = 404;
        r.body = ErrorBody(WireError::Make(404, "not_found", "no WebSocket endpoint here"));
      } else if (srv_.stopping || stopping_) {
        r.status = 503;
        r.body = ErrorBody(WireError::Make(503, "overloaded", "the server is shutting down"));
      } else if (srv_.api.AuthorizeWebSocket(req[http::field::authorization], r)) {
        handed_off_ = true;
        stream_.expires_never();
        std::string authorization(req[http::field::authorization]);
        auto ws = std::make_shared<WsSession>(stream_.release_socket(), srv_, idx_, std::move(authorization));
        ws->Run(parser_->release());
        return;
      }
      srv_.metrics->Count(MetricOp::kOther, r.status);
      return Reply(std::move(r), version, false, false);
    }
    srv_.api.HandleHttp(req.method_string(), req.target(), req[http::field::authorization],
                        req.body(), r, listener_);
    Reply(std::move(r), version, keep_alive, req.method() == http::verb::head);
  }

  // THE exit for every reply on this connection. Requests are handled one at a time, so
  // replies leave in request order. A reply derived from ledger state (a change, a refusal
  // because of the state, a read) waits, parked with the connection otherwise idle, until what
  // it observed is durable: the ticket is taken now, after the handler's ledger calls returned,
  // so it covers every record they appended or saw (Durability::Ticket()). It waits at most
  // --reply-deadline-ms, then is answered 503 with its outcome unknown.
  void Reply(HttpReply r, unsigned version, bool keep_alive, bool head) {
    if (r.ledger_state && srv_.durability != nullptr) {
      const uint64_t ticket = srv_.durability->Ticket();
      if (!srv_.durability->IsDurable(ticket)) {
        if (!srv_.durability->status().ok()) {
          SetUnavailable(r, std::string(srv_.durability->status().message()));
        } else {
          parked_.emplace(Parked{std::move(r), version, keep_alive, head, ticket});
          srv_.parked.fetch_add(1);
          work_.emplace(net::make_work_guard(stream_.get_executor()));
          Await();
          deadline_timer_.expires_after(Ms(srv_.opt.reply_deadline_ms));
          deadline_timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) self->Unpark(/*deadline=*/true);
          });
          return;
        }
      }
    }
    Send(std::move(r), version, keep_alive, head);
  }

  static void SetUnavailable(HttpReply& r, std::string message) {
    r.status = 503;
    r.body = ErrorBody(WireError::Make(503, "unavailable", std::move(message)));
    r.ledger_state = false;
    r.allow = {};
    r.www_authenticate = false;
    r.content_type = "application/json";
  }

  void Await() {
    if (registered_) return srv_.durability->RequestDurable(parked_->ticket);
    registered_ = true;
    srv_.AwaitDurable(idx_, shared_from_this(), parked_->ticket);
  }

  void OnDurable() override {
    registered_ = false;
    if (!parked_) return;
    if (!srv_.durability->IsDurable(parked_->ticket) && srv_.durability->status().ok()) return Await();
    Unpark(/*deadline=*/false);
  }

  // Sends the parked reply: as it is once durable, else 503 (the WAL failed, or the deadline
  // passed first).
  void Unpark(bool deadline) {
    if (!parked_) return;
    Parked p = std::move(*parked_);
    parked_.reset();
    srv_.parked.fetch_sub(1);
    work_.reset();
    if (!deadline) deadline_timer_.cancel();
    if (!srv_.durability->IsDurable(p.ticket)) {
      if (Status st = srv_.durability->status(); !st.ok()) {
        SetUnavailable(p.reply, std::string(st.message()));
      } else {
        SetUnavailable(p.reply, kDeadlineMessage);
        static log::RateLimit limit(60'000);
        if (uint64_t held = 0; limit.Allow(NowMs(), &held)) {
          log::Warn("replies answered 503 after --reply-deadline-ms: the WAL is not syncing ({} more since the last line)",
                    held);
        }
      }
    }
    Send(std::move(p.reply), p.version, p.keep_alive, p.head);
  }

  void Send(HttpReply r, unsigned version, bool keep_alive, bool head) {
    res_.emplace();
    res_->version(version);
    res_->result(unsigned(r.status));
    res_->set(http::field::server, "genledger");
    res_->set(http::field::content_type, r.content_type);
    if (!r.allow.empty()) res_->set(http::field::allow, r.allow);
    if (r.www_authenticate) res_->set(http::field::www_authenticate, "Bearer");
    res_->keep_alive(keep_alive && !stopping_ && !srv_.stopping);
    if (head) {
      res_->content_length(r.body.size());
    } else {
      res_->body() = std::move(r.body);
      res_->prepare_payload();
    }
    stream_.expires_after(Ms(srv_.opt.idle_timeout_ms));
    http::async_write(stream_, *res_,
                      beast::bind_front_handler(&HttpSession::OnWrite, shared_from_this(),
                                                res_->keep_alive()));
  }

  void OnWrite(bool keep_alive, error_code ec, size_t) {
    res_.reset();
    if (ec || !keep_alive) return DoClose();
    DoReadStart();
  }

  void DoClose() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  struct Parked {
    HttpReply reply;
    unsigned version;
    bool keep_alive;
    bool head;
    uint64_t ticket;
  };
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<Parked> parked_;
  bool registered_ = false;   // in durable_waiters: woken when a round becomes durable
  net::steady_timer deadline_timer_{stream_.get_executor()};
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::empty_body>> continue_;
  Server::Impl& srv_;
  size_t idx_;
  Listener listener_;
  bool first_ = true;
  bool waiting_idle_ = false;
  bool stopping_ = false;
  bool handed_off_ = false;
};

}  // namespace

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
  next_ctx = (next_ctx + 1) % ctxs.size();
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
    auto session = std::make_shared<HttpSession>(std::move(socket), *this, idx, acceptors[a].kind);
    net::post(*ctxs[idx], [session] { session->Run(); });
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
  if (!s.started || s.stopping) return st;
  for (size_t i = 0; i < s.ctxs.size(); ++i) {
    net::post(*s.ctxs[i], [&s, i] {
      std::vector<std::shared_ptr<SessionBase>> live;
      for (SessionBase* p : s.registry[i]) {
        if (auto* w = dynamic_cast<WsSession*>(p)) {
          if (auto sp = w->weak_from_this().lock()) live.push_back(sp);
        }
      }
      for (auto& p : live) p->OnAuthReload();
    });
  }
  return st;
}

Status Server::Start() {
  Impl& s = *impl_;
  if (s.started) return Status(Code::kInvalidArgument, "server already started");
  int n = std::max(1, s.opt.threads);
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
  policy.metrics_token = s.opt.metrics_token;
  policy.metrics_need_token =
      !s.opt.metrics_token.empty() || !IsLoopbackHost(s.opt.metrics_listen ? s.opt.metrics_host : s.opt.host);
  s.api.SetAccessPolicy(std::move(policy));
  s.api.SetHealthUnsyncedMs(s.opt.health_unsynced_ms);
  s.sweeper = std::make_unique<net::steady_timer>(*s.ctxs[0]);
  if (s.durability != nullptr) s.durability->SetOnDurable([&s](uint64_t) { s.OnDurableRound(); });
  for (size_t a = 0; a < s.acceptors.size(); ++a) s.DoAccept(a);
  s.ScheduleSweep();
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
  for (size_t i = 0; i < s.ctxs.size(); ++i) {
    net::post(*s.ctxs[i], [&s, i] {
      std::vector<std::shared_ptr<SessionBase>> live;
      for (SessionBase* p : s.registry[i]) {
        // Sessions are always owned by shared_ptr (enable_shared_from_this).
        if (auto* h = dynamic_cast<HttpSession*>(p)) {
          if (auto sp = h->weak_from_this().lock()) live.push_back(sp);
        } else if (auto* w = dynamic_cast<WsSession*>(p)) {
          if (auto sp = w->weak_from_this().lock()) live.push_back(sp);
        }
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
  }
}

}  // namespace genledger::server
