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
#include <cstdio>
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
  std::string_view h, p;
  if (!text.empty() && text[0] == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Status(Code::kInvalidArgument, "--listen: expected [v6addr]:port");
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return Status(Code::kInvalidArgument, "--listen: expected host:port");
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  if (p.empty() || p.size() > 5) return Status(Code::kInvalidArgument, "--listen: bad port");
  unsigned v = 0;
  for (char c : p) {
    if (c < '0' || c > '9') return Status(Code::kInvalidArgument, "--listen: bad port");
    v = v * 10 + unsigned(c - '0');
  }
  if (v > 65535) return Status(Code::kInvalidArgument, "--listen: bad port");
  host.assign(h);
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  net::ip::make_address(host, ec);
  if (ec)
    return Status(Code::kInvalidArgument,
                  "--listen: host must be a numeric IP address or localhost");
  port = uint16_t(v);
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

  // Per-thread registries of live sessions (each touched by its own thread only); declared
  // before the contexts so that they outlive the sessions destroyed with the contexts.
  std::vector<std::unordered_set<SessionBase*>> registry;
  std::vector<std::unique_ptr<net::io_context>> ctxs;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::unique_ptr<net::steady_timer> sweeper;
  std::unique_ptr<net::steady_timer> accept_retry;
  std::vector<std::thread> threads;
  size_t next_ctx = 0;
  uint16_t bound_port = 0;
  std::atomic<bool> stopping{false};
  std::atomic<bool> started{false};

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

  void DoAccept();
  void OnAccept(size_t idx, error_code ec, tcp::socket socket);
  void Reject(tcp::socket socket);
  void ScheduleSweep();
};

namespace {

std::chrono::milliseconds Ms(uint64_t ms) { return std::chrono::milliseconds(ms); }
using SteadyClock = std::chrono::steady_clock;

// --------------------------------------------------------------------------------------
// WebSocket session.

class WsSession final : public SessionBase, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket&& socket, Server::Impl& srv, size_t idx)
      : ws_(std::move(socket)), srv_(srv), idx_(idx) {}

  ~WsSession() override {
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
    waiting_ = false;
    work_.reset();
    TryWrite();
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
    bool mutated = srv_.api.HandleFrame(
        std::string_view(static_cast<const char*>(data.data()), data.size()), out);
    buf_.consume(buf_.size());
    Reply(std::move(out), mutated);
    DoRead();
  }

  // THE exit for every reply on this stream, in frame order. A frame that acknowledges a
  // mutation carries the WAL ticket taken now, after every op of the frame was applied.
  void Reply(std::string frame, bool mutation) {
    const uint64_t ticket = (mutation && srv_.durability != nullptr) ? srv_.durability->Ticket() : 0;
    queued_bytes_ += frame.size();
    queue_.push_back(Pending{std::move(frame), ticket});
    TryWrite();
  }

  // Moves every reply that may be sent (no ticket, or a durable one) from the head of the queue
  // into the stream's buffer, as one run, and sends the run with one socket write (see
  // coalescing_stream.h for why replies do not go through Beast's per-message write).
  void TryWrite() {
    if (waiting_) return;
    CoalescingStream& out = ws_.next_layer();
    while (!queue_.empty()) {
      const uint64_t ticket = queue_.front().ticket;
      if (ticket != 0 && !srv_.durability->IsDurable(ticket)) {
        if (!srv_.durability->status().ok()) {
          // The WAL failed: these mutations will never be durable, so they are never acknowledged.
          queue_.clear();
          queued_bytes_ = 0;
          pending_close_ = websocket::close_code::internal_error;
          break;
        }
        waiting_ = true;
        work_.emplace(net::make_work_guard(ws_.get_executor()));
        srv_.AwaitDurable(idx_, shared_from_this(), ticket);
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
  };
  websocket::stream<CoalescingStream> ws_;
  net::steady_timer idle_timer_{ws_.get_executor()};
  SteadyClock::time_point last_rx_;      // last frame or control frame from the peer
  bool ping_in_flight_ = false;
  beast::flat_buffer buf_;
  std::deque<Pending> queue_;
  size_t queued_bytes_ = 0;   // sum of queue_'s frame sizes: the memory bound of backpressure
  bool waiting_ = false;   // registered to be woken when the head's ticket is durable
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
  Server::Impl& srv_;
  size_t idx_;
  bool accepted_ = false;
  bool reading_ = false;
  bool close_started_ = false;
  websocket::close_code pending_close_ = websocket::close_code::none;
};

// --------------------------------------------------------------------------------------
// HTTP session.

class HttpSession final : public SessionBase, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Server::Impl& srv, size_t idx)
      : stream_(std::move(socket)), srv_(srv), idx_(idx) {}

  ~HttpSession() override {
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
    if (websocket::is_upgrade(req)) {
      std::string_view target = req.target();
      std::string_view path = target.substr(0, target.find('?'));
      HttpReply r;
      if (path != "/v1/ws") {
        r.status = 404;
        r.body = ErrorBody(WireError::Make(404, "not_found", "no WebSocket endpoint here"));
      } else if (srv_.stopping || stopping_) {
        r.status = 503;
        r.body = ErrorBody(WireError::Make(503, "overloaded", "the server is shutting down"));
      } else if (srv_.api.AuthorizeWebSocket(req[http::field::authorization], r)) {
        handed_off_ = true;
        stream_.expires_never();
        auto ws = std::make_shared<WsSession>(stream_.release_socket(), srv_, idx_);
        ws->Run(parser_->release());
        return;
      }
      srv_.metrics->Count(MetricOp::kOther, r.status);
      return Reply(std::move(r), version, false, false);
    }
    HttpReply r;
    srv_.api.HandleHttp(req.method_string(), req.target(), req[http::field::authorization],
                        req.body(), r);
    Reply(std::move(r), version, keep_alive, req.method() == http::verb::head);
  }

  // THE exit for every reply on this connection. Requests are handled one at a time, so
  // replies leave in request order; a reply acknowledging a mutation waits (parked, the
  // connection otherwise idle) until the mutation is durable.
  void Reply(HttpReply r, unsigned version, bool keep_alive, bool head) {
    if (r.mutation && srv_.durability != nullptr) {
      if (!srv_.durability->status().ok()) {
        r.status = 503;
        r.body = ErrorBody(WireError::Make(503, "unavailable", std::string(srv_.durability->status().message())));
        r.mutation = false;
      } else {
        const uint64_t ticket = srv_.durability->Ticket();
        if (!srv_.durability->IsDurable(ticket)) {
          parked_.emplace(Parked{std::move(r), version, keep_alive, head, ticket});
          work_.emplace(net::make_work_guard(stream_.get_executor()));
          srv_.AwaitDurable(idx_, shared_from_this(), ticket);
          return;
        }
      }
    }
    Send(std::move(r), version, keep_alive, head);
  }

  void OnDurable() override {
    if (!parked_) return;
    if (!srv_.durability->IsDurable(parked_->ticket) && srv_.durability->status().ok()) {
      srv_.AwaitDurable(idx_, shared_from_this(), parked_->ticket);
      return;
    }
    Parked p = std::move(*parked_);
    parked_.reset();
    work_.reset();
    if (!srv_.durability->IsDurable(p.ticket)) {   // the WAL failed before this became durable
      p.reply.status = 503;
      p.reply.body = ErrorBody(WireError::Make(503, "unavailable", std::string(srv_.durability->status().message())));
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
  std::optional<net::executor_work_guard<net::any_io_executor>> work_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::string_body>> res_;
  std::optional<http::response<http::empty_body>> continue_;
  Server::Impl& srv_;
  size_t idx_;
  bool first_ = true;
  bool waiting_idle_ = false;
  bool stopping_ = false;
  bool handed_off_ = false;
};

}  // namespace

