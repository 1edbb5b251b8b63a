// The HTTP session: reads requests (header limits, 100-continue, body limit), routes them
// through Api::HandleHttp, parks a reply until what it observed is durable, and hands WebSocket
// upgrades to ws_session.cc (see listener.cc for the threading model).

#include "server/server_impl.h"

#include "log/log.h"

#include <boost/beast/websocket/rfc6455.hpp>   // is_upgrade only: the stream is ws_session.cc's
#include <algorithm>
#include <optional>

namespace genledger::server {

namespace websocket = beast::websocket;

namespace {


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

  std::shared_ptr<SessionBase> Lock() override { return weak_from_this().lock(); }

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
    // A CORS preflight from an --allow-origin page (docs/api.md, "CORS"): answered here, since
    // it carries no token.
    {
      std::optional<std::string_view> request_method;
      if (auto it = req.find(http::field::access_control_request_method); it != req.end()) request_method = it->value();
      if (srv_.api.HandlePreflight(req.method_string(), origin, request_method, r)) {
        return Reply(std::move(r), version, keep_alive, false);
      }
    }
    if (websocket::is_upgrade(req)) {
      std::string_view target = req.target();
      std::string_view path = target.substr(0, target.find('?'));
      if (path != "/v1/ws" || listener_ == Listener::kMetrics) {
        r.status = 404;
        r.body = ErrorBody(WireError::Make(404, "not_found", "no WebSocket endpoint here"));
      } else if (srv_.stopping || stopping_) {
        r.status = 503;
        r.body = ErrorBody(WireError::Make(503, "overloaded", "the server is shutting down"));
      } else if (Grant grant; srv_.api.AuthorizeWebSocket(req[http::field::authorization], r, &grant)) {
        handed_off_ = true;
        stream_.expires_never();
        std::string authorization(req[http::field::authorization]);
        StartWsSession(stream_.release_socket(), srv_, idx_, std::move(authorization), std::move(grant),
                       parser_->release());
        return;
      }
      srv_.metrics->Count(MetricOp::kOther, r.status);
      return Reply(std::move(r), version, false, false);
    }
    // THE place where a request's credentials are taken. The target may hold a token (?token=
    // on the SSE route only, checked by HandleHttp): it is never logged (no access log exists;
    // keep it that way or strip the query first).
    const std::string_view authorization = req[http::field::authorization];
    srv_.api.HandleHttp(req.method_string(), req.target(), authorization, req.body(), r, listener_);
    r.cors_origin = srv_.api.CorsOrigin(origin, req.method_string());
    if (!r.event_stream.empty() && req.method() == http::verb::get && !srv_.stopping && !stopping_) {
      // The connection becomes a Server-Sent Events stream (sse_session.cc), which answers. It
      // keeps the credential it was authorized with (the header, or the query token as a bearer
      // header), to re-check on auth reload and token revocation.
      std::string credential(authorization);
      if (credential.empty()) {
        const std::string_view target = req.target();
        const size_t q = target.find('?');
        const std::string_view token = q == std::string_view::npos ? std::string_view() : Api::QueryToken(target.substr(q + 1));
        if (!token.empty()) credential = "Bearer " + std::string(token);
      }
      handed_off_ = true;
      stream_.expires_never();
      StartSseSession(stream_.release_socket(), srv_, idx_, std::move(credential), std::move(r.event_stream), version,
                      std::move(r.cors_origin));
      return;
    }
    // A dashboard file the browser already holds (api_ui.cc sets the ETag): 304, no body.
    if (r.status == 200 && !r.etag.empty()) {
      if (auto it = req.find(http::field::if_none_match); it != req.end() && it->value() == r.etag) {
        r.status = 304;
        r.body.clear();
      }
    }
    if (!r.event_stream.empty()) {
      const std::string cors = std::move(r.cors_origin);
      r = HttpReply{};
      r.cors_origin = cors;
      r.status = 503;
      r.body = ErrorBody(WireError::Make(503, "overloaded", "the server is shutting down"));
    }
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
    if (!r.cors_origin.empty()) {
      res_->set(http::field::access_control_allow_origin, r.cors_origin);
      res_->set(http::field::vary, "Origin");
      if (r.preflight) {
        res_->set(http::field::access_control_allow_methods, "GET, HEAD");
        res_->set(http::field::access_control_allow_headers, "Authorization");
        res_->set(http::field::access_control_max_age, "600");
      }
    }
    if (!r.cache_control.empty()) res_->set(http::field::cache_control, r.cache_control);
    if (!r.etag.empty()) res_->set(http::field::etag, r.etag);
    if (!r.location.empty()) res_->set(http::field::location, r.location);
    if (r.page) {
      res_->set("Content-Security-Policy", kPageCsp);
      res_->set("X-Content-Type-Options", "nosniff");
      res_->set("Referrer-Policy", "no-referrer");
    }
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

void StartHttpSession(tcp::socket&& socket, Server::Impl& srv, size_t idx, Listener listener) {
  auto session = std::make_shared<HttpSession>(std::move(socket), srv, idx, listener);
  // Moved, not copied: the only reference must live on the session's own thread, or a session
  // that ends quickly would be destroyed here (the accepting thread) and touch its thread's
  // registry from the wrong thread (TSan: data race on registry[idx]).
  net::post(*srv.ctxs[idx], [session = std::move(session)] { session->Run(); });
}

}  // namespace genledger::server