// --------------------------------------------------------------------------------------
// Listener and threads.

void Server::Impl::DoAccept() {
  size_t idx = next_ctx;
  next_ctx = (next_ctx + 1) % ctxs.size();
  acceptor->async_accept(*ctxs[idx], [this, idx](error_code ec, tcp::socket socket) {
    OnAccept(idx, ec, std::move(socket));
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
  auto s = std::make_shared<tcp::socket>(std::move(socket));
  net::async_write(*s, net::buffer(kResponse), [s](error_code, size_t) {
    error_code ec;
    s->shutdown(tcp::socket::shutdown_send, ec);
    s->close(ec);
  });
}

void Server::Impl::OnAccept(size_t idx, error_code ec, tcp::socket socket) {
  if (stopping || !acceptor->is_open()) return;
  if (ec) {
    // E.g. out of file descriptors: back off briefly rather than spin.
    accept_retry->expires_after(std::chrono::milliseconds(50));
    accept_retry->async_wait([this](error_code e) {
      if (!e && !stopping) DoAccept();
    });
    return;
  }
  if (metrics->open_connections() >= int64_t(opt.max_connections)) {
    Reject(std::move(socket));
  } else {
    metrics->ConnectionOpened();
    auto session = std::make_shared<HttpSession>(std::move(socket), *this, idx);
    net::post(*ctxs[idx], [session] { session->Run(); });
  }
  DoAccept();
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
  error_code ec;
  auto addr = net::ip::make_address(s.opt.host == "localhost" ? "127.0.0.1" : s.opt.host, ec);
  if (ec) return Status(Code::kInvalidArgument, "bad listen address " + s.opt.host);
  tcp::endpoint ep(addr, s.opt.port);
  s.acceptor = std::make_unique<tcp::acceptor>(*s.ctxs[0]);
  s.acceptor->open(ep.protocol(), ec);
  if (!ec) s.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) s.acceptor->bind(ep, ec);
  if (!ec) s.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Status(Code::kIOError, "cannot listen on " + s.opt.host + ":" +
                                      std::to_string(s.opt.port) + ": " + ec.message());
  s.bound_port = s.acceptor->local_endpoint().port();
  s.sweeper = std::make_unique<net::steady_timer>(*s.ctxs[0]);
  s.accept_retry = std::make_unique<net::steady_timer>(*s.ctxs[0]);
  if (s.durability != nullptr) s.durability->SetOnDurable([&s](uint64_t) { s.OnDurableRound(); });
  s.DoAccept();
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
          std::fprintf(stderr, "genledger: I/O thread %d: %s\n", i, e.what());
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
    s.acceptor->close(ec);
    s.sweeper->cancel();
    s.accept_retry->cancel();
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
  // Durability too: after Wait the owner may destroy it before the Server (the final WAL round
  // and snapshot happen once no request can arrive), and ~Server calls Wait again.
  if (s.durability != nullptr) {
    s.durability->SetOnDurable(nullptr);
    s.durability = nullptr;
  }
}

}  // namespace genledger::server
